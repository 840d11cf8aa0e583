//! [`HttpClient`]: the one HTTP client of the engine, for index loads and entry reads, on
//! async I/O or blocking.
//!
//! It is hyper's pooled client (`hyper-util`) over rustls with the Mozilla roots (and any
//! the caller adds), the name resolver of [`Destinations`](super::Destinations), and the
//! proxies of the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, as
//! curl reads them) unless told otherwise. Async callers drive it on their own runtime; the
//! blocking face drives the same futures on a private one-thread runtime, made on the first
//! blocking call and stopped when the last handle is dropped, so the client can be made,
//! used and dropped anywhere.
#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Response, Uri};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use url::Url;

use super::destinations::Resolver;
use super::{HttpOptions, http_error};
use crate::error::{Error, HttpProblem, Result};

/// The most one connection reads from its socket at a time by default
/// ([`HttpOptions::read_buffer`]).
pub const READ_BUFFER: usize = 64 * 1024;

/// Which forward proxies requests go through.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Proxies {
    /// The environment's, as curl reads them: `HTTPS_PROXY` for `https://` URLs,
    /// `HTTP_PROXY` for `http://` ones, `ALL_PROXY` for both, hosts in `NO_PROXY` reached
    /// directly (lowercase names too). An `https://` URL goes through a `CONNECT` tunnel, an
    /// `http://` one is asked of the proxy whole. The proxy itself is reached over plain
    /// HTTP (`http://[user:password@]host:port`; an `https://` or SOCKS proxy fails each
    /// request it would carry); user and password go as `Basic` `Proxy-Authorization`.
    /// When `REQUEST_METHOD` is set (a CGI program), the variables are ignored, as a
    /// request's `Proxy` header could have set `HTTP_PROXY`.
    #[default]
    Environment,
    /// Every request through the proxy at this URL (`http://[user:password@]host:port`),
    /// whatever the environment says (`NO_PROXY` included). A URL that is not an `http://`
    /// one makes [`HttpClient::new`] fail.
    All(String),
    /// None: every request goes straight to its host.
    None,
}

impl std::fmt::Debug for Proxies {
    /// Without a proxy URL's password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Proxies::Environment => f.write_str("Environment"),
            Proxies::All(url) => f.debug_tuple("All").field(&without_password(url)).finish(),
            Proxies::None => f.write_str("None"),
        }
    }
}

/// A proxy URL as it may be shown: its password replaced.
fn without_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(not a URL)".into(),
    }
}

