//! Starts `artifact serve` as a real process on a free loopback port, and stops it with
//! SIGTERM (checking the graceful shutdown) when dropped or asked.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[allow(dead_code)] // each test binary uses part of it
pub(crate) struct ServerProcess {
    child: Option<Child>,
    pub(crate) url: String,
    /// Where its metrics are, with `--metrics-listen`.
    pub(crate) metrics: Option<String>,
}

pub(crate) fn artifact_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_artifact"))
}

/// Fills `buf` with bytes that do not compress (the states of a 64-bit LCG from `state`,
/// which is left where it ended, so that successive blocks go on from each other).
#[allow(dead_code)]
pub(crate) fn noise(state: &mut u64, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        *state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
}

#[allow(dead_code)]
impl ServerProcess {
    /// `artifact serve --data DATA --listen 127.0.0.1:0` (unless `extra` has its own
    /// `--listen`), waiting for its address line.
    pub(crate) fn start(data: &Path, extra: &[&str]) -> ServerProcess {
        ServerProcess::start_with(Command::new(artifact_bin()), data, extra)
    }

    /// Like [`start`](Self::start), from `cmd` (the binary, with an environment set).
    pub(crate) fn start_with(mut cmd: Command, data: &Path, extra: &[&str]) -> ServerProcess {
        let mut child = cmd
            .arg("serve")
            .arg("--data")
            .arg(data)
            .args(if extra.contains(&"--listen") { &[][..] } else { &["--listen", "127.0.0.1:0"][..] })
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start artifact serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find(" on http://") {
                    let _ = tx.send((line.contains("metrics on"), line[at + 4..].trim().to_owned()));
                }
            }
        });
        let mut metrics = None;
        let url = loop {
            match rx.recv_timeout(Duration::from_secs(30)).expect("the server printed its address") {
                (true, url) => metrics = Some(url.trim_end_matches("/metrics").to_owned()),
                (false, url) => break url,
            }
        };
        ServerProcess { child: Some(child), url, metrics }
    }

    pub(crate) fn stdout(&mut self) -> std::process::ChildStdout {
        self.child.as_mut().unwrap().stdout.take().unwrap()
    }

    /// What `--demo` printed, up to and including its `try: ` line.
    pub(crate) fn demo_output(&mut self) -> String {
        use std::io::Read;
        let mut stdout = self.stdout();
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while !text.contains("try: ") || !text.ends_with('\n') {
            let n = stdout.read(&mut buf).unwrap();
            assert!(n > 0, "demo output ended early: {text}");
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        text
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and returns at once (see [`wait`](Self::wait)).
    pub(crate) fn terminate(&self) {
        let child = self.child.as_ref().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    }

    /// Waits up to `limit` for the process to exit; its status if it did.
    pub(crate) fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sends SIGTERM and waits; returns whether it exited successfully within 10 s.
    pub(crate) fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        for _ in 0..100 {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One `GET` of `path` from the server at `url` over a fresh connection (`Connection:
/// close`): the status, the head as text, and a body of exactly its `Content-Length`.
#[allow(dead_code)]
pub(crate) fn http_get(url: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let host = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .expect("a Content-Length");
    let body = response[split + 4..].to_vec();
    assert_eq!(body.len(), length, "a body of its stated length");
    (status, head, body)
}

/// `METHOD path` with a personal token and an empty body, over a fresh connection to the
/// server at `url`: the status and the body (`None` if the connection failed or the answer
/// is not HTTP, as when the server is killed meanwhile).
#[allow(dead_code)]
pub(crate) fn http_send(url: &str, method: &str, path: &str, token: &str) -> Option<(u16, Vec<u8>)> {
    use std::io::{Read, Write};
    let host = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nPRIVATE-TOKEN: {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let status = std::str::from_utf8(response.get(9..12)?).ok()?.parse().ok()?;
    Some((status, response[split..].to_vec()))
}

#[allow(dead_code)]
impl ServerProcess {
    /// How many requests the server has taken so far, this one included (its request ids
    /// count up from 1).
    pub(crate) fn requests_so_far(&self) -> u64 {
        let (_, head, _) = http_get(&self.url, "/api/v4/version", &[]);
        head.lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-request-id:").map(|v| v.trim().parse().unwrap()))
            .expect("an X-Request-Id")
    }
}
