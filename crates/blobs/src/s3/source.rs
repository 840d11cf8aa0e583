//! The read side of one object: [`S3Source`], a [`Source`] of ranged `GET`s, and its readers.

use std::io::{self, Read};
use std::ops::Range;
use std::sync::Arc;

use artifact_core::{RangeReader, ReadCounter, ReadStats, Source};
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};

use super::{run, to_io};

/// Ranges read whole in one request (a small file's local header and data) rather than
/// streamed through a channel.
const WHOLE_READ: u64 = 256 << 10;
/// Chunks a ranged read keeps ahead of its reader.
const READ_AHEAD: usize = 2;

/// One object as a [`Source`]: every read a ranged `GET`.
#[derive(Debug, Clone)]
pub(super) struct S3Source {
    pub(super) store: Arc<AmazonS3>,
    pub(super) path: Path,
    pub(super) size: u64,
    /// The blob's last bytes, when the opening read brought them.
    pub(super) tail: Bytes,
    pub(super) handle: tokio::runtime::Handle,
    pub(super) counter: Arc<ReadCounter>,
}

impl S3Source {
    fn check(&self, offset: u64, len: u64) -> io::Result<Range<u64>> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(offset..end),
            _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "range past the end of the blob")),
        }
    }
}

impl Source for S3Source {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let bytes = self.read_bytes(offset, buf.len())?;
        buf.copy_from_slice(&bytes);
        Ok(())
    }

    fn read_bytes(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        let range = self.check(offset, len as u64)?;
        if len == 0 {
            return Ok(Bytes::new());
        }
        let tail_start = self.size - self.tail.len() as u64;
        if offset >= tail_start {
            let at = (offset - tail_start) as usize;
            return Ok(self.tail.slice(at..at + len));
        }
        let (store, path) = (self.store.clone(), self.path.clone());
        self.counter.record_request();
        let bytes = run(&self.handle, async move { store.get_range(&path, range).await }).map_err(to_io)?;
        self.counter.record_bytes(bytes.len());
        if bytes.len() != len {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the storage answered a short range"));
        }
        Ok(bytes)
    }

    /// One `GET` of the range: read whole when it is small (one wait, no channel), else
    /// streamed a few chunks ahead of the reader; dropping the reader stops it.
    fn read_stream(&self, offset: u64, len: u64) -> io::Result<RangeReader> {
        let range = self.check(offset, len)?;
        let tail_start = self.size - self.tail.len() as u64;
        if offset >= tail_start {
            // Within the bytes the opening read brought (a small blob, the end of an archive).
            let at = (offset - tail_start) as usize;
            return Ok(Box::new(io::Cursor::new(self.tail.slice(at..at + len as usize))));
        }
        if len <= WHOLE_READ {
            // A small file's header and data: one request, its body in one piece, made at
            // the first read (the reader may be made on an async worker and read elsewhere).
            let source = S3Source { tail: Bytes::new(), ..self.clone() };
            return Ok(Box::new(WholeRange {
                source,
                range: Some((offset, len as usize)),
                read: io::Cursor::default(),
            }));
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(READ_AHEAD);
        let (store, path, counter) = (self.store.clone(), self.path.clone(), self.counter.clone());
        counter.record_request();
        self.handle.spawn(async move {
            let options = GetOptions { range: Some(GetRange::Bounded(range)), ..GetOptions::default() };
            let mut stream = match store.get_opts(&path, options).await {
                Ok(got) => got.into_stream(),
                Err(e) => {
                    let _ = tx.send(Err(to_io(e))).await;
                    return;
                }
            };
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(to_io);
                if let Ok(bytes) = &chunk {
                    counter.record_bytes(bytes.len());
                }
                // Waits (without a thread) while the reader is behind.
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        });
        Ok(Box::new(StreamReader { rx, current: Bytes::new(), left: len }))
    }

    fn stats(&self) -> ReadStats {
        self.counter.snapshot()
    }
}

/// A small range of [`S3Source::read_stream`]: read whole with one request at the first
/// `read`.
struct WholeRange {
    source: S3Source,
    /// Offset and length, until read.
    range: Option<(u64, usize)>,
    read: io::Cursor<Bytes>,
}

impl Read for WholeRange {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((offset, len)) = self.range.take() {
            self.read = io::Cursor::new(self.source.read_bytes(offset, len)?);
        }
        self.read.read(buf)
    }
}

/// The reading end of [`S3Source::read_stream`].
struct StreamReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    left: u64,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        while self.current.is_empty() {
            // A reader's thread may block (the blobs are read off the async workers).
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the storage ended the range early"));
                }
            }
        }
        let n = buf.len().min(self.current.len()).min(self.left as usize);
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        self.left -= n as u64;
        Ok(n)
    }
}
