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
use std::time::{Duration, Instant};

use artifact_core::JobRef;

use crate::blobs::OpenBlob;
use crate::model::BlobRef;

/// How long a look-up is trusted.
pub(crate) const TTL: Duration = Duration::from_secs(1);
/// Look-ups remembered at most; past this the memory starts over.
const MAX_LOOKUPS: usize = 16_384;
/// Open archive files kept at most.
const MAX_FILES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct LookupKey {
    /// The credential as presented (hashed), or empty for anonymous.
    pub(crate) credential: [u8; 32],
    pub(crate) project: String,
    pub(crate) job: JobRef,
}

#[derive(Debug, Default)]
pub(crate) struct Lookups {
    archives: Mutex<HashMap<LookupKey, (Instant, BlobRef)>>,
    files: Mutex<HashMap<String, OpenBlob>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Lookups {
    pub(crate) fn archive(&self, key: &LookupKey) -> Option<BlobRef> {
        let map = lock(&self.archives);
        map.get(key).filter(|(at, _)| at.elapsed() < TTL).map(|(_, blob)| blob.clone())
    }

    pub(crate) fn remember(&self, key: LookupKey, blob: BlobRef) {
        let mut map = lock(&self.archives);
        if map.len() >= MAX_LOOKUPS {
            map.clear();
        }
        map.insert(key, (Instant::now(), blob));
    }

    pub(crate) fn file(&self, blob_key: &str) -> Option<OpenBlob> {
        lock(&self.files).get(blob_key).cloned()
    }

    pub(crate) fn keep_file(&self, blob_key: &str, blob: &OpenBlob) {
        let mut files = lock(&self.files);
        if files.len() >= MAX_FILES {
            files.clear();
        }
        files.insert(blob_key.to_owned(), blob.clone());
    }

    /// Forgets every look-up and file (after any change to jobs).
    pub(crate) fn forget(&self) {
        lock(&self.archives).clear();
        lock(&self.files).clear();
    }
}
