//! Streaming one entry: local header check, then stored copy or inflate, with the CRC-32
//! and the size verified before the end of the stream is reported.

use std::io::{self, Read, Write};

use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};

use crate::entry::Entry;
use crate::error::{Corruption, Error, Result, Unsupported, lossy};
use crate::source::Source;
use crate::zip::local_header::{self, FIXED_LEN};

/// Bytes read past the local header's name in the first read, so that the extra field and,
/// for small entries, all of the data come in the same read.
const HEADER_SLACK: u64 = 1024;
/// The first read also takes the data when header and data together are at most this long.
const FIRST_READ_MAX: u64 = 64 * 1024;
/// Compressed bytes fetched per read while inflating.
const INPUT_CHUNK: usize = 128 * 1024;
/// Deflate cannot expand data more than about 1032:1 (RFC 1951 maximal back-references);
/// an entry that claims more is a bomb or a lie.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Reads one entry's uncompressed bytes from a [`Source`].
///
/// Every read is checked: the stream never yields more than the declared size, and the read
/// that would end it fails instead if the size or CRC-32 is wrong, so end-of-file is only
/// ever reported for data that verified.
#[derive(Debug)]
pub struct EntryReader<S> {
    source: S,
    entry: Entry,
    /// Compressed bytes already fetched but not yet consumed.
    pending: Bytes,
    /// Next compressed byte to fetch from the source, and the end of the compressed data.
    pos: u64,
    end: u64,
    decoder: Decoder,
    tally: Tally,
    state: State,
}

/// What the bytes produced so far add up to, checked against what the central directory
/// declares.
#[derive(Debug)]
struct Tally {
    name: Bytes,
    crc: crc32fast::Hasher,
    produced: u64,
    expected_size: u64,
    expected_crc: u32,
}

impl Tally {
    /// Counts `out`; more bytes than declared is an error at once.
    fn add(&mut self, out: &[u8]) -> Result<(), Error> {
        self.crc.update(out);
        self.produced += out.len() as u64;
        if self.produced > self.expected_size {
            return Err(self.size_mismatch());
        }
        Ok(())
    }

    /// Checks size and CRC once the data is complete.
    fn finish(&self) -> Result<(), Error> {
        if self.produced != self.expected_size {
            return Err(self.size_mismatch());
        }
        let found = self.crc.clone().finalize();
        if found != self.expected_crc {
            let name = lossy(&self.name);
            return Err(Corruption::CrcMismatch { name, expected: self.expected_crc, found }.into());
        }
        Ok(())
    }

    fn size_mismatch(&self) -> Error {
        let (expected, found) = (self.expected_size, self.produced);
        Corruption::SizeMismatch { name: lossy(&self.name), expected, found }.into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Done,
    Failed,
}

enum Decoder {
    Stored,
    Deflate { inflate: Box<Decompress>, input: Box<[u8]>, start: usize, filled: usize },
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decoder::Stored => "Stored",
            Decoder::Deflate { .. } => "Deflate",
        })
    }
}

impl<S: Source> EntryReader<S> {
    /// Checks `entry` can be read, reads and checks its local header (and, for small entries,
    /// its data in the same read), and gets ready to stream. `data_limit` is where entries'
    /// data must end: the central directory's offset.
    pub(crate) fn new(source: S, entry: Entry, data_limit: u64) -> Result<EntryReader<S>> {
        check_readable(&entry)?;
        let name = || lossy(entry.name());
        let offset = entry.header_offset;
        let out_of_bounds = |what, at: u64, len: u64| Corruption::OutOfBounds {
            name: name(),
            what,
            offset: at,
            len,
            limit: data_limit,
        };
        let room = data_limit.checked_sub(offset).filter(|&r| r >= FIXED_LEN as u64);
        let room = room.ok_or_else(|| out_of_bounds("local header", offset, FIXED_LEN as u64))?;

        let header_guess = FIXED_LEN as u64 + entry.name().len() as u64 + HEADER_SLACK;
        let whole = header_guess.saturating_add(entry.compressed_size);
        let first = if whole <= FIRST_READ_MAX { whole } else { header_guess };
        let mut head = source.read_bytes(offset, first.min(room) as usize)?;
        let header = match local_header::parse(&head, offset)? {
            Ok(h) => h.len,
            Err(local_header::NeedMore(n)) => {
                if n as u64 > room {
                    return Err(out_of_bounds("local header", offset, n as u64).into());
                }
                head = source.read_bytes(offset, n)?;
                n as u64
            }
        };
        let local = match local_header::parse(&head, offset)? {
            Ok(h) => h,
            Err(_) => return Err(out_of_bounds("local header", offset, header).into()),
        };
        let mismatch = |field| Corruption::LocalHeaderMismatch { name: name(), offset, field };
        if local.name != entry.name() {
            return Err(mismatch("name").into());
        }
        if local.method != entry.method {
            return Err(mismatch("compression method").into());
        }
        if local.flags & 1 != entry.flags & 1 {
            return Err(mismatch("encryption flag").into());
        }
        // Without a data descriptor (flag bit 3) the local sizes must agree; with one, or
        // with zip64 markers, the central directory's values are the ones to trust.
        if local.flags & 8 == 0 && local.compressed_size != u32::MAX && local.uncompressed_size != u32::MAX {
            if local.crc32 != entry.crc32 {
                return Err(mismatch("CRC-32").into());
            }
            if u64::from(local.compressed_size) != entry.compressed_size
                || u64::from(local.uncompressed_size) != entry.uncompressed_size
            {
                return Err(mismatch("sizes").into());
            }
        }
        let data = offset + local.len;
        let data_end = data.checked_add(entry.compressed_size).filter(|&e| e <= data_limit);
        let end = data_end.ok_or_else(|| out_of_bounds("data", data, entry.compressed_size))?;

        let pending = if head.len() as u64 > local.len {
            let have = (head.len() as u64 - local.len).min(entry.compressed_size) as usize;
            head.slice(local.len as usize..local.len as usize + have)
        } else {
            Bytes::new()
        };
        let pos = data + pending.len() as u64;
        let decoder = match entry.method {
            0 => Decoder::Stored,
            _ => Decoder::Deflate {
                inflate: Box::new(Decompress::new(false)),
                input: vec![0; INPUT_CHUNK.min(entry.compressed_size as usize).max(1)].into(),
                start: 0,
                filled: 0,
            },
        };
        let tally = Tally {
            name: entry.name.clone(),
            crc: crc32fast::Hasher::new(),
            produced: 0,
            expected_size: entry.uncompressed_size,
            expected_crc: entry.crc32,
        };
        Ok(EntryReader { source, entry, pending, pos, end, decoder, tally, state: State::Reading })
    }

