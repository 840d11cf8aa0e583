//! Archives behind HTTP(S): a [`Source`] made of range requests.
//!
//! Request 1 is a suffix range (`Range: bytes=-N`): it tells the size, the validator (`ETag`,
//! else `Last-Modified`) and that the server honours ranges, and usually brings the whole
//! central directory. Every later request goes straight to the final URL of the redirects,
//! carries `If-Match` (or `If-Range`) and is checked strictly: 206 and exactly the range asked
//! for, or the read fails at once. Bodies stream; a broken one resumes from the next byte.
#![forbid(unsafe_code)]

mod body;
mod client;
mod content_range;
mod destinations;
mod disk;
#[cfg(feature = "tokio")]
mod nonblocking;
mod redirect;
mod remote;
#[cfg(feature = "tokio")]
mod shared;
mod source;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{StatusCode, header};
use url::Url;

use crate::error::{Error, HttpProblem, Result, Unsupported};
use crate::source::{FileSource, RangeReader, ReadCounter, ReadStats, Source, check_range};

pub use body::RESUME_ATTEMPTS;
pub use client::{HttpClient, Proxies, READ_BUFFER, certificates_from_pem};
pub use destinations::{Destinations, is_link_local};
pub use disk::{DEFAULT_DISK_CACHE_BYTES, DiskCacheStats};
/// The header types the calls here take (one caller's credentials, say): `http`'s, as
/// `hyper`, `reqwest` and `axum` use them.
pub use hyper::header::{HeaderMap, HeaderName, HeaderValue};
#[cfg(feature = "tokio")]
pub use nonblocking::{AsyncEntry, EntryWindow, GzipEntry, OUT_CHUNK, RemoteEntry, VerifiedEntry, VerifiedWindow};
pub use redirect::{RedirectEnd, Redirects};
#[cfg(feature = "tokio")]
pub use remote::ASYNC_LOADS;
#[cfg(feature = "tokio")]
pub use remote::SHARED_WAIT;
pub use remote::{NEGATIVE_FRESH, RemoteArchives};
/// A DER certificate, for [`HttpOptions::extra_roots`] (see [`certificates_from_pem`]).
pub use rustls::pki_types::CertificateDer;
#[cfg(feature = "tokio")]
pub use shared::{SharedCache, SharedCacheStats, SharedFuture};
pub use source::HttpSource;

/// How an [`HttpSource`] talks to servers. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Length of the first (suffix) request: 64 KiB.
    pub suffix_len: u64,
    /// Headers sent with every request (tokens, for instance), dropped on a redirect to
    /// another origin if they are credentials.
    pub headers: HeaderMap,
    /// Time allowed to connect: 10 s.
    pub connect_timeout: Duration,
    /// Time allowed without a byte (for the response head, and between body reads): 30 s.
    /// There is no total timeout: a large entry streams as long as bytes keep coming.
    pub stall_timeout: Duration,
    /// Redirects followed on the first request: 10.
    pub max_redirects: usize,
    /// Whether credentials go on with a redirect that stays on the asked origin (and with
    /// the reads of where it led): yes by default, as browsers do. Off, no redirect carries
    /// them, whatever its origin, and ranges are read with them only at the URL asked (a
    /// proxy whose rule is that a redirect's target is read without the caller's
    /// credential). A redirect to another origin never carries them.
    pub credentials_after_redirect: bool,
    /// When the server ignores `Range` (answers the suffix read with the whole body),
    /// download the archive to an unnamed temporary file and read that, instead of failing
    /// with `Unsupported`: off by default, as it costs the whole archive.
    pub spool_without_range: bool,
    /// The most one buffered read may hold (the central directory is the largest): 512 MiB.
    /// A server claiming more is refused rather than trusted with memory.
    pub max_buffered: u64,
    /// Where requests may go, redirects included: anywhere by default.
    pub destinations: Destinations,
    /// How long a cached index's "no such entry" stands on its own ([`NEGATIVE_FRESH`] by
    /// default): a miss in an index loaded longer ago reloads it once, since the URL may
    /// name a newer archive now (as by-ref downloads do). Zero: every miss reloads.
    pub negative_fresh: Duration,
    /// Certificate authorities trusted besides the Mozilla roots (a self-managed GitLab's
    /// internal one, say): none by default.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Which forward proxies requests go through: the environment's by default.
    pub proxies: Proxies,
    /// The most one connection reads from its socket at a time (hyper's read buffer bound,
    /// at least 8 KiB, which also bounds a response's head): [`READ_BUFFER`], 64 KiB, by
    /// default, which keeps many slow streams small (a proxy's 500 slow readers). A few fast
    /// streams go faster with more: the command line reads with 1 MiB, about 10% faster on
    /// a 1 GiB entry over loopback. Like the timeouts, roots and proxies, it is the
    /// client's: a client given to a reader keeps its own.
    pub read_buffer: usize,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            suffix_len: 64 * 1024,
            headers: HeaderMap::new(),
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(30),
            max_redirects: 10,
            credentials_after_redirect: true,
            spool_without_range: false,
            max_buffered: 512 << 20,
            destinations: Destinations::default(),
            negative_fresh: NEGATIVE_FRESH,
            extra_roots: Vec::new(),
            proxies: Proxies::Environment,
            read_buffer: READ_BUFFER,
        }
    }
}

