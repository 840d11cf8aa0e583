//! Answering a download: conditional requests (`If-Match`, `If-Unmodified-Since`,
//! `If-None-Match`, `If-Modified-Since`, in RFC 9110 §13.2.2's order), ranges
//! (`Range`, `If-Range`, single and multipart), `HEAD`, and bodies streamed from blocking
//! readers. A body whose reader fails after the headers ends in an error, which makes hyper
//! abort the connection: a client never sees a truncated body as a complete one.

use std::io::Read;
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::error::{ApiError, ApiResult};
use artifact_core::{RangeRequest, parse_range};

/// One representation to deliver: its length, validators and descriptive headers.
#[derive(Debug, Clone)]
pub struct Representation {
    /// Its length in bytes.
    pub len: u64,
    /// A strong entity tag, quoted.
    pub etag: String,
    /// `Last-Modified`, when it has one.
    pub last_modified: Option<SystemTime>,
    /// `Content-Type`, `Content-Disposition` and the like.
    pub headers: HeaderMap,
    /// Whether `Range` is honoured.
    pub ranges: bool,
}

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// `304 Not Modified`.
    NotModified,
    /// The whole representation (`200`).
    Full,
    /// These ranges, `[start, end)` each (`206`; more than one: `multipart/byteranges`).
    Partial(Vec<(u64, u64)>),
}

fn header_str(req: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    req.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `list` (an `If-Match` value) names `etag`, by strong comparison: `*`, or a tag
/// equal to it that is not weak (RFC 9110 §13.1.1).
pub fn strong_match(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| t == "*" || (!t.starts_with("W/") && t == etag))
}

