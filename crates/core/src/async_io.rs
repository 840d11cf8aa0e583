//! The async face: an entry as a `Stream` of `Bytes` and as an `AsyncRead`.
//!
//! Local reads block, so chunks are read by a task on tokio's blocking pool. The task keeps
//! reading while the consumer keeps up, and parks (ends, handing its reader back) as soon as
//! [`AHEAD`] chunks wait unread; the consumer's next take starts it again. A fast stream thus
//! costs one task for many chunks, and a slow one holds no thread at all: a server with
//! thousands of slow downloads holds thousands of readers, not thousands of threads, and at
//! most `AHEAD` chunks each. Chunks shrink as streams multiply, so that all of them together
//! stay within [`READ_AHEAD_BUDGET`].
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::reader::EntryReader;

/// Chunk size after a park (and at the start): what a slow consumer's stream holds.
const MIN_CHUNK: usize = 64 * 1024;
/// Chunk size a stream grows to while its consumer keeps up (larger chunks inflate faster:
/// 1 GiB takes 1.67 s in 256 KiB chunks against 2.0 s in 64 KiB ones).
const MAX_CHUNK: usize = 256 * 1024;
/// Chunks read ahead of the consumer at most.
const AHEAD: usize = 2;
/// Bytes of chunks that all streams of the process may hold between them, counted from
/// when a chunk is read until its consumer (hyper, say) drops it. Past it, chunks are
/// [`FLOOR_CHUNK`]s: memory stays near this budget plus a few small chunks per stream.
const READ_AHEAD_BUDGET: usize = 32 << 20;
/// The chunk size once the budget is spent.
const FLOOR_CHUNK: usize = 16 * 1024;

/// Bytes of chunks alive in this process (see [`READ_AHEAD_BUDGET`]).
static OUTSTANDING: AtomicUsize = AtomicUsize::new(0);

/// A chunk's memory, counted in [`OUTSTANDING`] until it is dropped.
struct Counted(Vec<u8>);

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        OUTSTANDING.fetch_sub(self.0.capacity(), Ordering::Relaxed);
    }
}

/// The largest chunk a stream may read now.
fn chunk_limit() -> usize {
    if OUTSTANDING.load(Ordering::Relaxed) < READ_AHEAD_BUDGET { MAX_CHUNK } else { FLOOR_CHUNK }
}

type BoxRead = Box<dyn Read + Send + 'static>;

/// A stream of an entry's verified bytes (or of any reader given to [`stream_reader`]); the
/// last item is an error instead of the end if the size or CRC-32 is wrong. Dropping it
/// stops the reading.
pub struct EntryStream {
    shared: Arc<Mutex<Shared>>,
}

/// What a reading task carries: the reader and where it is in its window.
struct Work {
    reader: BoxRead,
    chunk: usize,
    /// Bytes still to read and drop before the first chunk.
    skip: u64,
    /// Bytes still to yield (`u64::MAX`: until the reader ends); ending short is an error.
    left: u64,
}

struct Shared {
    ready: VecDeque<io::Result<Bytes>>,
    /// The reader while no task runs.
    parked: Option<Work>,
    /// The reader reached its end or failed.
    finished: bool,
    /// The consumer dropped the stream.
    closed: bool,
    waker: Option<Waker>,
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl std::fmt::Debug for EntryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = lock(&self.shared);
        f.debug_struct("EntryStream").field("ready", &s.ready.len()).field("finished", &s.finished).finish()
    }
}

/// Streams `reader`. Must be polled within a tokio runtime.
pub fn stream_entry(reader: EntryReader) -> EntryStream {
    stream_reader(reader)
}

/// Streams any blocking reader the same way (an entry's raw bytes, a range of an archive):
/// chunks of 64 to 256 KiB read on the blocking pool, an error as the last item. Must be
/// polled within a tokio runtime.
pub fn stream_reader(reader: impl Read + Send + 'static) -> EntryStream {
    stream_with(Box::new(reader), 0, u64::MAX)
}

