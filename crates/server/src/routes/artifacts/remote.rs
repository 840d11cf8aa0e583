//! Small entries of archives in object storage, answered on the async workers: the entry's
//! one ranged `GET` awaited on the serving runtime ([`Blobs::read_async`]), its bytes
//! decoded and checked by the engine's sans-io decoder, then answered as a kept entry is
//! (the whole entry, a range, gzip). `HEAD` and conditional requests, which need no bytes,
//! go to the blocking path, which answers them from the index alone. No trip to the blocking pool and no hop to
//! the object client's runtime: what is left per request is the object `GET` itself.
//!
//! [`Blobs::read_async`]: crate::blobs::Blobs::read_async

use artifact_core::{ArtifactPath, Entry, EntryDecoder, Index};
use axum::http::header;
use axum::response::Response;
use bytes::{Buf, Bytes};

use super::answer::{GZIP_HEADER, INLINE_MAX, entry_headers, gzip_trailer};
use super::{Asker, entry_tag};
use crate::blobs::{Blobs, OpenBlob};
use crate::error::{ApiError, ApiResult};
use crate::hot::Hot;
use crate::model::BlobRef;
use crate::verdicts::{Verdict, Verdicts};

/// The answer for the entry at `path` when it is small and verified and the blob layer
/// reads asynchronously; `None` otherwise (or when the request wants the gzip form of an
/// entry whose member could not be made), for the blocking path to answer.
pub(super) async fn small_entry(
    ask: &Asker,
    archive_ref: &BlobRef,
    blob: &OpenBlob,
    index: &Index,
    verdicts: &Verdicts,
    path: &ArtifactPath,
) -> Option<ApiResult<Response>> {
    let entry = index.find(path.as_bytes())?;
    // Small in both forms (a verified entry's data may run past its deflate stream: its
    // compressed size bounds what is read and held), a file, and verified.
    let small = entry.size() <= INLINE_MAX && entry.compressed_size() <= INLINE_MAX;
    if !small || entry.is_dir() || !matches!(verdicts.of(&entry), Verdict::Verified) {
        return None;
    }
    // What is answered without the entry's bytes (`HEAD`, a validator to compare) is not
    // worth an object request: the blocking path answers it from the index.
    let conditional = [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE, header::IF_MATCH, header::IF_UNMODIFIED_SINCE];
    if ask.head || conditional.iter().any(|h| ask.headers.contains_key(h)) {
        return None;
    }
    let blobs = &*ask.state.inner.blobs;
    let data_limit = index.central_directory().data_limit();
    let (bytes, member) = match read(blobs, &archive_ref.key, &entry, data_limit).await? {
        Ok(read) => read,
        Err(e) => return Some(Err(e)),
    };
    let mut headers = match entry_headers(path) {
        Ok(headers) => headers,
        Err(e) => return Some(Err(e)),
    };
    let deflated = entry.method() == 8;
    if deflated {
        headers.insert(axum::http::header::VARY, axum::http::HeaderValue::from_static("Accept-Encoding"));
    }
    let mut hot = Hot::new(bytes, entry_tag(archive_ref, &entry), Some(blob.modified), headers);
    hot.compressed = deflated.then(|| entry.compressed_size());
    hot.gzip = member;
    let hot = std::sync::Arc::new(hot);
    if ask.state.inner.hot.enabled() {
        ask.state.inner.hot.put(&std::sync::Arc::from(archive_ref.key.as_str()), path, hot.clone());
    }
    hot.answer(&ask.headers, ask.head)
}

/// The verified bytes of `entry` of the blob `key`, read with [`Blobs::read_async`], and a
/// deflated entry's gzip member (header, its deflate bytes, trailer) from the same read.
/// `None`: the layer reads no other way than blocking.
async fn read(
    blobs: &dyn Blobs,
    key: &str,
    entry: &Entry,
    data_limit: u64,
) -> Option<ApiResult<(Bytes, Option<Bytes>)>> {
    let mut decoder = match EntryDecoder::new(entry.clone(), data_limit) {
        Ok(decoder) => decoder,
        Err(e) => return Some(Err(ApiError::internal(e))),
    };
    // One byte of room past the entry: the decoder always has somewhere to write.
    let mut out = vec![0u8; entry.size() as usize + 1];
    let (mut written, mut pending, mut last) = (0, Bytes::new(), (0, Bytes::new()));
    let mut idle = 0;
    while !decoder.is_done() {
        if let Some((offset, len)) = decoder.next_range() {
            let bytes = match blobs.read_async(key, offset..offset.saturating_add(len))?.await {
                Ok(bytes) => bytes,
                Err(e) => return Some(Err(ApiError::internal(e))),
            };
            (pending, last) = (bytes.clone(), (offset, bytes));
        }
        if pending.is_empty() && decoder.needs_input() {
            return Some(Err(ApiError::internal(decoder.end_of_input())));
        }
        let step = match decoder.decode(&pending, &mut out[written..]) {
            Ok(step) => step,
            Err(e) => return Some(Err(ApiError::internal(e))),
        };
        pending.advance(step.consumed);
        written += step.produced;
        // The decoder moves on every call it is given input or owes output; a bound anyway.
        idle = if step.consumed + step.produced == 0 { idle + 1 } else { 0 };
        if idle > 16 {
            return Some(Err(ApiError::internal("the entry's decoder made no progress")));
        }
    }
    out.truncate(written);
    let member = (entry.method() == 8).then(|| member(entry, decoder.data_offset()?, &last)).flatten();
    Some(Ok((Bytes::from(out), member)))
}

/// The gzip member of a deflated `entry` whose data starts at `data` and lies within the
/// bytes read at `at`.
fn member(entry: &Entry, data: u64, (at, bytes): &(u64, Bytes)) -> Option<Bytes> {
    let from = usize::try_from(data.checked_sub(*at)?).ok()?;
    let to = from.checked_add(usize::try_from(entry.compressed_size()).ok()?)?;
    let compressed = bytes.get(from..to)?;
    let mut member = Vec::with_capacity(GZIP_HEADER.len() + compressed.len() + 8);
    member.extend_from_slice(&GZIP_HEADER);
    member.extend_from_slice(compressed);
    member.extend_from_slice(&gzip_trailer(entry.crc32(), entry.size()));
    Some(Bytes::from(member))
}
