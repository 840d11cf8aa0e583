//! Every request gets an id (`X-Request-Id`, and a tracing span); a panic in a handler is
//! caught, logged with that id, and answered 500 while the server keeps serving. Before
//! anything else, the request-path rule: a dot segment in any encoding is `400`.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tracing::Instrument;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The middleware every request of the API passes first: an id (`X-Request-Id` and a
/// tracing span), the request-path rule, and a caught panic answered `500`.
pub async fn guard(req: Request, next: Next) -> Response {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let span = tracing::debug_span!("request", id, %method, %path);
    // The request-path rule before anything else (see `refused_path`).
    if let Some(refused) = refused_path(req.uri().path()) {
        let mut resp = refused.into_response();
        resp.headers_mut().insert("x-request-id", HeaderValue::from(id));
        return resp;
    }
    let result = AssertUnwindSafe(next.run(req)).catch_unwind().instrument(span).await;
    let mut resp = match result {
        Ok(resp) => resp,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(request_id = id, %method, %path, panic = %what, "handler panicked");
            let body = serde_json::json!({"message": "500 Internal Server Error"});
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
        }
    };
    resp.headers_mut().insert("x-request-id", HeaderValue::from(id));
    resp
}

/// Request bodies are read whole (they are small JSON documents here) before the handler
/// runs, even by handlers that ignore them. A body left unread makes hyper close the
/// connection after the response without saying so, and a client that reuses the
/// connection for its next request (python-gitlab sends `{}` with every POST) then sees it
/// closed without a response.
pub async fn read_body(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Err(_) => {
            let body = serde_json::json!({"message": "413 Request Entity Too Large"});
            (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
        }
    }
}

/// The largest request body read: the API takes small JSON documents only.
const MAX_BODY: usize = 1 << 20;

/// The request-path rule (`artifact_core::request`), checked by [`guard`] before anything
/// else on the server and the proxy: a dot segment in any encoding, anywhere in the path, is
/// the path rule's `400`, so that no route, page or upstream URL is ever made from a path
/// that a URL parser on the way would collapse. `None`: the request goes on.
fn refused_path(path: &str) -> Option<crate::error::ApiError> {
    let refused = artifact_core::request::RequestPath::check(path).err()?;
    // A single file's artifact path that breaks the path rule gets the rule's own answer,
    // from its route, when the rest of the path is clean.
    if let Some(file) = artifact_part(path)
        && crate::entry::artifact_path(file).is_err()
        && artifact_core::request::RequestPath::check(&path[..path.len() - file.len()]).is_ok()
    {
        return None;
    }
    let what = if crate::target::single_file_route(path) { "artifact_path" } else { "path" };
    Some(crate::error::ApiError::InvalidParam(refused.to_string().replacen("path", what, 1)))
}

/// The raw artifact path of a single file's download, if `path` is one.
fn artifact_part(path: &str) -> Option<&str> {
    // Any job name: only where the artifact path starts matters here.
    let len = crate::target::Target::single_file(path, Some("-"))?.file?.len();
    path.get(path.len() - len..)
}
