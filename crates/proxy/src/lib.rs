//! An artifacts proxy in front of a GitLab, as a library: single files of job artifacts
//! (GitLab's endpoints 7 and 8) answered from the engine, which reads only the archive's
//! central directory and the one entry by range, wherever the archive is, and the
//! artifacts tree (a folder of an archive listed, an addition beyond GitLab:
//! [`Proxy::tree`]) from the same index; everything else handed on.
//!
//! - [`ProxyLayer`] is a tower [`Layer`](tower_layer::Layer): in front of a service of
//!   axum's requests and responses that does not fail (an axum router of your own, or
//!   [`Forward`]), it answers the single-file and tree requests it can and hands every other
//!   request, and those its [`Authorize`] says to forward, to the inner service.
//! - [`Authorize`] decides whether a caller may read an archive and where the archive is;
//!   [`GitLabAuthorize`], the default, asks the upstream's own archive download with the
//!   caller's credential (`Range: bytes=0-0`) and remembers the answer per caller for
//!   [`ProxyConfig::auth_ttl`].
//! - [`Forward`] is the service that sends a request upstream as it came (end-to-end
//!   headers, the caller's credential, the body streamed) and streams the answer back, its
//!   links rebased onto the proxy.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use artifact_proxy::{Forward, Proxy, ProxyConfig, ProxyLayer};
//!
//! let proxy = Proxy::new(ProxyConfig::new("https://gitlab.example.com")?)?;
//! let app = axum::Router::new()
//!     .fallback_service(Forward::new(proxy.clone()))
//!     .layer(ProxyLayer::new(proxy));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // With each connection's address: it goes upstream in `X-Forwarded-For` and
//! // `Forwarded` (without it, what a caller put there goes upstream as it is).
//! let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! A `2xx` is always verified bytes (size and CRC-32 checked before the end is reported; a
//! late failure aborts the connection); with the default [`Authorize`], a caller never
//! reads a byte because another caller was allowed to; the upstream's archive redirects are
//! read only where allowed ([`ProxyConfig::object_storage_origins`]: the listed origins, or
//! by default any but link-local and cloud metadata addresses). Every request path is
//! parsed into segments first: a dot segment in any encoding is `400`, never forwarded.
//!
//! [`Proxy::new`] with a disk cache ([`ProxyConfig::cache_dir`]) blocks its thread while it
//! counts the cache's files, once: call it where blocking is allowed, or accept a short stall
//! of one worker. A
//! panic in a handler below the layer is not caught here: put a catch-panic layer around
//! it if a panic must answer `500`. This crate depends on no database and no blob storage
//! (a test in `tests/` checks this against `cargo tree`).

#![deny(missing_docs)]

mod authorize;
mod file;
mod forward;
mod layer;
mod metrics;
mod pages;
mod rewrite;
mod sessions;
mod tree;
mod verdicts;

use std::sync::Arc;
use std::time::Duration;

pub use crate::authorize::{Authorization, Authorize, GitLabAuthorize, Grant};
pub use crate::file::engine_api_error;
pub use crate::forward::{Forward, gateway};
pub use crate::layer::{ProxyLayer, ProxyService};
pub use crate::pages::UpstreamPages;
pub use artifact_core::JobRef;
pub use artifact_gitlab::{LookupKey, Target};
pub use {artifact_core, artifact_gitlab};

/// A proxy that cannot be set up as configured.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub(crate) String);

