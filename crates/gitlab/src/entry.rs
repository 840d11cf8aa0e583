//! Answering one verified entry, the parts every server and proxy of GitLab's API shares:
//! the artifact path from a raw URL (the path rule's `400`), the headers an entry is
//! answered with (`Content-Type` by extension as Workhorse sets it, `Content-Disposition:
//! attachment`, `nosniff`), and the gzip passthrough representation of a deflated entry.

use std::io::Read;

use artifact_core::{ArtifactPath, EntryReader};
use axum::http::{HeaderMap, HeaderValue, header};
use bytes::Bytes;

use crate::delivery::{Plan, Representation};
use crate::error::{ApiError, ApiResult};

/// A single file's artifact path from the raw (still percent-encoded) URL: decoded once,
/// then the path rule; a break is the 400 GitLab gives.
pub fn artifact_path(raw: &str) -> ApiResult<ArtifactPath> {
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    ArtifactPath::new(&decoded).map_err(|e| ApiError::InvalidParam(format!("artifact_path is invalid: {e}")))
}

/// The headers every answer for the file at `path` carries: `Content-Type` by extension,
/// `Content-Disposition: attachment` and `nosniff`.
pub fn entry_headers(path: &ArtifactPath) -> ApiResult<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path.file_name())));
    headers.insert(header::CONTENT_DISPOSITION, disposition(path.file_name())?);
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    Ok(headers)
}

/// `Content-Type` by extension, from Go's built-in table as Workhorse uses it.
pub(crate) fn content_type(name: &str) -> &'static str {
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
pub fn gzip_representation(identity: &Representation, req: &HeaderMap, compressed: u64) -> Option<Representation> {
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

/// The gzip header a passthrough member starts with.
pub use artifact_core::gzip::HEADER as GZIP_HEADER;
/// The gzip trailer a passthrough member ends with.
pub use artifact_core::gzip::trailer as gzip_trailer;

/// Bodies up to this size are read before the headers are sent: one trip to the blocking
/// pool per request, and a bad entry is a 500 instead of an aborted body.
pub const INLINE_MAX: u64 = 64 * 1024;

/// A whole gzip member around the entry's raw deflate bytes, in memory.
pub fn gzip_member(reader: EntryReader) -> std::io::Result<Bytes> {
    let (crc, size, csize) = (reader.entry().crc32(), reader.entry().size(), reader.entry().compressed_size());
    let mut out = Vec::with_capacity(GZIP_HEADER.len() + csize as usize + 8);
    out.extend_from_slice(&GZIP_HEADER);
    // The compressed reader ends with an error, never early, and never runs past the entry.
    reader.into_compressed().read_to_end(&mut out)?;
    out.extend_from_slice(&gzip_trailer(crc, size));
    Ok(Bytes::from(out))
}
