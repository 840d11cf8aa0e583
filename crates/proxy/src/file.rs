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
//! The first read decides: for a caller without a remembered grant, the engine's first
//! read of that same download as the caller (a cold index's suffix read, its redirect
//! followed at once without the credential; or a known index's entry read when the
//! upstream serves the archive itself) is the authorization, one round trip for the
//! decision and the bytes ([`Authorize::decided_by_reads`](crate::Authorize::decided_by_reads));
//! a read that fails is authorized as above, and that answer goes back.
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
//! engine's verified reader, which aborts the connection on a late failure. A larger entry's
//! whole read that ends (its size and CRC-32 checked) leaves its verdict in memory, by
//! archive version and path ([`Verified`]); from then on a single `Range` of it is answered
//! `206` with that window (read from the entry's start, cut, the connection dropped past
//! it), with `If-Range` and `Accept-Ranges`. Before its verdict, and for several ranges at
//! once, a `Range` gets the whole entry (RFC 9110 allows ignoring it), because a window of
//! bytes no check has covered is never served. A new version of the archive (another
//! validator) has no verdicts.
//!
//! Hot entries: a small entry, once verified, is kept in memory by archive version and
//! path. A grant that read the archive remembers the version it found, and until the grant
//! expires its caller's requests for kept entries are answered from memory without asking
//! the upstream: the same window in which the grant itself is trusted. With `--auth-ttl 0`
//! nothing is remembered, and every request is authorized and read.

use std::sync::Arc;

use artifact_core::checkpoints::{DEFAULT_SPACING, MIN_ENTRY};
use artifact_core::http::{AsyncEntry, Validator, VerifiedEntry};
use artifact_core::request::ArchiveRequest;
use artifact_core::{ArtifactPath, Error as EngineError, HttpProblem};
use artifact_gitlab::entry::{INLINE_MAX, entry_headers, gzip_representation};
use artifact_gitlab::{ApiError, Hot, LookupKey, Plan, Query, Representation, Target, credential_headers};
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::verdicts::Verdict;
use crate::{Authorization, Grant, Proxy};

/// Why a caller has no grant: refused (this answer goes back), or not for the proxy.
enum Denied {
    Refused(Response),
    Forward,
}

impl Proxy {
    /// One entry of the archive of `target` for the caller whose request head is `parts`
    /// (its credential, its conditions, ranges and encodings, `HEAD` or not): GitLab's
    /// endpoints 7 and 8 as one call, which the layer answers single files with and the
    /// pages for people (`artifact_gitlab::pages`) open files with. `target`'s project, ref
    /// and job name are checked by the path rule here (`400`); `path` has passed it.
    /// `None`: the [`Authorize`](crate::Authorize) said this is not for the proxy to answer
    /// (an upstream that cannot serve ranges): forward the request as it came.
    pub async fn entry(&self, parts: &Parts, target: &Target, path: &ArtifactPath) -> Option<Response> {
        let query = Query::parse(parts.uri.query());
        // The path rule first, before any `Authorize` or read sees the target.
        if let Err(refused) = ArchiveRequest::new(&target.project, target.job.clone()) {
            return Some(ApiError::InvalidParam(refused.to_string()).into_response());
        }
        let (who, remembered) = self.remembered(parts, target);
        if remembered.is_none()
            && let Some(answer) = self.entry_by_read(parts, target, path, &query, who.clone()).await
        {
            return Some(answer);
        }
        let (key, grant) = match self.grant_as(parts, target, who, remembered).await {
            Ok(granted) => granted,
            Err(Denied::Forward) => return None,
            Err(Denied::Refused(refusal)) => return Some(refusal),
        };
        let head = parts.method == axum::http::Method::HEAD;
        if let Some(hot) = grant.version.as_ref().and_then(|v| self.hot.get(v, path)) {
            self.metrics.hot(true);
            return Some(answer_small(&hot, &parts.headers, head).unwrap_or_else(IntoResponse::into_response));
        }
        self.metrics.hot(false);
        let headers = if grant.credentials { credential_headers(&parts.headers, &query) } else { HeaderMap::new() };
        if let Some(answer) = self.verified_window(parts, key.as_ref(), &grant, path, &headers).await {
            return Some(answer);
        }
        let opened = self.remote.get().open_entry_keyed_async(&grant.key, &grant.url, path, &headers).await;
        let answer = match opened {
            Ok(entry) => {
                let version = version_tag(&grant.key, &entry.identity().validator);
                if let Some(key) = key.filter(|_| !self.auth_ttl.is_zero()) {
                    self.grants.confirm(&key, &grant, &version);
                }
                read_entry(self, entry, (&grant.key, version), path, &parts.headers, head).await
            }
            Err(e) => Err(engine_error(e)),
        };
        Some(answer.unwrap_or_else(IntoResponse::into_response))
    }

