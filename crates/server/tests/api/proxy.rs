//! The proxy's forwarding half against a real upstream on loopback (this crate's own
//! server with real data, or a scripted one that redirects, cuts a body or is not there):
//! what goes up, what comes back, and what is rewritten.

use std::sync::{Arc, Mutex};

use artifact_server::{ProxyConfig, proxy_app};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use tower::ServiceExt;

use crate::support::{World, fixture, private, send, upstream};

fn proxy(upstream: &str) -> axum::Router {
    proxy_app(ProxyConfig::new(upstream).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_jobs_and_archives_come_through_with_links_on_the_proxy() {
    let w = World::new();
    let id = w.build_with_artifacts();
    for n in 0..3 {
        w.import(w.job(&format!("more{n}")));
    }
    let up = upstream(w.app.clone()).await;
    let app = proxy(&up);
    let token = w.token("reporter").to_owned();
    let auth = [("PRIVATE-TOKEN", token.as_str())];
    let (status, headers, body) = send(&app, Method::GET, &private("/jobs?per_page=2"), &auth).await;
    assert_eq!(status, 200);
    let direct = w.get(&private("/jobs?per_page=2"), "reporter").await;
    let jobs: serde_json::Value = serde_json::from_slice(&body.unwrap()).unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    assert_eq!(jobs[0]["id"], direct.json()[0]["id"]);
    let link = headers.get("link").unwrap().to_str().unwrap();
    assert!(link.contains("<http://proxy.test/api/v4/projects/"), "{link}");
    assert!(!link.contains(&up), "no link leads around the proxy: {link}");
    assert_eq!(headers.get("x-total").unwrap(), direct.header("x-total"));
    // URLs in the JSON that point at the upstream point at the proxy.
    let web_url = jobs[0]["web_url"].as_str().unwrap();
    assert!(web_url.starts_with("http://proxy.test/"), "{web_url}");
    // The path rule holds before anything goes upstream (whose URL parser would resolve
    // `%2E%2E` first), by job id and by ref.
    for bad in [format!("/jobs/{id}/artifacts/a/%2E%2E/b"), "/jobs/artifacts/main/raw/a/%2e%2e/b?job=build".to_owned()]
    {
        let (status, _, body) = send(&app, Method::GET, &private(&bad), &auth).await;
        let body = String::from_utf8(body.unwrap()).unwrap();
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.starts_with(r#"{"error":"artifact_path is invalid: "#), "{body}");
    }
    // The archive, byte for byte, with the upstream's validators.
    let (status, headers, body) = send(&app, Method::GET, &private(&format!("/jobs/{id}/artifacts")), &auth).await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap(), std::fs::read(fixture("infozip-basic.zip")).unwrap());
    assert!(headers.get("etag").is_some());
    // Credentials in the query go up as they are; a caller without access gets the
    // upstream's answer.
    let uri = private(&format!("/jobs/{id}/artifacts/docs/readme.txt?private_token={token}"));
    let (status, _, body) = send(&app, Method::GET, &uri, &[]).await;
    assert_eq!((status.as_u16(), body.unwrap()), (200, b"Top-level readme for the infozip-basic fixture.\n".to_vec()));
    for uri in [private(&format!("/jobs/{id}")), private(&format!("/jobs/{id}/artifacts/docs/readme.txt"))] {
        let (status, _, body) = send(&app, Method::GET, &uri, &[]).await;
        let direct = w.send(Method::GET, &uri, None, &[]).await;
        assert!(status == 401 || status == 404, "{uri}: {status}");
        assert_eq!((status, body.unwrap()), (direct.status, direct.body), "{uri}: the upstream's own answer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_go_up_with_their_method_and_credentials() {
    let w = World::new();
    let running = w.job_with("deploy", artifact_server::Status::Running, artifact_server::When::OnSuccess);
    let id = running["id"].as_i64().unwrap();
    let app = proxy(&upstream(w.app.clone()).await);
    let token = w.token("developer").to_owned();
    let (status, _, body) =
        send(&app, Method::POST, &private(&format!("/jobs/{id}/cancel")), &[("PRIVATE-TOKEN", &token)]).await;
    assert_eq!(status, 201, "{:?}", body);
    let job: serde_json::Value = serde_json::from_slice(&body.unwrap()).unwrap();
    assert_eq!(job["status"], "canceled");
    assert_eq!(w.get(&private(&format!("/jobs/{id}")), "reporter").await.json()["status"], "canceled");
    // A reporter may not: the upstream's 403 comes back as it is.
    let token = w.token("reporter").to_owned();
    let (status, _, _) =
        send(&app, Method::POST, &private(&format!("/jobs/{id}/retry")), &[("PRIVATE-TOKEN", &token)]).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_to_object_storage_pass_through_and_cut_bodies_abort() {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let s = seen.clone();
    let scripted = axum::Router::new()
        .route(
            "/api/v4/projects/1/jobs/5/artifacts",
            axum::routing::get(move |headers: HeaderMap| {
                s.lock().unwrap().push(headers);
                async {
                    let mut r = axum::response::Response::new(Body::empty());
                    *r.status_mut() = StatusCode::FOUND;
                    r.headers_mut().insert("location", "https://bucket.example/o?X-Amz-Signature=abc".parse().unwrap());
                    r
                }
            }),
        )
        .route(
            "/api/v4/projects/1/jobs/6/artifacts",
            axum::routing::get(|| async {
                use futures_util::StreamExt;
                let half =
                    futures_util::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(vec![7u8; 1000]))]);
                // The cut comes after a pause: hyper drops what it buffered when a body
                // fails, and the head and the first half must reach the proxy.
                let cut = futures_util::stream::once(async {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Err(std::io::Error::other("cut"))
                });
                let mut r = axum::response::Response::new(Body::from_stream(half.chain(cut)));
                r.headers_mut().insert("content-length", 5000.into());
                r
            }),
        )
        .route(
            "/api/v4/projects/1/jobs",
            axum::routing::get(|| async {
                let mut r = axum::response::Response::new(Body::from("slow down"));
                *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                r.headers_mut().insert("retry-after", "7".parse().unwrap());
                r
            }),
        );
    let app = proxy(&upstream(scripted).await);
    let (status, headers, _) =
        send(&app, Method::GET, "/api/v4/projects/1/jobs/5/artifacts", &[("PRIVATE-TOKEN", "glpat-x")]).await;
    assert_eq!(status, 302);
    assert_eq!(headers.get("location").unwrap(), "https://bucket.example/o?X-Amz-Signature=abc");
    assert_eq!(seen.lock().unwrap()[0].get("private-token").unwrap(), "glpat-x");
    let (status, _, body) = send(&app, Method::GET, "/api/v4/projects/1/jobs/6/artifacts", &[]).await;
    assert_eq!(status, 200);
    assert!(body.is_err(), "a cut upstream body is not a complete one: {:?}", body.map(|b| b.len()));
    let (status, headers, body) = send(&app, Method::GET, "/api/v4/projects/1/jobs", &[]).await;
    assert_eq!((status.as_u16(), headers.get("retry-after").unwrap().to_str().unwrap()), (429, "7"));
    assert_eq!(body.unwrap(), b"slow down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_is_not_there_is_a_502() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = proxy(&format!("http://127.0.0.1:{port}"));
    let (status, _, body) = send(&app, Method::GET, "/api/v4/version", &[]).await;
    assert_eq!((status.as_u16(), body.unwrap()), (502, br#"{"message":"502 Bad Gateway"}"#.to_vec()));
}

#[test]
fn an_upstream_that_is_not_an_http_url_is_refused() {
    for bad in ["ftp://gitlab.example", "gitlab.example", "https://gitlab.example/?a=1"] {
        assert!(ProxyConfig::new(bad).is_err(), "{bad}");
    }
}

/// What an upstream was asked: (method, path and query, `Range`), recorded by a layer.
pub(crate) type Asked = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

pub(crate) fn counted(router: axum::Router) -> (axum::Router, Asked) {
    let asked: Asked = Arc::default();
    let a = asked.clone();
    let router =
        router.layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            let range = req.headers().get("range").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let uri = req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
            a.lock().unwrap().push((req.method().to_string(), uri, range));
            next.run(req)
        }));
    (router, asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_files_come_from_a_cached_index_after_the_upstream_says_the_caller_may_read() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let (router, asked) = counted(w.app.clone());
    let app = proxy(&upstream(router).await);
    let reporter = w.token("reporter").to_owned();
    let get = |file: &str, token: &str| {
        let (app, uri, token) = (app.clone(), private(&format!("/jobs/{id}/artifacts/{file}")), token.to_owned());
        async move { send(&app, Method::GET, &uri, &[("PRIVATE-TOKEN", &token)]).await }
    };
    // Cold: the caller's suffix read of the archive's download is both the authorization
    // and the central directory; then the entry: two round trips.
    let (status, headers, body) = get("docs/readme.txt", &reporter).await;
    assert_eq!((status.as_u16(), body.unwrap()), (200, b"Top-level readme for the infozip-basic fixture.\n".to_vec()));
    assert!(headers.get("etag").is_some());
    assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff");
    let cold: Vec<_> = asked.lock().unwrap().drain(..).collect();
    assert_eq!(cold[0].2.as_deref(), Some("bytes=-65536"), "the suffix read, as the caller, comes first: {cold:?}");
    assert!(cold.iter().all(|(_, uri, _)| uri.ends_with(&format!("/jobs/{id}/artifacts"))), "{cold:?}");
    assert_eq!(cold.len(), 2, "the suffix read and the entry's: {cold:?}");
    // Warm, another file of the same archive, same caller: one range read.
    let (status, _, body) = get("big.txt", &reporter).await;
    assert_eq!((status.as_u16(), body.unwrap().len()), (200, 20900));
    let warm: Vec<_> = asked.lock().unwrap().drain(..).collect();
    assert_eq!(warm.len(), 1, "{warm:?}");
    // Another caller who may read, the index known: its own range read of the entry, as
    // itself and checked with If-Match, is its authorization: one request.
    let developer = w.token("developer").to_owned();
    let (status, _, body) = get("docs/readme.txt", &developer).await;
    assert_eq!((status.as_u16(), body.unwrap().len()), (200, 48));
    let known: Vec<_> = asked.lock().unwrap().drain(..).collect();
    assert_eq!(known.len(), 1, "one request decides and brings the entry: {known:?}");
    assert!(known[0].2.as_deref().is_some_and(|r| r != "bytes=0-0" && !r.starts_with("bytes=-")), "{known:?}");
    // Another caller who may not read: the upstream's answer, no bytes, nothing learned
    // from the first caller's grant (its refused read is asked again, and that answer
    // goes back).
    let outsider = w.token("outsider").to_owned();
    let (status, _, body) = get("docs/readme.txt", &outsider).await;
    assert_eq!((status.as_u16(), body.unwrap()), (404, br#"{"message":"404 Project Not Found"}"#.to_vec()));
    let refused: Vec<_> = asked.lock().unwrap().drain(..).collect();
    assert_eq!(refused.len(), 2, "the refused read, then the authorization: {refused:?}");
    // A file the index does not have costs that caller the same (a read of the archive's
    // last byte stands in for the entry's): the requests tell nothing of the index.
    let (status, _, body) = get("no/such/file.txt", &outsider).await;
    assert_eq!((status.as_u16(), body.unwrap()), (404, br#"{"message":"404 Project Not Found"}"#.to_vec()));
    let refused: Vec<_> = asked.lock().unwrap().drain(..).collect();
    assert_eq!(refused.len(), 2, "as for a file it has: {refused:?}");
    assert!(refused.iter().all(|(_, _, r)| r.as_deref() != Some("bytes=-65536")), "no index read again: {refused:?}");
    // A caller who may read, new, asking for a file not there: one request, then 404.
    let maintainer = w.token("maintainer").to_owned();
    let (status, _, _) = get("no/such/file.txt", &maintainer).await;
    assert_eq!(status, 404);
    assert_eq!(asked.lock().unwrap().drain(..).count(), 1, "the last byte's read decided");
    // The refusals evicted nothing: the first caller's next file is one range read still.
    let (status, _, _) = get("docs/readme.txt", &reporter).await;
    assert_eq!(status, 200);
    assert!(asked.lock().unwrap().drain(..).count() <= 1);
    // A missing file is the local server's 404; a file the path rule refuses, its 400.
    let (status, _, body) = get("nope.txt", &reporter).await;
    assert_eq!((status.as_u16(), body.unwrap()), (404, br#"{"message":"404 Not found"}"#.to_vec()));
    // Conditional and ranged faces of a small entry.
    let (_, headers, _) = get("docs/readme.txt", &reporter).await;
    let etag = headers.get("etag").unwrap().to_str().unwrap().to_owned();
    let uri = private(&format!("/jobs/{id}/artifacts/docs/readme.txt"));
    let (status, _, _) = send(&app, Method::GET, &uri, &[("PRIVATE-TOKEN", &reporter), ("if-none-match", &etag)]).await;
    assert_eq!(status, 304);
    let (status, _, body) =
        send(&app, Method::GET, &uri, &[("PRIVATE-TOKEN", &reporter), ("range", "bytes=0-8")]).await;
    assert_eq!((status.as_u16(), body.unwrap()), (206, b"Top-level".to_vec()));
    let (status, headers, body) = send(&app, Method::HEAD, &uri, &[("PRIVATE-TOKEN", &reporter)]).await;
    assert_eq!(
        (status.as_u16(), headers.get("content-length").unwrap().to_str().unwrap(), body.unwrap().len()),
        (200, "48", 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_that_fail_their_crc_never_come_through_the_proxy_as_a_complete_2xx() {
    let w = World::new();
    let archive = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/hostile/crc-mismatch.zip");
    let imported = w.admin.import(&artifact_server::ImportJob { artifacts: Some(archive), ..w.job("crc") }).unwrap();
    let id = imported.job["id"].as_i64().unwrap();
    let app = proxy(&upstream(w.app.clone()).await);
    let token = w.token("reporter").to_owned();
    let get = |file: &str| {
        let (app, uri, token) = (app.clone(), private(&format!("/jobs/{id}/artifacts/{file}")), token.clone());
        async move { send(&app, Method::GET, &uri, &[("PRIVATE-TOKEN", &token)]).await }
    };
    let (status, _, body) = get("good.txt").await;
    assert_eq!((status.as_u16(), body.unwrap()), (200, b"fine\n".to_vec()));
    for small in ["small-stored.txt", "small-deflated.txt"] {
        let (status, _, body) = get(small).await;
        assert_eq!(
            (status.as_u16(), body.unwrap()),
            (500, br#"{"message":"500 Internal Server Error"}"#.to_vec()),
            "{small}"
        );
    }
    for large in ["large-stored.bin", "large-deflated.bin"] {
        let (status, _, body) = get(large).await;
        assert!(status != 200 || body.is_err(), "{large}: a complete {status} of bytes that failed their CRC-32");
    }
}

fn proxy_with(upstream: &str, change: impl FnOnce(&mut ProxyConfig)) -> axum::Router {
    let mut config = ProxyConfig::new(upstream).unwrap();
    change(&mut config);
    proxy_app(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_in_object_storage_is_read_there_without_the_gitlab_token() {
    let storage = artifact_testkit::range_server::RangeServer::start();
    storage.put("bucket/a.zip", std::fs::read(fixture("infozip-basic.zip")).unwrap());
    let signed = format!("{}?X-Amz-Signature=abc", storage.url("bucket/a.zip"));
    let front = axum::Router::new().route(
        "/api/v4/projects/1/jobs/9/artifacts",
        axum::routing::get(move |headers: HeaderMap| {
            let signed = signed.clone();
            async move {
                let mut r = axum::response::Response::new(Body::empty());
                if headers.get("private-token").and_then(|v| v.to_str().ok()) == Some("glpat-ok") {
                    *r.status_mut() = StatusCode::FOUND;
                    r.headers_mut().insert("location", signed.parse().unwrap());
                } else {
                    *r.status_mut() = StatusCode::NOT_FOUND;
                    *r.body_mut() = Body::from(r#"{"message":"404 Project Not Found"}"#);
                }
                r
            }
        }),
    );
    let app = proxy(&upstream(front).await);
    let uri = "/api/v4/projects/1/jobs/9/artifacts/docs/readme.txt";
    let (status, _, body) = send(&app, Method::GET, uri, &[("PRIVATE-TOKEN", "glpat-ok")]).await;
    assert_eq!((status.as_u16(), body.unwrap()), (200, b"Top-level readme for the infozip-basic fixture.\n".to_vec()));
    let reads = storage.requests();
    assert!(!reads.is_empty() && reads.len() <= 3, "{} range reads", reads.len());
    for r in &reads {
        assert!(r.range.is_some(), "only ranges are read");
        assert!(r.header("private-token").is_none() && r.header("authorization").is_none(), "no token to storage");
    }
    let (status, _, body) = send(&app, Method::GET, uri, &[("PRIVATE-TOKEN", "glpat-wrong")]).await;
    assert_eq!((status.as_u16(), body.unwrap()), (404, br#"{"message":"404 Project Not Found"}"#.to_vec()));
    assert_eq!(storage.requests().len(), reads.len(), "a refused caller reads nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_ttl_a_lost_membership_or_a_finished_job_stops_reading_at_once() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let running = w.job_with("deploy", artifact_server::Status::Running, artifact_server::When::OnSuccess);
    let job_token = running["token"].as_str().unwrap().to_owned();
    let app = proxy_with(&upstream(w.app.clone()).await, |c| c.auth_ttl = std::time::Duration::ZERO);
    let uri = private(&format!("/jobs/{id}/artifacts/docs/readme.txt"));
    let reporter = w.token("reporter").to_owned();
    assert_eq!(send(&app, Method::GET, &uri, &[("PRIVATE-TOKEN", &reporter)]).await.0, 200);
    w.admin.add_member(crate::support::PRIVATE, "reporter", "guest").unwrap();
    let (status, _, body) = send(&app, Method::GET, &uri, &[("PRIVATE-TOKEN", &reporter)]).await;
    assert!(status == 403 || status == 404, "{status}: {:?}", body);
    // A job token reads while its job runs, and not after.
    assert_eq!(send(&app, Method::GET, &uri, &[("JOB-TOKEN", &job_token)]).await.0, 200);
    let cancel = private(&format!("/jobs/{}/cancel", running["id"]));
    assert_eq!(w.post(&cancel, "developer").await.status, 201);
    let (status, _, _) = send(&app, Method::GET, &uri, &[("JOB-TOKEN", &job_token)]).await;
    assert!(status == 401 || status == 403, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_proxy_reads_a_warm_file_with_one_range_read_from_its_disk_cache() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let (router, asked) = counted(w.app.clone());
    let up = upstream(router).await;
    let cache = tempfile::tempdir().unwrap();
    let uri = private(&format!("/jobs/{id}/artifacts/docs/readme.txt"));
    let token = w.token("reporter").to_owned();
    let first = proxy_with(&up, |c| c.cache_dir = Some(cache.path().to_owned()));
    assert_eq!(send(&first, Method::GET, &uri, &[("PRIVATE-TOKEN", &token)]).await.0, 200);
    drop(first);
    asked.lock().unwrap().clear();
    let second = proxy_with(&up, |c| c.cache_dir = Some(cache.path().to_owned()));
    let (status, _, body) = send(&second, Method::GET, &uri, &[("PRIVATE-TOKEN", &token)]).await;
    assert_eq!((status.as_u16(), body.unwrap().len()), (200, 48));
    let seen: Vec<_> = asked.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "the entry's read, as the caller, is the authorization: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_upstream_requests_grants_range_reads_and_answers() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let (app, metrics) =
        artifact_server::proxy_routers(ProxyConfig::new(&upstream(w.app.clone()).await).unwrap()).unwrap();
    let token = w.token("reporter").to_owned();
    // Cold; the same file again (from memory); another file (one range read).
    for file in ["docs/readme.txt", "docs/readme.txt", "data.bin"] {
        let uri = private(&format!("/jobs/{id}/artifacts/{file}"));
        assert_eq!(send(&app, Method::GET, &uri, &[("PRIVATE-TOKEN", &token)]).await.0, 200);
    }
    assert_eq!(send(&app, Method::GET, &private("/jobs"), &[("PRIVATE-TOKEN", &token)]).await.0, 200);
    let (status, headers, body) = send(&metrics, Method::GET, "/metrics", &[]).await;
    assert_eq!(status, 200);
    assert!(headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/plain"));
    let text = String::from_utf8(body.unwrap()).unwrap();
    let value = |line: &str| -> f64 {
        let found = text.lines().find(|l| l.starts_with(line)).unwrap_or_else(|| panic!("no {line} in:\n{text}"));
        found.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(!text.contains(r#"kind="authorize""#), "the first read was the authorization:\n{text}");
    assert_eq!(value(r#"artifact_proxy_upstream_requests_total{kind="forward",status="200"}"#), 1.0);
    assert_eq!(value(r#"artifact_proxy_grants_total{result="read"}"#), 1.0);
    assert_eq!(value(r#"artifact_proxy_grants_total{result="miss"}"#), 0.0);
    assert_eq!(value(r#"artifact_proxy_grants_total{result="hit"}"#), 2.0);
    assert_eq!(value(r#"artifact_proxy_hot_entries_total{result="hit"}"#), 1.0);
    assert_eq!(value(r#"artifact_proxy_hot_entries_total{result="miss"}"#), 2.0);
    let reads = value("artifact_proxy_upstream_range_reads_total");
    assert!((2.0..=4.0).contains(&reads), "a cold and a warm read: {reads}");
    assert!(value("artifact_proxy_upstream_range_bytes_total") > 0.0);
    assert_eq!(value("artifact_proxy_request_seconds_count"), 4.0);
    assert_eq!(value("artifact_proxy_streams_in_flight"), 0.0);
    assert_eq!(value(r#"artifact_proxy_index_cache_total{event="miss"}"#), 1.0);
    assert_eq!(value(r#"artifact_proxy_index_cache_total{event="hit"}"#), 1.0);
    assert_eq!(value(r#"artifact_proxy_index_cache_total{event="eviction"}"#), 0.0);
}

/// A GitLab stand-in in front of object storage: archive downloads of job 9 answer `302` to
/// `object` with a fresh signature for the token it currently accepts, `404` otherwise.
/// Returns the router, the authorizations it answered, and the accepted token's switch.
pub(crate) fn storage_front(
    object: String,
) -> (axum::Router, Arc<std::sync::atomic::AtomicUsize>, Arc<Mutex<&'static str>>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let asked = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(Mutex::new("glpat-ok"));
    let (a, ok) = (asked.clone(), accepted.clone());
    let router = axum::Router::new().route(
        "/api/v4/projects/1/jobs/9/artifacts",
        axum::routing::get(move |headers: HeaderMap| {
            let n = a.fetch_add(1, Ordering::SeqCst);
            let allowed = headers.get("private-token").and_then(|v| v.to_str().ok()) == Some(*ok.lock().unwrap());
            let object = object.clone();
            async move {
                let mut r = axum::response::Response::new(Body::empty());
                if allowed {
                    *r.status_mut() = StatusCode::FOUND;
                    r.headers_mut().insert("location", format!("{object}?X-Amz-Signature=s{n}").parse().unwrap());
                } else {
                    *r.status_mut() = StatusCode::NOT_FOUND;
                    *r.body_mut() = Body::from(r#"{"message":"404 Project Not Found"}"#);
                }
                r
            }
        }),
    );
    (router, asked, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_file_comes_from_memory_while_the_grant_lasts_and_a_changed_archive_or_token_shows_after_it() {
    use std::sync::atomic::Ordering;
    let storage = artifact_testkit::range_server::RangeServer::start();
    storage.put("bucket/a.zip", std::fs::read(fixture("infozip-basic.zip")).unwrap());
    let (front, asked, accepted) = storage_front(storage.url("bucket/a.zip"));
    let ttl = std::time::Duration::from_millis(300);
    let app = proxy_with(&upstream(front).await, |c| c.auth_ttl = ttl);
    let uri = "/api/v4/projects/1/jobs/9/artifacts/docs/readme.txt";
    let get = || send(&app, Method::GET, uri, &[("PRIVATE-TOKEN", "glpat-ok")]);
    let readme = b"Top-level readme for the infozip-basic fixture.\n".to_vec();
    let (status, headers, body) = get().await;
    assert_eq!((status.as_u16(), body.unwrap()), (200, readme.clone()));
    let etag = headers.get("etag").unwrap().clone();
    let reads = storage.requests().len();
    // Again, inside the grant: from memory, nothing asked anywhere.
    let (status, headers, body) = get().await;
    assert_eq!((status.as_u16(), body.unwrap()), (200, readme.clone()));
    assert_eq!(headers.get("etag"), Some(&etag));
    assert_eq!((asked.load(Ordering::SeqCst), storage.requests().len()), (1, reads));
    // The object is replaced: once the grant has expired, the new version, whole.
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("docs/readme.txt", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut w, b"a new readme\n").unwrap();
    storage.put("bucket/a.zip", w.finish().unwrap().into_inner());
    tokio::time::sleep(ttl).await;
    let (status, headers, body) = get().await;
    assert_eq!((status.as_u16(), body.unwrap()), (200, b"a new readme\n".to_vec()));
    assert_ne!(headers.get("etag"), Some(&etag), "another version, another entity tag");
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    // The token stops being accepted upstream: remembered until the grant expires, then the
    // upstream's refusal.
    *accepted.lock().unwrap() = "glpat-other";
    tokio::time::sleep(ttl).await;
    let (status, _, body) = get().await;
    assert_eq!((status.as_u16(), body.unwrap()), (404, br#"{"message":"404 Project Not Found"}"#.to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_stops_the_upstream_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let size = 48 << 20;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).large_file(false);
    w.start_file("big.bin", stored).unwrap();
    std::io::Write::write_all(&mut w, &vec![5u8; size]).unwrap();
    let storage = artifact_testkit::range_server::RangeServer::start();
    storage.put("bucket/a.zip", w.finish().unwrap().into_inner());
    let (front, _, _) = storage_front(storage.url("bucket/a.zip"));
    let (app, metrics) = artifact_server::proxy_routers(ProxyConfig::new(&upstream(front).await).unwrap()).unwrap();
    let proxy = upstream(app).await;
    let mut conn = tokio::net::TcpStream::connect(proxy.trim_start_matches("http://")).await.unwrap();
    let request =
        "GET /api/v4/projects/1/jobs/9/artifacts/big.bin HTTP/1.1\r\nHost: p\r\nPRIVATE-TOKEN: glpat-ok\r\n\r\n";
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 64 * 1024];
    let n = conn.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..n.min(200)]));
    drop(conn);
    // The proxy notices, drops its stream and with it the upstream connection.
    let in_flight = || async {
        let (_, _, body) = send(&metrics, Method::GET, "/metrics", &[]).await;
        let text = String::from_utf8(body.unwrap()).unwrap();
        text.lines().find(|l| l.starts_with("artifact_proxy_streams_in_flight")).unwrap().ends_with(" 0")
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !in_flight().await {
        assert!(tokio::time::Instant::now() < deadline, "the stream outlived its client");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let sent = storage.bytes_sent();
    assert!(sent < size as u64 / 2, "{sent} of {size} bytes read for a client that left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_429_or_silence_on_a_single_file_is_what_gitlab_clients_expect() {
    let scripted = axum::Router::new()
        .route(
            "/api/v4/projects/1/jobs/5/artifacts",
            axum::routing::get(|| async {
                let mut r = axum::response::Response::new(Body::from(r#"{"message":"429 Too Many Requests"}"#));
                *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                r.headers_mut().insert("retry-after", "3".parse().unwrap());
                r
            }),
        )
        .route(
            "/api/v4/projects/1/jobs/6/artifacts",
            axum::routing::get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                StatusCode::FOUND
            }),
        );
    let app = proxy_with(&upstream(scripted).await, |c| c.read_timeout = std::time::Duration::from_millis(200));
    let (status, headers, body) = send(&app, Method::GET, "/api/v4/projects/1/jobs/5/artifacts/a.txt", &[]).await;
    assert_eq!((status.as_u16(), headers.get("retry-after").unwrap().to_str().unwrap()), (429, "3"));
    assert_eq!(body.unwrap(), br#"{"message":"429 Too Many Requests"}"#);
    let (status, _, body) = send(&app, Method::GET, "/api/v4/projects/1/jobs/6/artifacts/a.txt", &[]).await;
    assert_eq!(status, 504);
    assert!(String::from_utf8(body.unwrap()).unwrap().contains("message"), "a GitLab-shaped body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_deflated_file_passes_through_as_gzip_verified_and_a_bad_one_never_completes() {
    use std::io::Read;
    let text: Vec<u8> = (0..300_000u32).flat_map(|i| format!("line {i}\n").into_bytes()).take(400_000).collect();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("report.txt", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut w, &text).unwrap();
    let good = w.finish().unwrap().into_inner();
    // The same archive with a CRC-32 (local header and central directory alike) that the
    // data does not have.
    let mut bad = good.clone();
    let mut hasher = flate2::Crc::new();
    hasher.update(&text);
    let crc = hasher.sum().to_le_bytes();
    for at in (0..bad.len() - 4).filter(|&i| bad[i..i + 4] == crc).collect::<Vec<_>>() {
        bad[at] ^= 0xff;
    }
    let storage = artifact_testkit::range_server::RangeServer::start();
    storage.put("bucket/a.zip", good);
    let (front, _, _) = storage_front(storage.url("bucket/a.zip"));
    let app = proxy_with(&upstream(front).await, |c| c.auth_ttl = std::time::Duration::ZERO);
    let uri = "/api/v4/projects/1/jobs/9/artifacts/report.txt";
    let gzip = [("PRIVATE-TOKEN", "glpat-ok"), ("accept-encoding", "gzip")];
    let (status, headers, body) = send(&app, Method::GET, uri, &gzip).await;
    assert_eq!((status.as_u16(), headers.get("content-encoding").unwrap().to_str().unwrap()), (200, "gzip"));
    assert!(headers.get("etag").unwrap().to_str().unwrap().ends_with("-gz\""));
    let body = body.unwrap();
    assert_eq!(headers.get("content-length").unwrap().to_str().unwrap(), body.len().to_string());
    assert!(body.len() < text.len() / 2, "the compressed bytes, not the text");
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out).unwrap();
    assert_eq!(out, text);
    let (status, headers, body) = send(&app, Method::GET, uri, &[("PRIVATE-TOKEN", "glpat-ok")]).await;
    assert_eq!((status.as_u16(), body.unwrap()), (200, text.clone()));
    assert!(headers.get("content-encoding").is_none());
    storage.put("bucket/a.zip", bad);
    for asked in [&gzip[..], &gzip[..1]] {
        let (status, _, body) = send(&app, Method::GET, uri, asked).await;
        assert!(!(status.is_success() && body.is_ok()), "a bad entry never completes: {status}");
    }
    // And over a real connection, where the server stops polling a body once it sent the
    // Content-Length it announced: the last bytes go out only after the check.
    let served = upstream(app.clone()).await;
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    for encoding in ["gzip", "identity"] {
        let resp = client
            .get(format!("{served}{uri}"))
            .header("PRIVATE-TOKEN", "glpat-ok")
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.bytes().await;
        assert!(!(status.is_success() && body.is_ok()), "{encoding}: a bad entry never completes: {status}");
    }
}

/// `POST path` through `app` with a form body (and a cookie); the status and headers.
async fn post_form(app: &axum::Router, path: &str, form: &str, cookie: Option<&str>) -> (StatusCode, HeaderMap) {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", "proxy.test")
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    let resp = app.clone().oneshot(req.body(Body::from(form.to_owned())).unwrap()).await.unwrap();
    (resp.status(), resp.headers().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_through_the_proxy_and_the_sessions_token_is_what_the_upstream_authorizes() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let pipeline = w.get(&private(&format!("/jobs/{id}")), "reporter").await.json()["pipeline"]["id"].as_i64().unwrap();
    let up = upstream(w.app.clone()).await;
    let app = proxy(&up);
    let root = format!("/group/private/-/jobs/{id}/artifacts");
    let html = |body: Result<Vec<u8>, String>| String::from_utf8(body.unwrap()).unwrap();
    // Anonymous: the upstream does not show the project, so sign in first.
    let (status, headers, _) = send(&app, Method::GET, &format!("{root}/browse"), &[]).await;
    assert_eq!(status, 302);
    assert_eq!(headers["location"], format!("/users/sign_in?return_to={root}/browse"));
    // A token the upstream refuses signs nobody in; the reporter's does.
    assert_eq!(post_form(&app, "/users/sign_in", "token=nope&return_to=/", None).await.0, 401);
    let form = format!("token={}&return_to={root}/browse", w.token("reporter"));
    let (status, headers) = post_form(&app, "/users/sign_in", &form, None).await;
    assert_eq!(
        (status, headers["location"].to_str().unwrap()),
        (StatusCode::SEE_OTHER, format!("{root}/browse").as_str())
    );
    let cookie = headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let with_cookie = [("cookie", cookie.as_str())];
    // The listing, from the archive's central directory read by range upstream.
    let (status, _, body) = send(&app, Method::GET, &format!("{root}/browse"), &with_cookie).await;
    let listing = html(body);
    assert_eq!(status, 200, "{listing}");
    let at = |needle: &str| listing.find(needle).unwrap_or_else(|| panic!("{needle} in {listing}"));
    assert!(at("docs/</bdi>") < at(">big.txt<") && at(">big.txt<") < at(">data.bin<"), "folders first, then by name");
    assert!(listing.contains(">1.0 KiB<") && listing.contains(">2024-01-02 03:04<"), "sizes and times");
    // Its head, from the upstream's job: the job, its status, ref and pipeline, its expiry.
    assert!(listing.contains(&format!("Job <bdi>build</bdi> #{id}")), "{listing}");
    assert!(listing.contains("class=\"status success\">success<") && listing.contains("<bdi class=\"ref\">main</bdi>"));
    assert!(listing.contains("/-/pipelines/") && listing.contains("artifacts never expire"), "{listing}");
    assert!(listing.contains(&format!("href=\"http://proxy.test{root}/file/big.txt\"")));
    let prefix = format!("http://proxy.test{root}/view/");
    let grant = listing[at(&prefix) + prefix.len()..].split('/').next().unwrap().to_owned();
    assert_eq!(grant.len(), 64);
    let (_, _, nested) = send(&app, Method::GET, &format!("{root}/browse/docs/nested"), &with_cookie).await;
    assert!(html(nested).contains(">deep/</bdi>"), "a folder the archive only implies");
    assert_eq!(send(&app, Method::GET, &format!("{root}/browse/nope"), &with_cookie).await.0, 404);
    // A text file's page, verified and escaped; the same file through the grant, without
    // any cookie (as a sandboxed report reads), in the sandbox.
    let (status, _, text) = send(&app, Method::GET, &format!("{root}/file/docs/readme.txt"), &with_cookie).await;
    assert_eq!(status, 200);
    assert!(html(text).contains("<pre>Top-level readme for the infozip-basic fixture.\n</pre>"));
    let (status, headers, raw) = send(&app, Method::GET, &format!("{root}/view/{grant}/docs/readme.txt"), &[]).await;
    assert_eq!((status, raw.unwrap()), (StatusCode::OK, b"Top-level readme for the infozip-basic fixture.\n".to_vec()));
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("sandbox"));
    // The job list and the pipeline's, from the upstream's job API.
    for list in ["/group/private/-/jobs".to_owned(), format!("/group/private/-/pipelines/{pipeline}")] {
        let (status, _, body) = send(&app, Method::GET, &list, &with_cookie).await;
        let page = html(body);
        assert_eq!(status, 200, "{list}: {page}");
        assert!(page.contains(&format!("#{id} <bdi>build</bdi>")) && page.contains(&format!("{root}/browse\">Browse")));
    }
    // A folder by ref and job name: the newest successful such job's page.
    let by_ref = "/group/private/-/jobs/artifacts/main/browse/docs?job=build";
    let (status, headers, _) = send(&app, Method::GET, by_ref, &with_cookie).await;
    assert_eq!(
        (status, headers["location"].to_str().unwrap()),
        (StatusCode::FOUND, format!("http://proxy.test{root}/browse/docs").as_str())
    );
    // Signed out: the session is gone.
    assert_eq!(post_form(&app, "/users/sign_out", "", Some(&cookie)).await.0, StatusCode::SEE_OTHER);
    assert_eq!(send(&app, Method::GET, &format!("{root}/browse"), &with_cookie).await.0, 302);
    // Not a page: the API still goes upstream.
    let (status, _, _) = send(&app, Method::GET, "/api/v4/version", &[]).await;
    assert_eq!(status, 401, "the upstream's own answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_is_not_utf8_never_reaches_a_page_of_the_server_or_the_proxy() {
    use std::io::Write;
    let w = World::new();
    let path = w.dir.path().join("names.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for name in ["ok.txt", "bad-@@.txt", "dir-@@/inner.txt"] {
        zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(b"words").unwrap();
    }
    zip.finish().unwrap();
    // The names as some tools write them: bytes that are not UTF-8 (here 0xFF 0xFE).
    let mut bytes = std::fs::read(&path).unwrap();
    while let Some(at) = bytes.windows(2).position(|w| w == b"@@") {
        bytes[at..at + 2].copy_from_slice(&[0xff, 0xfe]);
    }
    std::fs::write(&path, bytes).unwrap();
    let id = w.admin.import(&artifact_server::ImportJob { artifacts: Some(path), ..w.job("names") }).unwrap().job["id"]
        .as_i64()
        .unwrap();
    let up = upstream(w.app.clone()).await;
    let app = proxy(&up);
    let token = w.token("reporter").to_owned();
    let auth = [("PRIVATE-TOKEN", token.as_str())];
    let root = format!("/group/private/-/jobs/{id}/artifacts");
    for (who, router) in [("server", &w.app), ("proxy", &app)] {
        let (status, _, body) = send(router, Method::GET, &format!("{root}/browse"), &auth).await;
        let page = String::from_utf8(body.unwrap()).expect("a page is UTF-8");
        assert_eq!(status, 200, "{who}: {page}");
        assert!(page.contains(">ok.txt<"), "{who}: {page}");
        assert!(!page.contains("bad-") && !page.contains("dir-") && !page.contains('\u{fffd}'), "{who}: {page}");
        // Asked for by its bytes, the path rule refuses it.
        let (status, _, _) = send(router, Method::GET, &format!("{root}/file/bad-%FF%FE.txt"), &auth).await;
        assert_eq!(status, 400, "{who}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_of_a_large_entry_is_a_206_window_once_a_whole_read_verified_it_and_never_before() {
    use std::io::Read;
    let stored_data: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let text: Vec<u8> = (0..300_000u32).flat_map(|i| format!("line {i}\n").into_bytes()).take(400_000).collect();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("blob.bin", stored).unwrap();
    std::io::Write::write_all(&mut w, &stored_data).unwrap();
    w.start_file("report.txt", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut w, &text).unwrap();
    // Over 8 MiB, deflated: its verifying read keeps checkpoints.
    let log: Vec<u8> =
        (0..1_400_000u64).flat_map(|i| format!("step {i} {}\n", i * 2_654_435_761 % 1000).into_bytes()).collect();
    w.start_file("big.log", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut w, &log).unwrap();
    let good = w.finish().unwrap().into_inner();
    let storage = artifact_testkit::range_server::RangeServer::start();
    storage.put("bucket/a.zip", good.clone());
    let (front, _, _) = storage_front(storage.url("bucket/a.zip"));
    let app = proxy_with(&upstream(front).await, |_| {});
    let blob = "/api/v4/projects/1/jobs/9/artifacts/blob.bin";
    let token = ("PRIVATE-TOKEN", "glpat-ok");

    // Not verified yet: the whole entry, whatever the range.
    let (status, headers, body) = send(&app, Method::GET, blob, &[token, ("range", "bytes=1000-1999")]).await;
    assert_eq!((status.as_u16(), body.unwrap().len()), (200, stored_data.len()));
    assert!(headers.get("accept-ranges").is_none(), "no ranges offered before a verdict");
    // That whole read verified it: now the window, from one range read of object storage.
    storage.reset_counts();
    let (status, headers, body) = send(&app, Method::GET, blob, &[token, ("range", "bytes=1000-1999")]).await;
    assert_eq!(status.as_u16(), 206);
    assert_eq!(body.unwrap(), &stored_data[1000..2000]);
    assert_eq!(headers.get("content-range").unwrap(), &format!("bytes 1000-1999/{}", stored_data.len()));
    assert_eq!(headers.get("accept-ranges").unwrap(), "bytes");
    assert_eq!(storage.requests().len(), 1, "one range read for the window");
    assert_eq!(storage.bytes_sent(), 1000, "of the window's bytes only");
    let etag = headers.get("etag").unwrap().to_str().unwrap().to_owned();
    // If-Range: the current tag gives the window, another one the whole entry; HEAD says so.
    let (status, _, body) = send(&app, Method::GET, blob, &[token, ("range", "bytes=-10"), ("if-range", &etag)]).await;
    assert_eq!((status.as_u16(), body.unwrap()), (206, stored_data[stored_data.len() - 10..].to_vec()));
    let (status, _, body) =
        send(&app, Method::GET, blob, &[token, ("range", "bytes=-10"), ("if-range", "\"old\"")]).await;
    assert_eq!((status.as_u16(), body.unwrap().len()), (200, stored_data.len()));
    let (status, headers, _) = send(&app, Method::HEAD, blob, &[token, ("range", "bytes=0-99")]).await;
    assert_eq!((status.as_u16(), headers.get("content-length").unwrap().to_str().unwrap()), (206, "100"));
    // Several ranges at once: the whole entry.
    let (status, _, body) = send(&app, Method::GET, blob, &[token, ("range", "bytes=0-9,100-109")]).await;
    assert_eq!((status.as_u16(), body.unwrap().len()), (200, stored_data.len()));

    // A deflated entry verified by its gzip passthrough: then windows of its text.
    let report = "/api/v4/projects/1/jobs/9/artifacts/report.txt";
    let (status, _, body) = send(&app, Method::GET, report, &[token, ("accept-encoding", "gzip")]).await;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&body.unwrap()[..]).read_to_end(&mut out).unwrap();
    assert_eq!((status.as_u16(), out.len()), (200, text.len()));
    let asked = [token, ("range", "bytes=-1000"), ("accept-encoding", "gzip")];
    let (status, headers, body) = send(&app, Method::GET, report, &asked).await;
    assert_eq!((status.as_u16(), body.unwrap()), (206, text[text.len() - 1000..].to_vec()));
    assert!(headers.get("content-encoding").is_none(), "a window of the entry's own bytes");

    // A deflated entry over 8 MiB: its whole read keeps checkpoints, and then the last MiB
    // is one range read from the last checkpoint before it, not from the entry's start.
    let big = "/api/v4/projects/1/jobs/9/artifacts/big.log";
    assert!(log.len() > 8 << 20);
    let (status, _, body) = send(&app, Method::GET, big, &[token]).await;
    assert_eq!((status.as_u16(), body.unwrap().len()), (200, log.len()));
    let compressed = good.len() as u64;
    storage.reset_counts();
    let (status, headers, body) = send(&app, Method::GET, big, &[token, ("range", "bytes=-1048576")]).await;
    assert_eq!(status.as_u16(), 206);
    assert!(body.unwrap() == log[log.len() - (1 << 20)..], "the last MiB");
    assert_eq!(
        headers.get("content-range").unwrap(),
        &format!("bytes {}-{}/{}", log.len() - (1 << 20), log.len() - 1, log.len())
    );
    assert_eq!(storage.requests().len(), 1, "one range read");
    assert!(storage.bytes_sent() * 3 < compressed, "{} of the archive's {compressed} bytes", storage.bytes_sent());
    for (first, last) in [(0usize, 99usize), (5_000_000, 5_000_099), (4 << 20, (4 << 20) + 300_000)] {
        let range = format!("bytes={first}-{last}");
        let (status, _, body) = send(&app, Method::GET, big, &[token, ("range", range.as_str())]).await;
        assert_eq!(status.as_u16(), 206, "{range}");
        assert!(body.unwrap() == log[first..=last], "{range}");
    }

    // Over a real connection too (the server may drop a body once its Content-Length is
    // out): the whole read leaves its verdict.
    let served = upstream(app.clone()).await;
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    let get = |range: Option<&'static str>| {
        let mut request = client.get(format!("{served}{blob}")).header("PRIVATE-TOKEN", "glpat-ok");
        if let Some(range) = range {
            request = request.header("range", range);
        }
        async move {
            let resp = request.send().await.unwrap();
            (resp.status().as_u16(), resp.bytes().await.unwrap().len())
        }
    };
    storage.put("bucket/a.zip", good.clone());
    assert_eq!(get(Some("bytes=0-9")).await, (200, stored_data.len()), "a new version: no verdict yet");
    assert_eq!(get(Some("bytes=0-9")).await, (206, 10), "the whole read over a connection verified it");

    // The archive replaced upstream (a new validator): no verdict for the new version.
    storage.put("bucket/a.zip", good.clone());
    let (status, _, body) = send(&app, Method::GET, blob, &[token, ("range", "bytes=1000-1999")]).await;
    assert_eq!((status.as_u16(), body.unwrap().len()), (200, stored_data.len()));

    // An entry that fails its CRC-32 never gets a verdict: every range is a whole read that
    // never completes.
    let mut bad = good;
    let mut hasher = flate2::Crc::new();
    hasher.update(&stored_data);
    let crc = hasher.sum().to_le_bytes();
    for at in (0..bad.len() - 4).filter(|&i| bad[i..i + 4] == crc).collect::<Vec<_>>() {
        bad[at] ^= 0xff;
    }
    storage.put("bucket/a.zip", bad);
    for _ in 0..2 {
        let (status, _, body) = send(&app, Method::GET, blob, &[token, ("range", "bytes=1000-1999")]).await;
        assert!(!(status.is_success() && body.is_ok()), "a bad entry never completes: {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_deflated_file_goes_as_gzip_to_a_client_that_takes_it_from_the_same_read() {
    use std::io::Read;
    let text: Vec<u8> = (0..3_000u32).flat_map(|i| format!("row {i}\n").into_bytes()).collect();
    assert!(text.len() < 64 << 10);
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("small.txt", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut w, &text).unwrap();
    let storage = artifact_testkit::range_server::RangeServer::start();
    storage.put("bucket/a.zip", w.finish().unwrap().into_inner());
    let (front, _, _) = storage_front(storage.url("bucket/a.zip"));
    let app = proxy_with(&upstream(front).await, |_| {});
    let uri = "/api/v4/projects/1/jobs/9/artifacts/small.txt";
    let token = ("PRIVATE-TOKEN", "glpat-ok");
    for round in ["read", "from memory"] {
        storage.reset_counts();
        let (status, headers, body) = send(&app, Method::GET, uri, &[token, ("accept-encoding", "gzip")]).await;
        assert_eq!((status.as_u16(), headers["content-encoding"].to_str().unwrap()), (200, "gzip"), "{round}");
        assert!(headers["etag"].to_str().unwrap().ends_with("-gz\""), "{round}");
        assert_eq!(headers["vary"], "Accept-Encoding");
        let body = body.unwrap();
        assert!(body.len() * 3 < text.len(), "{round}: the compressed bytes");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out).unwrap();
        assert!(out == text, "{round}");
        let (status, headers, plain) = send(&app, Method::GET, uri, &[token]).await;
        assert_eq!((status.as_u16(), plain.unwrap()), (200, text.clone()), "{round}");
        assert!(headers.get("content-encoding").is_none());
        if round == "from memory" {
            assert!(storage.requests().is_empty(), "both faces from memory");
        }
    }
}