/// Headers that carry credentials: never sent to another origin.
const CREDENTIALS: [&str; 6] = ["private-token", "job-token", "authorization", "cookie", "proxy-authorization", "sudo"];

/// What identifies one version of the remote archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validator {
    /// A strong `ETag`: later requests carry `If-Match`.
    ETag(String),
    /// A weak `ETag`: compared on every response, never sent.
    WeakETag(String),
    /// `Last-Modified` (no `ETag`): later requests carry `If-Range`.
    LastModified(String),
    /// Neither: nothing to check.
    None,
}

impl Validator {
    fn from_headers(headers: &HeaderMap) -> Validator {
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        match (text(header::ETAG), text(header::LAST_MODIFIED)) {
            (Some(tag), _) if tag.starts_with("W/") => Validator::WeakETag(tag),
            (Some(tag), _) => Validator::ETag(tag),
            (None, Some(date)) => Validator::LastModified(date),
            (None, None) => Validator::None,
        }
    }

    /// The text of the validator, for cache keys.
    pub fn as_str(&self) -> &str {
        match self {
            Validator::ETag(s) | Validator::WeakETag(s) | Validator::LastModified(s) => s,
            Validator::None => "",
        }
    }

    /// Its kind as the cache files write it: 1 a strong `ETag`, 2 a weak one, 3 a date, 0
    /// none.
    pub(crate) fn kind(&self) -> u8 {
        match self {
            Validator::ETag(_) => 1,
            Validator::WeakETag(_) => 2,
            Validator::LastModified(_) => 3,
            Validator::None => 0,
        }
    }

    /// The validator a cache file wrote as `kind` ([`kind`](Self::kind)) and `text`;
    /// `None` for an unknown kind, or text with kind 0.
    pub(crate) fn from_kind(kind: u8, text: String) -> Option<Validator> {
        match kind {
            1 => Some(Validator::ETag(text)),
            2 => Some(Validator::WeakETag(text)),
            3 => Some(Validator::LastModified(text)),
            0 if text.is_empty() => Some(Validator::None),
            _ => None,
        }
    }
}

/// A strong `ETag` (quoted) for `entry`'s bytes as the archive version `identity` holds
/// them, for a server that answers entries (`If-None-Match`, `If-Range`): it changes when
/// the archive's validator (its kind and text, written out whole in hex, so no two
/// validators share a tag) or size, or the entry's place, CRC-32 or size does, and never
/// holds the URL. Two versions of an archive that hold the same entry at the same place get
/// different tags only if their validators differ. It names the entry's identity bytes: a
/// gzip form of them needs a tag of its own.
///
/// ```
/// use artifact_core::http::{RemoteIdentity, Validator, etag};
/// use artifact_core::{Archive, MemorySource};
/// # let mut zip = Vec::new();
/// # { let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut zip));
/// #   w.start_file("a.txt", zip::write::SimpleFileOptions::default()).unwrap();
/// #   std::io::Write::write_all(&mut w, b"hi").unwrap(); w.finish().unwrap(); }
/// let entry = Archive::open(MemorySource::new(zip))?.entries().next().unwrap()?;
/// let v1 = RemoteIdentity { url: "https://x/a.zip".into(), size: 1000, validator: Validator::ETag("\"v1\"".into()) };
/// let v2 = RemoteIdentity { validator: Validator::ETag("\"v2\"".into()), ..v1.clone() };
/// let tag = etag(&v1, &entry);
/// assert!(tag.starts_with('"') && tag.ends_with('"') && !tag.contains("https"));
/// assert_ne!(tag, etag(&v2, &entry));
/// # Ok::<(), artifact_core::Error>(())
/// ```
pub fn etag(identity: &RemoteIdentity, entry: &crate::Entry) -> String {
    use std::fmt::Write as _;
    let kind = match identity.validator {
        Validator::ETag(_) => 's',
        Validator::WeakETag(_) => 'w',
        Validator::LastModified(_) => 'd',
        Validator::None => 'n',
    };
    let mut tag = format!("\"{kind}");
    for b in identity.validator.as_str().bytes() {
        let _ = write!(tag, "{b:02x}");
    }
    let _ = write!(tag, "-{:x}-{:x}-{:08x}-{:x}\"", identity.size, entry.header_offset, entry.crc32(), entry.size());
    tag
}

