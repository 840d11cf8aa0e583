//! A real S3-compatible server for tests: moto's server mode, installed from PyPI into a
//! venv by `scripts/setup-s3-server.sh`, on a free loopback port. Like the PostgreSQL server,
//! it runs under a shell that stops it when this process's end of a pipe closes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running S3-compatible server; see the module docs.
#[derive(Debug)]
pub struct S3Server {
    port: u16,
    child: Mutex<Child>,
    buckets: Mutex<u32>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl S3Server {
    /// One server for the whole test process, started on first use.
    pub fn shared() -> &'static S3Server {
        static SERVER: OnceLock<S3Server> = OnceLock::new();
        SERVER.get_or_init(S3Server::start)
    }

    /// Installs (once) and starts the server.
    pub fn start() -> S3Server {
        let out = Command::new("bash").arg(repo().join("scripts/setup-s3-server.sh")).output().expect("run setup");
        assert!(out.status.success(), "setup-s3-server.sh: {}", String::from_utf8_lossy(&out.stderr));
        let program = String::from_utf8_lossy(&out.stdout).lines().last().expect("a program").trim().to_owned();
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let script = format!("'{program}' -H 127.0.0.1 -p {port} & pid=$!; cat >/dev/null; kill $pid; wait $pid");
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let server = S3Server { port, child: Mutex::new(child), buckets: Mutex::new(0) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.request("GET", "/").is_none_or(|status| status != 200) {
            assert!(Instant::now() < deadline, "the S3 server did not come up");
            std::thread::sleep(Duration::from_millis(100)); // between probes, not a synchronisation
        }
        server
    }

    /// The endpoint, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A new, empty bucket; its name.
    pub fn new_bucket(&self) -> String {
        let name = {
            let mut n = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            format!("test-{}-{}", std::process::id(), *n)
        };
        assert_eq!(self.request("PUT", &format!("/{name}")), Some(200), "create bucket {name}");
        name
    }

    /// The `object_store` configuration for this server (path-style, plain HTTP, test keys).
    pub fn config(&self) -> Vec<(&'static str, String)> {
        vec![
            ("aws_endpoint", self.endpoint()),
            ("aws_allow_http", "true".into()),
            ("aws_access_key_id", "test".into()),
            ("aws_secret_access_key", "test".into()),
            ("aws_region", "us-east-1".into()),
        ]
    }

    /// Objects and their sizes in `bucket` (a `ListObjects` call, parsed just enough).
    pub fn objects(&self, bucket: &str) -> Vec<(String, u64)> {
        let body = self.get(&format!("/{bucket}?list-type=2")).unwrap_or_default();
        body.split("<Contents>")
            .skip(1)
            .filter_map(|c| {
                let field = |name: &str| c.split(&format!("<{name}>")).nth(1)?.split('<').next().map(str::to_owned);
                Some((field("Key")?, field("Size")?.parse().ok()?))
            })
            .collect()
    }

    /// An unsigned request (moto accepts them); its status.
    fn request(&self, method: &str, path: &str) -> Option<u16> {
        let (status, _) = self.exchange(method, path)?;
        Some(status)
    }

    fn get(&self, path: &str) -> Option<String> {
        self.exchange("GET", path).map(|(_, body)| body)
    }

    fn exchange(&self, method: &str, path: &str) -> Option<(u16, String)> {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let head =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        conn.write_all(head.as_bytes()).ok()?;
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).ok()?;
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        Some((status, body))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        drop(child.stdin.take());
        let _ = child.wait();
    }
}
