//! An archive: a source, its central directory, and the way to one entry's bytes.
#![forbid(unsafe_code)]

use std::sync::{Arc, OnceLock};

use crate::directory::{CentralDirectory, Entries};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::path::ArtifactPath;
use crate::reader::EntryReader;
use crate::source::{FileSource, Source};

/// Streams the entry GitLab would serve for `path`, touching the fewest bytes: the tail,
/// one pass over the central directory through a small buffer, then the entry. For one
/// look-up; open an [`Archive`] to list or to read several entries.
///
/// ```no_run
/// use artifact_core::{ArtifactPath, FileSource, open_entry};
/// let mut reader = open_entry(FileSource::open("artifacts.zip")?, &ArtifactPath::new("a.txt")?)?;
/// std::io::copy(&mut reader, &mut std::io::stdout())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open_entry<S: Source>(source: S, path: &ArtifactPath) -> Result<EntryReader> {
    let location = CentralDirectory::locate(&source)?;
    let entry = servable(CentralDirectory::scan(&source, location, path.as_bytes())?, path)?;
    EntryReader::new(&source, entry, location.offset)
}

/// What a look-up for `path` found, if GitLab would serve it: directories are not.
pub(crate) fn servable(found: Option<Entry>, path: &ArtifactPath) -> Result<Entry> {
    match found {
        Some(entry) if !entry.is_dir() => Ok(entry),
        _ => Err(Error::NotFound { name: path.as_str().to_owned() }),
    }
}

/// A zip archive on some [`Source`], with its central directory read.
///
/// ```no_run
/// use artifact_core::{Archive, ArtifactPath};
/// let archive = Archive::open_file("artifacts.zip")?;
/// let entry = archive.find(&ArtifactPath::new("dist/app.js")?)?;
/// let mut reader = archive.reader(&entry)?;
/// std::io::copy(&mut reader, &mut std::io::stdout())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Archive<S> {
    source: S,
    cd: CentralDirectory,
    index: OnceLock<Arc<Index>>,
}

impl Archive<FileSource> {
    /// Opens a local archive.
    pub fn open_file(path: impl AsRef<std::path::Path>) -> Result<Archive<FileSource>> {
        Archive::open(FileSource::open(path)?)
    }
}

impl<S: Source> Archive<S> {
    /// Reads the end of `source` and its central directory (two reads at most for a plain
    /// archive, one when the central directory fits in the tail read).
    pub fn open(source: S) -> Result<Archive<S>> {
        let cd = CentralDirectory::read(&source)?;
        Ok(Archive { source, cd, index: OnceLock::new() })
    }

    /// Uses an index built earlier for the same archive; reads nothing.
    pub fn with_index(source: S, index: Arc<Index>) -> Archive<S> {
        let cd = index.central_directory().clone();
        let lock = OnceLock::new();
        let _ = lock.set(index);
        Archive { source, cd, index: lock }
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The central directory.
    pub fn central_directory(&self) -> &CentralDirectory {
        &self.cd
    }

    /// Every entry, in central directory order.
    pub fn entries(&self) -> Entries<'_> {
        self.cd.entries()
    }

    /// The validated index, built on first use and kept.
    pub fn index(&self) -> Result<Arc<Index>> {
        if let Some(index) = self.index.get() {
            return Ok(index.clone());
        }
        let built = Arc::new(Index::build(self.cd.clone())?);
        Ok(self.index.get_or_init(|| built).clone())
    }

    /// The entry GitLab would serve for `path`: the first whose name equals it byte for
    /// byte. Directories are not served: `NotFound`.
    pub fn find(&self, path: &ArtifactPath) -> Result<Entry> {
        let found = match self.index.get() {
            Some(index) => index.find(path.as_bytes()),
            None => self.cd.find(path.as_bytes())?,
        };
        servable(found, path)
    }

    /// Streams `entry`. The reader owns what it reads from, so it may outlive the archive
    /// (and move to another thread, as the async face does).
    pub fn reader(&self, entry: &Entry) -> Result<EntryReader> {
        EntryReader::new(&self.source, entry.clone(), self.cd.data_limit())
    }
}
