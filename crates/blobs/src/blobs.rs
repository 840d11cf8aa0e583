//! The blob trait, its keys and the local disk layer.
//!
//! Blobs are immutable: a put writes a temporary file, syncs it and renames it to a fresh
//! key, so a reader never sees half a blob and a crash loses nothing already committed.
//! Because a key never changes meaning, it is also the archive's identity for the index
//! cache and for ETags. Local disk is the embedded default; an S3-compatible bucket (for many
//! replicas) implements the same trait, opening blobs as ranged HTTP sources.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use artifact_core::{FileSource, Source};

use artifact_records::BlobRef;
use artifact_records::ids::random_hex;

/// What a blob holds; it names the key's folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    /// An artifacts archive (zip).
    Archive,
    /// GitLab's `metadata.gz`.
    Metadata,
    /// A job log.
    Trace,
    /// The outcome of verifying an archive (`artifact_core::Verification` as JSON), stored
    /// beside it by earlier versions (the store keeps it now): its key is the archive's
    /// with this folder (see [`beside`]). Read when the store has none; deleted with the
    /// archive.
    Verification,
    /// The checkpoints of an archive's large deflated entries
    /// (`artifact_core::checkpoints::Checkpoints`, encoded), stored beside it at import;
    /// read when a range of such an entry is first asked for; deleted with the archive.
    Checkpoints,
}

impl BlobKind {
    /// Every kind.
    const ALL: [BlobKind; 5] =
        [BlobKind::Archive, BlobKind::Metadata, BlobKind::Trace, BlobKind::Verification, BlobKind::Checkpoints];

    /// The folder its keys start with (`archive`, `metadata`, `trace`, `verification`,
    /// `checkpoints`).
    pub fn folder(self) -> &'static str {
        match self {
            BlobKind::Archive => "archive",
            BlobKind::Metadata => "metadata",
            BlobKind::Trace => "trace",
            BlobKind::Verification => "verification",
            BlobKind::Checkpoints => "checkpoints",
        }
    }

    /// Whether blobs of this kind may be written again under their key (those beside an
    /// archive); the others never change.
    pub fn rewritable(self) -> bool {
        matches!(self, BlobKind::Verification | BlobKind::Checkpoints)
    }
}

/// The kind and name of a well-formed key (`<folder>/<32 hex digits>`), else `None`.
pub fn parse_key(key: &str) -> Option<(BlobKind, &str)> {
    let (folder, name) = key.split_once('/')?;
    let kind = BlobKind::ALL.into_iter().find(|k| k.folder() == folder)?;
    (name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit())).then_some((kind, name))
}

/// The key of the `kind` blob that belongs to the archive `archive_key`: the archive's name
/// in `kind`'s folder. `None` if `archive_key` is not an archive's key.
pub fn beside(archive_key: &str, kind: BlobKind) -> Option<String> {
    let name = archive_key.strip_prefix("archive/")?;
    Some(format!("{}/{name}", kind.folder()))
}

/// A fresh key for a `kind` blob: its folder and 128 random bits. Taken before the blob is
/// written, so that an import can lease it first (see [`Blobs::put_at`]).
pub fn new_key(kind: BlobKind) -> io::Result<String> {
    Ok(format!("{}/{}", kind.folder(), random_hex()?))
}

/// What [`Blobs::list`] and [`Blobs::leftovers`] find: a key (or a leftover's name), its
/// size and when it was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The blob's key, or the leftover's name (`tmp/<name>.part`).
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// Last written.
    pub modified: SystemTime,
}

/// An opened blob: its bytes as a ranged source and when it was written.
#[derive(Clone)]
pub struct OpenBlob {
    /// Ranged reads of the bytes.
    pub source: Arc<dyn Source>,
    /// When it was written (for `Last-Modified`).
    pub modified: SystemTime,
    /// Whether reads are network requests (object storage): they are then never made on
    /// an async worker thread, where a slow one would hold up every other request.
    pub remote: bool,
}

impl fmt::Debug for OpenBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenBlob").field("len", &self.source.len()).field("modified", &self.modified).finish()
    }
}

