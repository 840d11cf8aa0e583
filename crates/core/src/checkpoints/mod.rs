//! Random access into large deflated entries: checkpoints.
//!
//! Deflate has no random access: byte `n` of an entry depends on everything before it. A
//! checkpoint is what an inflater needs to start in the middle: the position in the
//! compressed stream where a deflate block starts (a byte offset and how many bits of the
//! byte before it are still unread), and the 32 KiB of output before that point (the window
//! the next blocks may copy from). [`EntryCheckpoints::build`] inflates an entry once, block
//! by block, records a checkpoint every `spacing` bytes of output, and checks the entry's
//! size and CRC-32 as it goes (so building them is verifying the entry).
//! [`EntryCheckpoints::reader_at`] then starts inflating at the checkpoint nearest below
//! the offset asked for: reading the last MiB of a 1 GiB entry inflates at most
//! `spacing` + 1 MiB, not the whole entry.
//!
//! Windows are kept deflated (text windows shrink several times), so an index stays well
//! under 1% of its entry. [`Checkpoints`] holds the indexes of an archive's entries; its
//! encoding ends in a CRC-32 of everything before it, so a damaged index is detected and
//! ignored (the caller inflates from the start), never followed.
//!
//! Inflating from the middle of a byte needs two calls stock inflate APIs lack (`Z_BLOCK`
//! with its `data_type` report, and `inflatePrime`): they come from zlib-rs's zlib-compatible
//! interface (`libz-rs-sys`, pure Rust), wrapped here in `RawInflate`, the one place in
//! this crate that calls it.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};

use crate::entry::Entry;
use crate::error::{Corruption, Error, Result};
use crate::source::Source;

/// Entries larger than this (uncompressed) get checkpoints at import.
pub const MIN_ENTRY: u64 = 8 << 20;
/// Output between two checkpoints, by default.
pub const DEFAULT_SPACING: u64 = 4 << 20;
/// The deflate window: how far back a block may copy from.
const WINDOW: usize = 32 * 1024;
/// The encoding's first bytes.
const MAGIC: &[u8; 8] = b"ARTCKPT1";
/// Compressed input read at a time.
const INPUT_CHUNK: usize = 64 * 1024;
/// Output inflated at a time while building checkpoints.
const RING: usize = 256 * 1024;

/// Raw inflate through zlib-rs's zlib interface: `Z_BLOCK`, `data_type`, `inflatePrime`
/// and `inflateSetDictionary`, which the safe wrappers do not offer.
struct RawInflate {
    /// Boxed: zlib's state points back at its stream, which must not move.
    strm: Box<libz_rs_sys::z_stream>,
}

// SAFETY: the stream owns its state (allocated by zlib-rs with the Rust allocator) and the
// input and output pointers are set for the duration of one `run` call only.
#[allow(unsafe_code)]
unsafe impl Send for RawInflate {}

#[allow(unsafe_code)]
impl RawInflate {
    /// A raw deflate (no header) inflater with a 32 KiB window.
    fn new() -> io::Result<RawInflate> {
        let mut strm = Box::new(libz_rs_sys::z_stream::default());
        let size = std::mem::size_of::<libz_rs_sys::z_stream>() as i32;
        // SAFETY: `strm` is a default (zeroed, allocator unset: zlib-rs picks its own)
        // stream, the version string is the library's own, and the size is the struct's.
        let ret = unsafe { libz_rs_sys::inflateInit2_(&mut *strm, -15, libz_rs_sys::zlibVersion(), size) };
        if ret != libz_rs_sys::Z_OK {
            return Err(io::Error::other(format!("inflate could not start ({ret})")));
        }
        Ok(RawInflate { strm })
    }

    /// Feeds the low `bits` bits of `value` as if they were the end of the previous byte.
    fn prime(&mut self, bits: u8, value: u8) -> io::Result<()> {
        // SAFETY: the stream was initialised by `new`.
        let ret = unsafe { libz_rs_sys::inflatePrime(&mut *self.strm, i32::from(bits), i32::from(value)) };
        (ret == libz_rs_sys::Z_OK).then_some(()).ok_or_else(|| io::Error::other("inflatePrime refused"))
    }

