//! `artifact extract`: write entries under a destination directory and never outside it.
//!
//! The guards, in order: every name must pass the path rule (no absolute paths, no `..`,
//! no empty or `.` segments, no drive letters); the first entry of a name wins; no existing
//! component of a path inside the destination may be a symbolic link; files are written to
//! a fresh temporary name (`create_new`) and renamed into place, so a link planted at the
//! final name is replaced, never followed; symbolic links are made only on request, only
//! relative ones that stay inside the destination, and only after every file and directory,
//! so nothing is ever written through one. Entries that fail a guard are skipped and
//! reported; a corrupt entry or a failed write stops the command.
//!
//! The checks look at the file system before acting on it: they defend against what an
//! archive holds, not against another process changing the destination at the same time.

mod link;

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use artifact_core::{ArtifactPath, Batch, DEFAULT_MAX_GAP, Entry, Source};

use crate::error::{CliError, Exit};
use crate::input::{AnyArchive, RemoteArgs, open_archive};
use crate::output::{COPY_BUFFER, CopyError, TempFile, copy};

/// Why one entry was not extracted, or why the whole command stops.
#[derive(Debug)]
enum Refusal {
    /// Skip this entry, say why, carry on.
    Skip(String),
    /// Stop the command.
    Fatal(CliError),
}

impl From<CliError> for Refusal {
    fn from(err: CliError) -> Refusal {
        Refusal::Fatal(err)
    }
}

fn skip(why: impl fmt::Display) -> Refusal {
    Refusal::Skip(why.to_string())
}

/// Extracts the entries of `archive_path` at or under any of `prefixes` (all when none)
/// into `dest`, creating it if missing. Skipped entries are reported one per line, then
/// counted; they do not change the exit status.
pub(crate) fn run(
    archive_path: &Path,
    dest: &Path,
    prefixes: &[String],
    symlinks: bool,
    remote: &RemoteArgs,
) -> Result<(), CliError> {
    let archive = open_archive(archive_path, remote)?;
    // The archive is checked as a whole first: entry count, every entry inside the data
    // region, no two entries sharing bytes (the shape of an overlap zip bomb).
    archive.index().and_then(|i| i.check_whole()).map_err(|e| CliError::engine(archive_path.display(), e))?;
    let entries = crate::read_entries(archive_path, &archive)?;
    fs::create_dir_all(dest).map_err(|e| CliError::output(dest.display(), e))?;
    // Files are read in central directory order through one plan, so that nearby entries of
    // a remote archive share one request.
    let files = entries.iter().filter(|e| selected(e.name(), prefixes) && !e.is_dir() && !e.is_symlink());
    let batch = archive.batch(files, DEFAULT_MAX_GAP);
    let mut x = Extractor::new(&archive, batch, dest);
    let mut seen = HashSet::new();
    let mut links = Vec::new();
    for entry in entries.iter().filter(|e| selected(e.name(), prefixes)) {
        let path = match entry_path(entry) {
            Ok(path) => path,
            Err(why) => {
                x.skipped(entry, why);
                continue;
            }
        };
        let outcome = if !seen.insert(path.clone()) {
            Err(skip("an earlier entry has the same path"))
        } else if entry.is_symlink() {
            if symlinks {
                links.push((entry, path));
                continue;
            }
            Err(skip("it is a symbolic link (see --symlinks)"))
        } else if entry.is_dir() {
            x.directory(entry, &path)
        } else {
            x.file(entry, &path)
        };
        x.outcome(entry, outcome)?;
    }
    for (entry, path) in links {
        let outcome = x.symlink(entry, &path);
        x.outcome(entry, outcome)?;
    }
    x.finish()?;
    remote.report_directory(archive.central_directory().location());
    remote.report(archive.source().stats());
    Ok(())
}

/// Whether `name` is at or under one of `prefixes` (every name when there are none).
fn selected(name: &[u8], prefixes: &[String]) -> bool {
    prefixes.is_empty()
        || prefixes.iter().any(|p| {
            let p = p.trim_end_matches('/').as_bytes();
            p.is_empty() || name.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"))
        })
}

/// The entry's path, checked by the path rule (a directory's one trailing `/` aside).
fn entry_path(entry: &Entry) -> Result<ArtifactPath, artifact_core::InvalidPath> {
    let name = entry.name();
    let name = if entry.is_dir() { name.strip_suffix(b"/").unwrap_or(name) } else { name };
    ArtifactPath::new(name)
}

/// The state of one extraction.
struct Extractor<'a> {
    archive: &'a AnyArchive,
    batch: Batch<'a, Box<dyn Source>>,
    dest: &'a Path,
    /// Directories known to be real directories (created or checked) under `dest`.
    checked: HashSet<PathBuf>,
    /// Permissions of directory entries, applied last so they cannot block the writes.
    dir_modes: Vec<(PathBuf, u32)>,
    buf: Vec<u8>,
    extracted: u64,
    skipped: u64,
}

