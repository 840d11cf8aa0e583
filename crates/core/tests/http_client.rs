//! The engine's one HTTP client: every request (index loads and entry reads, blocking and
//! async) through the same forward proxy and the same roots, on real TLS and a real proxy
//! hop on loopback.

mod common;

use std::io::Read;
use std::sync::Arc;

use artifact_core::http::{HeaderMap, HttpClient, HttpOptions, Proxies, RemoteArchives, certificates_from_pem};
use artifact_core::{ArtifactPath, Error, HttpProblem};
use artifact_testkit::fronts::{ForwardProxy, TEST_CA_PEM, TlsFront};
use artifact_testkit::range_server::RangeServer;
use common::*;
use futures_util::StreamExt as _;

fn path(p: &str) -> ArtifactPath {
    ArtifactPath::new(p).unwrap()
}

fn archive() -> Vec<u8> {
    build(&[deflated("a.txt", text(2048, 1)), stored("b.bin", vec![7u8; 500])])
}

fn read_blocking(remote: &RemoteArchives, url: &str, p: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    remote.open_entry(url, &path(p))?.read_to_end(&mut out).map_err(Error::from_io)?;
    Ok(out)
}

async fn read_async(remote: &Arc<RemoteArchives>, url: &str, p: &str) -> Result<Vec<u8>, Error> {
    let mut entry = remote.open_entry_async(url, &path(p), &HeaderMap::new()).await?;
    let mut out = Vec::new();
    while let Some(chunk) = entry.next().await {
        out.extend_from_slice(&chunk.map_err(Error::from_io)?);
    }
    Ok(out)
}

fn is_connect_error(e: &Error) -> bool {
    matches!(e, Error::Http { problem: HttpProblem::Connect(_), .. })
}

