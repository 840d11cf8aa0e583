//! Entries of remote archives on async I/O (`RemoteArchives::open_entry_async`): the same
//! request counts, checks and failures as the blocking reader, over real HTTP on loopback.

mod common;

use std::sync::Arc;

use artifact_core::http::{AsyncEntry, HttpOptions, RemoteArchives};
use artifact_core::{ArtifactPath, Error, HttpProblem};
use artifact_testkit::range_server::{Behaviour, RangeServer};
use common::*;
use futures_util::StreamExt;

fn path(p: &str) -> ArtifactPath {
    ArtifactPath::new(p).unwrap()
}

fn small() -> Vec<u8> {
    build(&[deflated("a.txt", text(2048, 1)), stored("b.bin", vec![7u8; 500]), deflated("c/d.txt", text(300_000, 2))])
}

fn remote() -> Arc<RemoteArchives> {
    Arc::new(RemoteArchives::new(HttpOptions::default()).unwrap())
}

/// Runs `f` on a two-worker runtime.
fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(f)
}

/// The whole stream (an entry, a window of one), or its first error.
async fn drain<S>(mut entry: S) -> Result<Vec<u8>, Error>
where
    S: futures_core::Stream<Item = std::io::Result<bytes::Bytes>> + Unpin,
{
    let mut out = Vec::new();
    while let Some(chunk) = entry.next().await {
        out.extend_from_slice(&chunk.map_err(Error::from_io)?);
    }
    Ok(out)
}

async fn open(remote: &Arc<RemoteArchives>, url: &str, p: &str) -> Result<AsyncEntry, Error> {
    remote.open_entry_async(url, &path(p), &Default::default()).await
}

#[test]
fn cold_is_two_requests_warm_is_one_and_the_bytes_are_the_entrys() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let url = server.url("a.zip");
    let remote = remote();
    run(async {
        assert_eq!(drain(open(&remote, &url, "a.txt").await.unwrap()).await.unwrap(), text(2048, 1));
        assert_eq!(server.requests().len(), 2, "suffix read, then header and data together");
        server.reset_counts();
        let before = remote.stats().bytes;
        let entry = open(&remote, &url, "c/d.txt").await.unwrap();
        assert_eq!(entry.entry().size(), 300_000);
        assert_eq!(drain(entry).await.unwrap(), text(300_000, 2));
        let requests = server.requests();
        assert_eq!(requests.len(), 1, "a warm entry is one request");
        assert!(requests[0].header("if-match").is_some(), "checked against the indexed version");
        assert_eq!(remote.stats().bytes - before, server.bytes_sent(), "every byte sent is counted");
        assert_eq!(drain(open(&remote, &url, "b.bin").await.unwrap()).await.unwrap(), vec![7u8; 500]);
        let err = remote.open_entry_async(&url, &path("c"), &Default::default()).await.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "a directory is not served: {err}");
    });
}

#[test]
fn a_changed_archive_is_read_again_once_and_never_mixed() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let url = server.url("a.zip");
    let remote = remote();
    run(async {
        drain(open(&remote, &url, "a.txt").await.unwrap()).await.unwrap();
        server.put("a.zip", build(&[deflated("a.txt", b"new content".to_vec())]));
        server.reset_counts();
        assert_eq!(drain(open(&remote, &url, "a.txt").await.unwrap()).await.unwrap(), b"new content");
        assert_eq!(server.requests().len(), 3, "the failed conditional request, then a cold look-up");
    });
}

#[test]
fn bytes_that_fail_their_crc_end_the_stream_with_an_error_never_a_clean_end() {
    let mut bytes = small();
    let at = bytes.windows(500).position(|w| w.iter().all(|&b| b == 7)).unwrap();
    bytes[at + 250] = 8;
    let server = RangeServer::start();
    server.put("a.zip", bytes);
    let remote = remote();
    run(async {
        let err = drain(open(&remote, &server.url("a.zip"), "b.bin").await.unwrap()).await.unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{err}");
    });
}

#[test]
fn the_last_bytes_of_a_deflated_entry_come_only_after_its_check() {
    // A deflated entry whose CRC-32 (local header and directory alike) is not its data's:
    // a consumer that stops at the entry's size (a server past its Content-Length) must
    // never have had all of it.
    let data = text(300_000, 2);
    let server = RangeServer::start();
    server.put("a.zip", trailing_blocks(&data, crc32fast::hash(&data) ^ 1));
    let remote = remote();
    run(async {
        let mut entry = open(&remote, &server.url("a.zip"), "c.txt").await.unwrap();
        let mut got = 0;
        let err = loop {
            match entry.next().await {
                Some(Ok(chunk)) => got += chunk.len(),
                Some(Err(e)) => break e,
                None => panic!("a bad entry ended cleanly"),
            }
        };
        assert!(got < data.len(), "{got} of {} bytes before the error {err}", data.len());
        // A good one: its last chunk, then the end.
        server.put("b.zip", trailing_blocks(&data, crc32fast::hash(&data)));
        let good = drain(open(&remote, &server.url("b.zip"), "c.txt").await.unwrap()).await.unwrap();
        assert!(good == data);
    });
}