/// Stores and opens blobs, by key. A blob is written whole under a key no other blob had
/// ([`Blobs::put`]), except the blobs kept beside an archive ([`BlobKind::rewritable`]),
/// which [`Blobs::put_beside`] replaces whole; a reader never sees half a blob.
pub trait Blobs: Send + Sync + fmt::Debug {
    /// Stores everything `from` yields under a new key.
    fn put(&self, kind: BlobKind, from: &mut dyn Read) -> io::Result<BlobRef> {
        self.put_at(&new_key(kind)?, from)
    }
    /// Stores everything `from` yields under `key`, a fresh key from [`new_key`].
    fn put_at(&self, key: &str, from: &mut dyn Read) -> io::Result<BlobRef>;
    /// Every blob stored, by key (what `artifact admin gc` compares with the store).
    fn list(&self) -> io::Result<Vec<Listed>>;
    /// What writes that never finished left behind (a process killed mid-write): local
    /// temporary files. A write in progress keeps its leftover's time fresh.
    fn leftovers(&self) -> io::Result<Vec<Listed>> {
        Ok(Vec::new())
    }
    /// Removes a leftover named by [`Blobs::leftovers`].
    fn remove_leftover(&self, name: &str) -> io::Result<()> {
        let _ = name;
        Ok(())
    }
    /// Stores everything `from` yields as the `kind` blob of the archive `archive_key`,
    /// under [`beside`]`(archive_key, kind)`, replacing any blob there.
    fn put_beside(&self, archive_key: &str, kind: BlobKind, from: &mut dyn Read) -> io::Result<BlobRef>;
    /// Opens a blob for ranged reads.
    fn open(&self, key: &str) -> io::Result<OpenBlob>;
    /// Deletes a blob; deleting a missing blob is not an error.
    fn delete(&self, key: &str) -> io::Result<()>;
    /// Whether blobs can be read and written now (for `GET /-/health`).
    fn check(&self) -> io::Result<()> {
        Ok(())
    }
    /// A URL that reads the blob without credentials for `valid_for`, where the layer has
    /// them (object storage: a presigned `GET`); `None` for a layer without (local disk).
    fn presigned_url(&self, key: &str, valid_for: std::time::Duration) -> Option<io::Result<String>> {
        let _ = (key, valid_for);
        None
    }

    /// Bytes `range` of the blob `key`, read on the caller's tokio runtime with no thread
    /// waiting, where the layer's reads are network requests (object storage: one ranged
    /// `GET`, signed here, exactly `range` or an error); `None` for a layer whose reads are
    /// file reads, made where blocking is allowed instead. The whole range is held in memory
    /// before the future ends: the caller bounds it (small reads, an entry of a few KiB);
    /// larger ones go through [`open`](Self::open), which streams.
    fn read_async(&self, key: &str, range: std::ops::Range<u64>) -> Option<BlobFuture<'_>> {
        let _ = (key, range);
        None
    }

    /// The ranged reads this layer made over the network and their bytes, since it was
    /// made (object storage); `None` for a layer whose reads are not requests (local disk).
    fn read_stats(&self) -> Option<artifact_core::ReadStats> {
        None
    }
}

/// The future of [`Blobs::read_async`].
pub type BlobFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<bytes::Bytes>> + Send + 'a>>;

/// Blobs as files under one folder: `<root>/<kind>/<2 hex>/<32 hex>`, temporary files in
/// `<root>/tmp`.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// Uses (and creates) `root`.
    pub fn open(root: &Path) -> io::Result<LocalBlobs> {
        fs::create_dir_all(root.join("tmp"))?;
        Ok(LocalBlobs { root: root.to_owned() })
    }

    fn path_of(&self, key: &str) -> io::Result<PathBuf> {
        let bad = || io::Error::new(io::ErrorKind::InvalidInput, "malformed blob key");
        let (kind, name) = parse_key(key).ok_or_else(bad)?;
        Ok(self.root.join(kind.folder()).join(&name[..2]).join(name))
    }
}

impl Blobs for LocalBlobs {
    /// The folder for temporary files is there and is a folder.
    fn check(&self) -> io::Result<()> {
        let meta = fs::metadata(self.root.join("tmp"))?;
        if meta.is_dir() { Ok(()) } else { Err(io::Error::other("the blob folder's tmp is not a folder")) }
    }

