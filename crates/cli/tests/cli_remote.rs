//! `artifact` on `http://` archives, against the in-process range server: the same bytes
//! as a local read, the request counts `--stats` reports, the disk index cache, headers,
//! and the exit codes of remote failures.

use std::io::{Cursor, Write};
use std::process::{Command, Output};

use artifact_testkit::range_server::{Behaviour, RangeServer};
use zip::write::SimpleFileOptions;

fn artifact(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_artifact")).args(args).output().unwrap()
}

fn archive() -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..3000 {
        w.start_file(format!("objects/{i:05}.o"), SimpleFileOptions::default()).unwrap();
        w.write_all(format!("object {i}\n").repeat(10).as_bytes()).unwrap();
    }
    w.start_file("dist/app.js", SimpleFileOptions::default()).unwrap();
    w.write_all(b"console.log('hello')\n").unwrap();
    w.finish().unwrap().into_inner()
}

fn stats(out: &Output) -> (u64, u64) {
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().find(|l| l.starts_with("artifact: stats:")).expect("a stats line");
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (numbers[0], numbers[1])
}

#[test]
fn cat_of_a_url_reads_the_entry_in_few_requests() {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let url = server.url("a.zip");
    let out = artifact(&["cat", &url, "dist/app.js", "--stats", "-H", "PRIVATE-TOKEN: abc"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"console.log('hello')\n");
    let requests = server.requests();
    assert_eq!(stats(&out), (requests.len() as u64, server.bytes_sent()));
    assert!(requests.len() <= 3, "{} requests", requests.len());
    assert!(requests.iter().all(|r| r.header("private-token") == Some("abc")), "same origin keeps -H headers");
}

#[test]
fn a_second_process_with_an_index_cache_makes_one_request() {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let url = server.url("a.zip");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().to_str().unwrap();
    let first = artifact(&["cat", &url, "objects/00007.o", "--index-cache", cache]);
    assert!(first.status.success());
    server.reset_counts();
    let second = artifact(&["cat", &url, "objects/02999.o", "--index-cache", cache, "--stats"]);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(second.stdout, "object 2999\n".repeat(10).as_bytes());
    assert_eq!(server.requests().len(), 1);
    assert_eq!(stats(&second).0, 1);
}

#[test]
fn ls_and_extract_read_urls_too() {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let url = server.url("a.zip");
    let out = artifact(&["ls", &url]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "dist/\nobjects/\n");
    let dest = tempfile::tempdir().unwrap();
    let out = artifact(&["extract", &url, dest.path().to_str().unwrap(), "dist"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(dest.path().join("dist/app.js")).unwrap(), b"console.log('hello')\n");
}

#[test]
fn remote_failures_have_their_exit_codes() {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let missing = artifact(&["cat", &server.url("nope.zip"), "dist/app.js"]);
    assert_eq!(missing.status.code(), Some(4), "a missing archive is 4");
    let entry = artifact(&["cat", &server.url("a.zip"), "dist/nope.js"]);
    assert_eq!(entry.status.code(), Some(4), "a missing entry is 4");
    // A port nobody listens on: a network failure is 1, in one line.
    let origin = server.origin();
    drop(server);
    let refused = artifact(&["cat", &format!("{origin}/a.zip"), "dist/app.js"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("artifact: "), "{err}");
    let bad_header = artifact(&["cat", &origin, "x", "-H", "no colon"]);
    assert_eq!(bad_header.status.code(), Some(2));
}

#[test]
fn extracting_a_whole_remote_archive_takes_a_few_requests() {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let dest = tempfile::tempdir().unwrap();
    let out = artifact(&["extract", &server.url("a.zip"), dest.path().to_str().unwrap(), "--stats"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(dest.path().join("objects/02999.o")).unwrap(), "object 2999\n".repeat(10).as_bytes());
    let requests = server.requests().len();
    assert!(requests <= 3, "3,001 entries in {requests} requests: suffix, directory, one coalesced range");
    assert_eq!(stats(&out).0, requests as u64);
}

#[test]
fn download_if_no_range_works_for_cat_ls_and_extract_with_and_without_a_validator() {
    for no_etag in [false, true] {
        let server = RangeServer::start();
        server.put("a.zip", archive());
        server.set_behaviour(Behaviour { ignore_range: true, no_etag, ..Behaviour::default() });
        let url = server.url("a.zip");
        let refused = artifact(&["cat", &url, "dist/app.js"]);
        assert!(!refused.status.success(), "without the flag: refused");
        let cat = artifact(&["cat", &url, "dist/app.js", "--download-if-no-range", "--stats"]);
        assert!(cat.status.success(), "{}", String::from_utf8_lossy(&cat.stderr));
        assert_eq!(cat.stdout, b"console.log('hello')\n");
        let (reads, _) = stats(&cat);
        assert_eq!(reads, 1, "one whole download, every read from it (ETag: {})", !no_etag);
        let ls = artifact(&["ls", &url, "dist", "--download-if-no-range"]);
        assert!(ls.status.success(), "{}", String::from_utf8_lossy(&ls.stderr));
        assert!(String::from_utf8_lossy(&ls.stdout).contains("app.js"));
        let dest = tempfile::tempdir().unwrap();
        let out = artifact(&["extract", &url, dest.path().to_str().unwrap(), "--download-if-no-range"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::read(dest.path().join("dist/app.js")).unwrap(), b"console.log('hello')\n");
        assert_eq!(std::fs::read(dest.path().join("objects/02999.o")).unwrap(), "object 2999\n".repeat(10).as_bytes());
    }
}

/// `artifact` with `vars` set and every proxy variable of the test's own environment unset.
fn artifact_with_env(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_artifact"));
    for name in
        ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy"]
    {
        command.env_remove(name);
    }
    command.envs(vars.iter().copied()).args(args).output().unwrap()
}

#[test]
fn the_environments_proxy_carries_cold_and_warm_reads_alike() {
    use artifact_testkit::fronts::ForwardProxy;
    let (server, proxy) = (RangeServer::start(), ForwardProxy::start());
    server.put("a.zip", archive());
    let url = server.url("a.zip");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().to_str().unwrap();
    let through = [("HTTP_PROXY", proxy.url(None))];
    let through: Vec<(&str, &str)> = through.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cold = artifact_with_env(&["cat", &url, "dist/app.js", "--index-cache", cache], &through);
    assert!(cold.status.success(), "{}", String::from_utf8_lossy(&cold.stderr));
    assert_eq!(cold.stdout, b"console.log('hello')\n");
    assert!(!proxy.heads().is_empty() && proxy.heads().iter().all(|h| h.starts_with(&format!("GET {url} "))));
    // A dead proxy: the warm read (index on disk) fails as the cold one would, exit 1.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dead = format!("http://{dead}");
    server.reset_counts();
    let warm = artifact_with_env(&["cat", &url, "dist/app.js", "--index-cache", cache], &[("HTTP_PROXY", &dead)]);
    assert_eq!(warm.status.code(), Some(1), "{}", String::from_utf8_lossy(&warm.stderr));
    assert!(server.requests().is_empty(), "nothing went around the proxy");
    // NO_PROXY names the host: straight there.
    let bypass = [("HTTP_PROXY", dead.as_str()), ("NO_PROXY", "127.0.0.1")];
    let direct = artifact_with_env(&["cat", &url, "dist/app.js", "--index-cache", cache], &bypass);
    assert!(direct.status.success(), "{}", String::from_utf8_lossy(&direct.stderr));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn ca_cert_trusts_an_internal_authority() {
    use artifact_testkit::fronts::{TEST_CA_PEM, TlsFront};
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let front = TlsFront::start(server.addr());
    let url = front.url("/a.zip");
    let refused = artifact_with_env(&["cat", &url, "dist/app.js"], &[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, TEST_CA_PEM).unwrap();
    let ca = ca.to_str().unwrap();
    let trusted = artifact_with_env(&["cat", &url, "dist/app.js", "--ca-cert", ca], &[]);
    assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
    assert_eq!(trusted.stdout, b"console.log('hello')\n");
    let listed = artifact_with_env(&["ls", &url, "--ca-cert", ca], &[]);
    assert!(listed.status.success() && String::from_utf8_lossy(&listed.stdout).contains("dist/"));
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, b"hello").unwrap();
    for bad in [not_pem.to_str().unwrap(), "/nonexistent/ca.pem"] {
        let out = artifact_with_env(&["cat", &url, "dist/app.js", "--ca-cert", bad], &[]);
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn metadata_generate_reads_a_url_with_its_headers_and_only_the_directory() {
    let server = RangeServer::start();
    let bytes = archive();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("a.zip");
    std::fs::write(&local, &bytes).unwrap();
    server.put("a.zip", bytes.clone());
    server.set_behaviour(Behaviour {
        require_header: Some(("private-token".into(), "abc".into())),
        ..Behaviour::default()
    });
    let url = server.url("a.zip");
    let expected = artifact(&["metadata", "generate", local.to_str().unwrap()]);
    assert!(expected.status.success());
    let refused = artifact(&["metadata", "generate", &url]);
    assert!(!refused.status.success(), "a 403 is no metadata");
    server.reset_counts();
    let out = artifact(&["metadata", "generate", &url, "-H", "PRIVATE-TOKEN: abc", "--stats"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, expected.stdout, "the same metadata.gz as from the local copy");
    let (requests, received) = stats(&out);
    assert_eq!(requests, server.requests().len() as u64);
    assert!(received < bytes.len() as u64 / 2, "{received} bytes of a {} byte archive", bytes.len());
}
