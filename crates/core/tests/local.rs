//! Local archives: what a look-up costs, the formats real writers produce (zip64, data
//! descriptors, prepended data, offsets past 4 GiB) and the index shared across threads.

mod common;

use std::io::{Cursor, Read, Write};
use std::sync::Arc;

use artifact_core::{Archive, ArtifactPath, Error, FileSource, MAX_TAIL, MemorySource, Source, open_entry};
use common::*;
use zip::write::SimpleFileOptions;

fn many_entries(n: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..n {
        w.start_file(format!("build/output/objects/file-{i:06}.o"), opts).unwrap();
        w.write_all(format!("object {i}\n").as_bytes()).unwrap();
    }
    let deflate = SimpleFileOptions::default();
    w.start_file("reports/summary.txt", deflate).unwrap();
    w.write_all(&text(2048, 7)).unwrap();
    w.finish().unwrap().into_inner()
}

#[test]
fn one_lookup_in_100k_entries_reads_tail_central_directory_and_entry_only() {
    let bytes = many_entries(100_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zip");
    std::fs::write(&path, &bytes).unwrap();
    let source = FileSource::open(&path).unwrap();
    let archive = Archive::open(&source).unwrap();
    let cd = archive.central_directory().location();
    assert!(cd.zip64, "more than 65,535 entries need the zip64 end record");
    assert_eq!(cd.entries, 100_001);
    let after_open = source.stats();
    assert_eq!(after_open.reads, 2, "one tail read, one central directory read");
    assert_eq!(after_open.bytes, MAX_TAIL as u64 + cd.size);

    let entry = archive.find(&ArtifactPath::new("reports/summary.txt").unwrap()).unwrap();
    let mut out = Vec::new();
    archive.reader(&entry).unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(out, text(2048, 7));
    let total = source.stats();
    assert_eq!(total.reads, 3, "the local header and the small entry come in one read");
    let entry_bytes = total.bytes - after_open.bytes;
    assert!(entry_bytes <= 30 + 19 + 1024 + entry.compressed_size(), "{entry_bytes} bytes for the entry");
}

#[test]
fn a_single_lookup_scans_the_central_directory_through_a_small_buffer() {
    let bytes = many_entries(100_000);
    let source = MemorySource::new(bytes);
    let cd = Archive::open(&source).unwrap().central_directory().location();
    let before = source.stats();
    // Every record, including those that straddle a buffer boundary, is found.
    for i in [0usize, 3_000, 3_641, 3_642, 50_000, 99_999] {
        let name = format!("build/output/objects/file-{i:06}.o");
        let mut out = String::new();
        open_entry(&source, &ArtifactPath::new(&name).unwrap()).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, format!("object {i}\n"));
    }
    let mut reader = open_entry(&source, &ArtifactPath::new("reports/summary.txt").unwrap()).unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out, text(2048, 7));
    let one = source.stats().reads - before.reads;
    let chunks = cd.size.div_ceil(256 * 1024);
    assert!(one <= 7 * (1 + chunks + 1), "tail, the directory in 256 KiB chunks, the entry");
    let err = open_entry(&source, &ArtifactPath::new("missing").unwrap()).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = open_entry(&source, &ArtifactPath::new("build").unwrap()).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[test]
fn zip64_archive_lists_every_entry_and_index_finds_them() {
    let bytes = many_entries(70_000);
    let archive = Archive::open(MemorySource::new(bytes)).unwrap();
    assert!(archive.central_directory().location().zip64);
    assert_eq!(archive.entries().count(), 70_001);
    let index = archive.index().unwrap();
    assert_eq!(index.len(), 70_001);
    let e = index.find(b"build/output/objects/file-069999.o").unwrap();
    let mut out = String::new();
    archive.reader(&e).unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(out, "object 69999\n");
    assert!(index.find(b"build/output/objects/file-070000.o").is_none());
}

