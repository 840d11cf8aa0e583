//! A range body that streams, and resumes from the next byte when the connection breaks.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use reqwest::blocking::Response;

use super::Inner;
use crate::error::{Error, HttpProblem};

/// Times a broken body is resumed before the read fails.
pub const RESUME_ATTEMPTS: u32 = 3;

pub(super) struct RemoteBody {
    inner: Arc<Inner>,
    response: Option<Response>,
    pos: u64,
    end: u64,
    resumed: u32,
}

impl RemoteBody {
    /// The request is made on the first read, so that opening costs nothing until used.
    pub(super) fn new(inner: Arc<Inner>, start: u64, end: u64) -> RemoteBody {
        RemoteBody { inner, response: None, pos: start, end, resumed: 0 }
    }

    /// Drops the broken response; the next read asks for the rest, after a backoff of
    /// 100, 200, 400 ms.
    fn resume(&mut self) -> io::Result<()> {
        self.response = None;
        if self.resumed >= RESUME_ATTEMPTS {
            let problem = HttpProblem::ShortBody { expected: self.end, received: self.pos };
            return Err(Error::Http { url: super::shown(&self.inner.url), problem }.into());
        }
        self.resumed += 1;
        std::thread::sleep(Duration::from_millis(100 << (self.resumed - 1)));
        Ok(())
    }
}

impl Read for RemoteBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos >= self.end || buf.is_empty() {
                return Ok(0);
            }
            let response = match &mut self.response {
                Some(r) => r,
                None => {
                    // A failed request (a changed archive, a bad status) is final; only a
                    // broken transfer is resumed.
                    let response = self.inner.get(self.pos, self.end).map_err(io::Error::from)?;
                    self.response.insert(response)
                }
            };
            let want = (buf.len() as u64).min(self.end - self.pos) as usize;
            match response.read(&mut buf[..want]) {
                Ok(0) => self.resume()?,
                Ok(n) => {
                    self.pos += n as u64;
                    self.inner.counter.record_bytes(n);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.resume()?,
            }
        }
    }
}
