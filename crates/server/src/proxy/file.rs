//! Single files (endpoints 7 and 8) from the engine: the upstream decides whether this
//! caller may read the archive, and the entry is then read by range from wherever the
//! archive is (object storage behind a redirect, or the upstream itself), through a
//! central-directory index cached across callers.
//!
//! Authorization: the request is parsed once into typed parts (project, job id or ref and
//! job name, artifact path), and the archive's own download URL (endpoint 5 or 6) is built
//! from them, below the upstream's prefix, each part one segment. It is asked with the
//! caller's credentials (tokens from the query as headers; nothing else of the caller's
//! query goes) and `Range: bytes=0-0`. A redirect or a `206` means "may read" and is
//! remembered per (credential digest, project, job) for the TTL; any other answer is passed
//! back as it is and not remembered, so a caller never gets a byte because another one
//! filled a cache. A redirect's target is read without any credential, and only where the
//! destination rules let archives be read (`--object-storage-origin`, and never a
//! link-local or cloud metadata address). An upstream that answers `200` to the range (it
//! cannot serve ranges) gets the single-file request forwarded instead.
//!
//! Caching: the index is kept by the archive's identity (the upstream, project and job,
//! as built above), never by the URL a caller sent or a presigned URL; on disk no URL is
//! written at all.
//!
//! Reading: on async I/O (`RemoteArchives::open_entry_keyed_async`), so no thread waits on
//! the upstream and a slow client holds back its upstream read by TCP flow control; a
//! client that goes away drops its upstream connection.
//!
//! Integrity: a `2xx` is verified bytes. Entries up to 64 KiB are read and checked before
//! the headers go out (and ranges of them served from that); larger ones stream through the
//! engine's verified reader, which aborts the connection on a late failure, and their
//! ranges are answered with the whole entry (RFC 9110 allows ignoring `Range`), because a
//! window alone is never verified.
//!
//! Hot entries: a small entry, once verified, is kept in memory by archive version and
//! path. A grant that read the archive remembers the version it found, and until the grant
//! expires its caller's requests for kept entries are answered from memory without asking
//! the upstream: the same window in which the grant itself is trusted. With `--auth-ttl 0`
//! nothing is remembered, and every request is authorized and read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use artifact_core::http::AsyncEntry;
use artifact_core::request::ArchiveRequest;
use artifact_core::{ArtifactPath, Error as EngineError, HttpProblem};
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::Proxy;
use crate::auth::{Form, Presented};
use crate::delivery::{Plan, Representation};
use crate::error::ApiError;
use crate::hot::Hot;
use crate::lookups::LookupKey;
use crate::query::Query;
use crate::routes::artifacts::answer::{INLINE_MAX, entry_headers, gzip_representation};
use crate::routes::artifacts::target::Target;

/// Grants remembered at most; past this the memory starts over.
const MAX_GRANTS: usize = 16_384;

/// Where a caller may read an archive from, as the upstream said. It holds no token: the
/// caller's credentials are taken from each request again.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    /// The archive's URL: where the upstream's archive download redirected (object
    /// storage), or that download itself.
    pub(crate) url: String,
    /// What the archive's index is cached under: its identity (the upstream, project and
    /// job, built from typed parts), never a caller's URL, query or credential.
    pub(crate) key: Arc<str>,
    /// Whether the URL is the upstream's archive download itself, where the caller's
    /// credentials go (they never follow a redirect).
    pub(crate) credentials: bool,
    /// The archive version a range read under this grant found there (see [`version_tag`]):
    /// until the grant expires, the proxy's memory of that version's small entries answers
    /// without asking the upstream again.
    version: Option<Arc<str>>,
}

/// Grants by (credential digest, project, job), each for the TTL.
#[derive(Debug, Default)]
pub(crate) struct Grants {
    map: Mutex<HashMap<LookupKey, (Instant, Grant)>>,
}

impl Grants {
    fn get(&self, key: &LookupKey, ttl: Duration) -> Option<Grant> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).filter(|(at, _)| at.elapsed() < ttl).map(|(_, g)| g.clone())
    }

    /// Records the archive version a read under the grant for `key` found.
    fn confirm(&self, key: &LookupKey, version: &Arc<str>) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, grant)) = map.get_mut(key) {
            grant.version = Some(version.clone());
        }
    }

    fn put(&self, key: LookupKey, grant: Grant) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_GRANTS {
            map.clear();
        }
        map.insert(key, (Instant::now(), grant));
    }
}