/// How the proxy reaches its upstream.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// The upstream GitLab, e.g. `https://gitlab.example.com` (a path prefix is kept).
    pub upstream: reqwest::Url,
    /// The proxy's external URL for rewritten links and the pages' links and cookie;
    /// otherwise `http://` and each request's `Host`. Behind a proxy that terminates TLS
    /// give the `https://` URL here: the pages' session cookie is then `Secure` and
    /// `__Host-`, and a sign-in form posted from that origin is recognised as this one's.
    pub base_url: Option<String>,
    /// Connecting to the upstream gives up after this long (then `502`).
    pub connect_timeout: Duration,
    /// An upstream that sends nothing for this long is given up on (`504` before the
    /// response head; an aborted body after it).
    pub read_timeout: Duration,
    /// How long the upstream's "this caller may read this archive" is remembered (`0`: ask
    /// every time).
    pub auth_ttl: Duration,
    /// Keeps central-directory indexes here too, across restarts (by the archive's
    /// identity: upstream, project and job; never a caller's URL, query or credential).
    pub cache_dir: Option<std::path::PathBuf>,
    /// Bytes of index files kept in `cache_dir` at most; past it the least recently used
    /// go (default 1 GiB).
    pub cache_disk_bytes: u64,
    /// A cache shared with other proxies in front of the same upstream
    /// (`--shared-cache`; a directory or a bucket: `artifact_blobs::ObjectStoreCache`, or
    /// any [`SharedCache`](artifact_core::http::SharedCache)): archives' indexes and entries' verdicts,
    /// by archive identity, written once and read by every proxy that meets the archive
    /// (behind the memory and `cache_dir`). Nothing there names a caller, a URL or a
    /// credential; whoever may write there is trusted as the proxies are.
    pub shared_cache: Option<Arc<dyn artifact_core::http::SharedCache>>,
    /// The origins (`scheme://host[:port]`) the upstream's archive redirects may lead to
    /// (`--object-storage-origin`); empty: any but link-local and cloud metadata
    /// addresses, which are refused either way. The upstream's own origin is always one.
    pub object_storage_origins: Vec<String>,
    /// Bytes of indexes kept in memory.
    pub cache_bytes: usize,
    /// Bytes of small entries (at most 64 KiB each) kept in memory, verified, by archive
    /// version: a repeated file is answered without asking the upstream while the caller's
    /// grant lasts (`0`: none kept).
    pub hot_bytes: usize,
    /// Where the pages for people ([`UpstreamPages`]) open files as they are
    /// (`--artifacts-origin`): another host name of this proxy, which then serves those
    /// files and nothing else ([`UpstreamPages::route`]); `None`: the proxy's own origin,
    /// under a sandbox.
    pub artifacts_origin: Option<String>,
    /// Certificate authorities trusted besides the Mozilla roots (`--ca-cert`), for every
    /// request upstream: authorization, forwarding, the pages' API calls and range reads.
    pub extra_roots: Vec<artifact_core::http::CertificateDer<'static>>,
}

impl ProxyConfig {
    /// Defaults for `upstream`: 10 s to connect, 60 s of upstream silence at most.
    pub fn new(upstream: &str) -> Result<ProxyConfig, SetupError> {
        let upstream = reqwest::Url::parse(upstream.trim_end_matches('/'))
            .map_err(|e| SetupError(format!("--upstream {upstream:?}: {e}")))?;
        if !matches!(upstream.scheme(), "http" | "https") || upstream.query().is_some() {
            return Err(SetupError(format!("--upstream {upstream}: an http(s) URL without a query")));
        }
        // Every upstream URL is built from its origin and prefix: a user and password in it
        // would be dropped silently, and callers' requests must carry their own credentials.
        if !upstream.username().is_empty() || upstream.password().is_some() {
            return Err(SetupError("--upstream: a URL without a user name or password".into()));
        }
        Ok(ProxyConfig {
            upstream,
            base_url: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            auth_ttl: Duration::from_secs(10),
            cache_dir: None,
            cache_disk_bytes: artifact_core::http::DEFAULT_DISK_CACHE_BYTES,
            shared_cache: None,
            object_storage_origins: Vec::new(),
            cache_bytes: artifact_core::DEFAULT_CACHE_BYTES,
            hot_bytes: artifact_gitlab::DEFAULT_ENTRY_CACHE_BYTES,
            artifacts_origin: None,
            extra_roots: Vec::new(),
        })
    }
}

