//! Faults: hostile clients against `artifact serve` as a process. Past `--max-connections` a
//! connection is answered `503` and closed, and the server serves again as connections
//! close; connections that trickle their headers, idle keep-alive connections and bodies on
//! `GET` do not stop a well-behaved client, and the server still stops cleanly.
//!
//! `HOSTILE_CONNECTIONS` sets how many of each kind (300 here; `benches/soak.sh hostile` runs
//! 2,000 and reports the well-behaved client's latencies).

#[path = "common/server_process.rs"]
mod server_process;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use server_process::{ServerProcess, http_get};

/// The demo's `try:` line: the token and the path of a file (its text below).
fn demo(server: &mut ServerProcess) -> (String, String) {
    let text = server.demo_output();
    let token = text.lines().find_map(|l| l.strip_prefix("token: ")).unwrap().trim().to_owned();
    let line = text.lines().find_map(|l| l.strip_prefix("try: ")).unwrap();
    let url = line.rsplit('\'').nth(1).unwrap();
    let path = url.strip_prefix(&server.url).unwrap().to_owned();
    (token, path)
}

const README: &[u8] = b"Top-level readme for the infozip-basic fixture.\n";

#[test]
fn past_its_connection_limit_the_server_answers_503_and_serves_again_as_connections_close() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(&dir.path().join("data"), &["--max-connections", "20"]);
    let host = server.url.trim_start_matches("http://").to_owned();
    let held: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(&host).unwrap()).collect();
    // The listener takes connections in order: the 21st finds every slot taken.
    let (status, head, body) = http_get(&server.url, "/-/health", &[]);
    assert_eq!(status, 503, "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
    assert_eq!(body, br#"{"message":"503 Service Unavailable"}"#);
    drop(held);
    // Once the server has seen them close, it serves again (watched, within 10 s).
    let started = Instant::now();
    while http_get(&server.url, "/-/health", &[]).0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(10), "the slots were never given back");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(server.stop(), "a clean exit");
}

/// A p-th percentile of sorted `samples`.
fn percentile(samples: &[Duration], p: f64) -> Duration {
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn tricklers_idle_keep_alives_and_bodies_on_get_do_not_stop_a_well_behaved_client() {
    let n: usize = std::env::var("HOSTILE_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(&dir.path().join("data"), &["--demo"]);
    let (token, path) = demo(&mut server);
    let host = server.url.trim_start_matches("http://").to_owned();
    // The well-behaved client: every request answered, in full; its latencies sorted.
    let well_behaved = || {
        let mut latencies = Vec::new();
        for _ in 0..300 {
            let started = Instant::now();
            let (status, head, body) = http_get(&server.url, &path, &[("PRIVATE-TOKEN", &token)]);
            latencies.push(started.elapsed());
            assert_eq!(status, 200, "{head}");
            assert_eq!(body, README);
        }
        latencies.sort();
        latencies
    };
    let quiet = well_behaved();

    // Connections that send a request head one byte at a time, forever.
    let mut tricklers: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(&host).unwrap()).collect();
    for t in &mut tricklers {
        t.write_all(format!("GET /-/health HTTP/1.1\r\nHost: {host}\r\nX-Slow: ").as_bytes()).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let trickling = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for t in &mut tricklers {
                    let _ = t.write_all(b"a");
                }
                // The pace of a slow-headers attack, not a synchronisation.
                std::thread::sleep(Duration::from_millis(200));
            }
            tricklers.len()
        })
    };
    // Keep-alive connections that made one request and then say nothing.
    let idle: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut c = TcpStream::connect(&host).unwrap();
            c.write_all(format!("GET /-/health HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()).unwrap();
            let mut head = [0u8; 12];
            c.read_exact(&mut head).unwrap();
            assert_eq!(&head, b"HTTP/1.1 200");
            c
        })
        .collect();
    // Bodies on GET: answered as without.
    for _ in 0..20 {
        let mut c = TcpStream::connect(&host).unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nPRIVATE-TOKEN: {token}\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n{}",
            "x".repeat(1000)
        );
        c.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        c.read_to_end(&mut response).unwrap();
        assert!(response.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&response));
        assert!(response.ends_with(README));
    }
    let latencies = well_behaved();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "under {n} trickling and {n} idle keep-alive connections: {} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
         (before the attack, same run: p50 {:.2} ms, p99 {:.2} ms)",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap()),
        ms(percentile(&quiet, 0.5)),
        ms(percentile(&quiet, 0.99)),
    );
    // A clean stop with all of them still open: the ones that never finished a request are
    // not waited for.
    let started = Instant::now();
    assert!(server.stop(), "a clean exit");
    println!("stopped in {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
    stop.store(true, Ordering::Relaxed);
    assert_eq!(trickling.join().unwrap(), n);
    drop(idle);
}

/// How a download read to its end after the server was told to stop came out.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// Every byte, as stored.
    Whole,
    /// The connection closed after this many body bytes (all as stored) of the
    /// `Content-Length`: cut at the drain timeout, and the client can tell.
    Cut(u64),
}

