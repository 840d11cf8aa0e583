//! A validated central directory with a name table, for many look-ups of one archive.
#![forbid(unsafe_code)]

use crate::directory::CentralDirectory;
use crate::entry::Entry;
use crate::error::{Corruption, Error, Result, lossy};
use crate::zip::central_directory;
use crate::zip::local_header;

/// A central directory whose records all parse, with a table from name to record, so that
/// a look-up is a binary search instead of a scan. Share it with `Arc` across threads and
/// requests.
///
/// Damage confined to one entry (its data runs past the central directory's start, or its
/// local header starts inside an earlier entry's span) does not fail the build: it is
/// listed in [`damage`](Index::damage), so that a server can refuse that entry and still
/// serve its siblings. [`check_whole`](Index::check_whole) refuses the archive for any of
/// it, which is what writing every entry out (`extract`) needs.
#[derive(Debug)]
pub struct Index {
    cd: CentralDirectory,
    /// `(hash of name, record offset)`, sorted by hash; entries with equal hashes keep
    /// central directory order, so the first match is the first entry of that name.
    table: Box<[(u64, u64)]>,
    /// Per-entry damage, sorted by record offset.
    damage: Box<[Damage]>,
}

/// What is wrong with one entry, found without reading its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The entry's [`record_offset`](Entry::record_offset).
    pub record: u64,
    /// Why it cannot be trusted.
    pub corruption: Corruption,
}

impl Index {
    /// Checks every record of `cd` and builds the name table; per-entry damage is recorded,
    /// not fatal (see the type's docs).
    pub fn build(cd: CentralDirectory) -> Result<Index> {
        let mut table = Vec::with_capacity(cd.len().min(cd.as_bytes().len() as u64 / 46) as usize);
        let mut damage = DamageFinder::new(cd.data_limit(), table.capacity());
        let mut entries = cd.entries();
        loop {
            let at = entries.position() as u64;
            let Some(entry) = entries.next() else { break };
            let entry = entry?;
            table.push((hash(entry.name()), at));
            damage.add(&entry);
        }
        table.sort_by_key(|&(h, _)| h);
        Ok(Index { cd, table: table.into_boxed_slice(), damage: damage.finish().into_boxed_slice() })
    }

    /// The first entry whose name is exactly `name`.
    pub fn find(&self, name: &[u8]) -> Option<Entry> {
        let h = hash(name);
        let first = self.table.partition_point(|&(k, _)| k < h);
        self.table[first..]
            .iter()
            .take_while(|&&(k, _)| k == h)
            .find(|&&(_, at)| {
                central_directory::name_and_len(self.cd.as_bytes(), at as usize, 0).is_ok_and(|(n, _)| n == name)
            })
            .and_then(|&(_, at)| self.cd.entry_at(at as usize).ok().map(|(e, _)| e))
    }

    /// Entries damaged in a way visible without reading their data, by record offset.
    pub fn damage(&self) -> &[Damage] {
        &self.damage
    }

    /// The damage recorded for `entry`, if any.
    pub fn damage_of(&self, entry: &Entry) -> Option<&Corruption> {
        let at = self.damage.binary_search_by_key(&entry.record_offset, |d| d.record).ok()?;
        Some(&self.damage[at].corruption)
    }

    /// Refuses the archive as a whole if any entry is damaged: the first damage, in
    /// central directory order. For writing every entry out, where overlapping entries are
    /// a danger (a quoted-overlap bomb) and a half-written tree a loss.
    pub fn check_whole(&self) -> Result<()> {
        match self.damage.first() {
            Some(d) => Err(Error::Corrupt(d.corruption.clone())),
            None => Ok(()),
        }
    }

    /// The central directory this index covers.
    pub fn central_directory(&self) -> &CentralDirectory {
        &self.cd
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the archive has no entries.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Bytes this index holds in memory: the central directory and the table. What a cache
    /// bounded by bytes counts.
    pub fn memory_size(&self) -> usize {
        self.cd.as_bytes().len()
            + self.table.len() * std::mem::size_of::<(u64, u64)>()
            + self.damage.len() * std::mem::size_of::<Damage>()
    }
}

/// Finds the damage an [`Index`] records, entry by entry, without keeping the entries.
#[derive(Debug)]
pub(crate) struct DamageFinder {
    limit: u64,
    /// (start, record offset, least end) of every entry whose span fits.
    spans: Vec<(u64, u64, u64)>,
    damage: Vec<Damage>,
}

impl DamageFinder {
    /// For entries whose data must end by `limit` (the central directory's offset).
    pub(crate) fn new(limit: u64, capacity: usize) -> DamageFinder {
        DamageFinder { limit, spans: Vec::with_capacity(capacity), damage: Vec::new() }
    }

    /// Takes one entry into account.
    pub(crate) fn add(&mut self, entry: &Entry) {
        let limit = self.limit;
        // The least end of this entry: a local header with the same name, no extra field.
        let min_end = entry
            .header_offset
            .checked_add(local_header::FIXED_LEN as u64 + entry.name().len() as u64)
            .and_then(|e| e.checked_add(entry.compressed_size))
            .filter(|&e| e <= limit);
        match min_end {
            Some(min_end) => self.spans.push((entry.header_offset, entry.record_offset, min_end)),
            None => self.damage.push(Damage {
                record: entry.record_offset,
                corruption: Corruption::OutOfBounds {
                    name: lossy(entry.name()),
                    what: "entry",
                    offset: entry.header_offset,
                    len: entry.compressed_size,
                    limit,
                },
            }),
        }
    }

    /// The damage, sorted by record offset. An entry whose local header starts inside the
    /// span of one that starts earlier (or at the same place, earlier in the directory)
    /// overlaps it: the later one is the intruder, and its span does not count against the
    /// entries after it.
    pub(crate) fn finish(mut self) -> Vec<Damage> {
        self.spans.sort_unstable();
        let mut reach: Option<(u64, u64)> = None; // (start, end) of the furthest-reaching span
        for &(start, at, end) in &self.spans {
            match reach {
                Some((first, first_end)) if start < first_end => self.damage.push(Damage {
                    record: at,
                    corruption: Corruption::OverlappingEntries { first, first_end, second: start },
                }),
                // Spans are sorted by start, so this one reaches furthest now.
                _ => reach = Some((start, end)),
            }
        }
        self.damage.sort_unstable_by_key(|d| d.record);
        self.damage
    }
}

/// A fast non-cryptographic hash of a name (FxHash's mixing, eight bytes at a time).
fn hash(name: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = name.len() as u64;
    let mut chunks = name.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
    }
    h
}
