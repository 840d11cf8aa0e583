//! Archives behind HTTP(S): a [`Source`] made of range requests.
//!
//! Request 1 is a suffix range (`Range: bytes=-N`): it tells the size, the validator (`ETag`,
//! else `Last-Modified`) and that the server honours ranges, and usually brings the whole
//! central directory. Every later request goes straight to the final URL of the redirects,
//! carries `If-Match` (or `If-Range`) and is checked strictly: 206 and exactly the range asked
//! for, or the read fails at once. Bodies stream; a broken one resumes from the next byte.

mod body;
mod content_range;
mod destinations;
mod disk;
#[cfg(feature = "tokio")]
mod nonblocking;
mod redirect;
mod remote;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::blocking::{Client, Response};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};

use crate::error::{Error, HttpProblem, Result, Unsupported};
use crate::source::{FileSource, RangeReader, ReadCounter, ReadStats, Source, check_range};

pub use body::RESUME_ATTEMPTS;
pub use destinations::{Destinations, is_link_local};
pub use disk::{DEFAULT_DISK_CACHE_BYTES, DiskCacheStats};
#[cfg(feature = "tokio")]
pub use nonblocking::{AsyncEntry, GzipEntry, OUT_CHUNK, READ_BUFFER, RemoteEntry};
pub use redirect::{RedirectEnd, Redirects};
#[cfg(feature = "tokio")]
pub use remote::ASYNC_LOADS;
pub use remote::RemoteArchives;

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
    /// When the server ignores `Range` (answers the suffix read with the whole body),
    /// download the archive to an unnamed temporary file and read that, instead of failing
    /// with `Unsupported`: off by default, as it costs the whole archive.
    pub spool_without_range: bool,
    /// The most one buffered read may hold (the central directory is the largest): 512 MiB.
    /// A server claiming more is refused rather than trusted with memory.
    pub max_buffered: u64,
    /// Where requests may go, redirects included: anywhere by default.
    pub destinations: Destinations,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            suffix_len: 64 * 1024,
            headers: HeaderMap::new(),
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(30),
            max_redirects: 10,
            spool_without_range: false,
            max_buffered: 512 << 20,
            destinations: Destinations::default(),
        }
    }
}

/// Headers that carry credentials: never sent to another origin.
const CREDENTIALS: [&str; 5] = ["private-token", "job-token", "authorization", "cookie", "proxy-authorization"];

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
}

/// A remote archive read with range requests.
#[derive(Debug, Clone)]
pub struct HttpSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
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

/// Builds the blocking client every request of a source uses.
pub fn client(options: &HttpOptions) -> Result<Client> {
    Client::builder()
        .connect_timeout(options.connect_timeout)
        .timeout(options.stall_timeout) // per read in the blocking client: a stall timeout
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(std::sync::Arc::new(destinations::Resolver {
            refuse_link_local: options.destinations.refuse_link_local,
        }))
        .build()
        .map_err(|e| transport("client", e))
}

fn parse_url(text: &str) -> Result<Url> {
    Url::parse(text).map_err(|e| Error::Http { url: text.to_owned(), problem: HttpProblem::InvalidUrl(e.to_string()) })
}

/// `headers` without the credentials (`PRIVATE-TOKEN`, `JOB-TOKEN`, `Authorization`,
/// `Cookie`, `Proxy-Authorization`): what may follow a redirect to another origin.
pub fn without_credentials(headers: &HeaderMap) -> HeaderMap {
    let mut headers = headers.clone();
    for name in CREDENTIALS {
        headers.remove(name);
    }
    headers
}

/// The headers to send to `target`: all of them on the origin the caller asked for,
/// none of the credentials anywhere else.
fn headers_for(target: &Url, asked: &Url, headers: &HeaderMap) -> HeaderMap {
    if target.origin() != asked.origin() { without_credentials(headers) } else { headers.clone() }
}

