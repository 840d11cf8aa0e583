//! The pages for people in proxy mode (`crate::routes::browse`), read from the upstream as
//! the visitor: a signed-in browser's session token goes upstream as its `PRIVATE-TOKEN`,
//! so the upstream authorizes every page as it would the API.
//!
//! - Job lists: the upstream's job API (`/projects/:id/jobs`, `/pipelines/:id/jobs`).
//! - A directory: the archive's central directory, read by range through the engine's
//!   index cache (the same index the single files use) once the upstream let this caller
//!   read the archive; its paths listed as GitLab's `metadata.gz` lists them (missing
//!   parent folders added), without any path the path rule refuses.
//! - A file: the proxy's single-file path (endpoint 7), verified.
//! - By ref: the newest successful job of that name on the ref, in a successful pipeline,
//!   that has an archive (from the job list, newest first: GitLab's own choice, except when
//!   the newest successful pipeline lacks that job, where GitLab finds none).

use std::sync::Arc;

use artifact_core::ArtifactPath;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use artifact_gitlab::credential_headers;
use artifact_proxy::engine_api_error;

use super::Pages;
use crate::auth::Credential;
use crate::error::{ApiError, ApiResult};
use crate::routes::artifacts::target::Target;
use crate::routes::browse::{Backend, Children, Directory, JOBS_PER_PAGE, JobList, JobRow, Listed, Who, minutes_of};
use crate::sessions::Grant;

/// An archive's index as the key of its listable paths: the same `Arc` while the index
/// cache keeps it (a reloaded index may be another version of the archive, and gets its
/// own).
#[derive(Debug)]
pub(crate) struct ByIndex(Arc<artifact_core::Index>);

impl PartialEq for ByIndex {
    fn eq(&self, other: &ByIndex) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Every path of the archive as GitLab's `metadata.gz` lists it (missing parent folders
/// added as `dir/`, byte-wise order, the first of equal names: the one served), without
/// the paths that are not UTF-8 or that the path rule refuses; each with its size and time.
fn listable(index: &artifact_core::Index) -> Listed {
    let entries: Vec<artifact_core::Entry> = index.central_directory().entries().filter_map(Result::ok).collect();
    let tree = artifact_core::metadata::tree(&entries);
    let mut out = Listed::default();
    let mut last: &[u8] = b"";
    for (path, entry) in tree.iter() {
        if std::mem::replace(&mut last, path) == path {
            continue;
        }
        let Ok(path) = std::str::from_utf8(path) else { continue };
        if ArtifactPath::new(path.trim_end_matches('/')).is_err() {
            continue;
        }
        let modified = entry.map(|e| e.modified_unix()).filter(|t| *t != 0);
        out.push(path, entry.map(|e| e.size()), modified);
    }
    out
}

/// The largest upstream JSON document a page reads.
const JSON_MAX: usize = 8 << 20;

/// Pages of the job list (100 jobs each) looked through for a job by ref and name.
const LATEST_PAGES: u64 = 10;

/// A page request to the proxy.
pub(crate) async fn visit(pages: &Arc<Pages>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // A sign-in form is a few hundred bytes.
    let body = match axum::body::to_bytes(body, 64 << 10).await {
        Ok(body) => body,
        Err(_) => return crate::routes::malformed_request(),
    };
    crate::routes::browse::visit(&Upstream(pages.clone()), &parts.method, &parts.uri, &parts.headers, &body).await
}

/// The upstream, as the pages read it.
struct Upstream(Arc<Pages>);

/// A job as the upstream's API lists it (what a page shows of it).
#[derive(Debug, Deserialize)]
struct UpstreamJob {
    id: i64,
    #[serde(default)]
    name: String,
    #[serde(default)]
    stage: String,
    #[serde(default, rename = "ref")]
    ref_name: String,
    #[serde(default)]
    status: String,
    finished_at: Option<String>,
    pipeline: Option<UpstreamPipeline>,
    /// Present when the job has an unexpired archive.
    artifacts_file: Option<serde_json::Value>,
    /// The files the job can still serve: an `archive` row also for an expired archive
    /// that its project keeps (GitLab's "Keep artifacts from most recent successful jobs").
    #[serde(default)]
    artifacts: Vec<UpstreamFile>,
}

#[derive(Debug, Deserialize)]
struct UpstreamFile {
    #[serde(default)]
    file_type: String,
}

impl UpstreamJob {
    /// Whether the job has an archive to browse: unexpired, or kept after its expiry.
    fn has_archive(&self) -> bool {
        self.artifacts_file.as_ref().is_some_and(|f| !f.is_null())
            || self.artifacts.iter().any(|f| f.file_type == "archive")
    }
}

#[derive(Debug, Deserialize)]
struct UpstreamPipeline {
    id: i64,
    #[serde(default)]
    status: String,
}

impl Upstream {
    /// The project's API path: `/api/v4/projects/<id, encoded>`.
    fn project(&self, project: &str) -> String {
        format!("/api/v4/projects/{}", utf8_percent_encode(project, NON_ALPHANUMERIC))
    }

