//! An in-process HTTP/1.1 server for the range-request source's tests.
//!
//! It serves stored files with strong validators and byte ranges (RFC 9110 §14), and misbehaves
//! on request ([`Behaviour`]): ignores ranges, changes validators, cuts connections mid-body,
//! lies in `Content-Range`, redirects. Every request is recorded before it is answered.
//!
//! ```ignore
//! let server = RangeServer::start();
//! server.put("a.zip", archive);
//! let source = HttpSource::new(&server.url("a.zip"))?;
//! assert_eq!(server.requests()[0].range.as_deref(), Some("bytes=-65557"));
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use bytes::Bytes;

/// Size of the pieces a body is streamed in, so that a cut can land mid-body.
mod answer;

use self::answer::{Answer, PlannedBody, RangeSpec, absolute, if_match_passes, if_range_holds, parse_range};

const CHUNK: usize = 16 * 1024;

/// How long a cut body waits before failing. hyper drops the connection, buffered bytes
/// included, as soon as the body errors; the pause lets it flush what came before the cut.
const CUT_PAUSE: Duration = Duration::from_millis(20);

/// A test HTTP server on `127.0.0.1`, on a tokio runtime of its own. Stops when dropped.
pub struct RangeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query string, without the `?`.
    pub query: Option<String>,
    /// Every header in arrival order, names in lower case, values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// The `Range` header, if any.
    pub range: Option<String>,
}

/// How the server misbehaves. The default is a well-behaved server.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Answer 200 with the full body, ignoring `Range`.
    pub ignore_range: bool,
    /// Once a path has been requested this many times (counted since its `put` or the last
    /// `set_behaviour`), its ETag and Last-Modified change once; the content does not.
    pub change_etag_after: Option<usize>,
    /// Close the connection after this many body bytes of a 200 or 206 response, for the
    /// first `cut_times` responses with a longer body (shorter bodies are sent whole and do
    /// not count).
    pub cut_after: Option<u64>,
    /// How many responses get cut; 0 means 1 when `cut_after` is set.
    pub cut_times: usize,
    /// Sleep this long before every response (after recording the request).
    pub delay_ms: u64,
    /// Answer every request under `/redirect/<rest>` with `302 Location: <redirect_to>/<rest>`,
    /// query string kept.
    pub redirect_to: Option<String>,
    /// Send Last-Modified but no ETag; then any `If-Match` but `*` fails, as does an ETag
    /// in `If-Range`.
    pub no_etag: bool,
    /// 206 answers carry a `Content-Range` whose start is one more than the bytes sent
    /// (end and length unchanged).
    pub wrong_content_range: bool,
    /// 206 answers have correct headers, but the connection closes after half the body.
    pub short_body: bool,
    /// Answer `403` to every request without this header (name in lower case) and value:
    /// a caller the archive's owner does not let read it.
    pub require_header: Option<(String, String)>,
}

/// State shared by the handle and the request handler.
#[derive(Default)]
struct Shared {
    state: Mutex<ServerState>,
    bytes_sent: AtomicU64,
}

#[derive(Default)]
struct ServerState {
    files: HashMap<String, StoredFile>,
    behaviour: Behaviour,
    requests: Vec<Recorded>,
    /// Responses cut by `cut_after` since the last `set_behaviour`.
    cuts_done: usize,
    /// Source of validator versions; every `put` and ETag change takes the next one.
    last_version: u64,
}

struct StoredFile {
    content: Bytes,
    version: u64,
    /// Requests for this path since its `put` or the last `set_behaviour`.
    served: usize,
    changed: bool,
}

impl StoredFile {
    /// A strong ETag: 16 hex digits that differ for every version.
    fn etag(&self) -> String {
        // splitmix64, so consecutive versions do not look alike.
        let mut z = self.version.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        format!("\"{:016x}\"", z ^ (z >> 31))
    }

