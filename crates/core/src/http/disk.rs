//! Indexes on disk, so that another process (a second `artifact cat`, a restarted proxy)
//! skips straight to the entry. One file per archive, named by a hash of its key and
//! holding the key, so that a collision is a miss.
//!
//! The key is either given (a proxy's: the archive's identity, upstream origin, project
//! and job, built from typed parts, no credential in it), and then no URL is written at
//! all: the URL to read is the caller's each time; or it is the URL asked for without its
//! credentials and signatures (`private_token`, `job_token`, presigned `X-Amz-*` and the
//! like change or must not be written down) but with every other parameter (`?job=NAME`
//! picks the archive), and a final URL is stored when it is another origin (a presigned
//! object-storage URL, for the command line's next run). The stored validator is checked by
//! the server on the next request, so a stale file costs a retry, never wrong bytes.
//!
//! The directory is bounded ([`RemoteArchives::with_disk_cache_bytes`]): files are counted
//! when the cache starts and as they are written, and the least recently used go first.
//! Only the cache's own files (`<16 hex digits>.idx`, and `.vrd` for the verdicts of
//! entries, `RemoteArchives::keep_verdict`) are counted or removed; the bound is
//! each process's (two processes sharing a directory each count what they wrote).
//!
//! [`RemoteArchives::with_disk_cache_bytes`]: super::RemoteArchives::with_disk_cache_bytes
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use bytes::Bytes;

use super::{RemoteIdentity, Validator};
use crate::directory::CentralDirectory;
use crate::zip::eocd::CentralDirectoryLocation;

const MAGIC: &[u8; 8] = b"ARTIDX2\n";

/// The default bound of a disk cache: 1 GiB.
pub const DEFAULT_DISK_CACHE_BYTES: u64 = 1 << 30;

#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
    ledger: Mutex<Ledger>,
}

/// What a disk cache holds and has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskCacheStats {
    /// Index files in the directory.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The bound.
    pub max_bytes: u64,
    /// Files removed to keep under the bound, since the cache started.
    pub evictions: u64,
}

/// The files of the directory by name: their sizes and when they were last used, in a
/// map and in an order of use, so that using one and evicting the oldest are each one
/// step, never a pass over the directory.
#[derive(Debug, Default)]
struct Ledger {
    files: HashMap<String, (u64, u64)>,
    by_use: BTreeMap<u64, String>,
    bytes: u64,
    clock: u64,
    evictions: u64,
}

impl Ledger {
    fn touch(&mut self, name: &str, size: Option<u64>) {
        self.clock += 1;
        let clock = self.clock;
        match self.files.get_mut(name) {
            Some((held, used)) => {
                self.by_use.remove(used);
                if let Some(size) = size {
                    self.bytes = self.bytes - *held + size;
                    *held = size;
                }
                *used = clock;
            }
            None => {
                let Some(size) = size else { return };
                self.files.insert(name.to_owned(), (size, clock));
                self.bytes += size;
            }
        }
        self.by_use.insert(clock, name.to_owned());
    }

    fn forget(&mut self, name: &str) {
        if let Some((size, used)) = self.files.remove(name) {
            self.by_use.remove(&used);
            self.bytes -= size;
        }
    }

    /// The least recently used file, forgotten.
    fn oldest(&mut self) -> Option<String> {
        let (_, name) = self.by_use.pop_first()?;
        if let Some((size, _)) = self.files.remove(&name) {
            self.bytes -= size;
        }
        Some(name)
    }
}

/// Query parameters that carry credentials or per-request signatures.
fn volatile(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "private_token",
        "job_token",
        "access_token",
        "bearer_token",
        "token",
        "signature",
        "sig",
        "expires",
        "awsaccesskeyid",
        "policy",
        "key-pair-id",
    ]
    .contains(&name.as_str())
        || name.starts_with("x-amz-")
        || name.starts_with("x-goog-")
}

