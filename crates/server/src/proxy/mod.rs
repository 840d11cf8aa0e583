//! `artifact serve --upstream URL`: the server in front of a real GitLab. The proxy itself
//! is `artifact_proxy` (single files from the engine, everything else forwarded, and its
//! pages for people read from the upstream as the visitor, `UpstreamPages`); this adds the
//! routers the command line serves.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = artifact_server::ProxyConfig::new("https://gitlab.example.com")?;
//! let router = artifact_server::proxy_app(config)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! artifact_server::serve(listener, router, std::future::pending()).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

pub use artifact_blobs::ObjectStoreCache;
pub use artifact_proxy::ProxyConfig;
use artifact_proxy::{Proxy, SetupError, UpstreamPages};
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

use crate::error::Error;

impl From<SetupError> for Error {
    fn from(e: SetupError) -> Error {
        Error::Invalid(e.to_string())
    }
}

/// The proxy and its pages.
#[derive(Debug)]
struct Pages {
    proxy: Arc<Proxy>,
    pages: UpstreamPages,
}

/// The proxy as a router: its pages, and everything else answered by `artifact_proxy`.
pub fn proxy_app(config: ProxyConfig) -> Result<Router, Error> {
    Ok(proxy_routers(config)?.0)
}

/// The proxy's router and, sharing its state, a router that answers `GET /metrics` with
/// its metrics in Prometheus' text format (to serve on another address).
pub fn proxy_routers(config: ProxyConfig) -> Result<(Router, Router), Error> {
    let proxy = Proxy::new(config)?;
    let pages = Arc::new(Pages { proxy: proxy.clone(), pages: UpstreamPages::new(proxy.clone())? });
    let api = Router::new().fallback(dispatch).layer(axum::middleware::from_fn(crate::routes::guard)).with_state(pages);
    let metrics = Router::new().route("/metrics", axum::routing::get(render_metrics)).with_state(proxy);
    Ok((api, metrics))
}

/// Every request of the proxy: the pages for people are the proxy's own (reading from the
/// upstream); the artifacts origin serves their files and nothing else; the rest is the
/// API's.
async fn dispatch(State(pages): State<Arc<Pages>>, req: Request) -> Response {
    let req = match pages.pages.route(req).await {
        Ok(answered) => return answered,
        Err(req) => req,
    };
    let started = std::time::Instant::now();
    let resp = pages.proxy.answer(req).await;
    pages.proxy.answered(started);
    resp
}

async fn render_metrics(State(proxy): State<Arc<Proxy>>) -> Response {
    let text = proxy.metrics_text();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
