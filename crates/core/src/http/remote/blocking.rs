//! The blocking face of [`RemoteArchives`]: archives, entries and indexes read on the
//! calling thread (the async face is in `nonblocking`).
#![forbid(unsafe_code)]

use std::sync::Arc;

use hyper::header::HeaderMap;

#[cfg(feature = "tokio")]
use super::located;
use super::{HttpOptions, HttpSource, RemoteArchives, RemoteIdentity, reading_at};
use crate::archive::Archive;
use crate::error::Result;
use crate::http::disk::DiskKey;
use crate::index::Index;
use crate::path::ArtifactPath;
use crate::reader::EntryReader;

impl RemoteArchives {
    /// The archive at `url`, with its index: no request when the index is cached, else the
    /// suffix request and usually at most one more for the rest of the central directory
    /// (a few when the end record's directory size is wrong).
    pub fn open(&self, url: &str) -> Result<Archive<HttpSource>> {
        self.open_as(DiskKey::Url(url), &self.options)
    }

    pub(super) fn open_as(&self, at: DiskKey<'_>, options: &HttpOptions) -> Result<Archive<HttpSource>> {
        let (index, identity) = self.indexed(at, options)?;
        if let Some(copy) = self.spooled_copy(&at.memory(), &options.headers) {
            return Ok(Archive::with_index(copy, index));
        }
        let source =
            HttpSource::known_counted(self.client.clone(), at.url(), &identity, options, self.counter.clone())?;
        Ok(Archive::with_index(source, index))
    }

    /// The index and identity of the archive `at`: cached, or loaded. With a given key, a
    /// cached identity's URL (another caller's, perhaps) is replaced by the one to read now;
    /// one loaded now keeps the end of its own redirects.
    pub(super) fn indexed(&self, at: DiskKey<'_>, options: &HttpOptions) -> Result<(Arc<Index>, RemoteIdentity)> {
        let (loaded, disk_hit) = (std::cell::Cell::new(false), std::cell::Cell::new(false));
        let key = at.memory();
        let found = self.cache.get_or_load(&key, || {
            loaded.set(true);
            let (index, identity, disk) = self.load(at, options)?;
            disk_hit.set(disk);
            Ok((index, identity))
        })?;
        if disk_hit.get() {
            // Read from another process's fetch, of any age: its misses are not fresh.
            self.cache.unstamp(&key);
        }
        Ok(if loaded.get() { found } else { reading_at(at, found) })
    }

    /// Streams the entry at `path` of the archive at `url`: one request when the index is
    /// cached, two or three when cold. If the archive changed since it was indexed, the
    /// cached URL no longer answers, or the cached index lacks the entry, starts over once
    /// with a fresh index.
    pub fn open_entry(&self, url: &str, path: &ArtifactPath) -> Result<EntryReader> {
        self.open_entry_as(DiskKey::Url(url), path, &self.options)
    }

    /// Like [`open_entry`](Self::open_entry), sending `headers` (one caller's credentials)
    /// instead of the configured ones. The indexes are shared by every caller, so a proxy
    /// calls this only for a caller the archive's owner has already let read `url`.
    pub fn open_entry_with(&self, url: &str, path: &ArtifactPath, headers: &HeaderMap) -> Result<EntryReader> {
        let options = HttpOptions { headers: headers.clone(), ..self.options.clone() };
        self.open_entry_as(DiskKey::Url(url), path, &options)
    }

    pub(super) fn open_entry_as(
        &self,
        at: DiskKey<'_>,
        path: &ArtifactPath,
        options: &HttpOptions,
    ) -> Result<EntryReader> {
        let cached = self.is_cached(at);
        match self.try_open_entry(at, path, options) {
            Err(e) if cached && self.stale(at, &e) => {
                self.forget(at);
                self.try_open_entry(at, path, options)
            }
            other => other,
        }
    }

    pub(super) fn try_open_entry(
        &self,
        at: DiskKey<'_>,
        path: &ArtifactPath,
        options: &HttpOptions,
    ) -> Result<EntryReader> {
        let archive = self.open_as(at, options)?;
        let entry = archive.find(path)?;
        archive.reader(&entry)
    }

