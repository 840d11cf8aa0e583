//! End of central directory record (APPNOTE 4.3.16), zip64 end of central directory
//! locator (4.3.15) and record (4.3.14): where the central directory is.
#![forbid(unsafe_code)]

use super::{Fields, need, signature, u32_at};
use crate::error::{Corruption, Unsupported};

pub(crate) const EOCD_SIGNATURE: u32 = 0x0605_4b50;
pub(crate) const EOCD_LEN: usize = 22;
pub(crate) const LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
pub(crate) const LOCATOR_LEN: usize = 20;
pub(crate) const ZIP64_EOCD_SIGNATURE: u32 = 0x0606_4b50;
pub(crate) const ZIP64_EOCD_LEN: usize = 56;

/// The most bytes the end records can take: the longest comment, the end record, the zip64
/// locator and a zip64 record without extensible data.
pub const MAX_TAIL: usize = u16::MAX as usize + EOCD_LEN + LOCATOR_LEN + ZIP64_EOCD_LEN;

/// The end of central directory record, as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EndOfCentralDirectory {
    /// Absolute offset of the record.
    pub(crate) offset: u64,
    pub(crate) disk: u16,
    pub(crate) cd_disk: u16,
    pub(crate) entries: u16,
    pub(crate) cd_size: u32,
    pub(crate) cd_offset: u32,
    pub(crate) comment_len: u16,
    /// Whether its comment ends exactly at the end of the archive (else it was accepted
    /// leniently, with trailing bytes after it).
    pub(crate) exact: bool,
}

impl EndOfCentralDirectory {
    /// Whether some field says "look in the zip64 record".
    pub(crate) fn wants_zip64(&self) -> bool {
        self.entries == u16::MAX || self.cd_size == u32::MAX || self.cd_offset == u32::MAX
    }
}

/// Finds the end record in `tail`, the last bytes of an archive of `archive_size` bytes.
///
/// Searches backwards; prefers a record whose comment ends exactly at the end of the archive
/// (so a fake signature inside a comment is passed over), else the last record whose comment
/// fits.
pub(crate) fn find(tail: &[u8], archive_size: u64) -> Result<EndOfCentralDirectory, Corruption> {
    let tail_start = archive_size - tail.len() as u64;
    let mut lenient = None;
    let mut at = tail.len().checked_sub(EOCD_LEN);
    while let Some(pos) = at {
        if u32_at(tail, pos) == Some(EOCD_SIGNATURE) {
            let mut eocd = parse(&tail[pos..], tail_start + pos as u64);
            let end = pos + EOCD_LEN + usize::from(eocd.comment_len);
            if end == tail.len() {
                eocd.exact = true;
                return Ok(eocd);
            }
            if end < tail.len() && lenient.is_none() {
                lenient = Some(eocd);
            }
        }
        at = pos.checked_sub(1);
    }
    lenient.ok_or(Corruption::NoEndOfCentralDirectory { searched: tail.len() as u64, archive_size })
}

fn parse(bytes: &[u8], offset: u64) -> EndOfCentralDirectory {
    let mut f = Fields::new(&bytes[4..EOCD_LEN]);
    EndOfCentralDirectory {
        offset,
        disk: f.u16(),
        cd_disk: f.u16(),
        entries: {
            let _on_disk = f.u16();
            f.u16()
        },
        cd_size: f.u32(),
        cd_offset: f.u32(),
        comment_len: f.u16(),
        exact: false,
    }
}

/// The zip64 end of central directory locator: where the zip64 record is.
pub(crate) fn parse_locator(bytes: &[u8], offset: u64) -> Result<u64, Corruption> {
    signature("zip64 end of central directory locator", bytes, offset, LOCATOR_SIGNATURE)?;
    need("zip64 end of central directory locator", offset, LOCATOR_LEN, bytes.len())?;
    let mut f = Fields::new(&bytes[4..LOCATOR_LEN]);
    let _disk = f.u32();
    Ok(f.u64())
}

/// The fields of the zip64 end of central directory record the engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Zip64EndOfCentralDirectory {
    pub(crate) disk: u32,
    pub(crate) cd_disk: u32,
    pub(crate) entries: u64,
    pub(crate) cd_size: u64,
    pub(crate) cd_offset: u64,
}

