//! The browsing page of a 10,000-entry directory of a 100,000-entry archive (ten folders of
//! 10,000 small files), through the router (no socket: server time), against a warm GET of
//! one file of the same archive through endpoint 7 in the same run. Target: the page in at
//! most 50 ms. Then the same two through the proxy (`--upstream`, this server on loopback as
//! its upstream): the folder from the archive's central directory, whose index the proxy
//! keeps after its first read. Both keep the list of an archive's paths after its first
//! page: each group measures a first page (five archives in turn, one more than the lists
//! kept) and a page of an archive already shown.
//!
//! `cargo bench -p artifact-benches --bench browse`

#[path = "common/imported.rs"]
mod common;

use std::hint::black_box;
use std::io::{Cursor, Write};

use artifact_server::AppConfig;
use axum::body::Body;
use axum::http::Request;
use common::imported;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tower::ServiceExt;
use zip::write::SimpleFileOptions;

/// Ten folders of 10,000 stored files of 900 bytes.
fn archive() -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let body = vec![b'x'; 900];
    for d in 0..10 {
        for i in 0..10_000 {
            w.start_file(format!("build/part-{d}/file-{i:05}.o"), stored).unwrap();
            w.write_all(&body).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

async fn get(app: &axum::Router, uri: &str, token: &str) -> usize {
    let req = Request::builder().uri(uri).header("PRIVATE-TOKEN", token).body(Body::empty()).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200, "{uri}");
    resp.into_body().collect().await.unwrap().to_bytes().len()
}

fn browse(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = std::env::temp_dir().join(format!("artifact-browse-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let zip = dir.join("folders.zip");
    std::fs::write(&zip, archive()).unwrap();
    let (data, token, id) = imported(&dir, &zip);
    // Four more jobs of the same archive, each its own blobs: five archives shown in turn
    // miss the lists kept for the last four, so each of their pages is a first page.
    let admin = artifact_server::Admin::new(data.store(), data.blobs(), "http://bench");
    let job = artifact_server::ImportJob {
        artifacts: Some(zip.clone()),
        ..artifact_server::ImportJob::new("bench/app", "main", "many")
    };
    let mut pages = vec![format!("/bench/app/-/jobs/{id}/artifacts/browse/build/part-7")];
    for _ in 0..4 {
        let id = admin.import(&job).unwrap().job["id"].as_i64().unwrap();
        pages.push(format!("/bench/app/-/jobs/{id}/artifacts/browse/build/part-7"));
    }
    let app = artifact_server::app(data.state(AppConfig::default()));
    let page = pages[0].clone();
    let file = format!("/api/v4/projects/bench%2Fapp/jobs/{id}/artifacts/build/part-7/file-04242.o");
    // Warm first (the look-ups remembered, the archive open and indexed), then the page and
    // the one file in turn.
    let run = |c: &mut Criterion, group: &str, app: &axum::Router, page_is: &str| {
        for _ in 0..5 {
            for page in &pages {
                runtime.block_on(get(app, page, &token));
            }
            runtime.block_on(get(app, &file, &token));
        }
        let mut g = c.benchmark_group(group);
        g.sample_size(20);
        let mut turn = 0;
        g.bench_function("first page of an archive (five archives in turn)", |b| {
            b.iter(|| {
                turn = (turn + 1) % pages.len();
                black_box(runtime.block_on(get(app, &pages[turn], &token)))
            })
        });
        g.bench_function(page_is, |b| b.iter(|| black_box(runtime.block_on(get(app, &page, &token)))));
        g.bench_function("baseline: one file of the same archive (endpoint 7)", |b| {
            b.iter(|| black_box(runtime.block_on(get(app, &file, &token))))
        });
        g.finish();
    };
    run(c, "browse", &app, "page of a 10,000-entry folder (500 rows, 100,000 entries read)");
    let upstream = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(axum::serve(listener, app.clone()).into_future());
        url
    });
    let proxy = artifact_server::proxy_app(artifact_server::ProxyConfig::new(&upstream).unwrap()).unwrap();
    let page_is = "page of a 10,000-entry folder (from the cached central directory of 100,000)";
    run(c, "browse through the proxy", &proxy, page_is);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, browse);
criterion_main!(benches);
