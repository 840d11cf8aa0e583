//! [`EntryDecoder`]: one entry's local header, data and checks, with no I/O inside. It says
//! which range of the archive it wants, takes the bytes of that range as they come, and
//! writes the entry's uncompressed bytes; the end is only ever reported for data whose size
//! and CRC-32 checked out. [`EntryReader`](super::EntryReader) drives it over a blocking
//! source and the HTTP async entry over a response body: the checks are written once.
#![forbid(unsafe_code)]

use flate2::{Decompress, FlushDecompress, Status};

use super::checks::{Tally, check_local_header, check_readable, room, span_of};
use crate::checkpoints::{EntryCheckpoints, Recorder};
use crate::entry::Entry;
use crate::error::{Corruption, Error, Result, lossy};
use crate::zip::local_header::{self, FIXED_LEN};

/// One entry being read without I/O: a push decoder over the bytes of one range of the
/// archive (see the module docs).
///
/// The driver's loop, until [`is_done`](Self::is_done):
///
/// 1. [`next_range`](Self::next_range): `Some((offset, len))` means "read this range from
///    now on": at first, and at most once more, while the local header is read, when its
///    extra field is longer than the first range allowed for. The bytes of the old range
///    not yet taken are dropped; the bytes fed from then on start at `offset`. After the
///    header (once [`in_data`](Self::in_data)) it is always `None`. [`decode`](Self::decode)
///    refuses input while a range is wanted, so call `next_range` before every `decode`.
/// 2. [`decode`](Self::decode) with the range's next bytes (in pieces of any size, from
///    one byte on) and room for output (any size in the header, at least one byte in the
///    data); the decoder says how much it took and wrote. Bytes it did not take are fed
///    again next time.
/// 3. When the range's bytes run out while [`needs_input`](Self::needs_input),
///    [`end_of_input`](Self::end_of_input) gives the error to report (the range was cut
///    short). While it is `false` and the decoder is not done, `decode` goes on with no
///    input.
///
/// The first range runs past the entry's data by up to 1 KiB plus the name's length (room
/// for the extra field); the decoder never takes those bytes, so input left over at the end
/// is normal. Every error is final but a misuse (an `InvalidInput` I/O error, such as
/// output room of zero in the data), which leaves the decoder as it was.
///
/// ```
/// # fn main() -> artifact_core::Result<()> {
/// use artifact_core::{Archive, ArtifactPath, EntryDecoder, MemorySource, Source};
/// # let mut zip = Vec::new();
/// # { let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut zip));
/// #   w.start_file("a.txt", zip::write::SimpleFileOptions::default()).unwrap();
/// #   std::io::Write::write_all(&mut w, &b"hello ".repeat(100)).unwrap(); w.finish().unwrap(); }
/// let archive = Archive::open(MemorySource::new(zip))?;
/// let entry = archive.find(&ArtifactPath::new("a.txt")?)?;
/// let mut decoder = EntryDecoder::new(entry, archive.central_directory().data_limit())?;
/// let (mut bytes, mut out, mut file) = (Vec::new(), [0u8; 64], Vec::new());
/// while !decoder.is_done() {
///     if let Some((offset, len)) = decoder.next_range() {
///         bytes = archive.source().read_bytes(offset, len as usize)?.to_vec(); // a request
///     }
///     if bytes.is_empty() && decoder.needs_input() {
///         return Err(decoder.end_of_input());
///     }
///     let step = decoder.decode(&bytes, &mut out)?;
///     bytes.drain(..step.consumed);
///     file.extend_from_slice(&out[..step.produced]);
/// }
/// assert_eq!(file, b"hello ".repeat(100));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EntryDecoder {
    entry: Entry,
    /// Bytes from the local header to where entries' data must end.
    room: u64,
    /// End of the range the driver reads, relative to the local header.
    span: u64,
    /// A range the driver has not been told about yet.
    wanted: Option<(u64, u64)>,
    phase: Phase,
    inflate: Option<Inflater>,
    /// Compressed bytes of the entry not yet taken.
    remaining: u64,
    tally: Tally,
    data_offset: Option<u64>,
}

/// How a deflated entry is inflated: plainly, or recording checkpoints on the way.
#[derive(Debug)]
enum Inflater {
    Plain(Box<Decompress>),
    Recording(Box<Recorder>),
}

#[derive(Debug)]
enum Phase {
    /// The local header's bytes so far, and how many it has (30 until the fixed part told).
    Header {
        bytes: Vec<u8>,
        len: usize,
    },
    Data,
    Done,
    Failed,
}

/// What one [`EntryDecoder::decode`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decoded {
    /// Input bytes taken from the front of what was given; the next call starts after them.
    pub consumed: usize,
    /// Uncompressed bytes written to the front of the output.
    pub produced: usize,
}

