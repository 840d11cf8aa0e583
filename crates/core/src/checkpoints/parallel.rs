//! [`ParallelReader`]: a whole entry from segments inflated on several threads, in order.
#![forbid(unsafe_code)]

use super::*;

/// A segment's bytes and their CRC-32, or why they could not be inflated.
type Segment = io::Result<(Vec<u8>, crc32fast::Hasher)>;

/// Buffers to reuse.
type Pool = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// A segment's inflating, as handed to an [`InflatePool`].
pub type InflateWork = Box<dyn FnOnce() + Send>;

/// Where a [`ParallelReader`]'s segments are inflated: any pool of threads that may block.
/// The default is [`SharedThreads`]; with the `tokio` feature a runtime's
/// [`Handle`](tokio::runtime::Handle) is one too (its blocking pool).
///
/// The contract: each piece of work reads its segment's compressed bytes from the source
/// (which may block on I/O for as long as the source's own timeouts allow) and inflates
/// them (about 4 MiB of output); it must run eventually, on any thread but the reader's
/// own (running it inline in `spawn` is allowed too), or the reader waits for it forever.
/// Work the pool drops fails the reader ("an inflating thread stopped"), never gives it
/// wrong bytes. A reader has at most as many pieces in the pool at once as the `threads`
/// it was made with; a reader dropped meanwhile leaves its pieces to end at once, unread.
pub trait InflatePool: Send + Sync {
    /// Runs `work` on one of the pool's threads.
    fn spawn(&self, work: InflateWork);
}

/// The process's own inflating threads: as many as the machine has cores (at least 2),
/// named `artifact-inflate`, started on first use, shared by every reader that has no pool
/// of its own and kept for the life of the process. A piece of work that panics leaves its
/// thread serving the next; if no thread can be started, the work runs on the reader's
/// thread instead (as it reads).
#[derive(Debug, Clone, Copy, Default)]
pub struct SharedThreads;

impl InflatePool for SharedThreads {
    fn spawn(&self, work: InflateWork) {
        static QUEUE: std::sync::OnceLock<std::sync::mpsc::Sender<InflateWork>> = std::sync::OnceLock::new();
        let queue = QUEUE.get_or_init(|| {
            let (queue, work) = std::sync::mpsc::channel::<InflateWork>();
            let work = std::sync::Arc::new(std::sync::Mutex::new(work));
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
            for _ in 0..threads {
                let work = work.clone();
                let spawned = std::thread::Builder::new().name("artifact-inflate".into()).spawn(move || {
                    loop {
                        let next = work.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(next) = next else { return };
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(next));
                    }
                });
                drop(spawned);
            }
            queue
        });
        // The receiving threads never stop while the queue lives (for the whole process);
        // if none could be started, the work comes back and runs here.
        if let Err(std::sync::mpsc::SendError(work)) = queue.send(work) {
            work();
        }
    }
}

#[cfg(feature = "tokio")]
impl InflatePool for tokio::runtime::Handle {
    fn spawn(&self, work: InflateWork) {
        drop(self.spawn_blocking(work));
    }
}

/// Inflates `len` bytes into a buffer from `free` (or a new one), with their CRC-32; stops
/// early once `dropped` is set (the reader is gone).
fn inflate_segment(
    mut inflater: Inflating<crate::RangeReader>,
    len: u64,
    free: &Pool,
    dropped: &std::sync::atomic::AtomicBool,
) -> Segment {
    let gone = || io::Error::other("the reader was dropped");
    if dropped.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(gone());
    }
    let mut out = free.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default();
    out.resize(len as usize, 0);
    let mut crc = crc32fast::Hasher::new();
    // In pieces that are still in the cache when their CRC-32 is taken.
    for piece in out.chunks_mut(256 * 1024) {
        if dropped.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(gone());
        }
        inflater.read_exact(piece)?;
        crc.update(piece);
    }
    Ok((out, crc))
}

/// How long the first segment may take to be read for the reader to go parallel.
pub const KEEPING_UP: std::time::Duration = std::time::Duration::from_millis(100);

/// Asked, once the first segment was read fast enough, for the right to use more threads:
/// a guard held until the reader is dropped, or `None` (stay on one thread).
pub type Gate = Box<dyn FnOnce() -> Option<Box<dyn Send>> + Send>;