/// The cache key of `url`: without its user information, its fragment and its volatile
/// query parameters.
pub(crate) fn key(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    parsed.set_fragment(None);
    // Credentials in the URL (`user:token@`) are the caller's, never the archive's name.
    let _ = parsed.set_password(None);
    let _ = parsed.set_username("");
    let kept: Vec<(String, String)> =
        parsed.query_pairs().filter(|(k, _)| !volatile(k)).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    parsed.to_string()
}

/// What a disk cache file is found by.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DiskKey<'a> {
    /// The URL asked for (see [`key`]).
    Url(&'a str),
    /// A key given by the caller, with the URL to read now.
    Given { key: &'a str, url: &'a str },
}

impl DiskKey<'_> {
    /// The in-memory cache's key: the URL as asked (credentials and all: it is never
    /// written down), or the given key, which cannot be mistaken for a URL.
    pub(crate) fn memory(&self) -> String {
        match self {
            DiskKey::Url(url) => (*url).to_owned(),
            DiskKey::Given { .. } => self.text(),
        }
    }

    /// The disk cache's key, written in its file.
    pub(crate) fn text(&self) -> String {
        match self {
            DiskKey::Url(url) => key(url),
            DiskKey::Given { key, .. } => format!("key:{key}"),
        }
    }

    /// The URL to read now.
    pub(crate) fn url(&self) -> &str {
        match self {
            DiskKey::Url(url) | DiskKey::Given { url, .. } => url,
        }
    }

    /// The same, owning its strings (to move to another thread).
    #[cfg(feature = "tokio")]
    pub(crate) fn owned(&self) -> OwnedKey {
        match *self {
            DiskKey::Url(url) => OwnedKey::Url(url.to_owned()),
            DiskKey::Given { key, url } => OwnedKey::Given { key: key.to_owned(), url: url.to_owned() },
        }
    }
}

/// A [`DiskKey`] owning its strings.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone)]
pub(crate) enum OwnedKey {
    Url(String),
    Given { key: String, url: String },
}

#[cfg(feature = "tokio")]
impl OwnedKey {
    pub(crate) fn borrowed(&self) -> DiskKey<'_> {
        match self {
            OwnedKey::Url(url) => DiskKey::Url(url),
            OwnedKey::Given { key, url } => DiskKey::Given { key, url },
        }
    }
}