    /// The upstream's yes to `who` reading job `job`'s archive (asked as for a file): the
    /// request that asked, and where the archive is read.
    async fn authorized(
        &self,
        who: &Who,
        project: &str,
        job: i64,
    ) -> ApiResult<(axum::http::request::Parts, artifact_proxy::Grant)> {
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = format!("{}/jobs/{job}/artifacts/-", self.project(project))
            .parse()
            .map_err(|_| ApiError::NotFound("Not found"))?;
        *request.headers_mut() = upstream_credentials(who);
        let (parts, _) = request.into_parts();
        let target = Target::by_id(parts.uri.path())?;
        match self.0.proxy.grant(&parts, &target).await {
            Ok((_, granted)) => Ok((parts, granted)),
            Err(Some(refusal)) => {
                let status = refusal.status();
                let body = axum::body::to_bytes(refusal.into_body(), JSON_MAX).await.unwrap_or_default();
                Err(refused(status, &body))
            }
            // An upstream that cannot serve ranges: its archive cannot be read.
            Err(None) => Err(ApiError::Upstream(StatusCode::BAD_GATEWAY)),
        }
    }

    /// A JSON document of the upstream's API, asked as `who`, and its headers.
    async fn get<T: serde::de::DeserializeOwned>(&self, who: &Who, path_and_query: &str) -> ApiResult<(T, HeaderMap)> {
        let proxy = &self.0.proxy;
        let mut request = proxy.client().get(format!("{}{path_and_query}", proxy.upstream()));
        for (name, value) in upstream_credentials(who).iter() {
            request = request.header(name, value);
        }
        let resp = request.send().await.map_err(|e| {
            proxy.count_upstream("pages", 0);
            let timeout = e.is_timeout();
            tracing::warn!(timeout, error = %e.without_url(), "an upstream page request failed");
            ApiError::Upstream(if timeout { StatusCode::GATEWAY_TIMEOUT } else { StatusCode::BAD_GATEWAY })
        })?;
        let status = resp.status();
        proxy.count_upstream("pages", status.as_u16());
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| ApiError::Upstream(StatusCode::BAD_GATEWAY))?;
            if body.len() + chunk.len() > JSON_MAX {
                return Err(ApiError::Upstream(StatusCode::BAD_GATEWAY));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(refused(status, &body));
        }
        let value = serde_json::from_slice(&body).map_err(|e| {
            tracing::warn!(error = %e, "the upstream answered a page request with unexpected JSON");
            ApiError::Upstream(StatusCode::BAD_GATEWAY)
        })?;
        Ok((value, headers))
    }
}

/// The credentials a page's request sends upstream as headers: the request's own (a token
/// in its query as its header form), or the session's or grant's token as `PRIVATE-TOKEN`.
fn upstream_credentials(who: &Who) -> HeaderMap {
    let mut headers = credential_headers(&who.headers, &who.query);
    if let Some(Credential::Personal(token)) = &who.credential
        && let Ok(value) = token.parse()
    {
        headers.insert("private-token", value);
    }
    headers
}

/// What an upstream's refusal is for a page: GitLab's own errors where it says which.
fn refused(status: StatusCode, body: &[u8]) -> ApiError {
    match status {
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
        StatusCode::FORBIDDEN => ApiError::Forbidden(None),
        StatusCode::NOT_FOUND if body.windows(17).any(|w| w == b"Project Not Found") => ApiError::ProjectNotFound,
        StatusCode::NOT_FOUND => ApiError::NotFound("Not found"),
        s if s.is_server_error() => ApiError::Upstream(StatusCode::BAD_GATEWAY),
        s => ApiError::Upstream(s),
    }
}

/// The number of pages of an upstream listing: `X-Total-Pages`, or (GitLab leaves it out
/// past 10,000 rows) one more than this page while there is a next one.
fn pages(headers: &HeaderMap, page: u64) -> u64 {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    match header("x-total-pages").and_then(|t| t.parse::<u64>().ok()) {
        Some(total) => total.max(1),
        None if header("x-next-page").is_some_and(|n| !n.is_empty()) => page + 1,
        None => page,
    }
}

impl Backend for Upstream {
    async fn open_session(&self, token: &str) -> ApiResult<String> {
        self.0.sessions.open(token).map_err(ApiError::internal)
    }

    async fn session(&self, id: &str) -> ApiResult<Option<Credential>> {
        Ok(self.0.sessions.token(id).map(Credential::Personal))
    }

    async fn close_session(&self, id: &str) -> ApiResult<()> {
        self.0.sessions.close(id);
        Ok(())
    }

    async fn grant(&self, _session: &str, credential: &Credential, project: &str, job: i64) -> ApiResult<String> {
        let Credential::Personal(token) = credential else {
            return Err(ApiError::Unauthorized);
        };
        let grant = Grant { token: token.clone(), project: project.to_owned(), job };
        self.0.sessions.grant(grant).map_err(ApiError::internal)
    }

    async fn granted(&self, id: &str) -> ApiResult<Option<(Credential, String, i64)>> {
        Ok(self.0.sessions.granted(id).map(|g| (Credential::Personal(g.token), g.project, g.job)))
    }

