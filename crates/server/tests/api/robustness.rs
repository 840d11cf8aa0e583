//! Panics, internal errors and broken archives: a 500 that leaks nothing, a server that
//! keeps serving, and aborted bodies instead of truncated ones.

use std::sync::Arc;

use artifact_server::*;
use artifact_testkit::store::{Call, Double};

use crate::support::{World, private};

/// The world's store, but panicking or failing for one project path.
fn sabotaged(store: Arc<dyn Store>) -> Arc<dyn Store> {
    Arc::new(Double::new(store).failing(|call| match call {
        Call::Project(ProjectRef::Path(p)) if p == "boom/panic" => panic!("sabotaged store"),
        Call::Project(ProjectRef::Path(p)) if p == "boom/error" => {
            Some(StoreError::Database("SELECT secret FROM /var/lib/artifact/artifact.db".into()))
        }
        _ => None,
    }))
}

#[tokio::test]
async fn a_panic_is_a_500_with_a_request_id_and_the_server_keeps_serving() {
    let mut w = World::new();
    w.with_store(sabotaged(w.store.clone()));
    let r = w.get("/api/v4/projects/boom%2Fpanic/jobs", "reporter").await;
    r.expect(500, r#"{"message":"500 Internal Server Error"}"#);
    assert_ne!(r.header("x-request-id"), "<none>");
    assert_eq!(w.get(&private("/jobs"), "reporter").await.status, 200);
}

#[tokio::test]
async fn internal_errors_never_leak_paths_or_sql() {
    let mut w = World::new();
    w.with_store(sabotaged(w.store.clone()));
    let r = w.get("/api/v4/projects/boom%2Ferror/jobs", "reporter").await;
    r.expect(500, r#"{"message":"500 Internal Server Error"}"#);
    assert!(!r.text().contains("SELECT") && !r.text().contains("/var/lib"));
}

/// A zip with one deflated entry of `len` pseudo-random-ish but compressible bytes.
fn zip_with(dir: &std::path::Path, name: &str, len: usize) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join(format!("{name}.zip"));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(name, opts).unwrap();
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8 ^ (i / 4096) as u8).collect();
    zip.write_all(&data).unwrap();
    zip.finish().unwrap();
    path
}

/// Flips bytes `at..at + 64` after the first occurrence of `name` in the stored archive
/// (blobs are immutable in normal operation; this is disk corruption).
fn corrupt_after(w: &World, name: &[u8], at: usize) {
    let archive = find_blob(&w.dir.path().join("data/blobs/archive"));
    let mut bytes = std::fs::read(&archive).unwrap();
    let start = bytes.windows(name.len()).position(|win| win == name).unwrap() + name.len() + at;
    for b in &mut bytes[start..start + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&archive, &bytes).unwrap();
}

#[tokio::test]
async fn a_corrupt_small_entry_is_a_500_before_any_byte() {
    let w = World::new();
    let id = w.build_with_artifacts();
    corrupt_after(&w, b"big.txt", 400);
    let (status, body) = w.send_raw(&private(&format!("/jobs/{id}/artifacts/big.txt")), "reporter").await;
    assert_eq!(status, 500);
    assert_eq!(body.unwrap(), br#"{"message":"500 Internal Server Error"}"#);
    // The healthy entries of the archive are still served.
    assert_eq!(w.get(&private(&format!("/jobs/{id}/artifacts/docs/readme.txt")), "reporter").await.status, 200);
}

#[tokio::test]
async fn a_corrupt_large_entry_aborts_the_body_instead_of_ending_it_short() {
    let w = World::new();
    let zip = zip_with(w.dir.path(), "large.bin", 4 << 20);
    let job = w.import(artifact_server::ImportJob { artifacts: Some(zip), ..w.job("build") });
    let id = job["id"].as_i64().unwrap();
    // The flip sits well past the first chunks, so the headers and some data go out first.
    corrupt_after(&w, b"large.bin", 60_000);
    let (status, body) = w.send_raw(&private(&format!("/jobs/{id}/artifacts/large.bin")), "reporter").await;
    assert_eq!(status, 200, "the headers were sent before the data went bad");
    assert!(body.is_err(), "the body must fail, not end: got {} bytes", body.map(|b| b.len()).unwrap_or(0));
    // Intact, the same entry streams completely and checks out.
    let w2 = World::new();
    let zip = zip_with(w2.dir.path(), "large.bin", 4 << 20);
    let id = w2.import(artifact_server::ImportJob { artifacts: Some(zip), ..w2.job("build") })["id"].as_i64().unwrap();
    let (status, body) = w2.send_raw(&private(&format!("/jobs/{id}/artifacts/large.bin")), "reporter").await;
    assert_eq!((status.as_u16(), body.unwrap().len()), (200, 4 << 20));
}

fn find_blob(dir: &std::path::Path) -> std::path::PathBuf {
    let first = std::fs::read_dir(dir).unwrap().flatten().next().expect("a blob").path();
    if first.is_dir() { find_blob(&first) } else { first }
}

#[tokio::test]
async fn the_health_check_answers_gitlab_ok_without_credentials() {
    let w = World::new();
    let r = w.send(axum::http::Method::GET, "/-/health", None, &[]).await;
    assert_eq!((r.status.as_u16(), r.text()), (200, "GitLab OK".to_owned()));
    // A store that fails is a 503 that says which part failed.
    let mut w = w;
    w.with_store(down(w.store.clone()));
    let r = w.send(axum::http::Method::GET, "/-/health", None, &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!((r.json()["store"].as_bool(), r.json()["blobs"].as_bool()), (Some(false), Some(true)));
}

/// The world's store, every query of which fails as an unreachable database does.
fn down(store: Arc<dyn Store>) -> Arc<dyn Store> {
    Arc::new(Double::new(store).failing(|_| Some(StoreError::Unavailable("connection refused".into()))))
}

#[tokio::test]
async fn an_unreachable_store_is_a_503_with_a_gitlab_body() {
    let mut w = World::new();
    let token = w.token("reporter").to_owned();
    w.with_store(down(w.store.clone()));
    let r = w.send(axum::http::Method::GET, &private("/jobs"), None, &[("PRIVATE-TOKEN", &token)]).await;
    r.expect(503, r#"{"message":"503 Service Unavailable"}"#);
}
