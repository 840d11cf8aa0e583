//! Who may read which archive, and where it is: [`Authorize`] decides, [`GitLabAuthorize`]
//! asks the upstream, and the proxy remembers each caller's [`Grant`] for its TTL.
//!
//! GitLab's way: the request is parsed once into typed parts (project, job id or ref and
//! job name, artifact path), and the archive's own download URL (endpoint 5 or 6) is built
//! from them, below the upstream's prefix, each part one segment. It is asked with the
//! caller's credential (tokens from the query as headers; nothing else of the caller's
//! query goes) and `Range: bytes=0-0`. A redirect or a `206` means "may read" and is
//! remembered per (credential digest, project, job) for the TTL; any other answer is passed
//! back as it is and not remembered, so a caller never gets a byte because another one
//! filled a cache. A redirect's target is read without any credential, and only where the
//! destination rules let archives be read (`--object-storage-origin`, and never a
//! link-local or cloud metadata address). An upstream that answers `200` to the range (it
//! cannot serve ranges) gets the single-file request forwarded instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_core::request::ArchiveRequest;
use artifact_gitlab::{ApiError, LookupKey, Presented, Query, Target, credential_headers};
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::Remote;
use crate::forward::gateway;
use crate::metrics::Metrics;

/// The most of an upstream's refusal passed back (GitLab's error documents are a few dozen
/// bytes).
const REFUSAL_MAX: usize = 64 << 10;

/// Grants remembered at most; past this `quick_cache` chooses which go.
const MAX_GRANTS: usize = 16_384;

/// Where a caller may read an archive from. It holds no token: the caller's credentials
/// are taken from each request again.
#[derive(Clone)]
pub struct Grant {
    /// The archive's URL: where the upstream's archive download redirected (object
    /// storage), or that download itself. It must answer range requests (with an `ETag` or
    /// `Last-Modified`, or two versions under one `key` cannot be told apart), and it is
    /// read only where [`ProxyConfig::object_storage_origins`](crate::ProxyConfig) allows
    /// (never a link-local or cloud metadata address).
    pub url: String,
    /// What the archive's index is cached under, in memory and on disk (written there in
    /// the clear), and what its small entries are remembered under: its identity, one
    /// archive for every caller (for GitLab: the upstream, project and job, built from
    /// typed parts), never a caller's URL, query or credential.
    pub key: Arc<str>,
    /// Whether the caller's credential goes with the reads (the URL is the upstream's
    /// archive download itself; a grant that says so for a URL of another origin is
    /// refused with `502`, and credentials never follow a redirect).
    pub credentials: bool,
    /// The archive version a range read under this grant found there: until the grant
    /// expires, the proxy's memory of that version's small entries answers without asking
    /// the upstream again.
    pub(crate) version: Option<Arc<str>>,
}

/// Without the URL's query, which may be a presigned signature.
impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.url.split(['?', '#']).next().unwrap_or("");
        f.debug_struct("Grant").field("url", &url).field("credentials", &self.credentials).finish_non_exhaustive()
    }
}

impl Grant {
    /// A grant to read the archive at `url`, whose index is kept under `key`; the caller's
    /// credential goes with the reads when `credentials` (never set it for a URL of
    /// another origin than the upstream's).
    pub fn new(url: String, key: Arc<str>, credentials: bool) -> Grant {
        Grant { url, key, credentials, version: None }
    }
}

/// What an [`Authorize`] says of a request for an archive's contents (a single file, or a
/// folder of the artifacts tree).
#[derive(Debug)]
pub enum Authorization {
    /// The caller may read the archive, there.
    Granted(Grant),
    /// The caller may not (or the upstream failed): this answer goes back as it is.
    Refused(Response),
    /// Not for the proxy to answer: the request goes to the inner service as it came.
    Forward,
}