impl EntryDecoder {
    /// A decoder for `entry`, whose data must end by `data_limit` (the central directory's
    /// offset, [`CentralDirectory::data_limit`](crate::CentralDirectory::data_limit)). Entries
    /// this engine cannot read (encrypted, an unsupported method, impossible sizes) and
    /// headers past the limit are refused here, before any byte is read. Its first range
    /// covers the local header with room for an extra field, and the data.
    pub fn new(entry: Entry, data_limit: u64) -> Result<EntryDecoder> {
        let span = span_of(&entry);
        EntryDecoder::within(entry, data_limit, span)
    }

    /// Like [`new`](Self::new), its first range `span` bytes long (a window of a coalesced
    /// read): bytes the header needs past it come from a second range.
    pub(crate) fn within(entry: Entry, data_limit: u64, span: u64) -> Result<EntryDecoder> {
        check_readable(&entry)?;
        let room = room(&entry, data_limit)?;
        let span = span.min(room);
        let tally = Tally {
            name: entry.name.clone(),
            crc: crc32fast::Hasher::new(),
            produced: 0,
            expected_size: entry.uncompressed_size,
            expected_crc: entry.crc32,
        };
        Ok(EntryDecoder {
            wanted: Some((entry.header_offset, span)),
            inflate: (entry.method == 8).then(|| Inflater::Plain(Box::new(Decompress::new(false)))),
            remaining: entry.compressed_size,
            phase: Phase::Header { bytes: Vec::with_capacity(FIXED_LEN), len: FIXED_LEN },
            data_offset: None,
            tally,
            entry,
            room,
            span,
        })
    }

    /// The entry being read.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// A range of the archive (offset and length) the driver must read from now on: at
    /// first, and once more if the local header needs bytes past the first range. Bytes
    /// given after this call come from the start of this range; `None` while the current
    /// range still serves.
    pub fn next_range(&mut self) -> Option<(u64, u64)> {
        self.wanted.take()
    }

    /// Where the entry's compressed data starts in the archive, once the local header has
    /// been read.
    pub fn data_offset(&self) -> Option<u64> {
        self.data_offset
    }

    /// Whether the local header has been read and checked: the bytes taken from here on are
    /// the entry's compressed data.
    pub fn in_data(&self) -> bool {
        matches!(self.phase, Phase::Data | Phase::Done)
    }

    /// Compressed bytes of the entry not yet taken.
    pub fn compressed_left(&self) -> u64 {
        self.remaining
    }

    /// Uncompressed bytes produced so far.
    pub fn produced(&self) -> u64 {
        self.tally.produced
    }

    /// Whether the whole entry has been produced and its size and CRC-32 checked out.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// Whether the decoder can go on only with more bytes of its range. `false` while a
    /// deflated entry, with all its compressed bytes taken, still has output to give or
    /// an end to check: then [`decode`](Self::decode) is called with no input.
    pub fn needs_input(&self) -> bool {
        match self.phase {
            Phase::Header { .. } => true,
            Phase::Data => self.remaining > 0,
            Phase::Done | Phase::Failed => false,
        }
    }

    /// Whether the entry is stored (not compressed): its data is its bytes, which a driver
    /// may put where they go itself and account for with [`take_stored`](Self::take_stored).
    pub fn is_stored(&self) -> bool {
        self.inflate.is_none()
    }

    /// Records [checkpoints](crate::checkpoints) while the entry is inflated: one at the
    /// first deflate block start after every `spacing` bytes of output, handed out by
    /// [`take_checkpoints`](Self::take_checkpoints) once the entry checked out. Reading
    /// the entry once then both verifies it and makes any later offset of it cheap to
    /// reach ([`EntryCheckpoints::resume`]). Costs a little inflate speed (inflate stops
    /// at every block start) and, per checkpoint, its window deflated: memory grows with
    /// the entry, up to 32 KiB per `spacing` bytes of output (a spacing of 0 or 1 is a
    /// checkpoint at every block start). Choose `spacing` from the entry's size to bound it.
    ///
    /// Only for a deflated entry ([`CheckpointProblem::NotDeflated`](crate::CheckpointProblem))
    /// before any of its data was taken (a misuse otherwise: `InvalidInput`, nothing
    /// changed).
    pub fn keep_checkpoints(&mut self, spacing: u64) -> Result<()> {
        if self.inflate.is_none() {
            let name = lossy(self.entry.name());
            return Err(crate::error::CheckpointProblem::NotDeflated { name }.into());
        }
        let untouched = matches!(self.phase, Phase::Header { .. })
            || (matches!(self.phase, Phase::Data)
                && self.remaining == self.entry.compressed_size
                && self.tally.produced == 0);
        if !untouched {
            return Err(misuse("keep_checkpoints: the entry's data was taken already, or the decoder is done"));
        }
        let recorder = Recorder::new(self.entry.uncompressed_size, spacing)?;
        self.inflate = Some(Inflater::Recording(Box::new(recorder)));
        Ok(())
    }