    fn artifacts_origin(&self) -> Option<&str> {
        self.0.proxy.artifacts_origin()
    }

    fn base(&self, headers: &HeaderMap) -> String {
        self.0.proxy.base(headers)
    }

    async fn signs_in(&self, token: &str) -> ApiResult<bool> {
        let credential = Some(Credential::Personal(token.to_owned()));
        let who = Who { headers: HeaderMap::new(), query: crate::query::Query::parse(None), credential, head: false };
        match self.get::<serde_json::Value>(&who, "/api/v4/user").await {
            Ok(_) => Ok(true),
            Err(ApiError::Unauthorized | ApiError::Forbidden(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn readable(&self, who: &Who, project: &str, job: i64) -> ApiResult<()> {
        self.authorized(who, project, job).await.map(drop)
    }

    async fn directory(&self, who: &Who, project: &str, job: i64, dir: &str, page: usize) -> ApiResult<Directory> {
        let (parts, granted) = self.authorized(who, project, job).await?;
        let headers = if granted.credentials { parts.headers } else { HeaderMap::new() };
        let (pages, dir) = (self.0.clone(), dir.to_owned());
        let listed = tokio::task::spawn_blocking(move || {
            let index = pages.proxy.archive_index(&granted, &headers).map_err(engine_api_error)?;
            let tree = pages.trees.of(ByIndex(index.clone()), || Ok(listable(&index)))?;
            Children::of(&dir).with(&tree).page(page, Some(index.central_directory().archive_size()))
        })
        .await;
        listed.map_err(ApiError::internal)?
    }

    async fn jobs(&self, who: &Who, project: &str, pipeline: Option<i64>, page: u64) -> ApiResult<JobList> {
        let path = match pipeline {
            Some(id) => format!(
                "{}/pipelines/{id}/jobs?include_retried=true&per_page={JOBS_PER_PAGE}&page={page}",
                self.project(project)
            ),
            None => format!("{}/jobs?per_page={JOBS_PER_PAGE}&page={page}", self.project(project)),
        };
        let (jobs, headers) = self.get::<Vec<UpstreamJob>>(who, &path).await?;
        let rows = jobs
            .into_iter()
            .map(|job| JobRow {
                browsable: job.has_archive(),
                id: job.id,
                name: job.name,
                stage: job.stage,
                ref_name: job.ref_name,
                pipeline: job.pipeline.map_or(0, |p| p.id),
                status: job.status,
                finished: job.finished_at.as_deref().map(minutes_of),
            })
            .collect();
        Ok(JobList { project: project.to_owned(), rows, pages: pages(&headers, page) })
    }

    async fn latest(&self, who: &Who, project: &str, ref_name: &str, job: &str) -> ApiResult<i64> {
        let at = self.project(project);
        for page in 1..=LATEST_PAGES {
            let path = format!("{at}/jobs?scope%5B%5D=success&per_page=100&page={page}");
            let (jobs, headers) = self.get::<Vec<UpstreamJob>>(who, &path).await?;
            let found = jobs.iter().find(|j| {
                let succeeded = j.pipeline.as_ref().is_some_and(|p| p.status == "success");
                j.name == job && j.ref_name == ref_name && succeeded && j.has_archive()
            });
            if let Some(found) = found {
                return Ok(found.id);
            }
            if pages(&headers, page) <= page {
                break;
            }
        }
        Err(ApiError::NotFound("Not found"))
    }

    async fn file(&self, who: &Who, project: &str, job: i64, raw_path: &str) -> ApiResult<Response> {
        let mut request = Request::new(Body::empty());
        *request.method_mut() = if who.head { Method::HEAD } else { Method::GET };
        *request.uri_mut() = format!("{}/jobs/{job}/artifacts/{raw_path}", self.project(project))
            .parse()
            .map_err(|_| ApiError::InvalidParam("artifact_path is invalid".into()))?;
        // The request's own headers (conditions, ranges, encodings), its credentials as
        // headers (a token in the page's query too).
        let mut headers = who.headers.clone();
        headers.remove(header::COOKIE);
        headers.extend(upstream_credentials(who));
        *request.headers_mut() = headers;
        Ok(self.0.proxy.answer(request).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_count_their_pages_as_gitlab_tells() {
        let mut headers = HeaderMap::new();
        assert_eq!(pages(&headers, 3), 3);
        headers.insert("x-next-page", "4".parse().unwrap());
        assert_eq!(pages(&headers, 3), 4, "no total past 10,000 rows: one more while there is a next");
        headers.insert("x-total-pages", "9".parse().unwrap());
        assert_eq!(pages(&headers, 3), 9);
        assert_eq!(minutes_of("2026-12-04T18:51:23.456Z"), "2026-12-04 18:51");
        assert!(matches!(
            refused(StatusCode::NOT_FOUND, br#"{"message":"404 Project Not Found"}"#),
            ApiError::ProjectNotFound
        ));
        assert!(matches!(refused(StatusCode::INTERNAL_SERVER_ERROR, b""), ApiError::Upstream(StatusCode::BAD_GATEWAY)));
    }
}
