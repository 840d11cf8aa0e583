//! [`EntryWindow`]: a window of an entry (an HTTP `Range`), cut from its stream.
#![forbid(unsafe_code)]

use super::*;

/// Bytes `skip..skip + len` of an entry, as a `Stream` cut from its [`AsyncEntry`]: made by
/// [`AsyncEntry::into_window`].
///
/// The entry is read from its start (a deflated entry cannot seek), the first `skip` bytes
/// dropped as they come; the stream ends after exactly `len` bytes and drops the rest of
/// the entry's read, closing its connection. Its bytes are verified only when the window
/// reaches the entry's end (the CRC-32 covers the whole entry, so the stream then ends only
/// after it checked out); a window that ends earlier carries bytes no check has covered yet.
/// A server that answers ranges of verified entries only keeps to whole reads until one
/// checked out.
#[derive(Debug)]
pub struct EntryWindow {
    /// The entry's stream; dropped (its connection closed) once the window is out.
    inner: Option<AsyncEntry>,
    skip: u64,
    left: u64,
    /// The window reaches the entry's end: its end is the verified end of the entry.
    to_end: bool,
}

impl AsyncEntry {
    /// The window `skip..skip + len` of this entry (see [`EntryWindow`]). A window past the
    /// entry's size is an [`InvalidInput`](io::ErrorKind::InvalidInput) error.
    pub fn into_window(self, skip: u64, len: u64) -> Result<EntryWindow> {
        let size = self.entry().size();
        if skip.checked_add(len).is_none_or(|end| end > size) {
            let why = format!("bytes {skip}+{len} of an entry of {size} bytes");
            return Err(Error::Io(io::Error::new(io::ErrorKind::InvalidInput, why)));
        }
        Ok(EntryWindow { to_end: skip + len == size, inner: Some(self), skip, left: len })
    }
}

impl EntryWindow {
    /// Bytes of the window still to come (all of it before the first item).
    pub fn len(&self) -> u64 {
        self.left
    }

    /// Whether no bytes of the window are still to come.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }
}

impl futures_core::Stream for EntryWindow {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // Bytes dropped in this poll: past this, the task yields (a long skip through data
        // already at hand would otherwise hold its worker).
        let mut dropped_now = 0usize;
        loop {
            let Some(inner) = this.inner.as_mut().filter(|_| this.left > 0 || this.to_end) else {
                this.inner = None;
                return Poll::Ready(None);
            };
            let mut chunk = match inner.poll_chunk(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.inner = None;
                    if this.left == 0 {
                        return Poll::Ready(None);
                    }
                    this.left = 0;
                    let e = io::Error::new(io::ErrorKind::UnexpectedEof, "the entry ended before the window");
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.inner = None;
                    this.left = 0;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(chunk))) => chunk,
            };
            let dropped = (chunk.len() as u64).min(this.skip) as usize;
            this.skip -= dropped as u64;
            chunk.advance(dropped);
            let kept = (chunk.len() as u64).min(this.left) as usize;
            chunk.truncate(kept);
            this.left -= kept as u64;
            if !chunk.is_empty() {
                return Poll::Ready(Some(Ok(chunk)));
            }
            dropped_now += dropped;
            if dropped_now >= YIELD_AFTER {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}

/// Bytes a window drops in one poll before it lets other tasks run.
const YIELD_AFTER: usize = 1 << 20;
