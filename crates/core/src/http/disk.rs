//! Indexes on disk, so that another process (a second `artifact cat`) skips straight to the
//! entry. One file per archive, keyed by its URL without the query string (presigned URLs
//! change their query on every redirect); the stored validator is checked by the server on
//! the next request, so a stale file costs a retry, never wrong bytes.

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

fn key(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
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
        for s in [text, identity.url.as_str(), key(url)] {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(cd.as_bytes());
        let path = self.path(url);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = std::fs::File::create(&tmp)?;
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
        let location = CentralDirectoryLocation { offset, size: cd_size, entries, shift, zip64 };
        let cd = CentralDirectory::from_parts(bytes.slice(at..), location, size).ok()?;
        Some((cd, RemoteIdentity { url: strings[1].clone(), size, validator }))
    }
}