pub(crate) fn parse_zip64(bytes: &[u8], offset: u64) -> Result<Zip64EndOfCentralDirectory, Corruption> {
    signature("zip64 end of central directory", bytes, offset, ZIP64_EOCD_SIGNATURE)?;
    need("zip64 end of central directory", offset, ZIP64_EOCD_LEN, bytes.len())?;
    let mut f = Fields::new(&bytes[4..ZIP64_EOCD_LEN]);
    let _record_size = f.u64();
    let _made_by = f.u16();
    let _needed = f.u16();
    let disk = f.u32();
    let cd_disk = f.u32();
    let _on_disk = f.u64();
    Ok(Zip64EndOfCentralDirectory { disk, cd_disk, entries: f.u64(), cd_size: f.u64(), cd_offset: f.u64() })
}

/// Where the central directory is, once the end records are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CentralDirectoryLocation {
    /// Absolute offset of the central directory in the source.
    pub offset: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Entries the end record claims.
    pub entries: u64,
    /// Bytes prepended to the archive (a self-extracting stub): add to every offset the
    /// archive declares.
    pub shift: u64,
    /// Whether the zip64 record was used.
    pub zip64: bool,
    /// The directory size the end record declared. It differs from `size` only when the
    /// records were read by count from the declared offset because the declared size
    /// disagreed with them (Go's leniency, see `CentralDirectory::read`).
    pub declared_size: u64,
}

impl CentralDirectoryLocation {
    /// Whether the directory was read by count because its declared size was wrong.
    pub fn size_was_wrong(&self) -> bool {
        self.declared_size != self.size
    }
}

/// Works out where the central directory really is from the declared values and where the
/// records that follow it were found (`cd_end`: the zip64 record if there is one, else the
/// end record). The difference is the length of any prepended data.
pub(crate) fn locate(
    entries: u64,
    cd_size: u64,
    cd_offset: u64,
    cd_end: u64,
    zip64: bool,
) -> Result<CentralDirectoryLocation, Corruption> {
    let declared_end = cd_offset.checked_add(cd_size);
    let shift = match declared_end {
        Some(end) if end <= cd_end => cd_end - end,
        _ => {
            return Err(Corruption::CentralDirectoryOutOfBounds { offset: cd_offset, size: cd_size, limit: cd_end });
        }
    };
    let max = cd_size / 46;
    if entries > max {
        return Err(Corruption::ImpossibleEntryCount { claimed: entries, cd_size, max });
    }
    Ok(CentralDirectoryLocation {
        offset: cd_offset + shift,
        size: cd_size,
        entries,
        shift,
        zip64,
        declared_size: cd_size,
    })
}

pub(crate) fn check_disks(disk: u32, cd_disk: u32) -> Result<(), Unsupported> {
    if disk != 0 || cd_disk != 0 {
        return Err(Unsupported::MultiDisk { disk: disk.max(cd_disk) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eocd(entries: u16, size: u32, offset: u32, comment: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&EOCD_SIGNATURE.to_le_bytes());
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(&entries.to_le_bytes());
        v.extend_from_slice(&entries.to_le_bytes());
        v.extend_from_slice(&size.to_le_bytes());
        v.extend_from_slice(&offset.to_le_bytes());
        v.extend_from_slice(&(comment.len() as u16).to_le_bytes());
        v.extend_from_slice(comment);
        v
    }

    #[test]
    fn fake_record_in_the_comment_is_passed_over() {
        let fake = eocd(9, 999, 12345, b"");
        let mut comment = b"hello ".to_vec();
        comment.extend_from_slice(&fake);
        comment.extend_from_slice(b"tail");
        let mut archive = vec![0u8; 100];
        archive.extend(eocd(2, 92, 8, &comment));
        let found = find(&archive, archive.len() as u64).unwrap();
        assert_eq!(found.offset, 100);
        assert_eq!(found.entries, 2);
    }

    #[test]
    fn no_record_is_an_error_with_numbers() {
        let err = find(&[7u8; 50], 50).unwrap_err();
        assert_eq!(err, Corruption::NoEndOfCentralDirectory { searched: 50, archive_size: 50 });
    }

    #[test]
    fn prepended_bytes_become_the_shift() {
        let loc = locate(1, 46, 0, 4096 + 46, false).unwrap();
        assert_eq!((loc.offset, loc.shift), (4096, 4096));
        assert!(matches!(locate(1, 4000, 100, 200, false), Err(Corruption::CentralDirectoryOutOfBounds { .. })));
        assert_eq!(
            locate(3, 100, 0, 100, false),
            Err(Corruption::ImpossibleEntryCount { claimed: 3, cd_size: 100, max: 2 })
        );
    }
}
