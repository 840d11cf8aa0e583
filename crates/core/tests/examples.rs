//! The crate's three examples (`examples/`), run as the crate's users would run them:
//! against an archive on disk, and against the range server on loopback.

mod common;

#[path = "../examples/cat.rs"]
mod cat;
#[path = "../examples/remote_cat.rs"]
mod remote_cat;
#[path = "../examples/serve_one.rs"]
mod serve_one;

use artifact_testkit::range_server::RangeServer;
use common::*;

fn archive() -> Vec<u8> {
    build(&[deflated("dist/app.js", text(5000, 3)), stored("dist/logo.bin", vec![9u8; 300])])
}

#[test]
fn cat_writes_one_local_entry_and_refuses_a_bad_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("artifacts.zip");
    std::fs::write(&file, archive()).unwrap();
    let mut out = Vec::new();
    assert_eq!(cat::run(file.to_str().unwrap(), "dist/app.js", &mut out).unwrap(), 5000);
    assert_eq!(out, text(5000, 3));
    assert!(cat::run(file.to_str().unwrap(), "../etc/passwd", &mut Vec::new()).is_err());
}

#[test]
fn remote_cat_costs_one_request_once_the_index_is_on_disk() {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let url = server.url("a.zip");
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().to_str().unwrap();
    let mut out = Vec::new();
    assert_eq!(remote_cat::run(&url, "dist/app.js", index, &mut out).unwrap(), 2, "cold: the suffix, the entry");
    assert_eq!(out, text(5000, 3));
    out.clear();
    assert_eq!(remote_cat::run(&url, "dist/logo.bin", index, &mut out).unwrap(), 1, "warm: the entry alone");
    assert_eq!(out, vec![9u8; 300]);
}

#[test]
fn serve_one_streams_entries_and_answers_a_missing_one_404() {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let url = server.url("a.zip");
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
        use tower::ServiceExt;
        let app = serve_one::app(url).unwrap();
        let get = |uri: &str| axum::http::Request::get(uri).body(axum::body::Body::empty()).unwrap();
        let resp = app.clone().oneshot(get("/files/dist/app.js")).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-length"], "5000");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff", "untrusted bytes: a download");
        assert_eq!(axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap(), text(5000, 3));
        let missing = app.clone().oneshot(get("/files/dist/nope.js")).await.unwrap();
        assert_eq!(missing.status(), 404);
        let dotted = app.oneshot(get("/files/dist/%2E%2E/x")).await.unwrap();
        assert_eq!(dotted.status(), 400, "the path rule");
        let gone = serve_one::app(server.url("gone.zip")).unwrap().oneshot(get("/files/dist/app.js")).await.unwrap();
        assert_eq!(gone.status(), 404, "no archive there");
    });
}
