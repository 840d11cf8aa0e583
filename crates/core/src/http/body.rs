//! A range body that streams, and resumes from the next byte when the connection breaks:
//! the blocking face of a range read, driven on the client's private runtime.
#![forbid(unsafe_code)]

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use hyper::body::Incoming;

use super::Inner;
use crate::error::{Error, HttpProblem};

/// Times a broken body is resumed before the read fails.
pub const RESUME_ATTEMPTS: u32 = 3;

pub(super) struct RemoteBody {
    inner: Arc<Inner>,
    body: Option<Incoming>,
    /// Bytes received and not yet read.
    pending: Bytes,
    pos: u64,
    end: u64,
    resumed: u32,
}

impl RemoteBody {
    /// The request is made on the first read, so that opening costs nothing until used.
    pub(super) fn new(inner: Arc<Inner>, start: u64, end: u64) -> RemoteBody {
        RemoteBody { inner, body: None, pending: Bytes::new(), pos: start, end, resumed: 0 }
    }

    /// Drops the broken response; the next read asks for the rest, after a backoff of
    /// 100, 200, 400 ms.
    fn resume(&mut self) -> io::Result<()> {
        self.body = None;
        if self.resumed >= RESUME_ATTEMPTS {
            let problem = HttpProblem::ShortBody { expected: self.end, received: self.pos };
            return Err(Error::Http { url: super::shown(&self.inner.url), problem }.into());
        }
        self.resumed += 1;
        std::thread::sleep(Duration::from_millis(100 << (self.resumed - 1)));
        Ok(())
    }

    /// The next bytes of the range: `None` when the body broke, stalled or ended early
    /// (resumed by the caller), an error for a failed request (a changed archive, a bad
    /// status: final).
    fn next_bytes(&mut self) -> io::Result<Option<Bytes>> {
        let (inner, body, pos, end) = (&self.inner, &mut self.body, self.pos, self.end);
        inner
            .client
            .block_on(async {
                let body = match body {
                    Some(body) => body,
                    None => body.insert(inner.range(pos, end).await?),
                };
                // A broken or stalled transfer is resumed, as is one that ended early.
                Ok::<_, Error>(inner.client.next_bytes(body, &inner.url).await.ok().flatten())
            })?
            .map_err(io::Error::from)
    }
}

impl Read for RemoteBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos >= self.end || buf.is_empty() {
                return Ok(0);
            }
            if self.pending.is_empty() {
                match self.next_bytes()? {
                    Some(bytes) => {
                        let left = (self.end - self.pos) as usize;
                        // More than the range asked for: a server that lies; the rest is dropped.
                        self.pending = if bytes.len() > left { bytes.slice(..left) } else { bytes };
                    }
                    None => {
                        self.resume()?;
                        continue;
                    }
                }
            }
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.advance(n);
            self.pos += n as u64;
            self.inner.counter.record_bytes(n);
            return Ok(n);
        }
    }
}
