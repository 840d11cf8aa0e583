//! A validated central directory with a name table, for many look-ups of one archive.

use crate::directory::CentralDirectory;
use crate::entry::Entry;
use crate::error::{Corruption, Result, lossy};
use crate::zip::central_directory;
use crate::zip::local_header;

/// A central directory checked as a whole (entry count, every record, entries within the
/// data region and not overlapping) with a table from name to record, so that a look-up is
/// a binary search instead of a scan. Share it with `Arc` across threads and requests.
#[derive(Debug)]
pub struct Index {
    cd: CentralDirectory,
    /// `(hash of name, record offset)`, sorted by hash; entries with equal hashes keep
    /// central directory order, so the first match is the first entry of that name.
    table: Box<[(u64, u64)]>,
}

impl Index {
    /// Validates `cd` and builds the name table.
    pub fn build(cd: CentralDirectory) -> Result<Index> {
        let limit = cd.data_limit();
        let mut table = Vec::with_capacity(cd.len().min(cd.as_bytes().len() as u64 / 46) as usize);
        let mut spans = Vec::with_capacity(table.capacity());
        let mut entries = cd.entries();
        loop {
            let at = entries.position() as u64;
            let Some(entry) = entries.next() else { break };
            let entry = entry?;
            // The least end of this entry: a local header with the same name, no extra field.
            let min_end = entry
                .header_offset
                .checked_add(local_header::FIXED_LEN as u64 + entry.name().len() as u64)
                .and_then(|e| e.checked_add(entry.compressed_size))
                .filter(|&e| e <= limit);
            let Some(min_end) = min_end else {
                return Err(Corruption::OutOfBounds {
                    name: lossy(entry.name()),
                    what: "entry",
                    offset: entry.header_offset,
                    len: entry.compressed_size,
                    limit,
                }
                .into());
            };
            table.push((hash(entry.name()), at));
            spans.push((entry.header_offset, min_end));
        }
        spans.sort_unstable();
        for pair in spans.windows(2) {
            let ((first, first_end), (second, _)) = (pair[0], pair[1]);
            if first_end > second {
                return Err(Corruption::OverlappingEntries { first, first_end, second }.into());
            }
        }
        table.sort_by_key(|&(h, _)| h);
        Ok(Index { cd, table: table.into_boxed_slice() })
    }

    /// The first entry whose name is exactly `name`.
    pub fn find(&self, name: &[u8]) -> Option<Entry> {
        let h = hash(name);
        let first = self.table.partition_point(|&(k, _)| k < h);
        self.table[first..]
            .iter()
            .take_while(|&&(k, _)| k == h)
            .find(|&&(_, at)| {
                central_directory::name_and_len(self.cd.as_bytes(), at as usize, 0)
                    .is_ok_and(|(n, _)| n == name)
            })
            .and_then(|&(_, at)| self.cd.entry_at(at as usize).ok().map(|(e, _)| e))
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
        self.cd.as_bytes().len() + self.table.len() * std::mem::size_of::<(u64, u64)>()
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
