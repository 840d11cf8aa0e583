//! Streaming one entry: local header check, then stored copy or inflate, with the CRC-32
//! and the size verified before the end of the stream is reported. The reading is
//! [`EntryDecoder`]'s (no I/O inside; its checks in `checks.rs`); [`EntryReader`] is its
//! blocking driver.
#![forbid(unsafe_code)]

mod checks;
mod sans_io;

pub(crate) use checks::span_of;
pub use sans_io::{Decoded, EntryDecoder};

use std::io::{self, BufRead, BufReader, Read, Write};

use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::source::{RangeReader, Source};

/// Read-ahead of compressed bytes: what one positional read or one socket read fills.
const INPUT_CHUNK: usize = 64 * 1024;

/// Reads one entry's uncompressed bytes: the blocking driver of an [`EntryDecoder`].
///
/// The local header and the data come from one range of the source (one request for a
/// remote one). Every read is checked: the stream never yields more than the declared size,
/// and the read that would end it fails instead if the size or CRC-32 is wrong, so end of
/// file is only ever reported for data that verified. An error is final (every later read
/// fails too), but for a source's `Interrupted` or `WouldBlock`, after which the next read
/// goes on where this one stopped.
#[derive(Debug)]
pub struct EntryReader {
    decoder: EntryDecoder,
    input: Input,
    failed: bool,
}

struct Input(BufReader<RangeReader>);

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Input")
    }
}

impl EntryReader {
    /// Checks `entry` can be read, opens one range over its local header and data, checks
    /// the header against the central directory and gets ready to stream. `data_limit` is
    /// where entries' data must end: the central directory's offset.
    pub(crate) fn new<S: Source + ?Sized>(source: &S, entry: Entry, data_limit: u64) -> Result<EntryReader> {
        let mut decoder = EntryDecoder::new(entry, data_limit)?;
        let Some((offset, len)) = decoder.next_range() else { unreachable!("a new decoder wants its range") };
        let stream = source.read_stream(offset, len)?;
        EntryReader::drive_header(source, decoder, stream)
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
        let mut decoder = EntryDecoder::within(entry, data_limit, span)?;
        decoder.next_range();
        EntryReader::drive_header(source, decoder, stream)
    }

    /// Feeds the decoder until the local header is read and checked, opening the second
    /// range it may want.
    fn drive_header<S: Source + ?Sized>(
        source: &S,
        mut decoder: EntryDecoder,
        stream: RangeReader,
    ) -> Result<EntryReader> {
        let mut input = BufReader::with_capacity(INPUT_CHUNK, stream);
        while !decoder.in_data() {
            if let Some((offset, len)) = decoder.next_range() {
                input = BufReader::with_capacity(INPUT_CHUNK, source.read_stream(offset, len)?);
            }
            let bytes = match input.fill_buf() {
                Ok([]) => return Err(decoder.end_of_input()),
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A source shorter than its range: the header is cut short.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(decoder.end_of_input()),
                Err(e) => return Err(Error::from_io(e)),
            };
            let step = decoder.decode(bytes, &mut [])?;
            input.consume(step.consumed);
        }
        Ok(EntryReader { decoder, input: Input(input), failed: false })
    }

    /// The entry being read.
    pub fn entry(&self) -> &Entry {
        self.decoder.entry()
    }

    /// Where the entry's compressed data starts in the archive (just past its local
    /// header), for callers that read stored data from an offset directly.
    pub fn data_offset(&self) -> u64 {
        self.decoder.data_offset().unwrap_or_else(|| unreachable!("a reader is made past the local header"))
    }

    /// The entry's compressed bytes exactly as stored (raw deflate for method 8), for
    /// passing through without inflating; the local header has been checked. Nothing is
    /// verified past that: the receiver checks the CRC-32 (a gzip trailer built from the
    /// central directory does that). A source that ends early is an `UnexpectedEof` error,
    /// never a short end of file. Call it before reading any uncompressed bytes.
    pub fn into_compressed(self) -> CompressedReader {
        CompressedReader { input: self.input, remaining: self.decoder.compressed_left() }
    }

    /// Uncompressed bytes produced so far.
    pub fn produced(&self) -> u64 {
        self.decoder.produced()
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

    /// One read: stored bytes straight into `out` (no copy through the decoder), deflated
    /// ones through it.
    fn read_some(&mut self, out: &mut [u8]) -> Result<usize> {
        let decoder = &mut self.decoder;
        if decoder.is_stored() {
            let want = (out.len() as u64).min(decoder.compressed_left()) as usize;
            if want == 0 {
                return Ok(0);
            }
            let n = self.input.0.read(&mut out[..want]).map_err(Error::from_io)?;
            if n == 0 {
                return Err(decoder.end_of_input());
            }
            decoder.take_stored(&out[..n])?;
            return Ok(n);
        }
        loop {
            let bytes = if decoder.needs_input() { self.input.0.fill_buf().map_err(Error::from_io)? } else { &[][..] };
            if bytes.is_empty() && decoder.needs_input() {
                return Err(decoder.end_of_input());
            }
            let step = decoder.decode(bytes, out)?;
            self.input.0.consume(step.consumed);
            if step.produced > 0 && !decoder.is_done() && decoder.produced() == decoder.entry().size() {
                // The entry's last bytes: reported only once the size and CRC-32 checked
                // out, so a reader that stops at the entry's size never took bytes that fail.
                self.finish_check()?;
                return Ok(step.produced);
            }
            if step.produced > 0 || decoder.is_done() {
                return Ok(step.produced);
            }
        }
    }

    /// Runs a deflated entry's decoder to its end once all its bytes are out: the rest of
    /// the deflate stream (its last blocks' ends), then the size and CRC-32 checks. Any
    /// more output is the decoder's size error.
    fn finish_check(&mut self) -> Result<()> {
        let decoder = &mut self.decoder;
        let mut room = [0u8; 1];
        while !decoder.is_done() {
            let bytes = if decoder.needs_input() { self.input.0.fill_buf().map_err(Error::from_io)? } else { &[][..] };
            if bytes.is_empty() && decoder.needs_input() {
                return Err(decoder.end_of_input());
            }
            let step = decoder.decode(bytes, &mut room)?;
            self.input.0.consume(step.consumed);
        }
        Ok(())
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

impl Read for EntryReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("entry reader failed earlier; the entry is unusable"));
        }
        if out.is_empty() || self.decoder.is_done() {
            return Ok(0);
        }
        self.read_some(out).map_err(|e| {
            // A source that was interrupted or would block took nothing: the next read goes
            // on from the same place. Anything else ends the entry.
            let retry = matches!(&e, Error::Io(io) if matches!(io.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock));
            if !retry {
                self.failed = true;
            }
            e.into()
        })
    }
}
