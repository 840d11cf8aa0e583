//! The server on its blob layers: the local folder and an S3-compatible bucket (a real moto
//! server from PyPI, started by the testkit). The layers' own contract is the conformance
//! suite of `artifact-blobs` (`crates/blobs/tests/`); these are what the server makes of them.

use artifact_server::{BlobKind, Blobs, LocalBlobs, S3Blobs};
use artifact_testkit::s3::S3Server;

/// A layer, and how many stored objects it holds (temporary files included).
struct Layer {
    name: &'static str,
    blobs: Box<dyn Blobs>,
    count: Box<dyn Fn() -> usize>,
    _dir: Option<tempfile::TempDir>,
}

fn layers() -> Vec<Layer> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let local = Layer {
        name: "local",
        blobs: Box::new(LocalBlobs::open(&root).unwrap()),
        count: Box::new(move || files(&root)),
        _dir: Some(dir),
    };
    let server = S3Server::shared();
    let bucket = server.new_bucket();
    let config = server.config();
    let config: Vec<(&str, &str)> = config.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s3 = S3Blobs::open_with(&format!("s3://{bucket}/some/prefix"), &config).unwrap();
    let s3 = Layer {
        name: "s3",
        blobs: Box::new(s3),
        count: Box::new(move || S3Server::shared().objects(&bucket).len()),
        _dir: None,
    };
    vec![local, s3]
}

