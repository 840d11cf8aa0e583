//! Inflating an entry from a checkpoint: the inflater primed with the checkpoint's bits and
//! window, fed the compressed bytes from there to the entry's end.
#![forbid(unsafe_code)]

use super::*;

impl EntryCheckpoints {
    /// An inflater of the entry `name` (its data at `data` in `source`) from `point`
    /// (`None`: the start) to the entry's end.
    pub(super) fn inflater<S: Source + ?Sized>(
        &self,
        source: &S,
        data: u64,
        point: Option<&Checkpoint>,
        name: &str,
    ) -> Result<Inflating<crate::RangeReader>> {
        let mut inflate = RawInflate::new()?;
        let (out, input) = match point {
            None => (0, 0),
            Some(p) => {
                let unusable = |_| CheckpointProblem::Damaged("a checkpoint that inflate cannot start from");
                if p.bits > 0 {
                    let byte = source.read_bytes(data + p.input - 1, 1)?;
                    inflate.prime(p.bits, byte[0] >> (8 - p.bits)).map_err(unusable)?;
                }
                inflate.set_window(&unpack(&p.window)?).map_err(unusable)?;
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
            name: name.to_owned(),
            consumed: input,
        })
    }
}

/// Inflating from a checkpoint to the entry's end.
pub(super) struct Inflating<R> {
    inflate: RawInflate,
    input: R,
    inbuf: Vec<u8>,
    start: usize,
    end: usize,
    /// Output still due.
    left: u64,
    done: bool,
    /// The entry's name and the compressed bytes taken so far, for errors.
    name: String,
    consumed: u64,
}

impl<R> Inflating<R> {
    /// The engine's error for bad deflate data, as the entry reader gives it.
    fn corrupt(&self, why: &str) -> io::Error {
        let (name, consumed) = (self.name.clone(), self.consumed);
        Error::from(Corruption::Deflate { name, consumed, why: why.to_owned() }).into()
    }
}

impl<R: Read> Read for Inflating<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.done {
            return Err(self.corrupt("the deflate stream ended before the entry's size"));
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
            self.consumed += used as u64;
            if eof && used == 0 && made == 0 && ret != libz_rs_sys::Z_STREAM_END {
                return Err(self.corrupt("the source ended inside the entry's data"));
            }
            match ret {
                libz_rs_sys::Z_STREAM_END => self.done = true,
                libz_rs_sys::Z_OK | libz_rs_sys::Z_BUF_ERROR => {}
                _ => return Err(self.corrupt("corrupt deflate stream")),
            }
            if made > 0 {
                self.left -= made as u64;
                return Ok(made);
            }
            if self.done {
                return Err(self.corrupt("the deflate stream ended before the entry's size"));
            }
        }
    }
}

/// Inflating from a checkpoint without I/O, for a driver that feeds the compressed bytes
/// as they come (the async window of a verified entry): the first byte given is the one
/// whose last bits the checkpoint's block starts in, when it starts mid-byte.
#[cfg(all(feature = "http", feature = "tokio"))]
pub(crate) struct Resume {
    inflate: RawInflate,
    /// Bits of the first byte still to prime, and the window to set after them.
    first: Option<(u8, Vec<u8>)>,
}

#[cfg(all(feature = "http", feature = "tokio"))]
impl std::fmt::Debug for Resume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resume").field("primed", &self.first.is_none()).finish()
    }
}

#[cfg(all(feature = "http", feature = "tokio"))]
impl Resume {
    /// An inflater starting at `point` (`None`: the entry's start), and the offset of the
    /// first compressed byte to feed it, from the start of the entry's data.
    pub(crate) fn new(point: Option<&Checkpoint>) -> Result<(Resume, u64)> {
        let mut inflate = RawInflate::new()?;
        let unusable = |_| CheckpointProblem::Damaged("a checkpoint that inflate cannot start from");
        let Some(p) = point else {
            return Ok((Resume { inflate, first: None }, 0));
        };
        let window = unpack(&p.window)?;
        if p.bits == 0 {
            inflate.set_window(&window).map_err(unusable)?;
            return Ok((Resume { inflate, first: None }, p.input));
        }
        // A checkpoint mid-byte has consumed at least that byte.
        let from = p.input.checked_sub(1).ok_or(CheckpointProblem::Damaged("a checkpoint before its first byte"))?;
        Ok((Resume { inflate, first: Some((p.bits, window)) }, from))
    }

    /// Inflates `input` into `out`: input taken, output made, whether the deflate stream
    /// ended. `Err`: the data does not inflate from here (why).
    pub(crate) fn run(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> std::result::Result<(usize, usize, bool), &'static str> {
        let mut skipped = 0;
        if let Some((bits, window)) = self.first.take() {
            let Some(&byte) = input.first() else {
                self.first = Some((bits, window));
                return Ok((0, 0, false));
            };
            self.inflate.prime(bits, byte >> (8 - bits)).map_err(|_| "a checkpoint that inflate cannot start from")?;
            self.inflate.set_window(&window).map_err(|_| "a checkpoint that inflate cannot start from")?;
            skipped = 1;
        }
        let (used, made, ret) = self.inflate.run(&input[skipped..], out, libz_rs_sys::Z_NO_FLUSH);
        match ret {
            libz_rs_sys::Z_STREAM_END => Ok((skipped + used, made, true)),
            libz_rs_sys::Z_OK | libz_rs_sys::Z_BUF_ERROR => Ok((skipped + used, made, false)),
            _ => Err("corrupt deflate stream"),
        }
    }
}
