//! One request, upstream and back: [`Forward`].
//!
//! Every request goes upstream with the caller's method, path, query, credentials and
//! body, and the answer comes back streamed, its status and end-to-end headers as they
//! are. Redirects are passed through (an archive download that GitLab sends to object
//! storage never crosses the proxy), and `Link` and `Location` values that point at the
//! upstream are rewritten to the proxy's base URL, so that pagination keeps going through
//! the proxy. An upstream that cannot be reached answers `502`, one that does not answer in
//! time `504`, both with GitLab-shaped bodies; a body cut mid-stream aborts the client's
//! connection.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, TryStreamExt};

use artifact_core::request::RequestPath;
use artifact_gitlab::ApiError;

use crate::Proxy;
use crate::rewrite::{rebase, rebase_json};

/// The service that sends each request to the proxy's upstream and streams the answer
/// back (see the module docs): the inner service of a [`ProxyLayer`](crate::ProxyLayer)
/// in front of GitLab.
#[derive(Debug, Clone)]
pub struct Forward {
    proxy: Arc<Proxy>,
}

impl Forward {
    /// Forwarding to the upstream of `proxy`.
    pub fn new(proxy: Arc<Proxy>) -> Forward {
        Forward { proxy }
    }
}

impl tower_service::Service<Request> for Forward {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let proxy = self.proxy.clone();
        Box::pin(async move { Ok(upstream(&proxy, req).await) })
    }
}

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

/// What a caller may not say about the way its request came: the proxy says it
/// (`X-Forwarded-For`, `Forwarded`), or nobody does (the others, which an upstream may
/// build its URLs and its view of the client from).
const CALLERS_MAY_NOT_SAY: [&str; 15] = [
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "front-end-https",
    "x-real-ip",
    "client-ip",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "x-original-url",
    "x-rewrite-url",
];

/// The `for=` elements of a caller's `Forwarded` values: the rest (`host=`, `proto=`,
/// `by=`) is what a caller may not say.
fn forwarded_for_elements(headers: &HeaderMap) -> Vec<String> {
    let values = headers.get_all(header::FORWARDED).iter().filter_map(|v| v.to_str().ok());
    let pairs = values.flat_map(|v| v.split([',', ';'])).map(str::trim);
    pairs
        .filter_map(|p| p.get(..4).filter(|name| name.eq_ignore_ascii_case("for=")).and_then(|_| p.get(4..)))
        .filter(|node| !node.is_empty())
        .map(|node| format!("for={node}"))
        .collect()
}

/// Whether a `name=value` pair of a `Cookie` header is the proxy's session cookie (by its
/// name, with or without the `__Host-` prefix).
fn is_session_cookie(pair: &str) -> bool {
    let name = pair.split_once('=').map_or(pair, |(name, _)| name).trim();
    name.strip_prefix("__Host-").unwrap_or(name) == artifact_gitlab::SESSION_COOKIE
}

/// The headers a caller's request goes upstream with: its end-to-end headers, without the
/// proxy's own session cookie (which opens the proxy's pages, and must not be read in the
/// upstream's logs) nor what a caller may not say about the request's way, with the
/// caller's address appended to `X-Forwarded-For` and `Forwarded`, as a proxy does.
pub(crate) fn upstream_headers(headers: &HeaderMap, peer: Option<std::net::IpAddr>) -> HeaderMap {
    let mut out = end_to_end(headers);
    for name in CALLERS_MAY_NOT_SAY {
        out.remove(name);
    }
    let cookies: Vec<HeaderValue> = out
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let kept: Vec<&str> = v.split(';').map(str::trim).filter(|pair| !is_session_cookie(pair)).collect();
            (!kept.is_empty()).then(|| HeaderValue::from_str(&kept.join("; ")).ok()).flatten()
        })
        .collect();
    out.remove(header::COOKIE);
    for cookie in cookies {
        out.append(header::COOKIE, cookie);
    }
    // The caller's `Forwarded` is cut to its `for=` elements; the proxy appends its own
    // element, and the caller's address to `X-Forwarded-For`, when it knows it (not
    // without a socket: an embedding's own router).
    let x_forwarded_for = HeaderName::from_static("x-forwarded-for");
    let theirs = [
        out.get_all(&x_forwarded_for).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect(),
        forwarded_for_elements(&out),
    ];
    let ours = match peer {
        Some(std::net::IpAddr::V4(v4)) => [Some(v4.to_string()), Some(format!("for={v4}"))],
        Some(std::net::IpAddr::V6(v6)) => [Some(v6.to_string()), Some(format!("for=\"[{v6}]\""))],
        None => [None, None],
    };
    for ((name, theirs), ours) in [x_forwarded_for, header::FORWARDED].into_iter().zip(theirs).zip(ours) {
        let theirs: Vec<String> = theirs;
        let all: Vec<&str> = theirs.iter().map(String::as_str).chain(ours.as_deref()).collect();
        out.remove(&name);
        // What the caller sent there that does not make a header value: ours alone.
        let value =
            HeaderValue::from_str(&all.join(", ")).ok().or_else(|| HeaderValue::from_str(ours.as_deref()?).ok());
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.insert(name, value);
        }
    }
    out
}

/// A GitLab-shaped error of the proxy itself, by its status (`502`, `504`; the upstream's
/// own errors pass through as they are).
pub fn gateway(status: StatusCode) -> Response {
    ApiError::Upstream(status).into_response()
}

/// JSON bodies up to this size have their upstream URLs rewritten; larger ones pass as
/// they are (a job list is a few hundred KiB at most).
const REWRITE_MAX: usize = 8 << 20;

/// The request as the upstream answers it: sent below its prefix with the end-to-end
/// headers, the answer's links and JSON rebased onto the proxy, streamed back.
pub(crate) async fn upstream(proxy: &Proxy, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // Below the upstream's prefix, built from the path's decoded segments (never joined as
    // it was sent: the client's URL parser would collapse what the rule refuses).
    let url = match RequestPath::parse(parts.uri.path()) {
        Ok(path) => proxy.target.below(&path, parts.uri.query()),
        Err(refused) => return ApiError::InvalidParam(refused.to_string()).into_response(),
    };
    let base = proxy.base(&parts.headers);
    let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let mut request = proxy.client.request(parts.method.clone(), &url).headers(upstream_headers(&parts.headers, peer));
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