    /// The entry for a caller without a remembered grant, its first read of the archive
    /// its authorization ([`Authorize::decided_by_reads`](crate::Authorize::decided_by_reads)):
    /// the engine's read of the archive's download as this caller, a cold index's suffix
    /// read (a redirect followed at once, without the credential, where the destination
    /// rules allow) or a known index's entry read (for an entry not in it, a read of the
    /// archive's last byte: a caller learns nothing of the index from the requests made).
    /// What it read at becomes the caller's grant (remembered under `who`). These reads
    /// change nothing for others when they fail. The target has passed the path rule and
    /// the caller has no remembered grant. `None`: not tried (an archive the upstream
    /// redirects whose index is known, an `Authorize` that decides otherwise) or the read
    /// failed: the request is authorized and answered as any other.
    async fn entry_by_read(
        &self,
        parts: &Parts,
        target: &Target,
        path: &ArtifactPath,
        query: &Query,
        who: Option<LookupKey>,
    ) -> Option<Response> {
        let url = self.authorize.decided_by_reads(target)?;
        if !self.same_origin(&url) {
            return None;
        }
        let key: Arc<str> = url.as_str().into();
        let remote = self.remote.get();
        // A known index is read where the URL given is: for an archive the upstream
        // redirects, that read would only meet the redirect.
        if self.served.get(&key) == Some(false) && remote.has_index_keyed(&key) {
            return None;
        }
        let headers = credential_headers(&parts.headers, query);
        let opened = match remote.try_entry_keyed_async(&key, &url, path, &headers).await {
            Ok(entry) => Ok(entry),
            // Not in the index: whether this caller may read the archive at all, at the
            // same cost as the entry's read, before it learns that.
            Err(missing @ EngineError::NotFound { .. }) => {
                match remote.try_read_keyed_async(&key, &url, &headers).await {
                    Ok(()) => Err(missing),
                    Err(_) => return None,
                }
            }
            Err(_) => return None,
        };
        // The upstream said yes to this caller, where its read went (the last byte's read
        // goes to the URL asked).
        let read_at = match &opened {
            Ok(entry) => entry.identity().url.clone(),
            Err(_) => url.clone(),
        };
        let upstream_serves = read_at == url;
        self.served.put(key.clone(), upstream_serves);
        let grant =
            if upstream_serves { Grant::new(url, key.clone(), true) } else { Grant::new(read_at, key.clone(), false) };
        self.metrics.grant_by_read();
        self.metrics.hot(false);
        let who = who.filter(|_| !self.auth_ttl.is_zero());
        if let Some(who) = &who {
            self.grants.put(who.clone(), grant.clone());
        }
        let entry = match opened {
            Ok(entry) => entry,
            Err(e) => return Some(engine_error(e)),
        };
        let version = version_tag(&key, &entry.identity().validator);
        if let Some(who) = &who {
            self.grants.confirm(who, &grant, &version);
        }
        // A range of a verified entry: its window (the whole entry's read is dropped).
        if let Some(answer) =
            self.verified_window(parts, who.as_ref(), &grant, path, &headers_of(&grant, &headers)).await
        {
            return Some(answer);
        }
        let head = parts.method == axum::http::Method::HEAD;
        let answer = read_entry(self, entry, (&key, version), path, &parts.headers, head).await;
        Some(answer.unwrap_or_else(IntoResponse::into_response))
    }

