//! The index cache: bounded by bytes (least recently used out first), one load per key,
//! failed loads not cached, local keys that change with the file.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use artifact_core::{Archive, Error, IndexCache, MemorySource, file_key};
use common::*;

fn index(files: usize) -> Arc<artifact_core::Index> {
    let list: Vec<String> = (0..files).map(|i| format!("file-{i}")).collect();
    let archive = build(&list.iter().map(|n| stored(n, b"x".to_vec())).collect::<Vec<_>>());
    Archive::open(MemorySource::new(archive)).unwrap().index().unwrap()
}

#[test]
fn the_least_recently_used_index_goes_first_when_the_bound_is_passed() {
    let one = index(100);
    let size = one.memory_size();
    let cache: IndexCache = IndexCache::new(size * 2 + size / 2);
    for key in ["a", "b"] {
        cache.get_or_load(key, || Ok((index(100), ()))).unwrap();
    }
    cache.get_or_load("a", || panic!("cached")).unwrap(); // a is now the most recent
    cache.get_or_load("c", || Ok((index(100), ()))).unwrap();
    assert_eq!(cache.len(), 2);
    assert!(cache.used() <= size * 2 + size / 2);
    assert!(cache.get("b").is_none(), "b was the least recently used");
    assert!(cache.get("a").is_some() && cache.get("c").is_some());
    // Three loads, one hit, one eviction, counted for metrics.
    let counts = cache.counts();
    assert_eq!((counts.misses, counts.hits, counts.evictions), (3, 1, 1));
}

#[test]
fn one_load_per_key_however_many_ask_at_once() {
    let cache: IndexCache = IndexCache::default();
    let loads = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                cache
                    .get_or_load("k", || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        Ok((index(10), ()))
                    })
                    .unwrap()
            });
        }
    });
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[test]
fn a_failed_load_is_not_cached() {
    let cache: IndexCache = IndexCache::default();
    let err = cache.get_or_load("k", || Err(Error::NotFound { name: "k".into() })).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    assert!(cache.is_empty());
    cache.get_or_load("k", || Ok((index(1), ()))).unwrap();
    assert_eq!(cache.len(), 1);
}

#[test]
fn a_rewritten_local_file_has_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zip");
    std::fs::write(&path, build(&[stored("x", b"1".to_vec())])).unwrap();
    let first = file_key(&path).unwrap();
    std::fs::write(&path, build(&[stored("x", b"12".to_vec())])).unwrap();
    assert_ne!(first, file_key(&path).unwrap(), "size (and mtime) are part of the key");
}
