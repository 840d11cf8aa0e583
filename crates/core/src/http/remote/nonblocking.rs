//! The async methods of [`RemoteArchives`]: indexes loaded on the caller's runtime (the
//! disk cache read on its blocking pool), entries streamed by [`AsyncEntry`].
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use hyper::header::HeaderMap;

use super::{RemoteArchives, located, reading_at};
use crate::error::{Error, Result};
use crate::http::disk::DiskKey;
use crate::http::shared::index_name;
use crate::http::{AsyncEntry, HttpOptions, RemoteIdentity, VerifiedEntry, VerifiedWindow};
use crate::index::Index;
use crate::path::ArtifactPath;

/// How an index load went, for its caller.
#[derive(Debug, Default)]
struct Load {
    /// The index was not read from the server now (memory, another caller's load, the disk
    /// or the shared cache): it may be stale.
    kept: AtomicBool,
    /// Hold a shared cache's index back from memory and disk until the caller's own read
    /// of the archive succeeded (a caller no one has said may read it).
    hold_shared: bool,
    /// Such an index's bytes, held back.
    held: std::sync::Mutex<Option<bytes::Bytes>>,
    /// The version the caller read with it.
    version: std::sync::Mutex<Option<crate::http::Validator>>,
}

impl Load {
    fn new(kept: bool, hold_shared: bool) -> Load {
        Load { kept: AtomicBool::new(kept), hold_shared, held: Default::default(), version: Default::default() }
    }

    /// The caller reads the archive as `identity` says.
    fn read(&self, identity: &RemoteIdentity) {
        *self.version.lock().unwrap_or_else(|p| p.into_inner()) = Some(identity.validator.clone());
    }

