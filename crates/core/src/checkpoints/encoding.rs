//! How checkpoints are kept: windows raw-deflated, and an archive's indexes in one encoding
//! that ends in a CRC-32 of everything before it.
#![forbid(unsafe_code)]

use super::*;

/// The encoding's first bytes.
const MAGIC: &[u8; 8] = b"ARTCKPT1";

/// Raw-deflates `bytes` (a window) with a fast level.
pub(super) fn pack(bytes: &[u8]) -> Vec<u8> {
    let mut out = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec does not fail.
    let _ = io::Write::write_all(&mut out, bytes);
    out.finish().unwrap_or_default()
}

/// Inflates a packed window, at most `WINDOW` bytes.
pub(super) fn unpack(packed: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(WINDOW);
    let inflated = flate2::read::DeflateDecoder::new(packed).take(WINDOW as u64 + 1).read_to_end(&mut out);
    if inflated.is_err() {
        return Err(CheckpointProblem::Damaged("a window that does not inflate").into());
    }
    if out.len() > WINDOW {
        return Err(CheckpointProblem::Damaged("a window over 32 KiB").into());
    }
    Ok(out)
}

/// The checkpoints of an archive's entries, by their record offset
/// ([`Entry::record_offset`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoints {
    /// By record offset.
    pub entries: BTreeMap<u64, std::sync::Arc<EntryCheckpoints>>,
}

impl Checkpoints {
    /// The checkpoints of `entry`, if there are any built from it.
    pub fn of(&self, entry: &Entry) -> Option<&std::sync::Arc<EntryCheckpoints>> {
        self.entries.get(&entry.record_offset()).filter(|c| c.fits(entry))
    }

    /// The encoding: `ARTCKPT1`, the entries, and a CRC-32 of all that (little-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let u64s =
            |out: &mut Vec<u8>, values: &[u64]| values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        u64s(&mut out, &[self.entries.len() as u64]);
        for (record, e) in &self.entries {
            u64s(&mut out, &[*record, e.size, u64::from(e.crc32), e.compressed, e.points.len() as u64]);
            for p in &e.points {
                u64s(&mut out, &[p.out, p.input, u64::from(p.bits), p.window.len() as u64]);
                out.extend_from_slice(&p.window);
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads an encoding made by [`encode`](Self::encode); anything damaged (checksum,
    /// lengths, order) is a [`CheckpointProblem::Damaged`] error.
    pub fn decode(bytes: &[u8]) -> Result<Checkpoints> {
        let bad = |why: &'static str| Error::from(CheckpointProblem::Damaged(why));
        let body_len = bytes.len().checked_sub(4).ok_or_else(|| bad("too short"))?;
        let (body, crc) = bytes.split_at(body_len);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err(bad("checksum mismatch"));
        }
        let mut r = Cursor(body.strip_prefix(MAGIC.as_slice()).ok_or_else(|| bad("not an index"))?);
        let truncated = || bad("truncated");
        let mut entries = BTreeMap::new();
        for _ in 0..r.u64().ok_or_else(truncated)? {
            let mut next = || r.u64().ok_or_else(truncated);
            let (record, size, crc32, compressed, n) = (next()?, next()?, next()?, next()?, next()?);
            let crc32 = u32::try_from(crc32).map_err(|_| bad("a CRC-32 out of range"))?;
            let mut points: Vec<Checkpoint> = Vec::new();
            for _ in 0..n {
                let mut next = || r.u64().ok_or_else(truncated);
                let (out, input, bits, len) = (next()?, next()?, next()?, next()?);
                let ordered = points.last().is_none_or(|p| p.out < out);
                if bits > 7 || out > size || input > compressed || input == 0 || !ordered {
                    return Err(bad("a checkpoint out of range"));
                }
                let window = r.bytes(len).ok_or_else(truncated)?;
                points.push(Checkpoint { out, input, bits: bits as u8, window: window.to_vec() });
            }
            entries.insert(record, std::sync::Arc::new(EntryCheckpoints { size, crc32, compressed, points }));
        }
        if !r.0.is_empty() {
            return Err(bad("bytes after the last entry"));
        }
        Ok(Checkpoints { entries })
    }
}

/// Reads an encoding from the front.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn u64(&mut self) -> Option<u64> {
        let (head, tail) = self.0.split_first_chunk::<8>()?;
        self.0 = tail;
        Some(u64::from_le_bytes(*head))
    }

    fn bytes(&mut self, len: u64) -> Option<&'a [u8]> {
        let len = usize::try_from(len).ok().filter(|l| *l <= self.0.len())?;
        let (head, tail) = self.0.split_at(len);
        self.0 = tail;
        Some(head)
    }
}
