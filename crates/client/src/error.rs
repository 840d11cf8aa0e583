//! The client's one error type.

use reqwest::StatusCode;

/// What went wrong talking to GitLab.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// GitLab answered with an error status; `message` is its `message` or `error` field.
    #[error("{method} {url}: {status}: {message}")]
    Api {
        /// The method.
        method: String,
        /// The URL, without query string (it may hold a token).
        url: String,
        /// The status.
        status: StatusCode,
        /// GitLab's message.
        message: String,
    },
    /// The connection failed, timed out or broke; the source says which (`is_timeout`,
    /// `is_connect`).
    #[error("{url}: {}", describe(source))]
    Transport {
        /// The URL, without query string.
        url: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// A redirect chain longer than the client follows.
    #[error("{url}: more than {max} redirects")]
    TooManyRedirects {
        /// The last URL, without query string.
        url: String,
        /// The redirects followed.
        max: usize,
    },
    /// A body that is not the JSON GitLab sends.
    #[error("{url}: unexpected response: {source}")]
    Json {
        /// The URL.
        url: String,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// A response that breaks what the API promises (a next-page link that leaves the API
    /// or repeats a page, a log range other than the one asked for).
    #[error("{url}: unexpected response: {message}")]
    Decode {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// A download ended with another size than the server announced or the job lists.
    #[error("{what}: received {received} bytes, {} {expected}", if *.from_job { "the job lists" } else { "the server announced" })]
    SizeMismatch {
        /// What was downloaded.
        what: String,
        /// Bytes received.
        received: u64,
        /// Bytes expected.
        expected: u64,
        /// Whether `expected` is the job's `artifacts_file.size` (else the response's length).
        from_job: bool,
    },
    /// The file kept changing between resumed requests.
    #[error("{what}: the file kept changing during the download")]
    KeptChanging {
        /// What was downloaded.
        what: String,
    },
    /// A resumed request got an answer that does not continue the file; `source` is the
    /// break that made the client resume.
    #[error("{what}: the server answered the resume with {status} and a range that does not continue the file")]
    BadResume {
        /// What was downloaded.
        what: String,
        /// The resumed request's status.
        status: StatusCode,
        /// Why the transfer was resumed.
        #[source]
        source: Option<Box<Error>>,
    },
    /// Reading the archive remotely failed in the engine.
    #[error(transparent)]
    Engine(#[from] artifact_core::Error),
    /// A local file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A bad argument (base URL, project, path).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Client results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) use artifact_core::http::shown;

/// reqwest's message and its causes, with any URL in them shown without its query string
/// (signatures, tokens).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(url.as_str(), &shown(url));
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
