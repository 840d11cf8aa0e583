//! The client and its builder, and the Jobs API's 15 operations.

use artifact_core::http::CertificateDer;
use std::pin::Pin;
use std::time::Duration;

use artifact_core::JobRef;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result, shown};
use crate::models::{Job, JobStatus, Project, Version};
use crate::retry::RetryPolicy;
use crate::transport::{Auth, Transport};

/// A stream of bytes from GitLab (an archive, an entry, a log); memory stays at one chunk.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// Characters escaped in a path segment: everything but unreserved ones, so `/` in a
/// project path or a ref becomes `%2F`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// In an artifact path, `/` stays.
const PATH: &AsciiSet = &SEGMENT.remove(b'/');

/// Which jobs a listing returns.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only these statuses (empty: all).
    pub scope: Vec<JobStatus>,
    /// Pipeline lists: include jobs replaced by a retry.
    pub include_retried: bool,
    /// Rows per page (GitLab caps it at 100).
    pub per_page: Option<u32>,
    /// Project lists: ask for keyset pagination (`pagination=keyset`, newest first), which
    /// GitLab serves for project jobs and which stays fast deep into long lists. Servers
    /// that do not offer it answer with offset pages; both are followed the same way.
    pub keyset: bool,
}

/// A ref as one path segment (its `/`s escaped). `.` and `..` are no ref: a URL parser
/// would resolve them, and the request would name another route.
pub(crate) fn ref_segment(ref_name: &str) -> Result<percent_encoding::PercentEncode<'_>> {
    if matches!(ref_name, "" | "." | "..") {
        return Err(Error::Invalid(format!("ref {ref_name:?}: not a branch or tag")));
    }
    Ok(utf8_percent_encode(ref_name, SEGMENT))
}

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base: String,
    auth: Auth,
    retry: RetryPolicy,
    connect_timeout: Duration,
    stall_timeout: Duration,
    sync_downloads: bool,
    http: Option<reqwest::Client>,
    sudo: Option<String>,
    max_redirects: usize,
    json_max: usize,
    extra_roots: Vec<CertificateDer<'static>>,
}

impl ClientBuilder {
    /// Also trusts these certificate authorities (a self-managed GitLab's internal one;
    /// [`artifact_core::http::certificates_from_pem`] reads them), for the API calls and the
    /// engine's range reads alike ([`Client::http_options`]). A builder from
    /// [`Client::sharing`] shares the first client's connections, and so its roots and
    /// timeouts: set them on the first.
    pub fn extra_roots(mut self, roots: Vec<CertificateDer<'static>>) -> ClientBuilder {
        self.extra_roots = roots;
        self
    }

    /// Reads JSON documents up to `bytes` long ([`JSON_MAX`] by default); a longer one is an
    /// [`Error::Decode`].
    pub fn max_json(mut self, bytes: usize) -> ClientBuilder {
        self.json_max = bytes;
        self
    }

    /// Follows at most `max` redirects (10 by default); `0`: none, a redirect is then the
    /// answer, an [`Error::Api`] with its status (for a caller that must not be led to
    /// other addresses).
    pub fn max_redirects(mut self, max: usize) -> ClientBuilder {
        self.max_redirects = max;
        self
    }

    /// Acts as the user `user` (GitLab's `Sudo` header; an administrator's token only).
    pub fn sudo(mut self, user: impl Into<String>) -> ClientBuilder {
        self.sudo = Some(user.into());
        self
    }

    /// Whether downloads are synced to disk (fsync) before they take their name. Either
    /// way a download appears complete or not at all to other programs (it is renamed into
    /// place once checked); syncing makes that survive a power cut too, for about half a
    /// second per GiB on this project's bench machine. Off by default, like `curl -o`.
    pub fn sync_downloads(mut self, sync: bool) -> ClientBuilder {
        self.sync_downloads = sync;
        self
    }

    /// The credential, as any of [`Auth`]'s kinds (the methods below set one each).
    pub fn auth(mut self, auth: Auth) -> ClientBuilder {
        self.auth = auth;
        self
    }

    /// A personal (or project, group) access token.
    pub fn private_token(mut self, token: impl Into<String>) -> ClientBuilder {
        self.auth = Auth::Private(token.into());
        self
    }

    /// A CI job token (`CI_JOB_TOKEN`).
    pub fn job_token(mut self, token: impl Into<String>) -> ClientBuilder {
        self.auth = Auth::Job(token.into());
        self
    }

