//! Errors: [`ApiError`] is what a client sees, shaped like GitLab's (`message` for API errors,
//! `error` for parameter validation); [`Error`] is what the library's callers (the command
//! line) see.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

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

/// An error answered to an API client.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// 401 `{"message":"401 Unauthorized"}`.
    Unauthorized,
    /// 403 `{"message":"403 Forbidden"}` or `403 Forbidden - <reason>`.
    Forbidden(Option<&'static str>),
    /// 404 `{"message":"404 Project Not Found"}`.
    ProjectNotFound,
    /// 404 `{"message":"404 <what>"}`, e.g. `Not found`.
    NotFound(&'static str),
    /// 400 `{"message":"400 Bad request - <reason>"}`.
    BadRequest(String),
    /// 400 `{"error":"<param> <problem>"}`.
    InvalidParam(String),
    /// 416 with `Content-Range: bytes */<len>`.
    RangeNotSatisfiable(u64),
    /// 412 `{"message":"412 Precondition Failed"}`: `If-Match` or `If-Unmodified-Since`
    /// failed.
    PreconditionFailed,
    /// 500; the detail goes to the log only.
    Internal(String),
}

impl ApiError {
    pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, json!({"message": "401 Unauthorized"})),
            ApiError::Forbidden(None) => (StatusCode::FORBIDDEN, json!({"message": "403 Forbidden"})),
            ApiError::Forbidden(Some(why)) => {
                (StatusCode::FORBIDDEN, json!({"message": format!("403 Forbidden - {why}")}))
            }
            ApiError::ProjectNotFound => (StatusCode::NOT_FOUND, json!({"message": "404 Project Not Found"})),
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, json!({"message": format!("404 {what}")})),
            ApiError::BadRequest(why) => {
                (StatusCode::BAD_REQUEST, json!({"message": format!("400 Bad request - {why}")}))
            }
            ApiError::InvalidParam(what) => (StatusCode::BAD_REQUEST, json!({"error": what})),
            ApiError::PreconditionFailed => {
                (StatusCode::PRECONDITION_FAILED, json!({"message": "412 Precondition Failed"}))
            }
            ApiError::RangeNotSatisfiable(len) => {
                let mut resp = (StatusCode::RANGE_NOT_SATISFIABLE, "").into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return resp;
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, json!({"message": "500 Internal Server Error"}))
            }
        };
        (status, axum::Json(body)).into_response()
    }
}

/// Handler results.
pub(crate) type ApiResult<T> = Result<T, ApiError>;
