//! `artifact serve --upstream URL`: the server in front of a real GitLab.
//!
//! This is the forwarding half: every request goes upstream with the caller's method,
//! path, query, credentials and body, and the answer comes back streamed, its status and
//! end-to-end headers as they are. Redirects are passed through (an archive download that
//! GitLab sends to object storage never crosses the proxy), and `Link` and `Location`
//! values that point at the upstream are rewritten to the proxy's base URL, so that
//! pagination keeps going through the proxy. An upstream that cannot be reached answers
//! `502`, one that does not answer in time `504`, both with GitLab-shaped bodies; a body cut
//! mid-stream aborts the client's connection.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = artifact_server::ProxyConfig::new("https://gitlab.example.com")?;
//! let router = artifact_server::proxy_app(config)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! artifact_server::serve(listener, router, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod answer;
mod file;
mod forward;
mod metrics;
mod pages;
mod rewrite;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};

use crate::error::Error;

/// How the proxy reaches its upstream.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The upstream GitLab, e.g. `https://gitlab.example.com` (a path prefix is kept).
    pub upstream: reqwest::Url,
    /// The proxy's external URL for rewritten links; otherwise each request's `Host`.
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
    /// Where the pages open files as they are (`--artifacts-origin`): another host name of
    /// this proxy; `None`: this origin, under a sandbox.
    pub artifacts_origin: Option<String>,
}

impl ProxyConfig {
    /// Defaults for `upstream`: 10 s to connect, 60 s of upstream silence at most.
    pub fn new(upstream: &str) -> Result<ProxyConfig, Error> {
        let upstream = reqwest::Url::parse(upstream.trim_end_matches('/'))
            .map_err(|e| Error::Invalid(format!("--upstream {upstream:?}: {e}")))?;
        if !matches!(upstream.scheme(), "http" | "https") || upstream.query().is_some() {
            return Err(Error::Invalid(format!("--upstream {upstream}: an http(s) URL without a query")));
        }
        // Every upstream URL is built from its origin and prefix: a user and password in it
        // would be dropped silently, and callers' requests must carry their own credentials.
        if !upstream.username().is_empty() || upstream.password().is_some() {
            return Err(Error::Invalid("--upstream: a URL without a user name or password".into()));
        }
        Ok(ProxyConfig {
            upstream,
            base_url: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            auth_ttl: Duration::from_secs(10),
            cache_dir: None,
            cache_disk_bytes: artifact_core::http::DEFAULT_DISK_CACHE_BYTES,
            object_storage_origins: Vec::new(),
            cache_bytes: artifact_core::DEFAULT_CACHE_BYTES,
            hot_bytes: crate::hot::DEFAULT_ENTRY_CACHE_BYTES,
            artifacts_origin: None,
        })
    }
}

/// What the proxy's handlers share.
#[derive(Debug)]
pub(crate) struct Proxy {
    pub(crate) client: reqwest::Client,
    /// The upstream without a trailing slash.
    pub(crate) upstream: String,
    /// The upstream, as every URL to it is built: below its prefix, from typed parts.
    pub(crate) target: artifact_core::request::Upstream,
    pub(crate) base_url: Option<String>,
    pub(crate) auth_ttl: Duration,
    pub(crate) grants: file::Grants,
    pub(crate) remote: Arc<Remote>,
    pub(crate) hot: crate::hot::HotEntries,
    pub(crate) metrics: metrics::Metrics,
    /// Browser sessions of the pages; their tokens go upstream.
    pub(crate) sessions: crate::sessions::Sessions,
    /// The listable paths of the archives whose folders were shown last.
    pub(crate) trees: crate::routes::browse::Trees<pages::ByIndex>,
    /// See [`ProxyConfig::artifacts_origin`], without a trailing slash.
    pub(crate) artifacts_origin: Option<String>,
}

/// The engine's remote archives, made and dropped off the async runtime: they hold a
/// blocking HTTP client (for loading indexes on the blocking pool), which may not be made
/// or dropped on it. Entries are read on async I/O.
#[derive(Debug)]
pub(crate) struct Remote(Option<Arc<artifact_core::http::RemoteArchives>>);

