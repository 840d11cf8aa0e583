//! `artifact ls`: the archive's tree from its central directory, without reading any data.

use std::path::Path;

use artifact_core::metadata::{is_child_of, is_under, tree};

use crate::error::{CliError, Exit};
use crate::input::{RemoteArgs, open_archive};
use crate::listing::{Format, Row, dir_prefix, print};

/// Lists the direct children of `prefix` (or, `recursive`, everything under it).
///
/// The tree is GitLab's: every entry name (the last of duplicates) plus every directory
/// the names imply. A non-empty `prefix` that is not a directory of the tree is
/// `NotFound`, as GitLab's browser answers 404.
pub(crate) fn run(
    archive_path: &Path,
    prefix: &str,
    recursive: bool,
    format: Format,
    remote: &RemoteArgs,
) -> Result<(), CliError> {
    let archive = open_archive(archive_path, remote)?;
    let entries = crate::read_entries(archive_path, &archive)?;
    let tree = tree(&entries);
    let dir = dir_prefix(prefix);
    if !dir.is_empty() && !tree.contains(dir.as_bytes()) {
        return Err(CliError::new(Exit::NotFound, &dir, format_args!("no directory named {dir:?} in the archive")));
    }
    let rows = tree.iter().filter_map(|(path, entry)| {
        let text = String::from_utf8_lossy(path);
        let keep = if recursive { is_under(&text, &dir) } else { is_child_of(&text, &dir) };
        keep.then(|| Row::from_tree(path, entry))
    });
    print(rows, format)?;
    remote.report_directory(archive.central_directory().location());
    remote.report(archive.source().stats());
    Ok(())
}
