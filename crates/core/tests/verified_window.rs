//! Windows of verified remote entries (`AsyncEntry::verified`,
//! `RemoteArchives::open_verified_window_async`): a whole read that checked out keeps the
//! entry's data offset and, when asked, its checkpoints; a window is then one range request
//! of the entry's data (stored) or from the nearest checkpoint (deflated), over real HTTP
//! on loopback.
#![cfg(all(feature = "http", feature = "tokio"))]

mod common;

use std::sync::Arc;

use artifact_core::checkpoints::EntryCheckpoints;
use artifact_core::http::{HttpOptions, RemoteArchives, VerifiedEntry};
use artifact_core::{Archive, ArtifactPath, Error, MemorySource};
use artifact_testkit::range_server::{Behaviour, RangeServer};
use common::*;
use futures_util::StreamExt;

const SPACING: u64 = 1 << 20;

fn path(p: &str) -> ArtifactPath {
    ArtifactPath::new(p).unwrap()
}

fn big() -> Vec<u8> {
    text(6 << 20, 3)
}

fn archive() -> Vec<u8> {
    build(&[
        deflated("big.txt", big()),
        stored("s.bin", (0..3_000_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>()),
        deflated("small.txt", text(300_000, 4)),
    ])
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(f)
}

async fn drain<S>(mut stream: S) -> Result<Vec<u8>, Error>
where
    S: futures_core::Stream<Item = std::io::Result<bytes::Bytes>> + Unpin,
{
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.map_err(Error::from_io)?);
    }
    Ok(out)
}

/// Reads `p` whole (checkpoints kept when `keep`) and gives its verdict.
async fn verify(remote: &Arc<RemoteArchives>, url: &str, p: &str, keep: bool) -> VerifiedEntry {
    let mut entry = remote.open_entry_keyed_async("a", url, &path(p), &Default::default()).await.unwrap();
    if keep {
        entry.keep_checkpoints(SPACING).unwrap();
    }
    assert!(entry.verified().is_none(), "no verdict before the end");
    let mut bytes = Vec::new();
    while let Some(chunk) = entry.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(bytes.len() as u64, entry.entry().size());
    entry.verified().expect("a read that ended verified has a verdict")
}

#[test]
fn a_verified_read_keeps_the_checkpoints_an_import_would_build() {
    let server = RangeServer::start();
    let zip = archive();
    server.put("a.zip", zip.clone());
    let url = server.url("a.zip");
    let remote = Arc::new(RemoteArchives::new(HttpOptions::default()).unwrap());
    run(async {
        let verdict = verify(&remote, &url, "big.txt", true).await;
        let local = Archive::open(MemorySource::new(zip)).unwrap();
        let entry = local.find(&path("big.txt")).unwrap();
        let built = EntryCheckpoints::build(&local, &entry, SPACING).unwrap();
        let kept = verdict.checkpoints().expect("checkpoints were kept");
        assert!(kept.points.len() >= 4, "a 6 MiB entry has several: {}", kept.points.len());
        assert_eq!(**kept, built, "the same points and windows as building them alone");
        assert_eq!(verdict.data_offset(), local.reader(&entry).unwrap().data_offset());
        // And a second call has the verdict without them (they were taken).
        assert!(verdict.weight() > kept.points.iter().map(|p| p.window_len()).sum::<usize>());
    });
}

