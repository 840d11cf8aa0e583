//! `metadata.gz`: generated exactly as Workhorse writes it, decoded with GitLab's rules, and
//! bounded against hostile input.

mod common;

use std::io::{Cursor, Read, Write};

use artifact_core::metadata::{self, Limits, MetadataReader};
use artifact_core::{Archive, Error, MemorySource};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use zip::write::SimpleFileOptions;

fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn generated(archive: &[u8]) -> Vec<u8> {
    let archive = Archive::open(MemorySource::new(archive.to_vec())).unwrap();
    let entries: Vec<_> = archive.entries().collect::<Result<_, _>>().unwrap();
    metadata::generate(&entries, Vec::new()).unwrap()
}

#[test]
fn generated_bytes_equal_workhorse_output() {
    let time = zip::DateTime::from_date_and_time(2024, 1, 2, 3, 4, 6).unwrap();
    let opts = SimpleFileOptions::default().last_modified_time(time).unix_permissions(0o755);
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("b/c/d.txt", opts.compression_method(zip::CompressionMethod::Stored)).unwrap();
    w.write_all(b"hello").unwrap();
    w.start_file("a.txt", opts.unix_permissions(0o644)).unwrap();
    w.write_all(b"<&>").unwrap();
    let archive = w.finish().unwrap().into_inner();

    let gz = generated(&archive);
    assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff], "Go's gzip header: no name, mtime 0, OS 255");
    let mut plain = Vec::new();
    GzDecoder::new(&gz[..]).read_to_end(&mut plain).unwrap();

    let parsed = Archive::open(MemorySource::new(archive)).unwrap();
    let a = parsed.entries().nth(1).unwrap().unwrap();
    let mut want = Vec::new();
    string(&mut want, b"GitLab Build Artifacts Metadata 0.0.2\n");
    string(&mut want, b"{}");
    string(&mut want, b"a.txt");
    let a_json = format!(
        "{{\"modified\":1704164646,\"mode\":\"644\",\"crc\":{},\"size\":3,\"zipped\":{}}}\n",
        a.crc32(),
        a.compressed_size()
    );
    string(&mut want, a_json.as_bytes());
    string(&mut want, b"b/");
    string(&mut want, b"{\"crc\":0,\"size\":0,\"zipped\":0}\n");
    string(&mut want, b"b/c/");
    string(&mut want, b"{\"crc\":0,\"size\":0,\"zipped\":0}\n");
    string(&mut want, b"b/c/d.txt");
    string(&mut want, b"{\"modified\":1704164646,\"mode\":\"755\",\"crc\":907060870,\"size\":5,\"zipped\":5}\n");
    assert_eq!(String::from_utf8_lossy(&plain), String::from_utf8_lossy(&want));
}

#[test]
fn generate_then_decode_round_trips() {
    let files: Vec<common::File> = vec![
        common::deflated("dist/app.js", common::text(10_000, 1)),
        common::stored("dist/img/logo.png", vec![7u8; 100]),
        common::deflated("README", b"read me".to_vec()),
    ];
    let archive = common::build(&files);
    let gz = generated(&archive);
    let reader = MetadataReader::new(&gz[..]).unwrap();
    assert_eq!(reader.version(), "0.0.2");
    let all: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    let paths: Vec<&str> = all.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["README", "dist/", "dist/app.js", "dist/img/", "dist/img/logo.png"]);
    assert_eq!(all[2].metadata.size, Some(10_000));
    assert_eq!(all[1].metadata.size, Some(0));
    assert!(all[1].is_dir());

    let children: Vec<_> = MetadataReader::new(&gz[..]).unwrap().children("dist/").map(|e| e.unwrap().path).collect();
    assert_eq!(children, ["dist/app.js", "dist/img/"]);
    let root: Vec<_> = MetadataReader::new(&gz[..]).unwrap().children("").map(|e| e.unwrap().path).collect();
    assert_eq!(root, ["README", "dist/"]);
    let under: Vec<_> = MetadataReader::new(&gz[..]).unwrap().under("dist/").map(|e| e.unwrap().path).collect();
    assert_eq!(under, ["dist/app.js", "dist/img/", "dist/img/logo.png"]);
    assert!(MetadataReader::new(&gz[..]).unwrap().exists("dist/img/").unwrap());
    assert!(!MetadataReader::new(&gz[..]).unwrap().exists("dist/img").unwrap());
}

fn stream(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut plain = Vec::new();
    string(&mut plain, b"GitLab Build Artifacts Metadata 0.0.2\n");
    string(&mut plain, b"{}");
    for (p, m) in pairs {
        string(&mut plain, p);
        string(&mut plain, m);
    }
    plain
}

#[test]
fn gitlab_reading_rules_skip_bad_pairs() {
    let plain = stream(&[
        (b"ok.txt", b"{\"size\":1}\n"),
        (b"bad\xff.txt", b"{}\n"),
        (b"../escape", b"{}\n"),
        (b"a//b", b"{}\n"),
        (b"notjson", b"{size\n"),
        (b"fine/", b"{}\n"),
    ]);
    let mut truncated = plain.clone();
    string(&mut truncated, b"last-without-metadata");
    truncated.extend_from_slice(&[0, 0, 0, 50, b'{']);
    let paths: Vec<_> = MetadataReader::new(&gzip(&truncated)[..]).unwrap().map(|e| e.unwrap().path).collect();
    assert_eq!(paths, ["ok.txt", "fine/"]);
}