#[test]
fn a_body_cut_mid_way_is_an_error_item() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let url = server.url("a.zip");
    let remote = remote();
    run(async {
        drain(open(&remote, &url, "a.txt").await.unwrap()).await.unwrap();
        server.set_behaviour(Behaviour { short_body: true, ..Behaviour::default() });
        let result = match open(&remote, &url, "c/d.txt").await {
            Ok(entry) => drain(entry).await,
            Err(e) => Err(e),
        };
        assert!(result.is_err(), "a cut body never ends cleanly");
    });
}

#[test]
fn a_stalled_server_times_out() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let url = server.url("a.zip");
    let options = HttpOptions { stall_timeout: std::time::Duration::from_millis(300), ..HttpOptions::default() };
    let remote = Arc::new(RemoteArchives::new(options).unwrap());
    run(async {
        drain(open(&remote, &url, "a.txt").await.unwrap()).await.unwrap();
        server.set_behaviour(Behaviour { delay_ms: 2_000, ..Behaviour::default() });
        let err = open(&remote, &url, "b.bin").await.unwrap_err();
        assert!(matches!(err, Error::Http { problem: HttpProblem::Timeout(_), .. }), "{err}");
    });
}

#[test]
fn a_local_extra_field_longer_than_the_slack_costs_one_more_request() {
    let data = text(10_000, 3);
    let bytes = with_local_extra(4096, &data);
    let server = RangeServer::start();
    server.put("x.zip", bytes);
    let url = server.url("x.zip");
    let remote = remote();
    remote.locate_with(&url, &path("x.txt"), &Default::default()).unwrap();
    server.reset_counts();
    run(async {
        assert_eq!(drain(open(&remote, &url, "x.txt").await.unwrap()).await.unwrap(), data);
        assert_eq!(server.requests().len(), 2);
    });
}

#[test]
fn async_reads_keep_a_fresh_index_for_missing_entries_and_for_refused_callers() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let url = server.url("a.zip");
    let remote = remote();
    let token = private_token;
    run(async {
        drain(open(&remote, &url, "a.txt").await.unwrap()).await.unwrap();
        server.reset_counts();
        for _ in 0..3 {
            let err = open(&remote, &url, "nope.txt").await.map(drop).unwrap_err();
            assert!(matches!(err, Error::NotFound { .. }), "{err}");
        }
        assert_eq!(server.requests().len(), 0, "no reload for an entry a fresh index lacks");
        server.set_behaviour(Behaviour {
            require_header: Some(("private-token".into(), "owner".into())),
            ..Behaviour::default()
        });
        let refused = remote.open_entry_async(&url, &path("b.bin"), &token("stranger")).await.map(drop).unwrap_err();
        assert!(matches!(&refused, Error::Http { problem: HttpProblem::Status(403), .. }), "{refused}");
        assert_eq!(server.requests().len(), 1, "refused, and nothing reloaded after it");
        server.reset_counts();
        let entry = remote.open_entry_async(&url, &path("b.bin"), &token("owner")).await.unwrap();
        assert_eq!(drain(entry).await.unwrap(), vec![7u8; 500]);
        assert_eq!(server.requests().len(), 1, "the owner's read: the shared index stayed");
    });
}

#[test]
fn remote_archives_are_made_used_and_dropped_inside_a_runtime() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let url = server.url("a.zip");
    run(async {
        let remote = Arc::new(RemoteArchives::new(HttpOptions::default()).unwrap());
        let (blocking, at) = (remote.clone(), url.clone());
        let read = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut blocking.open_entry(&at, &path("a.txt")).unwrap(), &mut out).unwrap();
            out
        });
        assert_eq!(read.await.unwrap(), text(2048, 1), "the blocking face, on the blocking pool");
        assert_eq!(drain(open(&remote, &url, "b.bin").await.unwrap()).await.unwrap(), vec![7u8; 500]);
        // The last handle, with its blocking face's thread started, dropped on an async worker.
        drop(remote);
    });
}