/// The whole entry from segments inflated in parallel; see
/// [`EntryCheckpoints::parallel_reader`].
pub struct ParallelReader {
    checkpoints: std::sync::Arc<EntryCheckpoints>,
    source: std::sync::Arc<dyn Source>,
    data: u64,
    name: String,
    threads: usize,
    /// Inflating on the reader's thread: the first segment, and the rest too unless the
    /// reader went parallel after it.
    serial: Option<Inflating<crate::RangeReader>>,
    /// Asked once, after the first segment.
    may: Option<Gate>,
    /// What `may` gave: held while the threads run.
    guard: Option<Box<dyn Send>>,
    started: std::time::Instant,
    /// Where segments are inflated once the reader went parallel.
    pool: std::sync::Arc<dyn InflatePool>,
    parallel: bool,
    /// Set when the reader is dropped: its pieces still in the pool end at once.
    dropped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Outcomes of submitted segments, in order.
    pending: std::collections::VecDeque<std::sync::mpsc::Receiver<Segment>>,
    /// Segment buffers read and given back, for the threads to fill again (no fresh
    /// pages, no zeroing).
    free: Pool,
    submitted: usize,
    /// Segments inflated ahead now: grows to `max_ahead` while the reader waits for them.
    ahead: usize,
    max_ahead: usize,
    current: Vec<u8>,
    at: usize,
    crc: crc32fast::Hasher,
    produced: u64,
    finished: bool,
}

impl std::fmt::Debug for ParallelReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelReader").field("name", &self.name).field("produced", &self.produced).finish()
    }
}

impl ParallelReader {
    /// Inflates on `pool` instead of [`SharedThreads`] once the reader goes parallel.
    pub fn with_pool(mut self, pool: std::sync::Arc<dyn InflatePool>) -> ParallelReader {
        self.pool = pool;
        self
    }

    /// Where reading on this thread stops for now: the first checkpoint until the decision
    /// is made, then the end.
    fn serial_end(&self) -> u64 {
        match self.checkpoints.points.first() {
            Some(p) if self.may.is_some() => p.out,
            _ => self.checkpoints.size,
        }
    }

    /// At the first checkpoint, once: a reader that kept up goes parallel (`serial`
    /// dropped, threads started); otherwise it stays on this thread to the end.
    fn decide(&mut self) -> io::Result<()> {
        let Some(boundary) = self.checkpoints.points.first().map(|p| p.out) else { return Ok(()) };
        if self.produced != boundary {
            return Ok(());
        }
        let Some(may) = self.may.take() else { return Ok(()) };
        if self.started.elapsed() > KEEPING_UP || self.threads < 2 {
            return Ok(());
        }
        let Some(guard) = may() else { return Ok(()) };
        self.guard = Some(guard);
        self.serial = None;
        self.submitted = 1;
        self.parallel = true;
        self.submit()
    }

    /// Reads the next piece on this thread into `current`: up to the first checkpoint
    /// until the decision is made, then to the end. At the first checkpoint, a reader that
    /// kept up goes parallel (`serial` dropped, threads started).
    fn read_serial(&mut self) -> io::Result<()> {
        self.decide()?;
        if self.serial.is_none() {
            return Ok(());
        }
        let end = self.serial_end();
        let Some(serial) = &mut self.serial else { return Ok(()) };
        let want = (end - self.produced).min(256 * 1024) as usize;
        self.current.resize(want, 0);
        let n = serial.read(&mut self.current)?;
        if n == 0 {
            // Never with bytes still due (the inflater errs instead); not a loop if it did.
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the entry ended early"));
        }
        self.current.truncate(n);
        self.crc.update(&self.current);
        self.produced += n as u64;
        self.at = 0;
        Ok(())
    }

    /// Submits segments until `ahead` are pending or none are left.
    fn submit(&mut self) -> io::Result<()> {
        if !self.parallel {
            return Ok(());
        }
        while self.pending.len() < self.ahead && self.submitted < self.checkpoints.segments() {
            let (start, len) = self.checkpoints.segment(self.submitted);
            let inflater = self.checkpoints.inflater(&*self.source, self.data, start, &self.name)?;
            let (done, outcome) = std::sync::mpsc::sync_channel(1);
            let (free, dropped) = (self.free.clone(), self.dropped.clone());
            self.pool.spawn(Box::new(move || {
                // A reader dropped meanwhile no longer takes it.
                let _ = done.send(inflate_segment(inflater, len, &free, &dropped));
            }));
            self.pending.push_back(outcome);
            self.submitted += 1;
        }
        Ok(())
    }
}

