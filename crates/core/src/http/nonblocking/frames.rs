//! [`Frames`]: the body of one range read, polled frame by frame with a stall timer.
#![forbid(unsafe_code)]

use super::*;

/// The body of one range request, as the async readers poll it: its bytes counted, a
/// stall timer started at the first wait since bytes last came, closed on errors.
pub(super) struct Frames {
    body: Option<Incoming>,
    pub(super) url: Url,
    stall: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    counter: Arc<ReadCounter>,
    /// Bytes of the body read past what was wanted, to let the connection be reused.
    drained: u64,
}

impl std::fmt::Debug for Frames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frames").field("url", &shown(&self.url)).field("open", &self.body.is_some()).finish()
    }
}

impl Frames {
    /// The body `body` (`None`: nothing to read) of a range read from `url`.
    pub(super) fn new(body: Option<Incoming>, url: Url, stall: Duration, counter: Arc<ReadCounter>) -> Frames {
        Frames { body: body.filter(|b| !b.is_end_stream()), url, stall, timer: None, counter, drained: 0 }
    }

    /// Drops the body, closing its connection.
    pub(super) fn close(&mut self) {
        self.body = None;
    }

    /// Reads the body to its end, discarding, so that hyper can reuse the connection: what
    /// was asked for past the bytes used (an entry's first range has slack past its data).
    /// A body that sends more than [`DRAIN_MAX`], or stalls, is dropped instead (what was
    /// wanted is done; only the connection is lost).
    pub(super) fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let stall = self.stall;
        let mut frames = 0;
        while let Some(body) = self.body.as_mut() {
            match Pin::new(body).poll_frame(cx) {
                Poll::Pending => {
                    // Started at the first wait only: most drains never wait.
                    let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                    if timer.as_mut().poll(cx).is_ready() {
                        self.body = None;
                        break;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let len = frame.data_ref().map_or(0, Bytes::len);
                    self.counter.record_bytes(len);
                    self.drained += len as u64;
                    frames += 1;
                    if self.drained > DRAIN_MAX || frames > YIELD_AFTER_STEPS {
                        self.body = None;
                    }
                }
                Poll::Ready(Some(Err(_)) | None) => self.body = None,
            }
        }
        self.timer = None;
        Poll::Ready(())
    }

    /// The next body frame's bytes (`None` at the body's end).
    pub(super) fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        let stall = self.stall;
        match Pin::new(body).poll_frame(cx) {
            Poll::Pending => {
                // Started at the first wait since bytes last came.
                let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                if timer.as_mut().poll(cx).is_ready() {
                    self.body = None;
                    let e = http_error(&self.url, HttpProblem::Timeout("the body stalled".into()));
                    return Poll::Ready(Err(e.into()));
                }
                Poll::Pending
            }
            Poll::Ready(Some(Ok(frame))) => {
                let data = frame.into_data().unwrap_or_default();
                if data.is_empty() {
                    // No bytes: no progress either (the stall timer runs on); the caller
                    // counts it as a step and asks again.
                    return Poll::Ready(Ok(Some(data)));
                }
                self.timer = None;
                self.counter.record_bytes(data.len());
                Poll::Ready(Ok(Some(data)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.body = None;
                Poll::Ready(Err(transport(&self.url, &e.to_string()).into()))
            }
            Poll::Ready(None) => {
                self.body = None;
                Poll::Ready(Ok(None))
            }
        }
    }
}

/// The most a body is read past the entry's data for its connection to be reused: the
/// first range's slack is 1 KiB plus the name; more than this means the server sends what
/// was not asked for.
const DRAIN_MAX: u64 = 128 << 10;