/// What the proxy's layer, its forwarding and its pages share: the upstream client, the
/// engine's remote archives, the memories of grants and hot entries, and the metrics.
/// Made once ([`Proxy::new`]) and shared as an `Arc`.
pub struct Proxy {
    client: reqwest::Client,
    /// The upstream without a trailing slash.
    upstream: String,
    /// The upstream's origin: the only one a caller's credential goes to.
    origin: reqwest::Url,
    /// The upstream, as every URL to it is built: below its prefix, from typed parts.
    target: artifact_core::request::Upstream,
    base_url: Option<String>,
    auth_ttl: Duration,
    grants: authorize::Grants,
    authorize: Arc<dyn Authorize>,
    remote: Arc<Remote>,
    hot: artifact_gitlab::HotEntries,
    /// Entries over the hot size that were read whole and verified, by archive version.
    verified: verdicts::Verified,
    /// Whether the upstream serves each archive itself (`true`) or redirects it elsewhere,
    /// by archive identity, as the last read or grant found: the archives whose first read
    /// by a new caller may be that caller's authorization.
    served: verdicts::Served,
    metrics: Arc<metrics::Metrics>,
    artifacts_origin: Option<String>,
    extra_roots: Vec<artifact_core::http::CertificateDer<'static>>,
    /// The listable paths of the archives whose folders were listed last (the tree and the
    /// pages).
    trees: Arc<artifact_gitlab::pages::Trees<tree::ByIndex>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("upstream", &self.upstream).field("auth_ttl", &self.auth_ttl).finish()
    }
}

impl Proxy {
    /// The proxy of `config`, which asks the upstream for each caller's grants
    /// ([`GitLabAuthorize`]).
    pub fn new(config: ProxyConfig) -> Result<Arc<Proxy>, SetupError> {
        Proxy::build(config, |gitlab| gitlab)
    }

    /// The proxy of `config`, whose grants the [`Authorize`] that `wrap` makes decides
    /// (given GitLab's, to ask when it would).
    pub fn with_authorize(
        config: ProxyConfig,
        wrap: impl FnOnce(Arc<GitLabAuthorize>) -> Arc<dyn Authorize>,
    ) -> Result<Arc<Proxy>, SetupError> {
        Proxy::build(config, wrap)
    }

    fn build(
        config: ProxyConfig,
        wrap: impl FnOnce(Arc<GitLabAuthorize>) -> Arc<dyn Authorize>,
    ) -> Result<Arc<Proxy>, SetupError> {
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            // The caller's Accept-Encoding goes upstream and the body comes back as it is.
            .no_gzip();
        for root in &config.extra_roots {
            let root = reqwest::Certificate::from_der(root)
                .map_err(|e| SetupError(format!("an extra root certificate: {e}")))?;
            client = client.add_root_certificate(root);
        }
        let client = client.build().map_err(|e| SetupError(format!("the upstream client: {e}")))?;
        let target = artifact_core::request::Upstream::new(
            &config.upstream.origin().ascii_serialization(),
            config.upstream.path(),
        )
        .map_err(|e| SetupError(format!("--upstream {}: {e}", config.upstream)))?;
        let remote = Arc::new(Remote::new(&config)?);
        let remote_archives = remote.get().clone();
        let metrics = Arc::new(metrics::Metrics::new());
        let authorize =
            wrap(Arc::new(GitLabAuthorize::new(client.clone(), target.clone(), remote.clone(), metrics.clone())));
        Ok(Arc::new(Proxy {
            client,
            upstream: config.upstream.as_str().trim_end_matches('/').to_owned(),
            origin: config.upstream.clone(),
            target,
            base_url: config.base_url.clone().map(|b| b.trim_end_matches('/').to_owned()),
            auth_ttl: config.auth_ttl,
            grants: authorize::Grants::default(),
            authorize,
            remote,
            hot: artifact_gitlab::HotEntries::new(config.hot_bytes),
            verified: verdicts::Verified::new(remote_archives),
            served: verdicts::Served::default(),
            metrics,
            artifacts_origin: config.artifacts_origin.clone().map(|o| o.trim_end_matches('/').to_owned()),
            extra_roots: config.extra_roots.clone(),
            trees: Arc::default(),
        }))
    }

    /// The upstream's URL, without a trailing slash.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The certificate authorities trusted besides the Mozilla roots
    /// ([`ProxyConfig::extra_roots`]).
    pub fn extra_roots(&self) -> &[artifact_core::http::CertificateDer<'static>] {
        &self.extra_roots
    }

    /// The upstream's URLs, built from typed parts below its prefix.
    pub fn target(&self) -> &artifact_core::request::Upstream {
        &self.target
    }

