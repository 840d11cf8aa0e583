//! [`AsyncEntry`]: one entry read by range on async I/O, verified by the engine's own reader;
//! [`GzipEntry`]: its compressed bytes passed through in a gzip member, verified alongside.
#![forbid(unsafe_code)]

use super::*;

/// One entry of a remote archive, streaming on async I/O as a `Stream` of verified
/// uncompressed chunks: an error item (and nothing after it) if the archive turns out
/// damaged, changed or cut, and the end only after the size and CRC-32 checked out. The
/// entry's last bytes come only after that check too, so a consumer that stops once it has
/// the entry's size (an HTTP server past its `Content-Length`) never took bytes that fail. The
/// async driver of an [`EntryDecoder`](crate::EntryDecoder), fed the range's body frames.
pub struct AsyncEntry {
    pub(super) decoder: EntryDecoder,
    /// Bytes of the body that arrived and the decoder has not taken yet.
    pending: Bytes,
    /// The range's body.
    frames: Frames,
    pub(super) identity: RemoteIdentity,
    /// An output buffer that got nothing (the decoder wanted input): used for the next read.
    spare: Option<Vec<u8>>,
    /// The entry's last bytes, held until the decoder checked the size and CRC-32.
    held: Option<Bytes>,
    /// The compressed bytes the decoder took, kept by [`AsyncEntry::read_all_with_member`].
    raw: Option<BytesMut>,
    done: bool,
}

impl std::fmt::Debug for AsyncEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncEntry")
            .field("entry", self.decoder.entry())
            .field("url", &shown(&self.frames.url))
            .finish()
    }
}

impl AsyncEntry {
    /// Asks for the entry's range (one request; two if its local extra field is longer
    /// than the decoder's slack) and checks its local header, before any byte is returned.
    pub(crate) async fn open(client: &HttpClient, at: &RemoteEntry, counter: Arc<ReadCounter>) -> Result<AsyncEntry> {
        let mut at = std::borrow::Cow::Borrowed(at);
        let mut decoder = EntryDecoder::new(at.entry.clone(), at.data_limit)?;
        let mut body = None;
        let mut pending = Bytes::new();
        while !decoder.in_data() {
            if let Some((offset, len)) = decoder.next_range() {
                body = Some(range(client, &mut at, (offset, offset + len), &counter).await?);
                pending = Bytes::new();
            }
            if pending.is_empty() {
                let Some(body) = body.as_mut() else { unreachable!("a decoder wants its range first") };
                match client.next_bytes(body, &at.url).await? {
                    Some(data) => {
                        counter.record_bytes(data.len());
                        pending = data;
                    }
                    None => return Err(decoder.end_of_input()),
                }
                continue;
            }
            let step = decoder.decode(&pending, &mut [])?;
            pending.advance(step.consumed);
        }
        Ok(AsyncEntry {
            decoder,
            pending,
            frames: Frames::new(body, at.url.clone(), client.stall(), counter),
            identity: at.identity.clone(),
            spare: None,
            held: None,
            raw: None,
            done: false,
        })
    }

    /// The entry being read.
    pub fn entry(&self) -> &Entry {
        self.decoder.entry()
    }

    /// The archive version being read (checked by every request with `If-Match`).
    pub fn identity(&self) -> &RemoteIdentity {
        &self.identity
    }

    /// A strong `ETag` for the entry's bytes in this archive version ([`etag`](crate::http::etag)).
    pub fn etag(&self) -> String {
        crate::http::etag(&self.identity, self.entry())
    }

