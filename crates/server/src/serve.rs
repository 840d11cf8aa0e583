//! Serving the router on a TCP listener, with the connection settings an artifact server
//! needs: `TCP_NODELAY` (a small response must not wait for the client's delayed ACK),
//! small per-connection write buffers (thousands of slow downloads must not each queue
//! hundreds of KiB), a header timeout, a limit on connections (past it, `503` and close),
//! and a graceful shutdown.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tower::ServiceExt;

/// Bytes a connection buffers beyond what the socket took (hyper's `max_buf_size`; also the
/// largest request head accepted).
const CONNECTION_BUFFER: usize = 64 * 1024;
/// A client must send its request head within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a shutdown waits for downloads in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The default of [`ServeOptions::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// How [`serve_with`] treats connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    /// Most connections open at once (at least 1). A connection past it is answered
    /// `503 Service Unavailable` with `Retry-After: 1` and closed at once, so that the
    /// server sheds load instead of running out of file descriptors, memory or time for
    /// the connections it has. Keep the process's file-descriptor limit above it.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions { max_connections: DEFAULT_MAX_CONNECTIONS }
    }
}

/// What a connection past the limit is told (GitLab's error shape).
const SHED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
connection: close\r\ncontent-length: 37\r\n\r\n{\"message\":\"503 Service Unavailable\"}";

/// How long a shed connection may take to be told (and to send what it had sent).
const SHED_TIMEOUT: Duration = Duration::from_secs(1);

/// Connections being told at once; past it (a flood) a connection is closed unanswered, so
/// that shedding itself holds at most this many descriptors.
const SHEDDING_AT_ONCE: usize = 1024;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, closes
/// the connections that have no request in progress and waits (up to 30 s) for the
/// requests in flight, each connection closing once its response is written.
/// [`serve_with`] with the default options.
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    serve_with(listener, router, ServeOptions::default(), shutdown).await
}

/// Like [`serve`], with `options`.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.max_buf_size(CONNECTION_BUFFER).timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    let slots = Arc::new(Semaphore::new(options.max_connections.clamp(1, Semaphore::MAX_PERMITS)));
    let shedding = Arc::new(Semaphore::new(SHEDDING_AT_ONCE));
    // Told to every connection at shutdown; each holds an `alive` sender until it is done.
    let (stopping, stop) = watch::channel(false);
    let (alive, mut all_done) = mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    if let Ok(telling) = shedding.clone().try_acquire_owned() {
                        tokio::spawn(shed(stream, telling));
                    }
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(http.clone(), stream, router.clone(), stop.clone(), (slot, alive.clone())));
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    drop(alive);
    if tokio::time::timeout(DRAIN_TIMEOUT, all_done.recv()).await.is_err() {
        tracing::warn!("requests still in flight after the drain timeout; stopping anyway");
    }
    Ok(())
}

/// Serves one connection until it ends, or until shutdown. Then a connection that never
/// sent a whole request (still sending its first head, or silent) is closed at once, and
/// any other is shut down gracefully: hyper closes it at once if it is between requests,
/// and otherwise after the response in progress is written to the last byte. `held` (its
/// slot under the connection limit and its part in the drain) is let go when it is done.
async fn connection(
    http: hyper::server::conn::http1::Builder,
    stream: TcpStream,
    router: Router,
    mut stop: watch::Receiver<bool>,
    held: (OwnedSemaphorePermit, mpsc::Sender<()>),
) {
    // Set at the first request, never cleared: whether hyper's own graceful shutdown is
    // needed (a response may be in progress, or still in its write buffer).
    let served = Arc::new(AtomicBool::new(false));
    // The caller's address, for handlers that tell it on (the proxy's `X-Forwarded-For`).
    let peer = stream.peer_addr().ok();
    let service = {
        let served = served.clone();
        tower::service_fn(move |mut request: Request<Incoming>| {
            served.store(true, Ordering::Release);
            if let Some(peer) = peer {
                request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            }
            router.clone().oneshot(request)
        })
    };
    let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let mut conn = std::pin::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => Some(ended),
        _ = stop.wait_for(|&stopping| stopping) => None,
    };
    let ended = match ended {
        Some(ended) => ended,
        None if !served.load(Ordering::Acquire) => Ok(()),
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
    drop(held);
}

/// Tells a connection past the limit to come back later, and closes it: the answer, then
/// the write side shut, then what the client had sent read and dropped until it closes too
/// (so that the answer is not lost to a reset), all within [`SHED_TIMEOUT`]. `telling` is
/// its place among the [`SHEDDING_AT_ONCE`].
async fn shed(mut stream: TcpStream, telling: OwnedSemaphorePermit) {
    tracing::debug!("connection limit reached: a connection is answered 503");
    let _ = tokio::time::timeout(SHED_TIMEOUT, async {
        stream.write_all(SHED).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
    drop(telling);
}
