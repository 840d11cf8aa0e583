//! [`VerifiedEntry`]: what a whole read of an entry that checked out leaves behind;
//! [`VerifiedWindow`]: a window of such an entry, read directly with one range request.
#![forbid(unsafe_code)]

use super::*;
use crate::checkpoints::{EntryCheckpoints, Resume};

/// An entry that a whole read verified (its size and CRC-32 checked out) in one version of
/// its archive, with what reading a window of it directly takes: where its data starts
/// and, for a deflated entry read with [checkpoints kept](AsyncEntry::keep_checkpoints),
/// its checkpoints. Made by [`AsyncEntry::verified`] (or [`GzipEntry::verified`]) at the
/// end of a read; a server keeps it by archive version and path and answers later
/// `Range` requests with
/// [`RemoteArchives::open_verified_window_async`](crate::http::RemoteArchives::open_verified_window_async).
///
/// Only archives with a strong `ETag` have verdicts: without one, two versions of an
/// archive could not be told apart byte for byte (`Last-Modified` has one-second steps).
#[derive(Debug, Clone)]
pub struct VerifiedEntry {
    pub(super) entry: Entry,
    pub(super) validator: crate::http::Validator,
    pub(super) data_offset: u64,
    pub(super) checkpoints: Option<Arc<EntryCheckpoints>>,
}

impl VerifiedEntry {
    /// The entry, as the central directory of the version read describes it.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The archive version it was verified in.
    pub fn validator(&self) -> &crate::http::Validator {
        &self.validator
    }

    /// Where the entry's data starts in the archive (after its local header, checked).
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The checkpoints recorded in the verifying read, if they were kept.
    pub fn checkpoints(&self) -> Option<&Arc<EntryCheckpoints>> {
        self.checkpoints.as_ref()
    }

    /// The same verdict without its checkpoints (windows of a deflated entry are then
    /// read from the entry's data start): for a keeper with no room for them.
    pub fn without_checkpoints(&self) -> VerifiedEntry {
        VerifiedEntry { checkpoints: None, ..self.clone() }
    }

    /// Roughly the bytes this holds in memory (its checkpoints' windows, mostly): what a
    /// cache of verdicts bounded by memory weighs it at.
    pub fn weight(&self) -> usize {
        let points = self.checkpoints.as_ref().map_or(0, |c| c.points.iter().map(|p| p.window_len() + 48).sum());
        std::mem::size_of::<VerifiedEntry>() + self.entry.name().len() + points
    }

    /// Whether this verdict is for `at` (the same entry in the same archive version).
    fn fits(&self, at: &RemoteEntry) -> bool {
        self.entry == at.entry && self.validator == at.identity.validator && strong(&self.validator)
    }
}

/// Whether `validator` tells versions of an archive apart byte for byte: a strong `ETag`
/// (checked with `If-Match`). A date is not: two versions written within its second, of
/// one size, would pass for one.
fn strong(validator: &crate::http::Validator) -> bool {
    matches!(validator, crate::http::Validator::ETag(_))
}

impl AsyncEntry {
    /// Records [checkpoints](crate::checkpoints) every `spacing` bytes of output while this
    /// entry is read ([`EntryDecoder::keep_checkpoints`]); they come with
    /// [`verified`](Self::verified) once the read checked out. Only for a deflated entry
    /// none of whose bytes were read yet.
    pub fn keep_checkpoints(&mut self, spacing: u64) -> Result<()> {
        self.decoder.keep_checkpoints(spacing)
    }

    /// Where the entry's data starts in the archive (its local header was read and checked
    /// when the entry was opened).
    pub fn data_offset(&self) -> u64 {
        self.decoder.data_offset().unwrap_or_default()
    }

