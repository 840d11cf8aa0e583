//! Remote archives with their indexes cached: the second file of an archive costs one
//! request, and a changed archive is read again from scratch, once.
#![forbid(unsafe_code)]

mod blocking;
#[cfg(feature = "tokio")]
mod kept;
#[cfg(feature = "tokio")]
mod nonblocking;

#[cfg(feature = "tokio")]
pub use kept::SHARED_WAIT;

use std::sync::Arc;

use hyper::header::HeaderMap;

use super::disk::{DiskCacheStats, DiskKey};
use super::{HttpClient, HttpOptions, HttpSource, RemoteIdentity};
use crate::cache::IndexCache;
use crate::directory::{CentralDirectory, DirectoryRead, DirectoryStep};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::path::ArtifactPath;
use crate::source::{ReadCounter, ReadStats, Source};

/// How long an index answers "no such entry" by itself, by default
/// ([`HttpOptions::negative_fresh`](super::HttpOptions::negative_fresh)).
pub const NEGATIVE_FRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// Index loads the async methods ([`RemoteArchives::open_entry_async`]) make at once: the
/// others wait their turn, and usually find the index loaded when it comes.
#[cfg(feature = "tokio")]
pub const ASYNC_LOADS: usize = 4;

/// Opens remote archives, keeping each one's index (in memory, bounded, and optionally on
/// disk) so that later look-ups skip straight to the entry.
///
/// What an index is kept under: the URL as given (query and all) for the methods that take
/// a URL, in memory; on disk, that URL without its credentials and signatures (other
/// parameters, such as `job=`, kept). The `*_keyed` methods take the key instead (an
/// archive's identity, as a proxy names it: never a caller's URL or credential), in memory
/// and on disk. Two URLs of one archive are two entries; one URL is one archive, checked
/// against the archive's validator (`If-Match`, or `If-Range` with `Last-Modified`) on
/// every read, and read afresh once when that fails.
///
/// One [`HttpClient`] makes every request, index loads and entry reads alike. Safe to make,
/// use from async code (the `_async` methods, which load indexes on the caller's runtime
/// and read the disk cache on its blocking pool) and drop inside or outside a tokio
/// runtime. Call the blocking methods where blocking is allowed (not on a runtime's worker):
/// they drive the same requests on the client's private runtime.
#[derive(Debug)]
pub struct RemoteArchives {
    client: HttpClient,
    /// Index loads at once for async callers ([`ASYNC_LOADS`]).
    #[cfg(feature = "tokio")]
    loads: tokio::sync::Semaphore,
    /// One async load per key at a time: the others wait for it and take its index.
    #[cfg(feature = "tokio")]
    gates: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    options: HttpOptions,
    cache: IndexCache<RemoteIdentity>,
    disk: Option<super::disk::DiskCache>,
    /// Indexes and verdicts shared with other processes ([`with_shared_cache`](Self::with_shared_cache)).
    #[cfg(feature = "tokio")]
    shared: Option<Arc<dyn super::SharedCache>>,
    #[cfg(feature = "tokio")]
    shared_counts: Arc<super::shared::SharedCounts>,
    /// The versions of shared indexes found stale here (by memory key): the shared cache
    /// may still hold them until a fresh read replaces them, and they are not read again.
    #[cfg(feature = "tokio")]
    shared_stale: std::sync::Mutex<std::collections::HashMap<String, super::Validator>>,
    counter: Arc<ReadCounter>,
    /// Archives downloaded whole (a server that ignores `Range`, with
    /// `spool_without_range`): their entries are read from the copy, which no range read of
    /// the server could give. The last [`SPOOLED_KEPT`] are kept, each for [`SPOOLED_FOR`]
    /// and for the caller that downloaded it (the same cache key and headers) only.
    spooled: std::sync::Mutex<std::collections::VecDeque<Spooled>>,
}

/// A whole download: for which key and headers, since when, and the copy.
#[derive(Debug)]
struct Spooled {
    key: String,
    headers: HeaderMap,
    at: std::time::Instant,
    copy: HttpSource,
}

/// Stale versions of shared indexes remembered at most (then forgotten all at once: one
/// more stale read each).
#[cfg(feature = "tokio")]
const STALE_KEPT: usize = 4096;

/// Whole downloads a [`RemoteArchives`] keeps (each a temporary file, gone when dropped).
const SPOOLED_KEPT: usize = 4;

