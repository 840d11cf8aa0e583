//! [`AsyncEntry`]: one entry read by range on async I/O, verified by the engine's own reader;
//! [`GzipEntry`]: its compressed bytes passed through in a gzip member, verified alongside.
#![forbid(unsafe_code)]

use super::*;

/// One entry of a remote archive, streaming on async I/O as a `Stream` of verified
/// uncompressed chunks: an error item (and nothing after it) if the archive turns out
/// damaged, changed or cut, and the end only after the size and CRC-32 checked out.
pub struct AsyncEntry {
    reader: EntryReader,
    feed: Feed,
    body: Option<Incoming>,
    url: Url,
    identity: RemoteIdentity,
    stall: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    counter: Arc<ReadCounter>,
    /// An output buffer that got nothing (the reader wanted input): used for the next read.
    spare: Option<Vec<u8>>,
    /// For [`into_gzip`](Self::into_gzip): the compressed bytes that came with the local
    /// header, and how many compressed bytes are still to come after them.
    raw_head: Option<Bytes>,
    raw_left: u64,
    done: bool,
}

impl std::fmt::Debug for AsyncEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncEntry").field("entry", self.reader.entry()).field("url", &shown(&self.url)).finish()
    }
}

impl AsyncEntry {
    /// Asks for the entry's range (one request; two if its local extra field is longer
    /// than the reader's slack) and checks its local header, before any byte is returned.
    pub(crate) async fn open(client: &HttpClient, at: &RemoteEntry, counter: Arc<ReadCounter>) -> Result<AsyncEntry> {
        let entry = &at.entry;
        crate::reader::check_readable(entry)?;
        let room = room(entry, at.data_limit)?;
        let start = entry.header_offset;
        let mut span = span_of(entry).min(room);
        let mut body = range(client, at, (start, start + span), &counter).await?;
        let mut head = BytesMut::new();
        let mut ended = fill(client, &mut body, &mut head, FIXED_LEN.min(span as usize), &at.url, &counter).await?;
        if head.len() >= FIXED_LEN {
            let header_len = match local_header::parse(&head[..FIXED_LEN], start)? {
                Ok(h) => h.len,
                Err(local_header::NeedMore(n)) => n as u64,
            };
            let data_end = header_len.checked_add(entry.compressed_size).filter(|&e| e <= room);
            if let Some(data_end) = data_end.filter(|&e| e > span) {
                // The local extra field outgrew the slack: ask for the header and data.
                span = data_end;
                body = range(client, at, (start, start + span), &counter).await?;
                head.clear();
            }
            let want = header_len.min(span) as usize;
            ended = fill(client, &mut body, &mut head, want, &at.url, &counter).await?;
        }
        let head = head.freeze();
        let feed = Feed::default();
        feed.push(head.clone());
        if ended {
            feed.end();
        }
        let reader = EntryReader::with_stream(&Unreadable, entry.clone(), at.data_limit, Box::new(feed.clone()), span)?;
        // The compressed bytes that came with the header, for passing through.
        let header_len = (reader.data_offset() - start) as usize;
        let raw_end = (header_len as u64).saturating_add(entry.compressed_size).min(head.len() as u64) as usize;
        let raw_head = head.slice(header_len.min(raw_end)..raw_end);
        let raw_left = entry.compressed_size - raw_head.len() as u64;
        Ok(AsyncEntry {
            reader,
            feed,
            body: (!ended).then_some(body),
            url: at.url.clone(),
            identity: at.identity.clone(),
            stall: client.stall(),
            timer: None,
            counter,
            spare: None,
            raw_head: Some(raw_head),
            raw_left,
            done: false,
        })
    }

