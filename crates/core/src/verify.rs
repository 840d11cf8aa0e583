//! Reading every entry of an archive once, on all cores, to know which ones may be served:
//! size and CRC-32 of stored entries, inflate + size + CRC-32 of deflated ones.
#![forbid(unsafe_code)]

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use crate::archive::Archive;
use crate::batch::DEFAULT_MAX_GAP;
use crate::checkpoints::{Checkpoints, EntryCheckpoints, MIN_ENTRY};
use crate::entry::Entry;
use crate::error::Corruption;
use crate::error::{Error, Result};
use crate::index::DamageFinder;
use crate::reader::EntryReader;
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
    /// Checkpoint spacing for large deflated entries (0: none).
    spacing: u64,
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

    /// Builds [checkpoints](crate::checkpoints) every `spacing` bytes of output for the
    /// deflated entries larger than [`MIN_ENTRY`](crate::checkpoints::MIN_ENTRY), in the
    /// same inflate that verifies them (see [`verify_with_checkpoints`]). `0`: none (the
    /// default).
    pub fn checkpoints(mut self, spacing: u64) -> VerifyOptions {
        self.spacing = spacing;
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
    /// Why, as the engine's error says it (without the name).
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
    if let Some(damage) = archive.index()?.damage_of(entry) {
        return Ok(Err(Error::Corrupt(damage.clone())));
    }
    drain(archive.reader(entry), scratch)
}

/// Reads an entry reader to its end: its size, a refusal, or a failure of the source.
fn drain(reader: Result<EntryReader>, scratch: &mut [u8]) -> Result<Result<u64, Error>> {
    let refused_or_failed = |e: Error| match e {
        Error::Io(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => Err(Error::Io(e)),
        Error::Http { .. } | Error::Changed { .. } => Err(e),
        e => Ok(Err(e)),
    };
    let mut reader = match reader {
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

/// Entries taken at once by one thread: small ones in runs that share reads of the source.
const GROUP: usize = 256;
/// Entries at least this large (compressed) are read alone, straight from the source.
const ALONE: u64 = 1 << 20;

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
    verify_with_checkpoints(archive, options).map(|(verification, _)| verification)
}

/// [`verify`], and the checkpoints of the large deflated entries that verified, built in
/// the same inflate when `options` ask for them ([`VerifyOptions::checkpoints`]; else
/// none).
pub fn verify_with_checkpoints<S: Source>(
    archive: &Archive<S>,
    options: &VerifyOptions,
) -> Result<(Verification, Checkpoints)> {
    let entries = archive.entries().collect::<Result<Vec<_>>>()?;
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .max(1);
    // What the index would find without reading (no name table is needed here).
    let mut finder = DamageFinder::new(archive.central_directory().data_limit(), 0);
    entries.iter().for_each(|e| finder.add(e));
    let damage: HashMap<u64, Corruption> = finder.finish().into_iter().map(|d| (d.record, d.corruption)).collect();
    let damage_of = |e: &Entry| damage.get(&e.record_offset());
    // Groups of entries in central directory order: runs of small ones (read through one
    // shared range each), and large ones alone.
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match groups.last_mut() {
            Some(g)
                if g.len() < GROUP && entry.compressed_size() < ALONE && entries[g.start].compressed_size() < ALONE =>
            {
                g.end = i + 1
            }
            _ => groups.push(i..i + 1),
        }
    }
    let threads = threads.min(groups.len().max(1));
    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let work = || -> Result<(Vec<Refusal>, Checkpoints)> {
        let mut scratch = vec![0u8; 256 * 1024];
        let mut refused = Vec::new();
        let mut checkpoints = Checkpoints::default();
        loop {
            let g = next.fetch_add(1, Ordering::Relaxed);
            let Some(group) = groups.get(g) else { return Ok((refused, checkpoints)) };
            let group = &entries[group.clone()];
            let readable: Vec<&Entry> = group.iter().filter(|e| damage_of(e).is_none()).collect();
            // A lone entry is read straight from the source, not through a shared range.
            let mut batch = (group.len() > 1).then(|| archive.batch(readable.iter().copied(), DEFAULT_MAX_GAP));
            for entry in group {
                let outcome = match (damage_of(entry), &mut batch) {
                    (Some(damage), _) => Ok(Err(Error::Corrupt(damage.clone()))),
                    (None, Some(batch)) => drain(batch.reader(entry), &mut scratch),
                    (None, None) if options.spacing > 0 && entry.method() == 8 && entry.size() > MIN_ENTRY => {
                        // Verified by the inflate that builds its checkpoints; anything
                        // wrong is read again the usual way, for the usual refusal.
                        match EntryCheckpoints::build(archive, entry, options.spacing) {
                            Ok(built) => {
                                checkpoints.entries.insert(entry.record_offset(), Arc::new(built));
                                Ok(Ok(entry.size()))
                            }
                            Err(_) => drain(archive.reader(entry), &mut scratch),
                        }
                    }
                    (None, None) => drain(archive.reader(entry), &mut scratch),
                };
                match outcome {
                    Ok(Ok(n)) => {
                        bytes.fetch_add(n, Ordering::Relaxed);
                    }
                    Ok(Err(e)) => {
                        let name = entry.display_name().into_owned();
                        // The name is the refusal's own field: not repeated in the reason.
                        let reason = e.to_string().replacen(&format!("entry {name:?}: "), "", 1);
                        refused.push(Refusal { record: entry.record_offset(), name, reason })
                    }
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
        }
    };
    let (mut refused, checkpoints) = if threads == 1 {
        work()?
    } else {
        let results: Vec<Result<(Vec<Refusal>, Checkpoints)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        let (mut all, mut checkpoints) = (Vec::new(), Checkpoints::default());
        for r in results {
            let (refused, built) = r?;
            all.extend(refused);
            checkpoints.entries.extend(built.entries);
        }
        (all, checkpoints)
    };
    refused.sort_unstable_by_key(|r| r.record);
    Ok((Verification { entries: entries.len() as u64, bytes: bytes.into_inner(), refused }, checkpoints))
}