    /// An OAuth 2 access token.
    pub fn oauth_token(mut self, token: impl Into<String>) -> ClientBuilder {
        self.auth = Auth::OAuth(token.into());
        self
    }

    /// The retry policy (see [`RetryPolicy`]).
    pub fn retry(mut self, policy: RetryPolicy) -> ClientBuilder {
        self.retry = policy;
        self
    }

    /// Time allowed to connect: 10 s by default.
    pub fn connect_timeout(mut self, d: Duration) -> ClientBuilder {
        self.connect_timeout = d;
        self
    }

    /// Time allowed without a byte, for a response and between body reads: 30 s by
    /// default. There is no total timeout: a large download goes on while bytes flow.
    pub fn stall_timeout(mut self, d: Duration) -> ClientBuilder {
        self.stall_timeout = d;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client> {
        if !self.auth.is_valid() {
            return Err(Error::Invalid(
                "the token is empty or holds characters a header cannot carry (a trailing newline?)".into(),
            ));
        }
        let trimmed = self.base.trim_end_matches('/');
        let api = if trimmed.ends_with("/api/v4") { format!("{trimmed}/") } else { format!("{trimmed}/api/v4/") };
        let api = Url::parse(&api).map_err(|e| Error::Invalid(format!("base URL {:?}: {e}", self.base)))?;
        if !matches!(api.scheme(), "http" | "https") {
            return Err(Error::Invalid(format!("base URL {:?}: not http(s)", self.base)));
        }
        let sudo = match self.sudo {
            Some(user) => Some(
                reqwest::header::HeaderValue::from_str(&user)
                    .ok()
                    .filter(|_| !user.is_empty())
                    .ok_or_else(|| Error::Invalid("the sudo user is empty or cannot travel in a header".into()))?,
            ),
            None => None,
        };
        let http = match self.http {
            Some(http) => http,
            None => {
                let mut builder = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(self.connect_timeout)
                    .read_timeout(self.stall_timeout)
                    .user_agent(concat!("artifact-client/", env!("CARGO_PKG_VERSION")));
                for root in &self.extra_roots {
                    let root = reqwest::Certificate::from_der(root)
                        .map_err(|e| Error::Invalid(format!("an extra root certificate: {e}")))?;
                    builder = builder.add_root_certificate(root);
                }
                builder.build().map_err(|e| Error::Invalid(format!("HTTP client: {e}")))?
            }
        };
        let transport = Transport {
            http,
            auth: self.auth,
            sudo,
            max_redirects: self.max_redirects,
            json_max: self.json_max,
            retry: self.retry,
            connect_timeout: self.connect_timeout,
            stall_timeout: self.stall_timeout,
            extra_roots: self.extra_roots,
        };
        Ok(Client { api, transport, sync_downloads: self.sync_downloads })
    }
}

/// A GitLab Jobs API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    api: Url,
    pub(crate) transport: Transport,
    pub(crate) sync_downloads: bool,
}