    /// A fixed HTTP-date, one second later for each version (wraps after an hour).
    fn last_modified(&self) -> String {
        let seconds = self.version % 3600;
        format!("Mon, 01 Jan 2024 00:{:02}:{:02} GMT", seconds / 60, seconds % 60)
    }
}

impl RangeServer {
    /// Binds `127.0.0.1:0` and starts serving on a one-worker tokio runtime.
    ///
    /// Panics if the socket or the runtime cannot be set up.
    pub fn start() -> RangeServer {
        let listener = StdTcpListener::bind("127.0.0.1:0").expect("range_server: bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("range_server: set_nonblocking");
        let addr = listener.local_addr().expect("range_server: local_addr");
        let shared = Arc::new(Shared::default());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("range-server")
            .enable_all()
            .build()
            .expect("range_server: tokio runtime");
        let app = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        runtime.spawn(async move {
            let served = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => axum::serve(listener, app).await,
                Err(e) => Err(e),
            };
            if let Err(e) = served {
                eprintln!("range_server: {e}");
            }
        });
        RangeServer { addr, shared, runtime: Some(runtime) }
    }

    /// `http://127.0.0.1:PORT/path`; a leading `/` on `path` is optional.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.origin(), absolute(path))
    }

    /// The address it listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `bytes` at `GET /path`, replacing any earlier content, under a new ETag.
    pub fn put(&self, path: &str, bytes: impl Into<Bytes>) {
        let mut state = self.shared.lock();
        let version = state.next_version();
        let file = StoredFile { content: bytes.into(), version, served: 0, changed: false };
        state.files.insert(absolute(path), file);
    }

    /// Applies `b` to subsequent requests; restarts the `change_etag_after` and
    /// `cut_times` counts.
    pub fn set_behaviour(&self, b: Behaviour) {
        let mut state = self.shared.lock();
        state.behaviour = b;
        state.cuts_done = 0;
        for file in state.files.values_mut() {
            file.served = 0;
            file.changed = false;
        }
    }

    /// Every request since the start or the last `reset_counts`, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the recorded requests and zeroes `bytes_sent`.
    pub fn reset_counts(&self) {
        self.shared.lock().requests.clear();
        self.shared.bytes_sent.store(0, Ordering::SeqCst);
    }

    /// Body bytes handed to the connection, summed over responses (a cut response counts
    /// what was sent before the cut).
    pub fn bytes_sent(&self) -> u64 {
        self.shared.bytes_sent.load(Ordering::SeqCst)
    }
}

impl Drop for RangeServer {
    fn drop(&mut self) {
        // Not `drop(runtime)`: that panics inside an async test, and would wait for
        // connections a client left open.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for RangeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RangeServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Recorded {
    fn of(req: &Request) -> Recorded {
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let range = headers.iter().find(|(n, _)| n == "range").map(|(_, v)| v.clone());
        Recorded {
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
            query: req.uri().query().map(str::to_owned),
            headers,
            range,
        }
    }

    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ServerState> {
        self.state.lock().expect("range_server: state lock poisoned")
    }
}

impl ServerState {
    fn next_version(&mut self) -> u64 {
        self.last_version += 1;
        self.last_version
    }

