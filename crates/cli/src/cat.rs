//! `artifact cat`: one entry's bytes, checked, to stdout or to a file.

use std::hash::{Hash, Hasher};
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use artifact_core::checkpoints::CheckpointingReader;
use artifact_core::http::RemoteArchives;
use artifact_core::{Archive, ArtifactPath, FileSource, Source, open_entry};

use crate::input::{RemoteArgs, url_of};

use crate::error::CliError;
use crate::output::{COPY_BUFFER, CopyError, TempFile};

/// Writes the entry named `name` of `archive` to `output`, or to stdout.
///
/// The path rule is checked before the archive is opened, so a bad path is exit 3 whatever
/// the archive. With `output`, the bytes go to a temporary file that is renamed only once
/// the CRC-32 and size checked out.
pub(crate) fn run(
    archive_path: &Path,
    name: &[u8],
    output: Option<&Path>,
    remote: &RemoteArgs,
) -> Result<(), CliError> {
    let shown = String::from_utf8_lossy(name);
    let path = ArtifactPath::new(name).map_err(|e| CliError::engine(&shown, e.into()))?;
    let origin = match url_of(archive_path) {
        Some(url) => Origin::Remote(url, Box::new(remote.remote()?)),
        None => {
            let shown = archive_path.display();
            Origin::Local(FileSource::open(archive_path).map_err(|e| CliError::engine(&shown, e.into()))?)
        }
    };
    let checkpointed = match (&origin, remote.index_cache()) {
        (Origin::Local(_), Some(dir)) => checkpointed(archive_path, &path, dir)?,
        _ => None,
    };
    let (size, mut reader): SizedReader = match checkpointed {
        Some(found) => found,
        None => {
            let reader = match &origin {
                Origin::Remote(url, archives) => archives.open_entry(url, &path),
                // One look-up: scan the central directory through a small buffer, no map.
                Origin::Local(source) => open_entry(source, &path),
            }
            .map_err(|e| CliError::engine(&path, e))?;
            (reader.entry().size(), Box::new(BufReader::with_capacity(COPY_BUFFER, reader)))
        }
    };
    // A progress bar only for a person watching a large entry; scripts see nothing.
    let bar = (io::stderr().is_terminal() && size > 1 << 20).then(|| progress_bar(size));
    match output {
        Some(dest) => {
            let shown = dest.display();
            let mut tmp = TempFile::beside(dest).map_err(|e| CliError::output(&shown, e))?;
            copy_buffered(&mut reader, tmp.file(), bar.as_ref()).map_err(|e| copy_error(&path, &shown, e))?;
            tmp.persist(dest).map_err(|e| CliError::output(&shown, e))?;
        }
        None => {
            let mut stdout = io::stdout().lock();
            copy_buffered(&mut reader, &mut stdout, bar.as_ref()).map_err(|e| copy_error(&path, "stdout", e))?;
            stdout.flush().map_err(|e| CliError::output("stdout", e))?;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Origin::Local(source) = &origin
        && let Ok(location) = artifact_core::CentralDirectory::locate(source)
    {
        remote.report_directory(location);
    }
    remote.report(match &origin {
        Origin::Remote(_, archives) => archives.stats(),
        Origin::Local(source) => source.stats(),
    });
    Ok(())
}

pub(crate) fn progress_bar(size: u64) -> ProgressBar {
    let style = ProgressStyle::with_template("{bytes}/{total_bytes} {wide_bar} {bytes_per_sec} {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(size).with_style(style)
}

/// An entry's size and a reader of it.
type SizedReader = (u64, Box<dyn BufRead>);

/// Copies `reader` to `out` from the reader's own buffers (for the parallel reader, the
/// inflated segments themselves), counting on `bar`.
fn copy_buffered(reader: &mut dyn BufRead, out: &mut impl Write, bar: Option<&ProgressBar>) -> Result<u64, CopyError> {
    let mut total = 0u64;
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) => return Ok(total),
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(artifact_core::Error::from_io(e))),
        };
        out.write_all(chunk).map_err(CopyError::Write)?;
        let n = chunk.len();
        reader.consume(n);
        total += n as u64;
        if let Some(bar) = bar {
            bar.inc(n as u64);
        }
    }
}

