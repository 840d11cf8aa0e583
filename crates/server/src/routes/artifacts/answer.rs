//! Answering one verified entry: its `Content-Type` and `Content-Disposition`, the gzip
//! passthrough framing, and what the answer is (a 304, a body read before the headers, a
//! stream), decided in one place and turned into a response in another.

use std::io::Read;

use artifact_core::EntryReader;
pub(crate) use artifact_gitlab::entry::{
    GZIP_HEADER, INLINE_MAX, artifact_path, entry_headers, gzip_member, gzip_representation, gzip_trailer,
};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::delivery::{Representation, body_of};

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
