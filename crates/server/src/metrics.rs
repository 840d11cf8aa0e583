//! The server's metrics, in Prometheus' text format (`artifact serve --metrics-listen`, the
//! second router of [`app_routers`](crate::app_routers)): requests by route and status, the
//! time to each answer's head, store query latency by query, object-storage reads and
//! their bytes, and the caches' hits and misses (indexes, look-ups, hot entries). Where the
//! proxy measures the same thing the name is the proxy's with `artifact_server_` for
//! `artifact_proxy_` (`request_seconds`, `index_cache_total`, `hot_entries_total`), so
//! one dashboard serves both faces.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::AppState;

/// Labels: pairs of name and value.
type Labels = Vec<(&'static str, String)>;

/// Every metric the server keeps.
#[derive(Debug)]
pub(crate) struct ServerMetrics {
    registry: Registry,
    /// Requests answered, by route (the router's pattern, `pages` for the pages and other
    /// paths) and status.
    requests: Family<Labels, Counter>,
    /// Seconds from a request to its answer's head.
    latency: Histogram,
    /// Seconds per store query, by query.
    store: Family<Labels, Histogram, fn() -> Histogram>,
    /// Object-storage reads and their body bytes (set from the blobs' counters at scrape).
    object_requests: Counter,
    object_bytes: Counter,
    /// The index cache's hits, misses and evictions (set at scrape).
    index_cache: Family<Labels, Counter>,
    /// Single files whose look-up (caller, project, job to archive) was remembered (`[0]`)
    /// or queried (`[1]`).
    lookups: [Counter; 2],
    /// Single files answered from the hot-entry memory (`[0]`), or read (`[1]`).
    hot: [Counter; 2],
    /// The families' members by their labels, found without building a label set (the
    /// families hash and allocate one per look-up; these are looked up per request).
    request_counters: std::sync::RwLock<HashMap<Box<str>, HashMap<u16, Counter>>>,
    query_histograms: std::sync::RwLock<HashMap<&'static str, Histogram>>,
}

fn store_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl ServerMetrics {
    pub(crate) fn new() -> ServerMetrics {
        let mut registry = Registry::with_prefix("artifact_server");
        let requests = Family::<Labels, Counter>::default();
        registry.register("requests", "Requests answered, by route and status", requests.clone());
        let latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register("request_seconds", "Time from a request to its answer's head", latency.clone());
        let store = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(store_histogram);
        registry.register("store_query_seconds", "Time per store query, by query", store.clone());
        let object_requests = Counter::default();
        registry.register(
            "object_requests",
            "Ranged reads of object storage (archives, metadata, logs in a bucket)",
            object_requests.clone(),
        );
        let object_bytes = Counter::default();
        registry.register("object_bytes", "Body bytes received by object-storage reads", object_bytes.clone());
        let index_cache = Family::<Labels, Counter>::default();
        registry.register("index_cache", "Central-directory index cache: hits, misses, evictions", index_cache.clone());
        let pair = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<Labels, Counter>::default();
            registry.register(name, help, family.clone());
            ["hit", "miss"].map(|r| family.get_or_create(&vec![("result", r.to_owned())]).clone())
        };
        let lookups = pair(
            &mut registry,
            "lookups",
            "Single-file look-ups of a caller's archive: remembered (hit) or queried (miss)",
        );
        let hot = pair(
            &mut registry,
            "hot_entries",
            "Single files answered from memory (hit) or read from the archive (miss)",
        );
        ServerMetrics {
            registry,
            requests,
            latency,
            store,
            object_requests,
            object_bytes,
            index_cache,
            lookups,
            hot,
            request_counters: Default::default(),
            query_histograms: Default::default(),
        }
    }

    /// One store query took `took`.
    pub(crate) fn store_query(&self, query: &'static str, took: Duration) {
        let known = read(&self.query_histograms).get(query).cloned();
        let histogram = known.unwrap_or_else(|| {
            let made = self.store.get_or_create(&vec![("query", query.to_owned())]).clone();
            write(&self.query_histograms).insert(query, made.clone());
            made
        });
        histogram.observe(took.as_secs_f64());
    }

    /// One answer of `status` to a request that matched `route`.
    fn answered(&self, route: &str, status: u16) {
        if let Some(counter) = read(&self.request_counters).get(route).and_then(|by| by.get(&status)) {
            counter.inc();
            return;
        }
        let counter =
            self.requests.get_or_create(&vec![("route", route.to_owned()), ("status", status.to_string())]).clone();
        counter.inc();
        write(&self.request_counters).entry(route.into()).or_default().insert(status, counter);
    }

    /// A single file's look-up was remembered, or not.
    pub(crate) fn lookup(&self, hit: bool) {
        self.lookups[usize::from(!hit)].inc();
    }

    /// A single file was answered from memory, or not.
    pub(crate) fn hot(&self, hit: bool) {
        self.hot[usize::from(!hit)].inc();
    }

    /// The text exposition, with the counters kept elsewhere brought up to date.
    fn render(&self, state: &AppState) -> String {
        let counts = state.inner.indexes.counts();
        for (event, n) in [("hit", counts.hits), ("miss", counts.misses), ("eviction", counts.evictions)] {
            set(&self.index_cache.get_or_create(&vec![("event", event.to_owned())]), n);
        }
        if let Some(reads) = state.inner.blobs.read_stats() {
            set(&self.object_requests, reads.reads);
            set(&self.object_bytes, reads.bytes);
        }
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// Brings `counter` up to `total` (counters only go up; a total read elsewhere is the truth).
fn set(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}

/// The outer layer: times every request to its answer's head and counts it by route (the
/// pattern [`RouteLayer`] left on the answer; `pages` for the fallback and answers made
/// before routing) and status. A plain tower layer: no boxed future per request.
#[derive(Clone)]
pub(crate) struct MeasureLayer(pub(crate) Arc<ServerMetrics>);

impl<S> tower::Layer<S> for MeasureLayer {
    type Service = Measure<S>;

    fn layer(&self, inner: S) -> Measure<S> {
        Measure { inner, metrics: self.0.clone() }
    }
}

/// See [`MeasureLayer`].
#[derive(Clone)]
pub(crate) struct Measure<S> {
    inner: S,
    metrics: Arc<ServerMetrics>,
}

impl<S> tower::Service<Request> for Measure<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Measured<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Measured<S::Future> {
        Measured { inner: self.inner.call(req), started: Instant::now(), metrics: Some(self.metrics.clone()) }
    }
}

pin_project_lite::pin_project! {
    /// An answer on its way, timed.
    pub(crate) struct Measured<F> {
        #[pin]
        inner: F,
        started: Instant,
        metrics: Option<Arc<ServerMetrics>>,
    }
}

impl<F, E> std::future::Future for Measured<F>
where
    F: std::future::Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let (Ok(resp), Some(metrics)) = (&out, this.metrics.take()) {
            metrics.latency.observe(this.started.elapsed().as_secs_f64());
            let route = resp.extensions().get::<MatchedPath>().map_or("pages", MatchedPath::as_str);
            metrics.answered(route, resp.status().as_u16());
        }
        std::task::Poll::Ready(out)
    }
}

