//! [`DirectoryRead`]: reading a central directory with no I/O inside. It says which bytes
//! it wants next and takes them; a driver brings them from wherever the archive is (a
//! range request on async I/O, say). The reading is [`CentralDirectory::from_tail`]'s own,
//! run over the bytes held so far: what the records need and the bytes they were read
//! from are the same however they arrive.
#![forbid(unsafe_code)]

use std::io;

use bytes::Bytes;

use super::CentralDirectory;
use crate::error::{Error, Result};
use crate::source::{ReadStats, Source};

/// A central directory being read without I/O (see the module docs).
///
/// ```
/// # fn main() -> artifact_core::Result<()> {
/// use artifact_core::{DirectoryRead, DirectoryStep, MemorySource, Source};
/// # let mut zip = Vec::new();
/// # { let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut zip));
/// #   w.start_file("a.txt", zip::write::SimpleFileOptions::default()).unwrap();
/// #   std::io::Write::write_all(&mut w, b"hi").unwrap(); w.finish().unwrap(); }
/// let archive = MemorySource::new(zip); // or bytes from anywhere
/// let size = archive.len();
/// let tail = archive.read_bytes(size.saturating_sub(16), size.min(16) as usize)?;
/// let mut reading = DirectoryRead::new(tail, size);
/// let directory = loop {
///     match reading.step()? {
///         DirectoryStep::Want { offset, len } => {
///             let len = usize::try_from(len).expect("a want this machine can hold"); // bound it in real code
///             reading.feed(offset, archive.read_bytes(offset, len)?)
///         }
///         DirectoryStep::Done(directory) => break directory,
///     }
/// };
/// assert_eq!(directory.len(), 1);
/// # Ok(()) }
/// ```
/// What it costs: each [`step`](Self::step) reads the end records and the directory again
/// from the bytes held (a few milliseconds for a directory of 100,000 entries), so feed
/// what a want asks for whole where possible (a driver of one request per want makes one
/// or two steps for a normal archive). Wants are exact but for a read-ahead from the second
/// one on, doubling up to 8 MiB, that keeps a walk through a directory whose declared size
/// is wrong to few round trips. The bytes fed are held until the reading is dropped, and
/// not bounded here: a driver bounds them ([`held`](Self::held)), as the engine's own
/// does by its `max_buffered`. Bytes outside the archive, or empty ones, are dropped (the
/// same want then comes back).
#[derive(Debug)]
pub struct DirectoryRead {
    size: u64,
    tail: Bytes,
    held: Vec<(u64, Bytes)>,
    /// How far past what was asked the next want reaches (doubling from the second want on,
    /// so that a walk through many records costs few round trips).
    ahead: u64,
}

/// The most a want reaches past what the reading asked for.
const MAX_AHEAD: u64 = 8 << 20;

/// Pieces fed one after the other are joined while they stay under this.
const JOIN_BELOW: usize = 64 * 1024;

/// What a [`DirectoryRead`] needs next: one or the other, always (drivers match both).
#[derive(Debug)]
pub enum DirectoryStep {
    /// Bytes `offset..offset + len` of the archive: [`feed`](DirectoryRead::feed) them.
    Want {
        /// Where they start.
        offset: u64,
        /// How many.
        len: u64,
    },
    /// The directory, read.
    Done(CentralDirectory),
}

/// Bytes a [`DirectoryRead`] does not hold yet (the error its reading stops with).
#[derive(Debug)]
struct Missing {
    offset: u64,
    len: u64,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bytes {}..{} are not read yet", self.offset, self.offset + self.len)
    }
}

impl std::error::Error for Missing {}

impl DirectoryRead {
    /// Starts reading the directory of an archive of `size` bytes whose last bytes are
    /// `tail` (a suffix read's body: any length up to `size`, [`MAX_TAIL`](crate::MAX_TAIL)
    /// holds every end record).
    pub fn new(tail: Bytes, size: u64) -> DirectoryRead {
        let tail = if tail.len() as u64 > size { tail.slice(tail.len() - size as usize..) } else { tail };
        DirectoryRead { size, tail, held: Vec::new(), ahead: 0 }
    }

