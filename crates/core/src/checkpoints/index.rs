//! The index of one entry: its checkpoints, what they were built from, and where a read
//! from any offset starts.
#![forbid(unsafe_code)]

use super::*;

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
    pub(super) window: Vec<u8>,
}

impl Checkpoint {
    /// The length of its window as kept (raw-deflated), in bytes.
    pub fn window_len(&self) -> usize {
        self.window.len()
    }
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

impl EntryCheckpoints {
    /// Inflates `entry` of `archive` once, block by block, and records a checkpoint at the
    /// first block start after every `spacing` bytes of output. The entry's size and CRC-32
    /// are checked as it goes: an entry that does not verify is an error
    /// ([`Corruption`]), one that is not deflated [`CheckpointProblem::NotDeflated`]. Memory: the 256 KiB output ring and the input buffer.
    pub fn build<S: Source>(archive: &crate::Archive<S>, entry: &Entry, spacing: u64) -> Result<EntryCheckpoints> {
        let mut reader = CheckpointingReader::new(archive, entry, spacing)?;
        io::copy(&mut reader, &mut io::sink()).map_err(Error::from_io)?;
        reader.into_checkpoints().ok_or_else(|| CheckpointProblem::Unfinished { name: name_of(entry) }.into())
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
            return Err(CheckpointProblem::OtherEntry { name: name_of(entry) }.into());
        }
        let offset = offset.min(entry.size());
        let data = archive.reader(entry)?.data_offset();
        let point = self.nearest(offset);
        let reader = self.inflater(archive.source(), data, point, &name_of(entry))?;
        Ok((offset - point.map_or(0, |p| p.out), Box::new(reader)))
    }

    /// Segments: from the start, then from each checkpoint.
    pub(super) fn segments(&self) -> usize {
        self.points.len() + 1
    }

    /// Segment `i`: where it starts (`None`: the entry's start) and its length.
    pub(super) fn segment(&self, i: usize) -> (Option<&Checkpoint>, u64) {
        let start = i.checked_sub(1).map(|j| &self.points[j]);
        let from = start.map_or(0, |p| p.out);
        let to = self.points.get(i).map_or(self.size, |p| p.out);
        (start, to - from)
    }
}