/// The caller's credential as one request header, exactly the one
/// [`Presented::from_request`] reads (and grants are remembered under), in its form
/// ([`Form`]: a token from the query becomes its header), and whom it acts as (`Sudo`, the
/// parameter first). Nothing else the caller sent goes: the upstream judges the credential
/// the grant's key names.
pub(crate) fn credential_headers(headers: &HeaderMap, query: &Query) -> HeaderMap {
    let mut out = HeaderMap::new();
    if let Some((name, value)) = Form::read(headers, query).and_then(|(form, token)| form.header(token)) {
        out.insert(name, value);
    }
    let presented = Presented::from_request(&axum::http::Method::GET, headers, query);
    if let Some(who) = presented.sudo {
        out.insert("sudo", HeaderValue::from_str(&who).unwrap_or_else(|_| HeaderValue::from_static("")));
    }
    out
}

/// Answers a single-file request, or `None` when it should be forwarded as it is.
pub(crate) async fn file(proxy: &Proxy, parts: &Parts, target: Target, path: ArtifactPath) -> Option<Response> {
    let query = Query::parse(parts.uri.query());
    let (key, grant) = match grant(proxy, parts, &target).await {
        Ok(granted) => granted,
        Err(refusal) => return refusal,
    };
    let head = parts.method == axum::http::Method::HEAD;
    if let Some(hot) = grant.version.as_ref().and_then(|v| proxy.hot.get(v, &path)) {
        proxy.metrics.hot(true);
        return Some(answer_small(&hot, &parts.headers, head).unwrap_or_else(IntoResponse::into_response));
    }
    proxy.metrics.hot(false);
    let headers = if grant.credentials { credential_headers(&parts.headers, &query) } else { HeaderMap::new() };
    let opened = proxy.remote.get().open_entry_keyed_async(&grant.key, &grant.url, &path, &headers).await;
    let answer = match opened {
        Ok(entry) => {
            let version = version_tag(&grant.key, entry.identity());
            if !proxy.auth_ttl.is_zero() {
                proxy.grants.confirm(&key, &version);
            }
            read_entry(proxy, entry, version, &path, &parts.headers, head).await
        }
        Err(e) => Err(engine_error(e)),
    };
    Some(answer.unwrap_or_else(IntoResponse::into_response))
}

/// The caller's grant for the archive of `target` (and its key): remembered, or asked of
/// the upstream and remembered for the TTL. A refusal to pass back (`Some`), or `None` to
/// forward the request as it is.
pub(crate) async fn grant(
    proxy: &Proxy,
    parts: &Parts,
    target: &Target,
) -> Result<(LookupKey, Grant), Option<Response>> {
    let query = Query::parse(parts.uri.query());
    let presented = Presented::from_request(&parts.method, &parts.headers, &query);
    let key = LookupKey::new(presented.digest(), &target.project, &target.job).ok_or(None)?;
    let remembered = proxy.grants.get(&key, proxy.auth_ttl);
    proxy.metrics.grant(remembered.is_some());
    if let Some(grant) = remembered {
        return Ok((key, grant));
    }
    let grant = authorize(proxy, parts, target).await?;
    if !proxy.auth_ttl.is_zero() {
        proxy.grants.put(key.clone(), grant.clone());
    }
    Ok((key, grant))
}

/// What an engine error is for the caller: the entry is not there (`404`), the upstream or
/// object storage failed (`502`, `504` when it timed out), or the archive is bad (`500`).
fn engine_error(e: EngineError) -> Response {
    engine_api_error(e).into_response()
}

/// [`engine_error`] as an [`ApiError`] (`502` and `504` with the proxy's own bodies).
pub(crate) fn engine_api_error(e: EngineError) -> ApiError {
    match e {
        EngineError::NotFound { .. } => ApiError::NotFound("Not found"),
        EngineError::Http { problem: HttpProblem::Timeout(_), .. } => {
            tracing::warn!(error = %e, "reading the archive upstream timed out");
            ApiError::Upstream(StatusCode::GATEWAY_TIMEOUT)
        }
        e @ (EngineError::Http { .. } | EngineError::Changed { .. }) => {
            tracing::warn!(error = %e, "reading the archive upstream failed");
            ApiError::Upstream(StatusCode::BAD_GATEWAY)
        }
        e => ApiError::internal(e),
    }
}

/// One version of one archive, as a short tag: its identity (the grant's key, which no
/// presigned signature or caller's query is part of) and its validator. The hot-entry
/// memory and the answers' `ETag`s are keyed by it.
fn version_tag(key: &str, identity: &artifact_core::http::RemoteIdentity) -> Arc<str> {
    let validator = identity.validator.as_str();
    let digest = crate::store::TokenDigest::of(&format!("{key}|{validator}"));
    crate::ids::hex(&digest.0[..8]).into()
}

/// Answers from a small entry's verified bytes (a range of them, `304`, `HEAD`). The
/// proxy keeps no gzip form, so the answer is always there.
fn answer_small(hot: &Hot, requested: &HeaderMap, head: bool) -> Result<Response, ApiError> {
    hot.answer(requested, head).unwrap_or_else(|| Err(ApiError::internal("a kept entry without its answer")))
}

