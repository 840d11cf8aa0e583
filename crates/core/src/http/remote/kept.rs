//! What a [`RemoteArchives`] keeps beyond its memory: indexes in a shared cache (read
//! before the server's tail, written after it), and the verdicts of entries whole reads
//! verified, on disk and shared.
#![forbid(unsafe_code)]

use std::sync::Arc;

use super::RemoteArchives;
use crate::http::disk::{DiskKey, decode};
use crate::http::shared::{index_name, verdict_name};
use crate::http::{RemoteIdentity, VerifiedEntry};
use crate::index::Index;
use crate::path::ArtifactPath;

impl RemoteArchives {
    /// The index and identity of the archive `at` from the shared cache, if it holds them
    /// (for a given key only; an object over `max_len` and some is not read), with the
    /// object's bytes.
    pub(super) async fn read_shared(
        self: &Arc<Self>,
        at: DiskKey<'_>,
        max_len: u64,
    ) -> Option<(Arc<Index>, RemoteIdentity, bytes::Bytes)> {
        let (DiskKey::Given { .. }, Some(shared)) = (at, &self.shared) else { return None };
        // The directory and the file's own fields (its key, the validator).
        let bytes = self.shared_get(shared.get(&index_name(&at.text()), max_len.saturating_add(64 << 10))).await?;
        let (this, owned) = (self.clone(), at.owned());
        let built = tokio::task::spawn_blocking(move || {
            let at = owned.borrowed();
            let (cd, identity) = decode(bytes.clone(), &at)?;
            // A version found stale here: read afresh instead (which replaces it there).
            let stale = this.shared_stale.lock().unwrap_or_else(|p| p.into_inner()).get(&at.memory()).cloned();
            if stale.as_ref() == Some(&identity.validator) {
                return None;
            }
            let index = Index::build(cd).ok()?;
            Some((Arc::new(index), identity, bytes))
        })
        .await
        .ok()
        .flatten();
        self.shared_counts.found(built.is_some());
        built
    }

    /// An object the shared cache answers `get` with, within [`SHARED_WAIT`]: `None` when
    /// there is none, or the store failed or did not answer in time (counted as errors;
    /// the engine logs nothing of its own).
    async fn shared_get(&self, get: super::super::SharedFuture<'_, Option<bytes::Bytes>>) -> Option<bytes::Bytes> {
        match tokio::time::timeout(SHARED_WAIT, get).await {
            Ok(Ok(Some(bytes))) => Some(bytes),
            Ok(Ok(None)) => {
                self.shared_counts.found(false);
                None
            }
            Ok(Err(_)) | Err(_) => {
                self.shared_counts.failed();
                None
            }
        }
    }

    /// Keeps an index read from the shared cache (its object's `bytes`) in memory and in
    /// the disk cache.
    pub(super) async fn keep_shared(
        self: &Arc<Self>,
        at: DiskKey<'_>,
        index: Arc<Index>,
        identity: RemoteIdentity,
        bytes: bytes::Bytes,
    ) {
        let key = at.memory();
        if self.cache.insert(&key, index, identity) {
            // Read from another process's fetch, of any age: its misses are not fresh.
            self.cache.unstamp(&key);
        }
        if self.disk.is_some() {
            let (this, owned) = (self.clone(), at.owned());
            let _ = tokio::task::spawn_blocking(move || {
                if let Some(disk) = &this.disk {
                    disk.store_encoded(&owned.borrowed(), &bytes);
                }
            })
            .await;
        }
    }

    /// Whether verdicts are kept anywhere but the caller's memory: a disk or a shared
    /// cache ([`keep_verdict`](Self::keep_verdict) does nothing without either).
    pub fn keeps_verdicts(&self) -> bool {
        self.disk.is_some() || self.shared.is_some()
    }

