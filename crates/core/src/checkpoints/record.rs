//! [`Recorder`]: an inflater that records checkpoints as it goes, for a decoder that reads
//! an entry once and keeps them ([`EntryDecoder::keep_checkpoints`](crate::EntryDecoder::keep_checkpoints)).
#![forbid(unsafe_code)]

use super::*;

/// Raw inflate that stops at block starts (`Z_BLOCK`) and records a checkpoint at the first
/// one after every `spacing` bytes of output; the window comes from inflate's own (no copy
/// of the output is kept). The decoder around it checks the size and CRC-32: the
/// checkpoints are handed out only for an entry that checked out.
pub(crate) struct Recorder {
    inflate: RawInflate,
    spacing: u64,
    /// Compressed bytes taken and uncompressed bytes made since the entry's start.
    consumed: u64,
    produced: u64,
    /// Output at the last checkpoint (or the start).
    last: u64,
    /// The entry's uncompressed size: no checkpoint at its very end.
    size: u64,
    points: Vec<Checkpoint>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("produced", &self.produced).field("points", &self.points.len()).finish()
    }
}

/// What one [`Recorder::run`] did: input taken, output made, whether the deflate stream
/// ended.
pub(crate) struct Ran {
    pub(crate) consumed: usize,
    pub(crate) produced: usize,
    pub(crate) ended: bool,
}

impl Recorder {
    /// An inflater for an entry of `size` bytes, recording every `spacing` bytes.
    pub(crate) fn new(size: u64, spacing: u64) -> io::Result<Recorder> {
        Ok(Recorder {
            inflate: RawInflate::new()?,
            spacing: spacing.max(1),
            consumed: 0,
            produced: 0,
            last: 0,
            size,
            points: Vec::new(),
        })
    }

    /// Compressed bytes taken so far.
    pub(crate) fn total_in(&self) -> u64 {
        self.consumed
    }

    /// Inflates `input` into `out`, going on across block starts while both last, and
    /// records the checkpoints that fall due. `Err`: the deflate data is bad (why).
    pub(crate) fn run(&mut self, input: &[u8], out: &mut [u8]) -> std::result::Result<Ran, &'static str> {
        let (mut taken, mut made) = (0, 0);
        // Two calls in a row without progress: inflate stopped at a block start and then
        // has nothing to go on with (the first such call only steps over the stop).
        let mut idle = 0;
        loop {
            let (used, n, ret) = self.inflate.run(&input[taken..], &mut out[made..], libz_rs_sys::Z_BLOCK);
            (taken, made) = (taken + used, made + n);
            (self.consumed, self.produced) = (self.consumed + used as u64, self.produced + n as u64);
            match ret {
                libz_rs_sys::Z_STREAM_END => return Ok(Ran { consumed: taken, produced: made, ended: true }),
                libz_rs_sys::Z_OK | libz_rs_sys::Z_BUF_ERROR => {}
                _ => return Err("invalid deflate data"),
            }
            let Some(bits) = self.inflate.at_block_start() else {
                return Ok(Ran { consumed: taken, produced: made, ended: false });
            };
            if self.produced - self.last >= self.spacing
                && self.produced < self.size
                && let Some(window) = self.inflate.window()
            {
                let window = pack(&window);
                self.points.push(Checkpoint { out: self.produced, input: self.consumed, bits, window });
                self.last = self.produced;
            }
            idle = if used + n == 0 { idle + 1 } else { 0 };
            // A stop without progress is stepped over once, whatever is left: inflate may
            // have met the block's end in bits it held (the input may be all taken).
            if idle == 1 {
                continue;
            }
            if idle >= 2 || taken == input.len() || made == out.len() {
                return Ok(Ran { consumed: taken, produced: made, ended: false });
            }
        }
    }

    /// The checkpoints, for the entry whose size, CRC-32 and compressed size are given
    /// (the caller has checked that the entry verified).
    pub(crate) fn into_checkpoints(self, crc32: u32, compressed: u64) -> EntryCheckpoints {
        EntryCheckpoints { size: self.size, crc32, compressed, points: self.points }
    }
}
