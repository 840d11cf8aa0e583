//! Remote archives over real HTTP on loopback: the request counts and bytes a look-up costs,
//! and every way a server can misbehave.

mod common;

use std::io::{Cursor, Read, Write};
use std::time::Duration;

use artifact_core::http::{HttpOptions, HttpSource, RemoteArchives};
use artifact_core::{Archive, ArtifactPath, Error, HttpProblem, Source, Unsupported};
use artifact_testkit::range_server::{Behaviour, RangeServer};
use common::*;
use zip::write::SimpleFileOptions;

fn path(p: &str) -> ArtifactPath {
    ArtifactPath::new(p).unwrap()
}

fn read(mut r: impl Read) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).map_err(Error::from_io)?;
    Ok(out)
}

/// `n` small stored files and a 2 KiB deflated report, last.
fn many(n: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..n {
        w.start_file(format!("build/objects/file-{i:06}.o"), opts).unwrap();
        w.write_all(format!("object {i}\n").as_bytes()).unwrap();
    }
    w.start_file("reports/summary.txt", SimpleFileOptions::default()).unwrap();
    w.write_all(&text(2048, 7)).unwrap();
    w.finish().unwrap().into_inner()
}

fn small() -> Vec<u8> {
    build(&[deflated("a.txt", text(2048, 1)), stored("b.bin", vec![7u8; 500]), deflated("c/d.txt", text(100_000, 2))])
}

#[test]
fn cold_lookup_in_a_small_archive_is_two_requests() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let remote = RemoteArchives::new(HttpOptions::default()).unwrap();
    let out = read(remote.open_entry(&server.url("a.zip"), &path("a.txt")).unwrap()).unwrap();
    assert_eq!(out, text(2048, 1));
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "suffix read, then header and data together");
    assert_eq!(requests[0].range.as_deref(), Some("bytes=-65536"));
    assert!(requests[0].header("if-match").is_none());
    assert!(requests[1].header("if-match").is_some(), "every later request is conditional");
    assert_eq!(remote.stats().reads, 2);
    assert_eq!(remote.stats().bytes, server.bytes_sent());
}

#[test]
fn cold_lookup_in_100k_entries_is_three_requests_and_warm_is_one() {
    let bytes = many(100_000);
    let server = RangeServer::start();
    server.put("big.zip", bytes.clone());
    let cd = Archive::open(artifact_core::MemorySource::new(bytes)).unwrap().central_directory().location();
    assert!(cd.size > 64 * 1024);
    let remote = RemoteArchives::new(HttpOptions::default()).unwrap();
    let url = server.url("big.zip");
    let entry_bytes = {
        let reader = remote.open_entry(&url, &path("reports/summary.txt")).unwrap();
        let compressed = reader.entry().compressed_size();
        assert_eq!(read(reader).unwrap(), text(2048, 7));
        compressed
    };
    assert_eq!(server.requests().len(), 3, "suffix, the rest of the central directory, the entry");
    let received = remote.stats().bytes;
    assert!(received <= cd.size + entry_bytes + 66 * 1024, "{received} bytes for a cold look-up");

    server.reset_counts();
    let out = read(remote.open_entry(&url, &path("build/objects/file-050000.o")).unwrap()).unwrap();
    assert_eq!(out, b"object 50000\n");
    assert_eq!(server.requests().len(), 1, "a warm look-up is one request");
}

#[test]
fn a_server_that_ignores_range_is_refused_after_one_request() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    server.set_behaviour(Behaviour { ignore_range: true, ..Behaviour::default() });
    let err = HttpSource::open(&server.url("a.zip"), &HttpOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Unsupported(Unsupported::ServerIgnoresRange { .. })), "{err}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_changed_etag_is_detected_and_the_cached_index_is_replaced_once() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let remote = RemoteArchives::new(HttpOptions::default()).unwrap();
    let url = server.url("a.zip");
    read(remote.open_entry(&url, &path("a.txt")).unwrap()).unwrap();

    // The archive is replaced: the cached index is stale.
    server.put("a.zip", build(&[deflated("a.txt", b"new content".to_vec())]));
    server.reset_counts();
    let out = read(remote.open_entry(&url, &path("a.txt")).unwrap()).unwrap();
    assert_eq!(out, b"new content");
    let requests = server.requests();
    assert!(requests[0].header("if-match").is_some());
    assert_eq!(requests.len(), 3, "the failed conditional request, then a cold look-up");

    // A source pinned to the old version says so.
    let source = HttpSource::open(&url, &HttpOptions::default()).unwrap();
    server.put("a.zip", small());
    let err = read(source.read_stream(0, 10).unwrap()).unwrap_err();
    assert!(matches!(err, Error::Changed { .. }), "{err}");
}

