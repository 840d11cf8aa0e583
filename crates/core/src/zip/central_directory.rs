//! Central directory file header (APPNOTE 4.3.12) and the zip64 extended information extra
//! field (4.5.3) that widens its sizes and offset.
#![forbid(unsafe_code)]

use super::{Fields, ZIP64_EXTRA, extra_fields, need, signature, u16_at, u32_at};
use crate::error::Corruption;

pub(crate) const SIGNATURE: u32 = 0x0201_4b50;
pub(crate) const FIXED_LEN: usize = 46;
const RECORD: &str = "central directory file header";

/// One central directory record, borrowed from the central directory's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CentralDirectoryFileHeader<'a> {
    pub(crate) version_made_by: u16,
    pub(crate) flags: u16,
    pub(crate) method: u16,
    pub(crate) dos_time: u16,
    pub(crate) dos_date: u16,
    pub(crate) crc32: u32,
    pub(crate) compressed_size: u64,
    pub(crate) uncompressed_size: u64,
    pub(crate) external_attributes: u32,
    /// Offset of the local header as declared (before any shift for prepended data).
    pub(crate) header_offset: u64,
    pub(crate) name: &'a [u8],
    pub(crate) comment: &'a [u8],
    /// Bytes this record takes, fixed part and variable fields.
    pub(crate) len: usize,
}

/// The variable lengths of the record at `at`, checked against the bytes: what a scan needs
/// to compare a name and move on without parsing the rest.
#[inline]
pub(crate) fn name_and_len(cd: &[u8], at: usize, base: u64) -> Result<(&[u8], usize), Corruption> {
    let rest = &cd[at..];
    let offset = base + at as u64;
    if rest.len() < FIXED_LEN {
        need(RECORD, offset, FIXED_LEN, rest.len())?;
    }
    if u32_at(rest, 0) != Some(SIGNATURE) {
        signature(RECORD, rest, offset, SIGNATURE)?;
    }
    let name_len = usize::from(u16_at(rest, 28).unwrap_or(0));
    let extra_len = usize::from(u16_at(rest, 30).unwrap_or(0));
    let comment_len = usize::from(u16_at(rest, 32).unwrap_or(0));
    let len = FIXED_LEN + name_len + extra_len + comment_len;
    need(RECORD, offset, len, rest.len())?;
    Ok((&rest[FIXED_LEN..FIXED_LEN + name_len], len))
}

/// Parses the record at `at` in `cd`, whose first byte is at absolute offset `base`.
pub(crate) fn parse(cd: &[u8], at: usize, base: u64) -> Result<CentralDirectoryFileHeader<'_>, Corruption> {
    let (name, len) = name_and_len(cd, at, base)?;
    let rest = &cd[at..at + len];
    let mut f = Fields::new(&rest[4..FIXED_LEN]);
    let version_made_by = f.u16();
    let _version_needed = f.u16();
    let flags = f.u16();
    let method = f.u16();
    let dos_time = f.u16();
    let dos_date = f.u16();
    let crc32 = f.u32();
    let compressed32 = f.u32();
    let uncompressed32 = f.u32();
    let name_len = usize::from(f.u16());
    let extra_len = usize::from(f.u16());
    let _comment_len = f.u16();
    let disk16 = f.u16();
    let _internal = f.u16();
    let external_attributes = f.u32();
    let offset32 = f.u32();
    let extra = &rest[FIXED_LEN + name_len..FIXED_LEN + name_len + extra_len];
    let comment = &rest[FIXED_LEN + name_len + extra_len..];

    let mut uncompressed_size = u64::from(uncompressed32);
    let mut compressed_size = u64::from(compressed32);
    let mut header_offset = u64::from(offset32);
    let wants = [uncompressed32 == u32::MAX, compressed32 == u32::MAX, offset32 == u32::MAX];
    if wants.iter().any(|&w| w) || disk16 == u16::MAX {
        let offset = base + at as u64;
        let zip64 = extra_fields(extra).find(|(id, _)| *id == ZIP64_EXTRA).map(|(_, d)| d);
        let data = zip64.ok_or(Corruption::Truncated {
            record: "zip64 extended information",
            offset,
            needed: 8,
            available: 0,
        })?;
        let needed = wants.iter().filter(|&&w| w).count() * 8;
        need("zip64 extended information", offset, needed, data.len())?;
        let mut z = Fields::new(data);
        if wants[0] {
            uncompressed_size = z.u64();
        }
        if wants[1] {
            compressed_size = z.u64();
        }
        if wants[2] {
            header_offset = z.u64();
        }
    }
    Ok(CentralDirectoryFileHeader {
        version_made_by,
        flags,
        method,
        dos_time,
        dos_date,
        crc32,
        compressed_size,
        uncompressed_size,
        external_attributes,
        header_offset,
        name,
        comment,
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &[u8], extra: &[u8], sizes32: u32) -> Vec<u8> {
        let mut v = SIGNATURE.to_le_bytes().to_vec();
        v.extend_from_slice(&[0x1e, 3, 20, 0, 0, 0, 8, 0, 0, 0, 0, 0]);
        v.extend_from_slice(&0xdead_beefu32.to_le_bytes());
        v.extend_from_slice(&sizes32.to_le_bytes());
        v.extend_from_slice(&sizes32.to_le_bytes());
        v.extend_from_slice(&(name.len() as u16).to_le_bytes());
        v.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        v.extend_from_slice(&[0; 6]);
        v.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
        v.extend_from_slice(&sizes32.to_le_bytes());
        v.extend_from_slice(name);
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn zip64_extra_widens_sizes_and_offset() {
        let mut extra = ZIP64_EXTRA.to_le_bytes().to_vec();
        extra.extend_from_slice(&24u16.to_le_bytes());
        for v in [5u64 << 32, 6u64 << 32, 7u64 << 32] {
            extra.extend_from_slice(&v.to_le_bytes());
        }
        let rec = record(b"big.bin", &extra, u32::MAX);
        let h = parse(&rec, 0, 0).unwrap();
        assert_eq!(h.uncompressed_size, 5 << 32);
        assert_eq!(h.compressed_size, 6 << 32);
        assert_eq!(h.header_offset, 7 << 32);
        assert_eq!(h.name, b"big.bin");
        assert_eq!(h.len, rec.len());
    }

    #[test]
    fn missing_zip64_extra_is_corrupt() {
        let rec = record(b"big.bin", &[], u32::MAX);
        assert!(matches!(parse(&rec, 0, 0), Err(Corruption::Truncated { .. })));
    }

    #[test]
    fn name_longer_than_the_record_is_corrupt() {
        let mut rec = record(b"abc", &[], 1);
        rec[28] = 200;
        let err = parse(&rec, 0, 1000).unwrap_err();
        assert_eq!(err, Corruption::Truncated { record: RECORD, offset: 1000, needed: 246, available: 49 });
    }
}