    /// The checkpoints recorded since [`keep_checkpoints`](Self::keep_checkpoints), once
    /// the decoder [is done](Self::is_done) (the entry's size and CRC-32 checked out):
    /// possibly no points at all (an entry shorter than the spacing, or one long block).
    /// `None` before the end, without `keep_checkpoints`, or once taken.
    pub fn take_checkpoints(&mut self) -> Option<EntryCheckpoints> {
        if !self.is_done() || !matches!(self.inflate, Some(Inflater::Recording(_))) {
            return None;
        }
        let Some(Inflater::Recording(recorder)) = self.inflate.take() else { unreachable!() };
        // Stays a deflated entry's decoder (is_stored and the rest look at `inflate`).
        self.inflate = Some(Inflater::Plain(Box::new(Decompress::new(false))));
        Some(recorder.into_checkpoints(self.entry.crc32, self.entry.compressed_size))
    }

    /// Takes bytes from the front of `input` (the range's next bytes) and writes the entry's
    /// uncompressed bytes to the front of `out`. The local header is read first (nothing is
    /// written meanwhile, and `out` may be empty); then the data (`out` must not be empty).
    /// Takes nothing and writes nothing once done, and nothing but pending output while
    /// input is given and none is needed. An error is final (the entry is damaged, or
    /// changed, and every later call fails), but for a misuse: input while a range is
    /// wanted, or no room for output in the data.
    pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<Decoded> {
        if self.wanted.is_some() {
            return Err(misuse("decode: a range is wanted; call next_range and feed its bytes"));
        }
        if out.is_empty() && matches!(self.phase, Phase::Data) {
            return Err(misuse("decode: no room for output in the entry's data"));
        }
        let result = match self.phase {
            Phase::Header { .. } => self.header(input),
            Phase::Data if self.inflate.is_some() => self.inflate(input, out),
            Phase::Data => self.copy_stored(input, out),
            Phase::Done => Ok(Decoded { consumed: 0, produced: 0 }),
            Phase::Failed => Err(failed_earlier()),
        };
        self.fail_on(result)
    }

    /// For a stored entry in its data: `data`, the entry's next bytes, which the driver
    /// read straight to where they go, are counted and checked as [`decode`](Self::decode)
    /// would; at most [`compressed_left`](Self::compressed_left) of them.
    pub fn take_stored(&mut self, data: &[u8]) -> Result<()> {
        match self.phase {
            Phase::Data if self.inflate.is_none() && data.len() as u64 <= self.remaining => {
                let result = self.stored(data).map(|()| Decoded { consumed: data.len(), produced: data.len() });
                self.fail_on(result).map(|_| ())
            }
            Phase::Failed => Err(failed_earlier()),
            _ => Err(misuse("take_stored: not in a stored entry's data, or past its end")),
        }
    }

    /// The error for a range whose bytes ran out before the decoder was done: the local
    /// header cut short, or the data. The decoder is failed afterwards.
    pub fn end_of_input(&mut self) -> Error {
        let offset = self.entry.header_offset;
        let e = match &self.phase {
            Phase::Header { .. } => self.out_of_bounds("local header", offset, FIXED_LEN as u64).into(),
            Phase::Failed => failed_earlier(),
            // Nothing was missing: a misuse, which leaves the verified entry as it is.
            Phase::Done => return misuse("end_of_input: the entry is complete and verified"),
            Phase::Data => Corruption::Deflate {
                name: lossy(self.entry.name()),
                consumed: self.entry.compressed_size - self.remaining,
                why: "the source ended inside the entry's data".into(),
            }
            .into(),
        };
        self.phase = Phase::Failed;
        e
    }

    fn fail_on(&mut self, result: Result<Decoded>) -> Result<Decoded> {
        if result.is_err() {
            self.phase = Phase::Failed;
        }
        result
    }

    fn out_of_bounds(&self, what: &'static str, offset: u64, len: u64) -> Corruption {
        let limit = self.entry.header_offset + self.room;
        Corruption::OutOfBounds { name: lossy(self.entry.name()), what, offset, len, limit }
    }

