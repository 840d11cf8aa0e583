//! The checks an entry's reading makes, apart from the reading itself: what can be read at
//! all (before any byte), how much one range covers, the local header against the central
//! directory, and the tally of size and CRC-32 that ends it.
#![forbid(unsafe_code)]

use bytes::Bytes;

use crate::entry::Entry;
use crate::error::{Corruption, Error, Result, Unsupported, lossy};
use crate::zip::local_header::{self, FIXED_LEN};

/// Bytes asked for past the local header's name, so that its extra field comes in the same
/// request as the data. A longer extra field costs a second request.
const HEADER_SLACK: u64 = 1024;
/// Deflate cannot expand data more than about 1032:1 (RFC 1951 maximal back-references);
/// an entry that claims more is a bomb or a lie.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// What the bytes produced so far add up to, checked against what the central directory
/// declares.
#[derive(Debug)]
pub(super) struct Tally {
    pub(super) name: Bytes,
    pub(super) crc: crc32fast::Hasher,
    pub(super) produced: u64,
    pub(super) expected_size: u64,
    pub(super) expected_crc: u32,
}

impl Tally {
    /// Counts `out`; more bytes than declared is an error at once.
    pub(super) fn add(&mut self, out: &[u8]) -> Result<(), Error> {
        self.crc.update(out);
        self.produced += out.len() as u64;
        if self.produced > self.expected_size {
            return Err(self.size_mismatch());
        }
        Ok(())
    }

    /// Checks size and CRC once the data is complete.
    pub(super) fn finish(&self) -> Result<(), Error> {
        if self.produced != self.expected_size {
            return Err(self.size_mismatch());
        }
        let found = self.crc.clone().finalize();
        if found != self.expected_crc {
            let name = lossy(&self.name);
            return Err(Corruption::CrcMismatch { name, expected: self.expected_crc, found }.into());
        }
        Ok(())
    }

    fn size_mismatch(&self) -> Error {
        let (expected, found) = (self.expected_size, self.produced);
        Corruption::SizeMismatch { name: lossy(&self.name), expected, found }.into()
    }
}

/// The local header must agree with the central directory on what matters for reading.
pub(super) fn check_local_header(entry: &Entry, local: &local_header::LocalFileHeader<'_>, offset: u64) -> Result<()> {
    let mismatch = |field| Corruption::LocalHeaderMismatch { name: lossy(entry.name()), offset, field };
    if local.name != entry.name() {
        return Err(mismatch("name").into());
    }
    if local.method != entry.method {
        return Err(mismatch("compression method").into());
    }
    if local.flags & 1 != entry.flags & 1 {
        return Err(mismatch("encryption flag").into());
    }
    // Without a data descriptor (flag bit 3) the local sizes must agree; with one, or with
    // zip64 markers, the central directory's values are the ones to trust.
    let zip64 = local.compressed_size == u32::MAX || local.uncompressed_size == u32::MAX;
    if local.flags & 8 == 0 && !zip64 {
        if local.crc32 != entry.crc32 {
            return Err(mismatch("CRC-32").into());
        }
        if u64::from(local.compressed_size) != entry.compressed_size
            || u64::from(local.uncompressed_size) != entry.uncompressed_size
        {
            return Err(mismatch("sizes").into());
        }
    }
    Ok(())
}

/// The bytes between the entry's local header and `data_limit`; too few for a header is
/// corrupt.
pub(super) fn room(entry: &Entry, data_limit: u64) -> Result<u64> {
    let offset = entry.header_offset;
    match data_limit.checked_sub(offset) {
        Some(room) if room >= FIXED_LEN as u64 => Ok(room),
        _ => Err(Corruption::OutOfBounds {
            name: lossy(entry.name()),
            what: "local header",
            offset,
            len: FIXED_LEN as u64,
            limit: data_limit,
        }
        .into()),
    }
}

/// The bytes one range should cover for `entry`: the local header with a slack for its
/// extra field, and the data.
pub(crate) fn span_of(entry: &Entry) -> u64 {
    let guess = FIXED_LEN as u64 + entry.name().len() as u64 + HEADER_SLACK;
    guess.saturating_add(entry.compressed_size)
}

/// Refuses entries this engine cannot stream, before any data is read.
pub(super) fn check_readable(entry: &Entry) -> Result<()> {
    let name = || lossy(entry.name());
    if entry.is_encrypted() {
        return Err(Unsupported::Encrypted { name: name() }.into());
    }
    let impossible = || Corruption::ImpossibleSizes {
        name: name(),
        method: entry.method,
        compressed: entry.compressed_size,
        uncompressed: entry.uncompressed_size,
    };
    match entry.method {
        0 if entry.compressed_size != entry.uncompressed_size => Err(impossible().into()),
        0 => Ok(()),
        8 => {
            let most = entry.compressed_size.saturating_mul(MAX_DEFLATE_RATIO).saturating_add(1024);
            if entry.uncompressed_size > most { Err(impossible().into()) } else { Ok(()) }
        }
        method => Err(Unsupported::Method { name: name(), method }.into()),
    }
}