    /// The client that talks to the upstream (no redirects followed, bodies as they come).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The external URL for a request with `headers`: the configured base URL, else the
    /// request's `Host`.
    pub fn base(&self, headers: &axum::http::HeaderMap) -> String {
        artifact_gitlab::base_url(self.base_url.as_deref(), headers)
    }

    /// See [`ProxyConfig::artifacts_origin`], without a trailing slash.
    pub fn artifacts_origin(&self) -> Option<&str> {
        self.artifacts_origin.as_deref()
    }

    /// Counts a request made upstream (`kind`: what for, e.g. `pages`) and its answer's
    /// status (`0`: none came).
    pub fn count_upstream(&self, kind: &'static str, status: u16) {
        self.metrics.upstream(kind, status);
    }

    /// The central-directory index of the archive `grant` names, read with `headers` (send
    /// only the caller's credential, [`artifact_gitlab::credential_headers`], and only when
    /// [`Grant::credentials`]), from the proxy's index caches or by range reads on async
    /// I/O.
    pub async fn archive_index(
        &self,
        grant: &Grant,
        headers: &axum::http::HeaderMap,
    ) -> Result<Arc<artifact_core::Index>, artifact_core::Error> {
        self.remote.get().index_keyed_async(&grant.key, &grant.url, headers).await
    }

    /// Records that an answer's head went out `since` (the latency histogram).
    pub fn answered(&self, since: std::time::Instant) {
        self.metrics.answered(since);
    }

    /// The proxy's metrics in Prometheus' text format: upstream requests by kind and
    /// status, range reads and their bytes, the index caches, grants and hot entries
    /// remembered or not, bodies streaming, the time to each answer's head.
    pub fn metrics_text(&self) -> String {
        let remote = self.remote.get();
        self.metrics.render(remote.stats(), remote.cache().counts(), remote.disk_stats(), remote.shared_stats())
    }
}

/// The engine's remote archives, read on async I/O: indexes and entries alike (the disk
/// cache on the blocking pool).
#[derive(Debug)]
struct Remote(Arc<artifact_core::http::RemoteArchives>);

impl Remote {
    fn new(config: &ProxyConfig) -> Result<Remote, SetupError> {
        // Archives are read where the upstream's redirect points: only at the listed
        // origins (and the upstream's own), and never at link-local or metadata addresses.
        let mut origins = Vec::new();
        for given in &config.object_storage_origins {
            let url = reqwest::Url::parse(given)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| SetupError(format!("--object-storage-origin {given:?}: not an http(s) origin")))?;
            origins.push(url.origin().ascii_serialization());
        }
        if !origins.is_empty() {
            origins.push(config.upstream.origin().ascii_serialization());
        }
        let options = artifact_core::http::HttpOptions {
            connect_timeout: config.connect_timeout,
            stall_timeout: config.read_timeout,
            destinations: artifact_core::http::Destinations { origins, refuse_link_local: true },
            // The archive's URL is the upstream's answer: one more redirect is object
            // storage's own business at most.
            max_redirects: 1,
            // A redirect's target is read without the caller's credential, whatever its
            // origin (a caller's first read of an archive may meet the upstream's redirect).
            credentials_after_redirect: false,
            extra_roots: config.extra_roots.clone(),
            ..Default::default()
        };
        let remote = artifact_core::http::RemoteArchives::new(options)
            .map_err(|e| SetupError(format!("the upstream reader: {e}")))?
            .with_cache_capacity(config.cache_bytes);
        let remote = match &config.cache_dir {
            Some(dir) => remote.with_disk_cache_bytes(dir.clone(), config.cache_disk_bytes),
            None => remote,
        };
        Ok(Remote(Arc::new(match &config.shared_cache {
            Some(shared) => remote.with_shared_cache(shared.clone()),
            None => remote,
        })))
    }

    fn get(&self) -> &Arc<artifact_core::http::RemoteArchives> {
        &self.0
    }
}

/// `docs/library.md`'s Rust snippets (the engine, the client, the proxy), compiled as
/// doctests of this crate, which depends on every face as a library or for its tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/library.md")]
pub struct LibraryDoctests;