/// Decides whether the caller of a single-file request may read the archive of its
/// target, and where the archive is. A grant is remembered for
/// [`ProxyConfig::auth_ttl`](crate::ProxyConfig) under [`Authorize::caller`], the project
/// and the job; while it lasts, that caller's requests for the archive's small entries are
/// answered from memory without asking again. A refusal is never remembered.
///
/// The target's project, ref and job name have passed the path rule (no `.` or `..`
/// segment, no `/` in a job name) before this is asked; build URLs from them as parts,
/// never by joining strings.
///
/// The pages for people ([`UpstreamPages`](crate::UpstreamPages)) ask too, for a folder or
/// a file of an archive: then `parts` is a request head made for the visitor (`GET` of `/`,
/// its credential as headers: its own, or its session's token as `PRIVATE-TOKEN`; no
/// cookie, no extensions such as the connection's address).
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
///
/// use artifact_proxy::{Authorization, Authorize, Target};
/// use axum::http::request::Parts;
///
/// /// Lets no one read the archives of `group/secret`; asks GitLab about the rest.
/// struct NotSecret(std::sync::Arc<artifact_proxy::GitLabAuthorize>);
///
/// impl Authorize for NotSecret {
///     fn authorize<'a>(
///         &'a self,
///         parts: &'a Parts,
///         target: &'a Target,
///     ) -> Pin<Box<dyn Future<Output = Authorization> + Send + 'a>> {
///         if target.project == "group/secret" {
///             let refusal = axum::response::IntoResponse::into_response(axum::http::StatusCode::NOT_FOUND);
///             return Box::pin(std::future::ready(Authorization::Refused(refusal)));
///         }
///         self.0.authorize(parts, target)
///     }
/// }
///
/// # fn run() -> Result<(), artifact_proxy::SetupError> {
/// let config = artifact_proxy::ProxyConfig::new("https://gitlab.example.com")?;
/// let proxy = artifact_proxy::Proxy::with_authorize(config, |gitlab| std::sync::Arc::new(NotSecret(gitlab)))?;
/// # Ok(()) }
/// ```
pub trait Authorize: Send + Sync + 'static {
    /// The decision for the request `parts` of `target`.
    fn authorize<'a>(
        &'a self,
        parts: &'a Parts,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = Authorization> + Send + 'a>>;

    /// The archive download whose answer to a range read with the caller's credentials is
    /// this `Authorize`'s decision for `target` (GitLab's: endpoint 5 or 6 as the caller, a
    /// `206` or a redirect meaning "may read"), or `None` (the default): every decision is
    /// then asked with [`authorize`](Self::authorize).
    ///
    /// With a URL, the proxy lets a caller's first read of the archive be the decision too:
    /// a cold archive's suffix read (its redirect followed at once, without the credential,
    /// where the destination rules allow), or, once the index is known and the upstream
    /// serves the archive itself, the entry's own range read, checked with `If-Match`. One
    /// round trip decides and brings bytes. A read that fails for any reason is asked again
    /// with [`authorize`](Self::authorize), whose answer (a refusal, as it is) goes back;
    /// nothing is sent anywhere but this URL before the upstream said yes. An `Authorize`
    /// that decides by anything else than the upstream's answer must leave this `None`.
    fn decided_by_reads(&self, target: &Target) -> Option<String> {
        let _ = target;
        None
    }

    /// Who asks, as grants are remembered: by default the request's GitLab credential and
    /// `Sudo` ([`Presented::digest`]; all zeros without one). An `Authorize` that decides by
    /// anything else (a session cookie of its own, a client certificate, an address) must
    /// give that here, or `None`: then nothing is remembered and every request is asked.
    fn caller(&self, parts: &Parts) -> Option<[u8; 32]> {
        let query = Query::parse(parts.uri.query());
        Some(Presented::from_request(&parts.method, &parts.headers, &query).digest())
    }
}

/// GitLab's way (see the module docs): the upstream's own archive download, asked as the
/// caller with `Range: bytes=0-0`.
#[derive(Debug)]
pub struct GitLabAuthorize {
    client: reqwest::Client,
    target: artifact_core::request::Upstream,
    remote: Arc<Remote>,
    metrics: Arc<Metrics>,
}

impl GitLabAuthorize {
    pub(crate) fn new(
        client: reqwest::Client,
        target: artifact_core::request::Upstream,
        remote: Arc<Remote>,
        metrics: Arc<Metrics>,
    ) -> GitLabAuthorize {
        GitLabAuthorize { client, target, remote, metrics }
    }
}

impl Authorize for GitLabAuthorize {
    fn decided_by_reads(&self, target: &Target) -> Option<String> {
        let archive = ArchiveRequest::new(&target.project, target.job.clone()).ok()?;
        Some(self.target.archive(&archive))
    }

    fn authorize<'a>(
        &'a self,
        parts: &'a Parts,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = Authorization> + Send + 'a>> {
        Box::pin(async move {
            match self.ask(parts, target).await {
                Ok(grant) => Authorization::Granted(grant),
                Err(Some(refusal)) => Authorization::Refused(refusal),
                Err(None) => Authorization::Forward,
            }
        })
    }
}

/// Grants by (caller, project, job), each for the TTL; bounded (what goes first is
/// `quick_cache`'s choice).
pub(crate) struct Grants {
    map: quick_cache::sync::Cache<LookupKey, (Instant, Grant)>,
}

