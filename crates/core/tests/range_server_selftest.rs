//! The test server behind the HTTP source's tests, checked with hand-written HTTP/1.1 over a
//! plain `TcpStream`, so that its own bugs cannot hide behind the client under test.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use artifact_testkit::range_server::{Behaviour, RangeServer};

/// What came back on one connection.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> usize {
        self.header("content-length").expect("content-length").parse().expect("a number")
    }
}

/// Sends one request with `Connection: close` and reads until the server closes (or resets)
/// the connection.
fn request(server: &RangeServer, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    let origin = server.origin();
    let authority = origin.trim_start_matches("http://");
    let mut stream = TcpStream::connect(authority).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();

    let mut raw = Vec::new();
    let mut buf = [0; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A cut connection may end in a reset rather than a clean close.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII headers");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("name: value");
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    Reply { status, headers, body: raw[split + 4..].to_vec() }
}

fn get(server: &RangeServer, target: &str, headers: &[(&str, &str)]) -> Reply {
    request(server, "GET", target, headers)
}

/// 100 000 bytes that differ at every offset modulo 251, so a shifted range shows.
fn content() -> Vec<u8> {
    (0..100_000u32).map(|i| (i % 251) as u8).collect()
}

fn serving_content() -> (RangeServer, Vec<u8>) {
    let server = RangeServer::start();
    let data = content();
    server.put("a.zip", data.clone());
    (server, data)
}

#[test]
fn bounded_range_returns_the_bytes_and_headers() {
    let (server, data) = serving_content();
    let reply = get(&server, "/a.zip", &[("Range", "bytes=1000-1999")]);
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("content-range"), Some("bytes 1000-1999/100000"));
    assert_eq!(reply.content_length(), 1000);
    assert_eq!(reply.body, &data[1000..2000]);
    assert_eq!(reply.header("accept-ranges"), Some("bytes"));
    let etag = reply.header("etag").expect("etag");
    assert!(etag.len() == 18 && etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(reply.header("last-modified").unwrap().ends_with(" GMT"));
}

#[test]
fn open_and_overlong_ranges_stop_at_the_end() {
    let (server, data) = serving_content();
    let reply = get(&server, "/a.zip", &[("Range", "bytes=99990-")]);
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("content-range"), Some("bytes 99990-99999/100000"));
    assert_eq!(reply.body, &data[99_990..]);

    let reply = get(&server, "/a.zip", &[("Range", "bytes=99000-200000")]);
    assert_eq!(reply.header("content-range"), Some("bytes 99000-99999/100000"));
    assert_eq!(reply.body, &data[99_000..]);
}

#[test]
fn suffix_range_returns_the_last_bytes() {
    let (server, data) = serving_content();
    let reply = get(&server, "/a.zip", &[("Range", "bytes=-22")]);
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("content-range"), Some("bytes 99978-99999/100000"));
    assert_eq!(reply.content_length(), 22);
    assert_eq!(reply.body, &data[99_978..]);

    // A suffix longer than the file is the whole file.
    let reply = get(&server, "/a.zip", &[("Range", "bytes=-200000")]);
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("content-range"), Some("bytes 0-99999/100000"));
    assert_eq!(reply.body, data);
}

#[test]
fn unsatisfiable_ranges_are_416() {
    let (server, _) = serving_content();
    for range in ["bytes=100000-", "bytes=100000-100010", "bytes=-0"] {
        let reply = get(&server, "/a.zip", &[("Range", range)]);
        assert_eq!(reply.status, 416, "{range}");
        assert_eq!(reply.header("content-range"), Some("bytes */100000"), "{range}");
        assert!(reply.body.is_empty());
    }
}

#[test]
fn invalid_and_multiple_ranges_get_the_full_body() {
    let (server, data) = serving_content();
    for range in ["bytes=0-9,20-29", "bytes=9-0", "items=0-9", "bytes=+1-5"] {
        let reply = get(&server, "/a.zip", &[("Range", range)]);
        assert_eq!(reply.status, 200, "{range}");
        assert_eq!(reply.body, data, "{range}");
    }
}

#[test]
fn if_match_mismatch_is_412() {
    let (server, data) = serving_content();
    let etag = get(&server, "/a.zip", &[]).header("etag").unwrap().to_owned();

    let reply = get(&server, "/a.zip", &[("Range", "bytes=0-9"), ("If-Match", "\"0000\"")]);
    assert_eq!(reply.status, 412);
    assert!(reply.body.is_empty());

    let reply = get(&server, "/a.zip", &[("Range", "bytes=0-9"), ("If-Match", &etag)]);
    assert_eq!(reply.status, 206);
    assert_eq!(reply.body, &data[..10]);
    let reply = get(&server, "/a.zip", &[("Range", "bytes=0-9"), ("If-Match", "*")]);
    assert_eq!(reply.status, 206);
}

