//! What a client sees when a request fails: [`ApiError`], shaped like GitLab's answers
//! (`message` for API errors, `error` for parameter validation, OAuth 2.0 errors for
//! tokens), never with a detail of what failed inside (that goes to the log).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to an API client.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// 401 `{"message":"401 Unauthorized"}`.
    Unauthorized,
    /// 403 `{"message":"403 Forbidden"}` or `403 Forbidden - <reason>`.
    Forbidden(Option<&'static str>),
    /// 404 `{"message":"404 Project Not Found"}`.
    ProjectNotFound,
    /// 404 `{"message":"404 <what>"}`, e.g. `Not found`.
    NotFound(&'static str),
    /// 404 `{"message":"404 <what>"}` with a text made at run time.
    NotFoundText(String),
    /// 401 for a token that exists but no longer works (`Token has expired.`, `Token has
    /// been revoked.`): an OAuth 2.0 `invalid_token` error, body and `WWW-Authenticate`.
    InvalidToken(&'static str),
    /// 403 for a token without a scope the request needs (any of these, by GitLab's names
    /// separated by spaces, e.g. `api read_api`): an OAuth 2.0 `insufficient_scope` error,
    /// body and `WWW-Authenticate`.
    InsufficientScope(&'static str),
    /// 400 `{"message":"400 Bad request - <reason>"}`.
    BadRequest(String),
    /// 400 `{"error":"<param> <problem>"}`.
    InvalidParam(String),
    /// 405 `{"error":"<why>"}`.
    NotAllowed(&'static str),
    /// 416 with `Content-Range: bytes */<len>`.
    RangeNotSatisfiable(u64),
    /// 412 `{"message":"412 Precondition Failed"}`: `If-Match` or `If-Unmodified-Since`
    /// failed.
    PreconditionFailed,
    /// 503 `{"message":"503 Service Unavailable"}`: the store cannot be reached now; the
    /// detail goes to the log only.
    Unavailable(String),
    /// 500; the detail goes to the log only.
    Internal(String),
    /// What an upstream answered a page's request with, by its status (the proxy's pages
    /// show it as it is): `{"message":"<status> <reason>"}`.
    Upstream(StatusCode),
}

impl ApiError {
    /// A `500` whose detail (`e`) goes to the log only.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
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
            ApiError::NotFoundText(what) => (StatusCode::NOT_FOUND, json!({"message": format!("404 {what}")})),
            ApiError::InvalidToken(why) => {
                return oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", why, None);
            }
            ApiError::InsufficientScope(scope) => {
                let why = "The request requires higher privileges than provided by the access token.";
                return oauth_error(StatusCode::FORBIDDEN, "insufficient_scope", why, Some(scope));
            }
            ApiError::BadRequest(why) => {
                (StatusCode::BAD_REQUEST, json!({"message": format!("400 Bad request - {why}")}))
            }
            ApiError::InvalidParam(what) => (StatusCode::BAD_REQUEST, json!({"error": what})),
            ApiError::NotAllowed(why) => (StatusCode::METHOD_NOT_ALLOWED, json!({"error": why})),
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
            ApiError::Unavailable(detail) => {
                tracing::warn!(%detail, "storage unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, json!({"message": "503 Service Unavailable"}))
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, json!({"message": "500 Internal Server Error"}))
            }
            ApiError::Upstream(status) => {
                let message = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
                (status, json!({ "message": message }))
            }
        };
        (status, axum::Json(body)).into_response()
    }
}

/// An OAuth 2.0 bearer-token error (RFC 6750 §3) as GitLab's API guard (rack-oauth2)
/// answers it: a JSON body with `error`, `error_description` (and `scope`), and the same
/// in `WWW-Authenticate` with rack-oauth2's default realm. GitLab omits the header on the
/// 403 (its own code marks that as a bug); we send it there too, as RFC 6750 says.
fn oauth_error(status: StatusCode, error: &str, description: &str, scope: Option<&str>) -> Response {
    let mut body = serde_json::Map::new();
    body.insert("error".into(), json!(error));
    body.insert("error_description".into(), json!(description));
    let mut challenge =
        format!("Bearer realm=\"Protected by OAuth 2.0\", error=\"{error}\", error_description=\"{description}\"");
    if let Some(scope) = scope {
        body.insert("scope".into(), json!(scope));
        challenge.push_str(&format!(", scope=\"{scope}\""));
    }
    let mut resp = (status, axum::Json(serde_json::Value::Object(body))).into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// Handler results.
pub type ApiResult<T> = Result<T, ApiError>;
