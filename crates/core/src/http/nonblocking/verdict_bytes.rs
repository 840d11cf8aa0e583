//! A [`VerifiedEntry`] as bytes, for a disk or shared cache: what another process needs to
//! serve windows of the entry without reading it whole again.
#![forbid(unsafe_code)]

use super::*;
use crate::checkpoints::Checkpoints;
use crate::http::Validator;

/// The encoding's first bytes.
const MAGIC: &[u8; 8] = b"ARTVRD1\n";

impl VerifiedEntry {
    /// The verdict as bytes: the archive version's validator, where the entry's data
    /// starts, what identifies the entry (its record's offset, CRC-32 and sizes), its
    /// checkpoints if kept, and a CRC-32 of all that. Read back with
    /// [`decode`](Self::decode) against the entry of an index.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let text = self.validator.as_str();
        out.push(self.validator.kind());
        out.extend_from_slice(&(text.len() as u64).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        let e = &self.entry;
        for v in [self.data_offset, e.record_offset(), u64::from(e.crc32()), e.compressed_size(), e.size()] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(u8::from(self.checkpoints.is_some()));
        if let Some(points) = &self.checkpoints {
            let mut all = Checkpoints::default();
            all.entries.insert(e.record_offset(), points.clone());
            out.extend_from_slice(&all.encode());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// The verdict [`encode`](Self::encode) wrote, for `entry` (as an index of the archive
    /// describes it now): `None` when the bytes are damaged or describe another entry (other
    /// record offset, CRC-32 or sizes, or a data start that is not where a local header
    /// of the entry's name could end). The validator is the one written: check it against the archive's before use
    /// (as [`RemoteArchives::open_verified_window_async`](crate::http::RemoteArchives::open_verified_window_async)
    /// does).
    pub fn decode(bytes: &[u8], entry: &Entry) -> Option<VerifiedEntry> {
        let (bytes, crc) = bytes.split_last_chunk::<4>()?;
        if crc32fast::hash(bytes).to_le_bytes() != *crc {
            return None;
        }
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let (&kind, rest) = rest.split_first()?;
        let (len, rest) = rest.split_first_chunk::<8>()?;
        let len = usize::try_from(u64::from_le_bytes(*len)).ok().filter(|l| *l <= rest.len())?;
        let (text, mut rest) = rest.split_at(len);
        let text = std::str::from_utf8(text).ok()?.to_owned();
        let validator = Validator::from_kind(kind, text)?;
        let mut fields = [0u64; 5];
        for field in &mut fields {
            let (v, tail) = rest.split_first_chunk::<8>()?;
            *field = u64::from_le_bytes(*v);
            rest = tail;
        }
        let [data_offset, record, crc32, compressed, size] = fields;
        let same = record == entry.record_offset()
            && crc32 == u64::from(entry.crc32())
            && compressed == entry.compressed_size()
            && size == entry.size();
        // The data starts after the local header: its 30 fixed bytes and the name, then an
        // extra field of at most 64 KiB; it ends within the archive's offsets.
        let after_name = entry.header_offset.checked_add(30 + entry.name().len() as u64)?;
        let placed = (after_name..=after_name + 0xFFFF).contains(&data_offset)
            && data_offset.checked_add(entry.compressed_size()).is_some();
        if !same || !placed {
            return None;
        }
        let (&with_checkpoints, rest) = rest.split_first()?;
        let checkpoints = if with_checkpoints == 0 && rest.is_empty() {
            None
        } else if with_checkpoints != 1 {
            return None;
        } else {
            let mut all = Checkpoints::decode(rest).ok()?;
            let points = all.entries.remove(&record).filter(|c| c.fits(entry) && entry.method() == 8)?;
            if !all.entries.is_empty() {
                return None;
            }
            Some(points)
        };
        Some(VerifiedEntry { entry: entry.clone(), validator, data_offset, checkpoints })
    }
}