/// How long a whole download answers for its archive without asking the server again.
const SPOOLED_FOR: std::time::Duration = std::time::Duration::from_secs(60);

impl RemoteArchives {
    /// With the default cache bound and no disk cache. Fails only if the client cannot be
    /// made (an extra root certificate that is not one).
    pub fn new(options: HttpOptions) -> Result<RemoteArchives> {
        Ok(RemoteArchives::with_client(HttpClient::new(&options)?, options))
    }

    /// Like [`new`](Self::new), making every request with `client` (shared with other
    /// readers, or made with other options than these: its own timeouts, roots, proxies and
    /// name rules then apply, and `options` say the rest).
    pub fn with_client(client: HttpClient, options: HttpOptions) -> RemoteArchives {
        RemoteArchives {
            client,
            #[cfg(feature = "tokio")]
            loads: tokio::sync::Semaphore::new(ASYNC_LOADS),
            #[cfg(feature = "tokio")]
            gates: Default::default(),
            options,
            cache: IndexCache::default(),
            disk: None,
            #[cfg(feature = "tokio")]
            shared: None,
            #[cfg(feature = "tokio")]
            shared_counts: Arc::default(),
            #[cfg(feature = "tokio")]
            shared_stale: Default::default(),
            counter: Arc::default(),
            spooled: Default::default(),
        }
    }

    /// The client every request is made with.
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// Keeps indexes in `dir` too, so another process reads them (keyed by the URL with its
    /// credentials and signatures dropped and its other parameters, such as `job=`, kept,
    /// or by the key given to the `*_keyed` methods; checked against the server's validator
    /// on use), at most [`DEFAULT_DISK_CACHE_BYTES`](super::DEFAULT_DISK_CACHE_BYTES) of
    /// them.
    pub fn with_disk_cache(self, dir: impl Into<std::path::PathBuf>) -> RemoteArchives {
        self.with_disk_cache_bytes(dir, super::DEFAULT_DISK_CACHE_BYTES)
    }

    /// Like [`with_disk_cache`](Self::with_disk_cache), keeping at most `max_bytes` of
    /// index files in `dir`: past it, the least recently used are removed. The directory's
    /// own files are counted here, once (a directory of many indexes takes a moment); only
    /// the cache's files (`<16 hex digits>.idx`) are counted or removed, and the bound is
    /// this process's: give each process its own directory.
    pub fn with_disk_cache_bytes(mut self, dir: impl Into<std::path::PathBuf>, max_bytes: u64) -> RemoteArchives {
        self.disk = Some(super::disk::DiskCache::new(dir.into(), max_bytes));
        self
    }

    /// Shares the indexes kept under given keys (the `*_keyed` methods), and the verdicts
    /// kept with [`keep_verdict`](Self::keep_verdict), with other processes through
    /// `shared` (see [`SharedCache`](super::SharedCache)): an index neither in memory nor
    /// on disk is looked for there before the server's tail is read, and one read from the
    /// server is written there (in the background: the read does not wait for it). What a
    /// shared object says is checked as the disk cache's is: its key, and the archive's
    /// validator on every read. Read and written by the async methods only. Indexes kept
    /// under URLs are never shared.
    #[cfg(feature = "tokio")]
    pub fn with_shared_cache(mut self, shared: Arc<dyn super::SharedCache>) -> RemoteArchives {
        self.shared = Some(shared);
        self
    }

    /// What the shared cache has answered and been given, if there is one.
    #[cfg(feature = "tokio")]
    pub fn shared_stats(&self) -> Option<super::SharedCacheStats> {
        self.shared.as_ref().map(|_| self.shared_counts.snapshot())
    }

    /// Where this reader's requests may go (its options' [`Destinations`](super::Destinations)).
    pub fn destinations(&self) -> &super::Destinations {
        &self.options.destinations
    }

    /// What the disk cache holds and has removed, if there is one.
    pub fn disk_stats(&self) -> Option<DiskCacheStats> {
        self.disk.as_ref().map(|d| d.stats())
    }

    /// With a cache bounded to `bytes`.
    pub fn with_cache_capacity(mut self, bytes: usize) -> RemoteArchives {
        self.cache = IndexCache::new(bytes);
        self
    }

    /// Requests made and body bytes received by every source opened here.
    pub fn stats(&self) -> ReadStats {
        self.counter.snapshot()
    }

    /// The in-memory cache.
    pub fn cache(&self) -> &IndexCache<RemoteIdentity> {
        &self.cache
    }

