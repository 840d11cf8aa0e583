//! Streaming one entry: local header check, then stored copy or inflate, with the CRC-32
//! and the size verified before the end of the stream is reported.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, BufReader, Read, Write};

use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};

use crate::entry::Entry;
use crate::error::{Corruption, Error, Result, Unsupported, lossy};
use crate::source::{RangeReader, Source};
use crate::zip::local_header::{self, FIXED_LEN};

/// Bytes asked for past the local header's name, so that its extra field comes in the same
/// request as the data. A longer extra field costs a second request.
const HEADER_SLACK: u64 = 1024;
/// Read-ahead of compressed bytes: what one positional read or one socket read fills.
const INPUT_CHUNK: usize = 64 * 1024;
/// Deflate cannot expand data more than about 1032:1 (RFC 1951 maximal back-references);
/// an entry that claims more is a bomb or a lie.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Reads one entry's uncompressed bytes.
///
/// The local header and the data come from one range of the source (one request for a
/// remote one). Every read is checked: the stream never yields more than the declared size,
/// and the read that would end it fails instead if the size or CRC-32 is wrong, so end of
/// file is only ever reported for data that verified.
///
/// A source that answers `WouldBlock` (a non-blocking one, fed as bytes arrive) leaves the
/// reader as it was: the error is passed on, and the next read after more input continues
/// where it stopped. Every other error is final.
#[derive(Debug)]
pub struct EntryReader {
    entry: Entry,
    input: Input,
    /// Compressed bytes of the entry not yet taken from `input`.
    remaining: u64,
    inflate: Option<Box<Decompress>>,
    tally: Tally,
    state: State,
    data_offset: u64,
}

struct Input(BufReader<RangeReader>);

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Input")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Done,
    Failed,
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

impl EntryReader {
    /// Checks `entry` can be read, opens one range over its local header and data, checks
    /// the header against the central directory and gets ready to stream. `data_limit` is
    /// where entries' data must end: the central directory's offset.
    pub(crate) fn new<S: Source + ?Sized>(source: &S, entry: Entry, data_limit: u64) -> Result<EntryReader> {
        check_readable(&entry)?;
        let span = span_of(&entry).min(room(&entry, data_limit)?);
        let stream = source.read_stream(entry.header_offset, span)?;
        EntryReader::with_stream(source, entry, data_limit, stream, span)
    }

    /// Like [`new`](Self::new), reading the header and data from `stream`, which holds the
    /// `span` bytes from the entry's local header on (a window of a coalesced range).
    pub(crate) fn with_stream<S: Source + ?Sized>(
        source: &S,
        entry: Entry,
        data_limit: u64,
        stream: RangeReader,
        span: u64,
    ) -> Result<EntryReader> {
        check_readable(&entry)?;
        let room = room(&entry, data_limit)?;
        let name = || lossy(entry.name());
        let offset = entry.header_offset;
        let out_of_bounds = |what, at: u64, len: u64| Corruption::OutOfBounds {
            name: name(),
            what,
            offset: at,
            len,
            limit: data_limit,
        };
        let mut input = BufReader::with_capacity(INPUT_CHUNK, stream);
        let truncated = |e: io::Error| -> Error {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                out_of_bounds("local header", offset, FIXED_LEN as u64).into()
            } else {
                Error::from_io(e)
            }
        };
        let mut header = vec![0u8; FIXED_LEN];
        input.read_exact(&mut header).map_err(truncated)?;
        let header_len = match local_header::parse(&header, offset)? {
            Ok(h) => h.len,
            Err(local_header::NeedMore(n)) => n as u64,
        };
        let data_end = header_len.checked_add(entry.compressed_size).filter(|&e| e <= room);
        let Some(data_end) = data_end else {
            return Err(out_of_bounds("data", offset + header_len, entry.compressed_size).into());
        };
        if data_end > span {
            // The local extra field outgrew the slack: one more range, from after the
            // fixed part to the end of the data.
            let rest = source.read_stream(offset + FIXED_LEN as u64, data_end - FIXED_LEN as u64)?;
            input = BufReader::with_capacity(INPUT_CHUNK, rest);
        }
        header.resize(header_len as usize, 0);
        input.read_exact(&mut header[FIXED_LEN..]).map_err(truncated)?;
        let local = match local_header::parse(&header, offset)? {
            Ok(h) => h,
            Err(_) => return Err(out_of_bounds("local header", offset, header_len).into()),
        };
        check_local_header(&entry, &local, offset)?;

