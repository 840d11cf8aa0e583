//! `artifact metadata`: GitLab's `metadata.gz`, generated from an archive or listed.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;

use artifact_core::metadata::{self as md, MetadataEntry, MetadataReader};

use crate::error::{CliError, Exit};
use crate::listing::{Format, Row, dir_prefix, print};
use crate::output::TempFile;

/// Writes the `metadata.gz` GitLab generates for `archive_path` (a file or a URL, read with
/// `remote`'s headers, authorities and cache) to `output`, or to stdout.
pub(crate) fn generate(
    archive_path: &Path,
    output: Option<&Path>,
    remote: &crate::input::RemoteArgs,
) -> Result<(), CliError> {
    let archive = crate::input::open_archive(archive_path, remote)?;
    let entries = crate::read_entries(archive_path, &archive)?;
    let written = match output {
        Some(dest) => {
            let shown = dest.display();
            let mut tmp = TempFile::beside(dest).map_err(|e| CliError::output(&shown, e))?;
            md::generate(&entries, BufWriter::new(tmp.file()))
                .and_then(|mut out| out.flush())
                .map_err(|e| CliError::output(&shown, e))?;
            tmp.persist(dest).map_err(|e| CliError::output(&shown, e))
        }
        None => md::generate(&entries, BufWriter::new(io::stdout().lock()))
            .and_then(|mut out| out.flush())
            .map_err(|e| CliError::output("stdout", e)),
    };
    remote.report_directory(archive.central_directory().location());
    remote.report(archive.source().stats());
    written
}

/// Lists the direct children of `prefix` in a `metadata.gz` (or, `recursive`, everything
/// under it), by GitLab's rules. A non-empty `prefix` not listed as a directory is
/// `NotFound`.
pub(crate) fn ls(metadata_path: &Path, prefix: &str, recursive: bool, format: Format) -> Result<(), CliError> {
    let shown = metadata_path.display();
    let file = File::open(metadata_path).map_err(|e| CliError::input(&shown, e))?;
    let mut reader = MetadataReader::new(BufReader::new(file)).map_err(|e| CliError::engine(&shown, e))?;
    let dir = dir_prefix(prefix);
    let mut found = dir.is_empty();
    let mut rows = Vec::new();
    // Borrowed entries: only the rows listed are copied out of the reader.
    while let Some(entry) = reader.next_ref().map_err(|e| CliError::engine(&shown, e))? {
        found |= entry.path == dir;
        let keep = if recursive { md::is_under(entry.path, &dir) } else { md::is_child_of(entry.path, &dir) };
        if keep {
            rows.push(row(entry.to_entry()));
        }
    }
    if !found {
        return Err(CliError::new(Exit::NotFound, &dir, format_args!("no directory named {dir:?} in the metadata")));
    }
    print(rows, format)
}

/// What a metadata record says; it records neither the method nor the file type.
fn row(entry: MetadataEntry) -> Row {
    let dir = entry.is_dir();
    let m = entry.metadata;
    Row {
        dir,
        path: entry.path,
        size: m.size,
        compressed_size: m.zipped,
        crc32: m.crc,
        method: None,
        mode: m.mode.and_then(|s| u32::from_str_radix(&s, 8).ok()),
        modified: m.modified,
        symlink: None,
    }
}
