//! What the proxy answers a request of the API with: a single file (endpoint 7 or 8) from
//! the engine when it can, else the upstream's own answer. The pages reach the same answer
//! for their files.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::Method;
use axum::response::{IntoResponse, Response};

use super::Proxy;
use crate::routes::artifacts::answer::artifact_path;
use crate::routes::artifacts::target::Target;

/// The target of a single-file request (endpoint 7 or 8, `GET` or `HEAD`) and its raw
/// artifact path, if it is one.
fn single_file(method: &Method, uri: &axum::http::Uri) -> Option<(Target, String)> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return None;
    }
    let query = crate::query::Query::parse(uri.query());
    let target = Target::single_file(uri.path(), query.get("job"))?;
    let file = target.file.clone()?;
    Some((target, file))
}

/// A single file from the engine (its path rule's `400` before anything goes upstream), or
/// the upstream's answer.
pub(crate) async fn answer(proxy: &Arc<Proxy>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if let Some((target, raw_file)) = single_file(&parts.method, &parts.uri) {
        // The path rule's 400 before anything goes upstream (whose URL parser would resolve
        // `%2E%2E` segments before GitLab could refuse them).
        let path = match artifact_path(&raw_file) {
            Ok(path) => path,
            Err(refused) => return refused.into_response(),
        };
        if let Some(answer) = super::file::file(proxy, &parts, target, path).await {
            return answer;
        }
    }
    super::forward::upstream(proxy, parts, body).await
}
