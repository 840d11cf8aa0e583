//! The proxy as an attacker meets it: real sockets on loopback, a fake GitLab that logs
//! every request it gets (and answers anything but an archive download with a redirect to
//! a canary, as a release asset link would), and a canary server standing for an internal
//! address. Raw request lines go through a TCP socket, so that nothing on the way
//! normalises them: whatever is sent, the canary is never reached, and the upstream sees
//! only paths below its prefix without a dot segment in any encoding.

use std::sync::{Arc, Mutex};

use artifact_core::request::RequestPath;
use artifact_server::ProxyConfig;
use artifact_testkit::range_server::RangeServer;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::fixture;

/// One request the fake GitLab got: its raw target and headers.
#[derive(Debug, Clone)]
struct Logged {
    target: String,
    headers: axum::http::HeaderMap,
}

type Log = Arc<Mutex<Vec<Logged>>>;

/// Serves `router` on a loopback port with the server's own loop (`artifact_server::serve`,
/// which gives handlers the caller's address, as the proxy's `X-Forwarded-For` needs); its base
/// URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(artifact_server::serve(listener, router, std::future::pending()));
    url
}

/// Whether `path` (below `/gitlab`) is an archive download's shape (endpoint 5 or 6).
fn archive_shaped(path: &str) -> bool {
    let segs: Vec<&str> = path.split('/').collect();
    match segs[..] {
        ["", "gitlab", "api", "v4", "projects", _, "jobs", id, "artifacts"] => id.bytes().all(|b| b.is_ascii_digit()),
        ["", "gitlab", "api", "v4", "projects", _, "jobs", "artifacts", _, "download"] => true,
        _ => false,
    }
}

