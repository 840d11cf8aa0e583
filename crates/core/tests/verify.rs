//! Verifying every entry at once: the outcome names exactly the entries that fail to read,
//! whatever the thread count, and the progress counter adds up.

mod common;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use artifact_core::{Archive, MemorySource, VerifyOptions, verify};
use common::{build, deflated, stored, text};

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Offsets of the central directory records.
fn cd_records(bytes: &[u8]) -> Vec<usize> {
    (0..bytes.len() - 4).filter(|&i| bytes[i..i + 4] == [0x50, 0x4b, 1, 2]).collect()
}

/// 300 entries, of which three are broken three ways.
fn damaged() -> (Vec<u8>, Vec<&'static str>) {
    let names: Vec<String> = (0..300).map(|i| format!("dir{}/file{i}.txt", i % 7)).collect();
    let files: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| if i % 2 == 0 { deflated(n, text(2000 + i, i as u64)) } else { stored(n, text(500, i as u64)) })
        .collect();
    let mut bytes = build(&files);
    let cd = cd_records(&bytes);
    // Entry 10 (deflated): a wrong CRC-32 in both headers.
    let local = u32::from_le_bytes(bytes[cd[10] + 42..cd[10] + 46].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(bytes[cd[10] + 16..cd[10] + 20].try_into().unwrap()) ^ 1;
    put_u32(&mut bytes, cd[10] + 16, crc);
    put_u32(&mut bytes, local + 14, crc);
    // Entry 51 (stored): its record points at entry 50's local header (overlap).
    let other = u32::from_le_bytes(bytes[cd[50] + 42..cd[50] + 46].try_into().unwrap());
    put_u32(&mut bytes, cd[51] + 42, other);
    // Entry 299: compressed size far past the directory.
    put_u32(&mut bytes, cd[299] + 20, 0x7fff_0000);
    (bytes, vec!["dir3/file10.txt", "dir2/file51.txt", "dir5/file299.txt"])
}

#[test]
fn the_refused_entries_are_exactly_the_broken_ones_on_any_number_of_threads() {
    let (bytes, broken) = damaged();
    let archive = Archive::open(MemorySource::new(bytes)).unwrap();
    let one = verify(&archive, &VerifyOptions::new().threads(1)).unwrap();
    let mut names: Vec<&str> = one.refused.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    let mut expected = broken.clone();
    expected.sort_unstable();
    assert_eq!(names, expected);
    assert_eq!((one.entries, one.verified()), (300, 297));
    for threads in [2, 3, 8] {
        assert_eq!(verify(&archive, &VerifyOptions::new().threads(threads)).unwrap(), one, "{threads} threads");
    }
    let reasons: Vec<&str> = one.refused.iter().map(|r| r.reason.as_str()).collect();
    assert!(reasons[0].contains("CRC-32"), "{reasons:?}");
    assert!(reasons[1].contains("overlap"), "{reasons:?}");
    assert!(reasons[2].contains("past") || reasons[2].contains("bounds"), "{reasons:?}");
    // Every entry it did not refuse reads back whole; every one it refused fails to.
    for entry in archive.entries().map(Result::unwrap) {
        let refused = one.refusal_of(&entry).is_some();
        let read = archive.reader(&entry).and_then(|mut r| Ok(r.read_to_end(&mut Vec::new())?));
        if !refused {
            assert_eq!(read.unwrap() as u64, entry.size());
        } else if entry.display_name() != "dir2/file51.txt" {
            // The overlapping entry is refused for where it is, not for how it reads.
            assert!(read.is_err(), "{}", entry.display_name());
        }
    }
}

#[test]
fn progress_adds_up_to_the_compressed_sizes() {
    let (bytes, _) = damaged();
    let archive = Archive::open(MemorySource::new(bytes)).unwrap();
    let progress = Arc::new(AtomicU64::new(0));
    verify(&archive, &VerifyOptions::new().threads(2).progress(progress.clone())).unwrap();
    let total: u64 = archive.entries().map(|e| e.unwrap().compressed_size()).sum();
    assert_eq!(progress.load(Ordering::Relaxed), total);
}

#[test]
fn an_empty_archive_verifies_with_nothing_to_do() {
    let archive = Archive::open(MemorySource::new(build(&[]))).unwrap();
    let v = verify(&archive, &VerifyOptions::new()).unwrap();
    assert_eq!((v.entries, v.refused.len()), (0, 0));
}