#[test]
fn a_window_of_a_verified_entry_is_one_range_request_of_its_data_or_from_its_nearest_checkpoint() {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let url = server.url("a.zip");
    let remote = Arc::new(RemoteArchives::new(HttpOptions::default()).unwrap());
    let whole = big();
    let stored_bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    run(async {
        let deflated = verify(&remote, &url, "big.txt", true).await;
        let compressed = deflated.entry().compressed_size();
        let stored = verify(&remote, &url, "s.bin", false).await;
        let small = verify(&remote, &url, "small.txt", false).await;
        assert!(small.checkpoints().is_none(), "none unless asked");
        let size = whole.len() as u64;
        let cases: &[(&str, &VerifiedEntry, &[u8], u64, u64)] = &[
            ("big.txt", &deflated, &whole, size - (1 << 20), 1 << 20),
            ("big.txt", &deflated, &whole, 0, 100),
            ("big.txt", &deflated, &whole, (3 << 20) - 10, 20),
            ("big.txt", &deflated, &whole, size - 1, 1),
            ("big.txt", &deflated, &whole, 0, size),
            ("s.bin", &stored, &stored_bytes, 1000, 1000),
            ("s.bin", &stored, &stored_bytes, 2_999_999, 1),
            ("small.txt", &small, &text(300_000, 4), 250_000, 50_000),
        ];
        for &(name, verdict, bytes, skip, len) in cases {
            server.reset_counts();
            let window = remote
                .open_verified_window_async("a", &url, &path(name), &Default::default(), verdict, skip, len)
                .await
                .unwrap()
                .expect("the verdict fits the archive as it is");
            assert_eq!(window.len(), len);
            let got = drain(window).await.unwrap();
            assert!(got == bytes[skip as usize..(skip + len) as usize], "{name} {skip}+{len}");
            let requests = server.requests();
            assert_eq!(requests.len(), 1, "{name} {skip}+{len}: one range request");
            assert!(requests[0].header("if-match").is_some(), "checked against the verified version");
            if name == "s.bin" {
                assert_eq!(server.bytes_sent(), len, "a stored window is only its bytes");
            }
        }
        // The last MiB of the deflated entry reads from its last checkpoint, not its start.
        server.reset_counts();
        let window = remote
            .open_verified_window_async(
                "a",
                &url,
                &path("big.txt"),
                &Default::default(),
                &deflated,
                size - (1 << 20),
                1 << 20,
            )
            .await
            .unwrap()
            .unwrap();
        drain(window).await.unwrap();
        assert!(server.bytes_sent() * 2 < compressed, "{} of {compressed} compressed bytes", server.bytes_sent());

        let past = remote
            .open_verified_window_async("a", &url, &path("s.bin"), &Default::default(), &stored, 2_999_999, 2)
            .await
            .unwrap_err();
        assert!(matches!(&past, Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidInput), "{past}");
        // A verdict is for its entry only.
        let other = remote
            .open_verified_window_async("a", &url, &path("small.txt"), &Default::default(), &stored, 0, 1)
            .await
            .unwrap();
        assert!(other.is_none(), "another entry's verdict is not used");
    });
}

#[test]
fn a_verdict_of_an_old_version_is_never_used_for_the_new_one() {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let url = server.url("a.zip");
    let remote = Arc::new(RemoteArchives::new(HttpOptions::default()).unwrap());
    run(async {
        let old = verify(&remote, &url, "big.txt", true).await;
        // The same name, other bytes: the index in memory is the old one until a read
        // says otherwise.
        let new_text = text(6 << 20, 9);
        server.put("a.zip", build(&[deflated("big.txt", new_text.clone())]));
        let window = remote
            .open_verified_window_async("a", &url, &path("big.txt"), &Default::default(), &old, 0, 100)
            .await
            .unwrap();
        assert!(window.is_none(), "the server said the archive changed: read it whole");
        // The whole read of the new version verifies it again, and its verdict serves.
        let new = verify(&remote, &url, "big.txt", true).await;
        let window = remote
            .open_verified_window_async("a", &url, &path("big.txt"), &Default::default(), &old, 0, 100)
            .await
            .unwrap();
        assert!(window.is_none(), "the old verdict does not fit the new index");
        let window = remote
            .open_verified_window_async("a", &url, &path("big.txt"), &Default::default(), &new, 5_000_000, 100)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(drain(window).await.unwrap(), new_text[5_000_000..5_000_100]);
    });
}

#[test]
fn an_archive_known_only_by_its_date_has_no_verdicts() {
    // Last-Modified has one-second steps: two versions of one size written within a second
    // would pass for one, so no window is ever served on its word.
    let server = RangeServer::start();
    server.put("a.zip", archive());
    server.set_behaviour(Behaviour { no_etag: true, ..Behaviour::default() });
    let url = server.url("a.zip");
    let remote = Arc::new(RemoteArchives::new(HttpOptions::default()).unwrap());
    run(async {
        let mut entry =
            remote.open_entry_keyed_async("a", &url, &path("small.txt"), &Default::default()).await.unwrap();
        let mut bytes = Vec::new();
        while let Some(chunk) = entry.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        assert!(bytes == text(300_000, 4), "read and verified");
        assert!(entry.verified().is_none(), "but no verdict");
    });
}

#[test]
fn a_gzip_passthrough_that_ended_verified_leaves_the_same_verdict() {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let url = server.url("a.zip");
    let remote = Arc::new(RemoteArchives::new(HttpOptions::default()).unwrap());
    run(async {
        let plain = verify(&remote, &url, "big.txt", true).await;
        let mut entry = remote.open_entry_keyed_async("a", &url, &path("big.txt"), &Default::default()).await.unwrap();
        entry.keep_checkpoints(SPACING).unwrap();
        let mut gzip = entry.into_gzip();
        let mut member = Vec::new();
        member.extend_from_slice(&gzip.next().await.unwrap().unwrap());
        assert!(gzip.verified().is_none(), "no verdict before the trailer");
        while let Some(chunk) = gzip.next().await {
            member.extend_from_slice(&chunk.unwrap());
        }
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&member[..]), &mut out).unwrap();
        assert!(out == big());
        let verdict = gzip.verified().expect("the member ended verified");
        assert_eq!(verdict.checkpoints(), plain.checkpoints());
        assert_eq!(verdict.data_offset(), plain.data_offset());
    });
}
