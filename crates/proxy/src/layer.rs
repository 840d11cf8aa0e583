//! The proxy as a tower layer: single files (endpoint 7 or 8, `GET` or `HEAD`) and tree
//! listings answered from the engine when the [`Authorize`](crate::Authorize) grants them,
//! every other request handed to the inner service as it came.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use artifact_gitlab::entry::artifact_path;
use artifact_gitlab::{Query, Target};
use axum::extract::Request;
use axum::http::Method;
use axum::response::{IntoResponse, Response};

use crate::Proxy;

/// The target of a single-file request (endpoint 7 or 8, `GET` or `HEAD`) and its raw
/// artifact path, if it is one.
fn single_file(method: &Method, uri: &axum::http::Uri) -> Option<(Target, String)> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return None;
    }
    let query = Query::parse(uri.query());
    let target = Target::single_file(uri.path(), query.get("job"))?;
    let file = target.file.clone()?;
    Some((target, file))
}

impl Proxy {
    /// Answers `req` if it is a single file the proxy answers: from the engine, or the path
    /// rule's `400` (before anything goes upstream, whose URL parser would resolve `%2E%2E`
    /// segments before GitLab could refuse them), or the upstream's refusal. Otherwise the
    /// request comes back untouched, for another service.
    pub async fn single_file(&self, req: Request) -> Result<Response, Request> {
        let Some((target, raw_file)) = single_file(req.method(), req.uri()) else { return Err(req) };
        let path = match artifact_path(&raw_file) {
            Ok(path) => path,
            Err(refused) => return Ok(refused.into_response()),
        };
        let (parts, body) = req.into_parts();
        match self.entry(&parts, &target, &path).await {
            Some(answer) => Ok(answer),
            None => Err(Request::from_parts(parts, body)),
        }
    }

    /// A request the proxy answers itself: a tree listing ([`Proxy::tree`]) or a single
    /// file ([`Proxy::single_file`]); any other comes back untouched.
    async fn own(&self, req: Request) -> Result<Response, Request> {
        let Some(parsed) = crate::tree::tree_request(&req) else {
            return self.single_file(req).await;
        };
        // Boxed: its state would otherwise swell every request's future. A tree the
        // `Authorize` says is not the proxy's goes upstream as it came (never taken for a
        // single file named `tree`).
        Box::pin(self.tree_of(req, parsed)).await
    }

    /// What the proxy answers a request of the API with: a tree listing or a single file
    /// from the engine when it can ([`Proxy::tree`], [`Proxy::single_file`]), else the upstream's own answer
    /// ([`Forward`](crate::Forward)).
    pub async fn answer(self: &Arc<Self>, req: Request) -> Response {
        match self.own(req).await {
            Ok(answer) => answer,
            Err(req) => crate::forward::upstream(self, req).await,
        }
    }
}

/// Puts a [`Proxy`] in front of a service: see [`ProxyService`].
#[derive(Debug, Clone)]
pub struct ProxyLayer {
    proxy: Arc<Proxy>,
}

impl ProxyLayer {
    /// The layer of `proxy`.
    pub fn new(proxy: Arc<Proxy>) -> ProxyLayer {
        ProxyLayer { proxy }
    }
}

impl<S> tower_layer::Layer<S> for ProxyLayer {
    type Service = ProxyService<S>;

    fn layer(&self, inner: S) -> ProxyService<S> {
        ProxyService { proxy: self.proxy.clone(), inner }
    }
}

/// A service that answers the single files and tree listings its [`Proxy`] answers and hands every other
/// request to `S` as it came. Each answer's head is timed in the proxy's metrics (the inner
/// service's answers too). `S` takes axum's requests, answers axum's responses and never
/// fails (`Infallible`), as an axum `Router` does; the inner service that was polled ready
/// serves the request it was polled for (a clone stays for the next).
#[derive(Debug, Clone)]
pub struct ProxyService<S> {
    proxy: Arc<Proxy>,
    inner: S,
}

impl<S> tower_service::Service<Request> for ProxyService<S>
where
    S: tower_service::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The inner service that was polled ready goes with this request; a clone stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let proxy = self.proxy.clone();
        Box::pin(async move {
            let started = std::time::Instant::now();
            let answer = match proxy.own(req).await {
                Ok(answer) => answer,
                Err(req) => inner.call(req).await?,
            };
            proxy.answered(started);
            Ok(answer)
        })
    }
}
