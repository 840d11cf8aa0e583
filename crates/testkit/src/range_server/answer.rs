//! A range server's answers: what the state decided (status, headers, a planned body),
//! the body sent in chunks (and cut or slowed as the behaviour says), and the parsing of
//! `Range`, `If-Match` and `If-Range`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_core::Stream;

use super::{CHUNK, CUT_PAUSE, Shared};

/// A response decided under the lock, built once the lock is released.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: Vec<(header::HeaderName, String)>,
    /// `None` for an empty body (and for HEAD, whose Content-Length is set by hand).
    pub(super) body: Option<PlannedBody>,
}

pub(super) struct PlannedBody {
    pub(super) data: Bytes,
    /// Fail the body after this many bytes, closing the connection.
    pub(super) cut_at: Option<usize>,
}

impl Answer {
    pub(super) fn empty(status: StatusCode) -> Answer {
        Answer { status, headers: Vec::new(), body: None }
    }

    pub(super) fn with(mut self, name: header::HeaderName, value: impl Into<String>) -> Answer {
        self.headers.push((name, value.into()));
        self
    }

    pub(super) fn into_response(self, shared: Arc<Shared>) -> Response {
        let body = match self.body {
            Some(PlannedBody { data, cut_at }) => {
                Body::from_stream(ChunkedBody { data, pos: 0, cut_at, pause: None, failed: false, shared })
            }
            None => Body::empty(),
        };
        let mut builder = Response::builder().status(self.status);
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        // Only a header value we cannot encode (say, a `redirect_to` with a newline) fails.
        builder.body(body).unwrap_or_else(|e| {
            eprintln!("range_server: cannot build response: {e}");
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        })
    }
}

/// A body yielded in [`CHUNK`]-sized pieces that, if `cut_at` is set, stops there and fails,
/// which makes hyper abort the connection short of the announced Content-Length.
pub(super) struct ChunkedBody {
    pub(super) data: Bytes,
    pub(super) pos: usize,
    pub(super) cut_at: Option<usize>,
    pub(super) pause: Option<Pin<Box<tokio::time::Sleep>>>,
    pub(super) failed: bool,
    pub(super) shared: Arc<Shared>,
}

impl Stream for ChunkedBody {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let limit = this.cut_at.map_or(this.data.len(), |cut| cut.min(this.data.len()));
        if this.pos < limit {
            let end = limit.min(this.pos.saturating_add(CHUNK));
            let chunk = this.data.slice(this.pos..end);
            this.pos = end;
            this.shared.bytes_sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            return Poll::Ready(Some(Ok(chunk)));
        }
        if this.cut_at.is_none() || this.failed {
            return Poll::Ready(None);
        }
        let pause = this.pause.get_or_insert_with(|| Box::pin(tokio::time::sleep(CUT_PAUSE)));
        ready!(pause.as_mut().poll(cx));
        this.failed = true;
        let error = io::Error::new(io::ErrorKind::ConnectionAborted, "range_server: cut on purpose");
        Poll::Ready(Some(Err(error)))
    }
}

/// What a `Range` header asks of a body of `total` bytes (RFC 9110 §14.1.2).
#[derive(Debug, PartialEq)]
pub(super) enum RangeSpec {
    /// Answer 200 with everything: invalid syntax, another unit, or several ranges (which
    /// would need multipart/byteranges; this server keeps it simple and sends the whole body).
    Full,
    /// Answer 206 with bytes `start..=end`, `end < total`.
    Part { start: u64, end: u64 },
    /// Answer 416.
    Unsatisfiable,
}

pub(super) fn parse_range(value: &str, total: u64) -> RangeSpec {
    let Some(set) = value.trim().strip_prefix("bytes=") else {
        return RangeSpec::Full;
    };
    if set.contains(',') {
        return RangeSpec::Full;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match digits(suffix) {
            None => RangeSpec::Full,
            Some(0) => RangeSpec::Unsatisfiable,
            Some(_) if total == 0 => RangeSpec::Unsatisfiable,
            Some(n) => RangeSpec::Part { start: total - n.min(total), end: total - 1 },
        },
        (first, last) => {
            let Some(start) = digits(first) else {
                return RangeSpec::Full;
            };
            let end = if last.is_empty() { Some(u64::MAX) } else { digits(last) };
            match end {
                Some(end) if end >= start => {
                    if start >= total {
                        RangeSpec::Unsatisfiable
                    } else {
                        RangeSpec::Part { start, end: end.min(total - 1) }
                    }
                }
                _ => RangeSpec::Full,
            }
        }
    }
}

/// A decimal number of ASCII digits only (`u64::from_str` would also take `+5`).
pub(super) fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `If-Match` (RFC 9110 §13.1.1): `*` passes, otherwise one listed tag must equal the current
/// strong ETag (a weak tag never does).
pub(super) fn if_match_passes(condition: &str, etag: Option<&str>) -> bool {
    let condition = condition.trim();
    condition == "*" || etag.is_some_and(|etag| condition.split(',').any(|tag| tag.trim() == etag))
}

/// `If-Range` (RFC 9110 §13.1.5): an entity tag must equal the strong ETag, a date must equal
/// Last-Modified exactly.
pub(super) fn if_range_holds(condition: &str, etag: Option<&str>, last_modified: &str) -> bool {
    let condition = condition.trim();
    if condition.starts_with('"') || condition.starts_with("W/") {
        etag == Some(condition)
    } else {
        condition == last_modified
    }
}

/// `path` with exactly one leading `/`.
pub(super) fn absolute(path: &str) -> String {
    format!("/{}", path.trim_start_matches('/'))
}