/// The engine's HTTP client: keep-alive connections for index loads and entry reads, async
/// or blocking (see the module docs). An opaque handle: make one with [`new`](Self::new)
/// and give it to [`RemoteArchives::with_client`](super::RemoteArchives::with_client) or
/// [`HttpSource::open_with`](super::HttpSource::open_with) to share it; clones share
/// everything.
///
/// - Async requests (the `_async` methods of the readers) run on the caller's tokio
///   runtime, which needs its I/O and time drivers (`enable_all`); their connections live
///   on that runtime, pooled for the next async request.
/// - Blocking requests (the readers' other methods) run on one thread of the client's own,
///   `artifact-http`, started on the first and ended with the last clone; their connections
///   are a pool of their own on it. Called on a runtime's worker thread, a blocking request
///   panics (tokio's rule for any blocking call there): use the async methods, or
///   `spawn_blocking`.
/// - The environment's proxies ([`Proxies::Environment`]) are read once, by `new`.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    /// The pool of the async face: connections on the caller's runtime.
    hyper: Client<Connector, Empty<Bytes>>,
    /// The pool of the blocking face: connections on the private runtime.
    blocking: OnceLock<Client<Connector, Empty<Bytes>>>,
    connector: Connector,
    read_buffer: usize,
    stall: Duration,
    proxies: Option<Arc<Matcher>>,
    /// The runtime blocking calls are driven on, made on the first one.
    driver: OnceLock<Driver>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("stall", &self.inner.stall)
            .field("proxies", &self.inner.proxies.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client with `options`' timeouts, read buffer, roots, proxies and name rules (the
    /// rest of the options are the readers'). It follows no redirects itself: the readers
    /// follow them, dropping credentials across origins. Fails (an [`Error::Http`] for the
    /// URL `client`) on an extra root that is not a certificate authority's certificate or
    /// a [`Proxies::All`] URL that is not an `http://` one.
    pub fn new(options: &HttpOptions) -> Result<HttpClient> {
        let setup = |why: String| Error::Http { url: "client".into(), problem: HttpProblem::Transport(why) };
        let resolver = Resolver { refuse_link_local: options.destinations.refuse_link_local };
        let mut http = HttpConnector::new_with_resolver(resolver);
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(options.connect_timeout));
        // The provider is named: with two compiled in (another crate may enable aws-lc-rs),
        // rustls cannot pick a process default by itself.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        for root in &options.extra_roots {
            roots.add(root.clone()).map_err(|e| setup(format!("an extra root certificate: {e}")))?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let proxies = match &options.proxies {
            Proxies::Environment => Some(Arc::new(Matcher::from_env())),
            Proxies::All(url) => {
                let matcher = Matcher::builder().all(url.clone()).build();
                // A URL the matcher cannot read would send everything straight to its host.
                let proxy = matcher.intercept(&Uri::from_static("http://example.com/"));
                if proxy.is_none_or(|p| p.uri().scheme_str() != Some("http")) {
                    let shown = without_password(url);
                    return Err(setup(format!("the proxy {shown} is not a proxy URL (http://host:port)")));
                }
                Some(Arc::new(matcher))
            }
            Proxies::None => None,
        };
        let connector = Connector::new(http, tls, proxies.clone());
        // hyper refuses a bound under 8 KiB.
        let read_buffer = options.read_buffer.max(8 * 1024);
        let inner = ClientInner {
            hyper: pool(&connector, read_buffer),
            blocking: OnceLock::new(),
            connector,
            read_buffer,
            stall: options.stall_timeout,
            proxies,
            driver: OnceLock::new(),
        };
        Ok(HttpClient { inner: Arc::new(inner) })
    }

    /// Time allowed without a byte (the response head, each body read).
    #[cfg(feature = "tokio")]
    pub(crate) fn stall(&self) -> Duration {
        self.inner.stall
    }

    /// One `GET` of `url` with `headers`: the response head, within the stall timeout. User
    /// information in the URL (`user:token@`) never goes on the wire as part of it: it is
    /// sent as `Authorization: Basic` unless `headers` carry an `Authorization` already.
    pub(crate) async fn get(&self, url: &Url, mut headers: HeaderMap) -> Result<Response<Incoming>> {
        let invalid = |why: String| http_error(url, HttpProblem::InvalidUrl(why));
        let mut target = url.clone();
        if !url.username().is_empty() || url.password().is_some() {
            let _ = target.set_username("");
            let _ = target.set_password(None);
            if !headers.contains_key(header::AUTHORIZATION) {
                headers.insert(header::AUTHORIZATION, basic(url).map_err(|_| invalid("bad user information".into()))?);
            }
        }
        let uri: Uri = target.as_str().parse().map_err(|e: hyper::http::uri::InvalidUri| invalid(e.to_string()))?;
        if url.scheme() == "http"
            && let Some(auth) = self.inner.proxies.as_ref().and_then(|m| m.intercept(&uri)?.basic_auth().cloned())
        {
            headers.insert(header::PROXY_AUTHORIZATION, auth);
        }
        let mut request = hyper::Request::get(uri);
        if let Some(all) = request.headers_mut() {
            *all = headers;
        }
        let request = request.body(Empty::new()).map_err(|e| transport(url, &e.to_string()))?;
        let pool = if BLOCKING.get() { self.inner.blocking_pool() } else { &self.inner.hyper };
        match tokio::time::timeout(self.inner.stall, pool.request(request)).await {
            Err(_) => Err(http_error(url, HttpProblem::Timeout("no response in time".into()))),
            Ok(Err(e)) if e.is_connect() && timed_out(&e) => Err(http_error(url, HttpProblem::Timeout(why(&e)))),
            Ok(Err(e)) if e.is_connect() => Err(http_error(url, HttpProblem::Connect(why(&e)))),
            Ok(Err(e)) => Err(transport(url, &why(&e))),
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// The next bytes of `body` (`None` at its end), within the stall timeout.
    pub(crate) async fn next_bytes(&self, body: &mut Incoming, url: &Url) -> Result<Option<Bytes>> {
        loop {
            match tokio::time::timeout(self.inner.stall, body.frame()).await {
                Err(_) => return Err(http_error(url, HttpProblem::Timeout("the body stalled".into()))),
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => return Err(transport(url, &why(&e))),
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => return Ok(Some(data)),
                    _ => {} // trailers, or an empty frame
                },
            }
        }
    }

    /// Runs `future` to completion on this client's private runtime, blocking the calling
    /// thread: the blocking face. Must not be called from async code (tokio panics there, as
    /// for any blocking call on a runtime's worker).
    pub(crate) fn block_on<F: Future>(&self, future: F) -> Result<F::Output> {
        let driver = match self.inner.driver.get() {
            Some(driver) => driver,
            None => {
                let made = Driver::start().map_err(Error::Io)?;
                self.inner.driver.get_or_init(|| made)
            }
        };
        let was = BLOCKING.replace(true);
        let output = driver.handle.block_on(future);
        BLOCKING.set(was);
        Ok(output)
    }
}