/// The route layer: leaves the pattern the request matched on its answer, for
/// [`MeasureLayer`] (never the path itself: its ids and file names would make a series
/// each).
#[derive(Clone)]
pub(crate) struct RouteLayer;

impl<S> tower::Layer<S> for RouteLayer {
    type Service = Route<S>;

    fn layer(&self, inner: S) -> Route<S> {
        Route { inner }
    }
}

/// See [`RouteLayer`].
#[derive(Clone)]
pub(crate) struct Route<S> {
    inner: S,
}

impl<S> tower::Service<Request> for Route<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Routed<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Routed<S::Future> {
        let matched = req.extensions().get::<MatchedPath>().cloned();
        Routed { inner: self.inner.call(req), matched }
    }
}

pin_project_lite::pin_project! {
    /// An answer on its way, to be marked with its route.
    pub(crate) struct Routed<F> {
        #[pin]
        inner: F,
        matched: Option<MatchedPath>,
    }
}

impl<F, E> std::future::Future for Routed<F>
where
    F: std::future::Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let mut out = std::task::ready!(this.inner.poll(cx));
        if let (Ok(resp), Some(matched)) = (&mut out, this.matched.take()) {
            resp.extensions_mut().insert(matched);
        }
        std::task::Poll::Ready(out)
    }
}

/// The lock's guard, whatever a panic elsewhere left it in (these maps stay consistent).
fn read<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// `GET /metrics`: the text exposition.
pub(crate) async fn render(State(state): State<AppState>) -> Response {
    let Some(metrics) = state.inner.metrics.clone() else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let text = metrics.render(&state);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