    /// Whether the caller whose request head is `parts` may read the archive of `target`,
    /// and where it is: the grant remembered for this caller, or the
    /// [`Authorize`](crate::Authorize)'s answer (a grant then remembered for
    /// [`ProxyConfig::auth_ttl`](crate::ProxyConfig)). The project, ref and job name are
    /// checked by the path rule first (refused with `400`).
    pub async fn authorize(&self, parts: &Parts, target: &Target) -> Authorization {
        match self.grant(parts, target).await {
            Ok((_, grant)) => Authorization::Granted(grant),
            Err(Denied::Refused(refusal)) => Authorization::Refused(refusal),
            Err(Denied::Forward) => Authorization::Forward,
        }
    }

    /// The caller's grant for the archive of `target` (and what it is remembered under,
    /// when it is): remembered, or asked of the [`Authorize`](crate::Authorize) and
    /// remembered for the TTL. Else the refusal, or [`Authorization::Forward`].
    async fn grant(&self, parts: &Parts, target: &Target) -> Result<(Option<LookupKey>, Grant), Denied> {
        // The project, ref and job name by the path rule too, before any `Authorize` sees
        // them (whatever URL it builds from them cannot leave the archive's own): for the
        // single files and the pages alike, which both ask here.
        if let Err(refused) = ArchiveRequest::new(&target.project, target.job.clone()) {
            return Err(Denied::Refused(ApiError::InvalidParam(refused.to_string()).into_response()));
        }
        let (key, remembered) = self.remembered(parts, target);
        self.grant_as(parts, target, key, remembered).await
    }

    /// Who asks (what grants are remembered under) and the grant remembered for them.
    fn remembered(&self, parts: &Parts, target: &Target) -> (Option<LookupKey>, Option<Grant>) {
        let key = self.authorize.caller(parts).and_then(|who| LookupKey::new(who, &target.project, &target.job));
        let remembered = key.as_ref().and_then(|key| self.grants.get(key, self.auth_ttl));
        (key, remembered)
    }

    /// [`grant`](Self::grant) for a request whose target passed the path rule, and whose
    /// caller and remembered grant were looked up.
    async fn grant_as(
        &self,
        parts: &Parts,
        target: &Target,
        key: Option<LookupKey>,
        remembered: Option<Grant>,
    ) -> Result<(Option<LookupKey>, Grant), Denied> {
        self.metrics.grant(remembered.is_some());
        if let Some(grant) = remembered {
            return Ok((key, grant));
        }
        let grant = match self.authorize.authorize(parts, target).await {
            Authorization::Granted(grant) => grant,
            Authorization::Refused(refusal) => return Err(Denied::Refused(refusal)),
            Authorization::Forward => return Err(Denied::Forward),
        };
        // The caller's credential goes to the upstream's own origin only.
        if grant.credentials && !self.same_origin(&grant.url) {
            tracing::warn!(?grant, "a grant that sends credentials to another origin than the upstream's");
            return Err(Denied::Refused(crate::gateway(StatusCode::BAD_GATEWAY)));
        }
        if let Some(key) = key.as_ref().filter(|_| !self.auth_ttl.is_zero()) {
            self.grants.put(key.clone(), grant.clone());
        }
        self.served.put(grant.key.clone(), grant.credentials);
        Ok((key, grant))
    }

    /// A single `Range` of an entry a whole read verified before: a `206` of that window,
    /// read with one range request (stored: the window; deflated: from its nearest
    /// checkpoint), without reading the entry from its start. `None`: no verdict, not one
    /// range (several, `If-Range` that does not match, `HEAD`), or the verdict is not for
    /// the archive as it is now: the entry is opened and answered as any other.
    async fn verified_window(
        &self,
        parts: &Parts,
        key: Option<&LookupKey>,
        grant: &Grant,
        path: &ArtifactPath,
        headers: &HeaderMap,
    ) -> Option<Response> {
        if parts.method != axum::http::Method::GET || !parts.headers.contains_key(header::RANGE) {
            return None;
        }
        let verdict = match self.verified.get(&grant.key, path) {
            Some(verdict) => verdict,
            None => self.stored_verdict(grant, path, headers).await?,
        };
        let version = version_tag(&grant.key, verdict.validator());
        let rep = representation(verdict.entry(), &version, path, true).ok()?;
        let Ok(Plan::Partial(ranges)) = rep.plan(&parts.headers) else { return None };
        let [(start, end)] = ranges[..] else { return None };
        let remote = self.remote.get();
        let opened = remote
            .open_verified_window_async(&grant.key, &grant.url, path, headers, &verdict, start, end - start)
            .await;
        let window = match opened {
            Ok(Some(window)) => window,
            Ok(None) => return None,
            Err(e) => return Some(engine_error(e)),
        };
        if let Some(key) = key.filter(|_| !self.auth_ttl.is_zero()) {
            self.grants.confirm(key, grant, &version);
        }
        self.metrics.window(verdict.checkpoints().is_some_and(|c| c.nearest(start).is_some()));
        // A window that fails (its data does not inflate from the checkpoint) ends its
        // verdict: the next range reads the entry whole, which verifies it again.
        let (verified, key, path) = (self.verified.clone(), grant.key.clone(), path.clone());
        let window = window.inspect(move |item| {
            // Bad data or a changed archive; not a network failure, which says nothing of it.
            if let Err(e) = item
                && e.kind() == std::io::ErrorKind::InvalidData
            {
                verified.forget(&key, &path);
            }
        });
        Some(rep.partial((start, end), Some(in_flight(self, window))))
    }

