//! [`CheckpointingReader`]: an entry inflated once, verified, its checkpoints recorded on the way.
#![forbid(unsafe_code)]

use super::*;

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
            return Err(CheckpointProblem::NotDeflated { name: name_of(entry) }.into());
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