impl Read for ParallelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // On one thread with nothing buffered: straight into `buf` (no buffer of its own,
        // as a plain entry reader).
        if self.at == self.current.len() && !buf.is_empty() && self.serial.is_some() {
            self.decide()?;
        }
        if self.at == self.current.len()
            && !buf.is_empty()
            && self.produced < self.checkpoints.size
            && self.serial.is_some()
        {
            let end = self.serial_end();
            if let Some(serial) = &mut self.serial
                && self.produced < end
            {
                let want = buf.len().min((end - self.produced) as usize);
                let n = serial.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the entry ended early"));
                }
                self.crc.update(&buf[..n]);
                self.produced += n as u64;
                return Ok(n);
            }
        }
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl Drop for ParallelReader {
    fn drop(&mut self) {
        self.dropped.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The segments as they are: a writer can take them without another copy.
impl BufRead for ParallelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.at == self.current.len() {
            if self.serial.is_some() && self.produced < self.checkpoints.size {
                self.read_serial()?;
                if self.serial.is_some() {
                    continue;
                }
            }
            let Some(next) = self.pending.pop_front() else {
                if !self.finished {
                    let (e, name) = (&self.checkpoints, self.name.clone());
                    let found = self.crc.clone().finalize();
                    if self.produced != e.size {
                        let corruption = Corruption::SizeMismatch { name, expected: e.size, found: self.produced };
                        return Err(Error::from(corruption).into());
                    }
                    if found != e.crc32 {
                        return Err(Error::from(Corruption::CrcMismatch { name, expected: e.crc32, found }).into());
                    }
                    self.finished = true;
                }
                return Ok(&[]);
            };
            let outcome = match next.try_recv() {
                Ok(outcome) => outcome,
                Err(_) => {
                    // The reader is faster than the inflating (the first segment is always
                    // waited for, and says nothing): inflate more at once.
                    if self.produced > 0 {
                        self.ahead = (self.ahead + 1).min(self.max_ahead);
                    }
                    next.recv().map_err(|_| io::Error::other("an inflating thread stopped"))?
                }
            };
            let (bytes, crc) = outcome?;
            self.crc.combine(&crc);
            self.produced += bytes.len() as u64;
            let done = std::mem::replace(&mut self.current, bytes);
            self.at = 0;
            if done.capacity() > 0 {
                self.free.lock().unwrap_or_else(|p| p.into_inner()).push(done);
            }
            self.submit()?;
        }
        Ok(&self.current[self.at..])
    }

    fn consume(&mut self, n: usize) {
        self.at = (self.at + n).min(self.current.len());
    }
}

impl EntryCheckpoints {
    /// The whole entry, verified, its segments (from one checkpoint to the next) inflated
    /// on up to `threads` threads at once and read in order. Each segment's CRC-32 is
    /// computed where it is inflated and the entry's is combined from them; a size or
    /// CRC-32 that does not match the central directory is an error instead of the end
    /// (the bytes before it were already read, as with any streamed entry). The first
    /// segment is inflated on the reader's thread as it reads; the threads start after it,
    /// if it was read within [`KEEPING_UP`] (else the rest is read the same way: a slow
    /// consumer gets no threads). Memory once parallel: at most `threads` segments
    /// (`spacing` bytes each) ahead of the reader, one while the reader is the slower side
    /// (the lead grows each time it has to wait for a segment). The segments are
    /// inflated on [`SharedThreads`], or the pool given to
    /// [`ParallelReader::with_pool`]; dropping the reader ends its pieces still in the pool
    /// at once (at their next 256 KiB).
    pub fn parallel_reader<S: Source + Clone + 'static>(
        self: &std::sync::Arc<Self>,
        archive: &crate::Archive<S>,
        entry: &Entry,
        threads: usize,
    ) -> Result<ParallelReader> {
        self.parallel_reader_when(archive, entry, threads, Box::new(|| Some(Box::new(()))))
    }

    /// [`parallel_reader`](Self::parallel_reader) that goes parallel only for a reader that
    /// keeps up: the first segment is inflated on the reader's own thread as it reads, and
    /// only if that took at most [`KEEPING_UP`] does `may` get asked for the right to use
    /// more threads (a guard, held until the reader is dropped). A slow reader (a slow
    /// client) stays on one thread to the end and holds no segment buffers.
    pub fn parallel_reader_when<S: Source + Clone + 'static>(
        self: &std::sync::Arc<Self>,
        archive: &crate::Archive<S>,
        entry: &Entry,
        threads: usize,
        may: Gate,
    ) -> Result<ParallelReader> {
        if !self.fits(entry) {
            return Err(CheckpointProblem::OtherEntry { name: name_of(entry) }.into());
        }
        let data = archive.reader(entry)?.data_offset();
        let source: std::sync::Arc<dyn Source> = std::sync::Arc::new(archive.source().clone());
        let serial = self.inflater(&*source, data, None, &name_of(entry))?;
        Ok(ParallelReader {
            checkpoints: self.clone(),
            source,
            data,
            name: entry.display_name().into_owned(),
            threads: threads.max(1),
            serial: Some(serial),
            may: Some(may),
            guard: None,
            started: std::time::Instant::now(),
            pool: std::sync::Arc::new(SharedThreads),
            parallel: false,
            dropped: Default::default(),
            pending: std::collections::VecDeque::new(),
            free: Pool::default(),
            submitted: 0,
            ahead: 1,
            max_ahead: threads.max(1),
            current: Vec::new(),
            at: 0,
            crc: crc32fast::Hasher::new(),
            produced: 0,
            finished: false,
        })
    }
}
