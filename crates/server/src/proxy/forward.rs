//! One request, upstream and back.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, TryStreamExt};

use super::Proxy;
use super::rewrite::{rebase, rebase_json};
use crate::routes::artifacts::answer::artifact_path;
use crate::routes::artifacts::target::Target;

/// Hop-by-hop headers (RFC 9110 §7.6.1), and `Host`: they describe one connection, never
/// the message, so they are not forwarded either way.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    // Headers the `Connection` header names are hop-by-hop too.
    for named in headers.get_all(header::CONNECTION).iter().filter_map(|v| v.to_str().ok()) {
        for name in named.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            out.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        out.remove(name);
    }
    out.remove(header::HOST);
    out
}

/// A GitLab-shaped error of the proxy itself (the upstream's own errors pass through).
pub(crate) fn gateway(status: StatusCode) -> Response {
    crate::error::ApiError::Upstream(status).into_response()
}

/// The target of a single-file request (endpoint 7 or 8, `GET` or `HEAD`) and its raw
/// artifact path, if it is one.
fn single_file(method: &Method, uri: &axum::http::Uri) -> Option<(Target, String)> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return None;
    }
    let path = uri.path();
    let segs: Vec<&str> = path.split('/').collect();
    if segs.len() < 9 || segs[..4] != ["", "api", "v4", "projects"] || segs[5] != "jobs" {
        return None;
    }
    let target = if segs[6] == "artifacts" {
        let query = crate::query::Query::parse(uri.query());
        Target::by_ref(path, query.get("job")).ok()?
    } else if segs[7] == "artifacts" {
        Target::by_id(path).ok()?
    } else {
        return None;
    };
    let file = target.file.clone()?;
    Some((target, file))
}

/// JSON bodies up to this size have their upstream URLs rewritten; larger ones pass as
/// they are (a job list is a few hundred KiB at most).
const REWRITE_MAX: usize = 8 << 20;

pub(crate) async fn forward(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    // The pages for people are the proxy's own (reading from the upstream); the artifacts
    // origin serves their files and nothing else.
    if crate::routes::browse::is_page(req.uri().path()) {
        return super::pages::visit(&proxy, req).await;
    }
    if crate::routes::browse::on_artifacts_origin(proxy.artifacts_origin.as_deref(), req.headers()) {
        return crate::error::ApiError::NotFound("Not Found").into_response();
    }
    let started = std::time::Instant::now();
    let resp = answer(&proxy, req).await;
    proxy.metrics.answered(started);
    resp
}

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
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path_and_query}", proxy.upstream);
    let base = crate::routes::base_url(proxy.base_url.as_deref(), &parts.headers);
    let mut request = proxy.client.request(parts.method.clone(), &url).headers(end_to_end(&parts.headers));
    // A request without a body (most GETs) goes without one, not as an empty chunked body.
    let declared = parts.headers.get(header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0");
    if declared || parts.headers.contains_key(header::TRANSFER_ENCODING) {
        request = request.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let sent = request.send();
    let upstream = match sent.await {
        Ok(resp) => resp,
        Err(e) => {
            proxy.metrics.upstream("forward", 0);
            // The URL may carry a token (`private_token=`): only the path goes to the log.
            let (timeout, path) = (e.is_timeout(), parts.uri.path().to_owned());
            tracing::warn!(%path, timeout, error = %e.without_url(), "upstream request failed");
            return gateway(if timeout { StatusCode::GATEWAY_TIMEOUT } else { StatusCode::BAD_GATEWAY });
        }
    };
    let status = upstream.status();
    proxy.metrics.upstream("forward", status.as_u16());
    let mut headers = end_to_end(upstream.headers());
    for name in [header::LINK, header::LOCATION, header::CONTENT_LOCATION] {
        let values: Vec<HeaderValue> = headers
            .get_all(&name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| HeaderValue::from_str(&rebase(v, &proxy.upstream, &base)).ok())
            .collect();
        if !values.is_empty() {
            headers.remove(&name);
            for v in values {
                headers.append(&name, v);
            }
        }
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let mut stream = upstream.bytes_stream().map_err(std::io::Error::other).boxed();
    if json && parts.method != Method::HEAD {
        // `web_url` and friends point at the upstream: they move to the proxy too. Bodies
        // past the bound pass as they are.
        let mut buf = Vec::new();
        while buf.len() <= REWRITE_MAX {
            match stream.next().await {
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                Some(Err(_)) => return gateway(StatusCode::BAD_GATEWAY),
                None => {
                    let body = rebase_json(&String::from_utf8_lossy(&buf), &proxy.upstream, &base);
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
                    let mut resp = Response::new(Body::from(body));
                    *resp.status_mut() = status;
                    *resp.headers_mut() = headers;
                    return resp;
                }
            }
        }
        stream = futures_util::stream::once(std::future::ready(Ok(bytes::Bytes::from(buf)))).chain(stream).boxed();
    }
    // A body that breaks mid-stream ends in an error, which aborts the client's connection:
    // a cut body is never passed off as a complete one.
    let streaming = proxy.metrics.stream();
    let stream = stream.inspect(move |_| {
        let _ = &streaming;
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}