    /// Sets the window the next blocks may copy from.
    fn set_window(&mut self, window: &[u8]) -> io::Result<()> {
        // SAFETY: the stream was initialised by `new`; the pointer and length describe
        // `window`, which zlib copies before returning.
        let ret = unsafe { libz_rs_sys::inflateSetDictionary(&mut *self.strm, window.as_ptr(), window.len() as u32) };
        (ret == libz_rs_sys::Z_OK).then_some(()).ok_or_else(|| io::Error::other("inflateSetDictionary refused"))
    }

    /// One inflate call: `(input consumed, output produced, zlib's return code)`.
    fn run(&mut self, input: &[u8], output: &mut [u8], flush: i32) -> (usize, usize, i32) {
        let (avail_in, avail_out) = (input.len().min(u32::MAX as usize), output.len().min(u32::MAX as usize));
        self.strm.next_in = input.as_ptr();
        self.strm.avail_in = avail_in as u32;
        self.strm.next_out = output.as_mut_ptr();
        self.strm.avail_out = avail_out as u32;
        // SAFETY: the stream was initialised by `new`; `next_in`/`avail_in` and
        // `next_out`/`avail_out` describe `input` and `output`, borrowed for this call, and
        // are cleared before it returns.
        let ret = unsafe { libz_rs_sys::inflate(&mut *self.strm, flush) };
        let consumed = avail_in - self.strm.avail_in as usize;
        let produced = avail_out - self.strm.avail_out as usize;
        self.strm.next_in = std::ptr::null();
        self.strm.avail_in = 0;
        self.strm.next_out = std::ptr::null_mut();
        self.strm.avail_out = 0;
        (consumed, produced, ret)
    }

    /// After a `Z_BLOCK` call: whether inflate stopped at the start of a block (not after
    /// the last one), and how many bits of the last byte consumed it has not used.
    fn at_block_start(&self) -> Option<u8> {
        let t = self.strm.data_type;
        (t & 128 != 0 && t & 64 == 0).then_some((t & 7) as u8)
    }
}

#[allow(unsafe_code)]
impl Drop for RawInflate {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised by `new` and is ended once.
        unsafe { libz_rs_sys::inflateEnd(&mut *self.strm) };
    }
}

/// One place to start inflating an entry from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Uncompressed offset: the output before this point is `out` bytes.
    pub out: u64,
    /// Compressed bytes consumed up to here (from the start of the entry's data).
    pub input: u64,
    /// Bits of the last consumed byte not yet used (0 to 7): they belong to this block.
    pub bits: u8,
    /// The up to 32 KiB of output before `out`, raw-deflated.
    window: Vec<u8>,
}

/// An entry's checkpoints, with what it was built from (the entry's size, CRC-32 and
/// compressed size: an index for another entry is never used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryCheckpoints {
    /// The entry's uncompressed size.
    pub size: u64,
    /// The entry's CRC-32.
    pub crc32: u32,
    /// The entry's compressed size.
    pub compressed: u64,
    /// In order of `out`; the entry's start is not one (inflate starts there anyway).
    pub points: Vec<Checkpoint>,
}

fn refuse(entry: &Entry, why: &str) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::InvalidData, format!("entry {:?}: {why}", entry.display_name())))
}

/// Raw-deflates `bytes` (a window) with a fast level.
fn pack(bytes: &[u8]) -> Vec<u8> {
    let mut out = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec does not fail.
    let _ = io::Write::write_all(&mut out, bytes);
    out.finish().unwrap_or_default()
}

/// Inflates a packed window, at most `WINDOW` bytes.
fn unpack(packed: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(WINDOW);
    flate2::read::DeflateDecoder::new(packed).take(WINDOW as u64 + 1).read_to_end(&mut out)?;
    if out.len() > WINDOW {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "a checkpoint window over 32 KiB"));
    }
    Ok(out)
}

impl EntryCheckpoints {
    /// Inflates `entry` of `archive` once, block by block, and records a checkpoint at the
    /// first block start after every `spacing` bytes of output. The entry's size and CRC-32
    /// are checked as it goes: an entry that does not verify is an error (`InvalidData`),
    /// as is one that is not deflated. Memory: the 256 KiB output ring and the input buffer.
    pub fn build<S: Source>(archive: &crate::Archive<S>, entry: &Entry, spacing: u64) -> Result<EntryCheckpoints> {
        let mut reader = CheckpointingReader::new(archive, entry, spacing)?;
        io::copy(&mut reader, &mut io::sink()).map_err(Error::from_io)?;
        reader.into_checkpoints().ok_or_else(|| refuse(entry, "not read to its end"))
    }