    /// The next thing to do: bring bytes, or take the directory. An error is final (a
    /// corrupt archive).
    pub fn step(&mut self) -> Result<DirectoryStep> {
        let held = Held { read: self };
        match CentralDirectory::from_tail(&held, self.tail.clone(), self.size) {
            Ok(directory) => Ok(DirectoryStep::Done(directory)),
            Err(Error::Io(e)) if e.get_ref().is_some_and(|r| r.is::<Missing>()) => {
                let missing = e.into_inner().and_then(|r| r.downcast::<Missing>().ok()).map(|m| *m);
                let Some(Missing { offset, len }) = missing else { unreachable!("checked above") };
                let len = self.reach(offset, len);
                self.ahead = self.ahead.max(256 * 1024).max(len).saturating_mul(2).min(MAX_AHEAD);
                Ok(DirectoryStep::Want { offset, len })
            }
            Err(e) => Err(e),
        }
    }

    /// Takes the bytes at `offset` asked for by the last [`step`](Self::step) (or any
    /// others: they are kept, and what is not needed is dropped with the reading).
    pub fn feed(&mut self, offset: u64, bytes: Bytes) {
        if bytes.is_empty() || offset.checked_add(bytes.len() as u64).is_none_or(|end| end > self.size) {
            return;
        }
        // Small bytes that continue small last ones join them (a driver feeding small
        // pieces); large pieces stay apart (never copied again).
        if let Some((at, last)) = self.held.last_mut()
            && *at + last.len() as u64 == offset
            && last.len() + bytes.len() <= JOIN_BELOW
        {
            let mut joined = Vec::with_capacity(last.len() + bytes.len());
            joined.extend_from_slice(last);
            joined.extend_from_slice(&bytes);
            *last = Bytes::from(joined);
            return;
        }
        self.held.push((offset, bytes));
    }

    /// Bytes held so far, the tail included.
    pub fn held(&self) -> u64 {
        self.tail.len() as u64 + self.held.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    }

    /// `len` at `offset`, stretched by the read-ahead up to the next bytes held.
    fn reach(&self, offset: u64, len: u64) -> u64 {
        let next_held = self
            .held
            .iter()
            .map(|(at, _)| *at)
            .chain([self.tail_start()])
            .filter(|&at| at > offset)
            .min()
            .unwrap_or(self.size);
        len.max(self.ahead.min(next_held - offset))
    }

    fn tail_start(&self) -> u64 {
        self.size - self.tail.len() as u64
    }

    /// The held bytes `offset..offset + len`, or what is missing first.
    fn bytes_at(&self, offset: u64, len: usize) -> std::result::Result<Bytes, Missing> {
        let end = offset + len as u64;
        let pieces = || std::iter::once((self.tail_start(), &self.tail)).chain(self.held.iter().map(|(a, b)| (*a, b)));
        let covering = |pos: u64| pieces().find(|(at, b)| *at <= pos && pos < at + b.len() as u64);
        if len == 0 {
            return Ok(Bytes::new());
        }
        if let Some((at, bytes)) = covering(offset).filter(|(at, b)| end <= at + b.len() as u64) {
            return Ok(bytes.slice((offset - at) as usize..(end - at) as usize));
        }
        let mut joined = Vec::with_capacity(len);
        let mut pos = offset;
        while pos < end {
            let Some((at, bytes)) = covering(pos) else {
                let gap_end = pieces().map(|(at, _)| at).filter(|&at| at > pos && at < end).min().unwrap_or(end);
                return Err(Missing { offset: pos, len: gap_end - pos });
            };
            let upto = end.min(at + bytes.len() as u64);
            joined.extend_from_slice(&bytes[(pos - at) as usize..(upto - at) as usize]);
            pos = upto;
        }
        Ok(Bytes::from(joined))
    }
}

