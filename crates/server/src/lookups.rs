//! Short-lived memory of artifact look-ups, so that a hot entry costs no database query and
//! no trip to the blocking pool.
//!
//! A look-up (credential, project, job reference) -> archive blob is remembered for
//! [`TTL`]; every change made through this server's API forgets everything at once. So a
//! change made here shows at once, and one made by another process (`artifact admin`,
//! another replica) within one second. Open archive files are kept too: blobs never change
//! under their key, and a file is only used after a look-up says its key is still live.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) use artifact_gitlab::credentials::LookupKey;

use crate::blobs::OpenBlob;
use crate::model::BlobRef;

/// How long a look-up is trusted.
pub(crate) const TTL: Duration = Duration::from_secs(1);
/// Look-ups remembered at most; past this the memory starts over.
const MAX_LOOKUPS: usize = 16_384;
/// Open archive files kept at most.
const MAX_FILES: usize = 256;

#[derive(Debug, Default)]
pub(crate) struct Lookups {
    archives: Mutex<HashMap<LookupKey, (Instant, BlobRef)>>,
    files: Mutex<HashMap<String, OpenBlob>>,
    /// Bumped by every `forget`: a look-up that started before a change is not remembered
    /// after it.
    generation: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Lookups {
    pub(crate) fn archive(&self, key: &LookupKey) -> Option<BlobRef> {
        let map = lock(&self.archives);
        map.get(key).filter(|(at, _)| at.elapsed() < TTL).map(|(_, blob)| blob.clone())
    }

    /// The generation to pass to `remember` and `keep_file`: read it before the look-up.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Remembers a look-up made since `generation`, unless a change came in between.
    pub(crate) fn remember(&self, key: LookupKey, blob: BlobRef, generation: u64) {
        let mut map = lock(&self.archives);
        if self.generation() != generation {
            return;
        }
        if map.len() >= MAX_LOOKUPS {
            map.clear();
        }
        map.insert(key, (Instant::now(), blob));
    }

    pub(crate) fn file(&self, blob_key: &str) -> Option<OpenBlob> {
        lock(&self.files).get(blob_key).cloned()
    }

    pub(crate) fn keep_file(&self, blob_key: &str, blob: &OpenBlob, generation: u64) {
        let mut files = lock(&self.files);
        if self.generation() != generation {
            return;
        }
        if files.len() >= MAX_FILES {
            files.clear();
        }
        files.insert(blob_key.to_owned(), blob.clone());
    }

    /// Forgets every look-up and file (after any change to jobs).
    pub(crate) fn forget(&self) {
        // Under both locks, so that no `remember` can slip in between the bump and the clear.
        let mut archives = lock(&self.archives);
        let mut files = lock(&self.files);
        self.generation.fetch_add(1, Ordering::SeqCst);
        archives.clear();
        files.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artifact_core::JobRef;

    fn blob() -> BlobRef {
        BlobRef { key: "archive/00".into(), size: 1 }
    }

    #[test]
    fn a_lookup_that_started_before_a_change_is_not_remembered() {
        let lookups = Lookups::default();
        let key = LookupKey::new([1; 32], "7", &JobRef::Id(5)).unwrap();
        let generation = lookups.generation();
        lookups.forget();
        lookups.remember(key.clone(), blob(), generation);
        assert_eq!(lookups.archive(&key), None);
        lookups.remember(key.clone(), blob(), lookups.generation());
        assert_eq!(lookups.archive(&key), Some(blob()));
    }

    #[test]
    fn keys_are_canonical_and_bounded() {
        let job = JobRef::Id(5);
        assert_eq!(LookupKey::new([0; 32], "007", &job), LookupKey::new([0; 32], "7", &job));
        assert!(LookupKey::new([0; 32], &"g/".repeat(1000), &job).is_none());
        assert_ne!(LookupKey::new([0; 32], "7", &job), LookupKey::new([1; 32], "7", &job));
    }
}