    /// Finds the entry at `path` of the archive at `url` in its index, sending `headers`
    /// (one caller's credentials) if the index has to be read: no request when it is
    /// cached. Blocks while it loads; [`open_entry_async`](Self::open_entry_async) reads
    /// the entry on async I/O.
    #[cfg(feature = "tokio")]
    pub fn locate_with(&self, url: &str, path: &ArtifactPath, headers: &HeaderMap) -> Result<crate::http::RemoteEntry> {
        self.locate_at(DiskKey::Url(url), path, headers)
    }

    #[cfg(feature = "tokio")]
    pub(super) fn locate_at(
        &self,
        at: DiskKey<'_>,
        path: &ArtifactPath,
        headers: &HeaderMap,
    ) -> Result<crate::http::RemoteEntry> {
        // Its entry is read by range on async I/O: a whole download would not serve it
        // (a server that ignores `Range` is `Unsupported` here).
        let options = HttpOptions { headers: headers.clone(), spool_without_range: false, ..self.options.clone() };
        let (index, identity) = self.indexed(at, &options)?;
        located(at.url(), &options, path, &options.headers, &index, identity)
    }

    /// The index of the archive at `url` (every entry of its central directory), sending
    /// `headers` (one caller's credentials) if it has to be read: no request when it is
    /// cached. Blocks while it loads. As with [`locate_with`](Self::locate_with), a proxy
    /// calls this only for a caller the archive's owner has already let read `url`.
    pub fn index_with(&self, url: &str, headers: &HeaderMap) -> Result<Arc<Index>> {
        let options = HttpOptions { headers: headers.clone(), ..self.options.clone() };
        Ok(self.indexed(DiskKey::Url(url), &options)?.0)
    }

    /// Like [`index_with`](Self::index_with), with the index kept (in memory and on disk)
    /// under `key` instead of the URL: the archive's identity as a proxy names it (its
    /// upstream, project and job), never a caller's URL, query or credential. `key` must
    /// name one archive: whatever URL is given with it later is read as that archive, and
    /// only the archive's validator (`ETag` or `Last-Modified`, sent as `If-Match` or
    /// `If-Range`) tells a changed one; a server that sends neither is trusted to keep
    /// the archive under the key unchanged. No URL is written to disk: `url` (a presigned
    /// URL, say) is read this time only, and a cached index is read at the `url` given
    /// with each call (its redirects are followed again only when the index is loaded
    /// afresh, after such a read failed).
    pub fn index_keyed(&self, key: &str, url: &str, headers: &HeaderMap) -> Result<Arc<Index>> {
        let options = HttpOptions { headers: headers.clone(), ..self.options.clone() };
        Ok(self.indexed(DiskKey::Given { key, url }, &options)?.0)
    }

    /// Whether the index kept under `key` ([`index_keyed`](Self::index_keyed)) is known here,
    /// in memory or in the disk cache: a read of one of its entries then costs one request,
    /// at the URL given with it.
    pub fn has_index_keyed(&self, key: &str) -> bool {
        let at = DiskKey::Given { key, url: "" };
        self.cache.contains(&at.memory()) || self.disk.as_ref().is_some_and(|d| d.exists(&at))
    }

    /// The validator of the archive at `url` as cached (after [`open_entry`](Self::open_entry)
    /// read it): what identifies the version the entry came from.
    pub fn identity(&self, url: &str) -> Option<RemoteIdentity> {
        self.cache.get(url).map(|(_, identity)| identity)
    }

    /// The index and identity of the archive `at`, from the disk cache (then `true`) or
    /// fetched.
    pub(super) fn load(&self, at: DiskKey<'_>, options: &HttpOptions) -> Result<(Arc<Index>, RemoteIdentity, bool)> {
        if let Some((index, identity)) = self.read_disk(at) {
            return Ok((index, identity, true));
        }
        let (cd, source) = self.client.block_on(self.fetch(at, options))??;
        let (index, identity, _) = self.keep(at, options, cd, &source, false)?;
        Ok((index, identity, false))
    }
}
