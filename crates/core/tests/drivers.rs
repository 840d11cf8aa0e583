//! One parser, two drivers: every archive of the hostile corpus (`tests/hostile`), of
//! rc-zip's test data (`tests/data/rc-zip`) and of the fuzz targets' seed corpora read through the blocking driver and the async
//! one over real HTTP on loopback, and through the sans-io reader and decoder fed in small
//! pieces: the same directory or the same refusal, and for every entry the same bytes or
//! the same kind of error; deflated entries also as gzip members (`GzipEntry`). rc-zip's archives also get the outcome this engine is meant to
//! give each (see `tests/data/rc-zip/README.md`).

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use artifact_core::http::{HeaderMap, HttpOptions, RemoteArchives};
use artifact_core::{Archive, ArtifactPath, Error, MemorySource};
use artifact_testkit::fuzz as fuzzing;
use artifact_testkit::range_server::RangeServer;
use futures_util::StreamExt;

/// Entries read per archive, and the largest read.
const MAX_ENTRIES: usize = 300;
const MAX_SIZE: u64 = 4 << 20;

fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(dir);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e != "md" && e != "json") && p.is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

fn class(e: &Error) -> &'static str {
    match e {
        Error::Corrupt(_) => "corrupt",
        Error::Unsupported(_) => "unsupported",
        Error::NotFound { .. } => "not found",
        Error::Changed { .. } => "changed",
        _ => "other",
    }
}

fn outcome<T>(r: &Result<T, Error>) -> &'static str {
    r.as_ref().map_or_else(class, |_| "ok")
}

/// The paths an archive's entries can be asked for by (valid, first of their name, small),
/// and whether each is deflated.
fn paths(bytes: &[u8]) -> Vec<(ArtifactPath, bool)> {
    let Ok(archive) = Archive::open(MemorySource::new(bytes.to_vec())) else { return Vec::new() };
    let mut out: Vec<(ArtifactPath, bool)> = Vec::new();
    for entry in archive.entries().take(MAX_ENTRIES) {
        let Ok(entry) = entry else { break };
        let Ok(path) = ArtifactPath::new(entry.name()) else { continue };
        if entry.size() <= MAX_SIZE && !out.iter().any(|(p, _)| *p == path) {
            out.push((path, entry.method() == 8));
        }
    }
    out
}

/// The entry as a gzip member through the async driver, inflated again by flate2.
async fn read_gzip(remote: &Arc<RemoteArchives>, url: &str, path: &ArtifactPath) -> Result<Vec<u8>, Error> {
    let mut member = remote.open_entry_async(url, path, &HeaderMap::new()).await?.into_gzip();
    let announced = member.len();
    let mut out = Vec::new();
    while let Some(chunk) = member.next().await {
        out.extend_from_slice(&chunk.map_err(Error::from_io)?);
    }
    assert_eq!(out.len() as u64, announced, "{path}: a member of the length announced");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&out[..]).read_to_end(&mut plain).expect("a member that ends is whole");
    Ok(plain)
}

async fn read_async(remote: &Arc<RemoteArchives>, url: &str, path: &ArtifactPath) -> Result<Vec<u8>, Error> {
    let mut entry = remote.open_entry_async(url, path, &HeaderMap::new()).await?;
    let mut out = Vec::new();
    while let Some(chunk) = entry.next().await {
        out.extend_from_slice(&chunk.map_err(Error::from_io)?);
    }
    Ok(out)
}

fn read_blocking(remote: &RemoteArchives, url: &str, path: &ArtifactPath) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    remote.open_entry(url, path)?.read_to_end(&mut out).map_err(Error::from_io)?;
    Ok(out)
}

/// One archive's outcomes: its name, its directory's, and each entry's (path, outcome).
type Report = (String, &'static str, Vec<(String, &'static str)>);

