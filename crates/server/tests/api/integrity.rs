//! Serving integrity: a `2xx` body is always bytes that passed their CRC-32. Entries that
//! fail verification answer 500 on every face (plain, `HEAD`, `Range`, gzip passthrough,
//! conditional), their siblings keep serving, archives with a wrong directory size serve as
//! Go reads them, and the preconditions of RFC 9110 (`If-Match`, `If-Unmodified-Since`) hold.

use std::io::Read;
use std::path::PathBuf;

use artifact_core::{ArtifactPath, FileSource, open_entry};
use artifact_server::ImportJob;
use axum::http::Method;
use serde_json::Value;

use crate::support::{World, fixture, private};

fn hostile(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/hostile").join(name)
}

const ERROR_500: &str = r#"{"message":"500 Internal Server Error"}"#;

/// Imports `archive` as job `name`; returns its id and the names of the refused entries.
fn import(w: &World, archive: PathBuf, name: &str) -> (i64, Vec<String>) {
    let imported = w.admin.import(&ImportJob { artifacts: Some(archive), ..w.job(name) }).unwrap();
    let refused = imported.verification.unwrap().refused.into_iter().map(|r| r.name).collect();
    (imported.job["id"].as_i64().unwrap(), refused)
}

/// The entry's bytes as the engine reads them from the file.
fn engine_read(archive: &std::path::Path, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    open_entry(FileSource::open(archive).unwrap(), &ArtifactPath::new(name).unwrap())
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn entry_uri(id: i64, name: &str) -> String {
    let encoded: String = name
        .split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string())
        .collect::<Vec<_>>()
        .join("/");
    private(&format!("/jobs/{id}/artifacts/{encoded}"))
}

/// Every face of a refused entry is a 500 with GitLab's body, never a 2xx or a 304.
async fn assert_refused_everywhere(w: &World, uri: &str) {
    type Face<'a> = (&'a str, Method, Vec<(&'a str, &'a str)>);
    let faces: [Face<'_>; 8] = [
        ("plain", Method::GET, vec![]),
        ("gzip passthrough", Method::GET, vec![("accept-encoding", "gzip")]),
        ("suffix range", Method::GET, vec![("range", "bytes=-10")]),
        ("prefix range", Method::GET, vec![("range", "bytes=0-99")]),
        ("open range", Method::GET, vec![("range", "bytes=5-")]),
        ("HEAD", Method::HEAD, vec![]),
        ("If-None-Match *", Method::GET, vec![("if-none-match", "*")]),
        ("If-Modified-Since", Method::GET, vec![("if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT")]),
    ];
    for (face, method, headers) in faces {
        let head = method == Method::HEAD;
        let r = w.send(method, uri, Some("reporter"), &headers).await;
        assert_eq!(r.status, 500, "{uri} {face}: {}", r.text());
        if !head {
            r.expect(500, ERROR_500);
        }
        assert_eq!(r.header("etag"), "<none>", "{uri} {face}");
    }
}

#[tokio::test]
async fn entries_that_fail_their_crc_answer_500_on_every_face_and_their_siblings_serve() {
    let w = World::new();
    let (id, mut refused) = import(&w, hostile("crc-mismatch.zip"), "build");
    refused.sort();
    let bad = ["large-deflated.bin", "large-stored.bin", "small-deflated.txt", "small-stored.txt"];
    assert_eq!(refused, bad);
    for name in bad {
        assert_refused_everywhere(&w, &entry_uri(id, name)).await;
        // By ref and job name too (endpoint 8).
        let by_ref = private(&format!("/jobs/artifacts/main/raw/{name}?job=build"));
        w.get(&by_ref, "reporter").await.expect(500, ERROR_500);
    }
    let r = w.get(&entry_uri(id, "good.txt"), "reporter").await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"fine\n"[..]));
    // The archive itself is the user's bytes, served whole.
    let r = w.get(&private(&format!("/jobs/{id}/artifacts")), "reporter").await;
    assert_eq!(r.body, std::fs::read(hostile("crc-mismatch.zip")).unwrap());
}

