//! The async face yields the same verified bytes as the blocking one, and reports a bad
//! CRC as an error item instead of the end of the stream.

mod common;

use std::sync::Arc;

use artifact_core::{Archive, ArtifactPath, MemorySource, entry_async_reader, stream_entry};
use common::*;
use tokio::io::AsyncReadExt;

fn open(bytes: Vec<u8>, name: &str) -> artifact_core::EntryReader {
    let archive = Archive::open(Arc::new(MemorySource::new(bytes))).unwrap();
    let entry = archive.find(&ArtifactPath::new(name).unwrap()).unwrap();
    archive.reader(&entry).unwrap()
}

#[tokio::test]
async fn stream_and_async_read_match_the_blocking_reader() {
    let data = text(3_000_000, 11);
    let bytes = build(&[deflated("big.txt", data.clone())]);
    let mut stream = stream_entry(open(bytes.clone(), "big.txt"));
    let mut collected = Vec::new();
    while let Some(chunk) =
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)).await
    {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= 256 * 1024, "chunks are bounded");
        collected.extend_from_slice(&chunk);
    }
    assert_eq!(collected, data);

    let mut out = Vec::new();
    entry_async_reader(open(bytes, "big.txt")).read_to_end(&mut out).await.unwrap();
    assert_eq!(out, data);
}

#[tokio::test]
async fn a_crc_mismatch_is_an_error_not_an_end() {
    let data = text(600_000, 2);
    let mut bytes = build(&[stored("s.txt", data)]);
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    let mut out = Vec::new();
    let err = entry_async_reader(open(bytes, "s.txt")).read_to_end(&mut out).await.unwrap_err();
    assert!(err.to_string().contains("CRC-32 mismatch"), "{err}");
}

/// A reader of `len` bytes of a pattern that counts what was taken from it.
struct Counting {
    left: usize,
    taken: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::io::Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left);
        buf[..n].iter_mut().enumerate().for_each(|(i, b)| *b = (i % 251) as u8);
        self.left -= n;
        self.taken.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
        Ok(n)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_slows_the_reader_and_a_fast_one_gets_everything() {
    use futures_util::StreamExt;
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let len = 64 << 20;
    let mut stream = artifact_core::stream_reader(Counting { left: len, taken: taken.clone() });
    let first = stream.next().await.unwrap().unwrap();
    // The consumer stalls: the reader parks after a bounded read-ahead (2 chunks of at most
    // 256 KiB), instead of reading the 64 MiB into memory.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let read = taken.load(std::sync::atomic::Ordering::SeqCst);
    assert!(read <= first.len() + 2 * 256 * 1024, "read {read} bytes ahead of a stalled consumer");
    // Resumed, it gets every byte.
    let mut total = first.len();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        total += chunk.len();
    }
    assert_eq!(total, len);
    assert_eq!(taken.load(std::sync::atomic::Ordering::SeqCst), len);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_stops_the_reading() {
    use futures_util::StreamExt;
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut stream = artifact_core::stream_reader(Counting { left: 1 << 30, taken: taken.clone() });
    stream.next().await.unwrap().unwrap();
    drop(stream);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let read = taken.load(std::sync::atomic::Ordering::SeqCst);
    assert!(read < 4 << 20, "kept reading after the drop: {read} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_skips_then_yields_exactly_its_bytes() {
    use futures_util::StreamExt;
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut stream = artifact_core::stream_window(Counting { left: 10 << 20, taken: taken.clone() }, 3 << 20, 1000);
    let mut total = 0;
    while let Some(chunk) = stream.next().await {
        total += chunk.unwrap().len();
    }
    assert_eq!(total, 1000);
    // A window past the end is an error, not a short stream.
    let mut stream = artifact_core::stream_window(Counting { left: 100, taken: taken.clone() }, 50, 100);
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        failed |= chunk.is_err();
    }
    assert!(failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_window_stops_the_skipping() {
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stream = artifact_core::stream_window(Counting { left: usize::MAX, taken: taken.clone() }, u64::MAX / 2, 10);
    let mut stream = Box::pin(stream);
    // Start the task, then walk away.
    let started =
        tokio::time::timeout(std::time::Duration::from_millis(50), futures_util::StreamExt::next(&mut stream)).await;
    assert!(started.is_err(), "nothing to yield while skipping");
    drop(stream);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let after_drop = taken.load(std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(taken.load(std::sync::atomic::Ordering::SeqCst), after_drop, "still skipping after the drop");
}
