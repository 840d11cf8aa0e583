//! Checkpoints: inflating a deflated entry from the middle gives exactly the bytes a full
//! inflate gives, for any range, across checkpoint boundaries, for archives written by
//! different deflaters; a damaged index is refused; an entry that does not verify builds
//! none.

use std::io::{Cursor, Read, Write};
use std::sync::OnceLock;

use artifact_core::checkpoints::{Checkpoints, DEFAULT_SPACING, EntryCheckpoints, InflatePool, InflateWork};
use artifact_core::{Archive, ArtifactPath, CheckpointProblem, Corruption, Error, FileSource, MemorySource, Source};
use proptest::prelude::*;

/// Text that compresses like logs and reports do: repeated words, varying numbers.
fn text(len: usize, seed: u64) -> Vec<u8> {
    let words = ["alpha ", "beta ", "gamma ", "delta\n", "epsilon ", "zeta ", "eta ", "theta\n", "iota "];
    let mut out = Vec::with_capacity(len + 16);
    let mut x = seed | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
        if x % 5 == 0 {
            out.extend_from_slice(format!("{} ", x % 100_000).as_bytes());
        }
    }
    out.truncate(len);
    out
}

/// A zip (written by the `zip` crate's deflater) of one deflated entry `big.txt`.
fn zip_of(data: &[u8], level: i64) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(level));
    w.start_file("big.txt", opts).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap().into_inner()
}

/// Changes the entry's CRC-32 where the zip says it (local header and central directory):
/// the data still inflates, to bytes that do not have it.
fn wrong_crc(zip: &mut [u8]) {
    assert_eq!(&zip[..4], b"PK\x03\x04");
    zip[14] ^= 0xff;
    let cd = zip.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
    zip[cd + 16] ^= 0xff;
}

struct Case {
    archive: Archive<MemorySource>,
    data: Vec<u8>,
    checkpoints: EntryCheckpoints,
}

/// 3 MiB of text, checkpoints every 64 KiB of output (so, many).
fn case() -> &'static Case {
    static CASE: OnceLock<Case> = OnceLock::new();
    CASE.get_or_init(|| {
        let data = text(3 << 20, 7);
        let archive = Archive::open(MemorySource::new(zip_of(&data, 6))).unwrap();
        let entry = archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
        let checkpoints = EntryCheckpoints::build(&archive, &entry, 64 << 10).unwrap();
        Case { archive, data, checkpoints }
    })
}

