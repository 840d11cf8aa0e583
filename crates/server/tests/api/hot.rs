//! Hot entries: small files kept in memory, verified, by archive key and path. A kept file
//! answers exactly as one read from its archive does (every face), is answered without
//! reading the archive, and goes with its archive (erase, delete, expiry).

use std::time::{Duration, Instant};

use artifact_server::{AppConfig, ImportJob};
use axum::http::Method;

use crate::support::{Reply, World, archive_file, fixture, private};

/// What a client can tell of an answer.
fn seen(r: &Reply) -> (u16, Vec<(&'static str, String)>, Vec<u8>) {
    let names =
        ["etag", "last-modified", "content-type", "content-encoding", "content-range", "content-length", "vary"];
    let headers = names.iter().map(|n| (*n, r.header(n).to_owned())).collect();
    (r.status.as_u16(), headers, r.body.clone())
}

fn file_uri(id: i64, path: &str) -> String {
    private(&format!("/jobs/{id}/artifacts/{path}"))
}

#[tokio::test]
async fn a_kept_file_answers_every_face_as_a_file_read_from_its_archive() {
    let w = World::new();
    let id = w.build_with_artifacts();
    for path in ["docs/readme.txt", "big.txt", "data.bin", "empty.txt"] {
        let uri = file_uri(id, path);
        let etag = w.get(&uri, "reporter").await.header("etag").to_owned();
        let faces: Vec<(Method, Vec<(&str, &str)>)> = vec![
            (Method::GET, vec![]),
            (Method::HEAD, vec![]),
            (Method::GET, vec![("range", "bytes=0-9")]),
            (Method::GET, vec![("range", "bytes=-5")]),
            (Method::GET, vec![("range", "bytes=0-")]),
            (Method::GET, vec![("range", "bytes=0-1,5-6")]),
            (Method::GET, vec![("range", "bytes=999999-")]),
            (Method::GET, vec![("if-none-match", &etag)]),
            (Method::GET, vec![("if-match", "\"other\"")]),
            (Method::GET, vec![("range", "bytes=2-4"), ("if-range", &etag)]),
            (Method::GET, vec![("range", "bytes=2-4"), ("if-range", "\"other\"")]),
            (Method::GET, vec![("accept-encoding", "gzip")]),
            (Method::HEAD, vec![("accept-encoding", "gzip")]),
            (Method::GET, vec![("accept-encoding", "gzip"), ("range", "bytes=0-9")]),
            (Method::GET, vec![("accept-encoding", "gzip"), ("if-match", &etag)]),
            (Method::GET, vec![("accept-encoding", "gzip;q=0")]),
        ];
        for (method, headers) in faces {
            // The first answer may come from the archive; the next two come from memory.
            let first = w.send(method.clone(), &uri, Some("reporter"), &headers).await;
            for _ in 0..2 {
                let again = w.send(method.clone(), &uri, Some("reporter"), &headers).await;
                assert_eq!(seen(&again), seen(&first), "{path} {method} {headers:?}");
            }
        }
        // And the gzip form, once kept, is the entry's own deflate stream around its bytes.
        let gz = w.send(Method::GET, &uri, Some("reporter"), &[("accept-encoding", "gzip")]).await;
        if gz.header("content-encoding") == "gzip" {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz.body[..]), &mut plain).unwrap();
            assert_eq!(plain, w.get(&uri, "reporter").await.body, "{path}");
        }
    }
}

/// Replaces the bytes of job `id`'s archive on disk with zeros, in place (open files see it).
fn wreck_archive(w: &World, id: i64) {
    let file = archive_file(w, id);
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::write(&file, vec![0u8; len as usize]).unwrap();
}

#[tokio::test]
async fn a_kept_file_is_answered_without_reading_its_archive() {
    for memory in [true, false] {
        let config = AppConfig { entry_cache_bytes: if memory { 64 << 20 } else { 0 }, ..AppConfig::default() };
        let w = World::with_config(config);
        let id = w.build_with_artifacts();
        let uri = file_uri(id, "big.txt");
        let good = w.get(&uri, "reporter").await;
        assert_eq!(good.status, 200);
        // The archive's bytes are gone from under the server: only memory can answer.
        wreck_archive(&w, id);
        let r = w.get(&uri, "reporter").await;
        if memory {
            assert_eq!(seen(&r), seen(&good), "kept: answered from memory");
            // Another caller (no look-up of theirs remembered, as for anyone once a second
            // passed): access checked, then memory answers too.
            let other = w.get(&uri, "developer").await;
            assert_eq!(seen(&other), seen(&good), "kept: answered from memory for another caller");
        } else {
            assert_eq!(r.status, 500, "not kept: the read finds the damage and no byte of it is served");
        }
    }
}

#[tokio::test]
async fn kept_files_go_with_their_archive_on_erase_and_delete() {
    let w = World::new();
    for action in ["erase", "artifacts"] {
        let id = w.build_with_artifacts();
        let uri = file_uri(id, "docs/readme.txt");
        for _ in 0..2 {
            assert_eq!(w.get(&uri, "reporter").await.status, 200);
        }
        let r = match action {
            "erase" => w.post(&private(&format!("/jobs/{id}/erase")), "developer").await,
            _ => w.send(Method::DELETE, &private(&format!("/jobs/{id}/artifacts")), Some("maintainer"), &[]).await,
        };
        assert!(r.status.is_success(), "{action}: {}", r.text());
        w.get(&uri, "reporter").await.expect(404, r#"{"message":"404 Not found"}"#);
    }
}

#[tokio::test]
async fn kept_files_go_with_their_archive_when_it_expires() {
    let w = World::new();
    // The newest success of a ref would be kept (`keep_latest.rs`): not in this project.
    w.admin.set_project(crate::support::PRIVATE, Some(false)).unwrap();
    let job = w.import(ImportJob {
        artifacts: Some(fixture("infozip-basic.zip")),
        expire_in: Some("2 seconds".into()),
        ..w.job("short")
    });
    let id = job["id"].as_i64().unwrap();
    let expires = Instant::now() + Duration::from_secs(2);
    let uri = file_uri(id, "docs/readme.txt");
    assert_eq!(w.get(&uri, "reporter").await.status, 200);
    // Served (from memory) until it expires; once the remembered look-up is older than
    // the expiry (one second at most), a 404 every time.
    let deadline = expires + Duration::from_secs(5);
    loop {
        let r = w.get(&uri, "reporter").await;
        if r.status == 404 {
            break;
        }
        assert_eq!(r.status, 200);
        assert!(Instant::now() < deadline, "still served 5 s after its expiry");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(Instant::now() + Duration::from_millis(100) >= expires, "gone before it expired");
    for _ in 0..3 {
        assert_eq!(w.get(&uri, "reporter").await.status, 404);
    }
}