#[test]
fn a_broken_transfer_resumes_from_the_next_byte() {
    let data = text(3_000_000, 5);
    let server = RangeServer::start();
    server.put("a.zip", build(&[stored("big.txt", data.clone())]));
    let remote = RemoteArchives::new(HttpOptions::default()).unwrap();
    let url = server.url("a.zip");
    remote.open(&url).unwrap();
    server.reset_counts();
    server.set_behaviour(Behaviour { cut_after: Some(1_000_000), cut_times: 2, ..Behaviour::default() });
    let out = read(remote.open_entry(&url, &path("big.txt")).unwrap()).unwrap();
    assert_eq!(out, data, "bytes identical after two resumptions");
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for r in &requests[1..] {
        assert!(r.header("if-match").is_some(), "a resumption is conditional");
    }
    let first_start: u64 = requests[0].range.as_deref().unwrap()[6..].split('-').next().unwrap().parse().unwrap();
    let second_start: u64 = requests[1].range.as_deref().unwrap()[6..].split('-').next().unwrap().parse().unwrap();
    assert_eq!(second_start, first_start + 1_000_000, "resumed from the next byte");
}

#[test]
fn a_transfer_that_keeps_breaking_fails_cleanly() {
    let server = RangeServer::start();
    server.put("a.zip", build(&[stored("big.txt", text(3_000_000, 5))]));
    let remote = RemoteArchives::new(HttpOptions::default()).unwrap();
    let url = server.url("a.zip");
    remote.open(&url).unwrap();
    server.set_behaviour(Behaviour { cut_after: Some(100_000), cut_times: 100, ..Behaviour::default() });
    let err = read(remote.open_entry(&url, &path("big.txt")).unwrap()).unwrap_err();
    assert!(matches!(err, Error::Http { problem: HttpProblem::ShortBody { .. }, .. }), "{err}");
}

#[test]
fn a_redirect_to_another_origin_drops_credentials_and_later_ranges_skip_it() {
    let storage = RangeServer::start();
    storage.put("objects/a.zip", small());
    let gitlab = RangeServer::start();
    gitlab.set_behaviour(Behaviour { redirect_to: Some(storage.origin()), ..Behaviour::default() });
    let mut options = HttpOptions::default();
    options.headers.insert("private-token", "secret-token".parse().unwrap());
    options.headers.insert("job-token", "job-secret".parse().unwrap());
    options.headers.insert("authorization", "Bearer x".parse().unwrap());
    options.headers.insert("x-harmless", "kept".parse().unwrap());
    let remote = RemoteArchives::new(options).unwrap();
    let out = read(remote.open_entry(&gitlab.url("redirect/objects/a.zip"), &path("a.txt")).unwrap()).unwrap();
    assert_eq!(out, text(2048, 1));
    assert_eq!(gitlab.requests().len(), 1, "only the first request goes through the redirect");
    assert_eq!(gitlab.requests()[0].header("private-token"), Some("secret-token"));
    let at_storage = storage.requests();
    assert_eq!(at_storage.len(), 2);
    for r in &at_storage {
        for secret in ["private-token", "job-token", "authorization", "cookie"] {
            assert!(r.header(secret).is_none(), "{secret} leaked to another origin");
        }
        assert_eq!(r.header("x-harmless"), Some("kept"));
    }
}

#[test]
fn wrong_content_range_fails_at_once() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    server.set_behaviour(Behaviour { wrong_content_range: true, ..Behaviour::default() });
    let err = HttpSource::open(&server.url("a.zip"), &HttpOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Http { problem: HttpProblem::WrongRange { .. }, .. }), "{err}");
}

