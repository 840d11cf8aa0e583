//! `artifact cat`: one entry's bytes, checked, to stdout or to a file.

use std::io::{self, IsTerminal, Read, Write};

use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

use artifact_core::http::RemoteArchives;
use artifact_core::{ArtifactPath, FileSource, Source, open_entry};

use crate::input::{RemoteArgs, url_of};

use crate::error::CliError;
use crate::output::{COPY_BUFFER, CopyError, TempFile, copy};

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
    let reader = match &origin {
        Origin::Remote(url, archives) => archives.open_entry(url, &path),
        // One look-up: scan the central directory through a small buffer, no map.
        Origin::Local(source) => open_entry(source, &path),
    }
    .map_err(|e| CliError::engine(&path, e))?;
    // A progress bar only for a person watching a large entry; scripts see nothing.
    let size = reader.entry().size();
    let bar = (io::stderr().is_terminal() && size > 1 << 20).then(|| progress_bar(size));
    let mut reader: Box<dyn Read> = match &bar {
        Some(bar) => Box::new(bar.wrap_read(reader)),
        None => Box::new(reader),
    };
    let mut buf = vec![0; COPY_BUFFER];
    match output {
        Some(dest) => {
            let shown = dest.display();
            let mut tmp = TempFile::beside(dest).map_err(|e| CliError::output(&shown, e))?;
            copy(&mut reader, tmp.file(), &mut buf).map_err(|e| copy_error(&path, &shown, e))?;
            tmp.persist(dest).map_err(|e| CliError::output(&shown, e))?;
        }
        None => {
            let mut stdout = io::stdout().lock();
            copy(&mut reader, &mut stdout, &mut buf).map_err(|e| copy_error(&path, "stdout", e))?;
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
