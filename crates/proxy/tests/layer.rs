//! The proxy layer in front of a service of its embedder's, with a real GitLab-compatible
//! upstream (our server on a loopback socket, real SQLite and blobs, a real archive made by
//! Info-ZIP): single files come from the engine, the embedder's own routes answer for
//! themselves, the rest is forwarded, and an `Authorize` of the embedder's decides.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use artifact_gitlab::Target;
use artifact_proxy::{Authorization, Authorize, Forward, Proxy, ProxyConfig, ProxyLayer};
use artifact_server::{Admin, AppConfig, DataDir, ImportJob};
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use tower::ServiceExt;

const P: &str = "group/app";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data").join(name)
}

/// An upstream GitLab with one job whose archive is `infozip-basic.zip`: its URL, a token
/// that may read the job, and the job's id.
async fn upstream() -> (tempfile::TempDir, String, String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::open(&dir.path().join("data")).unwrap();
    let admin = Admin::new(data.store(), data.blobs(), "http://test");
    admin.add_project(P, false).unwrap();
    admin.add_user("dev", false).unwrap();
    admin.add_member(P, "dev", "developer").unwrap();
    let token = admin.add_token("dev").unwrap();
    let mut job = ImportJob::new(P, "main", "build");
    job.artifacts = Some(fixture("infozip-basic.zip"));
    let id = admin.import(&job).unwrap().job["id"].as_u64().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = artifact_server::app(data.state(AppConfig::default()));
    tokio::spawn(artifact_server::serve(listener, app, std::future::pending()));
    (dir, url, token, id)
}

async fn get_with(app: &axum::Router, uri: &str, token: &str) -> (StatusCode, Vec<u8>) {
    let req = Request::get(uri).header("private-token", token).body(Body::empty()).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    (status, axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec())
}

