//! Byte sources that answer ranged reads, and count them.
//!
//! The engine asks a source for exact ranges; it never seeks or reads ahead on its own. Every
//! source counts the reads it served and the bytes it returned, so a test (or `--stats`) can
//! state what a lookup cost.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// Reads and bytes a source has served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Ranged reads served.
    pub reads: u64,
    /// Bytes returned.
    pub bytes: u64,
}

/// Thread-safe counters behind [`ReadStats`].
#[derive(Debug, Default)]
pub struct ReadCounter {
    reads: AtomicU64,
    bytes: AtomicU64,
}

impl ReadCounter {
    /// Counts one read of `bytes` bytes.
    pub fn record(&self, bytes: usize) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts one read (a request) whose bytes are counted as they arrive.
    pub fn record_request(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts bytes of a read already counted.
    pub fn record_bytes(&self, bytes: usize) {
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> ReadStats {
        ReadStats { reads: self.reads.load(Ordering::Relaxed), bytes: self.bytes.load(Ordering::Relaxed) }
    }
}

/// Something that answers "give me bytes `offset..offset + len`".
///
/// Reads are exact: a range past the end is an `UnexpectedEof` error, never a short read.
pub trait Source: Send + Sync {
    /// Total size in bytes.
    fn len(&self) -> u64;

    /// Whether the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` from `offset`.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Returns `len` bytes from `offset`; sources that can lend their bytes do so without
    /// copying.
    fn read_bytes(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        let mut buf = vec![0; len];
        self.read_exact_at(offset, &mut buf)?;
        Ok(Bytes::from(buf))
    }

    /// A reader over the `len` bytes from `offset`, read once front to back (an entry's
    /// local header and data). A remote source answers it with one request whose body
    /// streams; a local one with positional reads as the reader is drained.
    fn read_stream(&self, offset: u64, len: u64) -> io::Result<RangeReader>;

    /// Reads and bytes served so far.
    fn stats(&self) -> ReadStats;
}

/// A reader over one range of a [`Source`], owning what it needs (it may outlive the borrow
/// of the source that made it).
pub type RangeReader = Box<dyn Read + Send + 'static>;

/// Smart pointers and references to a source are sources.
macro_rules! delegate_source {
    ($($wrapper:ty),+) => {$(
        impl<S: Source + ?Sized> Source for $wrapper {
            fn len(&self) -> u64 {
                (**self).len()
            }
            fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
                (**self).read_exact_at(offset, buf)
            }
            fn read_bytes(&self, offset: u64, len: usize) -> io::Result<Bytes> {
                (**self).read_bytes(offset, len)
            }
            fn read_stream(&self, offset: u64, len: u64) -> io::Result<RangeReader> {
                (**self).read_stream(offset, len)
            }
            fn stats(&self) -> ReadStats {
                (**self).stats()
            }
        }
    )+};
}

delegate_source!(Arc<S>, Box<S>, &S);

/// Checks a range against a source of `size` bytes: a range past the end is
/// `UnexpectedEof`, never a short read.
pub(crate) fn check_range(offset: u64, len: u64, size: u64) -> io::Result<()> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("range of {len} bytes at offset {offset} runs past the end ({size} bytes)"),
        )),
    }
}

/// The checked range as indexes into an in-memory buffer of `size` bytes.
fn range(offset: u64, len: usize, size: u64) -> io::Result<std::ops::Range<usize>> {
    check_range(offset, len as u64, size)?;
    Ok(offset as usize..offset as usize + len)
}

/// Bytes in memory.
#[derive(Debug, Clone)]
pub struct MemorySource {
    bytes: Bytes,
    counter: Arc<ReadCounter>,
}

impl MemorySource {
    /// Serves `bytes`.
    pub fn new(bytes: impl Into<Bytes>) -> MemorySource {
        MemorySource { bytes: bytes.into(), counter: Arc::default() }
    }
}