    /// Reads the rest of the entry into memory, verified: for small entries, which are
    /// answered only once they checked out.
    pub async fn read_all(mut self) -> Result<Bytes> {
        let mut out = BytesMut::with_capacity(self.entry().size().min(OUT_CHUNK as u64 * 16) as usize);
        while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut self).poll_chunk(cx)).await {
            out.extend_from_slice(&chunk.map_err(Error::from_io)?);
        }
        Ok(out.freeze())
    }

    /// Like [`read_all`](Self::read_all), and for a deflated entry also the gzip member
    /// of its deflate stream (RFC 1952: header, the stream's own bytes as the archive holds
    /// them, trailer), made from the same read: for small entries, answered plain or as
    /// gzip from memory once they checked out. `None` for a stored entry, or once bytes of
    /// it were taken as a stream. The member is the deflate stream alone: bytes the archive
    /// holds after the stream's end (which zip readers ignore) are not in it.
    pub async fn read_all_with_member(mut self) -> Result<(Bytes, Option<Bytes>)> {
        let whole = !self.decoder.is_stored() && self.decoder.produced() == 0 && !self.done;
        if whole {
            let len = self.entry().compressed_size().min(OUT_CHUNK as u64 * 16) as usize;
            self.raw = Some(BytesMut::with_capacity(len + crate::gzip::HEADER.len() + 8));
        }
        let (crc, size) = (self.entry().crc32(), self.entry().size());
        let mut out = BytesMut::with_capacity(size.min(OUT_CHUNK as u64 * 16) as usize);
        while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut self).poll_chunk(cx)).await {
            out.extend_from_slice(&chunk.map_err(Error::from_io)?);
        }
        let member = self.raw.take().filter(|_| whole).map(|raw| {
            let mut member = BytesMut::with_capacity(crate::gzip::HEADER.len() + raw.len() + 8);
            member.extend_from_slice(&crate::gzip::HEADER);
            member.extend_from_slice(&raw);
            member.extend_from_slice(&crate::gzip::trailer(crc, size));
            member.freeze()
        });
        Ok((out.freeze(), member))
    }

    /// The next verified chunk: the decoder runs on what has arrived, and the body is
    /// polled only when it needs more.
    pub(super) fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        // Decoder steps and body frames in this poll without output: past a bound, the
        // task yields.
        let mut steps = 0usize;
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            if self.decoder.is_done() {
                if let Some(last) = self.held.take() {
                    return Poll::Ready(Some(Ok(last)));
                }
                // Verified. The rest of the range (the header slack) is read too, so that
                // the connection goes back to the pool for the next request.
                self.pending = Bytes::new();
                if self.frames.poll_drain(cx).is_pending() {
                    return Poll::Pending;
                }
                self.done = true;
                return Poll::Ready(None);
            }
            if !self.pending.is_empty() || !self.decoder.needs_input() {
                match self.decode_pending() {
                    // The entry's last bytes wait for its check: a server that stops polling
                    // a body once its Content-Length is out never sends them unverified.
                    Ok(Some(chunk)) if self.decoder.produced() == self.entry().size() && !self.decoder.is_done() => {
                        self.held = Some(chunk);
                    }
                    Ok(Some(chunk)) => return Poll::Ready(Some(Ok(chunk))),
                    Ok(None) => {}
                    Err(e) => return Poll::Ready(Some(Err(self.fail(e)))),
                }
            } else {
                // The decoder wants more input.
                match self.frames.poll_input(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(Some(data))) => self.pending = data,
                    Poll::Ready(Ok(None)) => {
                        let e = self.decoder.end_of_input();
                        return Poll::Ready(Some(Err(self.fail(e))));
                    }
                    Poll::Ready(Err(e)) => {
                        self.done = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
            steps += 1;
            if steps >= YIELD_AFTER_STEPS {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// Runs the decoder over the bytes at hand: a chunk of output, or `None` if it only
    /// took input. A stored entry's chunks are the body's own bytes, checked, not copied.
    fn decode_pending(&mut self) -> Result<Option<Bytes>> {
        if self.decoder.is_stored() {
            let n = (self.pending.len() as u64).min(self.decoder.compressed_left()).min(OUT_CHUNK as u64) as usize;
            let chunk = self.pending.split_to(n);
            self.decoder.take_stored(&chunk)?;
            return Ok(Some(chunk).filter(|c| !c.is_empty()));
        }
        let mut buf = self.spare.take().unwrap_or_else(|| {
            let left = self.entry().size().saturating_sub(self.decoder.produced());
            vec![0; left.clamp(1, OUT_CHUNK as u64) as usize]
        });
        let step = self.decoder.decode(&self.pending, &mut buf)?;
        if let Some(raw) = self.raw.as_mut().filter(|_| self.decoder.in_data()) {
            raw.extend_from_slice(&self.pending[..step.consumed]);
        }
        self.pending.advance(step.consumed);
        if step.produced == 0 {
            self.spare = Some(buf);
            return Ok(None);
        }
        buf.truncate(step.produced);
        Ok(Some(Bytes::from(buf)))
    }

    /// Ends the stream on `e`, closing the connection.
    fn fail(&mut self, e: Error) -> io::Error {
        self.done = true;
        self.frames.close();
        e.into()
    }

    /// The entry as one gzip member (RFC 1952) around its raw deflate bytes, for a client
    /// that takes `Content-Encoding: gzip`: the compressed bytes pass through as they come,
    /// and are inflated alongside to be verified; the trailer (CRC-32 and size) goes out
    /// only once they checked out, so a damaged entry ends in an error item, never in a
    /// complete member. Only for deflated entries (method 8).
    ///
    /// Refused (the stream's one item is an `InvalidInput` error) for a stored entry, or
    /// once bytes of this entry were taken as a stream.
    pub fn into_gzip(self) -> GzipEntry {
        let usable = !self.decoder.is_stored() && self.decoder.produced() == 0 && !self.done;
        GzipEntry {
            inner: self,
            header_sent: false,
            raw: Bytes::new(),
            scratch: Vec::new(),
            finished: false,
            verified: false,
            refused: !usable,
        }
    }
}

/// Uncompressed bytes a gzip stream inflates (to verify) per step: a frame of compressed
/// bytes may inflate to a thousand times its size.
const GZIP_STEP: usize = 4 * OUT_CHUNK;

impl futures_core::Stream for AsyncEntry {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx)
    }
}

