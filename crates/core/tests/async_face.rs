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

/// What a [`Counting`] reader has been through, published as it happens.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    taken: usize,
    dropped: bool,
}

/// A reader of `left` bytes of a pattern that publishes what was taken from it and when it
/// is dropped (a reading task that ends drops its reader), so that tests wait on those
/// events instead of sleeping.
struct Counting {
    left: usize,
    seen: tokio::sync::watch::Sender<Seen>,
}

fn counting(left: usize) -> (Counting, tokio::sync::watch::Receiver<Seen>) {
    let (seen, rx) = tokio::sync::watch::channel(Seen::default());
    (Counting { left, seen }, rx)
}

impl std::io::Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left);
        buf[..n].iter_mut().enumerate().for_each(|(i, b)| *b = (i % 251) as u8);
        self.left -= n;
        self.seen.send_modify(|s| s.taken += n);
        Ok(n)
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.seen.send_modify(|s| s.dropped = true);
    }
}

/// Waits until `what` holds; `None` if it did not within `within` (a bound on a test that
/// would otherwise hang, or the window in which a forbidden event is watched for).
async fn until(
    rx: &mut tokio::sync::watch::Receiver<Seen>,
    within: std::time::Duration,
    what: impl FnMut(&Seen) -> bool,
) -> Option<Seen> {
    tokio::time::timeout(within, rx.wait_for(what)).await.ok().map(|r| *r.expect("the reader publishes until dropped"))
}

const LONG: std::time::Duration = std::time::Duration::from_secs(30);
/// Chunks the reading task keeps ready ahead of its consumer (`AHEAD` in async_io.rs), and
/// the least and most a chunk holds.
const AHEAD: usize = 2;
const MIN_CHUNK: usize = 64 * 1024;
const MAX_CHUNK: usize = 256 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_slows_the_reader_and_a_fast_one_gets_everything() {
    use futures_util::StreamExt;
    let len = 64 << 20;
    let (reader, mut seen) = counting(len);
    let mut stream = artifact_core::stream_reader(reader);
    let first = stream.next().await.unwrap().unwrap();
    // The consumer stalls. The reader fills its read-ahead (the event waited for), then
    // parks: in the window after that, it must not read on.
    let full = first.len() + AHEAD * MIN_CHUNK;
    until(&mut seen, LONG, |s| s.taken >= full).await.expect("the reader fills its read-ahead");
    let bound = first.len() + AHEAD * MAX_CHUNK;
    let over = until(&mut seen, std::time::Duration::from_millis(300), |s| s.taken > bound).await;
    assert!(over.is_none(), "read {over:?} ahead of a stalled consumer (at most {bound})");
    // Resumed, it gets every byte.
    let mut total = first.len();
    while let Some(chunk) = stream.next().await {
        total += chunk.unwrap().len();
    }
    assert_eq!(total, len);
    assert_eq!(seen.borrow().taken, len);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_stops_the_reading() {
    use futures_util::StreamExt;
    let (reader, mut seen) = counting(1 << 30);
    let mut stream = artifact_core::stream_reader(reader);
    stream.next().await.unwrap().unwrap();
    drop(stream);
    // The reading task notices, ends and drops the reader: after that nothing can read.
    let last = until(&mut seen, LONG, |s| s.dropped).await.expect("the reader is dropped");
    assert!(last.taken < 4 << 20, "kept reading after the drop: {} bytes", last.taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_skips_then_yields_exactly_its_bytes() {
    use futures_util::StreamExt;
    let mut stream = artifact_core::stream_window(counting(10 << 20).0, 3 << 20, 1000);
    let mut total = 0;
    while let Some(chunk) = stream.next().await {
        total += chunk.unwrap().len();
    }
    assert_eq!(total, 1000);
    // A window past the end is an error, not a short stream.
    let mut stream = artifact_core::stream_window(counting(100).0, 50, 100);
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        failed |= chunk.is_err();
    }
    assert!(failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_window_stops_the_skipping() {
    let (reader, mut seen) = counting(usize::MAX);
    let stream = artifact_core::stream_window(reader, u64::MAX / 2, 10);
    let mut stream = Box::pin(stream);
    // Start the task: it is skipping (reading and dropping) once bytes are taken.
    let next = futures_util::StreamExt::next(&mut stream);
    tokio::pin!(next);
    tokio::select! {
        _ = &mut next => panic!("nothing to yield while skipping"),
        skipping = until(&mut seen, LONG, |s| s.taken > 0) => { skipping.expect("the skipping starts"); }
    }
    drop(stream);
    // Walked away from: the task ends and drops the reader, far short of the window.
    let last = until(&mut seen, LONG, |s| s.dropped).await.expect("the reader is dropped");
    assert!(last.taken < 1 << 40, "skipped {} bytes", last.taken);
}
