//! Local file header (APPNOTE 4.3.7): checked against the central directory before an
//! entry's data is trusted.
#![forbid(unsafe_code)]

use super::{Fields, signature};
use crate::error::Corruption;

pub(crate) const SIGNATURE: u32 = 0x0403_4b50;
pub(crate) const FIXED_LEN: usize = 30;
const RECORD: &str = "local file header";

/// The local header fields the engine checks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalFileHeader<'a> {
    pub(crate) flags: u16,
    pub(crate) method: u16,
    pub(crate) crc32: u32,
    pub(crate) compressed_size: u32,
    pub(crate) uncompressed_size: u32,
    pub(crate) name: &'a [u8],
    /// Length of the header: where the data starts, relative to the header.
    pub(crate) len: u64,
}

/// What [`parse`] could not finish: the header is longer than the bytes given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NeedMore(pub(crate) usize);

/// Parses the local header at the start of `bytes` (absolute offset `offset`). `Ok(Err(n))`
/// asks for the first `n` bytes; the name and the extra field lengths are only known after
/// the fixed part.
pub(crate) fn parse(bytes: &[u8], offset: u64) -> Result<Result<LocalFileHeader<'_>, NeedMore>, Corruption> {
    if bytes.len() < FIXED_LEN {
        return Ok(Err(NeedMore(FIXED_LEN)));
    }
    signature(RECORD, bytes, offset, SIGNATURE)?;
    let mut f = Fields::new(&bytes[4..FIXED_LEN]);
    let _needed = f.u16();
    let flags = f.u16();
    let method = f.u16();
    let _time = f.u16();
    let _date = f.u16();
    let crc32 = f.u32();
    let compressed_size = f.u32();
    let uncompressed_size = f.u32();
    let name_len = usize::from(f.u16());
    let extra_len = usize::from(f.u16());
    let len = FIXED_LEN + name_len + extra_len;
    if bytes.len() < FIXED_LEN + name_len {
        return Ok(Err(NeedMore(len)));
    }
    Ok(Ok(LocalFileHeader {
        flags,
        method,
        crc32,
        compressed_size,
        uncompressed_size,
        name: &bytes[FIXED_LEN..FIXED_LEN + name_len],
        len: len as u64,
    }))
}
