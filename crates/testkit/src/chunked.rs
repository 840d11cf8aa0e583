//! A source that splits every read into small ones.

use std::io::{self, Read};

use artifact_core::{RangeReader, ReadStats, Source};

/// Wraps a source so that every read returns at most `max` bytes per call to the inner
/// source: a test tool that proves parsing does not depend on read sizes.
#[derive(Debug)]
pub struct ChunkedSource<S> {
    inner: S,
    max: usize,
}

impl<S: Source> ChunkedSource<S> {
    /// Splits every read of `inner` into reads of at most `max` bytes (at least 1).
    pub fn new(inner: S, max: usize) -> ChunkedSource<S> {
        ChunkedSource { inner, max: max.max(1) }
    }
}

impl<S: Source> Source for ChunkedSource<S> {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut at = offset;
        for chunk in buf.chunks_mut(self.max) {
            self.inner.read_exact_at(at, chunk)?;
            at += chunk.len() as u64;
        }
        Ok(())
    }
    fn read_stream(&self, offset: u64, len: u64) -> io::Result<RangeReader> {
        Ok(Box::new(Chunked { inner: self.inner.read_stream(offset, len)?, max: self.max }))
    }
    fn stats(&self) -> ReadStats {
        self.inner.stats()
    }
}

/// Hands out at most `max` bytes per read.
struct Chunked {
    inner: RangeReader,
    max: usize,
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.max);
        self.inner.read(&mut buf[..n])
    }
}