#[test]
fn missing_archive_is_not_found() {
    let server = RangeServer::start();
    let url = server.url("nothing.zip");
    let err = HttpSource::open(&url, &HttpOptions::default()).unwrap_err();
    assert!(matches!(err, Error::ArchiveNotFound { status: 404, .. }), "{err}");
    assert!(err.to_string().contains("no archive there") && !err.to_string().contains("no entry named"), "{err}");
    let remote = RemoteArchives::new(HttpOptions::default()).unwrap();
    let err = remote.open_entry(&url, &path("a.txt")).map(drop).unwrap_err();
    assert!(matches!(err, Error::ArchiveNotFound { .. }), "the archive missing, not its entry: {err}");
    assert_eq!(std::io::Error::from(err).kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn a_missing_entry_of_a_fresh_index_costs_no_request_and_a_refused_caller_evicts_nothing() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let url = server.url("a.zip");
    let remote = RemoteArchives::new(HttpOptions::default()).unwrap();
    read(remote.open_entry(&url, &path("a.txt")).unwrap()).unwrap();
    server.reset_counts();
    for _ in 0..3 {
        let err = remote.open_entry(&url, &path("nope.txt")).map(drop).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
    }
    assert_eq!(server.requests().len(), 0, "the index is fresh: its answer stands, nothing reloaded");
    // Another caller, whose credential the server refuses on its range read.
    let token = private_token;
    let (owner, stranger) = (token("owner"), token("stranger"));
    server.set_behaviour(Behaviour {
        require_header: Some(("private-token".into(), "owner".into())),
        ..Behaviour::default()
    });
    server.reset_counts();
    let refused = remote.open_entry_with(&url, &path("a.txt"), &stranger).map(drop).unwrap_err();
    assert!(matches!(&refused, Error::Http { problem: HttpProblem::Status(403), .. }), "{refused}");
    assert_eq!(server.requests().len(), 1, "refused once, and nothing reloaded after it");
    server.reset_counts();
    read(remote.open_entry_with(&url, &path("b.bin"), &owner).unwrap()).unwrap();
    assert_eq!(server.requests().len(), 1, "the owner's next read: the index is still there");
    assert_eq!(remote.cache().counts().evictions, 0);
}

#[test]
fn last_modified_without_etag_uses_if_range() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    server.set_behaviour(Behaviour { no_etag: true, ..Behaviour::default() });
    let remote = RemoteArchives::new(HttpOptions::default()).unwrap();
    let out = read(remote.open_entry(&server.url("a.zip"), &path("b.bin")).unwrap()).unwrap();
    assert_eq!(out, vec![7u8; 500]);
    let requests = server.requests();
    assert!(requests[1].header("if-range").is_some() && requests[1].header("if-match").is_none());
}

#[test]
fn a_stalled_server_times_out() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    server.set_behaviour(Behaviour { delay_ms: 1500, ..Behaviour::default() });
    let options = HttpOptions { stall_timeout: Duration::from_millis(300), ..HttpOptions::default() };
    let err = HttpSource::open(&server.url("a.zip"), &options).unwrap_err();
    assert!(matches!(err, Error::Http { problem: HttpProblem::Timeout(_), .. }), "{err}");
}

#[test]
fn nothing_listening_is_a_connect_error_and_a_bad_url_says_so() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = HttpSource::open(&format!("http://127.0.0.1:{port}/a.zip"), &HttpOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Http { problem: HttpProblem::Connect(_), .. }), "{err}");
    let err = HttpSource::open("http://[::1/a.zip", &HttpOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Http { problem: HttpProblem::InvalidUrl(_), .. }), "{err}");
}

#[test]
fn the_disk_cache_makes_a_second_process_one_request() {
    let bytes = many(20_000);
    let server = RangeServer::start();
    server.put("big.zip", bytes);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("big.zip") + "?X-Amz-Signature=first";
    let first = RemoteArchives::new(HttpOptions::default()).unwrap().with_disk_cache(dir.path());
    read(first.open_entry(&url, &path("reports/summary.txt")).unwrap()).unwrap();
    drop(first);
    server.reset_counts();
    let second = RemoteArchives::new(HttpOptions::default()).unwrap().with_disk_cache(dir.path());
    let other_signature = server.url("big.zip") + "?X-Amz-Signature=second";
    let out = read(second.open_entry(&other_signature, &path("build/objects/file-000007.o")).unwrap()).unwrap();
    assert_eq!(out, b"object 7\n");
    assert_eq!(server.requests().len(), 1, "the index came from disk");
}