    /// The verdict of this read, once it ended verified (the stream's end, which comes only
    /// after the size and CRC-32 checked out), with the checkpoints kept (taken: a second
    /// call has none); `None` before, after an error, or for an archive without a strong
    /// `ETag`.
    pub fn verified(&mut self) -> Option<VerifiedEntry> {
        if !self.decoder.is_done() || !strong(&self.identity.validator) {
            return None;
        }
        Some(VerifiedEntry {
            entry: self.decoder.entry().clone(),
            validator: self.identity.validator.clone(),
            data_offset: self.decoder.data_offset()?,
            checkpoints: self.decoder.take_checkpoints().map(Arc::new),
        })
    }
}

impl GzipEntry {
    /// The verdict of this read once its trailer went out ([`AsyncEntry::verified`]).
    pub fn verified(&mut self) -> Option<VerifiedEntry> {
        self.verified.then(|| self.inner.verified()).flatten()
    }
}

/// Bytes `skip..skip + len` of a verified entry, as a `Stream`, read with one range
/// request from the entry's data: a stored entry's window itself; a deflated one's from
/// its nearest checkpoint at or before `skip` (the entry's start without checkpoints) up to
/// the next one past the window, inflated and cut. Made by
/// [`RemoteArchives::open_verified_window_async`](crate::http::RemoteArchives::open_verified_window_async).
///
/// The entry's CRC-32 is not computed again (a window alone has none): these bytes are
/// trusted because the whole entry verified in this archive version, which every request
/// checks with `If-Match`. The stream ends after exactly `len` bytes, or
/// in an error item (the data does not inflate, the body ends early or stalls).
#[derive(Debug)]
pub struct VerifiedWindow {
    frames: Frames,
    pending: Bytes,
    /// `None`: a stored entry.
    inflate: Option<Box<Resume>>,
    /// Uncompressed bytes still to drop before the window (deflated).
    skip: u64,
    left: u64,
    name: String,
    /// Compressed bytes taken, from the entry's data start (for errors).
    consumed: u64,
    scratch: Vec<u8>,
    done: bool,
}

/// What one inflate step of a window did.
enum Step {
    Chunk(Bytes),
    /// Took input or dropped bytes before the window: go on.
    Went,
    /// Nothing without more input.
    NeedInput,
}

impl VerifiedWindow {
    /// Opens the window: one range request (none for an empty window).
    pub(crate) async fn open(
        client: &HttpClient,
        at: &RemoteEntry,
        verified: &VerifiedEntry,
        (skip, len): (u64, u64),
        counter: Arc<ReadCounter>,
    ) -> Result<Option<VerifiedWindow>> {
        if !verified.fits(at) {
            return Ok(None);
        }
        let entry = &at.entry;
        if skip.checked_add(len).is_none_or(|end| end > entry.size()) {
            let why = format!("bytes {skip}+{len} of an entry of {} bytes", entry.size());
            return Err(Error::Io(io::Error::new(io::ErrorKind::InvalidInput, why)));
        }
        let data = verified.data_offset;
        // A verdict read from a cache says where the data is: every offset computed from it
        // stays within the entry's data (a stored entry's window is within its size).
        let stored_fits = entry.method() != 0 || entry.size() == entry.compressed_size();
        if data.checked_add(entry.compressed_size()).is_none() || !stored_fits {
            let why = "a verdict whose data offset is impossible";
            return Err(Error::Io(io::Error::new(io::ErrorKind::InvalidData, why)));
        }
        let (span, inflate, skip) = if entry.method() == 0 {
            ((data + skip, data + skip + len), None, 0)
        } else {
            let points = verified.checkpoints.as_deref().filter(|c| c.fits(entry));
            let point = points.and_then(|c| c.nearest(skip));
            let (resume, from) = Resume::new(point)?;
            // Up to the first checkpoint at or past the window's end: its input covers it.
            let end = skip + len;
            let to = points
                .and_then(|c| c.points.iter().find(|p| p.out >= end))
                .map_or(entry.compressed_size(), |p| p.input);
            ((data + from, data + to), Some(Box::new(resume)), skip - point.map_or(0, |p| p.out))
        };
        let body = if len == 0 || span.0 == span.1 {
            None
        } else {
            Some(range(client, &mut std::borrow::Cow::Borrowed(at), span, &counter).await?)
        };
        Ok(Some(VerifiedWindow {
            frames: Frames::new(body, at.url.clone(), client.stall(), counter),
            pending: Bytes::new(),
            inflate,
            skip,
            left: len,
            name: entry.display_name().into_owned(),
            consumed: span.0 - data,
            scratch: Vec::new(),
            done: false,
        }))
    }