    /// Whether `e`, met with the cached index of `at`, says that index may be stale: the
    /// archive changed, its remembered URL (a presigned one, say) stopped answering, or it
    /// lacks the entry and was loaded more than the options' `negative_fresh` ago (the URL
    /// may name a newer archive now, as by-ref downloads do). A refusal (`401`, `403`, and
    /// `404`, which GitLab answers a caller who may not see a project with) is the caller's alone, and a failure to connect or a timeout the network's, when it comes from
    /// the origin asked: the index others read (and the disk's copy) stays.
    fn stale(&self, at: DiskKey<'_>, e: &Error) -> bool {
        use crate::error::HttpProblem::{Connect, Status, Timeout};
        match e {
            // Unless the index's reads go elsewhere (a presigned URL the archive's own URL
            // redirected to): a signature that expired is refused with 403 there, an object
            // store may have moved, and the redirect must be followed again.
            Error::Http { problem: Status(401 | 403 | 404) | Connect(_) | Timeout(_), .. } => {
                let read_at = self.cache.get(&at.memory()).map(|(_, identity)| identity.url);
                let origin = |url: &str| super::parse_url(url).ok().map(|u| u.origin());
                read_at.is_some_and(|read_at| origin(&read_at) != origin(at.url()))
            }
            Error::NotFound { .. } => !self.cache.loaded_within(&at.memory(), self.options.negative_fresh),
            e => retryable(e),
        }
    }

    fn is_cached(&self, at: DiskKey<'_>) -> bool {
        self.cache.get(&at.memory()).is_some() || self.disk.as_ref().is_some_and(|d| d.exists(&at))
    }

    /// The whole download of the archive under `key` that a caller sending `headers` made
    /// less than [`SPOOLED_FOR`] ago, if there is one.
    fn spooled_copy(&self, key: &str, headers: &HeaderMap) -> Option<HttpSource> {
        let mut spooled = self.spooled.lock().unwrap_or_else(|p| p.into_inner());
        spooled.retain(|s| s.at.elapsed() < SPOOLED_FOR);
        spooled.iter().find(|s| s.key == key && s.headers == *headers).map(|s| s.copy.clone())
    }

    /// [`forget`](Self::forget) the index of `at` after a read of version `read` failed,
    /// unless memory holds another version by now (another caller read it afresh
    /// meanwhile: that one is not stale).
    #[cfg(feature = "tokio")]
    fn forget_read(&self, at: DiskKey<'_>, read: Option<&super::Validator>) {
        let now = self.cache.get(&at.memory()).map(|(_, identity)| identity.validator);
        if let (Some(read), Some(now)) = (read, now.as_ref())
            && read != now
        {
            return;
        }
        self.forget(at);
    }

    fn forget(&self, at: DiskKey<'_>) {
        let key = at.memory();
        self.spooled.lock().unwrap_or_else(|p| p.into_inner()).retain(|s| s.key != key);
        #[cfg(feature = "tokio")]
        if let (DiskKey::Given { .. }, Some(_), Some((_, identity))) = (at, &self.shared, self.cache.get(&key)) {
            let mut stale = self.shared_stale.lock().unwrap_or_else(|p| p.into_inner());
            if stale.len() >= STALE_KEPT {
                stale.clear();
            }
            stale.insert(key.clone(), identity.validator);
        }
        self.cache.remove(&at.memory());
        if let Some(disk) = &self.disk {
            disk.remove(&at);
        }
    }

    /// The index and identity of the archive `at` from the disk cache, if it holds them.
    fn read_disk(&self, at: DiskKey<'_>) -> Option<(Arc<Index>, RemoteIdentity)> {
        let (cd, identity) = self.disk.as_ref()?.load(&at)?;
        Index::build(cd).ok().map(|index| (Arc::new(index), identity))
    }