impl<'a> Extractor<'a> {
    fn new(archive: &'a AnyArchive, batch: Batch<'a, Box<dyn Source>>, dest: &'a Path) -> Extractor<'a> {
        Extractor {
            archive,
            batch,
            dest,
            checked: HashSet::new(),
            dir_modes: Vec::new(),
            buf: vec![0; COPY_BUFFER],
            extracted: 0,
            skipped: 0,
        }
    }

    fn skipped(&mut self, entry: &Entry, why: impl fmt::Display) {
        self.skipped += 1;
        let name: String = entry.display_name().chars().flat_map(char::escape_debug).collect();
        let _ = writeln!(io::stderr().lock(), "artifact: skipped \"{name}\": {why}");
    }

    fn outcome(&mut self, entry: &Entry, outcome: Result<(), Refusal>) -> Result<(), CliError> {
        match outcome {
            Ok(()) => self.extracted += 1,
            Err(Refusal::Skip(why)) => self.skipped(entry, why),
            Err(Refusal::Fatal(err)) => return Err(err),
        }
        Ok(())
    }

    /// Applies directory permissions and reports the count of skipped entries.
    fn finish(self) -> Result<(), CliError> {
        for (dir, mode) in self.dir_modes.iter().rev() {
            set_dir_mode(dir, *mode).map_err(|e| CliError::output(dir.display(), e))?;
        }
        if self.skipped > 0 {
            let (skipped, total) = (self.skipped, self.skipped + self.extracted);
            let _ = writeln!(io::stderr().lock(), "artifact: skipped {skipped} of {total} entries");
        }
        Ok(())
    }

    /// Makes `segments` a chain of real directories under `dest`, creating what is
    /// missing, and returns the last one. An existing link or file in the chain refuses.
    fn directories(&mut self, segments: &[&str]) -> Result<PathBuf, Refusal> {
        let mut dir = self.dest.to_path_buf();
        for (i, segment) in segments.iter().enumerate() {
            dir.push(segment);
            if self.checked.contains(&dir) {
                continue;
            }
            let shown = || segments[..=i].join("/");
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(skip(format_args!("{} is a symbolic link", shown())));
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(skip(format_args!("{} exists and is not a directory", shown())));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        return Err(skip(format_args!("{} appeared while extracting", shown())));
                    }
                    Err(e) => return Err(fatal_io(&dir, e)),
                },
                Err(e) => return Err(fatal_io(&dir, e)),
            }
            self.checked.insert(dir.clone());
        }
        Ok(dir)
    }

    fn directory(&mut self, entry: &Entry, path: &ArtifactPath) -> Result<(), Refusal> {
        let segments: Vec<&str> = path.as_str().split('/').collect();
        let dir = self.directories(&segments)?;
        if let Some(mode) = entry.unix_mode() {
            self.dir_modes.push((dir, mode & 0o777));
        }
        Ok(())
    }

    fn file(&mut self, entry: &Entry, path: &ArtifactPath) -> Result<(), Refusal> {
        let segments: Vec<&str> = path.as_str().split('/').collect();
        let Some((name, parents)) = segments.split_last() else {
            return Err(skip("it has no name"));
        };
        let dir = self.directories(parents)?;
        let target = dir.join(name);
        if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            return Err(skip("a directory is in the way"));
        }
        let mut reader = self.batch.reader(entry).map_err(|e| CliError::engine(path, e))?;
        let mut tmp = TempFile::new_in(&dir).map_err(|e| fatal_io(&dir, e))?;
        copy(&mut reader, tmp.file(), &mut self.buf).map_err(|e| match e {
            CopyError::Read(e) => CliError::engine(path, e),
            CopyError::Write(e) => CliError::output(target.display(), e),
        })?;
        finish_file(tmp.file(), entry).map_err(|e| fatal_io(&target, e))?;
        tmp.persist(&target).map_err(|e| fatal_io(&target, e))?;
        Ok(())
    }

    fn symlink(&mut self, entry: &Entry, path: &ArtifactPath) -> Result<(), Refusal> {
        let segments: Vec<&str> = path.as_str().split('/').collect();
        let Some((name, parents)) = segments.split_last() else {
            return Err(skip("it has no name"));
        };
        let target = link::read_target(self.archive, entry, path)?;
        link::check_target(&target, parents.len()).map_err(skip)?;
        let dir = self.directories(parents)?;
        let at = dir.join(name);
        match link::create(&target, &at) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(skip("something already exists at its path")),
            Err(e) if e.kind() == io::ErrorKind::Unsupported => Err(skip(e)),
            Err(e) => Err(fatal_io(&at, e)),
        }
    }
}

fn fatal_io(path: &Path, err: io::Error) -> Refusal {
    Refusal::Fatal(CliError::new(Exit::Failure, path.display(), err))
}

/// Sets the entry's permission bits (masked to 0o777: never setuid, setgid or sticky) and
/// its modification time on the finished temporary file.
fn finish_file(file: &File, entry: &Entry) -> io::Result<()> {
    #[cfg(unix)]
    if let Some(mode) = entry.unix_mode() {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode & 0o777))?;
    }
    if let Ok(secs) = u64::try_from(entry.modified_unix()) {
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))?;
    }
    Ok(())
}

/// Applies a directory entry's permissions, if the path is still a real directory.
fn set_dir_mode(dir: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    if fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (dir, mode);
    Ok(())
}
