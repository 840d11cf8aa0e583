//! The one reader leniency beyond the format: an end record whose central-directory size is
//! wrong while its offset and count are right is read by count from the offset (as Go's
//! `archive/zip` and Info-ZIP do); anything less exact stays corrupt.

mod common;

use std::io::Read;

use artifact_core::{Archive, ArtifactPath, CentralDirectory, Error, MemorySource, VerifyOptions, open_entry, verify};
use common::{build, deflated, stored, text};

/// The archive with its end record's directory size moved by `delta` bytes.
fn with_cd_size(mut bytes: Vec<u8>, delta: i64) -> Vec<u8> {
    let at = bytes.len() - 22 + 12;
    let size = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let wrong = (i64::from(size) + delta) as u32;
    bytes[at..at + 4].copy_from_slice(&wrong.to_le_bytes());
    bytes
}

fn sample() -> Vec<u8> {
    build(&[deflated("a.txt", text(5000, 1)), stored("b/c.bin", vec![7u8; 300]), deflated("d.txt", text(90, 2))])
}

fn contents(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let archive = Archive::open(MemorySource::new(bytes.to_vec())).unwrap();
    archive
        .entries()
        .map(|e| {
            let e = e.unwrap();
            let mut out = Vec::new();
            archive.reader(&e).unwrap().read_to_end(&mut out).unwrap();
            (e.display_name().into_owned(), out)
        })
        .collect()
}

#[test]
fn an_over_or_understated_directory_size_reads_like_the_right_one() {
    let right = sample();
    let expected = contents(&right);
    for delta in [-40, -3, -1, 1, 3, 46, 1000] {
        let wrong = with_cd_size(right.clone(), delta);
        let archive = Archive::open(MemorySource::new(wrong.clone())).unwrap_or_else(|e| panic!("{delta:+}: {e}"));
        let location = archive.central_directory().location();
        assert!(location.size_was_wrong(), "{delta:+}");
        assert_eq!(location.declared_size as i64 - location.size as i64, delta);
        assert_eq!(location.shift, 0, "{delta:+}: the gap is not prepended data");
        assert_eq!(contents(&wrong), expected, "{delta:+}");
        archive.index().unwrap().check_whole().unwrap();
        assert!(verify(&archive, &VerifyOptions::new()).unwrap().refused.is_empty());
        // The single look-up (a scan, no index) finds the same bytes.
        let mut one = Vec::new();
        open_entry(MemorySource::new(wrong), &ArtifactPath::new("a.txt").unwrap())
            .unwrap()
            .read_to_end(&mut one)
            .unwrap();
        assert_eq!(one, expected[0].1);
    }
}

#[test]
fn the_right_size_is_not_flagged() {
    let archive = Archive::open(MemorySource::new(sample())).unwrap();
    assert!(!archive.central_directory().location().size_was_wrong());
}

#[test]
fn prepended_data_still_shifts_every_offset() {
    // A self-extracting stub: the declared values are right relative to the zip proper.
    let mut bytes = vec![0x90u8; 4096];
    bytes.extend(sample());
    let archive = Archive::open(MemorySource::new(bytes.clone())).unwrap();
    let location = archive.central_directory().location();
    assert_eq!((location.shift, location.size_was_wrong()), (4096, false));
    assert_eq!(contents(&bytes), contents(&sample()));
}

#[test]
fn a_wrong_size_with_anything_else_wrong_stays_corrupt() {
    let right = sample();
    let cd_at = right.len() - 22;
    // Stray bytes between the records and the end record: the records no longer fill it.
    let mut junk = right[..cd_at].to_vec();
    junk.extend_from_slice(b"JUNK");
    junk.extend_from_slice(&right[cd_at..]);
    for delta in [-3, 3] {
        let err = Archive::open(MemorySource::new(with_cd_size(junk.clone(), delta))).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{delta:+}: {err}");
    }
    // A count that disagrees with the records.
    let mut count = with_cd_size(right.clone(), 3);
    let at = count.len() - 22 + 8;
    count[at..at + 4].copy_from_slice(&[2, 0, 2, 0]);
    assert!(matches!(Archive::open(MemorySource::new(count)), Err(Error::Corrupt(_))));
    // An offset that is wrong as well.
    let mut offset = with_cd_size(right, 3);
    let at = offset.len() - 22 + 16;
    let declared = u32::from_le_bytes(offset[at..at + 4].try_into().unwrap());
    offset[at..at + 4].copy_from_slice(&(declared + 1).to_le_bytes());
    assert!(matches!(Archive::open(MemorySource::new(offset)), Err(Error::Corrupt(_))));
}

#[test]
fn a_huge_claimed_size_reads_nothing_like_it() {
    // 4 GiB claimed at offset 0 of a small archive: corrupt, found after one record's worth.
    let mut bytes = sample();
    let at = bytes.len() - 22;
    bytes[at + 12..at + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    bytes[at + 16..at + 20].copy_from_slice(&0u32.to_le_bytes());
    let source = MemorySource::new(bytes);
    assert!(CentralDirectory::read(&source).is_err());
}