fn transport(url: &str, e: reqwest::Error) -> Error {
    let (timeout, connect) = (e.is_timeout(), e.is_connect());
    let why = e.without_url().to_string();
    let problem = if timeout {
        HttpProblem::Timeout(why)
    } else if connect {
        HttpProblem::Connect(why)
    } else {
        HttpProblem::Transport(why)
    };
    Error::Http { url: shown_str(url), problem }
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

fn shown_str(url: &str) -> String {
    Url::parse(url).map(|u| shown(&u)).unwrap_or_else(|_| url.split('?').next().unwrap_or(url).to_owned())
}

impl HttpSource {
    /// Opens the archive at `url`: one suffix request, following up to
    /// `options.max_redirects` redirects and dropping credentials on a change of origin.
    pub fn open(url: &str, options: &HttpOptions) -> Result<HttpSource> {
        HttpSource::open_with(client(options)?, url, options)
    }

    /// Like [`open`](Self::open), with a client built once by [`client`] and shared.
    pub fn open_with(client: Client, url: &str, options: &HttpOptions) -> Result<HttpSource> {
        HttpSource::open_counted(client, url, options, Arc::default())
    }

    /// Like [`open_with`](Self::open_with), counting requests and bytes into `counter`
    /// (shared by every source of a [`RemoteArchives`]).
    pub(crate) fn open_counted(
        client: Client,
        url: &str,
        options: &HttpOptions,
        counter: Arc<ReadCounter>,
    ) -> Result<HttpSource> {
        let mut url = parse_url(url)?;
        let suffix = format!("bytes=-{}", options.suffix_len.max(1));
        let mut chain = Redirects::new(&url, &options.headers, options.max_redirects);
        let response = loop {
            options.destinations.check(&url)?;
            counter.record_request();
            let response = client
                .get(url.clone())
                .headers(chain.headers().clone())
                .header(header::RANGE, &suffix)
                .send()
                .map_err(|e| transport(url.as_str(), e))?;
            if !response.status().is_redirection() {
                break response;
            }
            let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
            url = chain.follow(&url, location).map_err(|end| {
                http_error(
                    &url,
                    match end {
                        RedirectEnd::TooMany(max) => HttpProblem::TooManyRedirects(max),
                        RedirectEnd::NoLocation => HttpProblem::BadRedirect,
                    },
                )
            })?;
        };
        let headers = chain.headers().clone();
        let status = response.status();
        match status {
            StatusCode::PARTIAL_CONTENT => {}
            StatusCode::OK if options.spool_without_range => {
                let validator = Validator::from_headers(response.headers());
                let file = spool(response, &url, &counter)?;
                let size = file.len();
                let inner = Inner {
                    client,
                    url,
                    headers,
                    size,
                    validator,
                    tail: Bytes::new(),
                    counter,
                    spooled: Some(file),
                    max_buffered: options.max_buffered,
                };
                return Ok(HttpSource { inner: Arc::new(inner) });
            }
            StatusCode::OK => {
                return Err(Unsupported::ServerIgnoresRange { url: shown(&url) }.into());
            }
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                return Err(Error::NotFound { name: shown(&url) });
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let total = response.headers().get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok());
                if total.and_then(content_range::unsatisfied_total) == Some(0) {
                    // An empty file: no end record in it.
                    let empty = crate::Corruption::NoEndOfCentralDirectory { searched: 0, archive_size: 0 };
                    return Err(empty.into());
                }
                return Err(http_error(&url, HttpProblem::Status(416)));
            }
            other => return Err(http_error(&url, HttpProblem::Status(other.as_u16()))),
        }
        let range = content_range_of(response.headers(), &url)?;
        let size = range.total;
        let wanted_start = size.saturating_sub(options.suffix_len.max(1));
        if range.start != wanted_start || range.end != size - 1 {
            let expected = format!("{wanted_start}-{}/{size}", size - 1);
            return Err(wrong_range(&url, expected, response.headers()));
        }
        let validator = Validator::from_headers(response.headers());
        let tail = read_body(response, range.len(), &url, &counter)?;
        let inner = Inner {
            client,
            url,
            headers,
            size,
            validator,
            tail,
            counter,
            spooled: None,
            max_buffered: options.max_buffered,
        };
        Ok(HttpSource { inner: Arc::new(inner) })
    }

    /// A source for an archive whose identity a cache remembers, as first asked for at
    /// `asked`: no request is made until bytes are asked for, and every request checks the
    /// validator, so a changed archive shows as [`Error::Changed`]. Credentials go only to
    /// the origin of `asked`.
    pub fn known(client: Client, asked: &str, identity: &RemoteIdentity, options: &HttpOptions) -> Result<HttpSource> {
        HttpSource::known_counted(client, asked, identity, options, Arc::default())
    }

    pub(crate) fn known_counted(
        client: Client,
        asked: &str,
        identity: &RemoteIdentity,
        options: &HttpOptions,
        counter: Arc<ReadCounter>,
    ) -> Result<HttpSource> {
        let (url, asked) = (parse_url(&identity.url)?, parse_url(asked)?);
        options.destinations.check(&url)?;
        let inner = Inner {
            client,
            headers: headers_for(&url, &asked, &options.headers),
            url,
            size: identity.size,
            validator: identity.validator.clone(),
            tail: Bytes::new(),
            counter,
            spooled: None,
            max_buffered: options.max_buffered,
        };
        Ok(HttpSource { inner: Arc::new(inner) })
    }

    /// What identifies this version of the archive.
    pub fn identity(&self) -> RemoteIdentity {
        RemoteIdentity {
            url: self.inner.url.to_string(),
            size: self.inner.size,
            validator: self.inner.validator.clone(),
        }
    }

    /// The bytes of the first request: the archive's last bytes.
    pub fn tail(&self) -> &Bytes {
        &self.inner.tail
    }
}