#[test]
fn if_range_mismatch_sends_the_full_body() {
    let (server, data) = serving_content();
    let first = get(&server, "/a.zip", &[]);
    let etag = first.header("etag").unwrap();
    let date = first.header("last-modified").unwrap();

    for stale in ["\"0000\"", "Mon, 01 Jan 2024 00:00:00 GMT", &format!("W/{etag}")] {
        let reply = get(&server, "/a.zip", &[("Range", "bytes=0-9"), ("If-Range", stale)]);
        assert_eq!(reply.status, 200, "{stale}");
        assert_eq!(reply.body, data, "{stale}");
    }
    for current in [etag, date] {
        let reply = get(&server, "/a.zip", &[("Range", "bytes=0-9"), ("If-Range", current)]);
        assert_eq!(reply.status, 206, "{current}");
        assert_eq!(reply.body, &data[..10], "{current}");
    }
}

#[test]
fn put_replaces_content_under_a_new_etag() {
    let (server, _) = serving_content();
    let before = get(&server, "/a.zip", &[]);
    server.put("/a.zip", &b"new"[..]);
    let after = get(&server, "/a.zip", &[]);
    assert_eq!(after.body, b"new");
    assert_ne!(before.header("etag"), after.header("etag"));
    assert_ne!(before.header("last-modified"), after.header("last-modified"));
}

#[test]
fn unknown_path_is_404_and_head_has_no_body() {
    let (server, _) = serving_content();
    assert_eq!(get(&server, "/missing.zip", &[]).status, 404);

    let reply = request(&server, "HEAD", "/a.zip", &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_length(), 100_000);
    assert!(reply.body.is_empty());
    assert_eq!(server.bytes_sent(), 0);
}

#[test]
fn ignore_range_answers_200_with_everything() {
    let (server, data) = serving_content();
    server.set_behaviour(Behaviour { ignore_range: true, ..Behaviour::default() });
    let reply = get(&server, "/a.zip", &[("Range", "bytes=0-9")]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-range"), None);
    assert_eq!(reply.content_length(), 100_000);
    assert_eq!(reply.body, data);
}

#[test]
fn change_etag_after_changes_the_etag_once() {
    let (server, data) = serving_content();
    server.set_behaviour(Behaviour { change_etag_after: Some(2), ..Behaviour::default() });
    let etags: Vec<String> = (0..4)
        .map(|_| {
            let reply = get(&server, "/a.zip", &[("Range", "bytes=0-9")]);
            assert_eq!(reply.body, &data[..10]);
            reply.header("etag").unwrap().to_owned()
        })
        .collect();
    assert_eq!(etags[0], etags[1]);
    assert_ne!(etags[1], etags[2]);
    assert_eq!(etags[2], etags[3]);

    let stale = get(&server, "/a.zip", &[("Range", "bytes=0-9"), ("If-Match", &etags[0])]);
    assert_eq!(stale.status, 412);
}

#[test]
fn cut_after_closes_the_connection_mid_body() {
    let (server, data) = serving_content();
    server.set_behaviour(Behaviour { cut_after: Some(40_000), ..Behaviour::default() });
    let reply = get(&server, "/a.zip", &[("Range", "bytes=1000-99999")]);
    assert_eq!(reply.status, 206);
    assert_eq!(reply.content_length(), 99_000);
    assert_eq!(reply.body.len(), 40_000, "exactly the bytes before the cut arrive");
    assert_eq!(reply.body, &data[1000..41_000]);
    assert_eq!(server.bytes_sent(), 40_000);

    // cut_times 0 means one cut; the next response is whole.
    let reply = get(&server, "/a.zip", &[]);
    assert_eq!(reply.body, data);
}

#[test]
fn cut_times_cuts_that_many_responses() {
    let (server, data) = serving_content();
    let cut = Behaviour { cut_after: Some(10), cut_times: 2, ..Behaviour::default() };
    server.set_behaviour(cut);
    // No longer than the cut: sent whole and not counted.
    assert_eq!(get(&server, "/a.zip", &[("Range", "bytes=0-9")]).body, &data[..10]);
    for _ in 0..2 {
        let reply = get(&server, "/a.zip", &[]);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, &data[..10]);
    }
    assert_eq!(get(&server, "/a.zip", &[]).body, data);

    // A cut at 0 still sends the headers.
    server.set_behaviour(Behaviour { cut_after: Some(0), ..Behaviour::default() });
    let reply = get(&server, "/a.zip", &[("Range", "bytes=0-0")]);
    assert_eq!((reply.status, reply.content_length(), reply.body.len()), (206, 1, 0));
}

#[test]
fn short_body_sends_half_of_every_206() {
    let (server, data) = serving_content();
    server.set_behaviour(Behaviour { short_body: true, ..Behaviour::default() });
    for _ in 0..2 {
        let reply = get(&server, "/a.zip", &[("Range", "bytes=0-999")]);
        assert_eq!(reply.status, 206);
        assert_eq!(reply.header("content-range"), Some("bytes 0-999/100000"));
        assert_eq!(reply.content_length(), 1000);
        assert_eq!(reply.body, &data[..500]);
    }
    assert_eq!(get(&server, "/a.zip", &[]).body, data, "a 200 is whole");
}