    /// The verdict of `path` kept in the disk or shared cache (another proxy's, or this
    /// one's before a restart), for the archive as its index is now: the index is found
    /// (read with `headers` when it is not known, as the entry's read would) and the
    /// entry looked up in it. Only for entries over the hot size, which memory keeps.
    async fn stored_verdict(
        &self,
        grant: &Grant,
        path: &ArtifactPath,
        headers: &HeaderMap,
    ) -> Option<Arc<VerifiedEntry>> {
        if !self.remote.get().keeps_verdicts() {
            return None;
        }
        let index = self.archive_index(grant, headers).await.ok()?;
        let entry = index.find(path.as_bytes()).filter(|e| e.size() > INLINE_MAX)?;
        let validator = self.remote.get().validator_keyed(&grant.key)?;
        // Verdicts are made only in versions a strong ETag names.
        if !matches!(validator, Validator::ETag(_)) {
            return None;
        }
        self.verified.stored(&grant.key, path, &entry, &validator).await
    }

    /// Whether `url` is of the upstream's origin.
    fn same_origin(&self, url: &str) -> bool {
        reqwest::Url::parse(url).is_ok_and(|u| u.origin() == self.origin.origin())
    }
}

/// The headers a read under `grant` carries: the caller's credentials when it reads at the
/// upstream's own download.
fn headers_of(grant: &Grant, credentials: &HeaderMap) -> HeaderMap {
    if grant.credentials { credentials.clone() } else { HeaderMap::new() }
}

/// What an engine error is for the caller: the entry is not there (`404`), the upstream or
/// object storage failed (`502`, `504` when it timed out), or the archive is bad (`500`).
fn engine_error(e: EngineError) -> Response {
    engine_api_error(e).into_response()
}

