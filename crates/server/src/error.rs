//! Errors: [`Error`] is what the library's callers (the command line) see; what a client
//! sees is `artifact_gitlab`'s `ApiError`, which a store failure becomes by [`store_error`].

use crate::store::StoreError;

/// Errors of the server library (setup, import, admin).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad argument (unknown user, bad role, bad duration...).
    #[error("{0}")]
    Invalid(String),
    /// The artifacts file is not a readable zip archive.
    #[error("{path}: not a readable zip archive: {source}")]
    BadArchive {
        /// The file.
        path: String,
        /// Why.
        source: artifact_core::Error,
    },
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

pub(crate) use artifact_gitlab::error::{ApiError, ApiResult};

/// A store failure as a client sees it: `503` when the database cannot be reached now, else
/// a `500` whose detail goes to the log only.
pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(why) => ApiError::Unavailable(why.to_string()),
        e => ApiError::internal(e),
    }
}

/// A store result as a handler's: `store.job(id).api()?` ([`store_error`]).
pub(crate) trait StoreAnswer<T> {
    /// The result, its failure as a client sees it.
    fn api(self) -> ApiResult<T>;
}

impl<T> StoreAnswer<T> for Result<T, StoreError> {
    fn api(self) -> ApiResult<T> {
        self.map_err(store_error)
    }
}
