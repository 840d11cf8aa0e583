//! The pages for people through the proxy ([`artifact_gitlab::pages`]), read from the
//! upstream as the visitor: a signed-in browser's session token goes upstream as its
//! `PRIVATE-TOKEN`, so the upstream authorizes every page as it would the API.
//!
//! - Job lists: the upstream's job API, through `artifact-client` (one page at a time, no
//!   redirect followed, no retry: a person is waiting).
//! - A directory: the archive's central directory, read by range through the engine's
//!   index cache (the same index the single files use) once the upstream let this caller
//!   read the archive ([`Proxy::authorize`]); its paths listed as GitLab's `metadata.gz`
//!   lists them (missing parent folders added), without any path the path rule refuses.
//! - A file: the proxy's own single-file call ([`Proxy::entry`]), verified.
//! - By ref: the newest successful job of that name on the ref, in a successful pipeline,
//!   that has an archive (from the job list, newest first: GitLab's own choice, except when
//!   the newest successful pipeline lacks that job, where GitLab finds none).
//! - Sessions and grants: in the proxy's memory (`sessions.rs`).

use std::sync::Arc;

use artifact_client::{Auth, Client, Error as ClientError, Job, JobFilter, JobStatus, RetryPolicy};
use artifact_core::{ArtifactPath, JobRef};
use artifact_gitlab::pages::{
    Children, Directory, Expiry, JOBS_PER_PAGE, JobHead, JobList, JobRow, PageSource, Who, minutes_of, unix_of,
};
use artifact_gitlab::{ApiError, ApiResult, Credential, Form, Presented, Target, credential_headers};
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::sessions::{Grant, Sessions};
use crate::tree::{ByIndex, listable};
use crate::{Authorization, Proxy, SetupError, engine_api_error};

/// The largest upstream JSON document a page reads (a page of 100 jobs is a few hundred
/// KiB).
const JSON_MAX: usize = 8 << 20;

/// Pages of the job list (100 jobs each) looked through for a job by ref and name.
const LATEST_PAGES: u64 = 10;

/// The largest sign-in form read (a few hundred bytes in practice).
const FORM_MAX: usize = 64 << 10;

/// The pages for people of a [`Proxy`] (`artifact_gitlab::pages`: folders of an archive,
/// file pages, job lists, signing in), read from its upstream as each visitor. Sessions
/// and grants live in this value's memory: one process's, so a restart signs everyone out
/// and replicas behind a balancer each keep their own (route a browser to one, or sign in
/// again). [`UpstreamPages::route`] answers what is the pages', inside the
/// [`guard`](artifact_gitlab::guard::guard) middleware (the request-path rule) that every
/// request of a proxy passes first:
///
/// ```no_run
/// # fn run() -> Result<(), artifact_proxy::SetupError> {
/// use artifact_proxy::{Proxy, ProxyConfig, UpstreamPages};
///
/// let proxy = Proxy::new(ProxyConfig::new("https://gitlab.example.com")?)?;
/// let pages = std::sync::Arc::new(UpstreamPages::new(proxy.clone())?);
/// let app: axum::Router = axum::Router::new()
///     .fallback(move |req: axum::extract::Request| {
///         let (pages, proxy) = (pages.clone(), proxy.clone());
///         async move {
///             match pages.route(req).await {
///                 Ok(answered) => answered,             // a page, or the artifacts origin's 404
///                 Err(req) => proxy.answer(req).await, // the API: single files, or the upstream
///             }
///         }
///     })
///     .layer(axum::middleware::from_fn(artifact_gitlab::guard::guard));
/// # Ok(()) }
/// ```
pub struct UpstreamPages {
    proxy: Arc<Proxy>,
    sessions: Sessions,
    /// Every visitor's client is this one's with the visitor's credential (one connection
    /// pool), following no redirect, retrying nothing (a person is waiting).
    client: Client,
}

/// Counts, never a token.
impl std::fmt::Debug for UpstreamPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPages").field("sessions", &self.sessions).finish_non_exhaustive()
    }
}

impl UpstreamPages {
    /// The pages of `proxy`, with no session yet.
    pub fn new(proxy: Arc<Proxy>) -> Result<UpstreamPages, SetupError> {
        let client = Client::builder(proxy.upstream())
            .extra_roots(proxy.extra_roots().to_vec())
            .max_json(JSON_MAX)
            .max_redirects(0)
            .retry(RetryPolicy::never())
            .build()
            .map_err(|e| SetupError(format!("the pages' upstream client: {e}")))?;
        Ok(UpstreamPages { proxy, sessions: Sessions::default(), client })
    }