#[test]
fn a_shared_index_serves_many_threads() {
    let bytes = Arc::new(MemorySource::new(many_entries(5_000)));
    let index = Archive::open(bytes.clone()).unwrap().index().unwrap();
    let reads_before = bytes.stats().reads;
    std::thread::scope(|s| {
        for t in 0..4 {
            let (bytes, index) = (bytes.clone(), index.clone());
            s.spawn(move || {
                let archive = Archive::with_index(bytes, index);
                for i in (t..5_000).step_by(97) {
                    let name = format!("build/output/objects/file-{i:06}.o");
                    let e = archive.find(&ArtifactPath::new(&name).unwrap()).unwrap();
                    let mut out = String::new();
                    archive.reader(&e).unwrap().read_to_string(&mut out).unwrap();
                    assert_eq!(out, format!("object {i}\n"));
                }
            });
        }
    });
    let per_lookup = (bytes.stats().reads - reads_before) as f64 / (4.0 * 52.0);
    assert!(per_lookup <= 1.01, "a lookup with a shared index costs one read, got {per_lookup}");
}

#[test]
fn data_descriptors_trust_the_central_directory() {
    // A streaming writer cannot seek back: sizes and CRC go in data descriptors (bit 3).
    let mut w = zip::ZipWriter::new_stream(Vec::new());
    w.start_file("streamed.txt", SimpleFileOptions::default()).unwrap();
    w.write_all(&text(50_000, 3)).unwrap();
    w.start_file("stored.bin", SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored))
        .unwrap();
    w.write_all(b"raw bytes").unwrap();
    let bytes = w.finish().unwrap().into_inner();
    let archive = Archive::open(MemorySource::new(bytes.clone())).unwrap();
    let first = archive.entries().next().unwrap().unwrap();
    assert_ne!(first.flags() & 8, 0, "the zip crate's stream writer sets bit 3");
    assert_eq!(cat(&bytes, "streamed.txt").unwrap(), text(50_000, 3));
    assert_eq!(cat(&bytes, "stored.bin").unwrap(), b"raw bytes");
}

#[test]
fn prepended_data_is_found_by_where_the_central_directory_is() {
    let archive = build(&[deflated("a.txt", text(5000, 1)), stored("b.bin", vec![9u8; 300])]);
    let mut sfx = vec![0x7fu8; 12_345];
    sfx.extend_from_slice(&archive);
    let opened = Archive::open(MemorySource::new(sfx.clone())).unwrap();
    assert_eq!(opened.central_directory().location().shift, 12_345);
    assert_eq!(cat(&sfx, "a.txt").unwrap(), text(5000, 1));
    assert_eq!(cat(&sfx, "b.bin").unwrap(), vec![9u8; 300]);
}

#[test]
fn archive_comment_does_not_hide_the_archive() {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("x.txt", SimpleFileOptions::default()).unwrap();
    w.write_all(b"hello").unwrap();
    let mut comment = b"built by CI PK\x05\x06".to_vec();
    comment.extend_from_slice(&[0xff; 40_000]);
    w.set_raw_comment(comment.into_boxed_slice()).unwrap();
    let bytes = w.finish().unwrap().into_inner();
    assert_eq!(cat(&bytes, "x.txt").unwrap(), b"hello");
}

#[test]
fn unicode_empty_and_directory_entries() {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.add_directory("日本語/", SimpleFileOptions::default()).unwrap();
    w.start_file("日本語/ファイル.txt", SimpleFileOptions::default()).unwrap();
    w.write_all("こんにちは".as_bytes()).unwrap();
    w.start_file("empty", SimpleFileOptions::default()).unwrap();
    let bytes = w.finish().unwrap().into_inner();
    assert_eq!(cat(&bytes, "日本語/ファイル.txt").unwrap(), "こんにちは".as_bytes());
    assert_eq!(cat(&bytes, "empty").unwrap(), b"");
    assert!(matches!(cat(&bytes, "日本語"), Err(Error::NotFound { .. })), "a directory is not served");
    assert!(matches!(cat(&bytes, "missing"), Err(Error::NotFound { .. })));
}

