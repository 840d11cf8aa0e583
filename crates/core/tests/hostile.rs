//! Hostile and broken archives: every lie is a typed error carrying its numbers, and no
//! input panics, hangs or makes the reader hold more than its buffers.

mod common;

use std::io::Read;

use artifact_core::{Archive, ArtifactPath, Corruption, Error, MemorySource, Unsupported};
use common::*;
use proptest::prelude::*;

/// Offsets of every central directory record (the zip crate writes no comments or stray
/// signatures in these archives).
fn cd_records(bytes: &[u8]) -> Vec<usize> {
    bytes.windows(4).enumerate().filter(|(_, w)| *w == b"PK\x01\x02").map(|(i, _)| i).collect()
}

fn local_headers(bytes: &[u8]) -> Vec<usize> {
    bytes.windows(4).enumerate().filter(|(_, w)| *w == b"PK\x03\x04").map(|(i, _)| i).collect()
}

fn eocd(bytes: &[u8]) -> usize {
    bytes.windows(4).rposition(|w| w == b"PK\x05\x06").unwrap()
}

fn put_u16(bytes: &mut [u8], at: usize, v: u16) {
    bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn read_all(bytes: Vec<u8>) -> Result<Vec<Vec<u8>>, Error> {
    let archive = Archive::open(MemorySource::new(bytes))?;
    let mut out = Vec::new();
    for entry in archive.entries() {
        let entry = entry?;
        let mut data = Vec::new();
        archive.reader(&entry)?.read_to_end(&mut data).map_err(Error::from_io)?;
        out.push(data);
    }
    Ok(out)
}

fn two_files() -> Vec<u8> {
    build(&[deflated("first.txt", text(4000, 1)), deflated("second.txt", text(4000, 2))])
}

#[test]
fn overlapping_entries_are_refused_by_the_whole_archive_check() {
    let mut bytes = two_files();
    let cd = cd_records(&bytes);
    put_u32(&mut bytes, cd[1] + 42, 0); // second entry claims the first one's local header
    let archive = Archive::open(MemorySource::new(bytes)).unwrap();
    let err = archive.index().and_then(|i| i.check_whole()).unwrap_err();
    assert!(matches!(err, Error::Corrupt(Corruption::OverlappingEntries { first: 0, second: 0, .. })), "{err}");
    // Without the index, reading it finds a local header of another name.
    let entry = archive.entries().nth(1).unwrap().unwrap();
    let err = archive.reader(&entry).unwrap_err();
    assert!(matches!(err, Error::Corrupt(Corruption::LocalHeaderMismatch { field: "name", .. })), "{err}");
}

#[test]
fn impossible_entry_count_is_refused_before_reading_records() {
    let mut bytes = two_files();
    let at = eocd(&bytes);
    put_u16(&mut bytes, at + 8, 60_000);
    put_u16(&mut bytes, at + 10, 60_000);
    let err = Archive::open(MemorySource::new(bytes)).unwrap_err();
    assert!(matches!(err, Error::Corrupt(Corruption::ImpossibleEntryCount { claimed: 60_000, .. })), "{err}");
}

#[test]
fn wrong_entry_count_is_corrupt() {
    let mut bytes = two_files();
    let at = eocd(&bytes);
    put_u16(&mut bytes, at + 8, 1);
    put_u16(&mut bytes, at + 10, 1);
    let err = read_all(bytes).unwrap_err();
    assert!(matches!(err, Error::Corrupt(Corruption::EntryCountMismatch { claimed: 1, found: 2 })), "{err}");
}

#[test]
fn central_directory_past_the_end_is_corrupt() {
    let mut bytes = two_files();
    let at = eocd(&bytes);
    put_u32(&mut bytes, at + 16, 0x7fff_0000);
    let err = Archive::open(MemorySource::new(bytes)).unwrap_err();
    assert!(matches!(err, Error::Corrupt(Corruption::CentralDirectoryOutOfBounds { .. })), "{err}");
}

#[test]
fn compressed_size_past_the_end_is_out_of_bounds() {
    let mut bytes = two_files();
    let cd = cd_records(&bytes);
    put_u32(&mut bytes, cd[1] + 20, 0x7fff_fff0);
    let archive = Archive::open(MemorySource::new(bytes)).unwrap();
    assert!(matches!(
        archive.index().and_then(|i| i.check_whole()).unwrap_err(),
        Error::Corrupt(Corruption::OutOfBounds { .. })
    ));
    let entry = archive.entries().nth(1).unwrap().unwrap();
    let err = archive.reader(&entry).unwrap_err();
    assert!(
        matches!(err, Error::Corrupt(Corruption::OutOfBounds { .. } | Corruption::LocalHeaderMismatch { .. })),
        "{err}"
    );
}

#[test]
fn local_header_offset_past_the_end_is_out_of_bounds() {
    let mut bytes = two_files();
    let cd = cd_records(&bytes);
    put_u32(&mut bytes, cd[0] + 42, 0xffff_fff0);
    let archive = Archive::open(MemorySource::new(bytes)).unwrap();
    let entry = archive.entries().next().unwrap().unwrap();
    let err = archive.reader(&entry).unwrap_err();
    assert!(
        matches!(err, Error::Corrupt(Corruption::OutOfBounds { what: "local header", offset: 0xffff_fff0, .. })),
        "{err}"
    );
}

#[test]
fn name_longer_than_its_record_is_corrupt() {
    let mut bytes = two_files();
    let cd = cd_records(&bytes);
    put_u16(&mut bytes, cd[1] + 28, 0xffff);
    let err = read_all(bytes).unwrap_err();
    assert!(matches!(err, Error::Corrupt(Corruption::Truncated { needed, .. }) if needed > 0xffff), "{err}");
}

#[test]
fn declared_size_bomb_is_refused_before_inflating() {
    let mut bytes = build(&[deflated("bomb", vec![0u8; 100_000])]);
    let cd = cd_records(&bytes)[0];
    put_u32(&mut bytes, cd + 24, 0xffff_fffe);
    let err = read_all(bytes).unwrap_err();
    assert!(matches!(err, Error::Corrupt(Corruption::ImpossibleSizes { uncompressed: 0xffff_fffe, .. })), "{err}");
}

#[test]
fn ratio_bomb_stops_at_the_declared_size() {
    // 64 MiB of zeros deflate to ~64 KiB; the headers claim 1 MiB.
    let mut bytes = build(&[deflated("bomb", vec![0u8; 64 << 20])]);
    let (cd, local) = (cd_records(&bytes)[0], local_headers(&bytes)[0]);
    put_u32(&mut bytes, cd + 24, 1 << 20);
    put_u32(&mut bytes, local + 22, 1 << 20);
    let archive = Archive::open(MemorySource::new(bytes)).unwrap();
    let entry = archive.entries().next().unwrap().unwrap();
    let mut reader = archive.reader(&entry).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    let err = loop {
        match reader.read(&mut buf) {
            Ok(0) => panic!("a lying size must never reach end of file"),
            Ok(n) => total += n as u64,
            Err(e) => break Error::from_io(e),
        }
    };
    assert!(total <= 1 << 20, "{total} bytes passed before the error");
    assert!(matches!(err, Error::Corrupt(Corruption::SizeMismatch { expected: 1_048_576, .. })), "{err}");
}

#[test]
fn crc_mismatch_fails_the_read_that_would_finish() {
    let data = text(100_000, 9);
    let mut bytes = build(&[stored("s.txt", data.clone())]);
    let local = local_headers(&bytes)[0];
    bytes[local + 30 + 5 + 50_000] ^= 0x20;
    let archive = Archive::open(MemorySource::new(bytes)).unwrap();
    let entry = archive.find(&ArtifactPath::new("s.txt").unwrap()).unwrap();
    let mut reader = archive.reader(&entry).unwrap();
    let mut buf = vec![0u8; 10_000];
    let mut total = 0;
    let err = loop {
        match reader.read(&mut buf) {
            Ok(0) => panic!("end of file after a CRC mismatch"),
            Ok(n) => total += n,
            Err(e) => break Error::from_io(e),
        }
    };
    assert!((90_000..100_000).contains(&total), "every read but the last one succeeds: {total}");
    assert!(matches!(err, Error::Corrupt(Corruption::CrcMismatch { .. })), "{err}");
    assert!(reader.read(&mut buf).is_err(), "a failed reader stays failed");
}

#[test]
fn corrupt_deflate_data_is_never_passed_off_as_valid() {
    let data = text(200_000, 4);
    let clean = build(&[deflated("d.txt", data.clone())]);
    let local = local_headers(&clean)[0];
    let cd = cd_records(&clean)[0];
    for offset in (local + 30 + 5..cd).step_by(97) {
        let mut bytes = clean.clone();
        bytes[offset] ^= 0x5a;
        match read_all(bytes) {
            Ok(out) => assert_eq!(out[0], data, "a flipped byte at {offset} changed the output silently"),
            Err(Error::Corrupt(_)) => {}
            Err(other) => panic!("flipped byte at {offset}: {other}"),
        }
    }
}

#[test]
fn other_methods_are_unsupported_and_named() {
    let mut bytes = two_files();
    let (cd, local) = (cd_records(&bytes)[0], local_headers(&bytes)[0]);
    put_u16(&mut bytes, cd + 10, 9);
    put_u16(&mut bytes, local + 8, 9);
    let err = read_all(bytes).unwrap_err();
    assert!(matches!(err, Error::Unsupported(Unsupported::Method { method: 9, .. })), "{err}");
    assert!(err.to_string().contains("deflate64"), "{err}");
}

#[test]
fn local_header_disagreeing_on_method_or_sizes_is_corrupt() {
    let clean = two_files();
    let local = local_headers(&clean)[0];
    for (field_at, value, field) in [(8usize, 0u32, "compression method"), (18, 12, "sizes")] {
        let mut bytes = clean.clone();
        if field_at == 8 {
            put_u16(&mut bytes, local + field_at, value as u16);
        } else {
            put_u32(&mut bytes, local + field_at, value);
        }
        let err = read_all(bytes).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt(Corruption::LocalHeaderMismatch { field: f, .. }) if *f == field),
            "{err}"
        );
    }
}

#[test]
fn truncation_at_every_length_is_an_error() {
    let bytes = two_files();
    for len in 0..bytes.len() {
        let err = read_all(bytes[..len].to_vec()).expect_err("a truncated archive read fine");
        assert!(matches!(err, Error::Corrupt(_)), "truncated to {len}: {err}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn mutated_archives_never_panic_and_never_lie(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
    ) {
        let clean = two_files();
        let mut bytes = clean.clone();
        for (at, v) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= v | 1;
        }
        if let Ok(out) = read_all(bytes) {
            // Only flips in places nobody checks (timestamps, attributes) may read fine,
            // and then the content is the original.
            prop_assert_eq!(out, vec![text(4000, 1), text(4000, 2)]);
        }
    }
}