#[test]
fn the_async_face_never_downloads_a_whole_archive() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    server.set_behaviour(Behaviour { ignore_range: true, ..Behaviour::default() });
    let url = server.url("a.zip");
    let remote =
        Arc::new(RemoteArchives::new(HttpOptions { spool_without_range: true, ..HttpOptions::default() }).unwrap());
    run(async {
        let err = open(&remote, &url, "a.txt").await.map(drop).unwrap_err();
        assert!(matches!(err, Error::Unsupported(artifact_core::Unsupported::ServerIgnoresRange { .. })), "{err}");
        assert_eq!(server.requests().len(), 1, "refused after one request, nothing downloaded whole");
    });
}

#[test]
fn a_window_of_a_remote_entry_is_its_bytes_there_and_a_window_past_it_is_refused() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let url = server.url("a.zip");
    let remote = remote();
    let whole = text(300_000, 2);
    run(async {
        for (p, skip, len) in
            [("c/d.txt", 0, 10), ("c/d.txt", 1000, 70_000), ("c/d.txt", 299_990, 10), ("b.bin", 499, 1)]
        {
            let window = open(&remote, &url, p).await.unwrap().into_window(skip, len).unwrap();
            assert_eq!(window.len(), len);
            let got = drain(window).await.unwrap();
            let expected = if p == "b.bin" { vec![7u8; 500] } else { whole.clone() };
            assert_eq!(got, expected[skip as usize..(skip + len) as usize], "{p} {skip}+{len}");
        }
        let empty = open(&remote, &url, "a.txt").await.unwrap().into_window(2048, 0).unwrap();
        assert!(empty.is_empty() && drain(empty).await.unwrap().is_empty());
        for (skip, len) in [(0, 300_001), (300_000, 1), (u64::MAX, 2)] {
            let e = open(&remote, &url, "c/d.txt").await.unwrap().into_window(skip, len).unwrap_err();
            assert!(matches!(&e, Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidInput), "{e}");
        }
    });
}

#[test]
fn a_window_to_the_end_of_a_damaged_entry_ends_in_an_error() {
    let size = 300_000;
    let mut bytes = build(&[stored("b.bin", vec![7u8; size])]);
    // The stored data's last byte, changed: the CRC-32 no longer matches.
    let at = bytes.windows(size).position(|w| w.iter().all(|&b| b == 7)).unwrap() + size - 1;
    bytes[at] = 8;
    let server = RangeServer::start();
    server.put("a.zip", bytes);
    let url = server.url("a.zip");
    let remote = remote();
    run(async {
        let early = open(&remote, &url, "b.bin").await.unwrap().into_window(0, 100).unwrap();
        assert_eq!(drain(early).await.unwrap(), vec![7u8; 100], "a window short of the end is not checked");
        let to_end = open(&remote, &url, "b.bin").await.unwrap().into_window(299_000, 1000).unwrap();
        assert!(drain(to_end).await.is_err(), "a window to the end ends only after the check");
    });
}

#[test]
fn the_etag_of_an_entry_changes_with_the_archive_version_and_never_holds_the_url() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let url = server.url("a.zip?private_token=secret");
    let remote = remote();
    let (tag, again, other) = run(async {
        let first = open(&remote, &url, "a.txt").await.unwrap().etag();
        let again = open(&remote, &url, "a.txt").await.unwrap().etag();
        (first, again, open(&remote, &url, "b.bin").await.unwrap().etag())
    });
    assert_eq!(tag, again, "the same version, the same tag");
    assert!(tag.starts_with('"') && tag.ends_with('"') && !tag.contains("secret") && !tag.contains("127.0.0.1"));
    assert_ne!(tag, other);
    server.put("a.zip", small()); // the same bytes under a new ETag at the server
    let located = remote.locate_with(&url, &path("a.txt"), &Default::default()).unwrap();
    assert_eq!(located.etag(), tag, "the cached index still names the version it read");
    let fresh = self::remote();
    let newer = run(async { open(&fresh, &url, "a.txt").await.unwrap().etag() });
    assert_ne!(newer, tag, "another version, another tag");
}

#[test]
fn a_small_entry_read_whole_comes_with_its_gzip_member() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let url = server.url("a.zip");
    let remote = remote();
    run(async {
        let (bytes, member) = open(&remote, &url, "a.txt").await.unwrap().read_all_with_member().await.unwrap();
        assert!(bytes == text(2048, 1));
        let member = member.expect("a deflated entry has one");
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&member[..]), &mut out).unwrap();
        assert!(out == text(2048, 1), "the member gunzips to the entry");
        let entry = open(&remote, &url, "a.txt").await.unwrap();
        assert_eq!(member.len() as u64, entry.entry().compressed_size() + 18, "header, the stream, trailer");
        let (stored, none) = open(&remote, &url, "b.bin").await.unwrap().read_all_with_member().await.unwrap();
        assert_eq!((stored.to_vec(), none), (vec![7u8; 500], None), "a stored entry has none");
    });
}