#[tokio::test]
async fn truncated_and_corrupt_deflate_streams_are_refused_with_gzip_passthrough() {
    let w = World::new();
    for (file, job) in [("deflate-truncated.zip", "cut"), ("deflate-corrupt.zip", "broken")] {
        let (id, refused) = import(&w, hostile(file), job);
        assert_eq!(refused, ["bad.bin"], "{file}");
        assert_refused_everywhere(&w, &entry_uri(id, "bad.bin")).await;
        let r = w.get(&entry_uri(id, "good.txt"), "reporter").await;
        assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"fine\n"[..]), "{file}");
    }
}

#[tokio::test]
async fn healthy_members_of_an_archive_with_overlapping_and_out_of_bounds_entries_serve_byte_identical() {
    let w = World::new();
    let archive = hostile("overlap-and-out-of-bounds.zip");
    let (id, refused) = import(&w, archive.clone(), "build");
    assert_eq!(refused, ["intruder.txt", "too-long.bin"]);
    let expected: [(&str, Vec<u8>); 3] = [
        ("a.txt", b"hello world\n".repeat(100)),
        ("b.bin", (0..=255u8).collect::<Vec<_>>().repeat(4)),
        ("c/d.txt", b"deeper\n".repeat(50)),
    ];
    for (name, bytes) in &expected {
        let r = w.get(&entry_uri(id, name), "reporter").await;
        assert_eq!((r.status.as_u16(), &r.body), (200, bytes), "{name}");
        let r = w.send(Method::GET, &entry_uri(id, name), Some("reporter"), &[("range", "bytes=-10")]).await;
        assert_eq!((r.status.as_u16(), &r.body[..]), (206, &bytes[bytes.len() - 10..]), "{name}");
    }
    let r = w.send(Method::GET, &entry_uri(id, "a.txt"), Some("reporter"), &[("accept-encoding", "gzip")]).await;
    assert_eq!(r.header("content-encoding"), "gzip");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&r.body[..]).read_to_end(&mut plain).unwrap();
    assert_eq!(plain, expected[0].1);
    for name in ["intruder.txt", "too-long.bin"] {
        assert_refused_everywhere(&w, &entry_uri(id, name)).await;
    }
}

#[tokio::test]
async fn archives_whose_end_record_misstates_the_directory_size_serve_as_go_reads_them() {
    let w = World::new();
    for (file, job) in [("cd-size-overstated.zip", "over"), ("cd-size-understated.zip", "under")] {
        let (id, refused) = import(&w, hostile(file), job);
        assert!(refused.is_empty(), "{file}: {refused:?}");
        let r = w.get(&entry_uri(id, "a.txt"), "reporter").await;
        assert_eq!((r.status.as_u16(), r.body), (200, b"hello world\n".repeat(100)), "{file}");
        let r = w.get(&entry_uri(id, "b.bin"), "reporter").await;
        assert_eq!(r.body, (0..=255u8).collect::<Vec<_>>().repeat(4), "{file}");
    }
    // Anything less exact is refused whole, and nothing is stored.
    let before = crate::actions::count_files(&w.dir.path().join("data/blobs"));
    let err = w.admin.import(&ImportJob { artifacts: Some(hostile("cd-size-wrong-with-junk.zip")), ..w.job("junk") });
    assert!(matches!(err, Err(artifact_server::Error::BadArchive { .. })), "{err:?}");
    assert_eq!(crate::actions::count_files(&w.dir.path().join("data/blobs")), before);
}