impl DiskCache {
    /// The cache in `dir`, bounded to `max_bytes`: the files there are counted (and
    /// leftovers of interrupted writes removed) first.
    pub(crate) fn new(dir: PathBuf, max_bytes: u64) -> DiskCache {
        let cache = DiskCache { dir, max_bytes, ledger: Mutex::default() };
        let mut found: Vec<(std::time::SystemTime, String, u64)> = Vec::new();
        for entry in std::fs::read_dir(&cache.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Only this cache's own files are counted or removed (`<16 hex>.idx`, verdicts'
            // `<16 hex>.vrd`, and
            // `<16 hex>.tmp<pid>` left by an interrupted write); anything else is left be.
            let Some((stem, ext)) = name.split_once('.') else { continue };
            let ours = stem.len() == 16 && stem.bytes().all(|b| b.is_ascii_hexdigit());
            let Ok(meta) = entry.metadata() else { continue };
            if !ours || !meta.is_file() {
                continue;
            }
            if ext.strip_prefix("tmp").is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())) {
                let _ = std::fs::remove_file(entry.path());
            } else if ext == "idx" || ext == "vrd" {
                found.push((meta.modified().unwrap_or(std::time::UNIX_EPOCH), name, meta.len()));
            }
        }
        found.sort();
        {
            let mut ledger = cache.lock();
            for (_, name, size) in found {
                ledger.touch(&name, Some(size));
            }
        }
        cache.evict();
        cache
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the cache holds and has done.
    pub(crate) fn stats(&self) -> DiskCacheStats {
        let ledger = self.lock();
        DiskCacheStats {
            files: ledger.files.len() as u64,
            bytes: ledger.bytes,
            max_bytes: self.max_bytes,
            evictions: ledger.evictions,
        }
    }

    /// Removes the least recently used files until the rest fit the bound.
    fn evict(&self) {
        loop {
            let name = {
                let mut ledger = self.lock();
                if ledger.bytes <= self.max_bytes {
                    return;
                }
                let oldest = ledger.oldest();
                ledger.evictions += u64::from(oldest.is_some());
                oldest
            };
            match name {
                Some(name) => {
                    let _ = std::fs::remove_file(self.dir.join(name));
                }
                None => return,
            }
        }
    }

    fn name(&self, key: &DiskKey<'_>) -> String {
        let mut h = std::hash::DefaultHasher::new();
        key.text().hash(&mut h);
        format!("{:016x}.idx", h.finish())
    }

    /// Whether an index file for `key` is there.
    pub(crate) fn exists(&self, key: &DiskKey<'_>) -> bool {
        self.dir.join(self.name(key)).is_file()
    }

    pub(crate) fn remove(&self, key: &DiskKey<'_>) {
        let name = self.name(key);
        self.lock().forget(&name);
        let _ = std::fs::remove_file(self.dir.join(name));
    }

    /// Writes an index file already encoded ([`encode`], for `key`: one a shared cache
    /// held); a failure only means no disk cache.
    pub(crate) fn store_encoded(&self, key: &DiskKey<'_>, encoded: &[u8]) {
        let _ = self.write(&self.name(key), encoded);
    }

    /// Writes `bytes` as the file `name` (a new file, renamed into place), counted.
    fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(name);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        // A new file (never one a link points at): a leftover of this process goes first.
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        drop(file);
        std::fs::rename(tmp, path)?;
        self.lock().touch(name, Some(bytes.len() as u64));
        self.evict();
        Ok(())
    }

    /// The file `name`'s bytes, counted as used.
    fn read(&self, name: &str) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.dir.join(name)).ok()?;
        self.lock().touch(name, None);
        Some(bytes)
    }

    /// The central directory and identity stored for `key`, if a well-formed file is there.
    pub(crate) fn load(&self, key: &DiskKey<'_>) -> Option<(CentralDirectory, RemoteIdentity)> {
        decode(Bytes::from(self.read(&self.name(key))?), key)
    }

    /// The file name of the verdict for `path` of the archive kept under `key`.
    #[cfg(feature = "tokio")]
    fn verdict_name(&self, key: &str, path: &str) -> String {
        let mut h = std::hash::DefaultHasher::new();
        (key, path).hash(&mut h);
        format!("{:016x}.vrd", h.finish())
    }

    /// Writes the verdict for `path` of the archive kept under `key` (its encoding, which
    /// holds both); a failure only means no disk cache.
    #[cfg(feature = "tokio")]
    pub(crate) fn store_verdict(&self, key: &str, path: &str, encoded: &[u8]) {
        let _ = self.write(&self.verdict_name(key, path), encoded);
    }

    /// The verdict stored for `path` of the archive kept under `key`, encoded, if any.
    #[cfg(feature = "tokio")]
    pub(crate) fn load_verdict(&self, key: &str, path: &str) -> Option<Vec<u8>> {
        self.read(&self.verdict_name(key, path))
    }
}

