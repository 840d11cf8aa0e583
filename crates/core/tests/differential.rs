//! Differential tests: archives built by the `zip` crate's writer from proptest strategies
//! (names, sizes, stored and deflate, zip64, data descriptors, comments, prepended bytes),
//! read by this engine, by the `zip` crate's reader and by Python's `zipfile`. Listings and
//! every entry's bytes must agree; the same archives read one byte per read agree too.

use std::io::{Cursor, Read, Write};
use std::process::Command;

use artifact_core::{Archive, Error, MemorySource};
use artifact_testkit::ChunkedSource;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

#[derive(Debug, Clone)]
struct Case {
    files: Vec<(String, Vec<u8>, bool, bool)>, // name, data, deflate, zip64 (large_file)
    comment: Vec<u8>,
    prepended: usize,
    streamed: bool,
}

fn case() -> impl Strategy<Value = Case> {
    let name = prop_oneof![
        "[a-z]{1,8}",
        "[a-z]{1,4}/[a-z0-9._-]{1,10}",
        "日本語/[a-z]{1,4}",
        "[a-z]{1,3}/[a-z]{1,3}/[a-z]{1,3}/",
    ];
    let data = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2000),
        (0usize..200_000, any::<u8>()).prop_map(|(n, b)| (0..n).map(|i| b.wrapping_add((i % 7) as u8)).collect()),
    ];
    let file = (name, data, any::<bool>(), proptest::bool::weighted(0.2));
    (
        proptest::collection::vec(file, 1..12),
        proptest::collection::vec(any::<u8>(), 0..300),
        prop_oneof![Just(0usize), 1usize..5000],
        any::<bool>(),
    )
        .prop_map(|(files, comment, prepended, streamed)| {
            let files = files
                .into_iter()
                .enumerate()
                .map(|(i, (name, data, deflate, zip64))| {
                    let name = if name.ends_with('/') { name } else { format!("{i}-{name}") };
                    let data = if name.ends_with('/') { Vec::new() } else { data };
                    (name, data, deflate, zip64)
                })
                .collect::<Vec<_>>();
            let mut seen = std::collections::HashSet::new();
            let files = files.into_iter().filter(|f| seen.insert(f.0.clone())).collect();
            Case { files, comment, prepended, streamed }
        })
}

fn write(case: &Case) -> Vec<u8> {
    fn fill<W: Write + std::io::Seek>(w: &mut zip::ZipWriter<W>, case: &Case) {
        for (name, data, deflate, zip64) in &case.files {
            let method = if *deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
            let opts = SimpleFileOptions::default().compression_method(method).large_file(*zip64);
            if name.ends_with('/') {
                w.add_directory(name.as_str(), opts).unwrap();
            } else {
                w.start_file(name.as_str(), opts).unwrap();
                w.write_all(data).unwrap();
            }
        }
        w.set_raw_comment(case.comment.clone().into_boxed_slice()).unwrap();
    }
    let body = if case.streamed {
        let mut w = zip::ZipWriter::new_stream(Vec::new());
        fill(&mut w, case);
        w.finish().unwrap().into_inner()
    } else {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        fill(&mut w, case);
        w.finish().unwrap().into_inner()
    };
    let mut out = vec![0x5au8; case.prepended];
    out.extend_from_slice(&body);
    out
}

/// (name, size, crc, sha256 of the content) for every entry.
type Listing = Vec<(Vec<u8>, u64, u32, String)>;

/// The listing as this engine reads it.
fn ours<S: artifact_core::Source>(source: S) -> Result<Listing, Error> {
    let archive = Archive::open(source)?;
    let mut out = Vec::new();
    for entry in archive.entries() {
        let entry = entry?;
        let mut data = Vec::new();
        archive.reader(&entry)?.read_to_end(&mut data).map_err(Error::from_io)?;
        out.push((entry.name().to_vec(), entry.size(), entry.crc32(), hex(&Sha256::digest(&data))));
    }
    Ok(out)
}

fn zip_crate(bytes: &[u8]) -> Listing {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name_raw().to_vec(), f.size(), f.crc32(), hex(&Sha256::digest(&data)))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn engine_agrees_with_the_zip_crate_and_reads_one_byte_at_a_time() {
    let mut runner = TestRunner::new(Config { cases: 48, ..Config::default() });
    runner
        .run(&case(), |case| {
            let bytes = write(&case);
            let mine = ours(MemorySource::new(bytes.clone())).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&mine, &zip_crate(&bytes));
            let small = bytes.len() < 300_000;
            if small {
                let slow = ours(ChunkedSource::new(MemorySource::new(bytes), 1)).unwrap();
                prop_assert_eq!(&slow, &mine);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn engine_agrees_with_python_zipfile() {
    let dir = tempfile::tempdir().unwrap();
    let mut runner = TestRunner::deterministic();
    let mut expected = Vec::new();
    for i in 0..24 {
        let case = case().new_tree(&mut runner).unwrap().current();
        let bytes = write(&case);
        let path = dir.path().join(format!("{i}.zip"));
        std::fs::write(&path, &bytes).unwrap();
        expected.push((path, ours(MemorySource::new(bytes)).unwrap()));
    }
    let script = r#"
import hashlib, json, sys, zipfile
out = {}
for path in sys.argv[1:]:
    with zipfile.ZipFile(path) as z:
        out[path] = [[i.orig_filename.encode("utf-8", "surrogateescape").hex() if i.flag_bits & 0x800 else i.filename.encode("cp437").hex(),
                      i.file_size, i.CRC, hashlib.sha256(z.read(i)).hexdigest()] for i in z.infolist()]
print(json.dumps(out))
"#;
    let args: Vec<_> = expected.iter().map(|(p, _)| p.to_str().unwrap().to_owned()).collect();
    let output = match Command::new("python3").arg("-c").arg(script).args(&args).output() {
        Ok(o) if o.status.success() => o,
        Ok(o) => panic!("python3 zipfile failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            // Python is on every machine this project builds on; say so loudly if not.
            panic!("python3 is needed for this differential test: {e}");
        }
    };
    let theirs: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for (path, mine) in expected {
        let list = theirs[path.to_str().unwrap()].as_array().unwrap();
        let list: Listing = list
            .iter()
            .map(|e| {
                let name = e[0].as_str().unwrap();
                let name =
                    (0..name.len()).step_by(2).map(|i| u8::from_str_radix(&name[i..i + 2], 16).unwrap()).collect();
                (name, e[1].as_u64().unwrap(), e[2].as_u64().unwrap() as u32, e[3].as_str().unwrap().to_owned())
            })
            .collect();
        assert_eq!(mine, list, "{}", path.display());
    }
}
