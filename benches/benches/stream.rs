//! Streaming one large entry out of an in-memory archive against the raw work it implies:
//! inflate + CRC-32 of the same compressed bytes (deflate), memcpy + CRC-32 (stored).

use std::hint::black_box;
use std::io::{Cursor, Read};

use artifact_benches::{inflate_crc, one_big_entry};
use artifact_core::{Archive, ArtifactPath, MemorySource};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zip::CompressionMethod;

const LEN: u64 = 64 << 20;

fn archive(method: CompressionMethod) -> bytes::Bytes {
    one_big_entry(Cursor::new(Vec::new()), "big", LEN, method).unwrap().into_inner().into()
}

fn drain(mut r: impl Read) -> u64 {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        match r.read(&mut buf).unwrap() {
            0 => return total,
            n => total += n as u64,
        }
    }
}

fn data_range(bytes: &[u8]) -> std::ops::Range<usize> {
    let name_len = u16::from_le_bytes([bytes[26], bytes[27]]) as usize;
    let extra_len = u16::from_le_bytes([bytes[28], bytes[29]]) as usize;
    let start = 30 + name_len + extra_len;
    let archive = Archive::open(MemorySource::new(bytes.to_vec())).unwrap();
    let entry = archive.entries().next().unwrap().unwrap();
    start..start + entry.compressed_size() as usize
}

fn stream(c: &mut Criterion) {
    let path = ArtifactPath::new("big").unwrap();
    let mut g = c.benchmark_group("stream_64MiB");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(LEN));

    let deflated = archive(CompressionMethod::Deflated);
    g.bench_function("deflate_artifact_core", |b| {
        b.iter(|| {
            let archive = Archive::open(MemorySource::new(deflated.clone())).unwrap();
            let entry = archive.find(&path).unwrap();
            black_box(drain(archive.reader(&entry).unwrap()))
        })
    });
    let range = data_range(&deflated);
    g.bench_function("deflate_baseline_raw_inflate_crc", |b| {
        b.iter(|| black_box(inflate_crc(&deflated[range.clone()])))
    });
    g.bench_function("deflate_zip_crate", |b| {
        b.iter(|| {
            let mut archive = zip::ZipArchive::new(Cursor::new(&deflated[..])).unwrap();
            black_box(drain(archive.by_name("big").unwrap()))
        })
    });

    let stored = archive(CompressionMethod::Stored);
    g.bench_function("stored_artifact_core", |b| {
        b.iter(|| {
            let archive = Archive::open(MemorySource::new(stored.clone())).unwrap();
            let entry = archive.find(&path).unwrap();
            black_box(drain(archive.reader(&entry).unwrap()))
        })
    });
    let range = data_range(&stored);
    g.bench_function("stored_baseline_memcpy_crc", |b| {
        let mut out = vec![0u8; 256 * 1024];
        b.iter(|| {
            let mut crc = crc32fast::Hasher::new();
            for chunk in stored[range.clone()].chunks(out.len()) {
                out[..chunk.len()].copy_from_slice(chunk);
                crc.update(&out[..chunk.len()]);
            }
            black_box(crc.finalize())
        })
    });
    g.finish();
}

criterion_group!(benches, stream);
criterion_main!(benches);
