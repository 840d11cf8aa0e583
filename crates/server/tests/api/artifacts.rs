//! Downloads: the archive (5, 6) and single entries (7, 8), with ranges, validators, gzip
//! passthrough, the path rule and ref resolution.

use std::io::Read;

use artifact_server::{ImportJob, Status};
use axum::http::Method;
use sha2::{Digest, Sha256};

use crate::support::{World, fixture, private};

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

const README_SHA: &str = "0bd31ca207e9b8c054904b10e4e9ef35fa67218694fcbfe3690346463a283026";
const BIG_SHA: &str = "3b74b580b5e133fb4d55fe916e614064a62702411d9bf39349496cf6463e8675";

#[tokio::test]
async fn the_archive_with_ranges_and_validators() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let uri = private(&format!("/jobs/{id}/artifacts"));
    let whole = std::fs::read(fixture("infozip-basic.zip")).unwrap();
    let r = w.get(&uri, "reporter").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, whole);
    assert_eq!(r.header("content-type"), "application/octet-stream");
    assert_eq!(
        r.header("content-disposition"),
        "attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip"
    );
    assert_eq!(r.header("accept-ranges"), "bytes");
    assert_eq!(r.header("content-length"), whole.len().to_string());
    let etag = r.header("etag").to_owned();
    let modified = r.header("last-modified").to_owned();
    assert!(etag.starts_with('"'));

    let get = |h: Vec<(&'static str, String)>| {
        let uri = uri.clone();
        let w = &w;
        async move {
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            w.send(Method::GET, &uri, Some("reporter"), &h).await
        }
    };
    let r = get(vec![("range", "bytes=0-3".into())]).await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (206, &b"PK\x03\x04"[..]));
    assert_eq!(r.header("content-range"), format!("bytes 0-3/{}", whole.len()));
    let r = get(vec![("range", "bytes=-22".into())]).await;
    assert_eq!(r.body, whole[whole.len() - 22..]);
    let r = get(vec![("range", "bytes=999999-".into())]).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), format!("bytes */{}", whole.len()));
    let r = get(vec![("if-none-match", etag.clone())]).await;
    assert_eq!((r.status.as_u16(), r.body.len()), (304, 0));
    assert_eq!(r.header("etag"), etag);
    let r = get(vec![("if-modified-since", modified)]).await;
    assert_eq!(r.status, 304);
    // If-Range with a stale validator: the whole archive.
    let r = get(vec![("range", "bytes=0-3".into()), ("if-range", "\"stale\"".into())]).await;
    assert_eq!((r.status.as_u16(), r.body.len()), (200, whole.len()));
    let r = get(vec![("range", "bytes=0-3".into()), ("if-range", etag)]).await;
    assert_eq!(r.status, 206);
    // Several ranges: multipart/byteranges with each part's bytes.
    let r = get(vec![("range", "bytes=0-3,10-19".into())]).await;
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").to_owned();
    let boundary = ct.strip_prefix("multipart/byteranges; boundary=").expect(&ct);
    assert_eq!(r.header("content-length"), r.body.len().to_string());
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.contains(&format!("Content-Range: bytes 10-19/{}", whole.len())));
    assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
    assert!(r.body.windows(10).any(|win| win == &whole[10..20]));
    // Overlapping ranges adding up to more than the archive: the archive once, 200.
    let r = get(vec![("range", "bytes=0-,0-,0-".into())]).await;
    assert_eq!((r.status.as_u16(), r.body.len()), (200, whole.len()));
    // HEAD: the headers, no body.
    let r = w.send(Method::HEAD, &uri, Some("reporter"), &[]).await;
    assert_eq!((r.status.as_u16(), r.body.len()), (200, 0));
    assert_eq!(r.header("content-length"), whole.len().to_string());
}