impl Client {
    /// A builder for the GitLab at `base_url` (`https://gitlab.example.com`, with or
    /// without `/api/v4`).
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base_url.into(),
            auth: Auth::None,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(30),
            sync_downloads: false,
            http: None,
            sudo: None,
            max_redirects: crate::transport::MAX_REDIRECTS,
            json_max: JSON_MAX,
            extra_roots: Vec::new(),
        }
    }

    /// A builder for another client that shares this one's connections (one pool for
    /// clients made for many tokens, say one per visitor of a page), with this one's base
    /// URL, credential, retry policy, redirects and timeouts until changed: set another
    /// credential and build. Building it is cheap.
    pub fn sharing(&self) -> ClientBuilder {
        let t = &self.transport;
        ClientBuilder {
            base: self.api.as_str().to_owned(),
            auth: t.auth.clone(),
            retry: t.retry.clone(),
            connect_timeout: t.connect_timeout,
            stall_timeout: t.stall_timeout,
            sync_downloads: self.sync_downloads,
            http: Some(t.http.clone()),
            sudo: t.sudo.as_ref().and_then(|s| s.to_str().ok()).map(str::to_owned),
            max_redirects: t.max_redirects,
            json_max: t.json_max,
            extra_roots: t.extra_roots.clone(),
        }
    }

    /// The API root (`.../api/v4/`).
    pub fn api_url(&self) -> &Url {
        &self.api
    }

    /// `projects/<id>` + `rest`, with the project's path escaped (one segment: a `/` in it
    /// becomes `%2F`). `.` and `..` are no project: a URL parser would resolve them.
    pub(crate) fn project_url(&self, project: &str, rest: &str) -> Result<Url> {
        if matches!(project, "" | "." | "..") {
            return Err(Error::Invalid(format!("project {project:?}: not a project id or path")));
        }
        let id = utf8_percent_encode(project, SEGMENT);
        self.api.join(&format!("projects/{id}{rest}")).map_err(|e| Error::Invalid(format!("URL: {e}")))
    }

    pub(crate) fn job_ref_url(&self, project: &str, job: &JobRef, artifact_path: Option<&str>) -> Result<Url> {
        if let Some(p) = artifact_path {
            // `..` would climb out of the artifacts route once the URL is normalised.
            artifact_core::ArtifactPath::new(p).map_err(|e| Error::Engine(e.into()))?;
        }
        match job {
            JobRef::Id(id) => {
                let rest = match artifact_path {
                    None => format!("/jobs/{id}/artifacts"),
                    Some(p) => format!("/jobs/{id}/artifacts/{}", utf8_percent_encode(p, PATH)),
                };
                self.project_url(project, &rest)
            }
            JobRef::Latest { ref_name, job } => {
                let r = ref_segment(ref_name)?;
                let rest = match artifact_path {
                    None => format!("/jobs/artifacts/{r}/download"),
                    Some(p) => format!("/jobs/artifacts/{r}/raw/{}", utf8_percent_encode(p, PATH)),
                };
                let mut url = self.project_url(project, &rest)?;
                url.query_pairs_mut().append_pair("job", job);
                Ok(url)
            }
        }
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T> {
        let resp = self.transport.send(Method::GET, url, &HeaderMap::new(), &[]).await?;
        decode(resp, self.transport.json_max).await
    }

    async fn post_json<T: DeserializeOwned>(&self, url: Url) -> Result<T> {
        let resp = self.transport.send(Method::POST, url, &HeaderMap::new(), &[]).await?;
        decode(resp, self.transport.json_max).await
    }

    /// A binary download as a stream (GET, redirects followed, retried before the first
    /// byte).
    pub(crate) async fn stream(&self, url: Url, headers: &HeaderMap) -> Result<(StatusCode, HeaderMap, ByteStream)> {
        let resp = self.transport.send(Method::GET, url, headers, &[]).await?;
        let (status, head) = (resp.status(), resp.headers().clone());
        Ok((status, head, body_stream(resp)))
    }

    // ---- the 15 operations -------------------------------------------------------------

    /// 4: one job.
    pub async fn job(&self, project: &str, job: u64) -> Result<Job> {
        self.get_json(self.project_url(project, &format!("/jobs/{job}"))?).await
    }

    /// 5 and 6: the artifacts archive, streamed.
    pub async fn archive(&self, project: &str, job: &JobRef) -> Result<ByteStream> {
        Ok(self.stream(self.job_ref_url(project, job, None)?, &HeaderMap::new()).await?.2)
    }

    /// 7 and 8: one file of the archive, extracted by the server, streamed.
    pub async fn artifact(&self, project: &str, job: &JobRef, artifact_path: &str) -> Result<ByteStream> {
        Ok(self.stream(self.job_ref_url(project, job, Some(artifact_path))?, &HeaderMap::new()).await?.2)
    }

    /// 9: the job log, streamed.
    pub async fn trace(&self, project: &str, job: u64) -> Result<ByteStream> {
        Ok(self.stream(self.project_url(project, &format!("/jobs/{job}/trace"))?, &HeaderMap::new()).await?.2)
    }

    /// The log from byte `offset` on, streamed (empty: nothing new). Asks with `Range`; from
    /// a server that ignores it (GitLab itself), the first `offset` bytes of the whole log
    /// are dropped as they stream by, so memory stays at one chunk either way.
    pub async fn trace_from(&self, project: &str, job: u64, offset: u64) -> Result<ByteStream> {
        let url = self.project_url(project, &format!("/jobs/{job}/trace"))?;
        let mut h = HeaderMap::new();
        if offset > 0 {
            h.insert(
                reqwest::header::RANGE,
                format!("bytes={offset}-").parse().map_err(|_| Error::Invalid("range".into()))?,
            );
        }
        let resp = self.transport.send(Method::GET, url, &h, &[StatusCode::RANGE_NOT_SATISFIABLE]).await?;
        let status = resp.status();
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let mut skip = offset;
        if status == StatusCode::PARTIAL_CONTENT {
            let start = resp
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if start != Some(offset) {
                return Err(Error::Decode {
                    url: shown(resp.url()),
                    message: format!("asked for the log from byte {offset}, got {start:?}"),
                });
            }
            skip = 0;
        }
        let body = body_stream(resp).filter_map(move |chunk| {
            let out = match chunk {
                Ok(bytes) if skip >= bytes.len() as u64 => {
                    skip -= bytes.len() as u64;
                    None
                }
                Ok(bytes) => {
                    let rest = bytes.slice(skip as usize..);
                    skip = 0;
                    Some(Ok(rest))
                }
                Err(e) => Some(Err(e)),
            };
            std::future::ready(out)
        });
        Ok(Box::pin(body))
    }

    /// 10: cancels a job (a finished job comes back unchanged).
    pub async fn cancel(&self, project: &str, job: u64) -> Result<Job> {
        self.post_json(self.project_url(project, &format!("/jobs/{job}/cancel"))?).await
    }

    /// 11: runs a finished job again; returns the new job.
    pub async fn retry(&self, project: &str, job: u64) -> Result<Job> {
        self.post_json(self.project_url(project, &format!("/jobs/{job}/retry"))?).await
    }

    /// 12: erases a finished job's artifacts and log.
    pub async fn erase(&self, project: &str, job: u64) -> Result<Job> {
        self.post_json(self.project_url(project, &format!("/jobs/{job}/erase"))?).await
    }

    /// 13: keeps the artifacts from expiring.
    pub async fn keep_artifacts(&self, project: &str, job: u64) -> Result<Job> {
        self.post_json(self.project_url(project, &format!("/jobs/{job}/artifacts/keep"))?).await
    }

    /// 14: deletes the artifacts (the log stays).
    pub async fn delete_artifacts(&self, project: &str, job: u64) -> Result<()> {
        let url = self.project_url(project, &format!("/jobs/{job}/artifacts"))?;
        self.transport.send(Method::DELETE, url, &HeaderMap::new(), &[]).await?;
        Ok(())
    }

    /// 15: starts a manual job.
    pub async fn play(&self, project: &str, job: u64) -> Result<Job> {
        self.post_json(self.project_url(project, &format!("/jobs/{job}/play"))?).await
    }

    // ---- what clients ask first -------------------------------------------------------

    /// `GET /user`: the user the client's token belongs to (whether a token works).
    pub async fn current_user(&self) -> Result<crate::models::User> {
        self.get_json(self.api.join("user").map_err(|e| Error::Invalid(e.to_string()))?).await
    }

    /// `GET /version`.
    pub async fn version(&self) -> Result<Version> {
        self.get_json(self.api.join("version").map_err(|e| Error::Invalid(e.to_string()))?).await
    }

    /// `GET /projects/:id`.
    pub async fn project(&self, project: &str) -> Result<Project> {
        self.get_json(self.project_url(project, "")?).await
    }

    /// `GET /job`: the job of the client's job token.
    pub async fn current_job(&self) -> Result<Job> {
        self.get_json(self.api.join("job").map_err(|e| Error::Invalid(e.to_string()))?).await
    }
}

