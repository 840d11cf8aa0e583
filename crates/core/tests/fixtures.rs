//! Every committed archive in `tests/data` (made by Info-ZIP `zip` and Python's `zipfile`,
//! see `scripts/make-fixtures.sh`) read against its manifest: listing, content hashes and the
//! expected error class, through a normal source and through one that reads a byte at a time.

use std::io::Read;
use std::path::PathBuf;

use artifact_core::{Archive, ArtifactPath, Error, FileSource, MemorySource, Source, open_entry};
use artifact_testkit::ChunkedSource;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(data_dir().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn class(err: &Error) -> &'static str {
    match err {
        Error::Corrupt(_) => "corrupt",
        Error::Unsupported(_) => "unsupported",
        Error::NotFound { .. } => "not found",
        Error::InvalidPath(_) => "invalid path",
        Error::Io(_) => "io",
        _ => "other",
    }
}

fn entry_name(e: &Value) -> Vec<u8> {
    match (e.get("name"), e.get("name_hex")) {
        (Some(Value::String(s)), _) => s.as_bytes().to_vec(),
        (_, Some(Value::String(h))) => {
            (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect()
        }
        _ => panic!("entry without a name: {e}"),
    }
}

/// Checks one archive through `source`; returns how many entries were read in full.
fn check<S: Source>(file: &str, case: &Value, source: S) -> usize {
    let expect_open = case["open"].as_str().unwrap();
    let archive = match Archive::open(source) {
        Ok(a) => a,
        Err(e) => {
            assert_eq!(class(&e), expect_open, "{file}: open failed with {e}");
            return 0;
        }
    };
    let entries: Result<Vec<_>, _> = archive.entries().collect();
    let entries = match entries {
        Ok(list) => list,
        Err(e) => {
            assert_eq!(class(&e), expect_open, "{file}: listing failed with {e}");
            return 0;
        }
    };
    assert_eq!(expect_open, "ok", "{file}: opened, but the manifest expects {expect_open}");
    let expected = case["entries"].as_array().unwrap();
    assert_eq!(entries.len(), expected.len(), "{file}: entry count");
    let mut read = 0;
    for (entry, want) in entries.iter().zip(expected) {
        let name = entry_name(want);
        assert_eq!(entry.name(), &name[..], "{file}: names in order");
        assert_eq!(entry.size(), want["size"].as_u64().unwrap(), "{file}: size");
        assert_eq!(u64::from(entry.crc32()), want["crc32"].as_u64().unwrap(), "{file}: crc");
        assert_eq!(u64::from(entry.method()), want["method"].as_u64().unwrap(), "{file}: method");
        assert_eq!(entry.is_dir(), want["dir"].as_bool().unwrap(), "{file}: dir");
        assert_eq!(entry.is_symlink(), want["symlink"].as_bool().unwrap(), "{file}: symlink");
        if entry.is_dir() {
            continue;
        }
        let outcome = archive.reader(entry).and_then(|mut r| {
            let mut out = Vec::new();
            r.read_to_end(&mut out).map_err(Error::from_io)?;
            Ok(out)
        });
        let expect = want["expect"].as_str().unwrap();
        match outcome {
            Ok(bytes) => {
                assert_eq!(expect, "ok", "{file}: {:?} read, expected {expect}", entry.display_name());
                if let Some(Value::String(sha)) = want.get("sha256") {
                    assert_eq!(&hex(&Sha256::digest(&bytes)), sha, "{file}: content of {:?}", entry.display_name());
                }
                if let Ok(path) = ArtifactPath::new(entry.name()) {
                    // The single look-up path serves what the archive serves (first of
                    // duplicate names).
                    let first = archive.find(&path).unwrap();
                    if first == *entry {
                        let mut again = Vec::new();
                        open_entry(archive.source(), &path).unwrap().read_to_end(&mut again).unwrap();
                        assert_eq!(again, bytes, "{file}: open_entry of {path}");
                    }
                }
                if let Some(Value::String(target)) = want.get("link_target") {
                    assert_eq!(bytes, target.as_bytes(), "{file}: a link's content is its target");
                }
                read += 1;
            }
            Err(e) => assert_eq!(class(&e), expect, "{file}: {:?} failed with {e}", entry.display_name()),
        }
    }
    read
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_fixture_matches_its_manifest() {
    let mut total = 0;
    for case in manifest() {
        let file = case["file"].as_str().unwrap();
        total += check(file, &case, FileSource::open(data_dir().join(file)).unwrap());
    }
    assert!(total > 50, "only {total} entries were read in full");
}

#[test]
fn every_fixture_reads_the_same_one_byte_at_a_time() {
    for case in manifest() {
        let file = case["file"].as_str().unwrap();
        let bytes = std::fs::read(data_dir().join(file)).unwrap();
        check(file, &case, ChunkedSource::new(MemorySource::new(bytes), 1));
    }
}

#[test]
fn duplicate_names_serve_the_first_in_central_directory_order() {
    let archive = Archive::open_file(data_dir().join("python-dupes.zip")).unwrap();
    let entry = archive.find(&ArtifactPath::new("dup.txt").unwrap()).unwrap();
    let mut out = String::new();
    archive.reader(&entry).unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(out, "first\n");
    // The index agrees with the scan.
    let index = archive.index().unwrap();
    assert_eq!(index.find(b"dup.txt").unwrap(), entry);
}

#[test]
fn names_that_break_the_path_rule_cannot_be_asked_for() {
    let archive = Archive::open_file(data_dir().join("python-bad-names.zip")).unwrap();
    for entry in archive.entries() {
        let entry = entry.unwrap();
        let valid = ArtifactPath::new(entry.name()).is_ok();
        assert_eq!(valid, entry.name() == b"good.txt", "{:?}", entry.display_name());
    }
}

#[test]
fn a_symlink_is_served_as_its_target_text_never_followed() {
    let archive = Archive::open_file(data_dir().join("infozip-symlink.zip")).unwrap();
    let entry = archive.find(&ArtifactPath::new("link").unwrap()).unwrap();
    assert!(entry.is_symlink());
    let mut out = String::new();
    archive.reader(&entry).unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(out, "target.txt");
}

#[test]
fn unsupported_methods_are_named() {
    for (file, name, method) in [("python-bzip2.zip", "bzip2", 12), ("python-lzma.zip", "lzma", 14)] {
        let archive = Archive::open_file(data_dir().join(file)).unwrap();
        let entry = archive.entries().next().unwrap().unwrap();
        let err = archive.reader(&entry).unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported(artifact_core::Unsupported::Method { method: m, .. }) if *m == method),
            "{file}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
}