impl Remote {
    fn new(config: &ProxyConfig) -> Result<Remote, Error> {
        // Archives are read where the upstream's redirect points: only at the listed
        // origins (and the upstream's own), and never at link-local or metadata addresses.
        let mut origins = Vec::new();
        for given in &config.object_storage_origins {
            let url = reqwest::Url::parse(given)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| Error::Invalid(format!("--object-storage-origin {given:?}: not an http(s) origin")))?;
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
            ..Default::default()
        };
        let (cache_dir, cache_bytes, disk_bytes) =
            (config.cache_dir.clone(), config.cache_bytes, config.cache_disk_bytes);
        let made = std::thread::spawn(move || {
            let remote = artifact_core::http::RemoteArchives::new(options)?.with_cache_capacity(cache_bytes);
            Ok::<_, artifact_core::Error>(match cache_dir {
                Some(dir) => remote.with_disk_cache_bytes(dir, disk_bytes),
                None => remote,
            })
        })
        .join()
        .map_err(|_| Error::Invalid("the upstream reader could not start".into()))?;
        Ok(Remote(Some(Arc::new(made.map_err(|e| Error::Invalid(format!("the upstream reader: {e}")))?))))
    }

    pub(crate) fn get(&self) -> &Arc<artifact_core::http::RemoteArchives> {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(remote) = self.0.take() {
            let _ = std::thread::spawn(move || drop(remote)).join();
        }
    }
}

/// The proxy as a router: everything is forwarded (see the module docs).
pub fn proxy_app(config: ProxyConfig) -> Result<Router, Error> {
    Ok(proxy_routers(config)?.0)
}

/// The proxy's router and, sharing its state, a router that answers `GET /metrics` with
/// its metrics in Prometheus' text format (to serve on another address).
pub fn proxy_routers(config: ProxyConfig) -> Result<(Router, Router), Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout)
        // The caller's Accept-Encoding goes upstream and the body comes back as it is.
        .no_gzip()
        .build()
        .map_err(|e| Error::Invalid(format!("the upstream client: {e}")))?;
    let target =
        artifact_core::request::Upstream::new(&config.upstream.origin().ascii_serialization(), config.upstream.path())
            .map_err(|e| Error::Invalid(format!("--upstream {}: {e}", config.upstream)))?;
    let proxy = Proxy {
        client,
        upstream: config.upstream.as_str().trim_end_matches('/').to_owned(),
        target,
        base_url: config.base_url.clone().map(|b| b.trim_end_matches('/').to_owned()),
        auth_ttl: config.auth_ttl,
        grants: file::Grants::default(),
        remote: Arc::new(Remote::new(&config)?),
        hot: crate::hot::HotEntries::new(config.hot_bytes),
        metrics: metrics::Metrics::new(),
        sessions: Default::default(),
        trees: Default::default(),
        artifacts_origin: config.artifacts_origin.clone().map(|o| o.trim_end_matches('/').to_owned()),
    };
    let proxy = Arc::new(proxy);
    let api = Router::new()
        .fallback(dispatch)
        .layer(axum::middleware::from_fn(crate::routes::guard))
        .with_state(proxy.clone());
    let metrics = Router::new().route("/metrics", axum::routing::get(render_metrics)).with_state(proxy);
    Ok((api, metrics))
}

/// Every request of the proxy: the pages for people are the proxy's own (reading from the
/// upstream); the artifacts origin serves their files and nothing else; the rest is the
/// API's.
async fn dispatch(axum::extract::State(proxy): axum::extract::State<Arc<Proxy>>, req: Request) -> Response {
    if crate::routes::browse::is_page(req.uri().path()) {
        return pages::visit(&proxy, req).await;
    }
    if crate::routes::browse::on_artifacts_origin(proxy.artifacts_origin.as_deref(), req.headers()) {
        return crate::error::ApiError::NotFound("Not Found").into_response();
    }
    let started = std::time::Instant::now();
    let resp = answer::answer(&proxy, req).await;
    proxy.metrics.answered(started);
    resp
}

async fn render_metrics(axum::extract::State(proxy): axum::extract::State<Arc<Proxy>>) -> Response {
    let remote = proxy.remote.get();
    let text = proxy.metrics.render(remote.stats(), remote.cache().counts(), remote.disk_stats());
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
