//! Indexes and verdicts shared between readers (`RemoteArchives::with_shared_cache`,
//! `keep_verdict`, `stored_verdict_async`): one reader's index and verdicts serve another
//! reader's first look-up, a replaced archive is read afresh once and never mixed with the
//! old index, and damaged or misnamed objects are misses; over real HTTP on loopback, with
//! a directory as the shared store.
#![cfg(all(feature = "http", feature = "tokio"))]

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use artifact_core::http::{HttpOptions, RemoteArchives, SharedCache, SharedFuture, VerifiedEntry};
use artifact_core::{ArtifactPath, Error};
use artifact_testkit::range_server::RangeServer;
use bytes::Bytes;
use common::*;
use futures_util::StreamExt;

/// A shared cache in a directory: objects as files, written to a temporary name and
/// renamed into place.
#[derive(Debug)]
struct Dir(PathBuf);

impl SharedCache for Dir {
    fn get(&self, name: &str, max_len: u64) -> SharedFuture<'_, Option<Bytes>> {
        let path = self.0.join(name);
        Box::pin(async move {
            match std::fs::metadata(&path) {
                Ok(meta) if meta.len() > max_len => Ok(None),
                Ok(_) => Ok(Some(std::fs::read(&path)?.into())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn put(&self, name: &str, bytes: Bytes) -> SharedFuture<'_, ()> {
        let path = self.0.join(name);
        Box::pin(async move {
            std::fs::create_dir_all(path.parent().unwrap())?;
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(tmp, path)
        })
    }
}

fn path(p: &str) -> ArtifactPath {
    ArtifactPath::new(p).unwrap()
}

fn archive() -> Vec<u8> {
    build(&[deflated("a.txt", text(2048, 1)), deflated("big.txt", text(6 << 20, 3)), stored("b.bin", vec![7u8; 500])])
}

/// A range server with the archive, its URL, and a shared cache in a new directory.
fn setup() -> (RangeServer, String, tempfile::TempDir, Arc<Dir>) {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let url = server.url("a.zip");
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(Dir(dir.path().to_owned()));
    (server, url, dir, shared)
}

/// A reader that read `a.txt` and wrote the archive's index to `shared`.
async fn indexed(shared: &Arc<Dir>, url: &str) -> Arc<RemoteArchives> {
    let first = reader(shared);
    assert_eq!(read(&first, url, "a.txt").await.unwrap(), text(2048, 1));
    written(&first, 1).await;
    first
}

fn reader(shared: &Arc<Dir>) -> Arc<RemoteArchives> {
    Arc::new(RemoteArchives::new(HttpOptions::default()).unwrap().with_shared_cache(shared.clone()))
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(f)
}

async fn read(remote: &Arc<RemoteArchives>, url: &str, p: &str) -> Result<Vec<u8>, Error> {
    let mut entry = remote.open_entry_keyed_async("archive-1", url, &path(p), &Default::default()).await?;
    let mut out = Vec::new();
    while let Some(chunk) = entry.next().await {
        out.extend_from_slice(&chunk.map_err(Error::from_io)?);
    }
    Ok(out)
}

/// Waits until `remote` has written `n` objects to its shared cache (written in the
/// background, after the read that fetched them).
async fn written(remote: &RemoteArchives, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while remote.shared_stats().unwrap().writes < n {
        assert!(Instant::now() < deadline, "the shared cache was not written: {:?}", remote.shared_stats());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[test]
fn a_second_reader_finds_the_first_ones_index_and_reads_the_entry_with_one_request() {
    let (server, url, dir, shared) = setup();
    run(async {
        indexed(&shared, &url).await;
        server.reset_counts();
        let second = reader(&shared);
        assert_eq!(read(&second, &url, "b.bin").await.unwrap(), vec![7u8; 500]);
        let requests = server.requests();
        assert_eq!(requests.len(), 1, "the entry's read alone: {requests:?}");
        assert!(requests[0].header("if-match").is_some(), "checked against the shared index's version");
        let stats = second.shared_stats().unwrap();
        assert_eq!((stats.hits, stats.misses, stats.writes), (1, 0, 0));
        // Only keyed indexes are shared: a URL's is not written there.
        let third = reader(&shared);
        third.index_async(&url, &Default::default()).await.unwrap();
        assert_eq!(third.shared_stats().unwrap(), Default::default());
        let files: Vec<_> = walk(dir.path());
        assert_eq!(files.len(), 1, "{files:?}");
        let held = std::fs::read(&files[0]).unwrap();
        assert!(!String::from_utf8_lossy(&held).contains("127.0.0.1"), "no URL is written");
    });
}

#[test]
fn a_replaced_archive_is_read_afresh_once_and_the_shared_index_follows_it() {
    let (server, url, _dir, shared) = setup();
    run(async {
        let first = indexed(&shared, &url).await;
        server.put("a.zip", build(&[deflated("a.txt", b"new content".to_vec())]));
        server.reset_counts();
        let second = reader(&shared);
        assert_eq!(read(&second, &url, "a.txt").await.unwrap(), b"new content", "never the old index's bytes");
        assert_eq!(server.requests().len(), 3, "the refused conditional read, then a cold look-up");
        written(&second, 1).await;
        server.reset_counts();
        let third = reader(&shared);
        assert_eq!(read(&third, &url, "a.txt").await.unwrap(), b"new content");
        assert_eq!(server.requests().len(), 1, "the shared index is the new version's");
        // The first reader's index in memory is the old one: its next read finds out once.
        assert_eq!(read(&first, &url, "a.txt").await.unwrap(), b"new content");
    });
}

#[test]
fn damaged_or_misnamed_objects_are_misses_and_the_archive_is_read_from_the_server() {
    let (_server, url, dir, shared) = setup();
    run(async {
        indexed(&shared, &url).await;
        let file = walk(dir.path()).remove(0);
        let good = std::fs::read(&file).unwrap();
        // Cut anywhere, or a byte of its fields flipped: a miss, never a panic or wrong bytes.
        let mut damaged: Vec<Vec<u8>> =
            [0, 7, 8, 50, good.len() / 2, good.len() - 1].map(|n| good[..n].to_vec()).into();
        for at in [8, 20, 48, 57, 60] {
            let mut bytes = good.clone();
            bytes[at] ^= 0x5a;
            damaged.push(bytes);
        }
        for bytes in damaged {
            std::fs::write(&file, &bytes).unwrap();
            let other = reader(&shared);
            assert_eq!(read(&other, &url, "a.txt").await.unwrap(), text(2048, 1));
            assert_eq!(other.shared_stats().unwrap().hits, 0);
            // Its fresh index replaces the damaged one there (in the background): before the
            // next case is written.
            written(&other, 1).await;
            assert_eq!(std::fs::read(&file).unwrap(), good);
        }
        // Another key's index under this key's name (a hash collision): a miss.
        let other_key =
            Arc::new(RemoteArchives::new(HttpOptions::default()).unwrap().with_shared_cache(shared.clone()));
        std::fs::write(&file, &good).unwrap();
        let mut entry =
            other_key.open_entry_keyed_async("archive-2", &url, &path("a.txt"), &Default::default()).await.unwrap();
        while entry.next().await.is_some() {}
        let stats = other_key.shared_stats().unwrap();
        assert_eq!((stats.hits, stats.misses), (0, 1));
    });
}

#[test]
fn a_verdict_kept_by_one_reader_serves_another_ones_windows_in_its_version_only() {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let url = server.url("a.zip");
    let dir = tempfile::tempdir().unwrap();
    let disk = tempfile::tempdir().unwrap();
    let shared = Arc::new(Dir(dir.path().to_owned()));
    let whole = text(6 << 20, 3);
    run(async {
        let first = Arc::new(
            RemoteArchives::new(HttpOptions::default())
                .unwrap()
                .with_shared_cache(shared.clone())
                .with_disk_cache(disk.path()),
        );
        let mut entry =
            first.open_entry_keyed_async("archive-1", &url, &path("big.txt"), &Default::default()).await.unwrap();
        entry.keep_checkpoints(1 << 20).unwrap();
        while let Some(chunk) = entry.next().await {
            chunk.unwrap();
        }
        let verdict = entry.verified().expect("verified");
        first.keep_verdict("archive-1", &path("big.txt"), &verdict);
        written(&first, 2).await;
        let second = reader(&shared);
        let index = second.index_keyed_async("archive-1", &url, &Default::default()).await.unwrap();
        let found = index.find(b"big.txt").unwrap().clone();
        let validator = second.validator_keyed("archive-1").unwrap();
        let stored = second.stored_verdict_async("archive-1", &path("big.txt"), &found, &validator).await.unwrap();
        assert_eq!(stored.checkpoints(), verdict.checkpoints(), "the same checkpoints, windows and all");
        assert_eq!(stored.data_offset(), verdict.data_offset());
        server.reset_counts();
        let (skip, len) = ((6 << 20) - 1000, 1000);
        let window = second
            .open_verified_window_async("archive-1", &url, &path("big.txt"), &Default::default(), &stored, skip, len)
            .await
            .unwrap()
            .unwrap();
        let bytes: Vec<u8> = window.map(|c| c.unwrap()).collect::<Vec<_>>().await.concat();
        assert_eq!(bytes, &whole[skip as usize..]);
        assert_eq!(server.requests().len(), 1);
        // Another version, another entry, another path: none.
        let other = artifact_core::http::Validator::ETag("\"other\"".into());
        assert!(second.stored_verdict_async("archive-1", &path("big.txt"), &found, &other).await.is_none());
        let a = index.find(b"a.txt").unwrap().clone();
        assert!(second.stored_verdict_async("archive-1", &path("big.txt"), &a, &validator).await.is_none());
        assert!(second.stored_verdict_async("archive-1", &path("a.txt"), &a, &validator).await.is_none());
        // A restarted first reader, without the shared cache, has it from its disk.
        let restarted = Arc::new(RemoteArchives::new(HttpOptions::default()).unwrap().with_disk_cache(disk.path()));
        restarted.index_keyed_async("archive-1", &url, &Default::default()).await.unwrap();
        assert!(restarted.stored_verdict_async("archive-1", &path("big.txt"), &found, &validator).await.is_some());
        // Every cut of the encoding is refused, never a panic.
        let encoded = verdict.encode();
        for n in 0..encoded.len() {
            assert!(VerifiedEntry::decode(&encoded[..n], &found).is_none(), "cut at {n}");
        }
        assert!(VerifiedEntry::decode(&encoded, &found).is_some());
    });
}

/// The files under `dir`, however deep.
fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}