/// A stored entry at an offset past 4 GiB in a sparse file, with zip64 fields everywhere.
#[test]
#[cfg(unix)]
fn offsets_past_4_gib_through_a_sparse_file() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse.zip");
    let file = std::fs::File::create(&path).unwrap();
    let at: u64 = 5 << 30;
    let name = b"far/away.txt";
    let data = b"beyond four gibibytes\n";
    let crc = crc32(data);
    let mut zip64_local = 1u16.to_le_bytes().to_vec();
    zip64_local.extend_from_slice(&16u16.to_le_bytes());
    zip64_local.extend_from_slice(&(data.len() as u64).to_le_bytes());
    zip64_local.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let mut local = 0x0403_4b50u32.to_le_bytes().to_vec();
    local.extend_from_slice(&45u16.to_le_bytes());
    local.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    local.extend_from_slice(&crc.to_le_bytes());
    local.extend_from_slice(&u32::MAX.to_le_bytes());
    local.extend_from_slice(&u32::MAX.to_le_bytes());
    local.extend_from_slice(&(name.len() as u16).to_le_bytes());
    local.extend_from_slice(&(zip64_local.len() as u16).to_le_bytes());
    local.extend_from_slice(name);
    local.extend_from_slice(&zip64_local);
    local.extend_from_slice(data);
    file.write_all_at(&local, at).unwrap();
    let cd_at = at + local.len() as u64;
    let mut zip64_cd = 1u16.to_le_bytes().to_vec();
    zip64_cd.extend_from_slice(&8u16.to_le_bytes());
    zip64_cd.extend_from_slice(&at.to_le_bytes());
    let mut cd = 0x0201_4b50u32.to_le_bytes().to_vec();
    cd.extend_from_slice(&((3u16 << 8) | 45).to_le_bytes());
    cd.extend_from_slice(&45u16.to_le_bytes());
    cd.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    cd.extend_from_slice(&crc.to_le_bytes());
    cd.extend_from_slice(&(data.len() as u32).to_le_bytes());
    cd.extend_from_slice(&(data.len() as u32).to_le_bytes());
    cd.extend_from_slice(&(name.len() as u16).to_le_bytes());
    cd.extend_from_slice(&(zip64_cd.len() as u16).to_le_bytes());
    cd.extend_from_slice(&[0; 6]);
    cd.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
    cd.extend_from_slice(&u32::MAX.to_le_bytes());
    cd.extend_from_slice(name);
    cd.extend_from_slice(&zip64_cd);
    let z64_at = cd_at + cd.len() as u64;
    let mut end = 0x0606_4b50u32.to_le_bytes().to_vec();
    end.extend_from_slice(&44u64.to_le_bytes());
    end.extend_from_slice(&45u16.to_le_bytes());
    end.extend_from_slice(&45u16.to_le_bytes());
    end.extend_from_slice(&[0; 8]);
    end.extend_from_slice(&1u64.to_le_bytes());
    end.extend_from_slice(&1u64.to_le_bytes());
    end.extend_from_slice(&(cd.len() as u64).to_le_bytes());
    end.extend_from_slice(&cd_at.to_le_bytes());
    end.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
    end.extend_from_slice(&0u32.to_le_bytes());
    end.extend_from_slice(&z64_at.to_le_bytes());
    end.extend_from_slice(&1u32.to_le_bytes());
    end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    end.extend_from_slice(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    end.extend_from_slice(&u32::MAX.to_le_bytes());
    end.extend_from_slice(&u32::MAX.to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    let mut tail = cd;
    tail.extend_from_slice(&end);
    file.write_all_at(&tail, cd_at).unwrap();
    drop(file);

    let source = FileSource::open(&path).unwrap();
    let archive = Archive::open(&source).unwrap();
    let entry = archive.find(&ArtifactPath::new("far/away.txt").unwrap()).unwrap();
    assert_eq!(entry.size(), data.len() as u64);
    let mut out = Vec::new();
    archive.reader(&entry).unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(out, data);
    assert!(source.stats().bytes < 200_000, "a 5 GiB archive costs a few KiB to read one entry");
}

fn crc32(data: &[u8]) -> u32 {
    let mut h = flate2::Crc::new();
    h.update(data);
    h.sum()
}

#[test]
fn file_source_and_memory_source_agree() {
    let bytes = build(&[deflated("a/b.txt", text(300_000, 5)), stored("c.bin", vec![1, 2, 3])]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.zip");
    std::fs::write(&path, &bytes).unwrap();
    for name in ["a/b.txt", "c.bin"] {
        let from_file = cat_from(FileSource::open(&path).unwrap(), name).unwrap();
        let unmapped = cat_from(FileSource::open(&path).unwrap().with_map_threshold(usize::MAX), name).unwrap();
        assert_eq!(from_file, cat(&bytes, name).unwrap());
        assert_eq!(unmapped, from_file);
    }
}

#[test]
fn a_batch_skips_what_a_reader_left_unread() {
    let files: Vec<Vec<u8>> = (0..50).map(|i| text(10_000 + i * 100, i as u64)).collect();
    let names: Vec<String> = (0..50).map(|i| format!("d/{i:02}")).collect();
    let list: Vec<common::File> = names.iter().zip(&files).map(|(n, d)| deflated(n, d.clone())).collect();
    let source = MemorySource::new(build(&list));
    let archive = Archive::open(&source).unwrap();
    let entries: Vec<_> = archive.entries().map(Result::unwrap).collect();
    let before = source.stats().reads;
    let mut batch = archive.batch(&entries, 0);
    assert_eq!(batch.ranges(), 1);
    for (i, entry) in entries.iter().enumerate() {
        let mut reader = batch.reader(entry).unwrap();
        if i % 3 == 0 {
            // Leave most of it unread: the next reader must skip the rest.
            let mut some = [0u8; 10];
            reader.read_exact(&mut some).unwrap();
            assert_eq!(&some, &files[i][..10]);
        } else {
            let mut out = Vec::new();
            reader.read_to_end(&mut out).unwrap();
            assert_eq!(out, files[i]);
        }
    }
    assert_eq!(source.stats().reads - before, 1, "one range for the whole batch");
}

#[test]
fn a_local_extra_field_longer_than_the_slack_costs_one_more_read() {
    let data = text(300, 3);
    for (extra_len, ranges) in [(100usize, 1u64), (5000, 2)] {
        let source = MemorySource::new(with_local_extra(extra_len, &data));
        let archive = Archive::open(&source).unwrap();
        let entry = archive.find(&ArtifactPath::new("x.txt").unwrap()).unwrap();
        let before = source.stats().reads;
        let mut out = Vec::new();
        archive.reader(&entry).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, data, "extra field of {extra_len} bytes");
        assert_eq!(source.stats().reads - before, ranges, "extra field of {extra_len} bytes");
    }
}

#[test]
fn a_batch_entry_outside_the_data_region_is_an_error_not_a_panic() {
    let bytes = build(&[stored("a", b"1".to_vec()), stored("b", b"2".to_vec())]);
    let archive = Archive::open(MemorySource::new(bytes)).unwrap();
    let mut entries: Vec<_> = archive.entries().map(Result::unwrap).collect();
    let limit = archive.central_directory().location().offset;
    // An entry claiming a header offset at or past the central directory.
    let forged = {
        let mut hostile = build(&[stored("a", b"1".to_vec()), stored("b", b"2".to_vec())]);
        let cd = hostile.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        hostile[cd + 42..cd + 46].copy_from_slice(&(limit as u32 + 5).to_le_bytes());
        let archive = Archive::open(MemorySource::new(hostile)).unwrap();
        archive.entries().next().unwrap().unwrap()
    };
    entries[0] = forged;
    let mut batch = archive.batch(&entries, 1 << 20);
    assert!(matches!(batch.reader(&entries[0]), Err(Error::Corrupt(_))));
    let mut out = Vec::new();
    batch.reader(&entries[1]).unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(out, b"2");
}

#[test]
fn the_last_bytes_of_a_deflated_entry_are_read_only_after_its_check() {
    // The deflate stream runs on past the entry's last byte (empty blocks): a reader that
    // stops at the entry's size must still have had it checked.
    let data = text(300_000, 2);
    for (crc, good) in [(crc32fast::hash(&data), true), (crc32fast::hash(&data) ^ 1, false)] {
        let archive = Archive::open(MemorySource::new(trailing_blocks(&data, crc))).unwrap();
        let entry = archive.find(&ArtifactPath::new("c.txt").unwrap()).unwrap();
        for size in [data.len(), 64 << 10, 1] {
            let mut reader = archive.reader(&entry).unwrap();
            let mut buf = vec![0u8; data.len()];
            // Reads of `size` bytes up to the entry's size, and not one more.
            let mut got = 0;
            let outcome = loop {
                if got == data.len() {
                    break Ok(());
                }
                let end = (got + size).min(data.len());
                match reader.read(&mut buf[got..end]) {
                    Ok(0) => break Err(std::io::Error::other("ended early")),
                    Ok(n) => got += n,
                    Err(e) => break Err(e),
                }
            };
            assert_eq!(outcome.is_ok(), good, "reads of {size}: {outcome:?}");
            if good {
                assert!(buf == data);
            }
        }
    }
}
