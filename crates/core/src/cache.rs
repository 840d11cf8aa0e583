//! Indexes kept across look-ups: bounded by bytes, shared across threads, one load per key
//! however many look-ups ask for it at once.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Result;
use crate::index::Index;

/// The default bound: 256 MiB of central directories and name tables.
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

/// A cache of [`Index`]es by archive identity (a URL and its validator, or a path with its
/// size and modification time), each with a value `V` the caller keeps beside it. The least
/// recently used indexes go first when the bound is passed. Concurrent look-ups of one key
/// share one load: the first loads, the others wait for it.
#[derive(Debug)]
pub struct IndexCache<V = ()> {
    capacity: usize,
    state: Mutex<State<V>>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

/// What an [`IndexCache`] has done since it was made (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Look-ups answered from the cache.
    pub hits: u64,
    /// Look-ups that loaded (successfully or not).
    pub misses: u64,
    /// Indexes dropped to stay within the bound.
    pub evictions: u64,
}

type Cell<V> = Arc<Mutex<Option<(Arc<Index>, V)>>>;

#[derive(Debug)]
struct State<V> {
    slots: HashMap<String, Slot<V>>,
    used: usize,
    clock: u64,
}

#[derive(Debug)]
struct Slot<V> {
    cell: Cell<V>,
    last_used: u64,
    bytes: usize,
    /// When its index was loaded (into this cache, from wherever).
    loaded: Option<std::time::Instant>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data (every update is one
    // assignment), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The lock of `m` if no one holds it (a poisoned one too, as [`lock`] takes it): `None`
/// while it is held.
fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

impl<V: Clone> IndexCache<V> {
    /// A cache holding at most `capacity` bytes of indexes.
    pub fn new(capacity: usize) -> IndexCache<V> {
        IndexCache {
            capacity,
            state: Mutex::new(State { slots: HashMap::new(), used: 0, clock: 0 }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// The index under `key`, loaded by `load` if it is not cached. A failed load caches
    /// nothing.
    pub fn get_or_load(&self, key: &str, load: impl FnOnce() -> Result<(Arc<Index>, V)>) -> Result<(Arc<Index>, V)> {
        let cell = self.slot(key);
        let mut loaded = lock(&cell);
        if let Some((index, value)) = &*loaded {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok((index.clone(), value.clone()));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        match load() {
            Ok((index, value)) => {
                *loaded = Some((index.clone(), value.clone()));
                drop(loaded);
                self.account(key, &cell, index.memory_size());
                Ok((index, value))
            }
            Err(e) => {
                drop(loaded);
                self.forget_if_empty(key, &cell);
                Err(e)
            }
        }
    }

    /// The index under `key` if it is loaded, counted as a hit and marked used; `None` (and
    /// nothing counted) when it is not cached or still loading. It never waits, so an async
    /// task may call it: on `None`, it loads with [`get_or_load`](Self::get_or_load) where
    /// blocking is allowed.
    pub fn try_get(&self, key: &str) -> Option<(Arc<Index>, V)> {
        let cell = {
            let mut state = lock(&self.state);
            state.clock += 1;
            let now = state.clock;
            let slot = state.slots.get_mut(key)?;
            slot.last_used = now;
            slot.cell.clone()
        };
        let loaded = try_lock(&cell)?;
        let (index, value) = loaded.as_ref()?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some((index.clone(), value.clone()))
    }

    /// Whether an index under `key` is loaded; never waits (`false` while another thread
    /// holds its slot, loading it or reading it), counts nothing, marks nothing used.
    pub fn contains(&self, key: &str) -> bool {
        let Some(cell) = lock(&self.state).slots.get(key).map(|s| s.cell.clone()) else { return false };
        try_lock(&cell).is_some_and(|loaded| loaded.is_some())
    }

    /// The cached index under `key`, if any, without loading.
    pub fn get(&self, key: &str) -> Option<(Arc<Index>, V)> {
        let cell = lock(&self.state).slots.get(key).map(|s| s.cell.clone())?;
        let loaded = lock(&cell);
        loaded.as_ref().map(|(i, v)| (i.clone(), v.clone()))
    }

    /// Whether the index under `key` was loaded less than `within` ago (a look-up that
    /// misses in it is then taken as it is, not as a sign of a newer archive).
    pub fn loaded_within(&self, key: &str, within: std::time::Duration) -> bool {
        lock(&self.state).slots.get(key).and_then(|s| s.loaded).is_some_and(|at| at.elapsed() < within)
    }

    /// Keeps `index` and `value` under `key`, loaded now (an async load's result), unless a
    /// load of the key is in progress (its result stands): whether it was kept.
    #[cfg(all(feature = "http", feature = "tokio"))]
    pub(crate) fn insert(&self, key: &str, index: Arc<Index>, value: V) -> bool {
        let cell = self.slot(key);
        let Some(mut loaded) = try_lock(&cell) else { return false };
        *loaded = Some((index.clone(), value));
        drop(loaded);
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.account(key, &cell, index.memory_size());
        true
    }

    /// The cell of `key`'s slot (made empty if there is none), marked as just used.
    fn slot(&self, key: &str) -> Cell<V> {
        let mut state = lock(&self.state);
        state.clock += 1;
        let now = state.clock;
        let slot = state.slots.entry(key.to_owned()).or_insert_with(|| Slot {
            cell: Arc::default(),
            last_used: now,
            bytes: 0,
            loaded: None,
        });
        slot.last_used = now;
        slot.cell.clone()
    }

    /// Forgets when the index under `key` was loaded (it came from elsewhere, of any age):
    /// [`loaded_within`](Self::loaded_within) is then false.
    #[cfg(feature = "http")]
    pub(crate) fn unstamp(&self, key: &str) {
        if let Some(slot) = lock(&self.state).slots.get_mut(key) {
            slot.loaded = None;
        }
    }

    /// Drops `key` (its archive changed).
    pub fn remove(&self, key: &str) {
        let mut state = lock(&self.state);
        if let Some(slot) = state.slots.remove(key) {
            state.used -= slot.bytes;
        }
    }

    /// Hits, misses and evictions so far.
    pub fn counts(&self) -> CacheCounts {
        CacheCounts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    /// Bytes of indexes held.
    pub fn used(&self) -> usize {
        lock(&self.state).used
    }

    /// Number of indexes held.
    pub fn len(&self) -> usize {
        lock(&self.state).slots.values().filter(|s| s.bytes > 0).count()
    }

    /// Whether no index is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn account(&self, key: &str, cell: &Cell<V>, bytes: usize) {
        let mut state = lock(&self.state);
        let State { slots, used, .. } = &mut *state;
        match slots.get_mut(key) {
            Some(slot) if Arc::ptr_eq(&slot.cell, cell) => {
                *used = *used - slot.bytes + bytes;
                slot.bytes = bytes;
                slot.loaded = Some(std::time::Instant::now());
            }
            _ => return, // removed meanwhile
        }
        while *used > self.capacity {
            let victim = slots
                .iter()
                .filter(|(k, s)| s.bytes > 0 && k.as_str() != key)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else { break };
            if let Some(slot) = slots.remove(&victim) {
                *used -= slot.bytes;
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn forget_if_empty(&self, key: &str, cell: &Cell<V>) {
        let mut state = lock(&self.state);
        let empty = state.slots.get(key).is_some_and(|s| Arc::ptr_eq(&s.cell, cell) && s.bytes == 0);
        // A cell someone is loading into is not ours to drop: skip rather than wait.
        if empty && cell.try_lock().is_ok_and(|g| g.is_none()) {
            state.slots.remove(key);
        }
    }
}

/// The cache key of a local archive: its canonical path, size and modification time, so a
/// rewritten file is a new key.
pub fn file_key(path: &std::path::Path) -> std::io::Result<String> {
    let canonical = std::fs::canonicalize(path)?;
    let meta = std::fs::metadata(&canonical)?;
    let mtime = meta.modified()?.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ok(format!("file://{}#{}@{}.{:09}", canonical.display(), meta.len(), mtime.as_secs(), mtime.subsec_nanos()))
}

impl<V: Clone> Default for IndexCache<V> {
    fn default() -> IndexCache<V> {
        IndexCache::new(DEFAULT_CACHE_BYTES)
    }
}