#[test]
fn every_request_goes_through_the_proxy_blocking_and_async_with_its_credentials() {
    let (server, proxy) = (RangeServer::start(), ForwardProxy::start());
    server.put("a.zip", archive());
    let url = server.url("a.zip");
    let options = HttpOptions { proxies: Proxies::All(proxy.url(Some("tester:s3cret"))), ..HttpOptions::default() };
    let remote = Arc::new(RemoteArchives::new(options).unwrap());
    assert_eq!(read_blocking(&remote, &url, "a.txt").unwrap(), text(2048, 1));
    assert_eq!(read_blocking(&remote, &url, "b.bin").unwrap(), vec![7u8; 500]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(runtime.block_on(read_async(&remote, &url, "a.txt")).unwrap(), text(2048, 1));
    let heads = proxy.heads();
    assert!(!heads.is_empty());
    for head in &heads {
        assert!(head.starts_with(&format!("GET {url} HTTP/1.1\r\n")), "the whole URL, asked of the proxy: {head}");
        // base64("tester:s3cret")
        assert!(head.to_ascii_lowercase().contains("proxy-authorization: basic dgvzdgvyonmzy3jlda=="), "{head}");
    }
    assert_eq!(server.requests().len(), 4, "suffix read and three entry reads, all through the proxy");
}

#[test]
fn a_dead_proxy_fails_cold_loads_and_warm_reads_alike() {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let url = server.url("a.zip");
    let dir = tempfile::tempdir().unwrap();
    // Warmed directly, into the disk cache.
    let direct = RemoteArchives::new(HttpOptions { proxies: Proxies::None, ..HttpOptions::default() }).unwrap();
    let direct = direct.with_disk_cache(dir.path());
    assert_eq!(read_blocking(&direct, &url, "a.txt").unwrap(), text(2048, 1));
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // closed when dropped
    let through_dead = || HttpOptions { proxies: Proxies::All(format!("http://{dead}")), ..HttpOptions::default() };
    let cold = RemoteArchives::new(through_dead()).unwrap();
    assert!(is_connect_error(&read_blocking(&cold, &url, "a.txt").unwrap_err()), "cold, blocking");
    let warm = Arc::new(RemoteArchives::new(through_dead()).unwrap().with_disk_cache(dir.path()));
    let before = server.requests().len();
    assert!(is_connect_error(&read_blocking(&warm, &url, "a.txt").unwrap_err()), "warm, blocking");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let e = runtime.block_on(read_async(&warm, &url, "b.bin")).unwrap_err();
    assert!(is_connect_error(&e), "warm, async: {e}");
    assert_eq!(server.requests().len(), before, "nothing went around the proxy");
}

#[test]
fn an_internal_authority_is_trusted_only_when_added() {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let front = TlsFront::start(server.addr());
    let url = front.url("/a.zip");
    let plain = RemoteArchives::new(HttpOptions { proxies: Proxies::None, ..HttpOptions::default() }).unwrap();
    let refused = read_blocking(&plain, &url, "a.txt").unwrap_err();
    assert!(refused.to_string().contains("certificate"), "{refused}");
    assert!(server.requests().is_empty(), "nothing reached the server through a refused handshake");
    let roots = certificates_from_pem(TEST_CA_PEM).unwrap();
    let options = HttpOptions { extra_roots: roots, proxies: Proxies::None, ..HttpOptions::default() };
    let trusting = Arc::new(RemoteArchives::new(options.clone()).unwrap());
    assert_eq!(read_blocking(&trusting, &url, "a.txt").unwrap(), text(2048, 1));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(runtime.block_on(read_async(&trusting, &url, "b.bin")).unwrap(), vec![7u8; 500]);
    // Through a proxy: a CONNECT tunnel, TLS inside it.
    let proxy = ForwardProxy::start();
    let tunnelled = HttpOptions { proxies: Proxies::All(proxy.url(None)), ..options.clone() };
    let tunnelled = RemoteArchives::new(tunnelled).unwrap();
    assert_eq!(read_blocking(&tunnelled, &url, "a.txt").unwrap(), text(2048, 1));
    let authority = url.trim_start_matches("https://").trim_end_matches("/a.zip");
    assert!(proxy.heads().iter().all(|h| h.starts_with(&format!("CONNECT {authority} "))), "{:?}", proxy.heads());
    assert!(!proxy.heads().is_empty());
    // One client shared by two readers: one pool, the same roots.
    let client = HttpClient::new(&options).unwrap();
    let first = RemoteArchives::with_client(client.clone(), options.clone());
    let second = RemoteArchives::with_client(client, options);
    assert_eq!(read_blocking(&first, &url, "b.bin").unwrap(), vec![7u8; 500]);
    assert_eq!(read_blocking(&second, &url, "a.txt").unwrap(), text(2048, 1));
}

#[test]
fn a_proxy_url_that_is_not_one_is_an_error_not_a_direct_connection() {
    let options = HttpOptions { proxies: Proxies::All("http://[::1".into()), ..HttpOptions::default() };
    let e = RemoteArchives::new(options).unwrap_err();
    assert!(e.to_string().contains("not a proxy URL"), "{e}");
}

#[test]
fn pem_without_a_certificate_is_an_error() {
    assert!(certificates_from_pem(b"").is_err());
    assert!(certificates_from_pem(b"not pem at all").is_err());
    let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert!(certificates_from_pem(broken).is_err());
    let not_a_certificate = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(certificates_from_pem(not_a_certificate).is_err(), "a PEM block whose bytes are no certificate");
    assert_eq!(certificates_from_pem(TEST_CA_PEM).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_loads_on_the_callers_runtime_once_for_many_callers() {
    let server = RangeServer::start();
    server.put("a.zip", archive());
    let url = server.url("a.zip");
    let remote = Arc::new(RemoteArchives::new(HttpOptions::default()).unwrap());
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (remote, url) = (remote.clone(), url.clone());
        tasks.push(tokio::spawn(async move { remote.index_async(&url, &HeaderMap::new()).await.map(|i| i.len()) }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 2);
    }
    assert_eq!(server.requests().len(), 1, "one suffix read for sixteen callers");
    assert_eq!(remote.cache().counts().misses, 1);
}

#[test]
fn user_information_in_the_url_is_sent_as_basic_credentials_never_in_the_url_or_the_disk_cache() {
    let (server, proxy) = (RangeServer::start(), ForwardProxy::start());
    server.put("a.zip", archive());
    let url = server.url("a.zip").replace("http://", "http://ci%20user:p%40ss@");
    let dir = tempfile::tempdir().unwrap();
    let options = HttpOptions { proxies: Proxies::All(proxy.url(None)), ..HttpOptions::default() };
    let remote = RemoteArchives::new(options).unwrap().with_disk_cache(dir.path());
    assert_eq!(read_blocking(&remote, &url, "a.txt").unwrap(), text(2048, 1));
    // base64("ci user:p@ss")
    for request in server.requests() {
        assert_eq!(request.header("authorization"), Some("Basic Y2kgdXNlcjpwQHNz"));
    }
    for head in proxy.heads() {
        assert!(!head.contains("p%40ss") && !head.contains("ci%20user"), "{head}");
    }
    for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let bytes = std::fs::read(file.path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("p%40ss") && !text.contains("ci%20user"), "the disk cache holds the credentials");
    }
    // A caller's own Authorization wins over the URL's.
    server.reset_counts();
    let mut headers = HeaderMap::new();
    headers.insert("authorization", "Bearer mine".parse().unwrap());
    let plain = RemoteArchives::new(HttpOptions { headers, proxies: Proxies::None, ..HttpOptions::default() }).unwrap();
    assert_eq!(read_blocking(&plain, &url, "b.bin").unwrap(), vec![7u8; 500]);
    assert!(server.requests().iter().all(|r| r.header("authorization") == Some("Bearer mine")));
}

#[test]
fn a_proxy_password_is_never_shown() {
    let proxies = Proxies::All("http://me:hunter2@127.0.0.1:1".into());
    let shown = format!("{:?}", HttpOptions { proxies, ..HttpOptions::default() });
    assert!(!shown.contains("hunter2") && shown.contains("me:***@"), "{shown}");
    let options =
        HttpOptions { proxies: Proxies::All("https://me:hunter2@proxy.example:3128".into()), ..HttpOptions::default() };
    let e = RemoteArchives::new(options).unwrap_err().to_string();
    assert!(!e.contains("hunter2") && e.contains("not a proxy URL"), "{e}");
}

#[test]
fn a_directory_larger_than_the_buffered_bound_is_refused_on_async_loads_too() {
    let server = RangeServer::start();
    let mut files = Vec::new();
    let names: Vec<String> = (0..3000).map(|i| format!("objects/file-{i:05}.o")).collect();
    for name in &names {
        files.push(stored(name, b"x".to_vec()));
    }
    server.put("a.zip", build(&files));
    let url = server.url("a.zip");
    let options = HttpOptions { max_buffered: 100_000, ..HttpOptions::default() };
    let remote = Arc::new(RemoteArchives::new(options).unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let e = runtime.block_on(remote.index_async(&url, &HeaderMap::new())).unwrap_err();
    assert!(matches!(e, Error::Http { problem: HttpProblem::TooLarge { .. }, .. }), "{e}");
    let e = remote.index_with(&url, &HeaderMap::new()).unwrap_err();
    assert!(matches!(e, Error::Http { problem: HttpProblem::TooLarge { .. }, .. }), "{e}");
}
