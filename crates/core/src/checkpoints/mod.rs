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

mod parallel;
mod raw;
mod reader;

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};

use crate::entry::Entry;
use crate::error::{Corruption, Error, Result};
use crate::source::Source;

pub use self::parallel::{Gate, KEEPING_UP, ParallelReader};
use self::raw::RawInflate;
pub use self::reader::CheckpointingReader;

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