        let inflate = (entry.method == 8).then(|| Box::new(Decompress::new(false)));
        let tally = Tally {
            name: entry.name.clone(),
            crc: crc32fast::Hasher::new(),
            produced: 0,
            expected_size: entry.uncompressed_size,
            expected_crc: entry.crc32,
        };
        let remaining = entry.compressed_size;
        let data_offset = offset + header_len;
        Ok(EntryReader { entry, input: Input(input), remaining, inflate, tally, state: State::Reading, data_offset })
    }

    /// The entry being read.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Where the entry's compressed data starts in the archive (just past its local
    /// header), for callers that read stored data from an offset directly.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The entry's compressed bytes exactly as stored (raw deflate for method 8), for
    /// passing through without inflating; the local header has been checked. Nothing is
    /// verified past that: the receiver checks the CRC-32 (a gzip trailer built from the
    /// central directory does that). A source that ends early is an `UnexpectedEof` error,
    /// never a short end of file. Call it before reading any uncompressed bytes.
    pub fn into_compressed(self) -> CompressedReader {
        CompressedReader { input: self.input, remaining: self.remaining }
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

    fn short_data(&self) -> Error {
        Corruption::Deflate {
            name: lossy(self.entry.name()),
            consumed: self.entry.compressed_size - self.remaining,
            why: "the source ended inside the entry's data".into(),
        }
        .into()
    }

    fn read_stored(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let want = (out.len() as u64).min(self.remaining) as usize;
        let n = if want == 0 { 0 } else { self.input.0.read(&mut out[..want]).map_err(Error::from_io)? };
        if n == 0 && want > 0 {
            return Err(self.short_data());
        }
        self.remaining -= n as u64;
        self.tally.add(&out[..n])?;
        if self.remaining == 0 {
            self.tally.finish()?;
            self.state = State::Done;
        }
        Ok(n)
    }

    fn read_deflate(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        loop {
            let available = if self.remaining > 0 { self.input.0.fill_buf().map_err(Error::from_io)? } else { &[][..] };
            if available.is_empty() && self.remaining > 0 {
                return Err(self.short_data());
            }
            let src = &available[..(available.len() as u64).min(self.remaining) as usize];
            let Some(inflate) = self.inflate.as_mut() else {
                unreachable!("read_deflate on a stored entry");
            };
            let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
            let status = inflate.decompress(src, out, FlushDecompress::None);
            let consumed = (inflate.total_in() - in_before) as usize;
            let made = (inflate.total_out() - out_before) as usize;
            let total_in = inflate.total_in();
            let status = status.map_err(|e| Corruption::Deflate {
                name: lossy(self.entry.name()),
                consumed: total_in,
                why: e.to_string(),
            })?;
            self.input.0.consume(consumed);
            self.remaining -= consumed as u64;
            self.tally.add(&out[..made])?;
            if status == Status::StreamEnd {
                self.tally.finish()?;
                self.state = State::Done;
                return Ok(made);
            }
            if made > 0 {
                return Ok(made);
            }
            let why = if self.remaining == 0 {
                "compressed data ends before the deflate stream does"
            } else if consumed == 0 {
                // Input available, room for output, and the decoder took nothing: only a
                // broken stream does that; refuse to spin.
                "the decoder made no progress"
            } else {
                continue;
            };
            return Err(
                Corruption::Deflate { name: lossy(self.entry.name()), consumed: total_in, why: why.into() }.into()
            );
        }
    }
}

/// An entry's raw compressed bytes; see [`EntryReader::into_compressed`].
#[derive(Debug)]
pub struct CompressedReader {
    input: Input,
    remaining: u64,
}

impl CompressedReader {
    /// Compressed bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

impl Read for CompressedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let want = (out.len() as u64).min(self.remaining) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.input.0.read(&mut out[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the source ended inside the entry's data"));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A source with nothing to read, for readers whose whole range is handed to them
/// ([`EntryReader::with_stream`] with a span that covers the header and data).
#[cfg(all(feature = "http", feature = "tokio"))]
pub(crate) struct Unreadable;

#[cfg(all(feature = "http", feature = "tokio"))]
impl Source for Unreadable {
    fn len(&self) -> u64 {
        0
    }

    fn read_exact_at(&self, _: u64, _: &mut [u8]) -> io::Result<()> {
        Err(io::Error::other("no second range is read here"))
    }

    fn read_stream(&self, _: u64, _: u64) -> io::Result<RangeReader> {
        Err(io::Error::other("no second range is read here"))
    }

    fn stats(&self) -> crate::source::ReadStats {
        crate::source::ReadStats::default()
    }
}

/// The local header must agree with the central directory on what matters for reading.
fn check_local_header(entry: &Entry, local: &local_header::LocalFileHeader<'_>, offset: u64) -> Result<()> {
    let mismatch = |field| Corruption::LocalHeaderMismatch { name: lossy(entry.name()), offset, field };
    if local.name != entry.name() {
        return Err(mismatch("name").into());
    }
    if local.method != entry.method {
        return Err(mismatch("compression method").into());
    }
    if local.flags & 1 != entry.flags & 1 {
        return Err(mismatch("encryption flag").into());
    }
    // Without a data descriptor (flag bit 3) the local sizes must agree; with one, or with
    // zip64 markers, the central directory's values are the ones to trust.
    let zip64 = local.compressed_size == u32::MAX || local.uncompressed_size == u32::MAX;
    if local.flags & 8 == 0 && !zip64 {
        if local.crc32 != entry.crc32 {
            return Err(mismatch("CRC-32").into());
        }
        if u64::from(local.compressed_size) != entry.compressed_size
            || u64::from(local.uncompressed_size) != entry.uncompressed_size
        {
            return Err(mismatch("sizes").into());
        }
    }
    Ok(())
}

/// The bytes between the entry's local header and `data_limit`; too few for a header is
/// corrupt.
pub(crate) fn room(entry: &Entry, data_limit: u64) -> Result<u64> {
    let offset = entry.header_offset;
    match data_limit.checked_sub(offset) {
        Some(room) if room >= FIXED_LEN as u64 => Ok(room),
        _ => Err(Corruption::OutOfBounds {
            name: lossy(entry.name()),
            what: "local header",
            offset,
            len: FIXED_LEN as u64,
            limit: data_limit,
        }
        .into()),
    }
}

/// The bytes one range should cover for `entry`: the local header with a slack for its
/// extra field, and the data.
pub(crate) fn span_of(entry: &Entry) -> u64 {
    let guess = FIXED_LEN as u64 + entry.name().len() as u64 + HEADER_SLACK;
    guess.saturating_add(entry.compressed_size)
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

impl Read for EntryReader {
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
        let result = if self.inflate.is_some() { self.read_deflate(out) } else { self.read_stored(out) };
        result.map_err(|e| {
            // Input not there yet: every step so far is committed (the decoders take input
            // only after it was read), so the reader stays usable.
            if !matches!(&e, Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock) {
                self.state = State::Failed;
            }
            e.into()
        })
    }
}