/// A local archive's deflated entry over 8 MiB, with `--index-cache DIR`: its checkpoints
/// kept in DIR (by the file's path, size and modification time, and the entry), read on all
/// cores; or, the first time, read once while they are made, and kept once the entry
/// verified. `None` for any other entry, and on a single core. The size, and the reader.
fn checkpointed(archive_path: &Path, path: &ArtifactPath, dir: &Path) -> Result<Option<SizedReader>, CliError> {
    use artifact_core::checkpoints::{Checkpoints, DEFAULT_SPACING, MIN_ENTRY};
    // One core: nothing to gain (the segments would only cost a copy).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 {
        return Ok(None);
    }
    let shown = archive_path.display();
    let source = FileSource::open(archive_path).map_err(|e| CliError::engine(&shown, e.into()))?;
    let archive = Archive::open(Arc::new(source)).map_err(|e| CliError::engine(&shown, e))?;
    let entry = archive.find(path).map_err(|e| CliError::engine(path, e))?;
    if entry.method() != 8 || entry.size() <= MIN_ENTRY {
        return Ok(None);
    }
    let Ok(identity) = artifact_core::file_key(archive_path) else { return Ok(None) };
    let mut h = std::hash::DefaultHasher::new();
    (identity, entry.record_offset()).hash(&mut h);
    let file = dir.join(format!("{:016x}.ckpt", h.finish()));
    let kept = std::fs::read(&file).ok().and_then(|b| Checkpoints::decode(&b).ok());
    if let Some(points) = kept.as_ref().and_then(|k| k.of(&entry)) {
        let reader = points.parallel_reader(&archive, &entry, threads);
        return Ok(Some((entry.size(), Box::new(reader.map_err(|e| CliError::engine(path, e))?))));
    }
    let reader = CheckpointingReader::new(&archive, &entry, DEFAULT_SPACING).map_err(|e| CliError::engine(path, e))?;
    let keep = KeepAtEnd { reader: Some(reader), record: entry.record_offset(), file };
    Ok(Some((entry.size(), Box::new(BufReader::with_capacity(COPY_BUFFER, keep)))))
}

/// Reads through a [`CheckpointingReader`]; at its verified end, writes the checkpoints to
/// `file` (a failure to write them only means no checkpoints next time).
struct KeepAtEnd {
    reader: Option<CheckpointingReader>,
    record: u64,
    file: PathBuf,
}

impl Read for KeepAtEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(reader) = &mut self.reader else { return Ok(0) };
        let n = reader.read(buf)?;
        if n == 0
            && !buf.is_empty()
            && let Some(points) = self.reader.take().and_then(CheckpointingReader::into_checkpoints)
        {
            let mut all = artifact_core::checkpoints::Checkpoints::default();
            all.entries.insert(self.record, Arc::new(points));
            let _ = write_atomically(&self.file, &all.encode());
        }
        Ok(n)
    }
}

/// Writes `bytes` to `file` through a temporary file beside it (removed if anything fails).
fn write_atomically(file: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = TempFile::beside(file)?;
    tmp.file().write_all(bytes)?;
    tmp.persist(file)
}

/// Where the archive is.
enum Origin<'a> {
    Local(FileSource),
    Remote(&'a str, Box<RemoteArchives>),
}

/// A read failure is about the entry; a write failure about the output.
fn copy_error(entry: &ArtifactPath, output: impl std::fmt::Display, err: CopyError) -> CliError {
    match err {
        CopyError::Read(e) => CliError::engine(entry, e),
        CopyError::Write(e) => CliError::output(output, e),
    }
}