    /// The central directory of the archive `at`, read from the server on async I/O: the
    /// suffix read, then what the directory's reading asks for (usually nothing more, or one
    /// range; a few for an end record whose directory size is wrong), all of it held within
    /// the options' `max_buffered`.
    async fn fetch(&self, at: DiskKey<'_>, options: &HttpOptions) -> Result<(CentralDirectory, HttpSource)> {
        let client = self.client.clone();
        let source = HttpSource::open_async_counted(client, at.url(), options, self.counter.clone()).await?;
        if source.is_spooled() {
            // A local copy: read as a file.
            return Ok((CentralDirectory::read(&source)?, source));
        }
        let mut reading = DirectoryRead::new(source.tail().clone(), source.len());
        loop {
            match reading.step()? {
                DirectoryStep::Done(cd) => return Ok((cd, source)),
                DirectoryStep::Want { offset, len } => {
                    // What the reading holds stays within the bound of one buffered read.
                    let held = reading.held().saturating_add(len);
                    if held > options.max_buffered {
                        let problem = crate::error::HttpProblem::TooLarge { len: held, limit: options.max_buffered };
                        return Err(super::http_error(source.url(), problem));
                    }
                    let len = usize::try_from(len).unwrap_or(usize::MAX);
                    reading.feed(offset, source.read_bytes_async(offset, len).await?);
                }
            }
        }
    }

    /// Keeps what a fetch of the archive `at` brought: a whole download for its caller, the
    /// directory on disk; the index built. With `share`, the index file's bytes too (for a
    /// shared cache).
    fn keep(
        &self,
        at: DiskKey<'_>,
        options: &HttpOptions,
        cd: CentralDirectory,
        source: &HttpSource,
        share: bool,
    ) -> Result<(Arc<Index>, RemoteIdentity, Option<bytes::Bytes>)> {
        let identity = source.identity();
        if source.is_spooled() {
            let mut spooled = self.spooled.lock().unwrap_or_else(|p| p.into_inner());
            let (key, headers) = (at.memory(), options.headers.clone());
            spooled.retain(|s| !(s.key == key && s.headers == headers));
            spooled.push_back(Spooled { key, headers, at: std::time::Instant::now(), copy: source.clone() });
            while spooled.len() > SPOOLED_KEPT {
                spooled.pop_front();
            }
        }
        let encoded = (self.disk.is_some() || share).then(|| super::disk::encode(&at, &cd, &identity));
        if let (Some(disk), Some(encoded)) = (&self.disk, &encoded) {
            disk.store_encoded(&at, encoded);
        }
        let shared = encoded.filter(|_| share).map(bytes::Bytes::from);
        Ok((Arc::new(Index::build(cd)?), identity, shared))
    }
}

/// A cached index and identity as read `at`: with a given key, from the URL given now
/// (another caller's URL, a presigned one say, is not this caller's to read).
fn reading_at(at: DiskKey<'_>, (index, identity): (Arc<Index>, RemoteIdentity)) -> (Arc<Index>, RemoteIdentity) {
    match at {
        DiskKey::Url(_) => (index, identity),
        DiskKey::Given { url, .. } => (index, RemoteIdentity { url: url.to_owned(), ..identity }),
    }
}

/// How a range read with `options` follows a redirect of its own: as its first read would
/// (`max_redirects`, the destination rules, the credentials rule); not at all without
/// redirects.
#[cfg(feature = "tokio")]
fn follow_of(options: &HttpOptions) -> Option<super::Follow> {
    (options.max_redirects > 0).then(|| super::Follow {
        destinations: options.destinations.clone(),
        max: options.max_redirects,
        on_origin: options.credentials_after_redirect,
    })
}

/// The entry at `path` in `index`, with the URL and headers its ranges are read with, read
/// at `url` with `options` (their credentials rule, and the redirects a read may follow).
#[cfg(feature = "tokio")]
fn located(
    url: &str,
    options: &HttpOptions,
    path: &ArtifactPath,
    headers: &HeaderMap,
    index: &Index,
    identity: RemoteIdentity,
) -> Result<super::RemoteEntry> {
    let entry = crate::archive::servable(index.find(path.as_bytes()), path)?;
    let (target, asked) = (super::parse_url(&identity.url)?, super::parse_url(url)?);
    let follow = follow_of(options);
    Ok(super::RemoteEntry {
        entry,
        data_limit: index.central_directory().data_limit(),
        headers: super::headers_for(&target, &asked, headers, options.credentials_after_redirect),
        url: target,
        identity,
        follow,
    })
}

/// Errors after which a cached index may be stale: the archive changed, the URL the cache
/// remembered (a presigned one, say) stopped answering, or the index has no such entry (the
/// URL may name a newer archive now, as by-ref downloads do).
fn retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::Changed { .. }
            | Error::Http { .. }
            | Error::Corrupt(_)
            | Error::NotFound { .. }
            | Error::ArchiveNotFound { .. }
    )
}
