//! `metadata.gz` of a 100,000-entry archive: generating it from the central directory, and
//! decoding it, against raw gunzip of the same file (the floor for any decoder).

use std::hint::black_box;
use std::io::Read;

use artifact_benches::many_entries_in_memory;
use artifact_core::metadata::{MetadataReader, generate};
use artifact_core::{Archive, MemorySource};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn metadata(c: &mut Criterion) {
    let archive = Archive::open(MemorySource::new(many_entries_in_memory(100_000))).unwrap();
    let entries: Vec<_> = archive.entries().collect::<Result<_, _>>().unwrap();
    let gz = generate(&entries, Vec::new()).unwrap();
    let mut g = c.benchmark_group("metadata_100k_entries");
    g.sample_size(10);
    g.throughput(Throughput::Elements(entries.len() as u64));
    g.bench_function("generate", |b| b.iter(|| black_box(generate(&entries, Vec::new()).unwrap().len())));
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut plain).unwrap();
    g.bench_function("baseline_raw_gzip_same_bytes", |b| {
        b.iter(|| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            std::io::Write::write_all(&mut gz, &plain).unwrap();
            black_box(gz.finish().unwrap().len())
        })
    });
    g.bench_function("decode_all", |b| {
        b.iter(|| black_box(MetadataReader::new(&gz[..]).unwrap().map(Result::unwrap).count()))
    });
    g.bench_function("decode_all_borrowed", |b| {
        b.iter(|| {
            // Every entry parsed, borrowed from the reader's buffer (`next_ref`).
            let mut reader = MetadataReader::new(&gz[..]).unwrap();
            let (mut n, mut bytes) = (0usize, 0u64);
            while let Some(e) = reader.next_ref().unwrap() {
                n += 1;
                bytes += e.size().unwrap_or(0) + e.path.len() as u64 + e.mode().map_or(0, str::len) as u64;
            }
            black_box((n, bytes))
        })
    });
    g.bench_function("baseline_raw_gunzip", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(16 << 20);
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
            black_box(out.len())
        })
    });
    g.bench_function("baseline_gunzip_streaming", |b| {
        // The same inflate and CRC through one reused buffer of the reader's block size: no
        // output to allocate or fault in, the floor for a decoder that streams.
        let mut block = vec![0u8; 128 * 1024];
        b.iter(|| {
            let mut gunzip = flate2::read::GzDecoder::new(&gz[..]);
            let mut total = 0usize;
            loop {
                match gunzip.read(&mut block).unwrap() {
                    0 => break,
                    n => total += n,
                }
            }
            black_box(total)
        })
    });
    g.finish();
}

criterion_group!(benches, metadata);
criterion_main!(benches);
