//! Symbolic link entries: read the target, decide whether it stays inside, create it.

use std::io::{self, Read};
use std::path::Path;

use artifact_core::{ArtifactPath, Entry};

use super::{Refusal, skip};
use crate::error::CliError;
use crate::output::{CopyError, copy};

/// The longest link target read, in bytes (Linux's `PATH_MAX`).
const MAX_TARGET: u64 = 4096;

/// The link's target: the entry's data, which must be short UTF-8.
pub(super) fn read_target(
    archive: &crate::input::AnyArchive,
    entry: &Entry,
    path: &ArtifactPath,
) -> Result<String, Refusal> {
    if entry.size() > MAX_TARGET {
        return Err(skip(format_args!("its link target is longer than {MAX_TARGET} bytes")));
    }
    let reader = archive.reader(entry).map_err(|e| CliError::engine(path, e))?;
    let mut target = Vec::new();
    let mut buf = [0; 1024];
    copy(&mut reader.take(MAX_TARGET + 1), &mut target, &mut buf).map_err(|e| match e {
        CopyError::Read(e) => Refusal::Fatal(CliError::engine(path, e)),
        CopyError::Write(e) => Refusal::Fatal(CliError::output(path, e)),
    })?;
    String::from_utf8(target).map_err(|_| skip("its link target is not UTF-8"))
}

/// Whether a link `depth` directories below the destination may point at `target`.
///
/// The target must be relative, and its `..` segments must all come first and climb no
/// higher than the destination. Lexical checks cannot see through other links, so `..`
/// after a name (`sub/../x`, where `sub` could be a link to somewhere shallower) is
/// refused outright; the leading `..` only walk up real directories, which extraction
/// verified.
pub(super) fn check_target(target: &str, depth: usize) -> Result<(), &'static str> {
    if target.is_empty() {
        return Err("its link target is empty");
    }
    if target.starts_with('/') {
        return Err("its link target is absolute");
    }
    if target.chars().any(char::is_control) {
        return Err("its link target holds a control character");
    }
    let (mut up, mut named) = (0usize, false);
    for segment in target.split('/') {
        match segment {
            "" | "." => {}
            ".." if named => return Err("its link target has '..' after a name"),
            ".." => up += 1,
            _ => named = true,
        }
    }
    if up > depth {
        return Err("its link target points outside the destination");
    }
    Ok(())
}

/// Creates the link; fails with `AlreadyExists` if anything is at `at`.
pub(super) fn create(target: &str, at: &Path) -> io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::symlink(target, at);
    #[cfg(not(unix))]
    {
        let _ = (target, at);
        Err(io::Error::new(io::ErrorKind::Unsupported, "symbolic links are not supported here"))
    }
}

#[cfg(test)]
mod tests {
    use super::check_target;

    #[test]
    fn targets_stay_inside() {
        assert!(check_target("target.txt", 0).is_ok());
        assert!(check_target("./x/y", 0).is_ok());
        assert!(check_target("../x", 1).is_ok());
        assert!(check_target("../../x", 1).is_err());
        assert!(check_target("..", 0).is_err());
        assert!(check_target("/tmp/outside", 3).is_err());
        assert!(check_target("sub/../x", 0).is_err());
        assert!(check_target("", 0).is_err());
    }
}