#[test]
fn listing_and_reading_many_entries_of_a_remote_archive() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let remote = RemoteArchives::new(HttpOptions::default()).unwrap();
    let archive = remote.open(&server.url("a.zip")).unwrap();
    let names: Vec<_> = archive.entries().map(|e| e.unwrap().display_name().into_owned()).collect();
    assert_eq!(names, ["a.txt", "b.bin", "c/d.txt"]);
    for (name, want) in [("c/d.txt", text(100_000, 2)), ("b.bin", vec![7u8; 500])] {
        let entry = archive.find(&path(name)).unwrap();
        assert_eq!(read(archive.reader(&entry).unwrap()).unwrap(), want);
    }
}

#[test]
fn many_entries_of_a_remote_archive_share_ranges() {
    let server = RangeServer::start();
    let files: Vec<(String, Vec<u8>)> = (0..200).map(|i| (format!("f/{i:03}.txt"), text(3000 + i, i as u64))).collect();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in &files {
        w.start_file(name.as_str(), SimpleFileOptions::default()).unwrap();
        w.write_all(data).unwrap();
    }
    server.put("a.zip", w.finish().unwrap().into_inner());
    let remote = RemoteArchives::new(HttpOptions::default()).unwrap();
    let archive = remote.open(&server.url("a.zip")).unwrap();
    let entries: Vec<_> = archive.entries().map(Result::unwrap).collect();
    // Every other entry: the gaps are small, so one range serves them all.
    let wanted: Vec<_> = entries.iter().step_by(2).collect();
    server.reset_counts();
    let mut batch = archive.batch(wanted.iter().copied(), artifact_core::DEFAULT_MAX_GAP);
    assert_eq!(batch.ranges(), 1);
    for entry in &wanted {
        let i: usize = entry.display_name()[2..5].parse().unwrap();
        assert_eq!(read(batch.reader(entry).unwrap()).unwrap(), files[i].1, "{}", entry.display_name());
    }
    assert_eq!(server.requests().len(), 1, "one request for 100 entries");

    // With no gap allowed between runs, far entries get ranges of their own, and an entry
    // asked for out of order still reads right.
    let far: Vec<_> = [&entries[0], &entries[199]].into_iter().collect();
    let mut batch = archive.batch(far.iter().copied(), 0);
    assert_eq!(batch.ranges(), 2);
    assert_eq!(read(batch.reader(&entries[199]).unwrap()).unwrap(), files[199].1);
    assert_eq!(read(batch.reader(&entries[0]).unwrap()).unwrap(), files[0].1);
}

#[test]
fn concurrent_cold_lookups_of_one_archive_share_one_fetch() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let remote = RemoteArchives::new(HttpOptions::default()).unwrap();
    let url = server.url("a.zip");
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| assert_eq!(read(remote.open_entry(&url, &path("b.bin")).unwrap()).unwrap(), vec![7u8; 500]));
        }
    });
    let suffix_reads = server.requests().iter().filter(|r| r.range.as_deref() == Some("bytes=-65536")).count();
    assert_eq!(suffix_reads, 1, "one index fetch for eight look-ups");
    assert_eq!(server.requests().len(), 1 + 8);
}

#[test]
fn a_caller_may_opt_in_to_downloading_from_a_server_that_ignores_range() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    server.set_behaviour(Behaviour { ignore_range: true, ..Behaviour::default() });
    let options = HttpOptions { spool_without_range: true, ..HttpOptions::default() };
    let source = HttpSource::open(&server.url("a.zip"), &options).unwrap();
    let archive = Archive::open(&source).unwrap();
    let entry = archive.find(&path("c/d.txt")).unwrap();
    assert_eq!(read(archive.reader(&entry).unwrap()).unwrap(), text(100_000, 2));
    assert_eq!(server.requests().len(), 1, "one full download, then local reads");
    assert_eq!(source.stats().bytes, small().len() as u64);
}

