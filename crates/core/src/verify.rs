//! Reading every entry of an archive once, on all cores, to know which ones may be served:
//! size and CRC-32 of stored entries, inflate + size + CRC-32 of deflated ones.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::archive::Archive;
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::source::Source;

/// How to verify: threads and a progress counter.
///
/// ```
/// let options = artifact_core::VerifyOptions::new().threads(1);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    threads: usize,
    progress: Option<Arc<AtomicU64>>,
}

impl VerifyOptions {
    /// All cores, no progress counter.
    pub fn new() -> VerifyOptions {
        VerifyOptions::default()
    }

    /// Uses at most `threads` threads (0: one per core).
    pub fn threads(mut self, threads: usize) -> VerifyOptions {
        self.threads = threads;
        self
    }

    /// Adds each entry's compressed size to `progress` as the entry is done (for a progress
    /// bar; the total is the sum of the entries' compressed sizes).
    pub fn progress(mut self, progress: Arc<AtomicU64>) -> VerifyOptions {
        self.progress = Some(progress);
        self
    }
}

/// The outcome of reading every entry: how many there are and which were refused. Every
/// entry not refused read back complete, with its declared size and CRC-32.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Entries in the archive.
    pub entries: u64,
    /// Uncompressed bytes of the entries that verified.
    pub bytes: u64,
    /// The entries that did not verify, in central directory order.
    pub refused: Vec<Refusal>,
}

/// One entry that did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The entry's [`record_offset`](Entry::record_offset).
    pub record: u64,
    /// The entry's name (invalid UTF-8 replaced).
    pub name: String,
    /// Why, as the engine's error says it.
    pub reason: String,
}

impl Verification {
    /// Entries that verified.
    pub fn verified(&self) -> u64 {
        self.entries - self.refused.len() as u64
    }

    /// Why `entry` was refused, or `None` if it verified.
    pub fn refusal_of(&self, entry: &Entry) -> Option<&Refusal> {
        let at = self.refused.binary_search_by_key(&entry.record_offset(), |r| r.record).ok()?;
        Some(&self.refused[at])
    }
}

/// Reads `entry` to its end, checking what the reader checks (local header, bounds, the
/// expansion ratio, size, CRC-32). `Ok(Err(_))` is a refusal; `Err(_)` a failure to read the
/// source, which says nothing about the entry.
pub fn verify_entry<S: Source>(archive: &Archive<S>, entry: &Entry, scratch: &mut [u8]) -> Result<Result<u64, Error>> {
    let refused_or_failed = |e: Error| match e {
        Error::Io(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => Err(Error::Io(e)),
        Error::Http { .. } | Error::Changed { .. } => Err(e),
        e => Ok(Err(e)),
    };
    if let Some(damage) = archive.index()?.damage_of(entry) {
        return Ok(Err(Error::Corrupt(damage.clone())));
    }
    let mut reader = match archive.reader(entry) {
        Ok(r) => r,
        Err(e) => return refused_or_failed(e),
    };
    loop {
        match reader.read(scratch) {
            Ok(0) => return Ok(Ok(reader.produced())),
            Ok(_) => {}
            Err(e) => return refused_or_failed(Error::from_io(e)),
        }
    }
}

/// Reads every entry of `archive` once and says which may be served. Entries are taken in
/// central directory order by as many threads as `options` allow; an entry damaged in the
/// index (overlapping another, running past the directory) is refused without reading.
///
/// An error means the source could not be read (or the central directory is corrupt), not
/// that an entry is bad.
///
/// ```no_run
/// use artifact_core::{Archive, VerifyOptions, verify};
/// let archive = Archive::open_file("artifacts.zip")?;
/// let outcome = verify(&archive, &VerifyOptions::new())?;
/// for refusal in &outcome.refused {
///     eprintln!("{}: {}", refusal.name, refusal.reason);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify<S: Source>(archive: &Archive<S>, options: &VerifyOptions) -> Result<Verification> {
    archive.index()?;
    let entries = archive.entries().collect::<Result<Vec<_>>>()?;
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, entries.len().max(1));
    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let work = || -> Result<Vec<Refusal>> {
        let mut scratch = vec![0u8; 256 * 1024];
        let mut refused = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(entry) = entries.get(i) else {
                return Ok(refused);
            };
            match verify_entry(archive, entry, &mut scratch) {
                Ok(Ok(n)) => {
                    bytes.fetch_add(n, Ordering::Relaxed);
                }
                Ok(Err(e)) => refused.push(Refusal {
                    record: entry.record_offset(),
                    name: entry.display_name().into_owned(),
                    reason: e.to_string(),
                }),
                Err(e) => {
                    // Stop the others too: the outcome is lost anyway.
                    next.store(usize::MAX / 2, Ordering::Relaxed);
                    return Err(e);
                }
            }
            if let Some(progress) = &options.progress {
                progress.fetch_add(entry.compressed_size(), Ordering::Relaxed);
            }
        }
    };
    let mut refused = if threads == 1 {
        work()?
    } else {
        let results: Vec<Result<Vec<Refusal>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        let mut all = Vec::new();
        for r in results {
            all.extend(r?);
        }
        all
    };
    refused.sort_unstable_by_key(|r| r.record);
    Ok(Verification { entries: entries.len() as u64, bytes: bytes.into_inner(), refused })
}
