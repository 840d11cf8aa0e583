//! Small entries' verified bytes kept in memory, by archive version and path, with the
//! headers they are answered with: a hot file is answered without reading anything.
//!
//! Bounded by bytes (each entry weighs its bytes and a fixed overhead); what goes first when
//! the bound is passed is decided by `quick_cache`'s S3-FIFO policy, which keeps entries
//! asked for more than once over one-off reads.

use std::sync::Arc;
use std::time::SystemTime;

use artifact_core::ArtifactPath;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;

use crate::delivery::{Plan, Representation};
use crate::entry::gzip_representation;
use crate::error::ApiResult;

/// The default bound: 64 MiB.
pub const DEFAULT_ENTRY_CACHE_BYTES: usize = 64 << 20;

/// Bytes counted per entry beside its own (key, headers and the plain answer's headers,
/// bookkeeping).
const OVERHEAD: u64 = 1024;

/// One small entry, verified, as it is answered.
#[derive(Debug)]
pub struct Hot {
    /// The entry's bytes, verified.
    pub bytes: Bytes,
    /// The strong entity tag, quoted.
    pub etag: String,
    /// `Last-Modified`, when the answers carry one.
    pub last_modified: Option<SystemTime>,
    /// `Content-Type`, `Content-Disposition` and the like.
    pub headers: HeaderMap,
    /// A deflated entry's compressed size: such an entry is offered as gzip passthrough.
    pub compressed: Option<u64>,
    /// The gzip passthrough member (header, the entry's own deflate bytes, trailer), kept
    /// once a request asked for it. A kept entry never changes (its weight in the memory
    /// must not): the member comes with a new one in its place.
    pub gzip: Option<Bytes>,
    /// Every header of the plain `200` (validators, length and all), made once: a request
    /// with no condition, range or gzip to decide is answered with a copy of them.
    plain: HeaderMap,
}

impl Hot {
    /// A kept entry of `bytes` answered with these validators and headers.
    pub fn new(bytes: Bytes, etag: String, last_modified: Option<SystemTime>, headers: HeaderMap) -> Hot {
        let mut hot =
            Hot { bytes, etag, last_modified, headers, compressed: None, gzip: None, plain: HeaderMap::new() };
        hot.plain = std::mem::take(hot.identity().full(None).headers_mut());
        hot
    }

    /// Whether `requested` leaves nothing to decide: no precondition, no range, and no
    /// gzip form to choose.
    fn plain_request(&self, requested: &HeaderMap) -> bool {
        use axum::http::header;
        let decided = [
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_UNMODIFIED_SINCE,
            header::RANGE,
        ];
        !decided.iter().any(|h| requested.contains_key(h))
            && (self.compressed.is_none() || !requested.contains_key(header::ACCEPT_ENCODING))
    }

    /// The representation of the entry's own bytes.
    fn identity(&self) -> Representation {
        Representation {
            len: self.bytes.len() as u64,
            etag: self.etag.clone(),
            last_modified: self.last_modified,
            headers: self.headers.clone(),
            ranges: true,
        }
    }

    /// Answers a `GET` (or `HEAD`) from memory as an entry read from its archive is
    /// answered: preconditions, `304`, one range (several: the whole entry), gzip
    /// passthrough for a deflated entry when the client takes it. `None` when the request
    /// wants the gzip form and it is not kept yet.
    pub fn answer(&self, requested: &HeaderMap, head: bool) -> Option<ApiResult<Response>> {
        if self.plain_request(requested) {
            let mut resp = Response::new(if head { Body::empty() } else { Body::from(self.bytes.clone()) });
            *resp.headers_mut() = self.plain.clone();
            return Some(Ok(resp));
        }
        let identity = self.identity();
        if let Some(compressed) = self.compressed
            && let Some(gz) = gzip_representation(&identity, requested, compressed)
        {
            return match gz.plan(requested) {
                Err(e) => Some(Err(e)),
                Ok(Plan::NotModified) => Some(Ok(gz.not_modified())),
                Ok(_) if head => Some(Ok(gz.full(None))),
                Ok(_) => self.gzip.as_ref().map(|body| Ok(gz.full(Some(Body::from(body.clone()))))),
            };
        }
        let len = identity.len;
        Some(identity.plan(requested).map(|plan| match plan {
            Plan::NotModified => identity.not_modified(),
            Plan::Partial(r) if r.len() == 1 && r[0] != (0, len) => {
                let (s, e) = r[0];
                identity.partial((s, e), (!head).then(|| Body::from(self.bytes.slice(s as usize..e as usize))))
            }
            _ => identity.full((!head).then(|| Body::from(self.bytes.clone()))),
        }))
    }
}

/// An archive version and a path.
type Key = (Arc<str>, Box<str>);

#[derive(Debug, Clone, Copy)]
struct Weight;

impl quick_cache::Weighter<Key, Arc<Hot>> for Weight {
    fn weight(&self, key: &Key, hot: &Arc<Hot>) -> u64 {
        let gzip = hot.gzip.as_ref().map_or(0, Bytes::len);
        (hot.bytes.len() + gzip + key.0.len() + key.1.len()) as u64 + OVERHEAD
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
pub struct HotEntries {
    cache: Option<quick_cache::sync::Cache<Key, Arc<Hot>, Weight>>,
}

impl HotEntries {
    /// Holding at most `bytes` (`0`: nothing is kept).
    pub fn new(bytes: usize) -> HotEntries {
        let items = (bytes / 4096).max(16);
        let cache = (bytes > 0).then(|| quick_cache::sync::Cache::with_weighter(items, bytes as u64, Weight));
        HotEntries { cache }
    }

    /// Whether anything is kept at all (`--entry-cache-bytes` above 0).
    pub fn enabled(&self) -> bool {
        self.cache.is_some()
    }

    /// The entry at `path` of the archive version `version`, if kept.
    pub fn get(&self, version: &str, path: &ArtifactPath) -> Option<Arc<Hot>> {
        self.cache.as_ref()?.get(&Lookup(version, path.as_str()))
    }

    /// Keeps `hot` as the entry at `path` of `version`.
    pub fn put(&self, version: &Arc<str>, path: &ArtifactPath, hot: Arc<Hot>) {
        if let Some(cache) = &self.cache {
            cache.insert((version.clone(), Box::from(path.as_str())), hot);
        }
    }
}