/// The bytes a [`DirectoryRead`] holds, as a source whose reads of anything else fail with
/// [`Missing`].
struct Held<'a> {
    read: &'a DirectoryRead,
}

impl Source for Held<'_> {
    fn len(&self) -> u64 {
        self.read.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        buf.copy_from_slice(&self.read_bytes(offset, buf.len())?);
        Ok(())
    }

    fn read_bytes(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        crate::source::check_range(offset, len as u64, self.read.size)?;
        self.read.bytes_at(offset, len).map_err(io::Error::other)
    }

    fn read_stream(&self, _: u64, _: u64) -> io::Result<crate::source::RangeReader> {
        Err(io::Error::other("a directory being read has no streams"))
    }

    fn stats(&self) -> ReadStats {
        ReadStats::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemorySource;

    fn zip_of(n: usize, comment: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut out));
        for i in 0..n {
            w.start_file(format!("dir/file-{i:05}.txt"), zip::write::SimpleFileOptions::default()).unwrap();
            std::io::Write::write_all(&mut w, format!("{i}").as_bytes()).unwrap();
        }
        w.set_raw_comment(comment.to_vec().into()).unwrap();
        w.finish().unwrap();
        out
    }

    /// Drives a reading from memory, one fed byte range at a time of at most `chunk` bytes.
    fn drive(archive: &[u8], tail_len: usize, chunk: u64) -> (Result<CentralDirectory>, usize) {
        let size = archive.len() as u64;
        let tail = Bytes::copy_from_slice(&archive[archive.len() - tail_len.min(archive.len())..]);
        let mut reading = DirectoryRead::new(tail, size);
        let mut wants = 0;
        loop {
            match reading.step() {
                Ok(DirectoryStep::Want { offset, len }) => {
                    wants += 1;
                    assert!(wants < 10_000, "a reading that never ends");
                    let len = len.min(chunk);
                    reading.feed(offset, Bytes::copy_from_slice(&archive[offset as usize..(offset + len) as usize]));
                }
                Ok(DirectoryStep::Done(cd)) => return (Ok(cd), wants),
                Err(e) => return (Err(e), wants),
            }
        }
    }

    #[test]
    fn reads_the_same_directory_as_a_source_however_the_bytes_arrive() {
        let (big, small) = (zip_of(3000, b"a comment"), zip_of(5, b"c"));
        let cases: [(&[u8], usize, u64, usize); 5] = [
            (&big, 64 * 1024, u64::MAX, 1),
            (&big, 22, u64::MAX, 2),
            (&big, 22, 4096, usize::MAX),
            (&small, 1, 1, usize::MAX),
            (&small, 22, 1, usize::MAX),
        ];
        for (archive, tail, chunk, most_wants) in cases {
            let expected = CentralDirectory::read(&MemorySource::new(archive.to_vec())).unwrap();
            let (cd, wants) = drive(archive, tail, chunk);
            let cd = cd.unwrap();
            assert_eq!(cd.as_bytes(), expected.as_bytes(), "tail {tail}, chunk {chunk}");
            assert_eq!(cd.location(), expected.location());
            assert!(wants <= most_wants, "{wants} wants with a {tail}-byte tail");
        }
        let archive = big;
        let (cd, wants) = drive(&archive, archive.len(), u64::MAX);
        assert_eq!((cd.unwrap().len(), wants), (3000, 0), "a tail holding everything wants nothing");
    }

    #[test]
    fn a_corrupt_archive_is_an_error_not_a_want_forever() {
        let mut archive = zip_of(10, b"");
        let n = archive.len();
        archive[n - 22] ^= 0xff; // the end record's signature
        assert!(drive(&archive, 64 * 1024, 1).0.is_err());
        assert!(drive(&[0u8; 100], 100, 1).0.is_err());
        assert!(drive(&[], 0, 1).0.is_err());
    }
}
