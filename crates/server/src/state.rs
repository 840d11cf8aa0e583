//! What every request shares: the store, the blobs, the index cache and the external URL.

use std::fmt;
use std::sync::Arc;

use artifact_core::IndexCache;

use crate::blobs::Blobs;
use crate::store::Store;

/// The server's shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) blobs: Arc<dyn Blobs>,
    /// Central directories of archives by blob key (keys never change meaning), each with
    /// its entries' verdicts.
    pub(crate) indexes: IndexCache<Arc<crate::verdicts::Verdicts>>,
    /// `--base-url`, without a trailing slash; otherwise links use the request's `Host`.
    pub(crate) base_url: Option<String>,
    /// Recent artifact look-ups and open archives.
    pub(crate) lookups: crate::lookups::Lookups,
    /// See [`AppConfig::proxy_download`].
    pub(crate) proxy_download: bool,
    /// Small entries' verified bytes by archive key and path (see [`AppConfig::entry_cache_bytes`]).
    pub(crate) hot: crate::hot::HotEntries,
    /// The listed paths of the `metadata.gz` files whose folders the pages showed last,
    /// by blob key.
    pub(crate) trees: artifact_gitlab::pages::Trees<String>,
    /// See [`AppConfig::artifacts_origin`], without a trailing slash.
    pub(crate) artifacts_origin: Option<String>,
    /// See [`AppConfig::metrics`].
    pub(crate) metrics: Option<Arc<crate::metrics::ServerMetrics>>,
}

/// Settings of the router.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The external URL (e.g. `https://gitlab.example.com`) for links; otherwise links use
    /// the request's `Host`.
    pub base_url: Option<String>,
    /// Bytes of central directories kept in memory.
    pub index_cache_bytes: usize,
    /// Stream archive downloads (5, 6) through the server even when the blobs are in object
    /// storage; otherwise those answer `302` to a presigned URL, as GitLab does.
    pub proxy_download: bool,
    /// Bytes of small entries (64 KiB at most each) kept in memory, verified, by archive
    /// key and path: a hot file is answered without reading its archive (`0`: none).
    pub entry_cache_bytes: usize,
    /// A separate origin (e.g. `https://artifacts.example.com`, pointing at this same
    /// server) from which the browsing pages open files, the way GitLab Pages serves
    /// artifacts from its own domain: files there run outside any sandbox, in an origin that
    /// holds no session and serves no page. Without it, files open under
    /// `Content-Security-Policy: sandbox` on the server's own origin.
    pub artifacts_origin: Option<String>,
    /// Keep Prometheus metrics (requests, latency, store queries, object reads, caches),
    /// which the second router of [`app_routers`](crate::app_routers) serves: off by
    /// default, when nothing is measured at all.
    pub metrics: bool,
}

impl Default for AppConfig {
    fn default() -> AppConfig {
        AppConfig {
            base_url: None,
            index_cache_bytes: artifact_core::DEFAULT_CACHE_BYTES,
            proxy_download: false,
            entry_cache_bytes: crate::hot::DEFAULT_ENTRY_CACHE_BYTES,
            artifacts_origin: None,
            metrics: false,
        }
    }
}

impl AppState {
    /// State over `store` and `blobs`.
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn Blobs>, config: AppConfig) -> AppState {
        let base_url = config.base_url.map(|u| u.trim_end_matches('/').to_owned());
        let indexes = IndexCache::new(config.index_cache_bytes);
        let proxy_download = config.proxy_download;
        let hot = crate::hot::HotEntries::new(config.entry_cache_bytes);
        let artifacts_origin = config.artifacts_origin.map(|u| u.trim_end_matches('/').to_owned());
        let metrics = config.metrics.then(|| Arc::new(crate::metrics::ServerMetrics::new()));
        let store: Arc<dyn Store> = match &metrics {
            Some(metrics) => Arc::new(crate::metered::MeteredStore { inner: store, metrics: metrics.clone() }),
            None => store,
        };
        let inner = Arc::new(Shared {
            store,
            blobs,
            indexes,
            base_url,
            proxy_download,
            lookups: Default::default(),
            hot,
            trees: Default::default(),
            artifacts_origin,
            metrics,
        });
        // Changes through other replicas drop this one's look-up memory at once.
        let weak = Arc::downgrade(&inner);
        let forget = Arc::new(move || {
            if let Some(shared) = weak.upgrade() {
                shared.lookups.forget();
            }
        });
        if let Err(e) = inner.store.subscribe(forget) {
            tracing::warn!(error = %e, "no change notifications: other replicas' changes show within a second");
        }
        AppState { inner }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The blobs.
    pub fn blobs(&self) -> &Arc<dyn Blobs> {
        &self.inner.blobs
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.inner.store)
            .field("blobs", &self.inner.blobs)
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}