#[tokio::test]
async fn if_match_and_if_unmodified_since_on_archives_and_entries() {
    let w = World::new();
    let id = w.build_with_artifacts();
    for uri in [private(&format!("/jobs/{id}/artifacts")), entry_uri(id, "docs/readme.txt")] {
        let send = |headers: Vec<(&'static str, String)>| {
            let (w, uri) = (&w, uri.clone());
            async move {
                let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                w.send(Method::GET, &uri, Some("reporter"), &h).await
            }
        };
        let full = send(vec![]).await;
        assert_eq!(full.status, 200);
        let (etag, modified) = (full.header("etag").to_owned(), full.header("last-modified").to_owned());
        for ok in [etag.clone(), "*".into(), format!("\"nope\", {etag}")] {
            let r = send(vec![("if-match", ok.clone())]).await;
            assert_eq!((r.status.as_u16(), &r.body), (200, &full.body), "{uri} If-Match {ok}");
        }
        for failing in ["\"nope\"".to_owned(), format!("W/{etag}"), String::new()] {
            send(vec![("if-match", failing)]).await.expect(412, r#"{"message":"412 Precondition Failed"}"#);
        }
        // With a range: the range if the tag matches, 412 if not (never a 200 of other bytes).
        let r = send(vec![("if-match", etag.clone()), ("range", "bytes=0-3".into())]).await;
        assert_eq!((r.status.as_u16(), &r.body[..]), (206, &full.body[..4]));
        let r = send(vec![("if-match", "\"old\"".into()), ("range", "bytes=0-3".into())]).await;
        assert_eq!(r.status, 412);
        // If-Unmodified-Since: a date before the last change fails; one at or after it passes.
        let r = send(vec![("if-unmodified-since", modified.clone())]).await;
        assert_eq!(r.status, 200);
        let r = send(vec![("if-unmodified-since", "Thu, 01 Jan 1970 00:00:01 GMT".into())]).await;
        assert_eq!(r.status, 412);
        // If-Match wins over If-Unmodified-Since, and comes before If-None-Match.
        let r = send(vec![("if-match", etag.clone()), ("if-unmodified-since", "Thu, 01 Jan 1970 00:00:01 GMT".into())])
            .await;
        assert_eq!(r.status, 200);
        let r = send(vec![("if-match", etag.clone()), ("if-none-match", etag.clone())]).await;
        assert_eq!(r.status, 304);
        let r = w.send(Method::HEAD, &uri, Some("reporter"), &[("if-match", "\"nope\"")]).await;
        assert_eq!(r.status, 412);
    }
    // An entry asked for by its identity tag comes as identity even to a gzip client; by
    // its gzip tag, as gzip.
    let uri = entry_uri(id, "big.txt");
    let plain = w.get(&uri, "reporter").await;
    assert_eq!(plain.header("vary"), "Accept-Encoding", "big.txt is deflated");
    let etag = plain.header("etag").to_owned();
    let r = w.send(Method::GET, &uri, Some("reporter"), &[("accept-encoding", "gzip"), ("if-match", &etag)]).await;
    assert_eq!((r.status.as_u16(), r.header("content-encoding"), &r.body), (200, "<none>", &plain.body));
    let gz = w.send(Method::GET, &uri, Some("reporter"), &[("accept-encoding", "gzip")]).await;
    let gz_tag = gz.header("etag").to_owned();
    assert_ne!(gz_tag, etag);
    let r = w.send(Method::GET, &uri, Some("reporter"), &[("accept-encoding", "gzip"), ("if-match", &gz_tag)]).await;
    assert_eq!((r.status.as_u16(), r.header("content-encoding")), (200, "gzip"));
}

#[tokio::test]
async fn entries_stored_before_verification_existed_are_verified_on_first_request() {
    let w = World::new();
    let (id, _) = import(&w, hostile("crc-mismatch.zip"), "build");
    // Forget the kept outcome: the archive now looks like one imported before verification.
    forget_outcome(&w, id);
    for _ in 0..2 {
        assert_refused_everywhere(&w, &entry_uri(id, "large-deflated.bin")).await;
        assert_refused_everywhere(&w, &entry_uri(id, "small-stored.txt")).await;
        let r = w.get(&entry_uri(id, "good.txt"), "reporter").await;
        assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"fine\n"[..]));
    }
    // The same for a healthy archive: it serves, by every face.
    let healthy = w.build_with_artifacts();
    forget_outcome(&w, healthy);
    let uri = entry_uri(healthy, "docs/readme.txt");
    let r = w.send(Method::GET, &uri, Some("reporter"), &[("range", "bytes=-5")]).await;
    assert_eq!(r.status, 206);
    let whole = engine_read(&fixture("infozip-basic.zip"), "docs/readme.txt");
    assert_eq!(r.body, whole[whole.len() - 5..]);
}