/// An index file's bytes: the archive's identity, its central directory's location, the
/// validator, the URL to read (none for a given key; else the final URL when a redirect
/// led to another origin), the key, the directory, and a CRC-32 of all that (a file cut
/// or damaged on disk or in a shared store is a miss).
pub(crate) fn encode(key: &DiskKey<'_>, cd: &CentralDirectory, identity: &RemoteIdentity) -> Vec<u8> {
    let loc = cd.location();
    let mut out = Vec::with_capacity(cd.as_bytes().len() + 256);
    out.extend_from_slice(MAGIC);
    for v in [identity.size, loc.offset, loc.size, loc.entries, loc.shift] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.push(u8::from(loc.zip64));
    let text = identity.validator.as_str();
    out.push(identity.validator.kind());
    // A given key: no URL at all. Else the final URL only when a redirect led to
    // another origin; else the asked URL (with whatever credentials the caller gives
    // next time) is used.
    let other_origin =
        url::Url::parse(&identity.url).ok().map(|u| u.origin()) != url::Url::parse(key.url()).ok().map(|u| u.origin());
    let stored_url = match key {
        DiskKey::Url(_) if other_origin => identity.url.as_str(),
        _ => "",
    };
    let text_key = key.text();
    for s in [text, stored_url, text_key.as_str()] {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(cd.as_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The central directory and identity in an index file's `bytes` ([`encode`]), if they are
/// well-formed and for `key`.
pub(crate) fn decode(bytes: Bytes, key: &DiskKey<'_>) -> Option<(CentralDirectory, RemoteIdentity)> {
    let body = bytes.len().checked_sub(4)?;
    if crc32fast::hash(&bytes[..body]).to_le_bytes() != bytes[body..] {
        return None;
    }
    let bytes = bytes.slice(..body);
    let mut at = MAGIC.len();
    if bytes.get(..at)? != MAGIC {
        return None;
    }
    let mut u64_at = || {
        let v = u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?);
        at += 8;
        Some(v)
    };
    let (size, offset, cd_size, entries, shift) = (u64_at()?, u64_at()?, u64_at()?, u64_at()?, u64_at()?);
    let zip64 = *bytes.get(at)? != 0;
    let kind = *bytes.get(at + 1)?;
    at += 2;
    let mut strings = Vec::with_capacity(3);
    for _ in 0..3 {
        let len = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        let s = std::str::from_utf8(bytes.get(at + 4..at.checked_add(4 + len)?)?).ok()?.to_owned();
        at += 4 + len;
        strings.push(s);
    }
    if strings[2] != key.text() || (bytes.len() - at) as u64 != cd_size {
        return None;
    }
    let text = strings[0].clone();
    let validator = Validator::from_kind(kind, text).unwrap_or(Validator::None);
    let location = CentralDirectoryLocation { offset, size: cd_size, entries, shift, zip64, declared_size: cd_size };
    let cd = CentralDirectory::from_parts(bytes.slice(at..), location, size).ok()?;
    let url = if strings[1].is_empty() { key.url().to_owned() } else { strings[1].clone() };
    Some((cd, RemoteIdentity { url, size, validator }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_keeps_what_picks_the_archive_and_drops_credentials_and_signatures() {
        assert_ne!(key("https://h/p/download?job=a"), key("https://h/p/download?job=b"));
        assert_eq!(key("https://h/a.zip?X-Amz-Signature=1&X-Amz-Date=2"), key("https://h/a.zip?X-Amz-Signature=9"));
        assert_eq!(key("https://h/a.zip?job=x&private_token=secret"), key("https://h/a.zip?job=x"));
        assert!(!key("https://h/a.zip?job_token=secret&job=x").contains("secret"));
        assert_eq!(key("https://h/a.zip#frag"), key("https://h/a.zip"));
    }
}

#[cfg(test)]
mod ledger_tests {
    use super::Ledger;

    #[test]
    fn the_least_recently_used_goes_first_and_sizes_add_up() {
        let mut ledger = Ledger::default();
        ledger.touch("a", Some(10));
        ledger.touch("b", Some(20));
        ledger.touch("c", Some(30));
        ledger.touch("a", None);
        ledger.touch("b", Some(5));
        assert_eq!(ledger.bytes, 45);
        assert_eq!(ledger.oldest().as_deref(), Some("c"));
        assert_eq!(ledger.oldest().as_deref(), Some("a"));
        ledger.forget("b");
        ledger.touch("nothing", None);
        assert_eq!((ledger.bytes, ledger.oldest()), (0, None));
    }
}