    /// Whether these checkpoints were built from `entry`.
    pub fn fits(&self, entry: &Entry) -> bool {
        self.size == entry.size() && self.crc32 == entry.crc32() && self.compressed == entry.compressed_size()
    }

    /// The checkpoint to start from for `offset`: the last one at or before it (`None`:
    /// the entry's start).
    pub fn nearest(&self, offset: u64) -> Option<&Checkpoint> {
        let i = self.points.partition_point(|p| p.out <= offset);
        i.checked_sub(1).map(|i| &self.points[i])
    }

    /// The entry's bytes from `offset` to its end, inflated from the nearest checkpoint
    /// (the bytes between it and `offset` are inflated and dropped). The reader ends with
    /// an error, never early, if the data does not inflate; these bytes are not checked
    /// against the entry's CRC-32 (that was done when the checkpoints were built, and a
    /// window alone has no checksum).
    pub fn reader_at<S: Source>(
        &self,
        archive: &crate::Archive<S>,
        entry: &Entry,
        offset: u64,
    ) -> Result<Box<dyn Read + Send>> {
        let (skip, mut reader) = self.resume(archive, entry, offset)?;
        io::copy(&mut (&mut reader).take(skip), &mut io::sink())?;
        Ok(reader)
    }

    /// [`reader_at`](Self::reader_at) without the skipping: the entry's bytes from the
    /// nearest checkpoint, and how many of them come before `offset` (for a caller that
    /// skips them elsewhere, such as on a blocking thread). Cheap: it reads at most one
    /// byte and inflates one window.
    pub fn resume<S: Source>(
        &self,
        archive: &crate::Archive<S>,
        entry: &Entry,
        offset: u64,
    ) -> Result<(u64, Box<dyn Read + Send>)> {
        if !self.fits(entry) {
            return Err(refuse(entry, "checkpoints built for another entry"));
        }
        let offset = offset.min(entry.size());
        let data = archive.reader(entry)?.data_offset();
        let point = self.nearest(offset);
        let reader = self.inflater(archive.source(), data, point)?;
        Ok((offset - point.map_or(0, |p| p.out), Box::new(reader)))
    }

    /// An inflater of the entry (its data at `data` in `source`) from `point` (`None`: the
    /// start) to the entry's end.
    fn inflater<S: Source + ?Sized>(
        &self,
        source: &S,
        data: u64,
        point: Option<&Checkpoint>,
    ) -> Result<Inflating<crate::RangeReader>> {
        let mut inflate = RawInflate::new()?;
        let (out, input) = match point {
            None => (0, 0),
            Some(p) => {
                if p.bits > 0 {
                    let byte = source.read_bytes(data + p.input - 1, 1)?;
                    inflate.prime(p.bits, byte[0] >> (8 - p.bits))?;
                }
                inflate.set_window(&unpack(&p.window)?)?;
                (p.out, p.input)
            }
        };
        let compressed = source.read_stream(data + input, self.compressed - input)?;
        Ok(Inflating {
            inflate,
            input: compressed,
            inbuf: vec![0; INPUT_CHUNK],
            start: 0,
            end: 0,
            left: self.size - out,
            done: false,
        })
    }

    /// The whole entry, verified, its segments (from one checkpoint to the next) inflated
    /// on up to `threads` threads at once and read in order. Each segment's CRC-32 is
    /// computed where it is inflated and the entry's is combined from them; a size or
    /// CRC-32 that does not match the central directory is an error instead of the end
    /// (the bytes before it were already read, as with any streamed entry). The first
    /// segment is inflated on the reader's thread as it reads; the threads start after it,
    /// if it was read within [`KEEPING_UP`] (else the rest is read the same way: a slow
    /// consumer gets no threads). Memory once parallel: at most `threads` segments
    /// (`spacing` bytes each) ahead of the reader, one while the reader is the slower side
    /// (the lead grows each time it has to wait for a segment). Dropping the reader stops
    /// the threads after the segment each is inflating.
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
            return Err(refuse(entry, "checkpoints built for another entry"));
        }
        let data = archive.reader(entry)?.data_offset();
        let source: std::sync::Arc<dyn Source> = std::sync::Arc::new(archive.source().clone());
        let serial = self.inflater(&*source, data, None)?;
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
            jobs: None,
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

    /// Segments: from the start, then from each checkpoint.
    fn segments(&self) -> usize {
        self.points.len() + 1
    }

    /// Segment `i`: where it starts (`None`: the entry's start) and its length.
    fn segment(&self, i: usize) -> (Option<&Checkpoint>, u64) {
        let start = i.checked_sub(1).map(|j| &self.points[j]);
        let from = start.map_or(0, |p| p.out);
        let to = self.points.get(i).map_or(self.size, |p| p.out);
        (start, to - from)
    }
}