fn read_range(c: &Case, start: u64, len: u64) -> Vec<u8> {
    let entry = c.archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
    let mut out = Vec::new();
    c.checkpoints.reader_at(&c.archive, &entry, start).unwrap().take(len).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn checkpoints_are_spaced_and_ranges_across_them_are_exact() {
    let c = case();
    let points = &c.checkpoints.points;
    // A checkpoint sits at a block start: the zip crate's deflater writes blocks of about
    // 150 KiB of this text.
    assert!(points.len() >= 10, "{} checkpoints for 3 MiB at 64 KiB", points.len());
    for pair in points.windows(2) {
        assert!(pair[1].out - pair[0].out >= 64 << 10);
    }
    for p in points {
        for (start, len) in [(p.out - 1, 2), (p.out, 1), (p.out.saturating_sub(70_000), 140_000), (p.out + 1, 5)] {
            let end = (start + len).min(c.data.len() as u64);
            assert_eq!(read_range(c, start, len), &c.data[start as usize..end as usize], "{start}+{len}");
        }
    }
    // The whole entry from 0, and its last byte.
    assert_eq!(read_range(c, 0, u64::MAX), c.data);
    let last = c.data.len() as u64 - 1;
    assert_eq!(read_range(c, last, 10), &c.data[last as usize..]);
    assert!(read_range(c, c.data.len() as u64, 10).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn any_range_is_the_full_inflate_s_bytes(start in 0u64..(3 << 20), len in 0u64..300_000) {
        let c = case();
        let end = (start + len).min(c.data.len() as u64);
        prop_assert_eq!(read_range(c, start, len), &c.data[start as usize..end as usize]);
    }
}

#[test]
fn other_deflaters_and_levels_read_the_same() {
    // Level 1 and 9 of the zip crate's deflater, and Info-ZIP's (a fixture), every block.
    for level in [1, 9] {
        let data = text(4 << 20, 3 + level as u64);
        let archive = Archive::open(MemorySource::new(zip_of(&data, level))).unwrap();
        let entry = archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
        let cp = EntryCheckpoints::build(&archive, &entry, 1).unwrap();
        assert!(!cp.points.is_empty(), "level {level}: one block");
        for p in &cp.points {
            let mut out = Vec::new();
            cp.reader_at(&archive, &entry, p.out).unwrap().take(1000).read_to_end(&mut out).unwrap();
            let end = (p.out as usize + 1000).min(data.len());
            assert_eq!(out, &data[p.out as usize..end], "level {level} at {}", p.out);
        }
    }
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/infozip-basic.zip");
    let archive = Archive::open(FileSource::open(&fixture).unwrap()).unwrap();
    let entry = archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
    let mut whole = Vec::new();
    archive.reader(&entry).unwrap().read_to_end(&mut whole).unwrap();
    let cp = EntryCheckpoints::build(&archive, &entry, 1).unwrap();
    for start in (0..whole.len() as u64).step_by(997) {
        let mut out = Vec::new();
        cp.reader_at(&archive, &entry, start).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, &whole[start as usize..], "from {start}");
    }
}

#[test]
fn the_index_round_trips_and_a_damaged_one_is_refused() {
    let c = case();
    let entry = c.archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
    let mut all = Checkpoints::default();
    all.entries.insert(entry.record_offset(), std::sync::Arc::new(c.checkpoints.clone()));
    let bytes = all.encode();
    assert_eq!(Checkpoints::decode(&bytes).unwrap(), all);
    assert!(all.of(&entry).is_some());
    // Every single flipped byte, and every truncation, is refused.
    for i in (0..bytes.len()).step_by(bytes.len() / 500 + 1) {
        let mut bad = bytes.clone();
        bad[i] ^= 0x20;
        let err = Checkpoints::decode(&bad).unwrap_err();
        assert!(matches!(err, Error::Checkpoints(CheckpointProblem::Damaged(_))), "flipped byte {i}: {err:?}");
    }
    for len in [0, 3, 8, bytes.len() / 2, bytes.len() - 1] {
        let err = Checkpoints::decode(&bytes[..len]).unwrap_err();
        assert!(matches!(err, Error::Checkpoints(CheckpointProblem::Damaged(_))), "cut at {len}: {err:?}");
    }
}

#[test]
fn checkpoints_asked_of_another_entry_or_a_stored_one_are_typed_refusals() {
    let c = case();
    let zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let mut zip = zip;
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("big.txt", stored).unwrap();
    zip.write_all(b"not deflated").unwrap();
    let other = Archive::open(MemorySource::new(zip.finish().unwrap().into_inner())).unwrap();
    let entry = other.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
    let built = EntryCheckpoints::build(&other, &entry, 64 << 10).unwrap_err();
    assert!(matches!(built, Error::Checkpoints(CheckpointProblem::NotDeflated { .. })), "{built:?}");
    let cp = std::sync::Arc::new(c.checkpoints.clone());
    let used = cp.resume(&other, &entry, 0).map(|_| ()).unwrap_err();
    assert!(matches!(used, Error::Checkpoints(CheckpointProblem::OtherEntry { .. })), "{used:?}");
    let parallel = cp.parallel_reader(&other, &entry, 2).map(|_| ()).unwrap_err();
    assert!(matches!(parallel, Error::Checkpoints(CheckpointProblem::OtherEntry { .. })), "{parallel:?}");
}

#[test]
fn default_spacing_keeps_the_index_under_one_percent_of_the_entry() {
    let data = text(24 << 20, 11);
    let archive = Archive::open(MemorySource::new(zip_of(&data, 6))).unwrap();
    let entry = archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
    let cp = EntryCheckpoints::build(&archive, &entry, DEFAULT_SPACING).unwrap();
    assert!(cp.points.len() >= 5, "{} checkpoints", cp.points.len());
    let mut all = Checkpoints::default();
    all.entries.insert(entry.record_offset(), std::sync::Arc::new(cp));
    let size = all.encode().len();
    assert!(size * 100 <= data.len(), "index {size} bytes for a {} byte entry", data.len());
}

#[test]
fn an_entry_that_does_not_verify_builds_no_checkpoints() {
    let data = text(1 << 20, 5);
    let mut zip = zip_of(&data, 6);
    // The central directory's CRC-32 of the entry, changed (the data inflates fine).
    wrong_crc(&mut zip);
    let archive = Archive::open(MemorySource::new(zip)).unwrap();
    let entry = archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
    assert!(EntryCheckpoints::build(&archive, &entry, 64 << 10).is_err());
}

#[test]
fn verification_builds_checkpoints_for_large_deflated_entries_only_when_asked() {
    use artifact_core::{VerifyOptions, verify_with_checkpoints};
    let data = text(10 << 20, 13);
    let archive = Archive::open(MemorySource::new(zip_of(&data, 6))).unwrap();
    let entry = archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
    let (outcome, none) = verify_with_checkpoints(&archive, &VerifyOptions::new()).unwrap();
    assert!(outcome.refused.is_empty() && none.entries.is_empty());
    let options = VerifyOptions::new().checkpoints(DEFAULT_SPACING);
    let (outcome, built) = verify_with_checkpoints(&archive, &options).unwrap();
    assert!(outcome.refused.is_empty());
    assert_eq!(outcome.bytes, data.len() as u64);
    let points = built.of(&entry).expect("checkpoints for the 10 MiB entry");
    assert!(!points.points.is_empty());
    // The same entry with a wrong CRC-32: refused with the usual reason, no checkpoints.
    let mut zip = zip_of(&data, 6);
    wrong_crc(&mut zip);
    let archive = Archive::open(MemorySource::new(zip)).unwrap();
    let (outcome, built) = verify_with_checkpoints(&archive, &options).unwrap();
    assert_eq!(outcome.refused.len(), 1);
    assert!(outcome.refused[0].reason.contains("CRC-32"), "{}", outcome.refused[0].reason);
    assert!(built.entries.is_empty());
}

/// The whole entry through the parallel reader.
fn read_parallel(archive: &Archive<MemorySource>, cp: &EntryCheckpoints, threads: usize) -> std::io::Result<Vec<u8>> {
    let entry = archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
    let cp = std::sync::Arc::new(cp.clone());
    let mut out = Vec::new();
    cp.parallel_reader(archive, &entry, threads).unwrap().read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn the_parallel_reader_gives_the_entry_for_any_thread_count() {
    let c = case();
    for threads in [1, 2, 3, 8] {
        assert!(read_parallel(&c.archive, &c.checkpoints, threads).unwrap() == c.data, "{threads} threads");
    }
    // An entry whose checkpoints are fewer than the threads, and one with none.
    let data = text(200_000, 9);
    let archive = Archive::open(MemorySource::new(zip_of(&data, 6))).unwrap();
    let entry = archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
    for spacing in [1, u64::MAX] {
        let cp = EntryCheckpoints::build(&archive, &entry, spacing).unwrap();
        assert!(read_parallel(&archive, &cp, 4).unwrap() == data, "spacing {spacing}");
    }
}

#[test]
fn the_parallel_reader_fails_where_the_serial_one_does() {
    let c = case();
    let zip = c.archive.source().read_bytes(0, c.archive.source().len() as usize).unwrap().to_vec();
    // A CRC-32 in the central directory that the bytes do not have, with checkpoints made
    // to fit it: every segment inflates, the combined CRC-32 gives it away at the end.
    let mut bad = zip.clone();
    wrong_crc(&mut bad);
    let archive = Archive::open(MemorySource::new(bad)).unwrap();
    let entry = archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
    let mut cp = c.checkpoints.clone();
    cp.crc32 = entry.crc32();
    let err = read_parallel(&archive, &cp, 2).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert!(matches!(Error::from_io(err), Error::Corrupt(Corruption::CrcMismatch { .. })));
    // Damaged compressed data in the middle: the serial reader fails, and so does this.
    let mut damaged = zip;
    let middle = damaged.len() / 2;
    for b in &mut damaged[middle..middle + 64] {
        *b ^= 0x5a;
    }
    let archive = Archive::open(MemorySource::new(damaged)).unwrap();
    let entry = archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
    let mut serial = Vec::new();
    assert!(archive.reader(&entry).unwrap().read_to_end(&mut serial).is_err());
    assert!(read_parallel(&archive, &c.checkpoints, 2).is_err());
}

#[test]
fn a_reader_that_keeps_up_asks_the_gate_and_one_refused_reads_on_one_thread() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let c = case();
    let entry = c.archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
    let cp = std::sync::Arc::new(c.checkpoints.clone());
    for grant in [true, false] {
        let asked = std::sync::Arc::new(AtomicBool::new(false));
        let flag = asked.clone();
        let gate: artifact_core::checkpoints::Gate = Box::new(move || {
            flag.store(true, Ordering::SeqCst);
            grant.then(|| Box::new(()) as Box<dyn Send>)
        });
        let mut out = Vec::new();
        cp.parallel_reader_when(&c.archive, &entry, 2, gate).unwrap().read_to_end(&mut out).unwrap();
        assert!(out == c.data, "grant {grant}: not the entry's bytes");
        assert!(asked.load(Ordering::SeqCst), "a reader reading as fast as it can keeps up");
    }
}

/// A pool that counts the work it is given and runs each piece on a thread of its own.
struct Counting(std::sync::atomic::AtomicUsize);

impl InflatePool for Counting {
    fn spawn(&self, work: InflateWork) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::thread::spawn(work);
    }
}

#[test]
fn a_parallel_reader_inflates_on_the_pool_it_is_given() {
    let c = case();
    let entry = c.archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
    let cp = std::sync::Arc::new(c.checkpoints.clone());
    let pool = std::sync::Arc::new(Counting(Default::default()));
    let mut out = Vec::new();
    cp.parallel_reader(&c.archive, &entry, 3).unwrap().with_pool(pool.clone()).read_to_end(&mut out).unwrap();
    assert!(out == c.data, "not the entry's bytes");
    // Every segment after the first (read on the caller's thread) went to the pool.
    let given = pool.0.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(given, cp.points.len(), "{given} pieces for {} checkpoints", cp.points.len());
    // A tokio runtime's blocking pool serves as one too.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    let mut again = Vec::new();
    let reader =
        cp.parallel_reader(&c.archive, &entry, 3).unwrap().with_pool(std::sync::Arc::new(runtime.handle().clone()));
    reader.take(u64::MAX).read_to_end(&mut again).unwrap();
    assert!(again == c.data, "not the entry's bytes on tokio's blocking pool");
}
