//! Answering one verified entry: its `Content-Type` and `Content-Disposition`, the gzip
//! passthrough framing, and what the answer is (a 304, a body read before the headers, a
//! stream), decided in one place and turned into a response in another.

use std::io::Read;

use artifact_core::{ArtifactPath, EntryReader};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::delivery::{Plan, Representation, body_of};
use crate::error::{ApiError, ApiResult};

/// A single file's artifact path from the raw (still percent-encoded) URL: decoded once,
/// then the path rule; a break is the 400 GitLab gives.
pub(crate) fn artifact_path(raw: &str) -> ApiResult<ArtifactPath> {
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    ArtifactPath::new(&decoded).map_err(|e| ApiError::InvalidParam(format!("artifact_path is invalid: {e}")))
}

/// The headers every answer for the file at `path` carries: `Content-Type` by extension,
/// `Content-Disposition: attachment` and `nosniff`.
pub(crate) fn entry_headers(path: &ArtifactPath) -> ApiResult<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path.file_name())));
    headers.insert(header::CONTENT_DISPOSITION, disposition(path.file_name())?);
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    Ok(headers)
}

/// `Content-Type` by extension, from Go's built-in table as Workhorse uses it.
fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "avif" => "image/avif",
        "css" => "text/css; charset=utf-8",
        "gif" => "image/gif",
        "htm" | "html" => "text/html; charset=utf-8",
        "jpeg" | "jpg" => "image/jpeg",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        "webp" => "image/webp",
        "xml" => "text/xml; charset=utf-8",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

/// `attachment; filename="<basename>"` with quotes and backslashes escaped, and RFC 5987's
/// `filename*` for names that are not ASCII.
fn disposition(basename: &str) -> ApiResult<HeaderValue> {
    let escaped: String = basename
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let mut value = format!("attachment; filename=\"{escaped}\"");
    if !basename.is_ascii() {
        let enc = percent_encoding::utf8_percent_encode(basename, percent_encoding::NON_ALPHANUMERIC);
        value.push_str(&format!("; filename*=UTF-8''{enc}"));
    }
    HeaderValue::from_bytes(value.as_bytes()).map_err(ApiError::internal)
}

/// The gzip passthrough representation of a deflated entry whose identity representation
/// is `identity`, if this request gets it: a client that takes gzip and asks for the whole
/// entry, unless it names the identity tag in `If-Match`. The preconditions are then
/// evaluated against the one chosen.
pub(crate) fn gzip_representation(
    identity: &Representation,
    req: &HeaderMap,
    compressed: u64,
) -> Option<Representation> {
    let whole = matches!(identity.plan_after_preconditions(req), Ok(Plan::Full));
    let wants_identity = req
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|list| list.split(',').any(|t| t.trim() == identity.etag));
    if !whole || wants_identity || !accepts_gzip(req) {
        return None;
    }
    let mut headers = identity.headers.clone();
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    Some(Representation {
        len: GZIP_HEADER.len() as u64 + compressed + 8,
        etag: format!("{}-gz\"", identity.etag.trim_end_matches('"')),
        last_modified: identity.last_modified,
        headers,
        ranges: false,
    })
}

fn accepts_gzip(req: &HeaderMap) -> bool {
    req.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q_zero = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
        });
        (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")) && !q_zero
    })
}

/// What one entry request turned into, decided in one trip to the blocking pool.
pub(super) enum EntryAnswer {
    NotModified(Representation),
    /// A small body, read (and verified) before the headers go out.
    Inline(Representation, Option<(u64, u64)>, Bytes),
    Head(Representation, Option<(u64, u64)>),
    Full(Representation, EntryReader),
    Gzip(Representation, EntryReader),
    Window(Representation, (u64, u64), Box<dyn Read + Send>),
    /// A range of a deflated entry: inflate and drop up to the start (in steps that stop
    /// when the client goes away), then the range.
    Skip(Representation, (u64, u64), EntryReader),
    /// A whole entry from another verified reader (a large deflated entry inflated from its
    /// checkpoints on several cores).
    Stream(Representation, Box<dyn Read + Send>),
    /// A range of a large deflated entry from its nearest checkpoint: the reader inflates
    /// from there, the first `u64` bytes are dropped, then the range.
    Resume(Representation, (u64, u64), u64, Box<dyn Read + Send>),
}

pub(super) fn respond(answer: EntryAnswer) -> Response {
    match answer {
        EntryAnswer::NotModified(rep) => rep.not_modified(),
        EntryAnswer::Inline(rep, None, body) => rep.full(Some(Body::from(body))),
        EntryAnswer::Inline(rep, Some(w), body) => rep.partial(w, Some(Body::from(body))),
        EntryAnswer::Head(rep, None) => rep.full(None),
        EntryAnswer::Head(rep, Some(w)) => rep.partial(w, None),
        EntryAnswer::Full(rep, reader) => rep.full(Some(Body::from_stream(artifact_core::stream_entry(reader)))),
        EntryAnswer::Stream(rep, reader) => rep.full(Some(Body::from_stream(artifact_core::stream_reader(reader)))),
        EntryAnswer::Gzip(rep, reader) => {
            let (crc, size) = (reader.entry().crc32(), reader.entry().size());
            let csize = reader.entry().compressed_size();
            let trailer = gzip_trailer(crc, size).to_vec();
            let head = futures_util::stream::once(std::future::ready(Ok(Bytes::from_static(&GZIP_HEADER))));
            let data = artifact_core::stream_window(reader.into_compressed(), 0, csize);
            let tail = futures_util::stream::once(std::future::ready(Ok(Bytes::from(trailer))));
            rep.full(Some(Body::from_stream(head.chain(data).chain(tail))))
        }
        EntryAnswer::Window(rep, (s, e), reader) => rep.partial((s, e), Some(body_of(reader, e - s))),
        EntryAnswer::Skip(rep, (s, e), reader) => {
            rep.partial((s, e), Some(Body::from_stream(artifact_core::stream_window(reader, s, e - s))))
        }
        EntryAnswer::Resume(rep, (s, e), skip, reader) => {
            rep.partial((s, e), Some(Body::from_stream(artifact_core::stream_window(reader, skip, e - s))))
        }
    }
}

pub(crate) use artifact_core::gzip::HEADER as GZIP_HEADER;
pub(crate) use artifact_core::gzip::trailer as gzip_trailer;

/// Bodies up to this size are read before the headers are sent: one trip to the blocking
/// pool per request, and a bad entry is a 500 instead of an aborted body.
pub(crate) const INLINE_MAX: u64 = 64 * 1024;

/// A whole gzip member around the entry's raw deflate bytes, in memory.
pub(super) fn gzip_member(reader: EntryReader) -> std::io::Result<Bytes> {
    let (crc, size, csize) = (reader.entry().crc32(), reader.entry().size(), reader.entry().compressed_size());
    let mut out = Vec::with_capacity(GZIP_HEADER.len() + csize as usize + 8);
    out.extend_from_slice(&GZIP_HEADER);
    // The compressed reader ends with an error, never early, and never runs past the entry.
    reader.into_compressed().read_to_end(&mut out)?;
    out.extend_from_slice(&gzip_trailer(crc, size));
    Ok(Bytes::from(out))
}
