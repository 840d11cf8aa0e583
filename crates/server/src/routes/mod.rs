//! The router: GitLab's paths under `/api/v4`, one module per resource.
//!
//! Every handler makes one trip to the blocking pool ([`blocking`]) for all its store and
//! blob work, so a slow disk never stalls the async workers and a request costs one thread
//! hand-off.
//!
//! One exception, on purpose: the hot path of a single file (its look-up remembered, its
//! archive open and indexed, the entry verified) answers on the async worker. It reads at
//! most a local header and 64 KiB of an archive file it already holds open, which the page
//! cache serves; the trip to the pool costs more than that read (`benches/README.md` §7:
//! 20,265 requests/s with the trip, 51,589 without). Anything larger streams from the pool,
//! and anything not yet known (a look-up, an index, a verdict) goes to the pool first.

mod actions;
pub(crate) mod artifacts;
pub(crate) mod jobs;
mod meta;
mod pages;

pub use self::meta::GITLAB_VERSION;
pub(crate) use artifact_gitlab::guard::guard;
pub(crate) use artifact_gitlab::target::id_param;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::routing::{get, post};

use crate::auth::{Access, Caller, Presented, Routes, authenticate};
use crate::error::{ApiError, ApiResult};
use crate::query::Query;
use crate::state::AppState;
use crate::time::Timestamp;

/// The whole API as a router, and, sharing its state, a router that answers
/// `GET /metrics` with its metrics in Prometheus' text format (to serve on another
/// address): `404` there unless the state keeps metrics
/// ([`AppConfig::metrics`](crate::AppConfig::metrics)).
pub fn app_routers(state: AppState) -> (Router, Router) {
    let metrics = Router::new().route("/metrics", get(crate::metrics::render)).with_state(state.clone());
    (app(state), metrics)
}

/// The whole API as a router.
pub fn app(state: AppState) -> Router {
    // Full paths rather than `nest`: handlers read the raw path (refs with `/`, artifact
    // paths decoded once), and links must show the path as requested.
    const P: &str = "/api/v4/projects/{id}";
    let at = |rest: &str| format!("{P}{rest}");
    let metrics = state.inner.metrics.clone();
    let router = Router::new()
        .route("/-/health", get(meta::health))
        .route("/api/v4/version", get(meta::version))
        .route("/api/v4/user", get(meta::user))
        .route("/api/v4/job", get(meta::job))
        .route(P, get(meta::project))
        .route(&at("/jobs"), get(jobs::list_project_jobs))
        .route(&at("/jobs/{job_id}"), get(jobs::get_job))
        .route(&at("/pipelines/{pipeline_id}/jobs"), get(jobs::list_pipeline_jobs))
        .route(&at("/pipelines/{pipeline_id}/bridges"), get(jobs::list_pipeline_bridges))
        .route(&at("/jobs/{job_id}/trace"), get(jobs::trace))
        .route(&at("/jobs/{job_id}/cancel"), post(actions::cancel))
        .route(&at("/jobs/{job_id}/retry"), post(actions::retry))
        .route(&at("/jobs/{job_id}/erase"), post(actions::erase))
        .route(&at("/jobs/{job_id}/play"), post(actions::play))
        .route(&at("/jobs/{job_id}/artifacts"), get(artifacts::archive_by_id).delete(actions::delete_artifacts))
        // A GET of an entry named `keep` must not hit the keep action.
        .route(&at("/jobs/{job_id}/artifacts/keep"), get(artifacts::entry_by_id).post(actions::keep))
        // The tree (an addition): a root file named `tree` is not a single file here.
        .route(&at("/jobs/{job_id}/artifacts/tree"), get(artifacts::tree_by_id))
        .route(&at("/jobs/{job_id}/artifacts/{*artifact_path}"), get(artifacts::entry_by_id))
        // An empty artifact path breaks the path rule: 400, not a missing route.
        .route(&at("/jobs/{job_id}/artifacts/"), get(artifacts::entry_by_id))
        .route(&at("/jobs/artifacts/{*rest}"), get(artifacts::by_ref))
        // Pages for people at GitLab's web URLs; any other path is the API's 404.
        .fallback(pages::pages);
    // Measured (when metrics are kept): the route layer names the pattern matched, the
    // outermost layer times every answer and counts it by that route and its status.
    let router = match &metrics {
        Some(_) => router.route_layer(crate::metrics::RouteLayer),
        None => router,
    };
    let router = router
        .layer(axum::middleware::from_fn_with_state(state.clone(), files_only_on_artifacts_origin))
        .layer(axum::middleware::from_fn(artifact_gitlab::guard::read_body))
        .layer(axum::middleware::from_fn(guard))
        .with_state(state);
    match metrics {
        Some(metrics) => router.layer(crate::metrics::MeasureLayer(metrics)),
        None => router,
    }
}