/// What a cache keeps to read the same archive again without the first request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteIdentity {
    /// The URL ranges are read from (after redirects).
    pub url: String,
    /// Total size.
    pub size: u64,
    /// The validator of the version that was read.
    pub validator: Validator,
}

/// Builds the client every request of a source uses ([`HttpClient::new`]).
pub fn client(options: &HttpOptions) -> Result<HttpClient> {
    HttpClient::new(options)
}

fn parse_url(text: &str) -> Result<Url> {
    Url::parse(text).map_err(|e| Error::Http { url: text.to_owned(), problem: HttpProblem::InvalidUrl(e.to_string()) })
}

/// `headers` without the credentials (`PRIVATE-TOKEN`, `JOB-TOKEN`, `Authorization`,
/// `Cookie`, `Proxy-Authorization`, and GitLab's `Sudo`, which names whom they act as): what
/// may follow a redirect to another origin.
pub fn without_credentials(headers: &HeaderMap) -> HeaderMap {
    let mut headers = headers.clone();
    for name in CREDENTIALS {
        headers.remove(name);
    }
    headers
}

/// The headers to send to `target`: all of them on the origin the caller asked for,
/// none of the credentials anywhere else.
fn headers_for(target: &Url, asked: &Url, headers: &HeaderMap, after_redirect: bool) -> HeaderMap {
    let elsewhere = if after_redirect { target.origin() != asked.origin() } else { target != asked };
    if elsewhere { without_credentials(headers) } else { headers.clone() }
}

fn http_error(url: &Url, problem: HttpProblem) -> Error {
    Error::Http { url: shown(url), problem }
}

/// A URL for error messages: without its query (presigned object-storage URLs carry their
/// signature there, and GitLab URLs sometimes a token) and without user information.
pub fn shown(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// Parses `Name: value` into a header pair, for command lines.
pub fn parse_header(line: &str) -> Option<(HeaderName, HeaderValue)> {
    let (name, value) = line.split_once(':')?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
    let value = HeaderValue::from_str(value.trim()).ok()?;
    Some((name, value))
}

#[derive(Debug)]
struct Inner {
    client: HttpClient,
    /// Where ranges are asked for: the end of the first request's redirects.
    url: Url,
    /// Headers for `url` (credentials dropped if it is another origin than the one asked).
    headers: HeaderMap,
    size: u64,
    validator: Validator,
    /// The bytes of the first request: the archive's last bytes.
    tail: Bytes,
    counter: Arc<ReadCounter>,
    /// The whole archive, downloaded because the server ignores `Range`.
    spooled: Option<FileSource>,
    max_buffered: u64,
}

impl Inner {
    fn tail_start(&self) -> u64 {
        self.size - self.tail.len() as u64
    }

    /// One checked range request for `start..end` (exclusive end, non-empty): the body.
    async fn range(&self, start: u64, end: u64) -> Result<Incoming> {
        let at = Ranged { url: &self.url, headers: &self.headers, validator: &self.validator, size: self.size };
        at.range(&self.client, (start, end), &self.counter).await
    }
}

/// What a range request of one archive version needs: where, with which headers, checked
/// against which validator and size.
pub(crate) struct Ranged<'a> {
    pub(crate) url: &'a Url,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) validator: &'a Validator,
    pub(crate) size: u64,
}

/// How a range read follows a redirect of its own (an archive's download URL that answers
/// with one, read with a known index): at most `max` hops, each to a destination the rules
/// allow, credentials as a first read's chain drops them ([`Redirects`]).
#[derive(Debug, Clone)]
pub(crate) struct Follow {
    pub(crate) destinations: Destinations,
    pub(crate) max: usize,
    pub(crate) on_origin: bool,
}