#[test]
fn sigterm_during_a_hundred_downloads_refuses_new_connections_and_finishes_every_one() {
    // `SHUTDOWN_ENTRY_MIB` (4 here; `benches/soak.sh` uses 1024): the entry's size. Past
    // what the drain timeout lets through, downloads are cut, never passed off as whole.
    let mib: usize = std::env::var("SHUTDOWN_ENTRY_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let zip_path = dir.path().join("big.zip");
    // One stored entry that does not compress.
    let mut body = vec![0u8; mib << 20];
    server_process::noise(&mut 0x2545_F491_4F6C_DD1D, &mut body);
    {
        use zip::write::SimpleFileOptions;
        let mut w = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        w.start_file("big.bin", stored.large_file(body.len() >= 1 << 32)).unwrap();
        w.write_all(&body).unwrap();
        w.finish().unwrap();
    }
    let run = |args: &[&str]| {
        let out = std::process::Command::new(server_process::artifact_bin())
            .args(args)
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["admin", "project", "add", "g/p", "--public"]);
    run(&["import", "--project", "g/p", "--ref", "main", "--job", "build", "--artifacts", zip_path.to_str().unwrap()]);
    let mut server = ServerProcess::start(&data, &[]);
    let host = server.url.trim_start_matches("http://").to_owned();
    let request = format!("GET /api/v4/projects/g%2Fp/jobs/1/artifacts/big.bin HTTP/1.1\r\nHost: {host}\r\n\r\n");
    // A hundred downloads, each read up to its first 64 KiB and then left waiting: in
    // flight, held back by their readers, when the server is told to stop.
    let downloads: Vec<(TcpStream, Vec<u8>)> = (0..100)
        .map(|_| {
            let mut c = TcpStream::connect(&host).unwrap();
            c.write_all(request.as_bytes()).unwrap();
            let mut first = vec![0u8; 64 << 10];
            c.read_exact(&mut first).unwrap();
            assert!(first.starts_with(b"HTTP/1.1 200"));
            (c, first)
        })
        .collect();
    server.terminate();
    let stopped = Instant::now();
    // The listener closes: new connections are refused (watched, within 10 s).
    while TcpStream::connect(&host).is_ok() {
        assert!(stopped.elapsed() < Duration::from_secs(10), "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Every download read to its end at once, each byte checked against the entry.
    let body = Arc::new(body);
    let readers: Vec<_> = downloads
        .into_iter()
        .map(|(mut c, first)| {
            let body = body.clone();
            std::thread::spawn(move || {
                let split = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                let head = String::from_utf8_lossy(&first[..split]).to_ascii_lowercase();
                let length: u64 = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                    .expect("a Content-Length");
                assert_eq!(length, body.len() as u64);
                let mut at = first.len() - split;
                assert!(first[split..] == body[..at]);
                c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let mut buf = vec![0u8; 256 << 10];
                loop {
                    let n = c.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    assert!(at + n <= body.len() && buf[..n] == body[at..at + n], "bytes differ at {at}");
                    at += n;
                }
                if at == body.len() { Ended::Whole } else { Ended::Cut(at as u64) }
            })
        })
        .collect();
    let ended: Vec<Ended> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let status = server.wait(Duration::from_secs(60)).expect("the server exits after the drain");
    let whole = ended.iter().filter(|e| **e == Ended::Whole).count();
    println!(
        "SIGTERM during 100 downloads of {mib} MiB: {whole} whole, {} cut at the drain timeout (each short of its \
         Content-Length), exit status {:?} after {:.1} s",
        100 - whole,
        status.code(),
        stopped.elapsed().as_secs_f64()
    );
    assert!(status.success(), "{status}");
    if mib <= 64 {
        assert_eq!(whole, 100, "{ended:?}");
    }
}

/// Sends `request` on a fresh connection; the status line of what comes back.
fn status_line(host: &str, request: &[u8]) -> String {
    let mut c = TcpStream::connect(host).unwrap();
    let _ = c.write_all(request);
    let mut response = Vec::new();
    let _ = c.read_to_end(&mut response);
    String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_owned()
}

#[test]
fn oversized_request_lines_and_headers_and_raw_bad_bytes_are_refused_with_a_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(&dir.path().join("data"), &[]);
    let host = server.url.trim_start_matches("http://").to_owned();
    let line = format!("GET /api/v4/projects/1/jobs?q={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(64 << 10));
    let headers = format!("GET /-/health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(200 << 10));
    let many = format!("GET /-/health HTTP/1.1\r\nHost: x\r\n{}\r\n", "X-A: 1\r\n".repeat(200));
    let raw = b"GET /api/v4/projects/\xff\xfe/jobs HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let nul = b"GET /api/v4/projects/a\x00b/jobs HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    for (what, request) in [
        ("a 64 KiB request line", line.into_bytes()),
        ("a 200 KiB header", headers.into_bytes()),
        ("200 headers", many.into_bytes()),
        ("raw invalid UTF-8 in the path", raw),
        ("a raw NUL in the path", nul),
    ] {
        let status = status_line(&host, &request);
        println!("{what}: {status}");
        let code: u16 = status.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        assert!((400..500).contains(&code), "{what}: {status:?}");
    }
    // And it serves on.
    assert_eq!(http_get(&server.url, "/-/health", &[]).0, 200);
    assert!(server.stop());
}