#[test]
fn remote_archives_read_the_entries_of_a_downloaded_copy_from_it() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    server.set_behaviour(Behaviour { ignore_range: true, ..Behaviour::default() });
    let url = server.url("a.zip");
    let dir = tempfile::tempdir().unwrap();
    let options = HttpOptions { spool_without_range: true, ..HttpOptions::default() };
    let remote = RemoteArchives::new(options.clone()).unwrap().with_disk_cache(dir.path());
    assert_eq!(read(remote.open_entry(&url, &path("c/d.txt")).unwrap()).unwrap(), text(100_000, 2));
    assert_eq!(read(remote.open_entry(&url, &path("a.txt")).unwrap()).unwrap(), text(2048, 1));
    assert_eq!(server.requests().len(), 1, "one full download; both entries read from it");
    let listed = remote.open(&url).unwrap().entries().count();
    assert_eq!((listed, server.requests().len()), (3, 1));
    // Another process with the index on disk: its range read is refused, so it downloads.
    server.reset_counts();
    let next = RemoteArchives::new(options).unwrap().with_disk_cache(dir.path());
    assert_eq!(read(next.open_entry(&url, &path("b.bin")).unwrap()).unwrap(), vec![7u8; 500]);
    assert_eq!(server.requests().len(), 2, "the refused range read, then the download");
}

#[test]
fn the_disk_cache_never_writes_tokens_from_the_url() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let dir = tempfile::tempdir().unwrap();
    let remote = RemoteArchives::new(HttpOptions::default()).unwrap().with_disk_cache(dir.path());
    read(remote.open_entry(&(server.url("a.zip") + "?private_token=SECRET-123"), &path("a.txt")).unwrap()).unwrap();
    let mut files = 0;
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(!bytes.windows(10).any(|w| w == b"SECRET-123"), "a token was written to the cache");
        files += 1;
    }
    assert_eq!(files, 1);
}

#[test]
fn a_stale_disk_index_is_replaced_by_the_next_process() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("a.zip");
    let first = RemoteArchives::new(HttpOptions::default()).unwrap().with_disk_cache(dir.path());
    read(first.open_entry(&url, &path("a.txt")).unwrap()).unwrap();
    server.put("a.zip", build(&[deflated("a.txt", b"rewritten".to_vec())]));
    for _ in 0..2 {
        // A new process each time: only the disk cache remembers.
        let next = RemoteArchives::new(HttpOptions::default()).unwrap().with_disk_cache(dir.path());
        assert_eq!(read(next.open_entry(&url, &path("a.txt")).unwrap()).unwrap(), b"rewritten");
    }
    server.reset_counts();
    let warm = RemoteArchives::new(HttpOptions::default()).unwrap().with_disk_cache(dir.path());
    read(warm.open_entry(&url, &path("a.txt")).unwrap()).unwrap();
    assert_eq!(server.requests().len(), 1, "the disk index was replaced, so warm again");
}

#[test]
fn a_warm_index_without_the_entry_looks_again_once_it_is_no_longer_fresh() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    // Fresh for no time at all (the default, 10 s, is the test above's).
    let remote = RemoteArchives::new(HttpOptions { negative_fresh: Duration::ZERO, ..HttpOptions::default() }).unwrap();
    let url = server.url("a.zip");
    read(remote.open_entry(&url, &path("a.txt")).unwrap()).unwrap();
    server.put("a.zip", build(&[deflated("new.txt", b"added later".to_vec())]));
    assert_eq!(read(remote.open_entry(&url, &path("new.txt")).unwrap()).unwrap(), b"added later");
    let err = remote.open_entry(&url, &path("never.txt")).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[test]