    /// Answers `req` if it is the pages' (a page, signing in or out), or if it came to the
    /// artifacts origin ([`ProxyConfig::artifacts_origin`](crate::ProxyConfig), which
    /// serves the pages' files and nothing else: `404`); else hands it back, untouched.
    pub async fn route(&self, req: Request) -> Result<Response, Request> {
        if artifact_gitlab::pages::is_page(req.uri().path()) {
            return Ok(self.visit(req).await);
        }
        if artifact_gitlab::pages::on_artifacts_origin(self.proxy.artifacts_origin(), req.headers()) {
            return Ok(ApiError::NotFound("Not Found").into_response());
        }
        Err(req)
    }

    /// Answers a page request (see [`artifact_gitlab::pages::visit`]), its body (a sign-in
    /// form) read up to 64 KiB.
    pub async fn visit(&self, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let Ok(body) = axum::body::to_bytes(body, FORM_MAX).await else {
            return ApiError::InvalidParam("the form is too large".into()).into_response();
        };
        artifact_gitlab::pages::visit(self, &parts.method, &parts.uri, &parts.headers, &body).await
    }

    /// The upstream's API as `who`: a session's or grant's token as `PRIVATE-TOKEN` (and
    /// nothing else), else the request's own credential in the form it came in, and its
    /// `Sudo` (left out when no header can carry it).
    fn client(&self, who: &Who) -> ApiResult<Client> {
        let auth = match &who.credential {
            Some(Credential::Personal(token)) => Auth::Private(token.clone()),
            Some(_) => return Err(ApiError::Unauthorized),
            None => match Form::read(&who.headers, &who.query) {
                Some((Form::PrivateToken, token)) => Auth::Private(token.to_owned()),
                Some((Form::Bearer, token)) => Auth::OAuth(token.to_owned()),
                Some((Form::JobToken, token)) => Auth::Job(token.to_owned()),
                None => Auth::None,
            },
        };
        let mut client = self.client.sharing().auth(auth);
        if who.credential.is_none()
            && let Some(sudo) = Presented::from_request(&Method::GET, &who.headers, &who.query).sudo
            && !sudo.is_empty()
            && axum::http::HeaderValue::from_str(&sudo).is_ok()
        {
            client = client.sudo(sudo);
        }
        // A token no header can carry: the upstream would not know it either.
        client.build().map_err(|_| ApiError::Unauthorized)
    }

    /// What the upstream answered a page's API read with, counted.
    fn counted<T>(&self, answer: Result<T, ClientError>) -> ApiResult<T> {
        let status = match &answer {
            Ok(_) => 200,
            Err(e) => e.status().map_or(0, |s| s.as_u16()),
        };
        self.proxy.count_upstream("pages", status);
        answer.map_err(upstream_error)
    }

    /// The visitor as the proxy's calls take a caller: a request head holding its
    /// credential as headers (a token in the page's query as its header form, with its
    /// `Sudo`; or a session's or grant's token as `PRIVATE-TOKEN`, alone), and with
    /// `conditions` the request's own conditions, ranges and encodings too.
    fn caller(who: &Who, conditions: bool) -> Parts {
        let mut headers = if conditions { who.headers.clone() } else { HeaderMap::new() };
        for name in artifact_gitlab::credentials::CREDENTIAL_HEADERS {
            headers.remove(name);
        }
        headers.remove(header::COOKIE);
        match &who.credential {
            Some(Credential::Personal(token)) => {
                if let Ok(value) = token.parse() {
                    headers.insert("private-token", value);
                }
            }
            Some(_) => {}
            None => headers.extend(credential_headers(&who.headers, &who.query)),
        }
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.method = if who.head && conditions { Method::HEAD } else { Method::GET };
        parts.headers = headers;
        parts
    }

    /// The upstream's yes to `who` reading job `job`'s archive: the caller it was asked
    /// as, and the grant (where the archive is read).
    async fn authorized(&self, who: &Who, project: &str, job: i64) -> ApiResult<(Parts, crate::Grant)> {
        let caller = UpstreamPages::caller(who, false);
        let target = Target { project: project.to_owned(), job: JobRef::Id(job as u64), file: None };
        match self.proxy.authorize(&caller, &target).await {
            Authorization::Granted(grant) => Ok((caller, grant)),
            Authorization::Refused(refusal) => Err(refused(refusal).await),
            // An upstream that cannot serve ranges: its archive cannot be read.
            Authorization::Forward => Err(ApiError::Upstream(StatusCode::BAD_GATEWAY)),
        }
    }
}