impl Default for Grants {
    fn default() -> Grants {
        Grants { map: quick_cache::sync::Cache::new(MAX_GRANTS) }
    }
}

impl Grants {
    pub(crate) fn get(&self, key: &LookupKey, ttl: Duration) -> Option<Grant> {
        self.map.get(key).filter(|(at, _)| at.elapsed() < ttl).map(|(_, g)| g)
    }

    /// Records the archive version a read under `read` (the grant for `key`) found, if
    /// that grant is still the one remembered (not one asked for since).
    pub(crate) fn confirm(&self, key: &LookupKey, read: &Grant, version: &Arc<str>) {
        if let Some((at, mut grant)) = self.map.get(key)
            && grant.url == read.url
            && grant.key == read.key
        {
            grant.version = Some(version.clone());
            self.map.insert(key.clone(), (at, grant));
        }
    }

    pub(crate) fn put(&self, key: LookupKey, grant: Grant) {
        self.map.insert(key, (Instant::now(), grant));
    }
}

/// Asks the upstream for the archive as this caller: a grant, a refusal to pass back
/// (`Some`), or `None` to forward the request as it is.
///
/// Only the archive's own download (endpoint 5 or 6) is asked, its URL built from the
/// request's typed parts (never from its raw path or query: the caller's tokens go as
/// headers). A redirect is where the archive is read, without any credential, and only if
/// the destination rules allow it; a `206` means the upstream serves it itself.
impl GitLabAuthorize {
    async fn ask(&self, parts: &Parts, target: &Target) -> Result<Grant, Option<Response>> {
        let archive = match ArchiveRequest::new(&target.project, target.job.clone()) {
            Ok(archive) => archive,
            Err(refused) => return Err(Some(ApiError::InvalidParam(refused.to_string()).into_response())),
        };
        let url = self.target.archive(&archive);
        let key: Arc<str> = url.as_str().into();
        let query = Query::parse(parts.uri.query());
        let mut request = self.client.get(&url).header(header::RANGE, "bytes=0-0");
        for (name, value) in credential_headers(&parts.headers, &query).iter() {
            request = request.header(name, value);
        }
        // Whom the upstream's limits and audit log should see: the caller, as when forwarding.
        if let Some(peer) = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>() {
            request = request.header("x-forwarded-for", peer.0.ip().to_string());
        }
        let resp = match request.send().await {
            Ok(resp) => resp,
            Err(e) => {
                self.metrics.upstream("authorize", 0);
                tracing::warn!(path = %parts.uri.path(), timeout = e.is_timeout(), "upstream authorization failed");
                let status = if e.is_timeout() { StatusCode::GATEWAY_TIMEOUT } else { StatusCode::BAD_GATEWAY };
                return Err(Some(gateway(status)));
            }
        };
        let status = resp.status();
        self.metrics.upstream("authorize", status.as_u16());
        if status.is_redirection() {
            let location = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
            let base = reqwest::Url::parse(&url).map_err(|_| None)?;
            let Some(next) =
                location.and_then(|l| base.join(l).ok()).filter(|u| matches!(u.scheme(), "http" | "https"))
            else {
                tracing::warn!(path = %parts.uri.path(), "the upstream's archive redirect has no usable Location");
                return Err(Some(gateway(StatusCode::BAD_GATEWAY)));
            };
            if let Err(e) = self.remote.get().destinations().check(&next) {
                tracing::warn!(error = %e, "the upstream's archive redirect leads where archives are not read");
                return Err(Some(gateway(StatusCode::BAD_GATEWAY)));
            }
            return Ok(Grant::new(next.to_string(), key, false));
        }
        if status == StatusCode::PARTIAL_CONTENT {
            // The upstream serves the archive itself: read it there, credentials as headers.
            return Ok(Grant::new(url, key, true));
        }
        if status.is_success() {
            return Err(None);
        }
        // The upstream's refusal, as it is (its body is a small error document).
        let mut out = Response::new(Body::empty());
        *out.status_mut() = status;
        for name in [header::CONTENT_TYPE, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
            if let Some(v) = resp.headers().get(&name) {
                out.headers_mut().insert(name, v.clone());
            }
        }
        // At most REFUSAL_MAX of it: an upstream that sends more is not sending an error.
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut stream).await {
            body.extend_from_slice(&chunk[..chunk.len().min(REFUSAL_MAX - body.len())]);
            if body.len() >= REFUSAL_MAX {
                break;
            }
        }
        *out.body_mut() = Body::from(body);
        Err(Some(out))
    }
}
