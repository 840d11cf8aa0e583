//! The client against a scripted server that misbehaves on purpose: 429 with both
//! `Retry-After` forms, a 502 in the middle of a paginated walk, a cross-origin redirect, a
//! download cut halfway, and a POST answered 502.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use artifact_client::{Client, JobFilter, JobRef, RetryPolicy};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::TryStreamExt;

/// What the scripted server saw.
#[derive(Default)]
struct Seen {
    requests: Vec<(String, HeaderMap)>,
}

type Shared = Arc<Mutex<Seen>>;

async fn start(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn record(seen: &Shared, req: &Request) -> usize {
    let mut s = seen.lock().unwrap();
    let what = format!("{} {}", req.method(), req.uri());
    s.requests.push((what, req.headers().clone()));
    s.requests
        .iter()
        .filter(|(w, _)| w.split('?').next() == Some(&format!("{} {}", req.method(), req.uri().path())))
        .count()
}

fn job(id: u64) -> serde_json::Value {
    serde_json::json!({"id": id, "name": format!("job{id}"), "status": "success", "some_future_field": {"x": 1}})
}

fn page(url: &str, items: &[u64], next: Option<u32>) -> Response {
    let body: Vec<_> = items.iter().map(|&i| job(i)).collect();
    let mut resp = axum::Json(body).into_response();
    if let Some(n) = next {
        let link = format!("<{url}/api/v4/projects/1/jobs?per_page=2&page={n}>; rel=\"next\"");
        resp.headers_mut().insert(header::LINK, link.parse().unwrap());
    }
    resp
}

fn quick() -> RetryPolicy {
    RetryPolicy { base_delay: Duration::from_millis(20), ..RetryPolicy::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_429_by_retry_after_in_both_forms_and_a_502_mid_walk() {
    let seen: Shared = Arc::default();
    let base = Arc::new(Mutex::new(String::new()));
    let b = base.clone();
    let app = Router::new()
        .route(
            "/api/v4/projects/1/jobs",
            get(move |State(seen): State<Shared>, req: Request| {
                let base = b.lock().unwrap().clone();
                async move {
                    let n = record(&seen, &req);
                    let page2 = req.uri().query().is_some_and(|q| q.split('&').any(|p| p == "page=2"));
                    match (n, page2) {
                        (1, false) => (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")]).into_response(),
                        (2, false) => {
                            // Two seconds ahead: HTTP dates have whole seconds, so the wait is over one.
                            let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
                            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, at)]).into_response()
                        }
                        (_, false) => page(&base, &[9, 8], Some(2)),
                        (4, true) => StatusCode::BAD_GATEWAY.into_response(),
                        (_, true) => page(&base, &[7], None),
                    }
                }
            }),
        )
        .with_state(seen.clone());
    let url = start(app).await;
    *base.lock().unwrap() = url.clone();
    let gl = Client::builder(&url).private_token("t").retry(quick()).build().unwrap();
    let started = Instant::now();
    let jobs: Vec<_> =
        gl.jobs("1", &JobFilter { per_page: Some(2), ..JobFilter::default() }).try_collect().await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [9, 8, 7], "every item, once, unknown fields ignored");
    assert_eq!(seen.lock().unwrap().requests.len(), 5, "429, 429, page 1, 502, page 2");
    // The waits were Retry-After's (1 s, then over 1 s to the date), not the 20 ms backoff.
    assert!(started.elapsed() >= Duration::from_millis(1900), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_answered_502_is_not_retried() {
    let seen: Shared = Arc::default();
    let app = Router::new()
        .route(
            "/api/v4/projects/1/jobs/5/retry",
            post(|State(seen): State<Shared>, req: Request| async move {
                record(&seen, &req);
                StatusCode::BAD_GATEWAY
            }),
        )
        .with_state(seen.clone());
    let url = start(app).await;
    let gl = Client::builder(&url).private_token("t").retry(quick()).build().unwrap();
    let err = gl.retry("1", 5).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(502));
    assert_eq!(seen.lock().unwrap().requests.len(), 1, "a retry must never start two jobs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_origin_redirect_never_carries_the_token() {
    let storage_seen: Shared = Arc::default();
    let storage = Router::new()
        .route(
            "/bucket/artifacts.zip",
            get(|State(seen): State<Shared>, req: Request| async move {
                record(&seen, &req);
                (StatusCode::OK, "zip bytes")
            }),
        )
        .with_state(storage_seen.clone());
    // 127.0.0.1 and localhost are different origins.
    let storage_url = start(storage).await.replace("127.0.0.1", "localhost");
    let target = format!("{storage_url}/bucket/artifacts.zip?X-Amz-Signature=abc");
    let gitlab_seen: Shared = Arc::default();
    let gitlab = Router::new()
        .route(
            "/api/v4/projects/1/jobs/5/artifacts",
            get(move |State(seen): State<Shared>, req: Request| {
                let target = target.clone();
                async move {
                    record(&seen, &req);
                    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
                }
            }),
        )
        .with_state(gitlab_seen.clone());
    let url = start(gitlab).await;
    for gl in [
        Client::builder(&url).private_token("secret-pat").build().unwrap(),
        Client::builder(&url).job_token("secret-job").build().unwrap(),
        Client::builder(&url).oauth_token("secret-oauth").build().unwrap(),
    ] {
        let mut body = gl.archive("1", &JobRef::Id(5)).await.unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, b"zip bytes");
    }
    let gitlab_seen = gitlab_seen.lock().unwrap();
    assert!(gitlab_seen.requests.iter().all(|(_, h)| h.contains_key("private-token")
        || h.contains_key("job-token")
        || h.contains_key("authorization")));
    let storage_seen = storage_seen.lock().unwrap();
    assert_eq!(storage_seen.requests.len(), 3);
    for (_, h) in &storage_seen.requests {
        for name in ["private-token", "job-token", "authorization", "cookie"] {
            assert!(!h.contains_key(name), "{name} reached the storage origin");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_halfway_resumes_from_the_next_byte() {
    let data: Arc<Vec<u8>> = Arc::new((0..1_000_000u32).map(|i| (i % 251) as u8).collect());
    let seen: Shared = Arc::default();
    let d = data.clone();
    let app = Router::new()
        .route(
            "/api/v4/projects/1/jobs/5/artifacts",
            get(move |State(seen): State<Shared>, req: Request| {
                let data = d.clone();
                async move {
                    let n = record(&seen, &req);
                    let etag = "\"v1\"";
                    if n == 1 {
                        // Half the body, then the connection breaks.
                        let half = bytes::Bytes::copy_from_slice(&data[..500_000]);
                        let stream = futures_util::stream::iter(vec![
                            Ok::<_, std::io::Error>(half),
                            Err(std::io::Error::other("cut")),
                        ]);
                        let mut resp = Response::new(Body::from_stream(stream));
                        resp.headers_mut().insert(header::ETAG, etag.parse().unwrap());
                        resp.headers_mut().insert(header::CONTENT_LENGTH, data.len().into());
                        return resp;
                    }
                    let range = req.headers().get(header::RANGE).and_then(|v| v.to_str().ok()).unwrap_or("");
                    let start: usize = range.trim_start_matches("bytes=").trim_end_matches('-').parse().unwrap_or(0);
                    let mut resp = Response::new(Body::from(data[start..].to_vec()));
                    *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
                    let cr = format!("bytes {start}-{}/{}", data.len() - 1, data.len());
                    resp.headers_mut().insert(header::CONTENT_RANGE, cr.parse().unwrap());
                    resp.headers_mut().insert(header::ETAG, etag.parse().unwrap());
                    resp
                }
            }),
        )
        .route(
            "/api/v4/projects/1/jobs/5",
            get(|| async { axum::Json(serde_json::json!({"id": 5, "name": "b", "status": "success", "artifacts_file": {"filename": "artifacts.zip", "size": 1_000_000}})) }),
        )
        .with_state(seen.clone());
    let url = start(app).await;
    let gl = Client::builder(&url).private_token("t").build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("artifacts.zip");
    let done = gl.download_archive_to("1", &JobRef::Id(5), &to, None).await.unwrap();
    assert_eq!(done.resumes, 1);
    assert_eq!(std::fs::read(&to).unwrap(), *data, "bytes identical");
    let seen = seen.lock().unwrap();
    let downloads: Vec<_> = seen.requests.iter().filter(|(w, _)| w.ends_with("/artifacts")).collect();
    assert_eq!(downloads.len(), 2);
    let (_, resumed) = downloads[1];
    let range = resumed.get(header::RANGE).unwrap().to_str().unwrap();
    let start: usize = range.trim_start_matches("bytes=").trim_end_matches('-').parse().unwrap();
    assert!(start > 0 && start <= 500_000, "resumed from the next byte it had: {range}");
    assert_eq!(resumed.get(header::IF_RANGE).unwrap(), "\"v1\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_whose_size_disagrees_with_the_job_leaves_nothing() {
    let app = Router::new()
        .route("/api/v4/projects/1/jobs/5/artifacts", get(|| async { "short" }))
        .route(
            "/api/v4/projects/1/jobs/5",
            get(|| async { axum::Json(serde_json::json!({"id": 5, "name": "b", "status": "success", "artifacts_file": {"filename": "artifacts.zip", "size": 99}})) }),
        );
    let url = start(app).await;
    let gl = Client::builder(&url).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("a.zip");
    let err = gl.download_archive_to("1", &JobRef::Id(5), &to, None).await.unwrap_err();
    assert!(err.to_string().contains("the job lists 99"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_via_the_archive_falls_back_when_range_is_ignored() {
    let seen: Shared = Arc::default();
    let zip = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/infozip-basic.zip")).unwrap();
    let app = Router::new()
        .route(
            "/api/v4/projects/1/jobs/5/artifacts",
            get(move |State(seen): State<Shared>, req: Request| {
                let zip = zip.clone();
                async move {
                    record(&seen, &req);
                    // Range is ignored: the whole archive, 200.
                    zip
                }
            }),
        )
        .route(
            "/api/v4/projects/1/jobs/5/artifacts/docs/readme.txt",
            get(|State(seen): State<Shared>, req: Request| async move {
                record(&seen, &req);
                "extracted by the server"
            }),
        )
        .with_state(seen.clone());
    let url = start(app).await;
    let gl = Client::builder(&url).private_token("t").build().unwrap();
    let mut body = gl.artifact_via_archive("1", &JobRef::Id(5), "docs/readme.txt").await.unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(got, b"extracted by the server");
    let seen = seen.lock().unwrap();
    assert!(seen.requests.iter().any(|(w, _)| w.ends_with("/artifacts/docs/readme.txt")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_pagination_is_asked_for_and_followed() {
    let seen: Shared = Arc::default();
    let app = Router::new()
        .route(
            "/api/v4/projects/1/jobs",
            get(|State(seen): State<Shared>, req: Request| async move {
                record(&seen, &req);
                let q = req.uri().query().unwrap_or("").to_owned();
                if q.contains("id_before=8") {
                    return axum::Json(vec![job(7)]).into_response();
                }
                // GitLab's keyset answer: a Link to the next page, no X-Total.
                let mut resp = axum::Json(vec![job(9), job(8)]).into_response();
                let host = req.headers().get(header::HOST).unwrap().to_str().unwrap().to_owned();
                let next = format!("<http://{host}/api/v4/projects/1/jobs?pagination=keyset&id_before=8&order_by=id&sort=desc>; rel=\"next\"");
                resp.headers_mut().insert(header::LINK, next.parse().unwrap());
                resp
            }),
        )
        .with_state(seen.clone());
    let url = start(app).await;
    let gl = Client::builder(&url).private_token("t").build().unwrap();
    let filter = JobFilter { keyset: true, ..JobFilter::default() };
    let jobs: Vec<_> = gl.jobs("1", &filter).try_collect().await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [9, 8, 7]);
    let first = &seen.lock().unwrap().requests[0].0;
    assert!(
        first.contains("pagination=keyset") && first.contains("order_by=id") && first.contains("sort=desc"),
        "{first}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_link_that_loops_ends_the_walk_with_an_error() {
    let seen: Shared = Arc::default();
    let app = Router::new()
        .route(
            "/api/v4/projects/1/jobs",
            get(|State(seen): State<Shared>, req: Request| async move {
                record(&seen, &req);
                let host = req.headers().get(header::HOST).unwrap().to_str().unwrap().to_owned();
                let q = req.uri().query().unwrap_or("").to_owned();
                // Always "next" to itself: a loop.
                let next = format!("<http://{host}/api/v4/projects/1/jobs?{q}>; rel=\"next\"");
                let mut resp = axum::Json(vec![job(1)]).into_response();
                resp.headers_mut().insert(header::LINK, next.parse().unwrap());
                resp
            }),
        )
        .with_state(seen.clone());
    let url = start(app).await;
    let gl = Client::builder(&url).private_token("t").build().unwrap();
    let walked: Vec<_> = futures_util::StreamExt::collect(gl.jobs("1", &JobFilter::default())).await;
    assert!(walked.last().unwrap().is_err(), "a looping walk ends in an error");
    assert_eq!(seen.lock().unwrap().requests.len(), 1, "the repeated page is not fetched again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_that_gets_another_version_starts_over() {
    let old: Arc<Vec<u8>> = Arc::new(vec![b'o'; 400_000]);
    let new: Arc<Vec<u8>> = Arc::new(vec![b'n'; 400_000]);
    let seen: Shared = Arc::default();
    let (o, n2) = (old.clone(), new.clone());
    let app = Router::new()
        .route(
            "/api/v4/projects/1/jobs/artifacts/main/download",
            get(move |State(seen): State<Shared>, req: Request| {
                let (old, new) = (o.clone(), n2.clone());
                async move {
                    let n = record(&seen, &req);
                    let mut resp = if n == 1 {
                        // The old version, cut halfway.
                        let half = bytes::Bytes::copy_from_slice(&old[..200_000]);
                        let stream = futures_util::stream::iter(vec![
                            Ok::<_, std::io::Error>(half),
                            Err(std::io::Error::other("cut")),
                        ]);
                        let mut r = Response::new(Body::from_stream(stream));
                        r.headers_mut().insert(header::ETAG, "\"old\"".parse().unwrap());
                        r.headers_mut().insert(header::CONTENT_LENGTH, old.len().into());
                        return r;
                    } else if req.headers().contains_key(header::RANGE) {
                        // A proxy that ignores If-Range: 206 of the NEW version.
                        let mut r = Response::new(Body::from(new[200_000..].to_vec()));
                        *r.status_mut() = StatusCode::PARTIAL_CONTENT;
                        r.headers_mut().insert(header::CONTENT_RANGE, "bytes 200000-399999/400000".parse().unwrap());
                        r
                    } else {
                        Response::new(Body::from(new.to_vec()))
                    };
                    resp.headers_mut().insert(header::ETAG, "\"new\"".parse().unwrap());
                    resp
                }
            }),
        )
        .with_state(seen.clone());
    let url = start(app).await;
    let gl = Client::builder(&url).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("a.zip");
    let job = JobRef::Latest { ref_name: "main".into(), job: "build".into() };
    gl.download_archive_to("1", &job, &to, None).await.unwrap();
    assert_eq!(std::fs::read(&to).unwrap(), *new, "never half old, half new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_resume_says_why_it_resumed_and_leaves_nothing() {
    let seen: Shared = Arc::default();
    let app = Router::new()
        .route(
            "/api/v4/projects/1/jobs/6/artifacts",
            get(move |State(seen): State<Shared>, req: Request| async move {
                if record(&seen, &req) == 1 {
                    // Half the body, then the connection breaks (after a pause: hyper drops
                    // what it has buffered when a body fails, and the half must arrive).
                    use futures_util::StreamExt;
                    let half =
                        futures_util::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 1000]))]);
                    let cut = futures_util::stream::once(async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err(std::io::Error::other("cut"))
                    });
                    let mut resp = Response::new(Body::from_stream(half.chain(cut)));
                    resp.headers_mut().insert(header::ETAG, "\"v1\"".parse().unwrap());
                    resp.headers_mut().insert(header::CONTENT_LENGTH, 2000.into());
                    return resp;
                }
                // The resume gets a range that does not continue the file.
                let mut resp = Response::new(Body::from(vec![2u8; 10]));
                *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
                resp.headers_mut().insert(header::CONTENT_RANGE, "bytes 0-9/2000".parse().unwrap());
                resp.headers_mut().insert(header::ETAG, "\"v1\"".parse().unwrap());
                resp
            }),
        )
        .route(
            "/api/v4/projects/1/jobs/6",
            get(|| async { axum::Json(serde_json::json!({"id": 6, "name": "b", "status": "success"})) }),
        )
        .with_state(seen.clone());
    let url = start(app).await;
    let gl = Client::builder(&url).private_token("t").build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("artifacts.zip");
    let err = gl.download_archive_to("1", &JobRef::Id(6), &to, None).await.unwrap_err();
    let artifact_client::Error::BadResume { status, source: Some(cause), .. } = &err else {
        panic!("expected a refused resume with its cause, got {err:?}");
    };
    assert_eq!(status.as_u16(), 206);
    // The break that made it resume: a cut connection, or a body that ended short.
    let broke = matches!(**cause, artifact_client::Error::Transport { .. })
        || matches!(**cause, artifact_client::Error::SizeMismatch { received: 1000, expected: 2000, .. });
    assert!(broke, "{cause:?}");
    assert!(!to.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no temporary file is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sudo_goes_with_the_credential_a_redirect_can_be_refused_and_json_is_bounded() {
    let seen = Shared::default();
    let at = seen.clone();
    let app = Router::new()
        .route(
            "/api/v4/user",
            get(move |req: Request| async move {
                record(&at, &req);
                axum::Json(serde_json::json!({"id": 1, "username": "root"}))
            }),
        )
        .route(
            "/api/v4/projects/1/jobs/1",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "http://169.254.169.254/latest")]) }),
        )
        .route(
            "/api/v4/projects/1/jobs/2",
            get(|| async {
                // A body past the bound, whatever it says.
                let big = vec![b' '; artifact_client::JSON_MAX + 1];
                ([(header::CONTENT_TYPE, "application/json")], big)
            }),
        );
    let url = start(app).await;
    let gl = Client::builder(&url).private_token("glpat-admin").sudo("alice").build().unwrap();
    assert_eq!(gl.current_user().await.unwrap().username, "root");
    let headers = seen.lock().unwrap().requests[0].1.clone();
    assert_eq!(
        (headers["private-token"].to_str().unwrap(), headers["sudo"].to_str().unwrap()),
        ("glpat-admin", "alice")
    );
    let held = Client::builder(&url).max_redirects(0).retry(RetryPolicy::never()).build().unwrap();
    let err = held.job("1", 1).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::FOUND), "the redirect is the answer, not followed: {err}");
    let err = gl.job("1", 2).await.unwrap_err();
    assert!(
        matches!(&err, artifact_client::Error::Decode { message, .. } if message.contains("JSON document over")),
        "{err}"
    );
    assert!(Client::builder(&url).sudo("a\nb").build().is_err(), "a Sudo no header can carry");
    // Another token on the same connections: only the new credential goes, with the Sudo kept.
    let other = gl.sharing().private_token("glpat-other").build().unwrap();
    other.current_user().await.unwrap();
    let headers = seen.lock().unwrap().requests.last().unwrap().1.clone();
    assert_eq!(headers["private-token"].to_str().unwrap(), "glpat-other");
    assert_eq!(headers["sudo"].to_str().unwrap(), "alice");
    assert!(matches!(gl.job("..", 1).await, Err(artifact_client::Error::Invalid(_))), "a dot segment is no project");
}