/// What a failed read of the upstream's API is for a page: GitLab's own errors where it
/// says which.
fn upstream_error(e: ClientError) -> ApiError {
    match &e {
        ClientError::Api { status, message, .. } => match *status {
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
            StatusCode::FORBIDDEN => ApiError::Forbidden(None),
            StatusCode::NOT_FOUND if message.contains("Project Not Found") => ApiError::ProjectNotFound,
            StatusCode::NOT_FOUND => ApiError::NotFound("Not found"),
            s if s.is_server_error() => ApiError::Upstream(StatusCode::BAD_GATEWAY),
            s => ApiError::Upstream(s),
        },
        ClientError::Transport { source, .. } if source.is_timeout() => {
            tracing::warn!(error = %e, "an upstream page request timed out");
            ApiError::Upstream(StatusCode::GATEWAY_TIMEOUT)
        }
        _ => {
            tracing::warn!(error = %e, "an upstream page request failed");
            ApiError::Upstream(StatusCode::BAD_GATEWAY)
        }
    }
}

/// What the proxy's refusal to read an archive is for a page: the upstream's answer
/// (GitLab's body says which `404` it is), or the proxy's own (`400`, `502`).
async fn refused(refusal: Response) -> ApiError {
    let status = refusal.status();
    let body = axum::body::to_bytes(refusal.into_body(), 64 << 10).await.unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("message").or_else(|| v.get("error")).and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_default();
    match status {
        StatusCode::BAD_REQUEST => ApiError::InvalidParam(message),
        status => upstream_error(ClientError::Api { method: "GET".into(), url: String::new(), status, message }),
    }
}

/// Whether a job has an archive to browse: unexpired, or kept after its expiry (an
/// `archive` row in `artifacts`, GitLab's "Keep artifacts from most recent successful
/// jobs").
fn has_archive(job: &Job) -> bool {
    job.artifacts_file.is_some() || job.artifacts.iter().any(|f| f.file_type == "archive")
}

impl PageSource for UpstreamPages {
    async fn open_session(&self, token: &str) -> ApiResult<String> {
        self.sessions.open(token).map_err(ApiError::internal)
    }

    async fn session(&self, id: &str) -> ApiResult<Option<Credential>> {
        Ok(self.sessions.token(id).map(Credential::Personal))
    }

    async fn close_session(&self, id: &str) -> ApiResult<()> {
        self.sessions.close(id);
        Ok(())
    }

    async fn grant(&self, _session: &str, credential: &Credential, project: &str, job: i64) -> ApiResult<String> {
        let Credential::Personal(token) = credential else {
            return Err(ApiError::Unauthorized);
        };
        let grant = Grant { token: token.clone(), project: project.to_owned(), job };
        self.sessions.grant(grant).map_err(ApiError::internal)
    }

    async fn granted(&self, id: &str) -> ApiResult<Option<(Credential, String, i64)>> {
        Ok(self.sessions.granted(id).map(|g| (Credential::Personal(g.token), g.project, g.job)))
    }

    fn artifacts_origin(&self) -> Option<&str> {
        self.proxy.artifacts_origin()
    }

    fn base(&self, headers: &HeaderMap) -> String {
        self.proxy.base(headers)
    }