/// The embedder's app: a route of its own, the upstream for the rest, the proxy in front.
fn app(proxy: Arc<Proxy>) -> axum::Router {
    axum::Router::new()
        .route("/-/mine", get(|| async { "my own" }))
        .fallback_service(Forward::new(proxy.clone()))
        .layer(ProxyLayer::new(proxy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_files_from_the_engine_own_routes_answer_and_the_rest_is_forwarded() {
    let (_dir, up, token, job) = upstream().await;
    let proxy = tokio::task::spawn_blocking(move || Proxy::new(ProxyConfig::new(&up).unwrap()).unwrap()).await.unwrap();
    let app = app(proxy.clone());

    let file = format!("/api/v4/projects/group%2Fapp/jobs/{job}/artifacts/docs/readme.txt");
    let (status, body) = get_with(&app, &file, &token).await;
    let expected = {
        let archive = artifact_core::Archive::open_file(fixture("infozip-basic.zip")).unwrap();
        let entry = archive.find(&artifact_core::ArtifactPath::new("docs/readme.txt").unwrap()).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut archive.reader(&entry).unwrap(), &mut bytes).unwrap();
        bytes
    };
    assert_eq!((status, body), (StatusCode::OK, expected), "the entry, verified");
    let metrics = proxy.metrics_text();
    let reads = metrics
        .lines()
        .find_map(|l| l.strip_prefix("artifact_proxy_upstream_range_reads_total "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(reads.is_some_and(|n| n > 0), "read by range through the engine: {metrics}");

    assert_eq!(get_with(&app, "/-/mine", &token).await, (StatusCode::OK, b"my own".to_vec()));
    let (status, body) = get_with(&app, &format!("/api/v4/projects/group%2Fapp/jobs/{job}"), &token).await;
    assert_eq!(status, StatusCode::OK, "forwarded");
    assert!(String::from_utf8_lossy(&body).contains("\"name\":\"build\""));

    let (status, _) = get_with(&app, &file, "not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the upstream's refusal, as it is");
    let escape = format!("/api/v4/projects/group%2Fapp/jobs/{job}/artifacts/docs/%2E%2E/x");
    let (status, body) = get_with(&app, &escape, &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the path rule, before anything goes upstream");
    assert!(String::from_utf8_lossy(&body).contains("artifact_path"));
    tokio::task::spawn_blocking(move || drop((app, proxy))).await.unwrap();
}

/// Refuses every archive of one project, sends another's requests to the inner service,
/// and counts what it was asked.
struct Embedders(AtomicUsize);

impl Authorize for Embedders {
    fn authorize<'a>(
        &'a self,
        _: &'a Parts,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = Authorization> + Send + 'a>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let decision = if target.project == P {
            let refusal = axum::response::IntoResponse::into_response((StatusCode::FORBIDDEN, "not yours"));
            Authorization::Refused(refusal)
        } else {
            Authorization::Forward
        };
        Box::pin(std::future::ready(decision))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorize_of_the_embedders_refuses_or_hands_on_and_is_asked_once_per_caller() {
    let (_dir, up, token, job) = upstream().await;
    let asked = Arc::new(Embedders(AtomicUsize::new(0)));
    let authorize = asked.clone();
    let proxy = tokio::task::spawn_blocking(move || {
        Proxy::with_authorize(ProxyConfig::new(&up).unwrap(), |_| authorize).unwrap()
    })
    .await
    .unwrap();
    let app = app(proxy.clone());
    let file = format!("/api/v4/projects/group%2Fapp/jobs/{job}/artifacts/docs/readme.txt");
    assert_eq!(get_with(&app, &file, &token).await, (StatusCode::FORBIDDEN, b"not yours".to_vec()));
    assert_eq!(get_with(&app, &file, &token).await.0, StatusCode::FORBIDDEN);
    assert_eq!(asked.0.load(Ordering::SeqCst), 2, "a refusal is never remembered");
    // Handed on: the upstream (the inner service) answers it as GitLab does.
    let other = format!("/api/v4/projects/other%2Fapp/jobs/{job}/artifacts/docs/readme.txt");
    assert_eq!(get_with(&app, &other, &token).await.0, StatusCode::NOT_FOUND);
    tokio::task::spawn_blocking(move || drop((app, proxy))).await.unwrap();
}

/// GitLab's answer, but callers told apart by a header of the embedder's (`x-user`), and
/// every ask counted.
struct ByHeader(Arc<artifact_proxy::GitLabAuthorize>, AtomicUsize);

impl Authorize for ByHeader {
    fn authorize<'a>(
        &'a self,
        parts: &'a Parts,
        target: &'a Target,
    ) -> Pin<Box<dyn Future<Output = Authorization> + Send + 'a>> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.authorize(parts, target)
    }

    fn caller(&self, parts: &Parts) -> Option<[u8; 32]> {
        let user = parts.headers.get("x-user")?.as_bytes();
        let mut who = [0u8; 32];
        who[..user.len().min(32)].copy_from_slice(&user[..user.len().min(32)]);
        Some(who)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_remembered_under_the_caller_the_authorize_names_and_never_without_one() {
    let (_dir, up, token, job) = upstream().await;
    let (tx, rx) = std::sync::mpsc::channel();
    let proxy = tokio::task::spawn_blocking(move || {
        Proxy::with_authorize(ProxyConfig::new(&up).unwrap(), |gitlab| {
            let mine = Arc::new(ByHeader(gitlab, AtomicUsize::new(0)));
            tx.send(mine.clone()).unwrap();
            mine
        })
        .unwrap()
    })
    .await
    .unwrap();
    let asked = rx.recv().unwrap();
    let app = app(proxy.clone());
    let file = format!("/api/v4/projects/group%2Fapp/jobs/{job}/artifacts/docs/readme.txt");
    let as_user = |user: Option<&str>| {
        let mut req = Request::get(&file).header("private-token", &token);
        if let Some(user) = user {
            req = req.header("x-user", user);
        }
        let app = app.clone();
        let req = req.body(Body::empty()).unwrap();
        async move { app.oneshot(req).await.unwrap().status() }
    };
    for _ in 0..2 {
        assert_eq!(as_user(Some("ann")).await, StatusCode::OK);
    }
    assert_eq!(asked.1.load(Ordering::SeqCst), 1, "remembered for ann");
    assert_eq!(as_user(Some("bob")).await, StatusCode::OK);
    assert_eq!(asked.1.load(Ordering::SeqCst), 2, "bob is asked for himself");
    for _ in 0..2 {
        assert_eq!(as_user(None).await, StatusCode::OK);
    }
    assert_eq!(asked.1.load(Ordering::SeqCst), 4, "without a caller, every request is asked");
    tokio::task::spawn_blocking(move || drop((app, proxy))).await.unwrap();
}

/// Grants reads with the caller's credential at another origin than the upstream's.
struct Leaky;

impl Authorize for Leaky {
    fn authorize<'a>(
        &'a self,
        _: &'a Parts,
        _: &'a Target,
    ) -> Pin<Box<dyn Future<Output = Authorization> + Send + 'a>> {
        let grant = artifact_proxy::Grant::new("http://127.0.0.1:9/archive.zip".into(), "elsewhere".into(), true);
        Box::pin(std::future::ready(Authorization::Granted(grant)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_never_sends_credentials_to_another_origin_and_dot_segments_never_reach_authorize() {
    let (_dir, up, token, job) = upstream().await;
    let proxy = tokio::task::spawn_blocking(move || {
        Proxy::with_authorize(ProxyConfig::new(&up).unwrap(), |_| Arc::new(Leaky)).unwrap()
    })
    .await
    .unwrap();
    let app = app(proxy.clone());
    let file = format!("/api/v4/projects/group%2Fapp/jobs/{job}/artifacts/docs/readme.txt");
    assert_eq!(get_with(&app, &file, &token).await.0, StatusCode::BAD_GATEWAY, "refused, nothing read");
    let sneaky = format!("/api/v4/projects/group%2F..%2F..%2Fx/jobs/{job}/artifacts/docs/readme.txt");
    let (status, body) = get_with(&app, &sneaky, &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&body));
    tokio::task::spawn_blocking(move || drop((app, proxy))).await.unwrap();
}

/// Says of every archive: not for the proxy (as GitLab's does of an upstream that ignores
/// ranges).
struct AlwaysForward;

impl Authorize for AlwaysForward {
    fn authorize<'a>(
        &'a self,
        _: &'a Parts,
        _: &'a Target,
    ) -> Pin<Box<dyn Future<Output = Authorization> + Send + 'a>> {
        Box::pin(std::future::ready(Authorization::Forward))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_in_front_open_files_the_upstream_answers_itself_when_the_proxy_cannot() {
    let (_dir, up, token, job) = upstream().await;
    let proxy = tokio::task::spawn_blocking(move || {
        Proxy::with_authorize(ProxyConfig::new(&up).unwrap(), |_| Arc::new(AlwaysForward)).unwrap()
    })
    .await
    .unwrap();
    let pages = Arc::new(artifact_proxy::UpstreamPages::new(proxy.clone()).unwrap());
    let (routed, forwarded) = (pages.clone(), proxy.clone());
    let app = axum::Router::new()
        .fallback(move |req: axum::extract::Request| {
            let (pages, proxy) = (routed.clone(), forwarded.clone());
            async move {
                match pages.route(req).await {
                    Ok(answered) => answered,
                    Err(req) => proxy.answer(req).await,
                }
            }
        })
        .layer(axum::middleware::from_fn(artifact_gitlab::guard::guard));
    let raw = format!("/group/app/-/jobs/{job}/artifacts/raw/docs/readme.txt");
    let (status, body) = get_with(&app, &raw, &token).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(!body.is_empty(), "the upstream's own answer, as the API's request would be forwarded");
    let folder = format!("/group/app/-/jobs/{job}/artifacts/browse");
    assert_eq!(get_with(&app, &folder, &token).await.0, StatusCode::BAD_GATEWAY, "no index without ranges");
    let jobs = get_with(&app, "/group/app/-/jobs", &token).await;
    assert_eq!(jobs.0, StatusCode::OK, "the job list through the client");
    assert!(String::from_utf8_lossy(&jobs.1).contains(&format!("/-/jobs/{job}/artifacts/browse")));
    assert!(format!("{pages:?}").contains("sessions: 0"), "counts, never a token: {pages:?}");
    tokio::task::spawn_blocking(move || drop((app, pages, proxy))).await.unwrap();
}
