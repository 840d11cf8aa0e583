//! Indexes on disk, so that another process (a second `artifact cat`) skips straight to the
//! entry. One file per archive, keyed by the URL asked for without its credentials and
//! signatures (`private_token`, `job_token`, presigned `X-Amz-*` and the like change or must
//! not be written down) but with every other parameter (`?job=NAME` picks the archive). The
//! stored validator is checked by the server on the next request, so a stale file costs a
//! retry, never wrong bytes. A final URL is stored only when it is another origin (a
//! presigned object-storage URL); tokens in the asked URL are never written.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;

use bytes::Bytes;

use super::{RemoteIdentity, Validator};
use crate::directory::CentralDirectory;
use crate::zip::eocd::CentralDirectoryLocation;

const MAGIC: &[u8; 8] = b"ARTIDX1\n";

#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

/// Query parameters that carry credentials or per-request signatures.
fn volatile(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["private_token", "job_token", "access_token", "signature", "expires", "awsaccesskeyid", "policy", "key-pair-id"]
        .contains(&name.as_str())
        || name.starts_with("x-amz-")
        || name.starts_with("x-goog-")
}

/// The cache key of `url`: without its fragment and its volatile query parameters.
pub(crate) fn key(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return url.to_owned();
    };
    parsed.set_fragment(None);
    let kept: Vec<(String, String)> =
        parsed.query_pairs().filter(|(k, _)| !volatile(k)).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    parsed.to_string()
}

impl DiskCache {
    pub(crate) fn new(dir: PathBuf) -> DiskCache {
        DiskCache { dir }
    }

    fn path(&self, url: &str) -> PathBuf {
        let mut h = std::hash::DefaultHasher::new();
        key(url).hash(&mut h);
        self.dir.join(format!("{:016x}.idx", h.finish()))
    }

    /// Whether an index file for `url` is there.
    pub(crate) fn exists(&self, url: &str) -> bool {
        self.path(url).is_file()
    }

    pub(crate) fn remove(&self, url: &str) {
        let _ = std::fs::remove_file(self.path(url));
    }

    /// Writes the index file; a failure only means no disk cache.
    pub(crate) fn store(&self, url: &str, cd: &CentralDirectory, identity: &RemoteIdentity) {
        let _ = self.try_store(url, cd, identity);
    }

    fn try_store(&self, url: &str, cd: &CentralDirectory, identity: &RemoteIdentity) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let loc = cd.location();
        let mut out = Vec::with_capacity(cd.as_bytes().len() + 256);
        out.extend_from_slice(MAGIC);
        for v in [identity.size, loc.offset, loc.size, loc.entries, loc.shift] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(u8::from(loc.zip64));
        let (kind, text) = match &identity.validator {
            Validator::ETag(t) => (1, t.as_str()),
            Validator::WeakETag(t) => (2, t.as_str()),
            Validator::LastModified(t) => (3, t.as_str()),
            Validator::None => (0, ""),
        };
        out.push(kind);
        // The final URL only when a redirect led to another origin; else the asked URL
        // (with whatever credentials the caller gives next time) is used.
        let other_origin = reqwest::Url::parse(&identity.url).ok().map(|u| u.origin())
            != reqwest::Url::parse(url).ok().map(|u| u.origin());
        let stored_url = if other_origin { identity.url.as_str() } else { "" };
        let key = key(url);
        for s in [text, stored_url, key.as_str()] {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(cd.as_bytes());
        let path = self.path(url);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(&out)?;
        drop(file);
        std::fs::rename(tmp, path)
    }

    /// The central directory and identity stored for `url`, if a well-formed file is there.
    pub(crate) fn load(&self, url: &str) -> Option<(CentralDirectory, RemoteIdentity)> {
        let bytes = Bytes::from(std::fs::read(self.path(url)).ok()?);
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
            let s = std::str::from_utf8(bytes.get(at + 4..at + 4 + len)?).ok()?.to_owned();
            at += 4 + len;
            strings.push(s);
        }
        if strings[2] != key(url) || (bytes.len() - at) as u64 != cd_size {
            return None;
        }
        let text = strings[0].clone();
        let validator = match kind {
            1 => Validator::ETag(text),
            2 => Validator::WeakETag(text),
            3 => Validator::LastModified(text),
            _ => Validator::None,
        };
        let location =
            CentralDirectoryLocation { offset, size: cd_size, entries, shift, zip64, declared_size: cd_size };
        let cd = CentralDirectory::from_parts(bytes.slice(at..), location, size).ok()?;
        let url = if strings[1].is_empty() { url.to_owned() } else { strings[1].clone() };
        Some((cd, RemoteIdentity { url, size, validator }))
    }
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn the_key_keeps_what_picks_the_archive_and_drops_credentials_and_signatures() {
        assert_ne!(key("https://h/p/download?job=a"), key("https://h/p/download?job=b"));
        assert_eq!(key("https://h/a.zip?X-Amz-Signature=1&X-Amz-Date=2"), key("https://h/a.zip?X-Amz-Signature=9"));
        assert_eq!(key("https://h/a.zip?job=x&private_token=secret"), key("https://h/a.zip?job=x"));
        assert!(!key("https://h/a.zip?job_token=secret&job=x").contains("secret"));
        assert_eq!(key("https://h/a.zip#frag"), key("https://h/a.zip"));
    }
}
