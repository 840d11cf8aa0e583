//! One 2 KiB file out of a 100,000-entry archive in memory: this engine (scan, and with a
//! shared `Index`) against the `zip` crate (`ZipArchive::new` + `by_name`) and `async_zip`.

use std::hint::black_box;
use std::io::{Cursor, Read};
use std::sync::Arc;

use artifact_benches::{SMALL_ENTRY, many_entries_in_memory};
use artifact_core::{Archive, ArtifactPath, MemorySource};
use criterion::{Criterion, criterion_group, criterion_main};

fn lookup(c: &mut Criterion) {
    let bytes = many_entries_in_memory(100_000);
    let shared = bytes::Bytes::from(bytes.clone());
    let path = ArtifactPath::new(SMALL_ENTRY).unwrap();
    let mut g = c.benchmark_group("lookup_2KiB_of_100k_entries");
    g.sample_size(20);

    g.bench_function("artifact_core_open_scan_read", |b| {
        b.iter(|| {
            let archive = Archive::open(MemorySource::new(shared.clone())).unwrap();
            let entry = archive.find(&path).unwrap();
            let mut out = Vec::with_capacity(2048);
            archive.reader(&entry).unwrap().read_to_end(&mut out).unwrap();
            black_box(out)
        })
    });

    let source = Arc::new(MemorySource::new(shared.clone()));
    let index = Archive::open(source.clone()).unwrap().index().unwrap();
    g.bench_function("artifact_core_shared_index_read", |b| {
        b.iter(|| {
            let archive = Archive::with_index(source.clone(), index.clone());
            let entry = archive.find(&path).unwrap();
            let mut out = Vec::with_capacity(2048);
            archive.reader(&entry).unwrap().read_to_end(&mut out).unwrap();
            black_box(out)
        })
    });

    g.bench_function("zip_crate_new_by_name_read", |b| {
        b.iter(|| {
            let mut archive = zip::ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
            let mut file = archive.by_name(SMALL_ENTRY).unwrap();
            let mut out = Vec::with_capacity(2048);
            file.read_to_end(&mut out).unwrap();
            black_box(out)
        })
    });

    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    g.bench_function("async_zip_mem_reader_read", |b| {
        b.iter(|| {
            rt.block_on(async {
                let reader = async_zip::base::read::mem::ZipFileReader::new(bytes.clone()).await.unwrap();
                let index = reader
                    .file()
                    .entries()
                    .iter()
                    .position(|e| e.filename().as_bytes() == SMALL_ENTRY.as_bytes())
                    .unwrap();
                let mut entry = reader.reader_with_entry(index).await.unwrap();
                let mut out = Vec::with_capacity(2048);
                entry.read_to_end_checked(&mut out).await.unwrap();
                black_box(out)
            })
        })
    });
    g.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
