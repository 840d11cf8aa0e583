//! Entries of remote archives on async I/O: no thread waits on the network.
//!
//! The index is found as for the blocking reader (cached, or loaded once); the entry's
//! range is then asked for with one request on hyper's async client, and its body is fed to
//! the same [`EntryReader`] the blocking path uses, through a buffer that answers
//! `WouldBlock` when empty: the header checks, the inflate, the size and CRC-32 checks are
//! the engine's own, and end of stream is only reported for verified data.
//!
//! Memory per stream is bounded: the connection reads at most [`READ_BUFFER`] bytes at a
//! time, the stream yields at most [`OUT_CHUNK`] bytes per item, and nothing is read from
//! the upstream until the consumer asks for the next item, so a slow consumer holds back
//! the upstream through TCP flow control instead of piling bytes up here. Dropping the
//! stream closes its connection: a cancelled download stops reading the upstream.
//!
//! A body that breaks mid-way ends the stream with an error (the blocking reader resumes
//! from the next byte instead; a server relaying the stream aborts its own response).

mod entry;

pub use self::entry::{AsyncEntry, GzipEntry};

use std::collections::VecDeque;
use std::future::Future as _;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::Empty;
use hyper::body::{Body as _, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use reqwest::Url;
use reqwest::header::{self, HeaderMap};

use super::destinations::Resolver;
use super::{HttpOptions, RemoteIdentity, check_partial, http_error, shown};
use crate::entry::Entry;
use crate::error::{Error, HttpProblem, Result};
use crate::reader::{EntryReader, Unreadable, room, span_of};
use crate::source::ReadCounter;
use crate::zip::local_header::{self, FIXED_LEN};

/// The most one connection reads from its socket at a time (hyper's read buffer bound).
pub const READ_BUFFER: usize = 64 * 1024;
/// The most uncompressed bytes one stream item carries.
pub const OUT_CHUNK: usize = 64 * 1024;

/// The async HTTP client the streams share: a pool of keep-alive connections.
#[derive(Clone)]
pub(crate) struct AsyncClient {
    client: Client<HttpsConnector<HttpConnector<Resolver>>, Empty<Bytes>>,
    stall: Duration,
    destinations: super::Destinations,
}

impl std::fmt::Debug for AsyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncClient").field("stall", &self.stall).finish_non_exhaustive()
    }
}

impl AsyncClient {
    /// A client with `options`' connect and stall timeouts (it follows no redirects: range
    /// reads go to the URL the first request's redirects ended at).
    pub(crate) fn new(options: &HttpOptions) -> Result<AsyncClient> {
        let resolver = Resolver { refuse_link_local: options.destinations.refuse_link_local };
        let mut http = HttpConnector::new_with_resolver(resolver);
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(options.connect_timeout));
        // The provider is named: with two compiled in (another crate may enable aws-lc-rs),
        // rustls cannot pick a process default by itself.
        let provider = rustls::crypto::ring::default_provider();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| Error::Http { url: "client".into(), problem: HttpProblem::Transport(e.to_string()) })?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).http1_max_buf_size(READ_BUFFER).build(https);
        Ok(AsyncClient { client, stall: options.stall_timeout, destinations: options.destinations.clone() })
    }

    /// One checked range request for `start..end` of the located archive.
    async fn range(&self, at: &RemoteEntry, (start, end): (u64, u64), counter: &ReadCounter) -> Result<Incoming> {
        self.destinations.check(&at.url)?;
        let mut request = hyper::Request::get(at.url.as_str());
        if let Some(headers) = request.headers_mut() {
            headers.extend(at.headers.clone());
            let range = format!("bytes={start}-{}", end - 1);
            headers.insert(header::RANGE, range.parse().map_err(|_| transport(&at.url, "bad range"))?);
            if let Some((name, value)) = at.identity.validator.precondition() {
                headers.insert(name, value.parse().map_err(|_| transport(&at.url, "bad validator"))?);
            }
        }
        let request = request.body(Empty::new()).map_err(|e| transport(&at.url, &e.to_string()))?;
        counter.record_request();
        let response = match tokio::time::timeout(self.stall, self.client.request(request)).await {
            Err(_) => return Err(http_error(&at.url, HttpProblem::Timeout("no response in time".into()))),
            Ok(Err(e)) if e.is_connect() => return Err(http_error(&at.url, HttpProblem::Connect(e.to_string()))),
            Ok(Err(e)) => return Err(transport(&at.url, &e.to_string())),
            Ok(Ok(response)) => response,
        };
        let size = at.identity.size;
        check_partial(&at.url, response.status(), response.headers(), &at.identity.validator, (start, end), size)?;
        Ok(response.into_body())
    }
}

fn transport(url: &Url, why: &str) -> Error {
    http_error(url, HttpProblem::Transport(why.to_owned()))
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
}

/// Compressed bytes handed to an [`EntryReader`] as they arrive: `WouldBlock` while empty,
/// end of file once the body ended.
#[derive(Clone, Default)]
struct Feed(Arc<Mutex<FeedState>>);

#[derive(Default)]
struct FeedState {
    chunks: VecDeque<Bytes>,
    ended: bool,
}

impl Feed {
    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.lock().chunks.push_back(bytes);
        }
    }

    fn end(&self) {
        self.lock().ended = true;
    }
}

impl Read for Feed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.lock();
        let Some(front) = state.chunks.front_mut() else {
            return if state.ended { Ok(0) } else { Err(io::ErrorKind::WouldBlock.into()) };
        };
        let n = buf.len().min(front.len());
        buf[..n].copy_from_slice(&front[..n]);
        front.advance(n);
        if front.is_empty() {
            state.chunks.pop_front();
        }
        Ok(n)
    }
}