fn remote_and_local_agree_on_a_fake_end_record_deep_in_a_long_comment() {
    // The real end record sits more than 64 KiB before the end; a lookalike inside the
    // comment, within the suffix read, must not win.
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("real.txt", SimpleFileOptions::default()).unwrap();
    w.write_all(b"the real one").unwrap();
    let mut comment = vec![b'c'; 65_520];
    let fake = [0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 9, 0, 9, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    comment[1000..1022].copy_from_slice(&fake);
    w.set_raw_comment(comment.into_boxed_slice()).unwrap();
    let bytes = w.finish().unwrap().into_inner();
    let local = Archive::open(artifact_core::MemorySource::new(bytes.clone())).unwrap();
    assert_eq!(local.entries().count(), 1);
    let server = RangeServer::start();
    server.put("a.zip", bytes);
    let remote = RemoteArchives::new(HttpOptions::default()).unwrap();
    assert_eq!(read(remote.open_entry(&server.url("a.zip"), &path("real.txt")).unwrap()).unwrap(), b"the real one");
}

#[test]
fn a_server_claiming_a_huge_central_directory_is_refused_not_buffered() {
    let server = RangeServer::start();
    server.put("big.zip", many(5_000));
    let options = HttpOptions { max_buffered: 64 * 1024, ..HttpOptions::default() };
    let err = RemoteArchives::new(options).unwrap().open(&server.url("big.zip")).unwrap_err();
    assert!(matches!(err, Error::Io(_) | Error::Http { problem: HttpProblem::TooLarge { .. }, .. }), "{err}");
    assert!(err.to_string().contains("over the limit"), "{err}");
}

#[test]
fn error_messages_never_carry_the_query_string() {
    // Presigned object-storage URLs carry their signature in the query.
    let server = RangeServer::start();
    let missing = format!("{}?X-Amz-Signature=topsecret&private_token=glpat-secret", server.url("nothing.zip"));
    let err = HttpSource::open(&missing, &HttpOptions::default()).unwrap_err();
    assert!(matches!(err, Error::ArchiveNotFound { .. }), "{err}");
    server.put("a.zip", small());
    server.set_behaviour(Behaviour { ignore_range: true, ..Behaviour::default() });
    let ignored = format!("{}?X-Amz-Signature=topsecret", server.url("a.zip"));
    let err2 = HttpSource::open(&ignored, &HttpOptions::default()).unwrap_err();
    let refused =
        HttpSource::open("http://127.0.0.1:9/a.zip?X-Amz-Signature=topsecret", &HttpOptions::default()).unwrap_err();
    for e in [err, err2, refused] {
        let text = e.to_string();
        assert!(!text.contains("topsecret") && !text.contains("glpat-secret"), "{text}");
    }
}

#[test]
fn a_refusal_where_the_archive_was_redirected_follows_the_redirect_again() {
    // An expired presigned URL: object storage answers 403 to a signature it no longer
    // takes, and only the archive's own URL can hand out a new one.
    let storage = RangeServer::start();
    storage.put("objects/a.zip", small());
    let gitlab = RangeServer::start();
    gitlab.set_behaviour(Behaviour { redirect_to: Some(storage.origin()), ..Behaviour::default() });
    let remote = RemoteArchives::new(HttpOptions::default()).unwrap();
    let url = gitlab.url("redirect/objects/a.zip");
    read(remote.open_entry(&url, &path("a.txt")).unwrap()).unwrap();
    storage
        .set_behaviour(Behaviour { require_header: Some(("x-signed".into(), "again".into())), ..Behaviour::default() });
    gitlab.reset_counts();
    let err = remote.open_entry(&url, &path("b.bin")).map(drop).unwrap_err();
    assert!(matches!(&err, Error::Http { problem: HttpProblem::Status(403), .. }), "{err}");
    assert_eq!(gitlab.requests().len(), 1, "the archive's own URL asked again for where it is");
}

#[test]
fn an_index_read_from_disk_is_not_fresh_for_a_missing_entry() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    let url = server.url("a.zip");
    let dir = tempfile::tempdir().unwrap();
    let first = RemoteArchives::new(HttpOptions::default()).unwrap().with_disk_cache(dir.path());
    read(first.open_entry(&url, &path("a.txt")).unwrap()).unwrap();
    // The URL now names a newer archive (as a by-ref download does); another process.
    server.put("a.zip", build(&[deflated("new.txt", b"added later".to_vec())]));
    let next = RemoteArchives::new(HttpOptions::default()).unwrap().with_disk_cache(dir.path());
    assert_eq!(read(next.open_entry(&url, &path("new.txt")).unwrap()).unwrap(), b"added later");
}

#[test]
fn a_whole_download_serves_only_the_caller_that_made_it() {
    let server = RangeServer::start();
    server.put("a.zip", small());
    server.set_behaviour(Behaviour { ignore_range: true, ..Behaviour::default() });
    let url = server.url("a.zip");
    let token = private_token;
    let remote = RemoteArchives::new(HttpOptions { spool_without_range: true, ..HttpOptions::default() }).unwrap();
    read(remote.open_entry_with(&url, &path("a.txt"), &token("ann")).unwrap()).unwrap();
    read(remote.open_entry_with(&url, &path("b.bin"), &token("ann")).unwrap()).unwrap();
    assert_eq!(server.requests().len(), 1, "ann's copy serves ann");
    server.reset_counts();
    read(remote.open_entry_with(&url, &path("b.bin"), &token("bob")).unwrap()).unwrap();
    let requests = server.requests();
    assert!(!requests.is_empty(), "bob's credential goes to the server, not ann's copy");
    assert!(requests.iter().all(|r| r.header("private-token") == Some("bob")));
}