/// The artifacts origin serves archives' files and nothing else: the API there is `404`,
/// so that a report opened there (outside any sandbox) reaches no API on its own origin.
async fn files_only_on_artifacts_origin(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if req.uri().path().starts_with("/api/")
        && artifact_gitlab::pages::on_artifacts_origin(state.inner.artifacts_origin.as_deref(), req.headers())
    {
        return ApiError::NotFound("Not Found").into_response();
    }
    next.run(req).await
}

pub(crate) use artifact_gitlab::base_url;

/// What every handler needs from the request besides its path parameters.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) state: AppState,
    pub(crate) headers: HeaderMap,
    pub(crate) query: Query,
    /// The credential, whether the request writes, and `Sudo`.
    pub(crate) presented: Presented,
    /// The absolute URL of the request, without the query.
    pub(crate) url: String,
    /// The external base URL, without a trailing slash.
    pub(crate) base: String,
    pub(crate) head: bool,
}

/// axum's `Path`, answering a segment that does not decode (invalid UTF-8, as `%FF`) the
/// way GitLab's malformed-strings middleware answers one: `400` with the plain text
/// `Bad Request`, before anything else is looked at.
pub(crate) struct Path<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = axum::response::Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Path<T>, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => {
                tracing::debug!(%rejection, "a path segment did not decode");
                Err(malformed_request())
            }
        }
    }
}

/// GitLab's answer to a request holding a malformed string: `400`, `Bad Request` as text.
pub(crate) fn malformed_request() -> axum::response::Response {
    use axum::response::IntoResponse;
    let plain = [(axum::http::header::CONTENT_TYPE, "text/plain")];
    (axum::http::StatusCode::BAD_REQUEST, plain, "Bad Request").into_response()
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Ctx, ApiError> {
        let query = Query::parse(parts.uri.query());
        let base = base_url(state.inner.base_url.as_deref(), &parts.headers);
        Ok(Ctx {
            state: state.clone(),
            presented: Presented::from_request(&parts.method, &parts.headers, &query),
            headers: parts.headers.clone(),
            url: format!("{base}{}", parts.uri.path()),
            base,
            head: parts.method == axum::http::Method::HEAD,
            query,
        })
    }
}

/// Who asks for an archive or one of its entries, and how: the caller of the domain-level
/// calls that the API's handlers and the pages both make (`artifacts::entry`). What the
/// request names (project, job, path) is parsed before, into the calls' arguments.
#[derive(Debug, Clone)]
pub(crate) struct Asker {
    pub(crate) state: AppState,
    /// The credential and `Sudo` (never a write).
    pub(crate) presented: Presented,
    /// The request's headers: its conditions, ranges and encodings.
    pub(crate) headers: HeaderMap,
    pub(crate) head: bool,
}

impl Asker {
    /// Authenticates and loads the project (on the blocking pool).
    pub(crate) fn access(&self, routes: Routes, project: &str) -> ApiResult<Access> {
        let caller = authenticate(&*self.state.inner.store, &self.presented, routes)?;
        Access::load(&*self.state.inner.store, caller, project)
    }
}

impl Ctx {
    /// The request's caller, for the domain-level calls.
    pub(crate) fn into_asker(self) -> Asker {
        Asker { state: self.state, presented: self.presented, headers: self.headers, head: self.head }
    }

    /// Authenticates and loads the project (one call on the blocking pool).
    pub(crate) fn access(&self, routes: Routes, project: &str) -> ApiResult<Access> {
        let caller = self.caller(routes)?;
        Access::load(&*self.state.inner.store, caller, project)
    }

    /// Authenticates: 401 comes before any parameter check, as in GitLab.
    pub(crate) fn caller(&self, routes: Routes) -> ApiResult<Caller> {
        authenticate(&*self.state.inner.store, &self.presented, routes)
    }

    pub(crate) fn render(&self) -> crate::entities::Render<'_> {
        crate::entities::Render { base: &self.base, now: Timestamp::now() }
    }
}

/// Runs blocking work (store queries, file opens) off the async workers. A panic inside is
/// re-raised here, so the request guard answers 500 for it like for any other panic.
pub(crate) async fn blocking<T, F>(f: F) -> ApiResult<T>
where
    F: FnOnce() -> ApiResult<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(ApiError::internal(e)),
    }
}
