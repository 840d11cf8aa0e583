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
    /// The connection failed, timed out or broke.
    #[error("{url}: {message}")]
    Transport {
        /// The URL, without query string.
        url: String,
        /// Why.
        message: String,
    },
    /// A body was not what GitLab sends.
    #[error("{url}: unexpected response: {message}")]
    Decode {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// A download ended with a size other than the announced one, or changed under a
    /// resume.
    #[error("{what}: {message}")]
    Download {
        /// What was downloaded.
        what: String,
        /// Why.
        message: String,
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