/// An entry's bytes, verified, inflated once while its checkpoints are recorded: read it to
/// its end, then [`into_checkpoints`](Self::into_checkpoints). (What
/// [`EntryCheckpoints::build`] does with the bytes dropped; a caller that wants the bytes
/// too, like `artifact cat`, reads them from here at no extra cost.)
pub struct CheckpointingReader {
    name: String,
    size: u64,
    crc32: u32,
    compressed_size: u64,
    input: crate::CompressedReader,
    inflate: RawInflate,
    inbuf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// The output goes round a ring, so the window is always at hand. (Larger than the
    /// window: inflate copies each call's output into its own window, all of it when the
    /// output space is 32 KiB or less.)
    ring: Vec<u8>,
    ring_at: usize,
    /// Bytes of the ring produced and not yet read.
    pending: std::ops::Range<usize>,
    consumed: u64,
    produced: u64,
    last: u64,
    spacing: u64,
    crc: crc32fast::Hasher,
    points: Vec<Checkpoint>,
    verified: bool,
}

impl std::fmt::Debug for CheckpointingReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointingReader").field("name", &self.name).field("produced", &self.produced).finish()
    }
}

impl CheckpointingReader {
    /// Opens `entry` (deflated; its local header checked) to be read with checkpoints
    /// every `spacing` bytes of output.
    pub fn new<S: Source>(archive: &crate::Archive<S>, entry: &Entry, spacing: u64) -> Result<CheckpointingReader> {
        if entry.method() != 8 {
            return Err(refuse(entry, "not deflated"));
        }
        Ok(CheckpointingReader {
            name: entry.display_name().into_owned(),
            size: entry.size(),
            crc32: entry.crc32(),
            compressed_size: entry.compressed_size(),
            input: archive.reader(entry)?.into_compressed(),
            inflate: RawInflate::new()?,
            inbuf: vec![0u8; INPUT_CHUNK],
            start: 0,
            end: 0,
            eof: false,
            ring: vec![0u8; RING],
            ring_at: 0,
            pending: 0..0,
            consumed: 0,
            produced: 0,
            last: 0,
            spacing: spacing.max(1),
            crc: crc32fast::Hasher::new(),
            points: Vec::new(),
            verified: false,
        })
    }

    /// The checkpoints, once the entry was read to its end and verified.
    pub fn into_checkpoints(self) -> Option<EntryCheckpoints> {
        self.verified.then_some(EntryCheckpoints {
            size: self.size,
            crc32: self.crc32,
            compressed: self.compressed_size,
            points: self.points,
        })
    }

    /// The engine's error for bad deflate data, as the entry reader gives it.
    fn corrupt(&self, why: &str) -> io::Error {
        let (name, consumed) = (self.name.clone(), self.consumed);
        Error::from(Corruption::Deflate { name, consumed, why: why.to_owned() }).into()
    }

    /// The engine's error for a size or CRC-32 the central directory does not declare.
    fn mismatch(&self) -> io::Error {
        let name = self.name.clone();
        let found = self.crc.clone().finalize();
        let corruption = if self.produced != self.size {
            Corruption::SizeMismatch { name, expected: self.size, found: self.produced }
        } else {
            Corruption::CrcMismatch { name, expected: self.crc32, found }
        };
        Error::from(corruption).into()
    }