fn files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| if e.path().is_dir() { files(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}

/// Bytes that do not repeat within a part.
/// A server on a new bucket (its data under `dir`), with the archive at `zip` imported as
/// project `g/p`'s job: the app, its blobs, a reporter's token and the job's id.
async fn bucket_app(
    dir: &std::path::Path,
    zip: std::path::PathBuf,
    config: artifact_server::AppConfig,
) -> (axum::Router, std::sync::Arc<S3Blobs>, String, i64) {
    use artifact_server::{Admin, AppState, DataDir, ImportJob};
    use std::sync::Arc;
    let server = S3Server::shared();
    let bucket = server.new_bucket();
    let keys = server.config();
    let data = dir.join("data");
    let (s3, store) = tokio::task::spawn_blocking(move || {
        let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let s3 = Arc::new(S3Blobs::open_with(&format!("s3://{bucket}"), &keys).unwrap());
        (s3, DataDir::open(&data).unwrap().store())
    })
    .await
    .unwrap();
    let admin = Admin::new(store.clone(), s3.clone(), "http://test");
    let (token, id) = tokio::task::spawn_blocking(move || {
        admin.add_project("g/p", false).unwrap();
        admin.add_user("dev", false).unwrap();
        admin.add_member("g/p", "dev", "reporter").unwrap();
        let token = admin.add_token("dev").unwrap();
        let job = admin.import(&ImportJob { artifacts: Some(zip), ..ImportJob::new("g/p", "main", "build") });
        (token, job.unwrap().job["id"].as_i64().unwrap())
    })
    .await
    .unwrap();
    (artifact_server::app(AppState::new(store, s3.clone(), config)), s3, token, id)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_file_from_the_bucket_costs_three_requests_cold_one_warm_and_none_hot() {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    // An archive whose central directory is larger than the first (64 KiB) read.
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("many.zip");
    {
        let mut w = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for i in 0..3000 {
            w.start_file(format!("build/objects/some-longer-name-{i:05}.o"), opts).unwrap();
            std::io::Write::write_all(&mut w, format!("object {i}\n").as_bytes()).unwrap();
        }
        w.finish().unwrap();
    }
    let (app, s3, token, id) = bucket_app(dir.path(), zip_path, artifact_server::AppConfig::default()).await;
    let get = |file: String| {
        let req = Request::builder()
            .uri(format!("/api/v4/projects/g%2Fp/jobs/{id}/artifacts/{file}"))
            .header("PRIVATE-TOKEN", &token)
            .body(Body::empty())
            .unwrap();
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            (resp.status().as_u16(), resp.into_body().collect().await.unwrap().to_bytes())
        }
    };
    let before = s3.stats().reads;
    let (status, body) = get("build/objects/some-longer-name-01234.o".into()).await;
    assert_eq!((status, &body[..]), (200, &b"object 1234\n"[..]));
    let cold = s3.stats().reads - before;
    // The tail (with the archive's size), the rest of the central directory, and the entry:
    // the archive's verification outcome comes from the store with the job.
    assert!(cold <= 3, "{cold} requests for a cold file");
    let before = s3.stats().reads;
    let (status, body) = get("build/objects/some-longer-name-02345.o".into()).await;
    assert_eq!((status, &body[..]), (200, &b"object 2345\n"[..]));
    assert_eq!(s3.stats().reads - before, 1, "a warm file is its entry's read alone");
    let before = s3.stats().reads;
    let (status, body) = get("build/objects/some-longer-name-02345.o".into()).await;
    assert_eq!((status, &body[..]), (200, &b"object 2345\n"[..]));
    assert_eq!(s3.stats().reads - before, 0, "a hot file is answered from memory");
    tokio::task::spawn_blocking(move || drop((app, s3))).await.unwrap();
    drop(dir);
}

/// Small entries of an archive in the bucket, once its index and look-up are warm, are read
/// on the async workers (one object `GET`, awaited): with the blocking pool's only thread
/// held, the whole entry, gzip and a range still answer; the bytes are the entry's,
/// checked. `HEAD` and `304` read nothing.
#[test]
fn a_warm_small_file_in_the_bucket_is_read_without_the_blocking_pool_in_every_face() {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let text: Vec<u8> = (0..3000u32).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("a.zip");
    {
        let mut w = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        w.start_file("report.txt", zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut w, &text).unwrap();
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        w.start_file("other.txt", stored).unwrap();
        std::io::Write::write_all(&mut w, b"other\n").unwrap();
        w.finish().unwrap();
    }
    // One blocking thread: the test holds it while the warm requests are made.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = artifact_server::AppConfig { entry_cache_bytes: 0, ..Default::default() };
        let (app, s3, token, id) = bucket_app(dir.path(), zip_path, config).await;
        let get = |file: &str, headers: &[(&str, &str)]| {
            let mut req = Request::builder()
                .uri(format!("/api/v4/projects/g%2Fp/jobs/{id}/artifacts/{file}"))
                .header("PRIVATE-TOKEN", &token);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let (app, req) = (app.clone(), req.body(Body::empty()).unwrap());
            async move {
                // Bounded: a request that waits for the held blocking thread is a failure.
                let answer = tokio::time::timeout(std::time::Duration::from_secs(10), app.oneshot(req));
                let resp = answer.await.expect("answered without the blocking pool").unwrap();
                let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
                (status, headers, resp.into_body().collect().await.unwrap().to_bytes())
            }
        };
        // Cold, on the blocking pool: the look-up, the index and the verdicts warm up.
        let (status, _, body) = get("other.txt", &[]).await;
        assert_eq!((status, &body[..]), (200, &b"other\n"[..]));
        let (held, hold) = std::sync::mpsc::channel::<()>();
        let blocked = tokio::task::spawn_blocking(move || hold.recv());
        let before = s3.stats().reads;
        let (status, headers, body) = get("report.txt", &[]).await;
        assert_eq!((status, &body[..]), (200, &text[..]));
        let etag = headers.get("etag").unwrap().to_str().unwrap().to_owned();
        let (status, headers, body) = get("report.txt", &[("accept-encoding", "gzip")]).await;
        assert_eq!((status, headers.get("content-encoding").unwrap().to_str().unwrap()), (200, "gzip"));
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain).unwrap();
        assert_eq!(plain, text, "the member gunzips to the entry");
        let (status, _, body) = get("report.txt", &[("range", "bytes=100-199")]).await;
        assert_eq!((status, &body[..]), (206, &text[100..200]));
        assert_eq!(s3.stats().reads - before, 3, "one object GET each (no entry memory)");
        // What needs no bytes goes to the blocking pool, and reads nothing.
        let _ = held.send(());
        blocked.await.unwrap().unwrap();
        let (status, _, body) = get("report.txt", &[("if-none-match", &etag)]).await;
        assert_eq!((status, body.len()), (304, 0));
        let head = Request::head(format!("/api/v4/projects/g%2Fp/jobs/{id}/artifacts/report.txt"))
            .header("PRIVATE-TOKEN", &token)
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(head).await.unwrap();
        assert_eq!(resp.headers().get("content-length").unwrap().to_str().unwrap(), text.len().to_string());
        assert_eq!(s3.stats().reads - before, 3, "HEAD and 304 read nothing");
        tokio::task::spawn_blocking(move || drop((app, s3))).await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_downloads_redirect_to_a_presigned_url_or_stream_with_proxy_download() {
    use std::sync::Arc;

    use artifact_server::{Admin, AppConfig, AppState, DataDir, ImportJob};
    use axum::body::Body;
    use axum::http::{Method, Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let zip = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/infozip-basic.zip");
    let expected = std::fs::read(&zip).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::shared();
    let (bucket, config, data) = (server.new_bucket(), server.config(), dir.path().join("data"));
    let (s3, store, token, id) = tokio::task::spawn_blocking(move || {
        let config: Vec<(&str, &str)> = config.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let s3: Arc<dyn Blobs> = Arc::new(S3Blobs::open_with(&format!("s3://{bucket}/p"), &config).unwrap());
        let store = DataDir::open(&data).unwrap().store();
        let admin = Admin::new(store.clone(), s3.clone(), "http://test");
        admin.add_project("g/p", false).unwrap();
        admin.add_user("dev", false).unwrap();
        admin.add_member("g/p", "dev", "reporter").unwrap();
        let token = admin.add_token("dev").unwrap();
        let job = admin.import(&ImportJob { artifacts: Some(zip), ..ImportJob::new("g/p", "main", "build") }).unwrap();
        (s3, store, token, job.job["id"].as_i64().unwrap())
    })
    .await
    .unwrap();
    let app = |proxy_download| {
        let config = AppConfig { proxy_download, ..AppConfig::default() };
        artifact_server::app(AppState::new(store.clone(), s3.clone(), config))
    };
    let (redirecting, streaming) = (app(false), app(true));
    let send = |app: &axum::Router, method: Method, uri: String, headers: Vec<(&'static str, String)>| {
        let mut req = Request::builder().method(method).uri(uri).header("PRIVATE-TOKEN", &token);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let app = app.clone();
        async move {
            let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
            let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
            (status, headers, resp.into_body().collect().await.unwrap().to_bytes())
        }
    };
    let by_id = format!("/api/v4/projects/g%2Fp/jobs/{id}/artifacts");
    let by_ref = "/api/v4/projects/g%2Fp/jobs/artifacts/main/download?job=build".to_owned();
    let client = reqwest::Client::new();
    for uri in [&by_id, &by_ref] {
        // 302 to the bucket: a presigned URL with no token of the caller's in it.
        let (status, headers, body) = send(&redirecting, Method::GET, uri.clone(), vec![]).await;
        assert_eq!((status, body.len()), (302, 0), "{uri}");
        let location = headers.get("location").unwrap().to_str().unwrap().to_owned();
        assert!(location.starts_with(&server.endpoint()) && location.contains("X-Amz-Signature="), "{location}");
        assert!(!location.contains(&token), "the caller's token never goes into the URL");
        let got = client.get(&location).send().await.unwrap();
        assert_eq!(got.status(), 200);
        assert!(got.bytes().await.unwrap() == expected, "the presigned URL gives the archive");
        // Range works through the redirect (the client sends it to the bucket).
        let part = client.get(&location).header("range", "bytes=0-3").send().await.unwrap();
        assert_eq!((part.status().as_u16(), &part.bytes().await.unwrap()[..]), (206, &expected[..4]));
        // HEAD and validators are answered here.
        let (status, headers, _) = send(&redirecting, Method::HEAD, uri.clone(), vec![]).await;
        assert_eq!(
            (status, headers.get("content-length").unwrap().to_str().unwrap()),
            (200, &*expected.len().to_string())
        );
        let etag = headers.get("etag").unwrap().to_str().unwrap().to_owned();
        let (status, _, _) = send(&redirecting, Method::GET, uri.clone(), vec![("if-none-match", etag.clone())]).await;
        assert_eq!(status, 304, "{uri}");
        // --proxy-download: the bytes through the server, ranges and all.
        let (status, _, body) = send(&streaming, Method::GET, uri.clone(), vec![]).await;
        assert_eq!(status, 200);
        assert!(body == expected, "streamed byte-identical");
        let (status, _, body) = send(&streaming, Method::GET, uri.clone(), vec![("range", "bytes=-10".into())]).await;
        assert_eq!((status, &body[..]), (206, &expected[expected.len() - 10..]));
    }
    tokio::task::spawn_blocking(move || drop((redirecting, streaming, s3, store))).await.unwrap();
    drop(dir);
}

#[test]
fn a_bucket_that_goes_away_is_a_prompt_error_and_reads_recover_by_themselves() {
    let server = S3Server::shared();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let port: u16 = server.endpoint().rsplit(':').next().unwrap().parse().unwrap();
    let cable = artifact_testkit::cable::Cable::to(runtime.handle(), port);
    let bucket = server.new_bucket();
    let mut config = server.config();
    config[0].1 = format!("http://127.0.0.1:{}", cable.port());
    let config: Vec<(&str, &str)> = config.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let blobs = S3Blobs::open_with(&format!("s3://{bucket}"), &config).unwrap();
    let blob = blobs.put(BlobKind::Trace, &mut &pattern(200_000)[..]).unwrap();
    blobs.check().unwrap();
    cable.cut();
    let at = std::time::Instant::now();
    assert!(blobs.check().is_err(), "the health check says so");
    assert!(blobs.open(&blob.key).is_err() || blobs.open(&blob.key).unwrap().source.read_bytes(0, 10).is_err());
    assert!(blobs.put(BlobKind::Trace, &mut &b"x"[..]).is_err(), "a put fails");
    assert!(at.elapsed() < std::time::Duration::from_secs(20), "promptly: {:?}", at.elapsed());
    cable.restore();
    let open = blobs.open(&blob.key).unwrap();
    assert_eq!(&open.source.read_bytes(1000, 10).unwrap()[..], &pattern(200_000)[1000..1010]);
    blobs.check().unwrap();
    drop(blobs);
    drop(runtime);
}

#[test]
fn gc_collects_a_killed_imports_blobs_and_keeps_a_jobs_on_every_layer() {
    use std::sync::Arc;
    use std::time::Duration;
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/infozip-basic.zip");
    for l in layers() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn artifact_server::Store> =
            Arc::new(artifact_server::SqliteStore::open(&dir.path().join("db")).unwrap());
        let blobs: Arc<dyn Blobs> = Arc::from(l.blobs);
        let admin = artifact_server::Admin::new(store.clone(), blobs.clone(), "http://test");
        admin.add_project("g/p", false).unwrap();
        let job = artifact_server::ImportJob {
            artifacts: Some(fixture.clone()),
            ..artifact_server::ImportJob::new("g/p", "main", "b")
        };
        admin.import(&job).unwrap();
        let kept: Vec<String> = blobs.list().unwrap().into_iter().map(|b| b.key).collect();
        // An import killed after writing its archive: the lease renewed two minutes ago.
        let key = artifact_server::new_key(BlobKind::Archive).unwrap();
        let stale = artifact_server::Timestamp::now().0 - 120_000;
        store.lease_blobs(std::slice::from_ref(&key), stale).unwrap();
        blobs.put_at(&key, &mut &b"half an import"[..]).unwrap();
        let collected = admin.gc(Duration::from_secs(60), false).unwrap();
        assert_eq!(collected.blobs, vec![key.clone()], "{}", l.name);
        let mut left: Vec<String> = blobs.list().unwrap().into_iter().map(|b| b.key).collect();
        left.sort();
        let mut kept = kept;
        kept.sort();
        assert_eq!(left, kept, "{}: the job's blobs stay", l.name);
        assert_eq!((l.count)(), kept.len(), "{}: nothing else stored", l.name);
    }
}

/// The proxies' shared cache (`--shared-cache s3://...`) on a real bucket: one reader's
/// index serves another's first read, nothing but the index is written, and a bucket that
/// is not there is a miss (counted), never a failed read.
#[test]
fn a_shared_cache_in_a_bucket_serves_a_second_readers_first_read() {
    use artifact_core::http::{HttpOptions, RemoteArchives, SharedCache};
    use futures_util::StreamExt;
    use std::sync::Arc;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, text) in [("a.txt", "first file\n"), ("b/c.txt", "second file\n")] {
        zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut zip, text.as_bytes()).unwrap();
    }
    let range = artifact_testkit::range_server::RangeServer::start();
    range.put("a.zip", zip.finish().unwrap().into_inner());
    let url = range.url("a.zip");
    let server = S3Server::shared();
    let bucket = server.new_bucket();
    let config = server.config();
    let config: Vec<(&str, &str)> = config.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let open = |at: &str| -> Arc<dyn SharedCache> {
        Arc::new(artifact_server::ObjectStoreCache::open_with(at, &config).unwrap())
    };
    let (shared, missing) = (open(&format!("s3://{bucket}/fleet")), open("s3://no-such-bucket/fleet"));
    let reader = |cache: &Arc<dyn SharedCache>| {
        Arc::new(RemoteArchives::new(HttpOptions::default()).unwrap().with_shared_cache(cache.clone()))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let read = |remote: Arc<RemoteArchives>, path: &'static str| {
            let url = url.clone();
            async move {
                let path = artifact_core::ArtifactPath::new(path).unwrap();
                let entry = remote.open_entry_keyed_async("archive", &url, &path, &Default::default()).await.unwrap();
                let chunks: Vec<_> = entry.map(|c| c.unwrap()).collect().await;
                String::from_utf8(chunks.concat()).unwrap()
            }
        };
        let first = reader(&shared);
        assert_eq!(read(first.clone(), "a.txt").await, "first file\n");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while first.shared_stats().unwrap().writes == 0 {
            assert!(std::time::Instant::now() < deadline, "not written: {:?}", first.shared_stats());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let objects = server.objects(&bucket);
        assert_eq!(objects.len(), 1, "{objects:?}");
        assert!(objects[0].0.starts_with("fleet/index/"), "{objects:?}");
        range.reset_counts();
        let second = reader(&shared);
        assert_eq!(read(second.clone(), "b/c.txt").await, "second file\n");
        assert_eq!(range.requests().len(), 1, "the entry's read alone");
        assert_eq!(second.shared_stats().unwrap().hits, 1);
        // An object larger than asked for is not read; one that is not there is none.
        let name = objects[0].0.trim_start_matches("fleet/");
        assert!(shared.get(name, 10).await.unwrap().is_none());
        assert!(shared.get(name, 1 << 20).await.unwrap().is_some());
        assert!(shared.get("index/0000000000000000", 1 << 20).await.unwrap().is_none());
        // A bucket that is not there: the read goes on as without one, and the write that
        // follows fails, counted.
        let lost = reader(&missing);
        assert_eq!(read(lost.clone(), "a.txt").await, "first file\n");
        while lost.shared_stats().unwrap().errors == 0 {
            assert!(std::time::Instant::now() < deadline, "no error counted: {:?}", lost.shared_stats());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let stats = lost.shared_stats().unwrap();
        assert_eq!((stats.hits, stats.writes), (0, 0), "{stats:?}");
    });
}