    /// Decides the answer to `req`, updating the per-path and cut counts.
    fn answer(&mut self, req: &Recorded) -> Answer {
        let head = match req.method.as_str() {
            "GET" => false,
            "HEAD" => true,
            _ => {
                let answer = Answer::empty(StatusCode::METHOD_NOT_ALLOWED);
                return answer.with(header::ALLOW, "GET, HEAD");
            }
        };
        if let (Some(target), Some(rest)) = (&self.behaviour.redirect_to, req.path.strip_prefix("/redirect/")) {
            let query = req.query.as_ref().map(|q| format!("?{q}")).unwrap_or_default();
            let location = format!("{}/{rest}{query}", target.trim_end_matches('/'));
            return Answer::empty(StatusCode::FOUND).with(header::LOCATION, location);
        }
        if let Some((name, value)) = &self.behaviour.require_header
            && !req.headers.iter().any(|(n, v)| n == name && v == value)
        {
            return Answer::empty(StatusCode::FORBIDDEN);
        }
        let next_version = self.last_version + 1;
        let Some(file) = self.files.get_mut(&req.path) else {
            return Answer::empty(StatusCode::NOT_FOUND);
        };
        let b = &self.behaviour;
        if b.change_etag_after.is_some_and(|n| !file.changed && file.served >= n) {
            file.version = next_version;
            file.changed = true;
            self.last_version = next_version;
        }
        file.served += 1;

        let etag = (!b.no_etag).then(|| file.etag());
        let last_modified = file.last_modified();
        let content = file.content.clone();
        let total = content.len() as u64;
        let validators = |answer: Answer| {
            let answer = answer.with(header::ACCEPT_RANGES, "bytes").with(header::LAST_MODIFIED, last_modified.clone());
            match &etag {
                Some(etag) => answer.with(header::ETAG, etag.clone()),
                None => answer,
            }
        };

        if let Some(condition) = req.header("if-match") {
            if !if_match_passes(condition, etag.as_deref()) {
                return validators(Answer::empty(StatusCode::PRECONDITION_FAILED));
            }
        }
        let if_range_holds = req.header("if-range").is_none_or(|v| if_range_holds(v, etag.as_deref(), &last_modified));
        let range = match req.range.as_deref() {
            Some(range) if !b.ignore_range && if_range_holds => parse_range(range, total),
            _ => RangeSpec::Full,
        };
        let (mut answer, body) = match range {
            RangeSpec::Unsatisfiable => {
                let answer = Answer::empty(StatusCode::RANGE_NOT_SATISFIABLE)
                    .with(header::CONTENT_RANGE, format!("bytes */{total}"));
                return validators(answer);
            }
            RangeSpec::Full => (Answer::empty(StatusCode::OK), content),
            RangeSpec::Part { start, end } => {
                let shown = if b.wrong_content_range { start + 1 } else { start };
                let answer = Answer::empty(StatusCode::PARTIAL_CONTENT)
                    .with(header::CONTENT_RANGE, format!("bytes {shown}-{end}/{total}"));
                // `parse_range` keeps `end < total`, so both fit in usize.
                let slice = match (usize::try_from(start), usize::try_from(end)) {
                    (Ok(start), Ok(end)) => content.slice(start..=end),
                    _ => return Answer::empty(StatusCode::INTERNAL_SERVER_ERROR),
                };
                (answer, slice)
            }
        };
        answer = validators(answer).with(header::CONTENT_LENGTH, body.len().to_string());
        if head {
            return answer;
        }

        let cut_at = self.cut_point(answer.status, body.len());
        answer.body = Some(PlannedBody { data: body, cut_at });
        answer
    }

    /// Where to cut a `status` body of `len` bytes, if anywhere; counts a `cut_after` cut.
    fn cut_point(&mut self, status: StatusCode, len: usize) -> Option<usize> {
        let b = &self.behaviour;
        let half = (b.short_body && status == StatusCode::PARTIAL_CONTENT).then_some(len / 2);
        let cut_times = if b.cut_times == 0 { 1 } else { b.cut_times };
        let cut = b
            .cut_after
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .filter(|&n| n < len && self.cuts_done < cut_times);
        if cut.is_some() {
            self.cuts_done += 1;
        }
        match (half, cut) {
            (Some(half), Some(cut)) => Some(half.min(cut)),
            (half, cut) => half.or(cut),
        }
    }
}

/// Serves every request: records it, decides the answer under the lock, then sleeps and
/// streams outside it.
async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let recorded = Recorded::of(&req);
    let (answer, delay_ms) = {
        let mut state = shared.lock();
        state.requests.push(recorded.clone());
        (state.answer(&recorded), state.behaviour.delay_ms)
    };
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    answer.into_response(shared)
}