/// Whether `list` (an `If-None-Match` value) names `etag`, by weak comparison.
fn none_match(list: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    list.split(',').any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

fn http_seconds(t: SystemTime) -> Option<u64> {
    t.duration_since(SystemTime::UNIX_EPOCH).ok().map(|d| d.as_secs())
}

impl Representation {
    /// Decides what to send for the request headers `req` of a `GET` or `HEAD`: the
    /// preconditions in RFC 9110 §13.2.2's order (a failed `If-Match` or
    /// `If-Unmodified-Since` is 412), then `Range` with `If-Range`.
    pub fn plan(&self, req: &HeaderMap) -> ApiResult<Plan> {
        self.preconditions(req)?;
        self.plan_after_preconditions(req)
    }

    /// Steps 1 and 2 of RFC 9110 §13.2.2: `If-Match` (strong comparison), or without it
    /// `If-Unmodified-Since`; failing either is 412.
    pub fn preconditions(&self, req: &HeaderMap) -> ApiResult<()> {
        if req.contains_key(header::IF_MATCH) {
            // A value that is not text matches nothing.
            if !header_str(req, header::IF_MATCH).is_some_and(|list| strong_match(list, &self.etag)) {
                return Err(ApiError::PreconditionFailed);
            }
        } else if let (Some(since), Some(modified)) = (header_str(req, header::IF_UNMODIFIED_SINCE), self.last_modified)
            && let Ok(since) = httpdate::parse_http_date(since)
            && http_seconds(modified) > http_seconds(since)
        {
            return Err(ApiError::PreconditionFailed);
        }
        Ok(())
    }

    /// The rest of [`plan`](Self::plan): `If-None-Match` or `If-Modified-Since`, then
    /// `Range` with `If-Range`.
    pub fn plan_after_preconditions(&self, req: &HeaderMap) -> ApiResult<Plan> {
        if let Some(list) = header_str(req, header::IF_NONE_MATCH) {
            if none_match(list, &self.etag) {
                return Ok(Plan::NotModified);
            }
        } else if let (Some(since), Some(modified)) = (header_str(req, header::IF_MODIFIED_SINCE), self.last_modified)
            && let Ok(since) = httpdate::parse_http_date(since)
            && http_seconds(modified) <= http_seconds(since)
        {
            return Ok(Plan::NotModified);
        }
        let Some(range) = header_str(req, header::RANGE).filter(|_| self.ranges) else {
            return Ok(Plan::Full);
        };
        if let Some(cond) = header_str(req, header::IF_RANGE) {
            let cond = cond.trim();
            let fresh = if cond.starts_with('"') {
                cond == self.etag
            } else if cond.starts_with("W/") {
                false
            } else {
                match (httpdate::parse_http_date(cond), self.last_modified) {
                    (Ok(date), Some(modified)) => http_seconds(date) == http_seconds(modified),
                    _ => false,
                }
            };
            if !fresh {
                return Ok(Plan::Full);
            }
        }
        match parse_range(range, self.len) {
            RangeRequest::Full => Ok(Plan::Full),
            // Overlapping ranges that add up to more than the whole: the whole, once.
            RangeRequest::Partial(r) if r.iter().map(|(s, e)| e - s).sum::<u64>() > self.len => Ok(Plan::Full),
            RangeRequest::Partial(r) => Ok(Plan::Partial(r)),
            RangeRequest::Unsatisfiable => Err(ApiError::RangeNotSatisfiable(self.len)),
        }
    }

    fn base(&self, status: StatusCode) -> Response {
        let mut resp = status.into_response();
        let h = resp.headers_mut();
        if status != StatusCode::NOT_MODIFIED {
            h.extend(self.headers.clone());
        } else if let Some(vary) = self.headers.get(header::VARY) {
            // A 304 repeats what the 200 would have said about variants (RFC 9110 15.4.5).
            h.insert(header::VARY, vary.clone());
        }
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            h.insert(header::ETAG, v);
        }
        if let Some(t) = self.last_modified
            && let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(t))
        {
            h.insert(header::LAST_MODIFIED, v);
        }
        if self.ranges {
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        }
        resp
    }

    /// `304` with the validators and no body.
    pub fn not_modified(&self) -> Response {
        self.base(StatusCode::NOT_MODIFIED)
    }

    /// 200 with `len` bytes of body (none for `HEAD`).
    pub fn full(&self, body: Option<Body>) -> Response {
        self.with_body(StatusCode::OK, self.len, body)
    }

    /// 206 for one range.
    pub fn partial(&self, (start, end): (u64, u64), body: Option<Body>) -> Response {
        let mut resp = self.with_body(StatusCode::PARTIAL_CONTENT, end - start, body);
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{}", end - 1, self.len)) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        resp
    }

    fn with_body(&self, status: StatusCode, len: u64, body: Option<Body>) -> Response {
        let mut resp = self.base(status);
        *resp.body_mut() = body.unwrap_or_default();
        resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        resp
    }

    /// 206 `multipart/byteranges`; `open` gives each range's bytes. The parts are opened one
    /// after the other as the body is sent.
    pub fn multipart<F>(&self, ranges: Vec<(u64, u64)>, head: bool, open: F) -> ApiResult<Response>
    where
        F: Fn(u64, u64) -> std::io::Result<Box<dyn Read + Send>> + Send + Sync + 'static,
    {
        let boundary = random_boundary().map_err(ApiError::internal)?;
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let total = self.len;
        let part_head = {
            let boundary = boundary.clone();
            move |(s, e): (u64, u64)| {
                format!(
                    "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {s}-{}/{total}\r\n\r\n",
                    e - 1
                )
            }
        };
        let closing = format!("\r\n--{boundary}--\r\n");
        let len: u64 =
            ranges.iter().map(|&r| part_head(r).len() as u64 + (r.1 - r.0)).sum::<u64>() + closing.len() as u64;
        let mut h = self.headers.clone();
        let ct = format!("multipart/byteranges; boundary={boundary}");
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(&ct).map_err(ApiError::internal)?);
        let rep = Representation { headers: h, ..self.clone() };
        let body = (!head).then(|| {
            let parts = futures_util::stream::iter(ranges).flat_map(move |r| {
                let head = futures_util::stream::once(std::future::ready(Ok(Bytes::from(part_head(r)))));
                let data = match open(r.0, r.1 - r.0) {
                    Ok(reader) => artifact_core::stream_window(reader, 0, r.1 - r.0).boxed(),
                    Err(e) => futures_util::stream::once(std::future::ready(Err(e))).boxed(),
                };
                head.chain(data)
            });
            let tail = futures_util::stream::once(std::future::ready(Ok(Bytes::from(closing))));
            Body::from_stream(parts.chain(tail))
        });
        Ok(rep.with_body(StatusCode::PARTIAL_CONTENT, len, body))
    }
}

/// A body streamed from a blocking reader that must yield exactly `len` bytes.
pub fn body_of(reader: impl Read + Send + 'static, len: u64) -> Body {
    Body::from_stream(artifact_core::stream_window(reader, 0, len))
}