/// Removes the verification outcome the store keeps for job `id`'s archive; returns the
/// archive's key.
fn forget_outcome(w: &World, id: i64) -> String {
    let key = w.store.job(id).unwrap().unwrap().archive.unwrap().key;
    assert!(w.store.verification(&key).unwrap().is_some(), "import kept an outcome");
    w.store.delete_verification(&key).unwrap();
    key
}

#[tokio::test]
async fn an_outcome_stored_beside_the_archive_by_an_earlier_version_is_honoured() {
    use artifact_server::BlobKind;
    let w = World::new();
    let (id, refused) = import(&w, hostile("crc-mismatch.zip"), "build");
    assert!(!refused.contains(&"good.txt".to_owned()));
    let key = forget_outcome(&w, id);
    // An outcome where it was kept before, refusing a healthy entry: honoured means refused.
    let records: Vec<(u64, String)> = {
        let archive = artifact_core::Archive::open(FileSource::open(hostile("crc-mismatch.zip")).unwrap()).unwrap();
        archive
            .entries()
            .map(|e| e.unwrap())
            .map(|e| (e.record_offset(), e.name_str().unwrap_or("").to_owned()))
            .collect()
    };
    let good = records.iter().find(|(_, name)| name == "good.txt").unwrap().0;
    let outcome = serde_json::json!({
        "entries": records.len(),
        "bytes": 0,
        "refused": [{"record": good, "name": "good.txt", "reason": "refused by the old outcome"}],
    });
    w.blobs.put_beside(&key, BlobKind::Verification, &mut outcome.to_string().as_bytes()).unwrap();
    assert_refused_everywhere(&w, &entry_uri(id, "good.txt")).await;
    // An entry the old outcome let through is still checked as it is read: a small one
    // whose CRC-32 fails is a 500, never its bytes.
    let r = w.get(&entry_uri(id, "small-stored.txt"), "reporter").await;
    r.expect(500, ERROR_500);
}

#[tokio::test]
async fn every_hostile_archive_serves_as_its_case_says() {
    let w = World::new();
    let dir = hostile("");
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    for (n, case) in cases.iter().enumerate() {
        let file = case["file"].as_str().unwrap();
        let job = ImportJob { artifacts: Some(dir.join(file)), ..w.job(&format!("case{n}")) };
        let imported = w.admin.import(&job);
        let expected = case["imported"].as_str().unwrap();
        let imported = match (expected, imported) {
            ("refused", Err(artifact_server::Error::BadArchive { .. })) => continue,
            ("refused", other) => panic!("{file}: expected refused, got {other:?}"),
            (_, Err(e)) => panic!("{file}: {e}"),
            (_, Ok(imported)) => imported,
        };
        let verification = imported.verification.unwrap();
        assert_eq!(verification.refused.is_empty(), expected == "ok", "{file}: {:?}", verification.refused);
        let id = imported.job["id"].as_i64().unwrap();
        let served = case["served"].as_object().cloned().unwrap_or_default();
        let archive = artifact_core::Archive::open_file(dir.join(file)).unwrap();
        let mut seen = std::collections::HashSet::new();
        for entry in archive.entries().map(Result::unwrap) {
            let name = entry.display_name().into_owned();
            // Names the path rule refuses are 400 by the rule; directories are not served;
            // a repeated name serves its first entry.
            if ArtifactPath::new(entry.name()).is_err() || entry.is_dir() || !seen.insert(name.clone()) {
                continue;
            }
            let code = served.get(&name).or_else(|| served.get("*")).and_then(Value::as_u64).unwrap_or(200);
            let r = w.get(&entry_uri(id, &name), "reporter").await;
            assert_eq!(r.status.as_u16() as u64, code, "{file}: {name:?}: {}", r.text());
            if code == 200 {
                assert_eq!(r.body, engine_read(&dir.join(file), &name), "{file}: {name:?}");
            } else {
                r.expect(500, ERROR_500);
            }
        }
    }
}
