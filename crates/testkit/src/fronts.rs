//! What stands in front of a server on the way to it, on loopback: [`TlsFront`], TLS with a
//! certificate of a test authority of its own (`fixtures/tls/`: `ca.pem`, and `server.pem`
//! for `localhost` and `127.0.0.1`, valid to 2126), and [`ForwardProxy`], an HTTP forward
//! proxy (`CONNECT` tunnels, and whole-URL requests relayed) that counts what it relays and
//! records each request head it read.
//!
//! Both relay bytes to the server behind them and end with the test process; both run on
//! a one-worker runtime of their own, as the range server does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The test authority's certificate, PEM: what a client adds to its roots to trust a
/// [`TlsFront`].
pub const TEST_CA_PEM: &[u8] = include_bytes!("../fixtures/tls/ca.pem");
const SERVER_PEM: &[u8] = include_bytes!("../fixtures/tls/server.pem");
const SERVER_KEY: &[u8] = include_bytes!("../fixtures/tls/server.key");

fn runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("fronts: tokio runtime")
}

fn bind(runtime: &tokio::runtime::Runtime) -> (TcpListener, SocketAddr) {
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("fronts: bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("fronts: local_addr");
    (listener, addr)
}

/// TLS on loopback in front of a plain server (see the module docs).
#[derive(Debug)]
pub struct TlsFront {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl TlsFront {
    /// Accepts TLS on `127.0.0.1:0` and relays each connection's plain bytes to `behind`.
    ///
    /// Panics if the socket, the runtime or the certificate cannot be set up.
    pub fn start(behind: SocketAddr) -> TlsFront {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(SERVER_PEM).collect::<Result<Vec<_>, _>>().expect("fronts: cert");
        let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).expect("fronts: key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
            .expect("fronts: TLS config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = runtime("tls-front");
        let (listener, addr) = bind(&runtime);
        runtime.spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to relay.
                    let Ok(mut tls) = acceptor.accept(socket).await else { return };
                    let Ok(mut plain) = TcpStream::connect(behind).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront { addr, _runtime: runtime }
    }

    /// `https://127.0.0.1:PORT/path` (`path` with its leading `/`).
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

/// An HTTP forward proxy on loopback (see the module docs).
#[derive(Debug)]
pub struct ForwardProxy {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

impl ForwardProxy {
    /// Listens on `127.0.0.1:0`. Every connection's first request is read: `CONNECT
    /// host:port` opens a tunnel; `GET http://host:port/...` is relayed to that host as it
    /// is, with the rest of the connection (a keep-alive connection's later requests go to
    /// the same host, and are not recorded).
    ///
    /// Panics if the socket or the runtime cannot be set up.
    pub fn start() -> ForwardProxy {
        let runtime = runtime("forward-proxy");
        let (listener, addr) = bind(&runtime);
        let heads = Arc::new(Mutex::new(Vec::new()));
        let recorded = heads.clone();
        runtime.spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(relay(socket, recorded.clone()));
            }
        });
        ForwardProxy { addr, heads, _runtime: runtime }
    }

    /// `http://127.0.0.1:PORT`, or with `user:password@` when `credentials` are given.
    pub fn url(&self, credentials: Option<&str>) -> String {
        match credentials {
            Some(c) => format!("http://{c}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// The head of each connection's first request, in the order they came.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Reads one request head, then tunnels or relays.
async fn relay(mut client: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 || client.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    heads.lock().unwrap_or_else(|p| p.into_inner()).push(text.clone());
    let mut words = text.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let host = if method == "CONNECT" {
        target.to_owned()
    } else {
        let rest = target.strip_prefix("http://").unwrap_or("");
        rest.split('/').next().unwrap_or("").to_owned()
    };
    let Ok(mut server) = TcpStream::connect(host.as_str()).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n").await;
        return;
    };
    if method == "CONNECT" {
        if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
            return;
        }
    } else if server.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