    /// Gathers the local header; checks it once whole.
    fn header(&mut self, input: &[u8]) -> Result<Decoded> {
        let offset = self.entry.header_offset;
        let Phase::Header { bytes, len } = &mut self.phase else { unreachable!("header() outside the header") };
        let take = (*len - bytes.len()).min(input.len());
        bytes.extend_from_slice(&input[..take]);
        let done = Decoded { consumed: take, produced: 0 };
        if bytes.len() < *len {
            return Ok(done);
        }
        if *len == FIXED_LEN {
            let header_len = match local_header::parse(bytes, offset)? {
                Ok(h) => h.len,
                Err(local_header::NeedMore(n)) => n as u64,
            };
            // A name of another length is a mismatch now, before any second range.
            let name_len = usize::from(u16::from_le_bytes([bytes[26], bytes[27]]));
            if name_len != self.entry.name().len() {
                let name = lossy(self.entry.name());
                return Err(Corruption::LocalHeaderMismatch { name, offset, field: "name" }.into());
            }
            let data_end = header_len.checked_add(self.entry.compressed_size).filter(|&e| e <= self.room);
            let Some(data_end) = data_end else {
                let at = offset.saturating_add(header_len);
                return Err(self.out_of_bounds("data", at, self.entry.compressed_size).into());
            };
            let Phase::Header { bytes, len } = &mut self.phase else { unreachable!() };
            *len = header_len as usize;
            bytes.reserve(*len - FIXED_LEN);
            if data_end > self.span {
                // The local extra field outgrew the slack: one more range, from after the
                // fixed part to the end of the data.
                self.span = data_end;
                self.wanted = Some((offset + FIXED_LEN as u64, data_end - FIXED_LEN as u64));
                return Ok(done);
            }
            if bytes.len() < *len {
                return Ok(done);
            }
        }
        let Phase::Header { bytes, len } = &self.phase else { unreachable!() };
        let local = match local_header::parse(bytes, offset)? {
            Ok(h) => h,
            Err(_) => return Err(self.out_of_bounds("local header", offset, *len as u64).into()),
        };
        check_local_header(&self.entry, &local, offset)?;
        self.data_offset = Some(offset + local.len);
        self.phase = Phase::Data;
        if self.inflate.is_none() && self.remaining == 0 {
            self.tally.finish()?;
            self.phase = Phase::Done;
        }
        Ok(done)
    }

    fn copy_stored(&mut self, input: &[u8], out: &mut [u8]) -> Result<Decoded> {
        let n = (input.len().min(out.len()) as u64).min(self.remaining) as usize;
        out[..n].copy_from_slice(&input[..n]);
        self.stored(&out[..n])?;
        Ok(Decoded { consumed: n, produced: n })
    }

    fn stored(&mut self, data: &[u8]) -> Result<()> {
        self.remaining -= data.len() as u64;
        self.tally.add(data)?;
        if self.remaining == 0 {
            self.tally.finish()?;
            self.phase = Phase::Done;
        }
        Ok(())
    }

    fn inflate(&mut self, input: &[u8], out: &mut [u8]) -> Result<Decoded> {
        if out.is_empty() {
            return Ok(Decoded { consumed: 0, produced: 0 });
        }
        let src = &input[..(input.len() as u64).min(self.remaining) as usize];
        let ran = match self.inflate.as_mut() {
            Some(Inflater::Plain(inflate)) => {
                let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
                let status = inflate.decompress(src, out, FlushDecompress::None);
                let consumed = (inflate.total_in() - in_before) as usize;
                let produced = (inflate.total_out() - out_before) as usize;
                let total_in = inflate.total_in();
                match status {
                    Ok(status) => Ok((consumed, produced, status == Status::StreamEnd, total_in)),
                    Err(e) => Err((total_in, e.to_string())),
                }
            }
            Some(Inflater::Recording(recorder)) => match recorder.run(src, out) {
                Ok(ran) => Ok((ran.consumed, ran.produced, ran.ended, recorder.total_in())),
                Err(why) => Err((recorder.total_in(), why.to_owned())),
            },
            None => unreachable!("inflate() on a stored entry"),
        };
        let (consumed, produced, ended, total_in) = ran.map_err(|(total_in, why)| self.broken(total_in, &why))?;
        self.remaining -= consumed as u64;
        self.tally.add(&out[..produced])?;
        if ended {
            self.tally.finish()?;
            self.phase = Phase::Done;
        } else if produced == 0 && consumed == 0 {
            if self.remaining == 0 {
                return Err(self.broken(total_in, "compressed data ends before the deflate stream does"));
            }
            if !src.is_empty() {
                // Input available, room for output, and the decoder took nothing: only a
                // broken stream does that; refuse to spin.
                return Err(self.broken(total_in, "the decoder made no progress"));
            }
        }
        Ok(Decoded { consumed, produced })
    }
}

impl EntryDecoder {
    /// The engine's error for bad deflate data of this entry, `total_in` compressed bytes in.
    fn broken(&self, total_in: u64, why: &str) -> Error {
        Corruption::Deflate { name: lossy(self.entry.name()), consumed: total_in, why: why.into() }.into()
    }
}

/// A call the decoder's state does not allow; the state is left as it was.
fn misuse(why: &'static str) -> Error {
    Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, why))
}

fn failed_earlier() -> Error {
    Error::Io(std::io::Error::other("entry reader failed earlier; the entry is unusable"))
}
