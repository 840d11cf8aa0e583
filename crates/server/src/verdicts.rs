//! Which entries of an archive may be served.
//!
//! `artifact import` verifies every entry and the store keeps the outcome with the job's
//! records ([`Imports::verification`](crate::Imports::verification); archives imported by earlier versions have it in a blob
//! beside the archive, [`BlobKind::Verification`]): an entry it refused answers 500, every
//! other one is bytes that passed their CRC-32. An archive stored before verification existed has no outcome;
//! each of its entries is verified on its first request, once (concurrent first requests
//! wait for the one verifying), and the verdict is kept with the archive's index.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use artifact_core::checkpoints::Checkpoints;
use artifact_core::{Archive, Entry, Source, Verification};

use crate::blobs::{BlobKind, Blobs, beside};
use crate::store::Store;

/// The verdicts of one archive's entries; kept beside its index in the index cache.
#[derive(Debug, Default)]
pub(crate) struct Verdicts {
    /// The outcome stored at import, if there is one.
    stored: Option<Verification>,
    /// Verdicts reached on first request, by record offset (archives without an outcome).
    lazy: Mutex<HashMap<u64, Cell>>,
    /// The checkpoints of its large deflated entries, once a range of one was asked for
    /// (`None` inside: there are none, or they could not be read).
    checkpoints: OnceLock<Option<Arc<Checkpoints>>>,
}

/// One entry's verdict once reached: `Err` holds the reason it was refused.
type Cell = Arc<Mutex<Option<Result<(), String>>>>;

/// What is known about one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Its bytes passed their size and CRC-32 checks.
    Verified,
    /// It may not be served, for this reason (for the log, never the client).
    Refused(String),
    /// Not verified yet: verify it (blocking) before serving.
    Unknown,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Verdicts {
    /// The verdicts of the archive `archive_key`: the outcome the store keeps for it, or
    /// (archives imported before the store kept it) the one stored beside the archive, or
    /// none yet.
    pub(crate) fn load(store: &dyn Store, blobs: &dyn Blobs, archive_key: &str) -> io::Result<Verdicts> {
        let bytes = match store.verification(archive_key).map_err(io::Error::other)? {
            Some(outcome) => outcome.into_bytes(),
            None => {
                let Some(key) = beside(archive_key, BlobKind::Verification) else {
                    return Ok(Verdicts::default());
                };
                match blobs.open(&key) {
                    Ok(blob) => blob.source.read_bytes(0, blob.source.len() as usize)?.to_vec(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Verdicts::default()),
                    Err(e) => return Err(e),
                }
            }
        };
        match serde_json::from_slice::<Verification>(&bytes) {
            Ok(stored) => Ok(Verdicts { stored: Some(stored), ..Verdicts::default() }),
            Err(e) => {
                // An unreadable outcome costs a verification per entry, never a wrong answer.
                tracing::warn!(key = %archive_key, error = %e, "unreadable verification outcome; entries are verified on request");
                Ok(Verdicts::default())
            }
        }
    }

    /// What is known of `entry`, without reading it.
    pub(crate) fn of(&self, entry: &Entry) -> Verdict {
        if let Some(stored) = &self.stored {
            return match stored.refusal_of(entry) {
                Some(refusal) => Verdict::Refused(refusal.reason.clone()),
                None => Verdict::Verified,
            };
        }
        let cell = lock(&self.lazy).get(&entry.record_offset()).cloned();
        match cell.as_deref().map(lock).as_deref() {
            Some(Some(Ok(()))) => Verdict::Verified,
            Some(Some(Err(why))) => Verdict::Refused(why.clone()),
            _ => Verdict::Unknown,
        }
    }

    /// Reads `entry` once to reach its verdict (blocking), and keeps it. Concurrent callers
    /// for one entry wait for the first. An error reading the source is returned, and
    /// nothing is kept.
    pub(crate) fn verify<S: Source>(&self, archive: &Archive<S>, entry: &Entry) -> artifact_core::Result<Verdict> {
        match self.of(entry) {
            Verdict::Unknown => {}
            known => return Ok(known),
        }
        let cell = lock(&self.lazy).entry(entry.record_offset()).or_default().clone();
        let mut verdict = lock(&cell);
        if verdict.is_none() {
            let mut scratch = vec![0u8; 64 * 1024];
            let outcome = artifact_core::verify_entry(archive, entry, &mut scratch)?;
            *verdict = Some(outcome.map(drop).map_err(|e| e.to_string()));
        }
        Ok(match verdict.as_ref() {
            Some(Ok(())) => Verdict::Verified,
            Some(Err(why)) => Verdict::Refused(why.clone()),
            None => Verdict::Unknown,
        })
    }

    /// The archive's checkpoints if they were loaded already: `None` when not yet.
    pub(crate) fn loaded_checkpoints(&self) -> Option<Option<Arc<Checkpoints>>> {
        self.checkpoints.get().cloned()
    }

    /// The archive's checkpoints, loaded from beside it on first use (blocking). Missing or
    /// damaged ones are none: ranges then inflate from the entry's start.
    pub(crate) fn checkpoints(&self, blobs: &dyn Blobs, archive_key: &str) -> Option<Arc<Checkpoints>> {
        self.checkpoints
            .get_or_init(|| {
                let key = beside(archive_key, BlobKind::Checkpoints)?;
                let bytes = match blobs.open(&key) {
                    Ok(blob) => blob.source.read_bytes(0, blob.source.len() as usize),
                    Err(e) => Err(e),
                };
                let bytes = match bytes {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
                    Err(e) => {
                        tracing::warn!(key = %key, error = %e, "checkpoints not readable; ranges inflate from the start");
                        return None;
                    }
                };
                match Checkpoints::decode(&bytes) {
                    Ok(checkpoints) => Some(Arc::new(checkpoints)),
                    Err(e) => {
                        // Never followed: a range of such an entry inflates from its start.
                        tracing::warn!(key = %key, error = %e, "checkpoints not usable; ranges inflate from the start");
                        None
                    }
                }
            })
            .clone()
    }
}
