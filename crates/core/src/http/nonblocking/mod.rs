//! Entries of remote archives on async I/O: no thread waits on the network.
//!
//! The index is found as for the blocking reader (cached, or loaded once); the entry's
//! range is then asked for with one request on hyper's async client, and its body frames are
//! fed to the same [`EntryDecoder`] the blocking [`EntryReader`](crate::EntryReader)
//! drives: the header checks, the inflate, the size and CRC-32 checks are written once, and
//! end of stream is only reported for verified data.
//!
//! Memory per stream is bounded: the connection reads at most [`HttpOptions::read_buffer`](super::HttpOptions::read_buffer) bytes at a
//! time, the stream yields at most [`OUT_CHUNK`] bytes per item, and nothing is read from
//! the upstream until the consumer asks for the next item, so a slow consumer holds back
//! the upstream through TCP flow control instead of piling bytes up here. Dropping the
//! stream closes its connection: a cancelled download stops reading the upstream.
//!
//! A body that breaks mid-way ends the stream with an error (the blocking reader resumes
//! from the next byte instead; a server relaying the stream aborts its own response).
#![forbid(unsafe_code)]

mod entry;
mod frames;
mod verdict_bytes;
mod verified;
mod window;

pub use self::entry::{AsyncEntry, GzipEntry};
use self::frames::Frames;
pub use self::verified::{VerifiedEntry, VerifiedWindow};
pub use self::window::EntryWindow;

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body as _, Incoming};
use hyper::header::HeaderMap;
use url::Url;

use super::client::transport;
use super::{HttpClient, Ranged, RemoteIdentity, http_error, shown};

use crate::entry::Entry;
use crate::error::{Error, HttpProblem, Result};
use crate::reader::EntryDecoder;
use crate::source::ReadCounter;

/// The most uncompressed bytes one stream item carries.
pub const OUT_CHUNK: usize = 64 * 1024;

/// Steps (decoder or inflate calls, body frames) without output in one poll before the
/// task yields (a deflate stream of empty blocks arriving as fast as it is read would
/// otherwise hold its worker).
const YIELD_AFTER_STEPS: usize = 64;

/// One checked range request for `start..end` of the located archive: the body.
/// A redirect of it is followed where `at` allows ([`RemoteEntry::follow`]): `at` then
/// reads at the chain's end from here on (its URL, headers and identity's URL).
async fn range(
    client: &HttpClient,
    at: &mut std::borrow::Cow<'_, RemoteEntry>,
    span: (u64, u64),
    counter: &ReadCounter,
) -> Result<Incoming> {
    let ranged =
        Ranged { url: &at.url, headers: &at.headers, validator: &at.identity.validator, size: at.identity.size };
    let (body, moved) = ranged.range_following(client, span, counter, at.follow.as_ref()).await?;
    if let Some((url, headers)) = moved {
        let at = at.to_mut();
        at.identity.url = url.to_string();
        (at.url, at.headers) = (url, headers);
    }
    Ok(body)
}

/// An entry found in a remote archive's index, with what reading it takes: made by
/// [`RemoteArchives::locate_with`](super::RemoteArchives::locate_with).
#[derive(Debug, Clone)]
pub struct RemoteEntry {
    pub(super) entry: Entry,
    pub(super) data_limit: u64,
    /// Where ranges are read (the end of the first request's redirects).
    pub(super) url: Url,
    /// The headers for `url` (credentials only if it is the origin first asked).
    pub(super) headers: HeaderMap,
    pub(super) identity: RemoteIdentity,
    /// Whether a redirect of `url` is followed (a download URL given with a known index
    /// may answer with one), and how.
    pub(super) follow: Option<super::Follow>,
}

impl RemoteEntry {
    /// The entry, as the central directory describes it.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The archive version the index was read from (what a read checks with `If-Match`).
    pub fn identity(&self) -> &RemoteIdentity {
        &self.identity
    }

    /// A strong `ETag` for the entry's bytes in this archive version ([`etag`](super::etag)).
    pub fn etag(&self) -> String {
        super::etag(&self.identity, &self.entry)
    }
}