thread_local! {
    /// Whether this thread is driving a future of the blocking face ([`HttpClient::block_on`]):
    /// its requests then go on the blocking face's own pool, whose connections live on the
    /// client's private runtime. (A connection lives on the runtime that opened it; one
    /// shared with a caller's runtime would break, mid-request, when that runtime stops.)
    static BLOCKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl ClientInner {
    /// The blocking face's pool: made on its first request, with the same connector.
    fn blocking_pool(&self) -> &Client<Connector, Empty<Bytes>> {
        self.blocking.get_or_init(|| pool(&self.connector, self.read_buffer))
    }
}

/// A pool of keep-alive connections made by `connector`, reading at most `read_buffer`
/// bytes from a socket at a time.
fn pool(connector: &Connector, read_buffer: usize) -> Client<Connector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).http1_max_buf_size(read_buffer).build(connector.clone())
}

/// `Basic` credentials from a URL's user information (percent-decoded, as browsers and curl
/// read it).
fn basic(url: &Url) -> std::result::Result<hyper::header::HeaderValue, hyper::header::InvalidHeaderValue> {
    use base64::Engine as _;
    let decode = |s: &str| percent_encoding::percent_decode_str(s).collect::<Vec<u8>>();
    let mut pair = decode(url.username());
    pair.push(b':');
    pair.extend(decode(url.password().unwrap_or("")));
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut value = hyper::header::HeaderValue::try_from(format!("Basic {encoded}"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Whether a connection failed by running out of time (hyper-util's connect timeout).
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(cause) = source {
        if cause.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::TimedOut) {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The message of a hyper error with its sources (hyper's own says only "client error").
fn why(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(crate) fn transport(url: &Url, why: &str) -> Error {
    http_error(url, HttpProblem::Transport(why.to_owned()))
}

/// A one-thread runtime on a thread of its own, which runs the connections blocking calls
/// open; it stops (and the thread ends) when the client is dropped.
struct Driver {
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Driver {
    fn start() -> io::Result<Driver> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new().name("artifact-http".into()).spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
        })?;
        Ok(Driver { handle, _stop: stop })
    }
}

/// Connects directly, or through the forward proxy the environment names for the URL.
#[derive(Clone)]
struct Connector {
    http: HttpConnector<Resolver>,
    /// `http` with TLS for `https://` URLs: made once (the roots are not copied per
    /// connection).
    direct: HttpsConnector<HttpConnector<Resolver>>,
    tls: Arc<rustls::ClientConfig>,
    proxies: Option<Arc<Matcher>>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Connector {
    fn new(http: HttpConnector<Resolver>, tls: rustls::ClientConfig, proxies: Option<Arc<Matcher>>) -> Connector {
        let tls = Arc::new(tls);
        let direct = HttpsConnector::from((http.clone(), tls.clone()));
        Connector { http, direct, tls, proxies }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let Some(proxy) = self.proxies.as_ref().and_then(|m| m.intercept(&dst)) else {
            let mut direct = self.direct.clone();
            return Box::pin(async move { Ok(Conn { io: direct.call(dst).await?, proxied: false }) });
        };
        let at = proxy.uri().clone();
        if at.scheme_str() != Some("http") {
            let why = format!("the proxy {at} is not an http:// one (the only kind supported)");
            return Box::pin(async move { Err(why.into()) });
        }
        if dst.scheme_str() == Some("https") {
            let mut tunnel = Tunnel::new(at, self.http.clone());
            if let Some(auth) = proxy.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            let mut through = HttpsConnector::from((tunnel, self.tls.clone()));
            Box::pin(async move { Ok(Conn { io: through.call(dst).await?, proxied: false }) })
        } else {
            let mut http = self.http.clone();
            Box::pin(async move {
                let io = http.call(at).await?;
                Ok(Conn { io: MaybeHttpsStream::Http(io), proxied: true })
            })
        }
    }
}

/// A connection, saying whether it goes to a forward proxy (requests then carry the whole
/// URL).
struct Conn {
    io: MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>,
    proxied: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

/// Reads PEM text (`-----BEGIN CERTIFICATE-----` blocks; other blocks, such as keys, are
/// skipped) into certificates for [`HttpOptions::extra_roots`]: an internal certificate
/// authority's, say. Text without a certificate, or with a broken block, is an
/// [`Error::Io`] of kind `InvalidData`.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject as _;
    let bad = |why: String| Error::Io(io::Error::new(io::ErrorKind::InvalidData, why));
    let found = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if found.is_empty() {
        return Err(bad("no certificate in the PEM text".into()));
    }
    // Each one must be a certificate a root store takes (not only a PEM block).
    let mut store = rustls::RootCertStore::empty();
    for certificate in &found {
        store.add(certificate.clone()).map_err(|e| bad(e.to_string()))?;
    }
    Ok(found)
}
