//! Faults: hours of load, in small. A mixed workload (job lists page by page, single files,
//! archive ranges, `304`s, logs, cancel and retry) on 64 keep-alive connections against
//! `artifact serve` as a process: no server errors, and the server's resident memory and
//! open file descriptors flat after warm-up, with the latency p99 of every window printed.
//!
//! `SOAK_SECONDS` sets the length (60 here; `benches/soak.sh` runs 600), windows are a tenth
//! of it (at most 30 s).

#[path = "common/server_process.rs"]
mod server_process;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use server_process::{ServerProcess, artifact_bin};

const CONNECTIONS: usize = 64;
const JOBS: usize = 24;
const PROJECT: &str = "/api/v4/projects/g%2Fp";

/// A response as the soak client reads it: status, `ETag`, body length.
struct Reply {
    status: u16,
    etag: Option<String>,
    len: usize,
}

/// One keep-alive HTTP/1.1 connection, reconnecting when the server closes it.
struct Client {
    host: String,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Reply> {
        if self.conn.is_none() {
            self.conn = Some(BufReader::new(TcpStream::connect(&self.host)?));
        }
        let conn = self.conn.as_mut().unwrap();
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        let result = (|| {
            conn.get_mut().write_all(request.as_bytes())?;
            let mut line = String::new();
            conn.read_line(&mut line)?;
            let status: u16 =
                line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("status line {line:?}"))
                })?;
            let (mut length, mut chunked, mut close, mut etag) = (0usize, false, false, None);
            loop {
                line.clear();
                conn.read_line(&mut line)?;
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                let (name, value) = header.split_once(':').unwrap_or((header, ""));
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "transfer-encoding" => chunked = value.contains("chunked"),
                    "connection" => close = value.contains("close"),
                    "etag" => etag = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
            let mut len = 0;
            if method == "HEAD" || status == 304 || status == 204 {
            } else if chunked {
                loop {
                    line.clear();
                    conn.read_line(&mut line)?;
                    let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                    std::io::copy(&mut conn.by_ref().take(size as u64 + 2), &mut std::io::sink())?;
                    if size == 0 {
                        break;
                    }
                    len += size;
                }
            } else {
                len = std::io::copy(&mut conn.by_ref().take(length as u64), &mut std::io::sink())? as usize;
                if len != length {
                    return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "a short body"));
                }
            }
            Ok((Reply { status, etag, len }, close))
        })();
        match result {
            Ok((reply, close)) => {
                if close {
                    self.conn = None;
                }
                Ok(reply)
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }
}

/// The server's resident memory (KiB) and open file descriptors.
fn rss_and_fds(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    (rss, fds)
}

/// What the process's descriptors point at, counted (sockets and pipes by kind).
fn open_files(pid: u32) -> String {
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten() {
        let target = std::fs::read_link(fd.path()).map(|t| t.display().to_string()).unwrap_or_default();
        let kind = target.split(':').next().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_owned();
        *kinds.entry(kind).or_default() += 1;
    }
    format!("{kinds:?}")
}