#[tokio::test]
async fn one_entry_with_the_spec_headers() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let r = w.get(&private(&format!("/jobs/{id}/artifacts/docs/readme.txt")), "reporter").await;
    assert_eq!(r.status, 200);
    assert_eq!(sha(&r.body), README_SHA);
    assert_eq!(r.header("content-length"), "48");
    assert_eq!(r.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(r.header("content-disposition"), "attachment; filename=\"readme.txt\"");
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    let etag = r.header("etag").to_owned();
    let r = w
        .send(
            Method::GET,
            &private(&format!("/jobs/{id}/artifacts/docs/readme.txt")),
            Some("reporter"),
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(r.status, 304);
    let r = w.send(Method::HEAD, &private(&format!("/jobs/{id}/artifacts/big.txt")), Some("reporter"), &[]).await;
    assert_eq!((r.status.as_u16(), r.body.len(), r.header("content-length")), (200, 0, "20900"));
    assert_eq!(r.header("content-type"), "text/plain; charset=utf-8");
    let r = w.get(&private(&format!("/jobs/{id}/artifacts/data.bin")), "reporter").await;
    assert_eq!(r.header("content-type"), "application/octet-stream");
}

#[tokio::test]
async fn gzip_passthrough_sends_the_stored_deflate_bytes() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let uri = private(&format!("/jobs/{id}/artifacts/big.txt"));
    let r = w.send(Method::GET, &uri, Some("reporter"), &[("accept-encoding", "br, gzip;q=0.8")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), "gzip");
    assert_eq!(r.header("vary"), "Accept-Encoding");
    // 10-byte header + the entry's 1,003 compressed bytes + 8-byte trailer.
    assert_eq!(r.body.len(), 1021);
    assert_eq!(r.header("content-length"), "1021");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&r.body[..]).read_to_end(&mut plain).expect("a valid gzip stream (CRC and size)");
    assert_eq!(sha(&plain), BIG_SHA);
    let gz_tag = r.header("etag").to_owned();
    // A 304 repeats Vary, so caches keep the variants apart.
    let r304 =
        w.send(Method::GET, &uri, Some("reporter"), &[("accept-encoding", "gzip"), ("if-none-match", &gz_tag)]).await;
    assert_eq!((r304.status.as_u16(), r304.header("vary")), (304, "Accept-Encoding"));
    // gzip;q=0 and stored entries: identity.
    let r = w.send(Method::GET, &uri, Some("reporter"), &[("accept-encoding", "gzip;q=0")]).await;
    assert_eq!((r.header("content-encoding"), sha(&r.body).as_str()), ("<none>", BIG_SHA));
    assert_ne!(r.header("etag"), gz_tag, "each encoding has its own tag");
    let readme = private(&format!("/jobs/{id}/artifacts/docs/readme.txt"));
    let r = w.send(Method::GET, &readme, Some("reporter"), &[("accept-encoding", "gzip")]).await;
    assert_eq!((r.header("content-encoding"), r.body.len()), ("<none>", 48));
}

#[tokio::test]
async fn ranges_of_stored_and_deflated_entries() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let big = std::fs::read(fixture("infozip-basic.zip")).unwrap();
    let _ = big;
    let data_bin: Vec<u8> = (0..4).flat_map(|_| 0u8..=255).collect();
    let r = w
        .send(
            Method::GET,
            &private(&format!("/jobs/{id}/artifacts/data.bin")),
            Some("reporter"),
            &[("range", "bytes=300-309")],
        )
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, data_bin[300..310]);
    assert_eq!(r.header("content-range"), "bytes 300-309/1024");
    let full = w.get(&private(&format!("/jobs/{id}/artifacts/big.txt")), "reporter").await.body;
    let r = w
        .send(
            Method::GET,
            &private(&format!("/jobs/{id}/artifacts/big.txt")),
            Some("reporter"),
            &[("range", "bytes=20000-")],
        )
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, full[20000..]);
    assert_eq!(r.header("content-range"), "bytes 20000-20899/20900");
    let r = w
        .send(
            Method::GET,
            &private(&format!("/jobs/{id}/artifacts/big.txt")),
            Some("reporter"),
            &[("range", "bytes=30000-")],
        )
        .await;
    assert_eq!(r.status, 416);
}