/// What one rc-zip archive should give: name, directory, entries read, entries refused.
type Expected = (&'static str, &'static str, usize, &'static [(&'static str, &'static str)]);

/// Per archive: whether its directory opened, and each entry's outcome by both drivers.
fn both_drivers(dir: &str) -> Vec<Report> {
    let server = RangeServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut report = Vec::new();
    for (name, bytes) in corpus(dir) {
        // The sans-io reader and decoder, fed in small pieces, agree with the blocking reads.
        let sans_io = std::panic::catch_unwind(|| {
            fuzzing::directory_read(&bytes);
            fuzzing::entry_decode(&bytes);
        });
        assert!(sans_io.is_ok(), "{name}: the sans-io reader or decoder disagrees");

        server.put(&name, bytes.clone());
        let url = server.url(&name);
        // Fresh caches per archive, so that each driver loads the index itself.
        let blocking = RemoteArchives::new(HttpOptions::default()).unwrap();
        let nonblocking = Arc::new(RemoteArchives::new(HttpOptions::default()).unwrap());
        let opened = blocking.open(&url).map(|_| ());
        let opened_async = runtime.block_on(nonblocking.index_async(&url, &HeaderMap::new())).map(|_| ());
        assert_eq!(outcome(&opened), outcome(&opened_async), "{name}: {opened:?} against {opened_async:?}");
        let local = Archive::open(MemorySource::new(bytes.clone())).map(|_| ());
        assert_eq!(outcome(&local), outcome(&opened), "{name}: local {local:?}, remote {opened:?}");
        let mut entries = Vec::new();
        for (path, deflated) in paths(&bytes) {
            let a = read_blocking(&blocking, &url, &path);
            let b = runtime.block_on(read_async(&nonblocking, &url, &path));
            assert_eq!(outcome(&a), outcome(&b), "{name} {path}: blocking {a:?}, async {b:?}");
            if let (Ok(a), Ok(b)) = (&a, &b) {
                assert!(a == b, "{name} {path}: the two drivers give different bytes");
            }
            if deflated {
                // Passed through as gzip: a member that ends is the entry's bytes; a damaged
                // entry ends in an error before the trailer.
                let g = runtime.block_on(read_gzip(&nonblocking, &url, &path));
                assert_eq!(outcome(&a), outcome(&g), "{name} {path}: identity {a:?}, gzip {g:?}");
                if let (Ok(a), Ok(g)) = (&a, &g) {
                    assert!(a == g, "{name} {path}: the gzip member holds other bytes");
                }
            }
            entries.push((path.to_string(), outcome(&a)));
        }
        report.push((name, outcome(&opened), entries));
    }
    report
}

#[test]
fn the_hostile_corpus_reads_the_same_through_both_drivers() {
    let report = both_drivers("tests/hostile");
    assert!(report.len() > 20, "{} archives", report.len());
    // Some entries read, some are refused: the corpus exercises both sides.
    let all: Vec<_> = report.iter().flat_map(|(_, _, e)| e.iter().map(|(_, o)| *o)).collect();
    assert!(all.contains(&"ok") && all.contains(&"corrupt") && all.contains(&"unsupported"), "{all:?}");
}

/// What this engine gives each of rc-zip's archives: the directory's outcome, how many of
/// the entries asked for by path read whole and verified, and the ones refused. Entries
/// with names that are no artifact path (not UTF-8, `..`) are never asked for.
const RC_ZIP: &[Expected] = &[
    ("archive-oob.zip", "ok", 0, &[]),
    ("cp-437.zip", "ok", 0, &[]),
    ("crc32-not-streamed.zip", "ok", 2, &[]),
    ("dd.zip", "ok", 1, &[]),
    ("found-me-bzip2.zip", "ok", 0, &[("found-me.txt", "unsupported")]),
    ("found-me-deflate64.zip", "ok", 0, &[("found-me.txt", "unsupported")]),
    ("found-me-lzma.zip", "ok", 0, &[("found-me.txt", "unsupported")]),
    ("found-me-zstd.zip", "ok", 0, &[("found-me.txt", "unsupported")]),
    ("go-no-datadesc-sig.zip", "ok", 2, &[]),
    ("go-with-datadesc-sig.zip", "ok", 2, &[]),
    ("info-zip-unix-extra.zip", "ok", 0, &[]),
    ("meta.zip", "ok", 26, &[]),
    ("readme.notzip", "corrupt", 0, &[]),
    ("readme.trailingzip", "ok", 1, &[]),
    ("readme.zip", "ok", 1, &[]),
    ("shift-jis.zip", "ok", 0, &[]),
    ("symlink.zip", "ok", 2, &[]),
    ("test-trailing-junk.zip", "ok", 2, &[]),
    ("test.zip", "ok", 2, &[]),
    ("time-22738.zip", "ok", 1, &[]),
    ("time-7zip.zip", "ok", 1, &[]),
    ("time-go.zip", "ok", 1, &[]),
    ("time-infozip.zip", "ok", 1, &[]),
    ("time-osx.zip", "ok", 1, &[]),
    ("time-win7.zip", "ok", 1, &[]),
    ("time-winrar.zip", "ok", 1, &[]),
    ("time-winzip.zip", "ok", 1, &[]),
    ("unix.zip", "ok", 3, &[]),
    ("utf8-7zip.zip", "ok", 1, &[]),
    ("utf8-infozip.zip", "ok", 1, &[]),
    ("utf8-osx.zip", "ok", 1, &[]),
    ("utf8-winrar.zip", "ok", 1, &[]),
    ("utf8-winzip.zip", "ok", 1, &[]),
    ("winxp.zip", "ok", 3, &[]),
    ("zip64-2.zip", "ok", 1, &[]),
    ("zip64.zip", "ok", 1, &[]),
    ("zipslip.zip", "ok", 1, &[]),
];

#[test]
fn the_fuzz_targets_archives_read_the_same_through_both_drivers() {
    let mut n = 0;
    for dir in ["fuzz/corpus/archive", "fuzz/corpus/directory_read", "fuzz/corpus/entry_decode"] {
        n += both_drivers(dir).len();
    }
    assert!(n > 30, "{n} archives");
}

#[test]
fn rc_zip_test_data_reads_the_same_through_both_drivers_and_as_expected() {
    let report = both_drivers("tests/data/rc-zip");
    let names: Vec<_> = report.iter().map(|(name, _, _)| name.as_str()).collect();
    let expected: Vec<_> = RC_ZIP.iter().map(|(name, ..)| *name).collect();
    assert_eq!(names, expected, "every archive has its expected outcome, and only those");
    for ((name, opened, entries), (_, want_opened, want_ok, want_refused)) in report.iter().zip(RC_ZIP) {
        assert_eq!(opened, want_opened, "{name}");
        let ok = entries.iter().filter(|(_, o)| *o == "ok").count();
        let refused: Vec<_> = entries.iter().filter(|(_, o)| *o != "ok").map(|(p, o)| (p.as_str(), *o)).collect();
        assert_eq!((ok, refused.as_slice()), (*want_ok, *want_refused), "{name}: {entries:?}");
    }
}