/// A fake GitLab under `/gitlab` that logs every request; an archive download answers
/// `archive` (status, `Location`), anything else a redirect to `elsewhere`.
async fn fake_gitlab(archive: (StatusCode, Option<String>), elsewhere: String) -> (String, Log) {
    let log: Log = Arc::default();
    let logged = log.clone();
    let router = axum::Router::new().fallback(move |req: Request| {
        let (logged, archive, elsewhere) = (logged.clone(), archive.clone(), elsewhere.clone());
        async move {
            let target = req.uri().path_and_query().map_or("", |p| p.as_str()).to_owned();
            let shaped = archive_shaped(req.uri().path());
            logged.lock().unwrap().push(Logged { target, headers: req.headers().clone() });
            let (status, location) = if shaped { archive } else { (StatusCode::FOUND, Some(elsewhere)) };
            let mut resp = axum::response::Response::new(Body::from(r#"{"message":"404 Not Found"}"#));
            *resp.status_mut() = status;
            resp.headers_mut().insert("content-type", "application/json".parse().unwrap());
            if let Some(location) = location {
                resp.headers_mut().insert("location", location.parse().unwrap());
            }
            resp
        }
    });
    (format!("{}/gitlab", serve(router).await), log)
}

/// Sends `target` as it is in a request line, with `headers`; the status (0 when the
/// connection closed without one).
async fn raw(proxy: &str, target: &str, headers: &[(&str, &str)]) -> u16 {
    let addr = proxy.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("GET {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// A row of the hostile table: the request target, its headers, and the status it must get
/// (`None`: any, as long as it reaches nothing it should not).
type Row = (String, Vec<(&'static str, String)>, Option<u16>);

/// The ways a dot segment is written.
const DOTS: [&str; 15] = [
    "..",
    ".",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e.",
    "%2e",
    "%252e%252e",
    "%25252E%25252E",
    "%c0%ae%c0%ae",
    "..%2f",
    "..%5c",
    "..;",
    "..;x=1",
    "%2e%2e%3b",
];

/// Where a dot segment is put: every face of the API, a page, and the root.
const PLACES: [&str; 6] = [
    "/{d}/admin/secret",
    "/api/v4/projects/42/jobs/artifacts/x/{d}/{d}/{d}/releases/v1/downloads/raw/index.html?job=j",
    "/api/v4/projects/42/jobs/7/artifacts/{d}/{d}/x",
    "/api/v4/projects/42/{d}/43/jobs",
    "/api/v4/projects/42/jobs/{d}/artifacts/x",
    "/g/p/-/jobs/7/artifacts/raw/{d}/x",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_reaches_another_address_or_leaves_the_upstreams_prefix() {
    let canary = RangeServer::start();
    canary.put("secret", &b"internal"[..]);
    let canary_url = canary.url("secret");
    let (up, log) = fake_gitlab((StatusCode::NOT_FOUND, None), canary_url.clone()).await;
    let proxy = serve(artifact_server::proxy_app(ProxyConfig::new(&up).unwrap()).unwrap()).await;
    let mut table: Vec<Row> = Vec::new();
    for place in PLACES {
        for dots in DOTS {
            table.push((place.replace("{d}", dots), vec![], Some(400)));
        }
    }
    let canary_host = canary_url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    let token = ("PRIVATE-TOKEN", "glpat-caller".to_owned());
    for (target, headers) in [
        ("//evil.example/x".to_owned(), vec![]),
        ("///evil.example/x".to_owned(), vec![]),
        ("/\\evil.example/x".to_owned(), vec![]),
        ("/api/v4//projects/42/jobs".to_owned(), vec![]),
        ("/api/v4/projects/42/jobs/artifacts/x%2F..%2F..%2Freleases/raw/a?job=j".to_owned(), vec![token.clone()]),
        ("/api/v4/projects/42%2F..%2F43/jobs/7/artifacts/a".to_owned(), vec![token.clone()]),
        ("/api/v4/projects/42/jobs/artifacts/main/raw/a?job=../../../releases".to_owned(), vec![token.clone()]),
        ("/api/v4/projects/42/jobs/7/artifacts/a?private_token=x&url=http://127.0.0.1/".to_owned(), vec![]),
        ("/api/v4/projects/42/jobs/7/artifacts/a\\..\\..\\x".to_owned(), vec![]),
        ("/api/v4/projects/42/jobs/7/artifacts/a%5C..%5C..%5Cx".to_owned(), vec![]),
        ("/api/v4/projects/42/jobs/7/artifacts/%c0%ae%c0%ae%c0%afx".to_owned(), vec![]),
        ("/api/v4/projects/42/jobs/7/artifacts/%e0%80%ae%e0%80%ae/x".to_owned(), vec![]),
        ("/api/v4/projects/42/jobs/7/artifacts/a;/../x".to_owned(), vec![]),
        ("/api/v4/version;/../../secret".to_owned(), vec![]),
        ("/api/v4/version?x=/../../secret#frag".to_owned(), vec![]),
        (canary_url.clone(), vec![]),
        (format!("http://{canary_host}/api/v4/version"), vec![("Host", canary_host.clone())]),
        ("/api/v4/version".to_owned(), vec![("Host", canary_host.clone())]),
        ("/api/v4/version".to_owned(), vec![("X-Forwarded-Host", canary_host.clone())]),
        ("*".to_owned(), vec![]),
    ] {
        table.push((target, headers, None));
    }
    assert!(table.len() >= 60, "{} rows", table.len());
    for (target, headers, expected) in &table {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let before = log.lock().unwrap().len();
        let status = raw(&proxy, target, &headers).await;
        if let Some(expected) = expected {
            assert_eq!(status, *expected, "{target}");
            assert_eq!(log.lock().unwrap().len(), before, "{target}: refused before anything went upstream");
        }
        assert!(canary.requests().is_empty(), "{target} reached the canary");
    }
    let seen = log.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the benign rows went upstream");
    for request in &seen {
        let path = request.target.split('?').next().unwrap();
        assert!(path.starts_with("/gitlab/"), "{} left the prefix", request.target);
        assert!(RequestPath::parse(path).is_ok(), "{}: a dot segment reached the upstream", request.target);
        // The proxy's own authorization asks for nothing but an archive download.
        if request.headers.get("range").is_some_and(|r| r == "bytes=0-0") {
            assert!(archive_shaped(path), "authorization of {}", request.target);
            assert!(!request.target.contains("private_token"), "{}: tokens go as headers", request.target);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_to_the_upstream_carry_no_proxy_cookie_and_say_who_asked() {
    let canary = RangeServer::start();
    let (up, log) = fake_gitlab((StatusCode::NOT_FOUND, None), canary.url("x")).await;
    let proxy = serve(artifact_server::proxy_app(ProxyConfig::new(&up).unwrap()).unwrap()).await;
    let session = format!("_artifact_session={}", "a".repeat(64));
    let host_session = format!("__Host-_artifact_session={}", "b".repeat(64));
    let cookie = format!("{session}; _gitlab_session=kept; {host_session}");
    let status = raw(
        &proxy,
        "/api/v4/projects/42/jobs",
        &[
            ("Cookie", &cookie),
            ("X-Forwarded-For", "203.0.113.9"),
            ("Forwarded", "for=198.51.100.7;host=evil.example;proto=https"),
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Ssl", "on"),
            ("True-Client-IP", "203.0.113.11"),
            ("X-Forwarded-Proto", "gopher"),
            ("X-Real-IP", "203.0.113.10"),
            ("Connection", "X-Secret-Hop"),
            ("X-Secret-Hop", "1"),
            ("Proxy-Authorization", "Basic eDp4"),
        ],
    )
    .await;
    assert_eq!(status, 302, "the fake's answer comes back as it is");
    let seen = log.lock().unwrap().last().cloned().unwrap();
    let h = |name: &str| seen.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(h("cookie").as_deref(), Some("_gitlab_session=kept"), "the proxy's own session cookie stays");
    assert_eq!(h("x-forwarded-for").as_deref(), Some("203.0.113.9, 127.0.0.1"), "appended");
    assert_eq!(h("forwarded").as_deref(), Some("for=198.51.100.7, for=127.0.0.1"), "only for= of the caller's");
    for gone in [
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-ssl",
        "true-client-ip",
        "x-real-ip",
        "x-secret-hop",
        "proxy-authorization",
    ] {
        assert_eq!(h(gone), None, "{gone} went upstream");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_are_read_only_where_the_destination_rules_allow_and_never_with_credentials() {
    let storage = RangeServer::start();
    storage.put("bucket/a.zip", std::fs::read(fixture("infozip-basic.zip")).unwrap());
    let storage_origin = storage.origin();
    let signed = format!("{}?X-Amz-Signature=abc", storage.url("bucket/a.zip"));
    let uri = "/api/v4/projects/1/jobs/9/artifacts/docs/readme.txt";
    let token = [("PRIVATE-TOKEN", "glpat-ok")];
    let readme = b"Top-level readme for the infozip-basic fixture.\n".len();
    for (origins, location, expected) in [
        // Listed: read there.
        (vec![storage_origin.clone()], signed.clone(), 200),
        // Not listed: refused before a byte is asked.
        (vec!["https://bucket.example".to_owned()], signed.clone(), 502),
        // No list: anywhere but link-local and metadata addresses.
        (vec![], signed.clone(), 200),
        (vec![], "http://169.254.169.254/latest/meta-data/iam".to_owned(), 502),
        (vec![], "http://[fd00:ec2::254]/latest".to_owned(), 502),
        (vec![], "http://0xa9fea9fe/latest".to_owned(), 502),
        (vec![], "file:///etc/passwd".to_owned(), 502),
    ] {
        let (up, log) = fake_gitlab((StatusCode::FOUND, Some(location.clone())), storage.url("other")).await;
        let mut config = ProxyConfig::new(&up).unwrap();
        config.object_storage_origins = origins.clone();
        config.connect_timeout = std::time::Duration::from_secs(2);
        let proxy = serve(artifact_server::proxy_app(config).unwrap()).await;
        let before = storage.requests().len();
        let client = reqwest::Client::new();
        let resp = client.get(format!("{proxy}{uri}")).header(token[0].0, token[0].1).send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap();
        assert_eq!(status, expected, "{origins:?} {location}");
        if expected == 200 {
            assert_eq!(body.len(), readme);
            let reads = &storage.requests()[before..];
            assert!(reads.iter().all(|r| r.header("private-token").is_none()), "no token to storage");
        } else {
            assert_eq!(storage.requests().len(), before, "{location}: nothing read");
        }
        let asked: Vec<String> = log.lock().unwrap().iter().map(|l| l.target.clone()).collect();
        // Once when its redirect is followed at once; a refused one is asked again by the
        // authorization, whose answer goes back.
        let times = if expected == 200 { 1 } else { 2 };
        assert_eq!(asked, vec!["/gitlab/api/v4/projects/1/jobs/9/artifacts"; times], "only the archive's download");
    }
    // A redirect on the upstream's own origin is read without the caller's token too.
    let (up, log) = fake_gitlab((StatusCode::FOUND, Some("/gitlab/objects/a.zip".into())), String::new()).await;
    let proxy = serve(artifact_server::proxy_app(ProxyConfig::new(&up).unwrap()).unwrap()).await;
    let resp = reqwest::Client::new().get(format!("{proxy}{uri}")).header("PRIVATE-TOKEN", "glpat-ok").send().await;
    assert!(!resp.unwrap().status().is_success());
    let seen = log.lock().unwrap().clone();
    let followed: Vec<&Logged> = seen.iter().filter(|l| l.target.starts_with("/gitlab/objects/")).collect();
    assert!(!followed.is_empty(), "the redirect was followed: {seen:?}");
    assert!(followed.iter().all(|l| l.headers.get("private-token").is_none()), "without the token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_is_remembered_under_the_credential_the_upstream_judged() {
    let storage = RangeServer::start();
    storage.put("a.zip", std::fs::read(fixture("infozip-basic.zip")).unwrap());
    let location = storage.url("a.zip");
    // The archive's download says yes to `PRIVATE-TOKEN: GOOD` only.
    let front = axum::Router::new().fallback(move |req: Request| {
        let location = location.clone();
        async move {
            let good = req.headers().get("private-token").is_some_and(|v| v == "GOOD");
            let mut resp = axum::response::Response::new(Body::from(r#"{"message":"401 Unauthorized"}"#));
            if good {
                *resp.status_mut() = StatusCode::FOUND;
                resp.headers_mut().insert("location", location.parse().unwrap());
            } else {
                *resp.status_mut() = StatusCode::UNAUTHORIZED;
            }
            resp
        }
    });
    let proxy = serve(artifact_server::proxy_app(ProxyConfig::new(&serve(front).await).unwrap()).unwrap()).await;
    let file = format!("{proxy}/api/v4/projects/42/jobs/400/artifacts/docs/readme.txt");
    let client = reqwest::Client::new();
    let status = |request: reqwest::RequestBuilder| async move { request.send().await.unwrap().status().as_u16() };
    assert_eq!(status(client.get(format!("{file}?private_token=PLANTED"))).await, 401);
    // GitLab reads the parameter first: the upstream judges PLANTED, and so does the grant.
    let both = client.get(format!("{file}?private_token=PLANTED")).header("PRIVATE-TOKEN", "GOOD");
    assert_eq!(status(both).await, 401);
    assert_eq!(status(client.get(format!("{file}?private_token=PLANTED"))).await, 401, "nothing remembered");
    assert_eq!(status(client.get(&file).header("PRIVATE-TOKEN", "GOOD")).await, 200);
    assert_eq!(status(client.get(format!("{file}?private_token=PLANTED"))).await, 401, "GOOD's grant is GOOD's");
    // A job token in `token=` goes up as the job token it is read as, and is not a grant
    // of the header beside it.
    let with_job = client.get(format!("{file}?token=PLANT")).header("PRIVATE-TOKEN", "GOOD");
    assert_eq!(status(with_job).await, 200, "the personal token comes first");
    assert_eq!(status(client.get(format!("{file}?token=PLANT"))).await, 401);
    // A scheme the reading does not take is no credential: not sent, not a grant for
    // anonymous callers.
    assert_eq!(status(client.get(&file).header("Authorization", "Basic R09PRDp4")).await, 401);
    assert_eq!(status(client.get(&file)).await, 401);
}
