//! The async face: an entry as a `Stream` of `Bytes` and as an `AsyncRead`.
//!
//! Local reads block, so the blocking [`EntryReader`] runs on tokio's blocking pool and hands
//! chunks over a channel of two slots: memory stays at a few chunks whatever the entry's
//! size, and a slow consumer slows the reader down instead of queueing data.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::reader::EntryReader;

/// Size of the chunks an [`EntryStream`] yields.
pub(crate) const CHUNK: usize = 256 * 1024;

/// A stream of an entry's verified bytes (or of any reader given to [`stream_reader`]); the
/// last item is an error instead of the end if the size or CRC-32 is wrong. Dropping it
/// stops the reading.
#[derive(Debug)]
pub struct EntryStream {
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

/// Streams `reader` on tokio's blocking pool. Must be called within a tokio runtime.
pub fn stream_entry(reader: EntryReader) -> EntryStream {
    stream_reader(reader)
}

/// Streams any blocking reader the same way (an entry's raw bytes, a range of an archive):
/// 256 KiB chunks, two in flight, an error as the last item. Must be called within a tokio
/// runtime.
pub fn stream_reader(mut reader: impl std::io::Read + Send + 'static) -> EntryStream {
    let (tx, rx) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        // One allocation serves many chunks: each chunk is split off its front, and once the
        // consumer has dropped the earlier ones, `reserve` takes the space back.
        let mut buf = BytesMut::with_capacity(4 * CHUNK);
        loop {
            buf.reserve(CHUNK);
            buf.resize(CHUNK, 0);
            let item = match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    Ok(buf.split().freeze())
                }
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    EntryStream { rx }
}

impl futures_core::Stream for EntryStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// The entry as a `tokio::io::AsyncRead`.
pub fn entry_async_reader(reader: EntryReader) -> tokio_util::io::StreamReader<EntryStream, Bytes> {
    tokio_util::io::StreamReader::new(stream_entry(reader))
}