/// A multipart boundary no body contains by chance: 128 bits from the operating system's
/// generator, as hex.
fn random_boundary() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep() -> Representation {
        Representation {
            len: 100,
            etag: "\"abc\"".into(),
            last_modified: Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)),
            headers: HeaderMap::new(),
            ranges: true,
        }
    }

    fn req(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap())).collect()
    }

    #[test]
    fn conditional_requests() {
        let r = rep();
        assert_eq!(r.plan(&req(&[(header::IF_NONE_MATCH, "\"x\", W/\"abc\"")])).unwrap(), Plan::NotModified);
        assert_eq!(r.plan(&req(&[(header::IF_NONE_MATCH, "*")])).unwrap(), Plan::NotModified);
        assert_eq!(r.plan(&req(&[(header::IF_NONE_MATCH, "\"x\"")])).unwrap(), Plan::Full);
        let date = httpdate::fmt_http_date(r.last_modified.unwrap());
        assert_eq!(r.plan(&req(&[(header::IF_MODIFIED_SINCE, &date)])).unwrap(), Plan::NotModified);
    }

    #[test]
    fn if_match_compares_strongly_and_fails_with_412() {
        let r = rep();
        let plan = |pairs: &[(header::HeaderName, &str)]| r.plan(&req(pairs));
        assert_eq!(plan(&[(header::IF_MATCH, "\"abc\"")]).unwrap(), Plan::Full);
        assert_eq!(plan(&[(header::IF_MATCH, "*")]).unwrap(), Plan::Full);
        assert_eq!(plan(&[(header::IF_MATCH, "\"x\", \"abc\"")]).unwrap(), Plan::Full);
        for failing in ["\"x\"", "W/\"abc\"", "abc", ""] {
            assert!(matches!(plan(&[(header::IF_MATCH, failing)]), Err(ApiError::PreconditionFailed)), "{failing}");
        }
        // If-Match comes before If-None-Match and Range.
        let both = [(header::IF_MATCH, "\"abc\""), (header::IF_NONE_MATCH, "\"abc\"")];
        assert_eq!(plan(&both).unwrap(), Plan::NotModified);
        let ranged = [(header::IF_MATCH, "\"abc\""), (header::RANGE, "bytes=0-9")];
        assert_eq!(plan(&ranged).unwrap(), Plan::Partial(vec![(0, 10)]));
        let ranged = [(header::IF_MATCH, "\"old\""), (header::RANGE, "bytes=0-9")];
        assert!(matches!(plan(&ranged), Err(ApiError::PreconditionFailed)));
    }

    #[test]
    fn if_unmodified_since_fails_with_412_and_yields_to_if_match() {
        let r = rep();
        let plan = |pairs: &[(header::HeaderName, &str)]| r.plan(&req(pairs));
        let modified = r.last_modified.unwrap();
        let at = httpdate::fmt_http_date(modified);
        let before = httpdate::fmt_http_date(modified - std::time::Duration::from_secs(1));
        assert_eq!(plan(&[(header::IF_UNMODIFIED_SINCE, &at)]).unwrap(), Plan::Full);
        assert!(matches!(plan(&[(header::IF_UNMODIFIED_SINCE, &before)]), Err(ApiError::PreconditionFailed)));
        // An unreadable date is ignored; a matching If-Match means If-Unmodified-Since is not looked at.
        assert_eq!(plan(&[(header::IF_UNMODIFIED_SINCE, "yesterday")]).unwrap(), Plan::Full);
        assert_eq!(plan(&[(header::IF_MATCH, "\"abc\""), (header::IF_UNMODIFIED_SINCE, &before)]).unwrap(), Plan::Full);
    }

    #[test]
    fn if_range_needs_the_current_validator() {
        let r = rep();
        let range = (header::RANGE, "bytes=10-19");
        assert_eq!(
            r.plan(&req(&[range.clone(), (header::IF_RANGE, "\"abc\"")])).unwrap(),
            Plan::Partial(vec![(10, 20)])
        );
        assert_eq!(r.plan(&req(&[range.clone(), (header::IF_RANGE, "\"old\"")])).unwrap(), Plan::Full);
        assert_eq!(r.plan(&req(&[range.clone(), (header::IF_RANGE, "W/\"abc\"")])).unwrap(), Plan::Full);
        let date = httpdate::fmt_http_date(r.last_modified.unwrap());
        assert_eq!(r.plan(&req(&[range, (header::IF_RANGE, &date)])).unwrap(), Plan::Partial(vec![(10, 20)]));
        assert!(matches!(r.plan(&req(&[(header::RANGE, "bytes=100-")])), Err(ApiError::RangeNotSatisfiable(100))));
    }
}
