//! Sans-io parsers for the zip records the engine reads, one file per record of APPNOTE.TXT
//! (version 6.3.10). Each parser takes bytes and returns a value or a [`Corruption`]; none
//! does I/O, so the local and remote drivers share them.
#![forbid(unsafe_code)]

pub(crate) mod central_directory;
pub(crate) mod eocd;
pub(crate) mod local_header;

use crate::error::Corruption;

/// Little-endian field reads over a record whose length was checked first.
pub(crate) struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Fields<'a> {
        Fields { bytes, at: 0 }
    }
    pub(crate) fn u16(&mut self) -> u16 {
        let v = u16::from_le_bytes([self.bytes[self.at], self.bytes[self.at + 1]]);
        self.at += 2;
        v
    }
    pub(crate) fn u32(&mut self) -> u32 {
        let b = &self.bytes[self.at..self.at + 4];
        self.at += 4;
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    pub(crate) fn u64(&mut self) -> u64 {
        let lo = u64::from(self.u32());
        let hi = u64::from(self.u32());
        hi << 32 | lo
    }
}

/// Reads a little-endian `u32` at `at`, if the bytes are there.
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a little-endian `u16` at `at`, if the bytes are there.
pub(crate) fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// Checks that `len` bytes are there for a record at `offset` before it is parsed.
pub(crate) fn need(record: &'static str, offset: u64, needed: usize, available: usize) -> Result<(), Corruption> {
    if needed > available {
        return Err(Corruption::Truncated { record, offset, needed: needed as u64, available: available as u64 });
    }
    Ok(())
}

/// Checks a record's signature.
pub(crate) fn signature(record: &'static str, bytes: &[u8], offset: u64, expected: u32) -> Result<(), Corruption> {
    need(record, offset, 4, bytes.len())?;
    let found = u32_at(bytes, 0).unwrap_or(0);
    if found != expected {
        return Err(Corruption::BadSignature { record, offset, found });
    }
    Ok(())
}

/// Walks the `(id, data)` fields of an extra field (APPNOTE 4.5.1), ignoring a trailing
/// fragment too short to be a field, as other readers do.
pub(crate) fn extra_fields(extra: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = extra;
    std::iter::from_fn(move || {
        let id = u16_at(rest, 0)?;
        let len = usize::from(u16_at(rest, 2)?);
        let data = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some((id, data))
    })
}

/// Extra field id of the zip64 extended information field (APPNOTE 4.5.3).
pub(crate) const ZIP64_EXTRA: u16 = 0x0001;