    async fn signs_in(&self, token: &str) -> ApiResult<bool> {
        let who = Who {
            headers: HeaderMap::new(),
            query: artifact_gitlab::Query::parse(None),
            credential: Some(Credential::Personal(token.to_owned())),
            head: false,
        };
        match self.counted(self.client(&who)?.current_user().await) {
            Ok(_) => Ok(true),
            Err(ApiError::Unauthorized | ApiError::Forbidden(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn readable(&self, who: &Who, project: &str, job: i64) -> ApiResult<()> {
        self.authorized(who, project, job).await.map(drop)
    }

    async fn directory(&self, who: &Who, project: &str, job: i64, dir: &str, page: usize) -> ApiResult<Directory> {
        let (caller, granted) = self.authorized(who, project, job).await?;
        let headers = if granted.credentials { caller.headers } else { HeaderMap::new() };
        let index = self.proxy.archive_index(&granted, &headers).await.map_err(engine_api_error)?;
        let (trees, dir) = (self.proxy.trees.clone(), dir.to_owned());
        // Building a large archive's tree takes a moment: off the async workers.
        let listed = tokio::task::spawn_blocking(move || {
            let tree = trees.of(ByIndex(index.clone()), || Ok(listable(&index)))?;
            Children::of(&dir).with(&tree).page(page, Some(index.central_directory().archive_size()))
        })
        .await;
        listed.map_err(ApiError::internal)?
    }

    /// The upstream's job, asked as the visitor (one API request); `None` if that failed.
    async fn heading(&self, who: &Who, project: &str, job: i64) -> Option<JobHead> {
        let client = self.client(who).ok()?;
        let found = match self.counted(client.job(project, job as u64).await) {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(error = ?e, "no head for a page: the upstream's job");
                return None;
            }
        };
        let expiry = match found.artifacts_expire_at.as_deref() {
            None => Expiry::Never,
            Some(iso) => {
                // The job's archive is readable (the page's own call asks): past its
                // expiry, it is kept.
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                match unix_of(iso) {
                    Some(at) if at <= now as i64 => Expiry::Kept,
                    _ => Expiry::At(minutes_of(iso)),
                }
            }
        };
        Some(JobHead {
            name: found.name,
            id: found.id as i64,
            status: found.status.as_str().to_owned(),
            ref_name: found.ref_name.unwrap_or_default(),
            pipeline: found.pipeline.map_or(0, |p| p.id as i64),
            expiry,
        })
    }

    async fn jobs(&self, who: &Who, project: &str, pipeline: Option<i64>, page: u64) -> ApiResult<JobList> {
        let client = self.client(who)?;
        let filter = JobFilter {
            include_retried: pipeline.is_some(),
            per_page: Some(JOBS_PER_PAGE as u32),
            ..Default::default()
        };
        let listed = match pipeline {
            Some(id) => client.pipeline_jobs_page(project, id as u64, &filter, page).await,
            None => client.jobs_page(project, &filter, page).await,
        };
        let listed = self.counted(listed)?;
        let pages = listed.pages(page);
        let rows = listed
            .items
            .into_iter()
            .map(|job| JobRow {
                browsable: has_archive(&job),
                id: job.id as i64,
                name: job.name,
                stage: job.stage.unwrap_or_default(),
                ref_name: job.ref_name.unwrap_or_default(),
                pipeline: job.pipeline.map_or(0, |p| p.id as i64),
                status: job.status.as_str().to_owned(),
                finished: job.finished_at.as_deref().map(minutes_of),
            })
            .collect();
        Ok(JobList { project: project.to_owned(), rows, pages })
    }

    async fn latest(&self, who: &Who, project: &str, ref_name: &str, job: &str) -> ApiResult<i64> {
        let client = self.client(who)?;
        let filter = JobFilter { scope: vec![JobStatus::Success], per_page: Some(100), ..Default::default() };
        for page in 1..=LATEST_PAGES {
            let listed = self.counted(client.jobs_page(project, &filter, page).await)?;
            let found = listed.items.iter().find(|j| {
                let succeeded = j.pipeline.as_ref().is_some_and(|p| p.status.as_deref() == Some("success"));
                j.name == job && j.ref_name.as_deref() == Some(ref_name) && succeeded && has_archive(j)
            });
            if let Some(found) = found {
                return Ok(found.id as i64);
            }
            if listed.pages(page) <= page {
                break;
            }
        }
        Err(ApiError::NotFound("Not found"))
    }

    async fn entry(&self, who: &Who, project: &str, job: i64, path: &ArtifactPath) -> ApiResult<Response> {
        let caller = UpstreamPages::caller(who, true);
        let target = Target { project: project.to_owned(), job: JobRef::Id(job as u64), file: None };
        match self.proxy.entry(&caller, &target, path).await {
            Some(answer) => Ok(answer),
            // An upstream that cannot serve ranges answers the file itself, as the API's
            // single-file request would be forwarded: asked as the visitor, below the
            // upstream's prefix, the path one segment at a time.
            None => {
                let segment = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
                let file = path.as_str().split('/').map(segment).collect::<Vec<_>>().join("/");
                let uri = format!("/api/v4/projects/{}/jobs/{job}/artifacts/{file}", segment(project));
                let mut request = Request::new(axum::body::Body::empty());
                *request.uri_mut() =
                    uri.parse().map_err(|_| ApiError::InvalidParam("artifact_path is invalid".into()))?;
                *request.method_mut() = caller.method;
                *request.headers_mut() = caller.headers;
                Ok(crate::forward::upstream(&self.proxy, request).await)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_refusals_read_as_gitlabs_errors() {
        let api = |status: StatusCode, message: &str| ClientError::Api {
            method: "GET".into(),
            url: String::new(),
            status,
            message: message.into(),
        };
        assert!(matches!(
            upstream_error(api(StatusCode::NOT_FOUND, "404 Project Not Found")),
            ApiError::ProjectNotFound
        ));
        assert!(matches!(upstream_error(api(StatusCode::NOT_FOUND, "404 Not found")), ApiError::NotFound(_)));
        assert!(matches!(upstream_error(api(StatusCode::UNAUTHORIZED, "401 Unauthorized")), ApiError::Unauthorized));
        assert!(matches!(
            upstream_error(api(StatusCode::INTERNAL_SERVER_ERROR, "")),
            ApiError::Upstream(StatusCode::BAD_GATEWAY)
        ));
        assert!(matches!(upstream_error(api(StatusCode::FOUND, "")), ApiError::Upstream(StatusCode::FOUND)));
        assert_eq!(minutes_of("2026-12-04T18:51:23.456Z"), "2026-12-04 18:51");
    }
}
