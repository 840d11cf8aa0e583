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
    while let Some(chunk) = std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)
    })
    .await
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