    /// One inflate call: new bytes in `pending`, a checkpoint if one is due.
    fn step(&mut self) -> io::Result<()> {
        if self.start == self.end && !self.eof {
            self.end = self.input.read(&mut self.inbuf)?;
            self.start = 0;
            self.eof = self.end == 0;
        }
        if self.ring_at == RING {
            self.ring_at = 0;
        }
        let at = self.ring_at;
        let (used, made, ret) =
            self.inflate.run(&self.inbuf[self.start..self.end], &mut self.ring[at..], libz_rs_sys::Z_BLOCK);
        self.crc.update(&self.ring[at..at + made]);
        (self.start, self.ring_at, self.pending) = (self.start + used, at + made, at..at + made);
        (self.consumed, self.produced) = (self.consumed + used as u64, self.produced + made as u64);
        if self.produced > self.size {
            return Err(self.mismatch());
        }
        match ret {
            libz_rs_sys::Z_STREAM_END => {
                if self.produced != self.size || self.crc.clone().finalize() != self.crc32 {
                    return Err(self.mismatch());
                }
                self.verified = true;
                return Ok(());
            }
            libz_rs_sys::Z_OK | libz_rs_sys::Z_BUF_ERROR => {}
            _ => return Err(self.corrupt("invalid deflate data")),
        }
        if self.eof && used == 0 && made == 0 {
            return Err(self.corrupt("the data ends before the deflate stream"));
        }
        if let Some(bits) = self.inflate.at_block_start()
            && self.produced - self.last >= self.spacing
            && self.produced < self.size
        {
            // The window: the last 32 KiB produced (fewer at the very start), which may
            // wrap round the ring's end.
            let mut window = Vec::with_capacity(WINDOW);
            let want = WINDOW.min(self.produced as usize);
            if self.ring_at < want {
                window.extend_from_slice(&self.ring[RING - (want - self.ring_at)..]);
            }
            window.extend_from_slice(&self.ring[self.ring_at.saturating_sub(want)..self.ring_at]);
            self.points.push(Checkpoint { out: self.produced, input: self.consumed, bits, window: pack(&window) });
            self.last = self.produced;
        }
        Ok(())
    }
}

impl Read for CheckpointingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            if self.verified || buf.is_empty() {
                return Ok(0);
            }
            self.step()?;
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.ring[self.pending.start..self.pending.start + n]);
        self.pending.start += n;
        Ok(n)
    }
}

/// A segment's bytes and their CRC-32, or why they could not be inflated.
type Segment = io::Result<(Vec<u8>, crc32fast::Hasher)>;

/// Buffers to reuse.
type Pool = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// One segment to inflate, and where its outcome goes.
struct Job {
    inflater: Inflating<crate::RangeReader>,
    len: u64,
    done: std::sync::mpsc::SyncSender<Segment>,
}