    /// The entry being read.
    pub fn entry(&self) -> &Entry {
        self.reader.entry()
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

    /// The next verified chunk: the reader runs on what has arrived, and the body is polled
    /// only when it needs more.
    pub(super) fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let mut buf = match self.spare.take() {
                Some(buf) => buf,
                None => {
                    let left = self.entry().size().saturating_sub(self.reader.produced());
                    vec![0; left.clamp(1, OUT_CHUNK as u64) as usize]
                }
            };
            match self.reader.read(&mut buf) {
                Ok(0) => {
                    // Verified. The rest of the range (the header slack) is read too, so
                    // that the connection goes back to the pool for the next request.
                    self.spare = Some(buf);
                    if self.poll_drain(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.done = true;
                    return Poll::Ready(None);
                }
                Ok(n) => {
                    buf.truncate(n);
                    return Poll::Ready(Some(Ok(Bytes::from(buf))));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.spare = Some(buf),
                Err(e) => {
                    self.done = true;
                    self.body = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            // The reader wants more input.
            match self.poll_input(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    /// Reads the body to its end, discarding: at most the slack past the entry's data (the
    /// range asked for is exact, and checked), and what lets hyper reuse the connection.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let Some(body) = self.body.as_mut() {
            match Pin::new(body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    let len = frame.data_ref().map_or(0, Bytes::len);
                    self.counter.record_bytes(len);
                }
                Poll::Ready(Some(Err(_)) | None) => self.body = None,
            }
        }
        Poll::Ready(())
    }

    /// Brings the next body frame into the reader's feed and returns its bytes (`None` at
    /// the body's end, after which the feed reports end of file).
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        let Some(body) = self.body.as_mut() else {
            self.feed.end();
            return Poll::Ready(Ok(None));
        };
        let stall = self.stall;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match Pin::new(body).poll_frame(cx) {
            Poll::Pending => {
                if timer.as_mut().poll(cx).is_ready() {
                    self.body = None;
                    let e = http_error(&self.url, HttpProblem::Timeout("the body stalled".into()));
                    return Poll::Ready(Err(e.into()));
                }
                Poll::Pending
            }
            Poll::Ready(Some(Ok(frame))) => {
                self.timer = None;
                let data = frame.into_data().unwrap_or_default();
                self.counter.record_bytes(data.len());
                self.feed.push(data.clone());
                Poll::Ready(Ok(Some(data)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.body = None;
                Poll::Ready(Err(transport(&self.url, &e.to_string()).into()))
            }
            Poll::Ready(None) => {
                self.body = None;
                self.feed.end();
                Poll::Ready(Ok(None))
            }
        }
    }

    /// The entry as one gzip member (RFC 1952) around its raw deflate bytes, for a client
    /// that takes `Content-Encoding: gzip`: the compressed bytes pass through as they come,
    /// and are inflated alongside to be verified; the trailer (CRC-32 and size) goes out
    /// only once they checked out, so a damaged entry ends in an error item, never in a
    /// complete member. Only for deflated entries (method 8).
    pub fn into_gzip(self) -> GzipEntry {
        GzipEntry {
            inner: self,
            header_sent: false,
            pending: None,
            scratch: Vec::new(),
            finished: false,
            verified: false,
        }
    }
}

impl futures_core::Stream for AsyncEntry {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx)
    }
}

/// An entry as a verified gzip member; see [`AsyncEntry::into_gzip`].
#[derive(Debug)]
pub struct GzipEntry {
    inner: AsyncEntry,
    header_sent: bool,
    pending: Option<Bytes>,
    scratch: Vec<u8>,
    finished: bool,
    /// The trailer went out: the entry checked out.
    verified: bool,
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

    /// Inflates what has arrived, discarding the output: `Some(Ok)` once the whole entry
    /// verified, `None` when more input is needed.
    fn verify_arrived(&mut self) -> Option<io::Result<()>> {
        if self.scratch.is_empty() {
            self.scratch = vec![0; OUT_CHUNK];
        }
        loop {
            match self.inner.reader.read(&mut self.scratch) {
                Ok(0) => return Some(Ok(())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl futures_core::Stream for GzipEntry {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.finished {
                // After the trailer, the rest of the range, so the connection is reused.
                if this.verified && this.inner.poll_drain(cx).is_pending() {
                    return Poll::Pending;
                }
                return Poll::Ready(None);
            }
            if !this.header_sent {
                this.header_sent = true;
                return Poll::Ready(Some(Ok(Bytes::from_static(&crate::gzip::HEADER))));
            }
            if let Some(raw) = this.pending.take().or_else(|| this.inner.raw_head.take()).filter(|b| !b.is_empty()) {
                return Poll::Ready(Some(Ok(raw)));
            }
            match this.verify_arrived() {
                Some(Ok(())) => {
                    this.finished = true;
                    this.verified = true;
                    let entry = this.inner.entry();
                    let trailer = crate::gzip::trailer(entry.crc32(), entry.size());
                    return Poll::Ready(Some(Ok(Bytes::copy_from_slice(&trailer))));
                }
                Some(Err(e)) => {
                    this.finished = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {}
            }
            match this.inner.poll_input(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(Some(data))) => {
                    // Only the entry's own compressed bytes go out (the range may run on).
                    let take = (data.len() as u64).min(this.inner.raw_left) as usize;
                    this.inner.raw_left -= take as u64;
                    this.pending = Some(data.slice(..take));
                }
                Poll::Ready(Ok(None)) => {}
                Poll::Ready(Err(e)) => {
                    this.finished = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

/// Reads body frames into `head` until it holds `want` bytes; `true` if the body ended.
async fn fill(
    client: &HttpClient,
    body: &mut Incoming,
    head: &mut BytesMut,
    want: usize,
    url: &Url,
    counter: &ReadCounter,
) -> Result<bool> {
    while head.len() < want {
        let Some(data) = client.next_bytes(body, url).await? else { return Ok(true) };
        counter.record_bytes(data.len());
        head.extend_from_slice(&data);
    }
    Ok(body.is_end_stream())
}