#[tokio::test]
async fn the_path_rule_answers_400_and_misses_404() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let base = private(&format!("/jobs/{id}/artifacts/"));
    for bad in [
        "a/../b",
        "..%2Fx",
        "%2e%2e/x",
        "./docs/readme.txt",
        "docs//readme.txt",
        "%252e%252e/x",
        "docs%5C..%5Cx",
        "a%00b",
        "%ff",
        "C:/x",
        "%5Cx",
        "docs/",
    ] {
        let r = w.get(&format!("{base}{bad}"), "reporter").await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.json()["error"].as_str().unwrap().starts_with("artifact_path is invalid"), "{bad}");
    }
    for missing in ["docs", "DOCS/readme.txt", "nope.txt", "docs/nested"] {
        let r = w.get(&format!("{base}{missing}"), "reporter").await;
        r.expect(404, r#"{"message":"404 Not found"}"#);
    }
    // An empty path (nothing after `artifacts/`) breaks the rule too.
    let r = w.get(&base, "reporter").await;
    assert_eq!(r.status, 400, "empty path: {}", r.text());
    let long = "a".repeat(4097);
    assert_eq!(w.get(&format!("{base}{long}"), "reporter").await.status, 400);
}

#[tokio::test]
async fn ref_resolution_finds_the_newest_successful_pipelines_job() {
    let w = World::new();
    let on = |ref_name: &str, zip: &str, status: Status| ImportJob {
        ref_name: ref_name.into(),
        artifacts: Some(fixture(zip)),
        status,
        ..w.job("build")
    };
    w.import(on("main", "python-stored.zip", Status::Success));
    let newest = w.import(on("main", "infozip-basic.zip", Status::Success));
    // A failed pipeline after it is not "successful": the earlier one still wins.
    w.import(on("main", "python-deflate.zip", Status::Failed));
    let r = w.get(&private("/jobs/artifacts/main/download?job=build"), "reporter").await;
    assert_eq!(r.body, std::fs::read(fixture("infozip-basic.zip")).unwrap());
    let r = w.get(&private("/jobs/artifacts/main/raw/docs/readme.txt?job=build"), "reporter").await;
    assert_eq!(sha(&r.body), README_SHA);
    let _ = newest;
    // Refs with slashes, raw or encoded.
    w.import(on("feature/x", "infozip-basic.zip", Status::Success));
    for uri in ["/jobs/artifacts/feature/x/download?job=build", "/jobs/artifacts/feature%2Fx/download?job=build"] {
        assert_eq!(w.get(&private(uri), "reporter").await.status, 200, "{uri}");
    }
    for uri in [
        "/jobs/artifacts/feature/x/raw/docs/readme.txt?job=build",
        "/jobs/artifacts/feature%2Fx/raw/docs/readme.txt?job=build",
    ] {
        assert_eq!(sha(&w.get(&private(uri), "reporter").await.body), README_SHA, "{uri}");
    }
    // Misses: unknown ref, unknown job, a SHA.
    for uri in ["/jobs/artifacts/nope/download?job=build", "/jobs/artifacts/main/download?job=nope"] {
        w.get(&private(uri), "reporter").await.expect(404, r#"{"message":"404 Not found"}"#);
    }
    let sha_ref = newest["pipeline"]["sha"].as_str().unwrap();
    let r = w.get(&private(&format!("/jobs/artifacts/{sha_ref}/download?job=build")), "reporter").await;
    assert_eq!(r.status, 404);
    w.get(&private("/jobs/artifacts/main/download"), "reporter").await.expect(400, r#"{"error":"job is missing"}"#);
    let r = w.get(&private("/jobs/artifacts/main/raw/..%2Fx?job=build"), "reporter").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn ref_resolution_looks_into_child_pipelines_parent_first() {
    let w = World::new();
    let parent = w.import(ImportJob { ref_name: "rel".into(), ..w.job("prepare") });
    let pipeline = parent["pipeline"]["id"].as_i64().unwrap();
    let child = w.import(ImportJob {
        ref_name: "rel".into(),
        parent_pipeline: Some(pipeline),
        artifacts: Some(fixture("infozip-basic.zip")),
        ..w.job("child-build")
    });
    assert_eq!(child["pipeline"]["source"], "parent_pipeline");
    let r = w.get(&private("/jobs/artifacts/rel/raw/docs/readme.txt?job=child-build"), "reporter").await;
    assert_eq!(sha(&r.body), README_SHA);
}