impl Source for MemorySource {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let r = range(offset, buf.len(), self.len())?;
        buf.copy_from_slice(&self.bytes[r]);
        self.counter.record(buf.len());
        Ok(())
    }
    fn read_bytes(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        let r = range(offset, len, self.len())?;
        self.counter.record(len);
        Ok(self.bytes.slice(r))
    }
    fn read_stream(&self, offset: u64, len: u64) -> io::Result<RangeReader> {
        check_range(offset, len, self.len())?;
        self.counter.record(len as usize);
        let bytes = self.bytes.slice(offset as usize..(offset + len) as usize);
        Ok(Box::new(bytes::Buf::reader(bytes)))
    }
    fn stats(&self) -> ReadStats {
        self.counter.snapshot()
    }
}

/// A local file: positional reads for entry data, a memory map for large ranges such as the
/// central directory.
///
/// The size is taken when the file is opened; GitLab's archives are immutable once written.
/// A file that shrinks while it is read gives `UnexpectedEof` errors on positional reads.
#[derive(Debug)]
pub struct FileSource {
    file: Arc<File>,
    len: u64,
    counter: Arc<ReadCounter>,
    map_threshold: usize,
}

impl FileSource {
    /// Ranges at least this long are memory-mapped rather than copied.
    pub const DEFAULT_MAP_THRESHOLD: usize = 1 << 20;

    /// Opens the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> io::Result<FileSource> {
        FileSource::new(File::open(path)?)
    }

    /// Serves an open file.
    pub fn new(file: File) -> io::Result<FileSource> {
        let len = file.metadata()?.len();
        Ok(FileSource {
            file: Arc::new(file),
            len,
            counter: Arc::default(),
            map_threshold: FileSource::DEFAULT_MAP_THRESHOLD,
        })
    }

    /// Sets the smallest range that is memory-mapped; `usize::MAX` turns mapping off (for a
    /// process that must not risk `SIGBUS` on a file someone truncates).
    pub fn with_map_threshold(mut self, bytes: usize) -> FileSource {
        self.map_threshold = bytes;
        self
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    #[allow(unsafe_code)]
    fn map(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        // SAFETY: the map is read-only and private to this value. memmap2 marks mapping
        // unsafe because another process could truncate or rewrite the file underneath;
        // artifact archives are written once and renamed into place, and callers who
        // cannot rule that out turn mapping off with `with_map_threshold(usize::MAX)`.
        let map = unsafe { memmap2::MmapOptions::new().offset(offset).len(len).populate().map(&self.file)? };
        Ok(Bytes::from_owner(map))
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        range(offset, buf.len(), self.len)?;
        read_exact_at(&self.file, offset, buf)?;
        self.counter.record(buf.len());
        Ok(())
    }

    fn read_bytes(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        range(offset, len, self.len)?;
        if len < self.map_threshold || len == 0 {
            let mut buf = vec![0; len];
            read_exact_at(&self.file, offset, &mut buf)?;
            self.counter.record(len);
            return Ok(Bytes::from(buf));
        }
        let bytes = self.map(offset, len)?;
        self.counter.record(len);
        Ok(bytes)
    }

    fn read_stream(&self, offset: u64, len: u64) -> io::Result<RangeReader> {
        check_range(offset, len, self.len)?;
        Ok(Box::new(FileRange {
            file: self.file.clone(),
            counter: self.counter.clone(),
            pos: offset,
            end: offset + len,
        }))
    }

    fn stats(&self) -> ReadStats {
        self.counter.snapshot()
    }
}

/// Positional reads of one range of a file: no shared cursor, so many can run at once.
struct FileRange {
    file: Arc<File>,
    counter: Arc<ReadCounter>,
    pos: u64,
    end: u64,
}

impl Read for FileRange {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.end - self.pos) as usize;
        if n == 0 {
            return Ok(0);
        }
        read_exact_at(&self.file, self.pos, &mut buf[..n])?;
        self.counter.record(n);
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}