/// Streams bytes `skip..skip + len` of `reader`: the first `skip` are read and dropped (a
/// deflated entry cannot seek), in chunk-sized steps that stop as soon as the stream is
/// dropped; then exactly `len` bytes, an early end being an `UnexpectedEof` error.
pub fn stream_window(reader: impl Read + Send + 'static, skip: u64, len: u64) -> EntryStream {
    stream_with(Box::new(reader), skip, len)
}

fn stream_with(reader: BoxRead, skip: u64, left: u64) -> EntryStream {
    let work = Work { reader, chunk: MIN_CHUNK, skip, left };
    let shared = Shared { ready: VecDeque::new(), parked: Some(work), finished: false, closed: false, waker: None };
    EntryStream { shared: Arc::new(Mutex::new(shared)) }
}

/// Reads the next chunk (empty at the end), or drops one chunk's worth of skipped bytes
/// (`Ok(None)`).
fn read_chunk(work: &mut Work) -> io::Result<Option<Bytes>> {
    let chunk = work.chunk.min(chunk_limit());
    let want = if work.skip > 0 { work.skip.min(MAX_CHUNK as u64) } else { work.left.min(chunk as u64) } as usize;
    if want == 0 {
        return Ok(Some(Bytes::new()));
    }
    // Each chunk gets its own allocation of exactly its size: a chunk a slow client has not
    // taken yet then pins only itself, never a larger shared buffer.
    let mut buf = vec![0u8; want];
    let n = loop {
        match work.reader.read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    let bounded = work.skip > 0 || work.left != u64::MAX;
    if n == 0 && bounded {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the source ended before the requested range"));
    }
    if work.skip > 0 {
        work.skip -= n as u64;
        return Ok(None);
    }
    if work.left != u64::MAX {
        work.left -= n as u64;
    }
    if n == 0 {
        return Ok(Some(Bytes::new()));
    }
    buf.truncate(n);
    OUTSTANDING.fetch_add(buf.capacity(), Ordering::Relaxed);
    Ok(Some(Bytes::from_owner(Counted(buf))))
}

/// Reads chunks until the end, an error, a closed stream or `AHEAD` unread chunks.
fn run(shared: Arc<Mutex<Shared>>, mut work: Work) {
    loop {
        let item = match read_chunk(&mut work) {
            Ok(None) => {
                // Skipping: nothing to hand over, but stop if nobody listens any more.
                if lock(&shared).closed {
                    return;
                }
                continue;
            }
            Ok(Some(chunk)) => Ok(chunk),
            Err(e) => Err(e),
        };
        let end = !matches!(&item, Ok(chunk) if !chunk.is_empty());
        let mut s = lock(&shared);
        if s.closed {
            return;
        }
        s.ready.push_back(item);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
        if end {
            s.finished = true;
            return;
        }
        if s.ready.len() >= AHEAD {
            // The consumer is the slow side: small chunks, no thread.
            work.chunk = MIN_CHUNK.min(chunk_limit());
            s.parked = Some(work);
            return;
        }
        work.chunk = (work.chunk * 2).min(MAX_CHUNK);
    }
}

fn start(shared: &Arc<Mutex<Shared>>, s: &mut Shared) {
    if let Some(work) = s.parked.take() {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || run(shared, work));
    }
}

impl futures_core::Stream for EntryStream {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut s = lock(&self.shared);
        if let Some(item) = s.ready.pop_front() {
            if !s.finished {
                start(&self.shared, &mut s);
            }
            return match item {
                Ok(chunk) if chunk.is_empty() => Poll::Ready(None),
                other => Poll::Ready(Some(other)),
            };
        }
        if s.finished {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        start(&self.shared, &mut s);
        Poll::Pending
    }
}

impl Drop for EntryStream {
    fn drop(&mut self) {
        let mut s = lock(&self.shared);
        s.closed = true;
        s.ready.clear();
        s.parked = None;
    }
}

/// The entry as a `tokio::io::AsyncRead`.
pub fn entry_async_reader(reader: EntryReader) -> tokio_util::io::StreamReader<EntryStream, Bytes> {
    tokio_util::io::StreamReader::new(stream_entry(reader))
}