#[test]
fn wrong_content_range_is_off_by_one() {
    let (server, data) = serving_content();
    server.set_behaviour(Behaviour { wrong_content_range: true, ..Behaviour::default() });
    let reply = get(&server, "/a.zip", &[("Range", "bytes=10-19")]);
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("content-range"), Some("bytes 11-19/100000"));
    assert_eq!(reply.body, &data[10..20]);
}

#[test]
fn no_etag_sends_only_last_modified() {
    let (server, _) = serving_content();
    server.set_behaviour(Behaviour { no_etag: true, ..Behaviour::default() });
    let reply = get(&server, "/a.zip", &[("Range", "bytes=0-9")]);
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("etag"), None);
    let date = reply.header("last-modified").expect("last-modified").to_owned();
    let reply = get(&server, "/a.zip", &[("Range", "bytes=0-9"), ("If-Range", &date)]);
    assert_eq!(reply.status, 206);
    let reply = get(&server, "/a.zip", &[("Range", "bytes=0-9"), ("If-Match", "\"x\"")]);
    assert_eq!(reply.status, 412);
}

#[test]
fn redirect_to_answers_302_with_the_location() {
    let (server, _) = serving_content();
    let target = format!("{}/", server.origin());
    server.set_behaviour(Behaviour { redirect_to: Some(target), ..Behaviour::default() });
    let reply = get(&server, "/redirect/jobs/7/a.zip?job=build&ref=main", &[]);
    assert_eq!(reply.status, 302);
    let expected = format!("{}/jobs/7/a.zip?job=build&ref=main", server.origin());
    assert_eq!(reply.header("location"), Some(expected.as_str()));
    // Outside /redirect/ nothing changes.
    assert_eq!(get(&server, "/a.zip", &[("Range", "bytes=0-0")]).status, 206);
}

#[test]
fn requests_are_recorded_in_order_with_their_headers() {
    let (server, _) = serving_content();
    get(&server, "/a.zip?private=1", &[("Range", "bytes=5-9"), ("PRIVATE-TOKEN", "glpat-secret")]);
    get(&server, "/missing", &[]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first.method, "GET");
    assert_eq!(first.path, "/a.zip");
    assert_eq!(first.query.as_deref(), Some("private=1"));
    assert_eq!(first.range.as_deref(), Some("bytes=5-9"));
    assert_eq!(first.header("private-token"), Some("glpat-secret"));
    assert_eq!(first.header("PRIVATE-TOKEN"), Some("glpat-secret"));
    assert!(first.headers.iter().any(|(n, v)| n == "private-token" && v == "glpat-secret"));
    assert_eq!(requests[1].path, "/missing");
    assert_eq!(requests[1].range, None);

    server.reset_counts();
    assert!(server.requests().is_empty());
}

#[test]
fn bytes_sent_counts_body_bytes() {
    let (server, _) = serving_content();
    get(&server, "/a.zip", &[("Range", "bytes=0-99")]);
    get(&server, "/a.zip", &[("Range", "bytes=-50")]);
    get(&server, "/a.zip", &[("Range", "bytes=200000-")]);
    assert_eq!(server.bytes_sent(), 150);
    get(&server, "/a.zip", &[]);
    assert_eq!(server.bytes_sent(), 100_150);
    server.reset_counts();
    assert_eq!(server.bytes_sent(), 0);
}

#[test]
fn delay_ms_delays_the_answer() {
    let (server, _) = serving_content();
    server.set_behaviour(Behaviour { delay_ms: 200, ..Behaviour::default() });
    let started = Instant::now();
    assert_eq!(get(&server, "/a.zip", &[("Range", "bytes=0-0")]).status, 206);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let (server, data) = serving_content();
    let origin = server.origin();
    let mut stream = TcpStream::connect(origin.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let ask = "GET /a.zip HTTP/1.1\r\nHost: x\r\nRange: bytes=0-3\r\n\r\n";
    stream.write_all(format!("{ask}{ask}").as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0; 4096];
    while raw.windows(4).filter(|w| *w == &data[..4]).count() < 2 {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    }
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn dropping_the_server_stops_it() {
    let server = RangeServer::start();
    let authority = server.origin().trim_start_matches("http://").to_owned();
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(&authority).is_ok() {
        assert!(Instant::now() < deadline, "still listening on {authority}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn starts_and_drops_inside_an_async_test() {
    let server = RangeServer::start();
    server.put("x", &b"abc"[..]);
    let reply = tokio::task::spawn_blocking(move || {
        let reply = get(&server, "/x", &[("Range", "bytes=1-")]);
        (reply, server)
    })
    .await
    .unwrap();
    assert_eq!(reply.0.body, b"bc");
    drop(reply.1);
}
