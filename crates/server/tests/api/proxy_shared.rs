//! Proxies sharing one cache (`--shared-cache`, here a directory): the index one proxy read
//! and the verdicts of entries it verified serve another proxy's first requests, counted at
//! the upstream and at object storage; an archive replaced upstream is read afresh once and
//! the shared index follows it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use artifact_server::{ObjectStoreCache, ProxyConfig, proxy_routers};
use artifact_testkit::range_server::RangeServer;
use axum::http::Method;

use crate::proxy::{counted, storage_front};
use crate::support::{World, fixture, private, send, upstream};

/// A proxy of `up` (and its metrics router) sharing the cache in `dir`, with no disk cache.
fn fleet_proxy(up: &str, dir: &std::path::Path) -> (axum::Router, axum::Router) {
    let mut config = ProxyConfig::new(up).unwrap();
    config.shared_cache = Some(Arc::new(ObjectStoreCache::open(dir.to_str().unwrap()).unwrap()));
    proxy_routers(config).unwrap()
}

/// The value of the metric line starting with `line` (0 when it is not there).
async fn metric(metrics: &axum::Router, line: &str) -> f64 {
    let (_, _, body) = send(metrics, Method::GET, "/metrics", &[]).await;
    let text = String::from_utf8(body.unwrap()).unwrap();
    text.lines().find(|l| l.starts_with(line)).map_or(0.0, |l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

/// Waits until the proxy whose metrics are `metrics` wrote `n` objects to the shared cache
/// (written in the background, after the answer).
async fn written(metrics: &axum::Router, n: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(metrics, r#"artifact_proxy_shared_cache_total{result="write"}"#).await < n {
        assert!(Instant::now() < deadline, "the shared cache was not written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_proxys_first_file_of_an_archive_the_first_indexed_is_one_upstream_request() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let (router, asked) = counted(w.app.clone());
    let up = upstream(router).await;
    let shared = tempfile::tempdir().unwrap();
    let token = w.token("reporter").to_owned();
    let (first, first_metrics) = fleet_proxy(&up, shared.path());
    let uri = |file: &str| private(&format!("/jobs/{id}/artifacts/{file}"));
    assert_eq!(send(&first, Method::GET, &uri("docs/readme.txt"), &[("PRIVATE-TOKEN", &token)]).await.0, 200);
    written(&first_metrics, 1.0).await;
    asked.lock().unwrap().clear();
    let (second, second_metrics) = fleet_proxy(&up, shared.path());
    let (status, _, body) = send(&second, Method::GET, &uri("docs/readme.txt"), &[("PRIVATE-TOKEN", &token)]).await;
    assert_eq!((status.as_u16(), body.unwrap()), (200, b"Top-level readme for the infozip-basic fixture.\n".to_vec()));
    let seen = asked.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "the entry's read, as the caller, is the authorization and the bytes: {seen:?}");
    assert!(seen[0].2.as_deref().is_some_and(|r| r != "bytes=-65536"), "no tail read: {seen:?}");
    assert_eq!(metric(&second_metrics, r#"artifact_proxy_shared_cache_total{result="hit"}"#).await, 1.0);
    // A caller the upstream refuses gets its refusal, whatever the shared cache holds, and
    // what it made a proxy read there is not kept (memory, disk) on its account.
    let disk = tempfile::tempdir().unwrap();
    let mut config = ProxyConfig::new(&up).unwrap();
    config.shared_cache = Some(Arc::new(ObjectStoreCache::open(shared.path().to_str().unwrap()).unwrap()));
    config.cache_dir = Some(disk.path().to_owned());
    let (third, _) = proxy_routers(config).unwrap();
    let (status, _, _) = send(&third, Method::GET, &uri("data.bin"), &[("PRIVATE-TOKEN", "glpat-nobody")]).await;
    assert!(status == 401 || status == 404, "{status}");
    assert!(crate::support::files_under(disk.path()).is_empty(), "nothing kept for a refused caller");
    let (status, _, _) = send(&third, Method::GET, &uri("data.bin"), &[("PRIVATE-TOKEN", &token)]).await;
    assert_eq!(status, 200);
    assert_eq!(crate::support::files_under(disk.path()).len(), 1, "kept once a caller's read succeeded");
    // Nothing in the shared cache is the caller's: no token, no query (the archive's identity,
    // its upstream, project and job, is the key).
    let everything: Vec<u8> = crate::support::files_under(shared.path())
        .iter()
        .flat_map(|f| [f.to_string_lossy().as_bytes().to_vec(), std::fs::read(f).unwrap()].concat())
        .collect();
    for secret in [token.as_str(), "private_token", "PRIVATE-TOKEN"] {
        assert!(!everything.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} in the shared cache");
    }
}

/// An archive with a 3 MiB stored entry and a deflated one over 8 MiB.
fn large() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let blob: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let log: Vec<u8> =
        (0..1_400_000u64).flat_map(|i| format!("step {i} {}\n", i * 2_654_435_761 % 1000).into_bytes()).collect();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("blob.bin", stored).unwrap();
    std::io::Write::write_all(&mut w, &blob).unwrap();
    w.start_file("big.log", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut w, &log).unwrap();
    (w.finish().unwrap().into_inner(), blob, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_on_a_second_proxy_is_a_window_from_the_verdict_the_first_one_shared() {
    let (zip, blob, log) = large();
    let storage = RangeServer::start();
    storage.put("bucket/a.zip", zip);
    let (front, asked, _) = storage_front(storage.url("bucket/a.zip"));
    let up = upstream(front).await;
    let shared = tempfile::tempdir().unwrap();
    let token = ("PRIVATE-TOKEN", "glpat-ok");
    let (first, first_metrics) = fleet_proxy(&up, shared.path());
    let (blob_uri, log_uri) =
        ("/api/v4/projects/1/jobs/9/artifacts/blob.bin", "/api/v4/projects/1/jobs/9/artifacts/big.log");
    // Whole reads verify both (the log's records its checkpoints): index and two verdicts.
    for (uri, len) in [(blob_uri, blob.len()), (log_uri, log.len())] {
        let (status, _, body) = send(&first, Method::GET, uri, &[token]).await;
        assert_eq!((status.as_u16(), body.unwrap().len()), (200, len));
    }
    written(&first_metrics, 3.0).await;
    let (second, second_metrics) = fleet_proxy(&up, shared.path());
    asked.store(0, Ordering::SeqCst);
    storage.reset_counts();
    let (status, headers, body) = send(&second, Method::GET, blob_uri, &[token, ("range", "bytes=1000-1999")]).await;
    assert_eq!((status.as_u16(), body.unwrap()), (206, blob[1000..2000].to_vec()));
    assert_eq!(headers.get("content-range").unwrap(), &format!("bytes 1000-1999/{}", blob.len()));
    assert_eq!(asked.load(Ordering::SeqCst), 1, "one authorization (the entry's read, redirected)");
    assert_eq!(storage.requests().len(), 2, "the entry's first read (the authorization's end), then the window");
    let window = storage.requests()[1].header("range").unwrap().to_owned();
    let (from, to) = window.strip_prefix("bytes=").unwrap().split_once('-').unwrap();
    assert_eq!(to.parse::<u64>().unwrap() - from.parse::<u64>().unwrap() + 1, 1000, "{window}");
    // The deflated one's last MiB, from the nearest shared checkpoint.
    storage.reset_counts();
    let (status, _, body) = send(&second, Method::GET, log_uri, &[token, ("range", "bytes=-1048576")]).await;
    assert_eq!((status.as_u16(), body.unwrap()), (206, log[log.len() - (1 << 20)..].to_vec()));
    assert_eq!(storage.requests().len(), 1);
    assert!(storage.bytes_sent() < 4 << 20, "not the whole entry: {}", storage.bytes_sent());
    assert_eq!(metric(&second_metrics, r#"artifact_proxy_verified_windows_total{from="checkpoint"}"#).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_replaced_upstream_is_read_afresh_once_and_the_shared_index_follows_it() {
    let storage = RangeServer::start();
    storage.put("bucket/a.zip", std::fs::read(fixture("infozip-basic.zip")).unwrap());
    let (front, _, _) = storage_front(storage.url("bucket/a.zip"));
    let up = upstream(front).await;
    let shared = tempfile::tempdir().unwrap();
    let token = ("PRIVATE-TOKEN", "glpat-ok");
    let uri = "/api/v4/projects/1/jobs/9/artifacts/docs/readme.txt";
    let (first, first_metrics) = fleet_proxy(&up, shared.path());
    assert_eq!(send(&first, Method::GET, uri, &[token]).await.0, 200);
    written(&first_metrics, 1.0).await;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("docs/readme.txt", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut w, b"a new readme\n").unwrap();
    storage.put("bucket/a.zip", w.finish().unwrap().into_inner());
    let (second, second_metrics) = fleet_proxy(&up, shared.path());
    let (status, _, body) = send(&second, Method::GET, uri, &[token]).await;
    assert_eq!((status.as_u16(), body.unwrap()), (200, b"a new readme\n".to_vec()), "never the old index's bytes");
    written(&second_metrics, 1.0).await;
    storage.reset_counts();
    let (third, _) = fleet_proxy(&up, shared.path());
    let (status, _, body) = send(&third, Method::GET, uri, &[token]).await;
    assert_eq!((status.as_u16(), body.unwrap()), (200, b"a new readme\n".to_vec()));
    assert_eq!(storage.requests().len(), 1, "the shared index is the new version's: the entry's read alone");
}