/// Answers for an opened entry: small ones are read and verified before the headers go
/// out (and kept in memory); larger ones stream through the engine's verified reader,
/// which aborts the connection on a late failure.
async fn read_entry(
    proxy: &Proxy,
    entry: AsyncEntry,
    version: Arc<str>,
    path: &ArtifactPath,
    requested: &HeaderMap,
    head: bool,
) -> Result<Response, Response> {
    let (crc, size) = (entry.entry().crc32(), entry.entry().size());
    let etag = format!("\"{version}-{crc:08x}-{size}\"");
    let mut headers = entry_headers(path).map_err(IntoResponse::into_response)?;
    let deflated = entry.entry().method() == 8;
    if deflated {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if size <= INLINE_MAX {
        let bytes = entry.read_all().await.map_err(engine_error)?;
        let hot = Arc::new(Hot::new(bytes, etag, None, headers));
        proxy.hot.put(&version, path, hot.clone());
        return answer_small(&hot, requested, head).map_err(IntoResponse::into_response);
    }
    let rep = Representation { len: size, etag, last_modified: None, headers, ranges: false };
    // Gzip passthrough: the compressed bytes as they come, verified alongside, the trailer
    // only after they checked out.
    let compressed = entry.entry().compressed_size();
    if let Some(gz) = deflated.then(|| gzip_representation(&rep, requested, compressed)).flatten() {
        if gz.plan(requested).map_err(IntoResponse::into_response)? == Plan::NotModified {
            return Ok(gz.not_modified());
        }
        if head {
            return Ok(gz.full(None));
        }
        let streaming = proxy.metrics.stream();
        let stream = entry.into_gzip().inspect(move |_| {
            let _ = &streaming;
        });
        return Ok(gz.full(Some(Body::from_stream(stream))));
    }
    let plan = rep.plan(requested).map_err(IntoResponse::into_response)?;
    if plan == Plan::NotModified {
        return Ok(rep.not_modified());
    }
    if head {
        return Ok(rep.full(None));
    }
    // Counted in flight until the stream is done or dropped (dropping it closes its
    // upstream connection: a client that goes away stops the upstream read).
    let streaming = proxy.metrics.stream();
    let stream = entry.inspect(move |_| {
        let _ = &streaming;
    });
    Ok(rep.full(Some(Body::from_stream(stream))))
}

/// Asks the upstream for the archive as this caller: a grant, a refusal to pass back
/// (`Some`), or `None` to forward the request as it is.
///
/// Only the archive's own download (endpoint 5 or 6) is asked, its URL built from the
/// request's typed parts (never from its raw path or query: the caller's tokens go as
/// headers). A redirect is where the archive is read, without any credential, and only if
/// the destination rules allow it; a `206` means the upstream serves it itself.
async fn authorize(proxy: &Proxy, parts: &Parts, target: &Target) -> Result<Grant, Option<Response>> {
    let archive = match ArchiveRequest::new(&target.project, target.job.clone()) {
        Ok(archive) => archive,
        Err(refused) => return Err(Some(ApiError::InvalidParam(refused.to_string()).into_response())),
    };
    let url = proxy.target.archive(&archive);
    let key: Arc<str> = url.as_str().into();
    let query = Query::parse(parts.uri.query());
    let mut request = proxy.client.get(&url).header(header::RANGE, "bytes=0-0");
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
            proxy.metrics.upstream("authorize", 0);
            tracing::warn!(path = %parts.uri.path(), timeout = e.is_timeout(), "upstream authorization failed");
            let status = if e.is_timeout() { StatusCode::GATEWAY_TIMEOUT } else { StatusCode::BAD_GATEWAY };
            return Err(Some(super::forward::gateway(status)));
        }
    };
    let status = resp.status();
    proxy.metrics.upstream("authorize", status.as_u16());
    if status.is_redirection() {
        let location = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
        let base = reqwest::Url::parse(&url).map_err(|_| None)?;
        let Some(next) = location.and_then(|l| base.join(l).ok()).filter(|u| matches!(u.scheme(), "http" | "https"))
        else {
            tracing::warn!(path = %parts.uri.path(), "the upstream's archive redirect has no usable Location");
            return Err(Some(super::forward::gateway(StatusCode::BAD_GATEWAY)));
        };
        if let Err(e) = proxy.remote.get().destinations().check(&next) {
            tracing::warn!(error = %e, "the upstream's archive redirect leads where archives are not read");
            return Err(Some(super::forward::gateway(StatusCode::BAD_GATEWAY)));
        }
        return Ok(Grant { url: next.to_string(), key, credentials: false, version: None });
    }
    if status == StatusCode::PARTIAL_CONTENT {
        // The upstream serves the archive itself: read it there, credentials as headers.
        return Ok(Grant { url, key, credentials: true, version: None });
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
    *out.body_mut() = Body::from(resp.bytes().await.unwrap_or_default());
    Err(Some(out))
}