pub(crate) fn with_filter(mut url: Url, filter: &JobFilter, pipeline: bool) -> Url {
    {
        let mut q = url.query_pairs_mut();
        for s in &filter.scope {
            q.append_pair("scope[]", s.as_str());
        }
        if pipeline && filter.include_retried {
            q.append_pair("include_retried", "true");
        }
        q.append_pair("per_page", &filter.per_page.unwrap_or(100).to_string());
    }
    url
}

/// A response's body as a [`ByteStream`].
pub(crate) fn body_stream(resp: reqwest::Response) -> ByteStream {
    let url = shown(resp.url());
    Box::pin(resp.bytes_stream().map(move |r| r.map_err(|source| Error::Transport { url: url.clone(), source })))
}

/// The largest JSON document the client reads by default (a page of 100 jobs is a few
/// hundred KiB); see [`ClientBuilder::max_json`].
pub const JSON_MAX: usize = 32 << 20;

/// A JSON body, read up to `max` bytes.
pub(crate) async fn decode<T: DeserializeOwned>(resp: reqwest::Response, max: usize) -> Result<T> {
    let url = shown(resp.url());
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| Error::Transport { url: url.clone(), source })?;
        if body.len() + chunk.len() > max {
            return Err(Error::Decode { url, message: format!("a JSON document over {max} bytes") });
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|source| Error::Json { url, source })
}