#[test]
fn a_mixed_load_on_64_connections_has_no_errors_and_flat_memory_and_descriptors() {
    let seconds: u64 = std::env::var("SOAK_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        let out = Command::new(artifact_bin()).args(args).arg("--data").arg(&data).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    run(&["admin", "user", "add", "soak", "--admin"]);
    let token = run(&["admin", "token", "add", "soak"]);
    // Shared by every client thread for the whole test.
    let token: &'static str = Box::leak(token.into_boxed_str());
    run(&["admin", "project", "add", "g/p"]);
    let log = dir.path().join("job.log");
    std::fs::write(&log, "a line of the job's log\n".repeat(2_000)).unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/infozip-basic.zip");
    for i in 0..JOBS {
        let status = if i % 4 == 0 { "running" } else { "success" };
        let (fixture, log) = (fixture.to_str().unwrap(), log.to_str().unwrap());
        let name = format!("job{i}");
        run(&[
            "import",
            "--project",
            "g/p",
            "--ref",
            "main",
            "--job",
            &name,
            "--status",
            status,
            "--artifacts",
            fixture,
            "--trace",
            log,
        ]);
    }
    let server = ServerProcess::start(&data, &[]);
    let pid = server.pid();
    let host = server.url.trim_start_matches("http://").to_owned();
    let window = Duration::from_secs((seconds / 10).clamp(1, 30));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (served, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let (host, served, errors, latencies, first_error) =
                (host.clone(), served.clone(), errors.clone(), latencies.clone(), first_error.clone());
            std::thread::spawn(move || {
                let mut client = Client { host, conn: None };
                let mut etag: Option<String> = None;
                let mut n = c;
                while Instant::now() < deadline {
                    n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345) % (1 << 31);
                    let job = 1 + n % JOBS;
                    let auth = [("PRIVATE-TOKEN", token)];
                    let started = Instant::now();
                    let result = match n % 20 {
                        0..=5 => client.send("GET", &format!("{PROJECT}/jobs?per_page=5&page={}", 1 + n % 8), &auth),
                        6..=10 => client.send("GET", &format!("{PROJECT}/jobs/{job}/artifacts/docs/readme.txt"), &auth),
                        11..=12 => client.send(
                            "GET",
                            &format!("{PROJECT}/jobs/{job}/artifacts"),
                            &[auth[0], ("Range", "bytes=100-1099")],
                        ),
                        13..=15 => match &etag {
                            Some(tag) => client.send(
                                "GET",
                                &format!("{PROJECT}/jobs/1/artifacts/docs/readme.txt"),
                                &[auth[0], ("If-None-Match", tag)],
                            ),
                            None => client.send("GET", &format!("{PROJECT}/jobs/1/artifacts/docs/readme.txt"), &auth),
                        },
                        16..=17 => client.send("GET", &format!("{PROJECT}/jobs/{job}/trace"), &auth),
                        18 => client.send("POST", &format!("{PROJECT}/jobs/{job}/cancel"), &auth),
                        _ => client.send("POST", &format!("{PROJECT}/jobs/{job}/retry"), &auth),
                    };
                    let took = started.elapsed();
                    match result {
                        Ok(reply) if reply.status < 500 => {
                            if reply.etag.is_some() && reply.status == 200 && n % 20 >= 13 && n % 20 <= 15 {
                                etag = reply.etag;
                            }
                            let _ = reply.len;
                            served.fetch_add(1, Ordering::Relaxed);
                            latencies.lock().unwrap().push(took);
                        }
                        other => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            let what = match other {
                                Ok(reply) => format!("status {}", reply.status),
                                Err(e) => e.to_string(),
                            };
                            first_error.lock().unwrap().get_or_insert(what);
                        }
                    }
                }
            })
        })
        .collect();
    let mut samples: Vec<(u64, usize)> = Vec::new();
    let started = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(window.min(deadline.saturating_duration_since(Instant::now())));
        let (rss, fds) = rss_and_fds(pid);
        let mut window_latencies = std::mem::take(&mut *latencies.lock().unwrap());
        window_latencies.sort();
        let p99 =
            window_latencies.get(window_latencies.len().saturating_sub(1) * 99 / 100).copied().unwrap_or_default();
        println!(
            "t={:>4.0}s served={} errors={} rss={} KiB fds={} p99={:.2} ms ({} requests in the window)",
            started.elapsed().as_secs_f64(),
            served.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed),
            rss,
            fds,
            p99.as_secs_f64() * 1000.0,
            window_latencies.len()
        );
        samples.push((rss, fds));
        if std::env::var_os("SOAK_FILES").is_some() {
            println!("  {}", open_files(pid));
        }
    }
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(errors.load(Ordering::Relaxed), 0, "first: {:?}", first_error.lock().unwrap());
    assert!(served.load(Ordering::Relaxed) > 0);
    // Flat after warm-up (the first third of the windows, while the store's connection
    // pool and the allocator's arenas reach their working size): at the end, descriptors
    // within a few connections of the warm-up's most, memory within a quarter. A single
    // sample of descriptors counts what is in flight at that instant (up to 64 requests'
    // store connections, beyond the 32 kept idle, and the open archives, which every
    // cancel or retry closes and the next reads open again), so the end's figure is the
    // fewest held across the last third of the windows: what a leak keeps raising.
    let warm = &samples[..samples.len().div_ceil(3)];
    let warm_rss = warm.iter().map(|s| s.0).max().unwrap_or(0);
    let warm_fds = warm.iter().map(|s| s.1).max().unwrap_or(0);
    let end_rss = samples.last().unwrap().0;
    let end_fds = samples[samples.len() - samples.len().div_ceil(3)..].iter().map(|s| s.1).min().unwrap_or(0);
    println!("after warm-up: rss {warm_rss} KiB, fds {warm_fds}; at the end: rss {end_rss} KiB, fds {end_fds}");
    assert!(end_fds <= warm_fds + 16, "descriptors grew: {warm_fds} -> {end_fds}: {}", open_files(pid));
    assert!(end_rss <= warm_rss + warm_rss / 4 + 4096, "memory grew: {warm_rss} -> {end_rss} KiB");
}
