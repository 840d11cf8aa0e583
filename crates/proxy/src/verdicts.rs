//! What the proxy learned from reads that checked out: verdicts of large entries (their
//! data offset and checkpoints, for windows read directly), which reads record checkpoints
//! now, and whether the upstream serves each archive itself.

use std::sync::Arc;

use artifact_core::ArtifactPath;
use artifact_core::http::{AsyncEntry, GzipEntry, RemoteArchives, Validator, VerifiedEntry};

/// Whether the upstream serves each archive itself (`true`) or redirects its download
/// elsewhere, by archive identity, as the last grant found. Bounded; a forgotten archive
/// is tried as a cold one.
pub(crate) struct Served(quick_cache::sync::Cache<Arc<str>, bool>);

impl Default for Served {
    fn default() -> Served {
        Served(quick_cache::sync::Cache::new(16_384))
    }
}

impl Served {
    pub(crate) fn get(&self, key: &Arc<str>) -> Option<bool> {
        self.0.get(key)
    }

    pub(crate) fn put(&self, key: Arc<str>, by_upstream: bool) {
        self.0.insert(key, by_upstream);
    }
}

/// Entries that were read whole and verified, by archive identity and path, with what
/// their read learned (data offset, checkpoints of large deflated ones): the proxy's
/// verdicts. Each is for the archive version it was read in (its validator): another
/// version's reads never use it. Bounded by memory ([`VERDICT_BYTES`]); one forgotten
/// costs one whole read again.
#[derive(Clone)]
pub(crate) struct Verified {
    verdicts: Arc<VerdictCache>,
    /// Entries whose reads are recording checkpoints now: one read per entry, and at most
    /// [`MAX_RECORDING`] at once (each holds its checkpoints' windows until it ends).
    recording: Arc<RecordingSet>,
    /// Where new verdicts are also kept (the disk and shared caches, if there are any).
    remote: Arc<RemoteArchives>,
    /// Entries whose verdict failed a window here: a kept one is not read from those
    /// caches again until a whole read made a new one (which replaces it there).
    failed: Arc<quick_cache::sync::Cache<(Arc<str>, String), ()>>,
}

/// The entries (archive identity, path) whose reads record checkpoints now.
type RecordingSet = std::sync::Mutex<std::collections::HashSet<(Arc<str>, String)>>;

/// Reads recording checkpoints at once, at most: a 1 GiB entry's take a few MiB while it
/// is read.
const MAX_RECORDING: usize = 8;

/// One read's place among those recording checkpoints; given back when dropped.
pub(crate) struct Recording {
    set: Arc<RecordingSet>,
    entry: (Arc<str>, String),
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.entry);
    }
}

/// Verdicts by (archive identity, path).
type VerdictCache = quick_cache::sync::Cache<(Arc<str>, String), Arc<VerifiedEntry>, ByWeight>;

/// Memory the verdicts may take, their checkpoints' windows mostly (a 1 GiB deflated
/// entry's are a few MiB).
pub(crate) const VERDICT_BYTES: u64 = 128 << 20;

/// Weighs a verdict at the memory it holds.
#[derive(Clone)]
pub(crate) struct ByWeight;

impl quick_cache::Weighter<(Arc<str>, String), Arc<VerifiedEntry>> for ByWeight {
    fn weight(&self, key: &(Arc<str>, String), verdict: &Arc<VerifiedEntry>) -> u64 {
        (key.0.len() + key.1.len() + verdict.weight()) as u64
    }
}

/// Shards of the verdicts' cache: each holds [`VERDICT_BYTES`] / `VERDICT_SHARDS`, and a
/// verdict must fit one (a 1 GiB entry's checkpoints take up to 8 MiB).
const VERDICT_SHARDS: usize = 2;

impl Verified {
    /// Verdicts kept in memory, and by `remote` in its disk and shared caches.
    pub(crate) fn new(remote: Arc<RemoteArchives>) -> Verified {
        let options = quick_cache::OptionsBuilder::new()
            .estimated_items_capacity(16_384)
            .weight_capacity(VERDICT_BYTES)
            .shards(VERDICT_SHARDS)
            .build()
            .unwrap_or_else(|_| unreachable!("the weight capacity is set"));
        let verdicts =
            quick_cache::sync::Cache::with_options(options, ByWeight, Default::default(), Default::default());
        let failed = Arc::new(quick_cache::sync::Cache::new(4096));
        Verified { verdicts: Arc::new(verdicts), recording: Arc::default(), remote, failed }
    }

    pub(crate) fn get(&self, key: &Arc<str>, path: &ArtifactPath) -> Option<Arc<VerifiedEntry>> {
        self.verdicts.get(&(key.clone(), path.as_str().to_owned()))
    }

