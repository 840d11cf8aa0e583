//! Small entries' verified bytes kept in memory, by archive version and path, with the
//! headers they are answered with: a hot file is answered without reading anything.
//!
//! Bounded by bytes (each entry weighs its bytes and a fixed overhead); what goes first when
//! the bound is passed is decided by `quick_cache`'s S3-FIFO policy, which keeps entries
//! asked for more than once over one-off reads.

use std::sync::Arc;

use artifact_core::ArtifactPath;
use axum::http::HeaderMap;
use bytes::Bytes;

/// The default bound: 64 MiB.
pub const DEFAULT_ENTRY_CACHE_BYTES: usize = 64 << 20;

/// Bytes counted per entry beside its own (key, headers, bookkeeping).
const OVERHEAD: u64 = 256;

/// One small entry, verified, as it is answered.
#[derive(Debug)]
pub(crate) struct Hot {
    pub(crate) bytes: Bytes,
    /// The strong entity tag, quoted.
    pub(crate) etag: String,
    /// `Content-Type`, `Content-Disposition` and the like.
    pub(crate) headers: HeaderMap,
}

/// An archive version and a path.
type Key = (Arc<str>, Box<str>);

#[derive(Debug, Clone, Copy)]
struct Weight;

impl quick_cache::Weighter<Key, Arc<Hot>> for Weight {
    fn weight(&self, key: &Key, hot: &Arc<Hot>) -> u64 {
        hot.bytes.len() as u64 + key.1.len() as u64 + OVERHEAD
    }
}

/// A key as borrowed for a look-up: hashes as the owned key does (both hash their two
/// strings in order), so nothing is allocated to look up.
#[derive(Hash)]
struct Lookup<'a>(&'a str, &'a str);

impl quick_cache::Equivalent<Key> for Lookup<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *key.0 == *self.0 && *key.1 == *self.1
    }
}

/// The memory of hot entries.
#[derive(Debug)]
pub(crate) struct HotEntries {
    cache: Option<quick_cache::sync::Cache<Key, Arc<Hot>, Weight>>,
}

impl HotEntries {
    /// Holding at most `bytes` (`0`: nothing is kept).
    pub(crate) fn new(bytes: usize) -> HotEntries {
        let items = (bytes / 4096).max(16);
        let cache = (bytes > 0).then(|| quick_cache::sync::Cache::with_weighter(items, bytes as u64, Weight));
        HotEntries { cache }
    }

    /// The entry at `path` of the archive version `version`, if kept.
    pub(crate) fn get(&self, version: &str, path: &ArtifactPath) -> Option<Arc<Hot>> {
        self.cache.as_ref()?.get(&Lookup(version, path.as_str()))
    }

    /// Keeps `hot` as the entry at `path` of `version`.
    pub(crate) fn put(&self, version: &Arc<str>, path: &ArtifactPath, hot: Arc<Hot>) {
        if let Some(cache) = &self.cache {
            cache.insert((version.clone(), Box::from(path.as_str())), hot);
        }
    }
}