    /// Keeps `verdict` (of `path` in the archive kept under `key`) where other processes
    /// and later runs find it: the disk cache and the shared cache, whichever there are
    /// (nothing without either). In the background, on the current tokio runtime (outside
    /// one, nothing is kept); no handle says when it is done (the shared cache's writes
    /// show in [`shared_stats`](Self::shared_stats)). What
    /// [`stored_verdict_async`](Self::stored_verdict_async) reads. Call it once per new
    /// verdict: each call writes.
    pub fn keep_verdict(self: &Arc<Self>, key: &str, path: &ArtifactPath, verdict: &VerifiedEntry) {
        if !self.keeps_verdicts() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let text = DiskKey::Given { key, url: "" }.text();
        let (this, path, verdict) = (self.clone(), path.as_str().to_owned(), verdict.clone());
        runtime.spawn(async move {
            let (name, shared, counts) = (verdict_name(&text, &path), this.shared.clone(), this.shared_counts.clone());
            let encoded = tokio::task::spawn_blocking(move || {
                let encoded = verdict.encode();
                if let Some(disk) = &this.disk {
                    disk.store_verdict(&text, &path, &encoded);
                }
                encoded
            })
            .await;
            if let (Ok(encoded), Some(shared)) = (encoded, shared) {
                counts.wrote(&put_within(shared.put(&name, encoded.into())).await);
            }
        });
    }

    /// The verdict kept for `path` of the archive kept under `key`
    /// ([`keep_verdict`](Self::keep_verdict), by this process or another), if it is for
    /// `entry` (as the archive's index describes it) in the version with `validator`: from
    /// the disk cache, else the shared cache (then written to the disk cache too). Each call
    /// reads there (a file, then an object, within [`SHARED_WAIT`]); a miss is not
    /// remembered: a caller that asks often remembers what it found, and its misses.
    pub async fn stored_verdict_async(
        self: &Arc<Self>,
        key: &str,
        path: &ArtifactPath,
        entry: &crate::Entry,
        validator: &super::super::Validator,
    ) -> Option<VerifiedEntry> {
        let text = DiskKey::Given { key, url: "" }.text();
        let decode = |bytes: &[u8]| VerifiedEntry::decode(bytes, entry).filter(|v| v.validator() == validator);
        if self.disk.is_some() {
            let (this, t, p) = (self.clone(), text.clone(), path.as_str().to_owned());
            let found = tokio::task::spawn_blocking(move || this.disk.as_ref()?.load_verdict(&t, &p)).await.ok()?;
            if let Some(verdict) = found.as_deref().and_then(decode) {
                return Some(verdict);
            }
        }
        let shared = self.shared.as_ref()?;
        let got = self.shared_get(shared.get(&verdict_name(&text, path.as_str()), VERDICT_MAX)).await;
        let verdict = got.as_deref().and_then(decode);
        if got.is_some() {
            self.shared_counts.found(verdict.is_some());
        }
        if let (Some(bytes), Some(_)) = (got, &verdict)
            && self.disk.is_some()
        {
            let (this, p) = (self.clone(), path.as_str().to_owned());
            tokio::task::spawn_blocking(move || {
                if let Some(disk) = &this.disk {
                    disk.store_verdict(&text, &p, &bytes);
                }
            });
        }
        verdict
    }

    /// The validator of the archive version whose index is kept under `key`
    /// ([`index_keyed`](Self::index_keyed)), if that index is in memory: what a verdict
    /// ([`stored_verdict_async`](Self::stored_verdict_async)) must be for.
    pub fn validator_keyed(&self, key: &str) -> Option<super::super::Validator> {
        self.in_memory(DiskKey::Given { key, url: "" }).map(|(_, identity)| identity.validator)
    }
}

/// How long a shared cache has to answer a read or take a write: past it, the read is a
/// miss and the write lost (both counted as errors). A load waits for it, so it is short.
pub const SHARED_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `put`, given [`SHARED_WAIT`] to finish.
pub(super) async fn put_within(put: super::super::SharedFuture<'_, ()>) -> std::io::Result<()> {
    tokio::time::timeout(SHARED_WAIT, put)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the shared cache did not answer")))
}

/// The largest verdict read from a shared cache: 256 checkpoints of 32 KiB windows, with
/// room to spare.
const VERDICT_MAX: u64 = 16 << 20;
