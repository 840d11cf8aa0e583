//! Every committed fuzz input (the seed corpora in `fuzz/corpus/<target>` and the inputs of
//! past findings in `fuzz/regressions/<target>`) replayed through the same property functions
//! the fuzz targets call, so that `cargo test` keeps every finding fixed.

use std::path::PathBuf;

use artifact_testkit::fuzz as fuzzing;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

fn replay(target: &str, property: fn(&[u8])) -> usize {
    let all = inputs(target);
    for (path, data) in &all {
        let outcome = std::panic::catch_unwind(|| property(data));
        assert!(outcome.is_ok(), "{target}: {} breaks the property", path.display());
    }
    all.len()
}

#[test]
fn artifact_path_corpus() {
    assert!(replay("artifact_path", fuzzing::artifact_path) > 0);
}

#[test]
fn archive_corpus() {
    assert!(replay("archive", fuzzing::archive) > 0);
}

/// A target over archives: its own corpus and every archive the archive target has.
fn replay_with_archives(target: &str, property: fn(&[u8])) -> usize {
    replay(target, property) + replay("archive", property)
}

#[test]
fn directory_read_corpus() {
    assert!(replay_with_archives("directory_read", fuzzing::directory_read) > 0);
}

#[test]
fn hostile_archives_read_the_same_through_the_sans_io_reader_and_decoder() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/hostile");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "zip") {
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| fuzzing::directory_read(&data));
            assert!(outcome.is_ok(), "{}: its directory reads differently", path.display());
            let outcome = std::panic::catch_unwind(|| fuzzing::entry_decode(&data));
            assert!(outcome.is_ok(), "{}: its entries decode differently", path.display());
            n += 1;
        }
    }
    assert!(n > 10, "{n} hostile archives");
}

#[test]
fn entry_decode_corpus() {
    assert!(replay_with_archives("entry_decode", fuzzing::entry_decode) > 0);
}

#[test]
fn entry_stream_corpus() {
    assert!(replay("entry_stream", fuzzing::entry_stream) > 0);
}

#[test]
fn http_range_corpus() {
    assert!(replay("http_range", fuzzing::http_range) > 0);
}

#[test]
fn metadata_corpus() {
    assert!(replay("metadata", fuzzing::metadata) > 0);
}

#[test]
fn every_fixture_archive_holds_the_archive_property() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    for entry in std::fs::read_dir(data).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "zip") {
            fuzzing::archive(&std::fs::read(entry.path()).unwrap());
        }
    }
}

#[test]
fn upstream_url_corpus() {
    assert!(replay("upstream_url", fuzzing::upstream_url) > 0);
}