/// Inflates `len` bytes into a buffer from `free` (or a new one), with their CRC-32.
fn inflate_segment(mut inflater: Inflating<crate::RangeReader>, len: u64, free: &Pool) -> Segment {
    let mut out = free.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default();
    out.resize(len as usize, 0);
    let mut crc = crc32fast::Hasher::new();
    // In pieces that are still in the cache when their CRC-32 is taken.
    for piece in out.chunks_mut(256 * 1024) {
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
    /// Segments to inflate; the threads stop once it is dropped (with the reader).
    jobs: Option<std::sync::mpsc::Sender<Job>>,
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
    /// Starts the threads; segments are submitted from `self.submitted` on.
    fn start_threads(&mut self) {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for _ in 0..self.threads {
            let (queue, free) = (queue.clone(), self.free.clone());
            std::thread::spawn(move || {
                loop {
                    let job = match queue.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    };
                    let _ = job.done.send(inflate_segment(job.inflater, job.len, &free));
                }
            });
        }
        self.jobs = Some(jobs);
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
        self.start_threads();
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
        let Some(jobs) = &self.jobs else { return Ok(()) };
        while self.pending.len() < self.ahead && self.submitted < self.checkpoints.segments() {
            let (start, len) = self.checkpoints.segment(self.submitted);
            let inflater = self.checkpoints.inflater(&*self.source, self.data, start).map_err(io::Error::other)?;
            let (done, outcome) = std::sync::mpsc::sync_channel(1);
            jobs.send(Job { inflater, len, done }).map_err(|_| io::Error::other("the inflating threads stopped"))?;
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

/// Inflating from a checkpoint to the entry's end.
struct Inflating<R> {
    inflate: RawInflate,
    input: R,
    inbuf: Vec<u8>,
    start: usize,
    end: usize,
    /// Output still due.
    left: u64,
    done: bool,
}

impl<R: Read> Read for Inflating<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let corrupt = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.done {
            return Err(corrupt("the deflate stream ended before the entry's size"));
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let mut eof = false;
        loop {
            if self.start == self.end && !eof {
                self.end = self.input.read(&mut self.inbuf)?;
                self.start = 0;
                eof = self.end == 0;
            }
            let (used, made, ret) =
                self.inflate.run(&self.inbuf[self.start..self.end], &mut buf[..want], libz_rs_sys::Z_NO_FLUSH);
            self.start += used;
            if eof && used == 0 && made == 0 && ret != libz_rs_sys::Z_STREAM_END {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the compressed data ends early"));
            }
            match ret {
                libz_rs_sys::Z_STREAM_END => self.done = true,
                libz_rs_sys::Z_OK | libz_rs_sys::Z_BUF_ERROR => {}
                _ => return Err(corrupt("corrupt deflate stream")),
            }
            if made > 0 {
                self.left -= made as u64;
                return Ok(made);
            }
            if self.done {
                return Err(corrupt("the deflate stream ended before the entry's size"));
            }
        }
    }
}

/// The checkpoints of an archive's entries, by their record offset
/// ([`Entry::record_offset`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoints {
    /// By record offset.
    pub entries: BTreeMap<u64, std::sync::Arc<EntryCheckpoints>>,
}

impl Checkpoints {
    /// The checkpoints of `entry`, if there are any built from it.
    pub fn of(&self, entry: &Entry) -> Option<&std::sync::Arc<EntryCheckpoints>> {
        self.entries.get(&entry.record_offset()).filter(|c| c.fits(entry))
    }

    /// The encoding: `ARTCKPT1`, the entries, and a CRC-32 of all that (little-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let u64s =
            |out: &mut Vec<u8>, values: &[u64]| values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        u64s(&mut out, &[self.entries.len() as u64]);
        for (record, e) in &self.entries {
            u64s(&mut out, &[*record, e.size, u64::from(e.crc32), e.compressed, e.points.len() as u64]);
            for p in &e.points {
                u64s(&mut out, &[p.out, p.input, u64::from(p.bits), p.window.len() as u64]);
                out.extend_from_slice(&p.window);
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads an encoding made by [`encode`](Self::encode); anything damaged (checksum,
    /// lengths, order) is an error.
    pub fn decode(bytes: &[u8]) -> io::Result<Checkpoints> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("checkpoint index: {why}"));
        let body_len = bytes.len().checked_sub(4).ok_or_else(|| bad("too short"))?;
        let (body, crc) = bytes.split_at(body_len);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err(bad("checksum mismatch"));
        }
        let mut r = Cursor(body.strip_prefix(MAGIC.as_slice()).ok_or_else(|| bad("not an index"))?);
        let truncated = || bad("truncated");
        let mut entries = BTreeMap::new();
        for _ in 0..r.u64().ok_or_else(truncated)? {
            let mut next = || r.u64().ok_or_else(truncated);
            let (record, size, crc32, compressed, n) = (next()?, next()?, next()?, next()?, next()?);
            let crc32 = u32::try_from(crc32).map_err(|_| bad("a CRC-32 out of range"))?;
            let mut points: Vec<Checkpoint> = Vec::new();
            for _ in 0..n {
                let mut next = || r.u64().ok_or_else(truncated);
                let (out, input, bits, len) = (next()?, next()?, next()?, next()?);
                let ordered = points.last().is_none_or(|p| p.out < out);
                if bits > 7 || out > size || input > compressed || input == 0 || !ordered {
                    return Err(bad("a checkpoint out of range"));
                }
                let window = r.bytes(len).ok_or_else(truncated)?;
                points.push(Checkpoint { out, input, bits: bits as u8, window: window.to_vec() });
            }
            entries.insert(record, std::sync::Arc::new(EntryCheckpoints { size, crc32, compressed, points }));
        }
        if !r.0.is_empty() {
            return Err(bad("bytes after the last entry"));
        }
        Ok(Checkpoints { entries })
    }
}

/// Reads an encoding from the front.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn u64(&mut self) -> Option<u64> {
        let (head, tail) = self.0.split_first_chunk::<8>()?;
        self.0 = tail;
        Some(u64::from_le_bytes(*head))
    }

    fn bytes(&mut self, len: u64) -> Option<&'a [u8]> {
        let len = usize::try_from(len).ok().filter(|l| *l <= self.0.len())?;
        let (head, tail) = self.0.split_at(len);
        self.0 = tail;
        Some(head)
    }
}