/// An entry as a verified gzip member; see [`AsyncEntry::into_gzip`].
#[derive(Debug)]
pub struct GzipEntry {
    pub(super) inner: AsyncEntry,
    header_sent: bool,
    /// Compressed bytes the decoder took, not yet sent.
    raw: Bytes,
    scratch: Vec<u8>,
    finished: bool,
    /// The trailer went out: the entry checked out.
    pub(super) verified: bool,
    /// Made from an entry that cannot be a member (see [`AsyncEntry::into_gzip`]).
    refused: bool,
}

impl GzipEntry {
    /// The member's length: header, compressed bytes, trailer.
    pub fn len(&self) -> u64 {
        crate::gzip::HEADER.len() as u64 + self.inner.entry().compressed_size() + 8
    }

    /// Never empty: a member has a header and a trailer.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Inflates the bytes at hand, discarding the output, and keeps the compressed bytes it
    /// took (the entry's own: the decoder takes none past its data) for sending.
    fn verify_pending(&mut self) -> Result<()> {
        if self.scratch.is_empty() {
            self.scratch = vec![0; OUT_CHUNK];
        }
        let inner = &mut self.inner;
        let (mut taken, mut made) = (0, 0);
        loop {
            let step = inner.decoder.decode(&inner.pending[taken..], &mut self.scratch)?;
            taken += step.consumed;
            made += step.produced;
            let enough = made >= GZIP_STEP || step.consumed + step.produced == 0;
            if inner.decoder.is_done() || taken == inner.pending.len() || enough {
                break;
            }
        }
        self.raw = inner.pending.split_to(taken);
        if inner.decoder.is_done() && inner.decoder.compressed_left() > 0 {
            // The deflate stream ended before the entry's compressed bytes did: the entry's
            // bytes verified, but a member of only the stream would be shorter than the
            // length announced, and one with the rest no gzip reader takes.
            let why = format!("{} bytes after the end of the deflate stream", inner.decoder.compressed_left());
            let name = String::from_utf8_lossy(inner.entry().name()).into_owned();
            let consumed = inner.entry().compressed_size() - inner.decoder.compressed_left();
            return Err(crate::Corruption::Deflate { name, consumed, why }.into());
        }
        Ok(())
    }
}

impl futures_core::Stream for GzipEntry {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut steps = 0;
        if this.refused {
            this.refused = false;
            this.finished = true;
            let why = "into_gzip: a stored entry, or one already partly read";
            return Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::InvalidInput, why))));
        }
        loop {
            if this.finished {
                // After the trailer, the rest of the range, so the connection is reused.
                this.inner.pending = Bytes::new();
                if this.verified && this.inner.frames.poll_drain(cx).is_pending() {
                    return Poll::Pending;
                }
                return Poll::Ready(None);
            }
            if !this.header_sent {
                this.header_sent = true;
                return Poll::Ready(Some(Ok(Bytes::from_static(&crate::gzip::HEADER))));
            }
            if !this.raw.is_empty() {
                return Poll::Ready(Some(Ok(std::mem::take(&mut this.raw))));
            }
            if this.inner.decoder.is_done() {
                this.finished = true;
                this.verified = true;
                let entry = this.inner.entry();
                let trailer = crate::gzip::trailer(entry.crc32(), entry.size());
                return Poll::Ready(Some(Ok(Bytes::copy_from_slice(&trailer))));
            }
            if !this.inner.pending.is_empty() || !this.inner.decoder.needs_input() {
                if let Err(e) = this.verify_pending() {
                    this.finished = true;
                    return Poll::Ready(Some(Err(this.inner.fail(e))));
                }
                steps += 1;
                if steps >= YIELD_AFTER_STEPS {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                continue;
            }
            match this.inner.frames.poll_input(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(Some(data))) => {
                    this.inner.pending = data;
                    steps += 1;
                    if steps >= YIELD_AFTER_STEPS {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
                Poll::Ready(Ok(None)) => {
                    this.finished = true;
                    let e = this.inner.decoder.end_of_input();
                    return Poll::Ready(Some(Err(this.inner.fail(e))));
                }
                Poll::Ready(Err(e)) => {
                    this.finished = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}
