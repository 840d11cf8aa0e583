//! Where bytes go: an output file that appears whole or not at all, and a copy loop that
//! tells read failures (the archive's fault) from write failures (the output's fault).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use artifact_core::Error;

/// Buffer size for copying entries: large enough that a read is rarely a system call short.
pub(crate) const COPY_BUFFER: usize = 1 << 20;

/// A temporary file beside its destination; renamed over it by [`TempFile::persist`],
/// removed when dropped otherwise (so a failed CRC check leaves nothing behind).
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    /// Creates a new, empty temporary file in `dir`.
    ///
    /// `create_new` never follows a symlink that may sit at the chosen name, and a name
    /// taken (by an archive entry, say) just moves on to the next.
    pub(crate) fn new_in(dir: &Path) -> io::Result<TempFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".artifact-tmp-{pid}-{n}"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TempFile { path, file, persisted: false });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates a temporary file in the directory that will hold `dest`.
    pub(crate) fn beside(dest: &Path) -> io::Result<TempFile> {
        if dest.file_name().is_none() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a file name"));
        }
        match dest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => TempFile::new_in(dir),
            _ => TempFile::new_in(Path::new(".")),
        }
    }

    /// The open file.
    pub(crate) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Renames the file to `dest`, replacing what is there (a symlink is replaced, never
    /// followed).
    pub(crate) fn persist(mut self, dest: &Path) -> io::Result<()> {
        fs::rename(&self.path, dest)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Why a copy stopped.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// Reading the entry failed: corrupt data, a CRC or size mismatch, I/O on the archive.
    Read(Error),
    /// Writing the output failed.
    Write(io::Error),
}

/// Copies `reader` (an entry reader, whose errors carry engine errors) to `out` with `buf`.
pub(crate) fn copy(reader: &mut impl Read, out: &mut impl Write, buf: &mut [u8]) -> Result<u64, CopyError> {
    let mut total = 0u64;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(Error::from_io(e))),
        };
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}
