//! A cache that several processes share (a fleet of proxies): the indexes of archives kept
//! under a given key ([`RemoteArchives::index_keyed`](super::RemoteArchives::index_keyed)),
//! and the verdicts of entries whole reads verified, written once and read by every
//! process that meets the same archive. The store itself (a directory, an object store
//! bucket) is the caller's, behind [`SharedCache`].
//!
//! Objects are named by a stable hash of what they hold: `index/<16 hex digits>` for an
//! archive's index and `verdict/<16 hex>/<16 hex>` for an entry's verdict (archive key,
//! then path). An index object holds its key in full (a collision is a miss); a verdict is
//! used only for the entry an index names (record offset, CRC-32, sizes) in the version it
//! names. Both hold the archive's validator, which every read checks with the server
//! (`If-Match` for an `ETag`, `If-Range` for a date; an archive with neither is trusted to
//! stay as it is under its key), so a stale object costs a fresh read, never wrong bytes.
//! Only keys given by the caller (an archive's identity) are shared, never a URL: no
//! credential or signature is written. An index does hold the archive's file names and
//! sizes, and a verdict windows of a large entry's bytes at its checkpoints: the store is
//! as private as the artifacts.
#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// A future a [`SharedCache`] returns.
pub type SharedFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// Named objects that several processes read and write: what
/// [`RemoteArchives::with_shared_cache`](super::RemoteArchives::with_shared_cache) keeps
/// indexes and verdicts in. Names are `/`-separated ASCII (letters, digits, `/`).
///
/// Whoever can write here can make the processes that read it serve one entry's bytes
/// under another's name within an archive a caller may read (the CRC-32 check is against
/// what the object says): give write access to those processes alone, as for their disk
/// caches. Whoever can read here learns archives' listings and pieces of their files: give
/// read access to them alone too.
///
/// Reads are made on the request path (a load of an index waits for one, under its key's
/// turn): each is given [`SHARED_WAIT`](super::SHARED_WAIT), then counted as an error and
/// taken as a miss. Writes are made in the background, within the same time.
pub trait SharedCache: Send + Sync + std::fmt::Debug {
    /// The object `name`: `Ok(None)` when there is none. An object over `max_len` bytes is
    /// not read (`Ok(None)` too).
    fn get(&self, name: &str, max_len: u64) -> SharedFuture<'_, Option<Bytes>>;

    /// Writes the object `name` whole (readers see the old one or the new one, never a
    /// part).
    fn put(&self, name: &str, bytes: Bytes) -> SharedFuture<'_, ()>;
}

/// What a shared cache has answered and been given, since the reader started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedCacheStats {
    /// Objects found and used.
    pub hits: u64,
    /// Objects looked for and not there (or not usable: another key, damaged).
    pub misses: u64,
    /// Objects written.
    pub writes: u64,
    /// Reads or writes that failed (the store did not answer): each a miss or a lost write,
    /// never an error for the caller.
    pub errors: u64,
}

/// The counters behind [`SharedCacheStats`].
#[derive(Debug, Default)]
pub(crate) struct SharedCounts {
    hits: AtomicU64,
    misses: AtomicU64,
    writes: AtomicU64,
    errors: AtomicU64,
}

impl SharedCounts {
    pub(crate) fn found(&self, found: bool) {
        let counter = if found { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn wrote(&self, result: &io::Result<()>) {
        let counter = if result.is_ok() { &self.writes } else { &self.errors };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> SharedCacheStats {
        SharedCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// FNV-1a, 64 bits: a hash that every build and platform computes alike (the names must
/// agree across a fleet running different builds).
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The object name of the index kept under `key` (the disk cache's key text).
pub(crate) fn index_name(key: &str) -> String {
    format!("index/{:016x}", stable_hash(key.as_bytes()))
}

/// The object name of the verdict for `path` of the archive kept under `key`.
pub(crate) fn verdict_name(key: &str, path: &str) -> String {
    format!("verdict/{:016x}/{:016x}", stable_hash(key.as_bytes()), stable_hash(path.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_tell_keys_apart() {
        // FNV-1a's published value for "a": the names do not change with the build.
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(index_name("key:x"), index_name("key:x"));
        assert_ne!(index_name("key:x"), index_name("key:y"));
        assert_ne!(verdict_name("k", "a/b"), verdict_name("k", "a/c"));
        assert!(verdict_name("k", "../x").bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/'));
    }
}