#[test]
fn broken_headers_make_the_file_invalid() {
    let mut wrong = Vec::new();
    string(&mut wrong, b"Something else\n");
    string(&mut wrong, b"{}");
    let mut no_errors = Vec::new();
    string(&mut no_errors, b"GitLab Build Artifacts Metadata 0.0.2\n");
    let mut bad_errors = no_errors.clone();
    string(&mut bad_errors, b"[1]");
    for (what, plain) in
        [("empty", vec![]), ("wrong header", wrong), ("no errors", no_errors), ("bad errors", bad_errors)]
    {
        let err = MetadataReader::new(&gzip(&plain)[..]).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{what}: {err}");
    }
    let err = MetadataReader::new(&b"not gzip at all"[..]).unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err}");
}

#[test]
fn lengths_and_counts_are_bounded_before_allocating() {
    // A path claiming 4 GiB: refused from its length alone.
    let mut plain = stream(&[]);
    plain.extend_from_slice(&u32::MAX.to_be_bytes());
    let err = MetadataReader::new(&gzip(&plain)[..]).unwrap().next().unwrap().unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");

    let many: Vec<(&[u8], &[u8])> = (0..50).map(|_| (&b"x"[..], &b"{}\n"[..])).collect();
    let limits = Limits { max_entries: 10, ..Limits::default() };
    let result: Result<Vec<_>, _> = MetadataReader::with_limits(&gzip(&stream(&many))[..], limits).unwrap().collect();
    assert!(result.unwrap_err().to_string().contains("more than 10 entries"));

    let limits = Limits { max_decompressed: 100, ..Limits::default() };
    let result: Result<Vec<_>, _> = MetadataReader::with_limits(&gzip(&stream(&many))[..], limits).unwrap().collect();
    assert!(matches!(result, Err(Error::Corrupt(_))));
}

#[test]
fn the_last_of_duplicate_names_wins_as_in_workhorse() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/python-dupes.zip");
    let gz = generated(&std::fs::read(path).unwrap());
    let dup = MetadataReader::new(&gz[..]).unwrap().map(Result::unwrap).find(|e| e.path == "dup.txt").unwrap();
    assert_eq!(dup.metadata.size, Some(7), "'second\\n' is the later entry");
}

#[test]
fn broken_metadata_says_what_is_wrong_as_a_value() {
    use artifact_core::{Corruption, MetadataProblem};
    let problem = |bytes: &[u8]| match MetadataReader::new(bytes) {
        Err(Error::Corrupt(Corruption::Metadata(p))) => p,
        other => panic!("expected a metadata problem, got {:?}", other.map(|_| ())),
    };
    let gz = |raw: &[u8]| {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(raw).unwrap();
        e.finish().unwrap()
    };
    assert_eq!(problem(&gz(b"")), MetadataProblem::Empty);
    assert_eq!(problem(&gz(b"\0\0")), MetadataProblem::TruncatedHeader);
    assert!(matches!(problem(&gz(b"GitLab")), MetadataProblem::StringTooLong { max: 4096, .. }));
    assert!(matches!(problem(b"not gzip at all"), MetadataProblem::Gzip(_)));
}

#[test]
fn borrowed_entries_are_the_owned_ones_whatever_the_metadata_shape() {
    // Workhorse's shape, other shapes serde reads (spaces, another order, escapes), and
    // pairs GitLab skips (bad JSON, an unsafe path, a path that is not UTF-8).
    let mut plain = Vec::new();
    string(&mut plain, b"GitLab Build Artifacts Metadata 0.0.2\n");
    string(&mut plain, b"{}");
    for (path, meta) in [
        (&b"a.txt"[..], &b"{\"modified\":1704164646,\"mode\":\"644\",\"crc\":1,\"size\":5,\"zipped\":5}\n"[..]),
        (b"b/", b"{\"crc\":0,\"size\":0,\"zipped\":0}\n"),
        (b"b/c.txt", b"{ \"size\": 7, \"mode\": \"600\" }\n"),
        (b"b/d.txt", b"{\"size\":1,\"comment\":\"quote \\\" and \\u00e9\"}\n"),
        (b"b/e.txt", b"{\"size\":1,\"mode\":\"644\",\"comment\":\"plain words\"}\n"),
        (b"bad.json", b"{\"size\":\n"),
        (b"../escape", b"{\"size\":1}\n"),
        (b"\xff.bin", b"{\"size\":1}\n"),
    ] {
        string(&mut plain, path);
        string(&mut plain, meta);
    }
    let gz = gzip(&plain);
    let owned: Vec<_> = MetadataReader::new(&gz[..]).unwrap().collect::<Result<_, _>>().unwrap();
    let mut reader = MetadataReader::new(&gz[..]).unwrap();
    let mut borrowed = Vec::new();
    while let Some(e) = reader.next_ref().unwrap() {
        assert_eq!(e.is_dir(), e.path.ends_with('/'));
        let m = e.to_metadata();
        assert_eq!((e.modified(), e.mode(), e.crc(), e.size()), (m.modified, m.mode.as_deref(), m.crc, m.size));
        assert_eq!((e.zipped(), e.comment()), (m.zipped, m.comment.as_deref()));
        borrowed.push(metadata::MetadataEntry { path: e.path.to_owned(), metadata: m });
    }
    assert_eq!(borrowed, owned);
    let paths: Vec<&str> = owned.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["a.txt", "b/", "b/c.txt", "b/d.txt", "b/e.txt"]);
    assert_eq!(owned[3].metadata.comment.as_deref(), Some("quote \" and é"));
    assert_eq!(owned[4].metadata.comment.as_deref(), Some("plain words"));
    assert!(reader.next_ref().unwrap().is_none(), "and it stays at the end");
}