    fn version(&self) -> Option<crate::http::Validator> {
        self.version.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn kept(&self) -> bool {
        self.kept.load(Relaxed)
    }

    fn held(&self) -> Option<bytes::Bytes> {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl RemoteArchives {
    /// Like [`open_entry_with`](Self::open_entry_with), on async I/O: the index is loaded
    /// (when it is not in memory) and the entry's range read by the same client on the
    /// caller's runtime, and streamed by the returned [`AsyncEntry`], so no thread waits on
    /// the network. An index in memory costs no wait at all. A stale index is dropped and
    /// the entry looked up again once, as [`open_entry`](Self::open_entry) does. A server
    /// that ignores `Range` is [`Unsupported`](crate::Unsupported) here (no whole download).
    pub async fn open_entry_async(
        self: &Arc<Self>,
        url: &str,
        path: &ArtifactPath,
        headers: &HeaderMap,
    ) -> Result<AsyncEntry> {
        self.open_entry_async_at(DiskKey::Url(url), path, headers, true).await
    }

    /// Like [`open_entry_async`](Self::open_entry_async), with the index kept under `key`
    /// (see [`index_keyed`](Self::index_keyed)).
    pub async fn open_entry_keyed_async(
        self: &Arc<Self>,
        key: &str,
        url: &str,
        path: &ArtifactPath,
        headers: &HeaderMap,
    ) -> Result<AsyncEntry> {
        self.open_entry_async_at(DiskKey::Given { key, url }, path, headers, true).await
    }

    /// Like [`open_entry_keyed_async`](Self::open_entry_keyed_async), but a read that fails
    /// changes nothing here: no index is dropped and nothing is tried again. For a read
    /// whose failure may be its caller's alone, whatever the answer (a proxy's read made
    /// with a caller's credentials before anyone said the caller may read the archive):
    /// such a caller must never make others lose what they read.
    pub async fn try_entry_keyed_async(
        self: &Arc<Self>,
        key: &str,
        url: &str,
        path: &ArtifactPath,
        headers: &HeaderMap,
    ) -> Result<AsyncEntry> {
        self.open_entry_async_at(DiskKey::Given { key, url }, path, headers, false).await
    }

    /// Whether a caller sending `headers` may read the archive kept under `key` at `url`
    /// as it is indexed: one range read of its last byte there, checked against the known
    /// version (`If-Match`), the index loaded first if it is not known. Like
    /// [`try_entry_keyed_async`](Self::try_entry_keyed_async), a refusal changes nothing
    /// here. For a caller whose entry is not in a known index, to learn as much about the
    /// caller as a read of an entry would, and no more.
    pub async fn try_read_keyed_async(self: &Arc<Self>, key: &str, url: &str, headers: &HeaderMap) -> Result<()> {
        let at = DiskKey::Given { key, url };
        let load = Load::new(false, true);
        let (index, identity) = match self.in_memory(at) {
            Some(found) => found,
            None => self.indexed_kept(at, &self.async_options(headers), &load).await?,
        };
        self.read_last_byte(url, &identity, headers).await?;
        if let Some(bytes) = load.held() {
            self.keep_shared(at, index, identity, bytes).await;
        }
        Ok(())
    }

    /// Like [`index_keyed_async`](Self::index_keyed_async), for a key that may name another
    /// archive by now (a ref's latest job, whose pipeline may have run again): a known index
    /// (in memory, on disk or in the shared cache) is checked with one range read of the
    /// archive's last byte at `url` (`If-Match` on its version) before it is returned; if
    /// the archive changed there, or the read says the index may be stale, the index is
    /// dropped and loaded afresh from `url`. A refused read is the caller's error, and
    /// changes nothing here.
    pub async fn index_keyed_current_async(
        self: &Arc<Self>,
        key: &str,
        url: &str,
        headers: &HeaderMap,
    ) -> Result<Arc<Index>> {
        let at = DiskKey::Given { key, url };
        let options = self.async_options(headers);
        let load = Load::new(self.in_memory(at).is_some() || self.disk.as_ref().is_some_and(|d| d.exists(&at)), false);
        let (index, identity) = self.indexed_kept(at, &options, &load).await?;
        if !load.kept() {
            // Read from `url` just now.
            return Ok(index);
        }
        match self.read_last_byte(url, &identity, headers).await {
            Ok(()) => Ok(index),
            Err(e) if self.stale(at, &e) => {
                self.forget_read(at, Some(&identity.validator));
                Ok(self.indexed_async(at, &options).await?.0)
            }
            Err(e) => Err(e),
        }
    }

    /// One range read of the last byte of the archive `identity` describes, where `url`
    /// (asked with `headers`) leads: `If-Match` on its version, so a changed archive is
    /// [`Error::Changed`].
    async fn read_last_byte(&self, url: &str, identity: &RemoteIdentity, headers: &HeaderMap) -> Result<()> {
        let (target, asked) = (super::super::parse_url(&identity.url)?, super::super::parse_url(url)?);
        self.options.destinations.check(&target)?;
        let for_target = super::super::headers_for(&target, &asked, headers, self.options.credentials_after_redirect);
        let last = identity.size.checked_sub(1).ok_or_else(|| Error::Io(std::io::Error::other("an empty archive")))?;
        let ranged = super::super::Ranged {
            url: &target,
            headers: &for_target,
            validator: &identity.validator,
            size: identity.size,
        };
        let follow = super::follow_of(&self.options);
        let (body, _) = ranged.range_following(&self.client, (last, last + 1), &self.counter, follow.as_ref()).await?;
        // The one byte, read so the connection goes back to the pool.
        let _ = http_body_util::BodyExt::collect(body).await;
        Ok(())
    }

    /// Bytes `skip..skip + len` of the entry at `path` of the archive kept under `key`
    /// (see [`index_keyed`](Self::index_keyed)), read directly with one range request
    /// because a whole read verified the entry before ([`VerifiedWindow`]): the index is
    /// found as for [`open_entry_keyed_async`](Self::open_entry_keyed_async) (no request
    /// when it is in memory).
    ///
    /// `Ok(None)`: `verified` is not for the archive as it is now: another version in the
    /// index, or the read failed in a way that says the index may be stale (the archive
    /// changed, moved, or an old index lacks the entry; the index is then dropped, from
    /// memory and disk, as [`open_entry_keyed_async`](Self::open_entry_keyed_async) does):
    /// read the entry whole, which verifies it again. A window past the entry's size is an
    /// [`InvalidInput`](std::io::ErrorKind::InvalidInput) error.
    #[allow(clippy::too_many_arguments)]
    pub async fn open_verified_window_async(
        self: &Arc<Self>,
        key: &str,
        url: &str,
        path: &ArtifactPath,
        headers: &HeaderMap,
        verified: &VerifiedEntry,
        skip: u64,
        len: u64,
    ) -> Result<Option<VerifiedWindow>> {
        let at = DiskKey::Given { key, url };
        let found = self.in_memory(at);
        let load = Load::new(found.is_some() || self.disk.as_ref().is_some_and(|d| d.exists(&at)), false);
        let opened = async {
            let (index, identity) = match found {
                Some(found) => found,
                None => self.indexed_kept(at, &self.async_options(headers), &load).await?,
            };
            load.read(&identity);
            let entry = located(at.url(), &self.options, path, headers, &index, identity)?;
            self.options.destinations.check(&entry.url)?;
            VerifiedWindow::open(&self.client, &entry, verified, (skip, len), self.counter.clone()).await
        };
        match opened.await {
            Err(e) if load.kept() && self.stale(at, &e) => {
                self.forget_read(at, load.version().as_ref());
                Ok(None)
            }
            other => other,
        }
    }

    /// Like [`index_with`](Self::index_with), on async I/O: no request when the index is
    /// cached, else the suffix read and usually at most one more, on the caller's runtime.
    /// Never a whole download (a server that ignores `Range` is
    /// [`Unsupported`](crate::Unsupported)). One load per archive at a time and
    /// [`ASYNC_LOADS`](super::ASYNC_LOADS) at once: other callers wait without a thread.
    /// The disk cache is read and written, and the index built, on tokio's blocking pool.
    /// Dropping the future stops the load; what it fetched is not kept.
    pub async fn index_async(self: &Arc<Self>, url: &str, headers: &HeaderMap) -> Result<Arc<Index>> {
        Ok(self.indexed_async(DiskKey::Url(url), &self.async_options(headers)).await?.0)
    }

    /// Like [`index_keyed`](Self::index_keyed), on async I/O.
    pub async fn index_keyed_async(self: &Arc<Self>, key: &str, url: &str, headers: &HeaderMap) -> Result<Arc<Index>> {
        Ok(self.indexed_async(DiskKey::Given { key, url }, &self.async_options(headers)).await?.0)
    }

    /// The options of an async read for a caller sending `headers`: entries are read by
    /// range, so a whole download would not serve them.
    fn async_options(&self, headers: &HeaderMap) -> HttpOptions {
        HttpOptions { headers: headers.clone(), spool_without_range: false, ..self.options.clone() }
    }

    /// The entry at `path` of the archive `at`; with `forget`, a stale index (see `stale`)
    /// is dropped and the entry looked up again once.
    async fn open_entry_async_at(
        self: &Arc<Self>,
        at: DiskKey<'_>,
        path: &ArtifactPath,
        headers: &HeaderMap,
        forget: bool,
    ) -> Result<AsyncEntry> {
        let mut retried = false;
        loop {
            let found = self.in_memory(at);
            // Without `forget`, the caller may be one no one has said may read the archive:
            // a shared index is kept only once its read succeeded.
            let load = Load::new(found.is_some() || self.disk.as_ref().is_some_and(|d| d.exists(&at)), !forget);
            let opened = async {
                let (index, identity) = match found {
                    Some(found) => found,
                    None => self.indexed_kept(at, &self.async_options(headers), &load).await?,
                };
                load.read(&identity);
                let entry = located(at.url(), &self.options, path, headers, &index, identity.clone())?;
                self.options.destinations.check(&entry.url)?;
                let opened = AsyncEntry::open(&self.client, &entry, self.counter.clone()).await?;
                if let Some(bytes) = load.held() {
                    self.keep_shared(at, index, identity, bytes).await;
                }
                Ok(opened)
            };
            match opened.await {
                Err(e) if forget && load.kept() && !retried && self.stale(at, &e) => {
                    self.forget_read(at, load.version().as_ref());
                    retried = true;
                }
                other => return other,
            }
        }
    }

    /// The index and identity of the archive `at` if they are in memory, without waiting
    /// for a load in progress.
    pub(super) fn in_memory(&self, at: DiskKey<'_>) -> Option<(Arc<Index>, RemoteIdentity)> {
        self.cache.try_get(&at.memory()).map(|found| reading_at(at, found))
    }

    /// The index and identity of the archive `at`: in memory, or loaded (from the disk
    /// cache, else the server) by one caller at a time per key and [`ASYNC_LOADS`](super::ASYNC_LOADS)
    /// at once, the others waiting without a thread.
    async fn indexed_async(
        self: &Arc<Self>,
        at: DiskKey<'_>,
        options: &HttpOptions,
    ) -> Result<(Arc<Index>, RemoteIdentity)> {
        self.indexed_kept(at, options, &Load::default()).await
    }

    /// [`indexed_async`](Self::indexed_async), saying in `load` how it went (see [`Load`]).
    async fn indexed_kept(
        self: &Arc<Self>,
        at: DiskKey<'_>,
        options: &HttpOptions,
        load: &Load,
    ) -> Result<(Arc<Index>, RemoteIdentity)> {
        if let Some(found) = self.in_memory(at) {
            load.kept.store(true, Relaxed);
            return Ok(found);
        }
        let key = at.memory();
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
            Gate { gate: gates.entry(key.clone()).or_default().clone(), archives: self, key: &key }
        };
        let _turn = gate.gate.lock().await;
        self.load_async(at, options, &key, load).await
    }

    async fn load_async(
        self: &Arc<Self>,
        at: DiskKey<'_>,
        options: &HttpOptions,
        key: &str,
        load: &Load,
    ) -> Result<(Arc<Index>, RemoteIdentity)> {
        // Loaded by the caller this one waited for?
        if let Some(found) = self.in_memory(at) {
            load.kept.store(true, Relaxed);
            return Ok(found);
        }
        let cancelled = |e: tokio::task::JoinError| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => Error::Io(std::io::Error::other("loading the index was cancelled")),
        };
        let closed = || Error::Io(std::io::Error::other("loading the index was cancelled"));
        let _turn = self.loads.acquire().await.map_err(|_| closed())?;
        if self.disk.is_some() {
            let (this, owned) = (self.clone(), at.owned());
            let found =
                tokio::task::spawn_blocking(move || this.read_disk(owned.borrowed())).await.map_err(cancelled)?;
            if let Some((index, identity)) = found {
                load.kept.store(true, Relaxed);
                if self.cache.insert(key, index.clone(), identity.clone()) {
                    // Read from another process's fetch, of any age: its misses are not fresh.
                    self.cache.unstamp(key);
                }
                return Ok((index, identity));
            }
        }
        if let Some((index, identity, bytes)) = self.read_shared(at, options.max_buffered).await {
            load.kept.store(true, Relaxed);
            if load.hold_shared {
                *load.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(bytes);
            } else {
                self.keep_shared(at, index.clone(), identity.clone(), bytes).await;
            }
            return Ok((index, identity));
        }
        let (cd, source) = self.fetch(at, options).await?;
        // Building the index and writing the disk cache take a moment: off the workers.
        let share = self.shared.is_some() && matches!(at, DiskKey::Given { .. });
        let (this, owned, options) = (self.clone(), at.owned(), options.clone());
        let (index, identity, encoded) =
            tokio::task::spawn_blocking(move || this.keep(owned.borrowed(), &options, cd, &source, share))
                .await
                .map_err(cancelled)??;
        self.cache.insert(key, index.clone(), identity.clone());
        if let (Some(encoded), Some(shared)) = (encoded, &self.shared) {
            self.shared_stale.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
            let (shared, counts, name) = (shared.clone(), self.shared_counts.clone(), index_name(&at.text()));
            tokio::spawn(async move { counts.wrote(&super::kept::put_within(shared.put(&name, encoded)).await) });
        }
        Ok((index, identity))
    }
}

/// A caller's place at one key's gate: the gate leaves the map with its last caller, even
/// one whose future was dropped while it waited or loaded.
struct Gate<'a> {
    gate: Arc<tokio::sync::Mutex<()>>,
    archives: &'a RemoteArchives,
    key: &'a str,
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        let mut gates = self.archives.gates.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&self.gate) == 2 {
            gates.remove(self.key); // no one else waits on it
        }
    }
}
