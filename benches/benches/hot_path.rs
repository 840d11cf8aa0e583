//! The server's hot path, per request: time and heap allocations (a counting global
//! allocator) of a warm GET of a 2 KiB entry of a 100,000-entry archive through endpoint 7,
//! called on the router (no socket), with the memory of hot entries (the default) and
//! without it (`entry_cache_bytes: 0`: the entry read from the open archive each time).
//!
//! `cargo bench -p artifact-benches --bench hot_path` prints the allocation figures first,
//! then criterion's timings.

#[path = "common/imported.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use artifact_benches::many_entries_in_memory;
use artifact_server::AppConfig;
use axum::body::Body;
use axum::http::Request;
use common::imported;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Counts allocations and their bytes, then hands them to the system allocator.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the counters are plain atomics.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A router over a data folder holding the 100,000-entry archive, a token, and the URI of
/// its 2 KiB entry.
struct Setup {
    app: axum::Router,
    token: String,
    uri: String,
    _dir: std::path::PathBuf,
}

fn setup(runtime: &tokio::runtime::Runtime, entry_cache_bytes: usize) -> Setup {
    let dir = std::env::temp_dir().join(format!("artifact-hot-path-{}-{entry_cache_bytes}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let zip = dir.join("many.zip");
    std::fs::write(&zip, many_entries_in_memory(100_000)).unwrap();
    let (data, token, id) = imported(&dir, &zip);
    let config = AppConfig { entry_cache_bytes, ..AppConfig::default() };
    let app = artifact_server::app(data.state(config));
    let uri = format!("/api/v4/projects/bench%2Fapp/jobs/{id}/artifacts/reports/summary.txt");
    let s = Setup { app, token, uri, _dir: dir };
    // Warm: the look-up remembered, the archive open and indexed (and the entry kept).
    for _ in 0..100 {
        assert_eq!(runtime.block_on(get(&s)), 2048);
    }
    s
}

async fn get(s: &Setup) -> usize {
    get_uri(s, &s.uri).await
}

async fn get_uri(s: &Setup, uri: &str) -> usize {
    let req = Request::builder().uri(uri).header("PRIVATE-TOKEN", &s.token).body(Body::empty()).unwrap();
    let resp = s.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap().to_bytes().len()
}

fn hot_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let setups = [("hot entries (default)", setup(&runtime, 64 << 20)), ("no entry memory", setup(&runtime, 0))];
    const N: u64 = 10_000;
    println!("allocations per warm request (GET of a 2 KiB entry through endpoint 7, router only):");
    let floor = ("the floor: GET /api/v4/version, same router and harness", "/api/v4/version");
    for (name, uri) in setups.iter().map(|(name, s)| (*name, s.uri.as_str())).chain([floor]) {
        let s = &setups[0].1;
        let s = if name == "no entry memory" { &setups[1].1 } else { s };
        let (a, b) = (ALLOCATIONS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed));
        runtime.block_on(async {
            for _ in 0..N {
                black_box(get_uri(s, uri).await);
            }
        });
        let allocations = (ALLOCATIONS.load(Ordering::Relaxed) - a) as f64 / N as f64;
        let bytes = (BYTES.load(Ordering::Relaxed) - b) as f64 / N as f64;
        println!("  {name}: {allocations:.1} allocations, {bytes:.0} bytes");
    }
    let mut g = c.benchmark_group("hot_path");
    for (name, s) in &setups {
        g.bench_function(*name, |b| b.iter(|| runtime.block_on(get(s))));
    }
    g.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