    /// The entry being read.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Uncompressed bytes produced so far.
    pub fn produced(&self) -> u64 {
        self.tally.produced
    }

    /// Copies the rest of the entry into `out`, verified; returns the bytes copied.
    pub fn copy_to(&mut self, out: &mut impl Write) -> Result<u64> {
        let mut buf = vec![0; 256 * 1024];
        let mut total = 0;
        loop {
            let n = self.read(&mut buf).map_err(Error::from_io)?;
            if n == 0 {
                return Ok(total);
            }
            out.write_all(&buf[..n])?;
            total += n as u64;
        }
    }

    fn fail(&mut self, err: impl Into<Error>) -> io::Error {
        self.state = State::Failed;
        err.into().into()
    }

    fn read_stored(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let n = if !self.pending.is_empty() {
            let n = out.len().min(self.pending.len());
            out[..n].copy_from_slice(&self.pending[..n]);
            bytes::Buf::advance(&mut self.pending, n);
            n
        } else {
            let n = (out.len() as u64).min(self.end - self.pos) as usize;
            self.source.read_exact_at(self.pos, &mut out[..n])?;
            self.pos += n as u64;
            n
        };
        self.tally.add(&out[..n])?;
        if self.pending.is_empty() && self.pos == self.end {
            self.tally.finish()?;
            self.state = State::Done;
        }
        Ok(n)
    }

    fn read_deflate(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let Decoder::Deflate { inflate, input, start, filled } = &mut self.decoder else {
            unreachable!("read_deflate on a stored entry");
        };
        loop {
            let using_pending = !self.pending.is_empty();
            if !using_pending && *start == *filled && self.pos < self.end {
                let n = (input.len() as u64).min(self.end - self.pos) as usize;
                self.source.read_exact_at(self.pos, &mut input[..n])?;
                self.pos += n as u64;
                *start = 0;
                *filled = n;
            }
            let src: &[u8] = if using_pending { &self.pending } else { &input[*start..*filled] };
            let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
            let status = inflate.decompress(src, out, FlushDecompress::None).map_err(|e| {
                Corruption::Deflate {
                    name: lossy(self.entry.name()),
                    consumed: inflate.total_in(),
                    why: e.to_string(),
                }
            })?;
            let consumed = (inflate.total_in() - in_before) as usize;
            let made = (inflate.total_out() - out_before) as usize;
            if using_pending {
                bytes::Buf::advance(&mut self.pending, consumed);
            } else {
                *start += consumed;
            }
            let input_left = !self.pending.is_empty() || *start < *filled || self.pos < self.end;
            let consumed_total = inflate.total_in();
            self.tally.add(&out[..made])?;
            if status == Status::StreamEnd {
                self.tally.finish()?;
                self.state = State::Done;
                return Ok(made);
            }
            if made > 0 {
                return Ok(made);
            }
            if !input_left {
                return Err(Corruption::Deflate {
                    name: lossy(self.entry.name()),
                    consumed: consumed_total,
                    why: "compressed data ends before the deflate stream does".into(),
                }
                .into());
            }
            if consumed == 0 {
                // Input available, room for output, and the decoder took nothing: only a
                // broken stream does that; refuse to spin.
                return Err(Corruption::Deflate {
                    name: lossy(self.entry.name()),
                    consumed: consumed_total,
                    why: "the decoder made no progress".into(),
                }
                .into());
            }
        }
    }
}

/// Refuses entries this engine cannot stream, before any data is read.
pub(crate) fn check_readable(entry: &Entry) -> Result<()> {
    let name = || lossy(entry.name());
    if entry.is_encrypted() {
        return Err(Unsupported::Encrypted { name: name() }.into());
    }
    let impossible = || Corruption::ImpossibleSizes {
        name: name(),
        method: entry.method,
        compressed: entry.compressed_size,
        uncompressed: entry.uncompressed_size,
    };
    match entry.method {
        0 if entry.compressed_size != entry.uncompressed_size => Err(impossible().into()),
        0 => Ok(()),
        8 => {
            let most = entry.compressed_size.saturating_mul(MAX_DEFLATE_RATIO).saturating_add(1024);
            if entry.uncompressed_size > most { Err(impossible().into()) } else { Ok(()) }
        }
        method => Err(Unsupported::Method { name: name(), method }.into()),
    }
}

impl<S: Source> Read for EntryReader<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.state {
            State::Done => return Ok(0),
            State::Failed => {
                return Err(io::Error::other("entry reader failed earlier; the entry is unusable"));
            }
            State::Reading => {}
        }
        if out.is_empty() {
            return Ok(0);
        }
        let result = match self.decoder {
            Decoder::Stored => self.read_stored(out),
            Decoder::Deflate { .. } => self.read_deflate(out),
        };
        result.map_err(|e| self.fail(e))
    }
}