impl Inner {
    fn tail_start(&self) -> u64 {
        self.size - self.tail.len() as u64
    }

    /// One checked range request for `start..end` (exclusive end, non-empty).
    fn get(&self, start: u64, end: u64) -> Result<Response> {
        let mut request = self
            .client
            .get(self.url.clone())
            .headers(self.headers.clone())
            .header(header::RANGE, format!("bytes={start}-{}", end - 1));
        if let Some((name, value)) = self.validator.precondition() {
            request = request.header(name, value);
        }
        self.counter.record_request();
        let response = request.send().map_err(|e| transport(self.url.as_str(), e))?;
        check_partial(&self.url, response.status(), response.headers(), &self.validator, (start, end), self.size)?;
        Ok(response)
    }
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

/// Downloads a whole body into an unnamed temporary file (gone when closed).
fn spool(mut response: Response, url: &Url, counter: &ReadCounter) -> Result<FileSource> {
    let expected = response.content_length();
    let mut file = tempfile::tempfile()?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    loop {
        use std::io::{Read, Write};
        let n = response.read(&mut buf).map_err(|e| http_error(url, HttpProblem::Transport(e.to_string())))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n])?;
        counter.record_bytes(n);
        received += n as u64;
    }
    if let Some(expected) = expected.filter(|&e| e != received) {
        return Err(http_error(url, HttpProblem::ShortBody { expected, received }));
    }
    Ok(FileSource::new(file)?.with_map_threshold(usize::MAX))
}

/// Reads a whole (small) body of exactly `len` bytes.
fn read_body(mut response: Response, len: u64, url: &Url, counter: &ReadCounter) -> Result<Bytes> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(len.min(64 << 20) as usize);
    let received = (&mut response).take(len + 1).read_to_end(&mut buf);
    counter.record_bytes(buf.len());
    received.map_err(|e| http_error(url, HttpProblem::Transport(e.to_string())))?;
    if buf.len() as u64 != len {
        return Err(http_error(url, HttpProblem::ShortBody { expected: len, received: buf.len() as u64 }));
    }
    Ok(Bytes::from(buf))
}

impl Source for HttpSource {
    fn len(&self) -> u64 {
        self.inner.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        if let Some(file) = &self.inner.spooled {
            return file.read_exact_at(offset, buf);
        }
        let bytes = self.read_bytes(offset, buf.len())?;
        buf.copy_from_slice(&bytes);
        Ok(())
    }

    /// Bytes the first request brought cost nothing; a range that ends inside them costs one
    /// request for the part before them.
    fn read_bytes(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        let inner = &self.inner;
        if let Some(file) = &inner.spooled {
            return file.read_bytes(offset, len);
        }
        check_range(offset, len as u64, inner.size)?;
        let end = offset + len as u64;
        let tail_start = inner.tail_start();
        if len == 0 {
            return Ok(Bytes::new());
        }
        if offset >= tail_start && !inner.tail.is_empty() {
            let at = (offset - tail_start) as usize;
            return Ok(inner.tail.slice(at..at + len));
        }
        if len as u64 > inner.max_buffered {
            let problem = HttpProblem::TooLarge { len: len as u64, limit: inner.max_buffered };
            return Err(http_error(&inner.url, problem).into());
        }
        let fetch_end = if end > tail_start && !inner.tail.is_empty() { tail_start } else { end };
        let response = inner.get(offset, fetch_end)?;
        let head = read_body(response, fetch_end - offset, &inner.url, &inner.counter)?;
        if fetch_end == end {
            return Ok(head);
        }
        let mut joined = Vec::with_capacity(len);
        joined.extend_from_slice(&head);
        joined.extend_from_slice(&inner.tail[..(end - tail_start) as usize]);
        Ok(Bytes::from(joined))
    }

    fn read_stream(&self, offset: u64, len: u64) -> std::io::Result<RangeReader> {
        if let Some(file) = &self.inner.spooled {
            return file.read_stream(offset, len);
        }
        check_range(offset, len, self.inner.size)?;
        Ok(Box::new(body::RemoteBody::new(self.inner.clone(), offset, offset + len)))
    }

    fn stats(&self) -> ReadStats {
        self.inner.counter.snapshot()
    }
}

/// Parses `Name: value` into a header pair, for command lines.
pub fn parse_header(line: &str) -> Option<(HeaderName, HeaderValue)> {
    let (name, value) = line.split_once(':')?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
    let value = HeaderValue::from_str(value.trim()).ok()?;
    Some((name, value))
}
