//! Short-lived memory of artifact look-ups, so that a hot entry costs no database query and
//! no trip to the blocking pool.
//!
//! A look-up (credential, project, job reference) -> archive blob is remembered for
//! [`TTL`]; every change made through this server's API forgets everything at once. So a
//! change made here shows at once, and one made by another process (`artifact admin`,
//! another replica) within one second. Open archive files are kept too: blobs never change
//! under their key, and a file is only used after a look-up says its key is still live.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) use artifact_gitlab::credentials::LookupKey;
use quick_cache::sync::Cache;

use crate::blobs::OpenBlob;
use crate::model::BlobRef;

/// How long a look-up is trusted.
pub(crate) const TTL: Duration = Duration::from_secs(1);
/// Look-ups remembered at most; past this the least likely used go.
const MAX_LOOKUPS: usize = 16_384;
/// Open archive files kept at most.
const MAX_FILES: usize = 256;

/// The memory: each look-up and file with the generation it was made in, which must still
/// be the current one when it is used.
#[derive(Debug)]
pub(crate) struct Lookups {
    archives: Cache<LookupKey, (Instant, u64, BlobRef)>,
    files: Cache<String, (u64, OpenBlob)>,
    /// Bumped by every `forget`: a look-up that started before a change is never used
    /// after it, whenever it was stored.
    generation: AtomicU64,
}

impl Default for Lookups {
    fn default() -> Lookups {
        Lookups { archives: Cache::new(MAX_LOOKUPS), files: Cache::new(MAX_FILES), generation: AtomicU64::new(0) }
    }
}

impl Lookups {
    pub(crate) fn archive(&self, key: &LookupKey) -> Option<BlobRef> {
        let (at, generation, blob) = self.archives.get(key)?;
        (at.elapsed() < TTL && generation == self.generation()).then_some(blob)
    }

    /// The generation to pass to `remember` and `keep_file`: read it before the look-up.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Remembers a look-up made since `generation` (one made before a change is stored with
    /// its old generation, and never used).
    pub(crate) fn remember(&self, key: LookupKey, blob: BlobRef, generation: u64) {
        if self.generation() == generation {
            self.archives.insert(key, (Instant::now(), generation, blob));
        }
    }

    pub(crate) fn file(&self, blob_key: &str) -> Option<OpenBlob> {
        let (generation, blob) = self.files.get(blob_key)?;
        (generation == self.generation()).then_some(blob)
    }

    pub(crate) fn keep_file(&self, blob_key: &str, blob: &OpenBlob, generation: u64) {
        if self.generation() == generation {
            self.files.insert(blob_key.to_owned(), (generation, blob.clone()));
        }
    }

    /// Forgets every look-up and file (after any change to jobs): the generation moves on
    /// first, so that nothing stored before is used again, then the memory is freed.
    pub(crate) fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.archives.clear();
        self.files.clear();
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
        // Stored after a change although read before it: never used.
        let before = lookups.generation();
        lookups.remember(key.clone(), blob(), before);
        lookups.forget();
        lookups.archives.insert(key.clone(), (Instant::now(), before, blob()));
        assert_eq!(lookups.archive(&key), None);
    }

    #[test]
    fn past_its_bound_the_memory_keeps_most_of_what_it_holds() {
        let lookups = Lookups::default();
        let generation = lookups.generation();
        let keys: Vec<LookupKey> =
            (0..MAX_LOOKUPS as u64 + 100).map(|job| LookupKey::new([0; 32], "7", &JobRef::Id(job)).unwrap()).collect();
        for key in &keys {
            lookups.remember(key.clone(), blob(), generation);
        }
        let kept = keys.iter().filter(|key| lookups.archive(key).is_some()).count();
        assert!(kept > MAX_LOOKUPS / 2 && kept <= MAX_LOOKUPS, "{kept} kept: not all dropped at once");
    }

    #[test]
    fn keys_are_canonical_and_bounded() {
        let job = JobRef::Id(5);
        assert_eq!(LookupKey::new([0; 32], "007", &job), LookupKey::new([0; 32], "7", &job));
        assert!(LookupKey::new([0; 32], &"g/".repeat(1000), &job).is_none());
        assert_ne!(LookupKey::new([0; 32], "7", &job), LookupKey::new([1; 32], "7", &job));
    }
}
