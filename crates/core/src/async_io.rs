//! The async face: an entry as a `Stream` of `Bytes` and as an `AsyncRead`.
//!
//! Local reads block, so each chunk is read by one short task on tokio's blocking pool, and
//! only when the consumer asks for it. No thread waits on a slow consumer: a server with
//! thousands of slow downloads holds thousands of readers, not thousands of threads, and
//! each stream keeps at most the one chunk its consumer has not taken yet.

use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::task::JoinHandle;

use crate::reader::EntryReader;

/// Size of the chunks an [`EntryStream`] yields at most.
pub(crate) const CHUNK: usize = 64 * 1024;

type BoxRead = Box<dyn Read + Send + 'static>;

/// A stream of an entry's verified bytes (or of any reader given to [`stream_reader`]); the
/// last item is an error instead of the end if the size or CRC-32 is wrong. Dropping it
/// stops the reading.
pub struct EntryStream {
    state: State,
}

enum State {
    Idle(BoxRead),
    Reading(JoinHandle<(BoxRead, io::Result<Bytes>)>),
    Done,
}

impl std::fmt::Debug for EntryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Idle(_) => "idle",
            State::Reading(_) => "reading",
            State::Done => "done",
        };
        f.debug_struct("EntryStream").field("state", &state).finish()
    }
}

/// Streams `reader`. Must be polled within a tokio runtime.
pub fn stream_entry(reader: EntryReader) -> EntryStream {
    stream_reader(reader)
}

/// Streams any blocking reader the same way (an entry's raw bytes, a range of an archive):
/// chunks of up to 64 KiB, each read on the blocking pool when asked for, an error as the
/// last item. Must be polled within a tokio runtime.
pub fn stream_reader(reader: impl Read + Send + 'static) -> EntryStream {
    EntryStream { state: State::Idle(Box::new(reader)) }
}

fn read_chunk(mut reader: BoxRead) -> (BoxRead, io::Result<Bytes>) {
    let mut buf = BytesMut::zeroed(CHUNK);
    let result = loop {
        match reader.read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                break Ok(buf.freeze());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
    };
    (reader, result)
}

impl futures_core::Stream for EntryStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return Poll::Ready(None),
                State::Idle(reader) => {
                    self.state = State::Reading(tokio::task::spawn_blocking(move || read_chunk(reader)));
                }
                State::Reading(mut task) => match Pin::new(&mut task).poll(cx) {
                    Poll::Pending => {
                        self.state = State::Reading(task);
                        return Poll::Pending;
                    }
                    Poll::Ready(Ok((_, Ok(chunk)))) if chunk.is_empty() => return Poll::Ready(None),
                    Poll::Ready(Ok((reader, Ok(chunk)))) => {
                        self.state = State::Idle(reader);
                        return Poll::Ready(Some(Ok(chunk)));
                    }
                    Poll::Ready(Ok((_, Err(e)))) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(Err(join)) => {
                        return Poll::Ready(Some(Err(io::Error::other(format!("the reading task failed: {join}")))));
                    }
                },
            }
        }
    }
}

impl Drop for EntryStream {
    fn drop(&mut self) {
        // A read in flight finishes on its own (blocking tasks cannot be interrupted); its
        // result is dropped with the handle.
        if let State::Reading(task) = &self.state {
            task.abort();
        }
    }
}

/// The entry as a `tokio::io::AsyncRead`.
pub fn entry_async_reader(reader: EntryReader) -> tokio_util::io::StreamReader<EntryStream, Bytes> {
    tokio_util::io::StreamReader::new(stream_entry(reader))
}