    /// Bytes of the window still to come.
    pub fn len(&self) -> u64 {
        self.left
    }

    /// Whether no bytes of the window are still to come.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// Ends the stream on `e`, closing the connection.
    fn fail(&mut self, e: io::Error) -> Poll<Option<io::Result<Bytes>>> {
        self.done = true;
        self.frames.close();
        Poll::Ready(Some(Err(e)))
    }

    fn corrupt(&self, why: &str) -> io::Error {
        let consumed = self.consumed;
        Error::from(crate::Corruption::Deflate { name: self.name.clone(), consumed, why: why.to_owned() }).into()
    }

    /// One inflate step over the bytes at hand.
    fn inflate_pending(&mut self) -> io::Result<Step> {
        let Some(resume) = self.inflate.as_mut() else { unreachable!("inflate_pending on a stored entry") };
        let want = if self.skip > 0 { self.skip } else { self.left };
        let room = want.min(4 * OUT_CHUNK as u64) as usize;
        let mut out = if self.skip > 0 { std::mem::take(&mut self.scratch) } else { Vec::new() };
        out.resize(room, 0);
        let ran = resume.run(&self.pending, &mut out);
        let (used, made, ended) = ran.map_err(|why| self.corrupt(why))?;
        self.pending.advance(used);
        self.consumed += used as u64;
        if self.skip > 0 {
            self.skip -= made as u64;
            self.scratch = out;
        } else if made > 0 {
            self.left -= made as u64;
            out.truncate(made);
            return Ok(Step::Chunk(Bytes::from(out)));
        }
        if ended && (self.skip > 0 || self.left > 0) {
            return Err(self.corrupt("the deflate stream ended before the window"));
        }
        match (made, used, self.pending.is_empty()) {
            (0, _, true) => Ok(Step::NeedInput),
            (0, 0, false) => Err(self.corrupt("the inflater made no progress")),
            _ => Ok(Step::Went),
        }
    }
}

impl futures_core::Stream for VerifiedWindow {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut steps = 0;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if this.left == 0 {
                // A stored window's body ends with it (drained, for the connection's reuse);
                // a deflated one's runs on to the next checkpoint (closed).
                this.pending = Bytes::new();
                if this.inflate.is_none() && this.frames.poll_drain(cx).is_pending() {
                    return Poll::Pending;
                }
                this.frames.close();
                this.done = true;
                return Poll::Ready(None);
            }
            let mut idle = false;
            if this.inflate.is_none() && !this.pending.is_empty() {
                let n = (this.pending.len() as u64).min(this.left).min(OUT_CHUNK as u64) as usize;
                this.left -= n as u64;
                return Poll::Ready(Some(Ok(this.pending.split_to(n))));
            }
            if this.inflate.is_some() {
                match this.inflate_pending() {
                    Ok(Step::Chunk(chunk)) => return Poll::Ready(Some(Ok(chunk))),
                    Ok(Step::Went) => {}
                    Ok(Step::NeedInput) => idle = true,
                    Err(e) => return this.fail(e),
                }
            }
            if this.inflate.is_none() || idle {
                match this.frames.poll_input(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(Some(data))) => this.pending = data,
                    Poll::Ready(Ok(None)) => {
                        let e = io::Error::new(io::ErrorKind::UnexpectedEof, "the body ended before the window");
                        return this.fail(e);
                    }
                    Poll::Ready(Err(e)) => return this.fail(e),
                }
            }
            steps += 1;
            if steps >= YIELD_AFTER_STEPS {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}