/// What an engine error is for the caller, as an [`ApiError`]: the entry is not there
/// (`404`), the upstream or object storage failed (`502`, `504` when it timed out, with the
/// proxy's own bodies), or the archive is bad (`500`).
pub fn engine_api_error(e: EngineError) -> ApiError {
    match e {
        EngineError::NotFound { .. } | EngineError::ArchiveNotFound { .. } => ApiError::NotFound("Not found"),
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
fn version_tag(key: &str, validator: &Validator) -> Arc<str> {
    let validator = validator.as_str();
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{key}|{validator}").as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect::<String>().into()
}

/// A body of `stream`, counted in flight until the stream is done or dropped (dropping it
/// closes its upstream connection: a client that goes away stops the upstream read).
fn in_flight<S>(proxy: &Proxy, stream: S) -> Body
where
    S: futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
{
    let streaming = proxy.metrics.stream();
    Body::from_stream(stream.inspect(move |_| {
        let _ = &streaming;
    }))
}

/// How an entry of the archive version `version` is answered: its `ETag` (the version, the
/// entry's CRC-32 and size), its headers, and whether ranges of it are served (`ranges`:
/// it verified in this version).
fn representation(
    entry: &artifact_core::Entry,
    version: &str,
    path: &ArtifactPath,
    ranges: bool,
) -> Result<Representation, ApiError> {
    let (crc, size) = (entry.crc32(), entry.size());
    let etag = format!("\"{version}-{crc:08x}-{size}\"");
    let mut headers = entry_headers(path)?;
    if entry.method() == 8 {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    Ok(Representation { len: size, etag, last_modified: None, headers, ranges })
}

/// Answers from a small entry's verified bytes (a range of them, `304`, `HEAD`, or a
/// deflated one's gzip member, kept with them).
fn answer_small(hot: &Hot, requested: &HeaderMap, head: bool) -> Result<Response, ApiError> {
    hot.answer(requested, head).unwrap_or_else(|| Err(ApiError::internal("a kept entry without its answer")))
}

/// Answers for an opened entry: small ones are read and verified before the headers go
/// out (and kept in memory); larger ones stream through the engine's verified reader,
/// which aborts the connection on a late failure.
async fn read_entry(
    proxy: &Proxy,
    mut entry: AsyncEntry,
    (key, version): (&Arc<str>, Arc<str>),
    path: &ArtifactPath,
    requested: &HeaderMap,
    head: bool,
) -> Result<Response, Response> {
    // Ranges only of an entry whose whole read verified in this process, in this version.
    let known = proxy.verified.of(key, path, &entry.identity().validator);
    let verified = known.is_some();
    let rep = representation(entry.entry(), &version, path, verified).map_err(IntoResponse::into_response)?;
    let (size, deflated) = (entry.entry().size(), entry.entry().method() == 8);
    if size <= INLINE_MAX {
        // A deflated one with its gzip member from the same read: either face from memory.
        let (bytes, member) = entry.read_all_with_member().await.map_err(engine_error)?;
        let mut hot = Hot::new(bytes, rep.etag, None, rep.headers);
        if let Some(member) = member {
            let overhead = (artifact_core::gzip::HEADER.len() + 8) as u64;
            hot.compressed = Some(member.len() as u64 - overhead);
            hot.gzip = Some(member);
        }
        let hot = Arc::new(hot);
        proxy.hot.put(&version, path, hot.clone());
        return answer_small(&hot, requested, head).map_err(IntoResponse::into_response);
    }
    // The verifying read records checkpoints too (one read per entry at a time): later
    // ranges start near their offset.
    let recording = (deflated && size > MIN_ENTRY && !head && known.is_none_or(|v| v.checkpoints().is_none()))
        .then(|| proxy.verified.start_recording(key, path))
        .flatten();
    if recording.is_some() {
        // At most 256 checkpoints (8 MiB of windows at worst) however large the entry.
        entry.keep_checkpoints(DEFAULT_SPACING.max(size / 256)).map_err(engine_error)?;
    }
    let verdict = Some((proxy.verified.clone(), key.clone(), path.clone()));
    // Gzip passthrough: the compressed bytes as they come, verified alongside, the trailer
    // only after they checked out. Not for a range of a verified entry, which is answered
    // as a window of the entry's own bytes.
    let compressed = entry.entry().compressed_size();
    let window_asked = verified && requested.contains_key(header::RANGE);
    if let Some(gz) = (deflated && !window_asked).then(|| gzip_representation(&rep, requested, compressed)).flatten() {
        if gz.plan(requested).map_err(IntoResponse::into_response)? == Plan::NotModified {
            return Ok(gz.not_modified());
        }
        if head {
            return Ok(gz.full(None));
        }
        return Ok(
            gz.full(Some(in_flight(proxy, Verdict { inner: entry.into_gzip(), verdict, _recording: recording })))
        );
    }
    match rep.plan(requested).map_err(IntoResponse::into_response)? {
        Plan::NotModified => Ok(rep.not_modified()),
        Plan::Partial(ranges) if ranges.len() == 1 => {
            let (start, end) = ranges[0];
            if head {
                return Ok(rep.partial((start, end), None));
            }
            let window = entry.into_window(start, end - start).map_err(engine_error)?;
            Ok(rep.partial((start, end), Some(in_flight(proxy, window))))
        }
        // The whole entry: asked for, or several ranges (answered whole, as RFC 9110 allows).
        _ if head => Ok(rep.full(None)),
        _ => Ok(rep.full(Some(in_flight(proxy, Verdict { inner: entry, verdict, _recording: recording })))),
    }
}