    /// A place for a read of `path` in the archive kept under `key` to record checkpoints:
    /// `None` while another read of it does, or [`MAX_RECORDING`] reads do.
    pub(crate) fn start_recording(&self, key: &Arc<str>, path: &ArtifactPath) -> Option<Recording> {
        let mut set = self.recording.lock().unwrap_or_else(|p| p.into_inner());
        let entry = (key.clone(), path.as_str().to_owned());
        if set.len() >= MAX_RECORDING || !set.insert(entry.clone()) {
            return None;
        }
        Some(Recording { set: self.recording.clone(), entry })
    }

    /// The verdict for `path` of the archive kept under `key`, if it is for the version
    /// with `validator`.
    pub(crate) fn of(&self, key: &Arc<str>, path: &ArtifactPath, validator: &Validator) -> Option<Arc<VerifiedEntry>> {
        self.get(key, path).filter(|v| v.validator() == validator)
    }

    /// Keeps `verdict`, unless one for the same version is kept with as much (checkpoints,
    /// or none in either): in memory, and in the disk and shared caches when it is new.
    pub(crate) fn record(&self, key: Arc<str>, path: &ArtifactPath, verdict: VerifiedEntry) {
        let kept = self.of(&key, path, verdict.validator());
        if kept.is_some_and(|k| k.checkpoints().is_some() || verdict.checkpoints().is_none()) {
            return;
        }
        self.remote.keep_verdict(&key, path, &verdict);
        self.failed.remove(&(key.clone(), path.as_str().to_owned()));
        self.remember(key, path, verdict);
    }

    /// The verdict for `path` of the archive kept under `key` from the disk or shared
    /// cache, for `entry` in the version with `validator` (then kept in memory too); not
    /// for an entry whose verdict failed a window here since.
    pub(crate) async fn stored(
        &self,
        key: &Arc<str>,
        path: &ArtifactPath,
        entry: &artifact_core::Entry,
        validator: &Validator,
    ) -> Option<Arc<VerifiedEntry>> {
        if self.failed.get(&(key.clone(), path.as_str().to_owned())).is_some() {
            return None;
        }
        let verdict = self.remote.stored_verdict_async(key, path, entry, validator).await?;
        self.remember(key.clone(), path, verdict);
        self.get(key, path)
    }

    /// Keeps `verdict` in memory (one read from the disk or shared cache, say).
    pub(crate) fn remember(&self, key: Arc<str>, path: &ArtifactPath, verdict: VerifiedEntry) {
        // A verdict heavier than a shard holds would be refused (and take the one kept
        // with it): kept without its checkpoints instead.
        let room = self.verdicts.shard_capacity() / 4;
        let verdict = if verdict.weight() as u64 > room { verdict.without_checkpoints() } else { verdict };
        self.verdicts.insert((key, path.as_str().to_owned()), Arc::new(verdict));
    }

    /// Drops the verdict for `path` of the archive kept under `key` (a window of it failed).
    pub(crate) fn forget(&self, key: &Arc<str>, path: &ArtifactPath) {
        let entry = (key.clone(), path.as_str().to_owned());
        self.verdicts.remove(&entry);
        self.failed.insert(entry, ());
    }
}

/// A stream of an entry's bytes that leaves the read's verdict once the engine says it
/// verified (the size and CRC-32 checked out; the entry's last bytes, or a gzip member's
/// trailer, come only after that).
pub(crate) struct Verdict<S> {
    pub(crate) inner: S,
    /// Where the verdict goes; taken when the stream fails.
    pub(crate) verdict: Option<(Verified, Arc<str>, ArtifactPath)>,
    /// The read's place among those recording checkpoints, if it records them.
    pub(crate) _recording: Option<Recording>,
}

/// A verified read's verdict, once it ended ([`AsyncEntry::verified`]).
pub(crate) trait Verifies {
    fn verdict(&mut self) -> Option<VerifiedEntry>;
}

impl Verifies for AsyncEntry {
    fn verdict(&mut self) -> Option<VerifiedEntry> {
        self.verified()
    }
}

impl Verifies for GzipEntry {
    fn verdict(&mut self) -> Option<VerifiedEntry> {
        self.verified()
    }
}

impl<S> futures_util::Stream for Verdict<S>
where
    S: futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Verifies + Unpin,
{
    type Item = std::io::Result<bytes::Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::io::Result<bytes::Bytes>>> {
        let item = std::task::ready!(std::pin::Pin::new(&mut self.inner).poll_next(cx));
        if matches!(item, Some(Err(_))) {
            self.verdict = None;
        } else if self.verdict.is_some()
            && let Some(verdict) = self.inner.verdict()
            && let Some((verified, key, path)) = self.verdict.take()
        {
            // At the item that completed the check (the entry's last bytes come only after
            // it): a server may drop the body once its Content-Length is out, unpolled.
            verified.record(key, &path, verdict);
        }
        std::task::Poll::Ready(item)
    }
}