    fn put_at(&self, key: &str, from: &mut dyn Read) -> io::Result<BlobRef> {
        let (kind, name) =
            parse_key(key).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "malformed blob key"))?;
        self.put_named(kind, name, from)
    }

    /// Walks `<root>/<kind>/<2 hex>/`; files that are not well-formed keys are not blobs.
    fn list(&self) -> io::Result<Vec<Listed>> {
        let mut found = Vec::new();
        for kind in BlobKind::ALL {
            for dir in read_dir_if_any(&self.root.join(kind.folder()))? {
                let dir = dir?;
                if !dir.file_type()?.is_dir() {
                    continue;
                }
                for file in read_dir_if_any(&dir.path())? {
                    let file = file?;
                    let key = format!("{}/{}", kind.folder(), file.file_name().to_string_lossy());
                    if parse_key(&key).is_none() || self.path_of(&key)? != file.path() {
                        continue;
                    }
                    let meta = file.metadata()?;
                    found.push(Listed { key, size: meta.len(), modified: meta.modified()? });
                }
            }
        }
        Ok(found)
    }

    /// The temporary files in `<root>/tmp`.
    fn leftovers(&self) -> io::Result<Vec<Listed>> {
        let mut found = Vec::new();
        for file in read_dir_if_any(&self.root.join("tmp"))? {
            let file = file?;
            let name = file.file_name().to_string_lossy().into_owned();
            if leftover_name(&name) {
                let meta = file.metadata()?;
                found.push(Listed { key: format!("tmp/{name}"), size: meta.len(), modified: meta.modified()? });
            }
        }
        Ok(found)
    }

    fn remove_leftover(&self, name: &str) -> io::Result<()> {
        let file = name.strip_prefix("tmp/").filter(|f| leftover_name(f));
        let file = file.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a leftover's name"))?;
        match fs::remove_file(self.root.join("tmp").join(file)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn put_beside(&self, archive_key: &str, kind: BlobKind, from: &mut dyn Read) -> io::Result<BlobRef> {
        let key = beside(archive_key, kind)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an archive's key"))?;
        self.path_of(&key)?;
        let name = key.rsplit('/').next().unwrap_or_default().to_owned();
        self.put_named(kind, &name, from)
    }

    fn open(&self, key: &str) -> io::Result<OpenBlob> {
        let file = File::open(self.path_of(key)?)?;
        let modified = file.metadata()?.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        Ok(OpenBlob { source: Arc::new(FileSource::new(file)?), modified, remote: false })
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        match fs::remove_file(self.path_of(key)?) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// The entries of `dir`, none if it does not exist.
fn read_dir_if_any(dir: &Path) -> io::Result<Vec<io::Result<fs::DirEntry>>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Whether `name` is a temporary file's name as [`LocalBlobs`] makes them (`<32 hex>.part`).
fn leftover_name(name: &str) -> bool {
    name.strip_suffix(".part").is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl LocalBlobs {
    /// Writes `from` to a temporary file, syncs it, renames it to `<kind>/<name>` and syncs
    /// the folder.
    fn put_named(&self, kind: BlobKind, name: &str, from: &mut dyn Read) -> io::Result<BlobRef> {
        // The temporary name is always fresh, even when `name` is not.
        let tmp = self.root.join("tmp").join(format!("{}.part", random_hex()?));
        let result = (|| {
            let mut file = File::create_new(&tmp)?;
            let size = io::copy(from, &mut file)?;
            file.flush()?;
            file.sync_all()?;
            let key = format!("{}/{name}", kind.folder());
            let path = self.path_of(&key)?;
            let dir = path.parent().expect("blob paths have a folder");
            fs::create_dir_all(dir)?;
            fs::rename(&tmp, &path)?;
            // The rename is durable once the folder is synced.
            File::open(dir)?.sync_all()?;
            Ok(BlobRef { key, size })
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_open_delete_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path()).unwrap();
        let blob = blobs.put(BlobKind::Trace, &mut &b"hello log"[..]).unwrap();
        assert_eq!(blob.size, 9);
        let open = blobs.open(&blob.key).unwrap();
        assert_eq!(&open.source.read_bytes(0, 9).unwrap()[..], b"hello log");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0, "no temporary file stays");
        blobs.delete(&blob.key).unwrap();
        blobs.delete(&blob.key).unwrap();
        assert_eq!(blobs.open(&blob.key).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_blob_beside_an_archive_is_found_from_the_archive_key() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path()).unwrap();
        let archive = blobs.put(BlobKind::Archive, &mut &b"PK"[..]).unwrap();
        let side = blobs.put_beside(&archive.key, BlobKind::Verification, &mut &b"{}"[..]).unwrap();
        assert_eq!(Some(side.key.clone()), beside(&archive.key, BlobKind::Verification));
        assert_eq!(&blobs.open(&side.key).unwrap().source.read_bytes(0, 2).unwrap()[..], b"{}");
        // Written again, it is replaced.
        blobs.put_beside(&archive.key, BlobKind::Verification, &mut &b"[1]"[..]).unwrap();
        assert_eq!(blobs.open(&side.key).unwrap().source.len(), 3);
        assert!(
            blobs.put_beside("trace/0123456789abcdef0123456789abcdef", BlobKind::Verification, &mut &b""[..]).is_err()
        );
        assert!(blobs.put_beside("archive/../x", BlobKind::Verification, &mut &b""[..]).is_err());
    }

    #[test]
    fn a_failed_put_leaves_nothing_behind() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path()).unwrap();
        assert!(blobs.put(BlobKind::Archive, &mut Broken).is_err());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert!(!dir.path().join("archive").exists());
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path()).unwrap();
        for key in ["../etc/passwd", "archive/../../x", "archive/zz", "other/0123456789abcdef0123456789abcdef"] {
            assert_eq!(blobs.open(key).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{key}");
        }
    }
}