impl Ranged<'_> {
    /// One checked range request for `start..end` (exclusive end, non-empty): `206`, the
    /// validator unchanged, exactly that range; the body.
    pub(crate) async fn range(&self, client: &HttpClient, span: (u64, u64), counter: &ReadCounter) -> Result<Incoming> {
        Ok(self.range_following(client, span, counter, None).await?.0)
    }

    /// [`range`](Self::range), following redirects as `follow` allows (none without it):
    /// the body, and where the chain ended with the headers for there, if it moved.
    pub(crate) async fn range_following(
        &self,
        client: &HttpClient,
        (start, end): (u64, u64),
        counter: &ReadCounter,
        follow: Option<&Follow>,
    ) -> Result<(Incoming, Option<(Url, HeaderMap)>)> {
        let range = format!("bytes={start}-{}", end - 1);
        let range = HeaderValue::from_str(&range).map_err(|_| client::transport(self.url, "bad range"))?;
        let precondition = match self.validator.precondition() {
            Some((name, value)) => {
                Some((name, HeaderValue::from_str(value).map_err(|_| client::transport(self.url, "bad validator"))?))
            }
            None => None,
        };
        let mut chain =
            follow.map(|f| Redirects::new(self.url, self.headers, f.max).credentials_on_origin(f.on_origin));
        let mut url = std::borrow::Cow::Borrowed(self.url);
        loop {
            let mut headers = chain.as_ref().map_or(self.headers, |c| c.headers()).clone();
            headers.insert(header::RANGE, range.clone());
            if let Some((name, value)) = &precondition {
                headers.insert(name.clone(), value.clone());
            }
            counter.record_request();
            let response = client.get(&url, headers).await?;
            if let (true, Some(chain), Some(follow)) = (response.status().is_redirection(), chain.as_mut(), follow) {
                let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
                let next = chain.follow(&url, location).map_err(|end| redirect_error(&url, end))?;
                follow.destinations.check(&next)?;
                url = std::borrow::Cow::Owned(next);
                continue;
            }
            check_partial(&url, response.status(), response.headers(), self.validator, (start, end), self.size)?;
            let moved = match (url, chain) {
                (std::borrow::Cow::Owned(url), Some(chain)) => Some((url, chain.headers().clone())),
                _ => None,
            };
            return Ok((response.into_body(), moved));
        }
    }
}

/// The error of a redirect chain that stopped at `url`.
fn redirect_error(url: &Url, end: RedirectEnd) -> Error {
    http_error(
        url,
        match end {
            RedirectEnd::TooMany(max) => HttpProblem::TooManyRedirects(max),
            RedirectEnd::NoLocation => HttpProblem::BadRedirect,
        },
    )
}

impl Validator {
    /// The header that makes a range request fail (or answer whole) if the archive is no
    /// longer this version: `If-Match` for a strong `ETag`, `If-Range` for a date.
    fn precondition(&self) -> Option<(header::HeaderName, &str)> {
        match self {
            Validator::ETag(tag) => Some((header::IF_MATCH, tag)),
            Validator::LastModified(date) => Some((header::IF_RANGE, date)),
            Validator::WeakETag(_) | Validator::None => None,
        }
    }
}

/// Checks the answer to a range request for `start..end` of an archive of `size` bytes:
/// `206`, the validator unchanged (else [`Error::Changed`]), exactly the range asked for.
fn check_partial(
    url: &Url,
    status: StatusCode,
    headers: &HeaderMap,
    validator: &Validator,
    (start, end): (u64, u64),
    size: u64,
) -> Result<()> {
    match status {
        StatusCode::PARTIAL_CONTENT => {}
        StatusCode::PRECONDITION_FAILED | StatusCode::OK => {
            return Err(Error::Changed { url: shown(url) });
        }
        other => return Err(http_error(url, HttpProblem::Status(other.as_u16()))),
    }
    let now = Validator::from_headers(headers);
    if now != Validator::None && now != *validator {
        return Err(Error::Changed { url: shown(url) });
    }
    let range = content_range_of(headers, url)?;
    if range.start != start || range.end != end - 1 || range.total != size {
        return Err(wrong_range(url, format!("{start}-{}/{size}", end - 1), headers));
    }
    Ok(())
}

fn content_range_of(headers: &HeaderMap, url: &Url) -> Result<content_range::ContentRange> {
    let value = headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok());
    value
        .and_then(content_range::parse)
        .ok_or_else(|| http_error(url, HttpProblem::MissingContentRange(value.map(str::to_owned))))
}

fn wrong_range(url: &Url, expected: String, headers: &HeaderMap) -> Error {
    let found = headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok());
    http_error(url, HttpProblem::WrongRange { expected, found: found.unwrap_or("none").to_owned() })
}
