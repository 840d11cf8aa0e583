//! An entry of the central directory: what is known about a file before reading it.
#![forbid(unsafe_code)]

use bytes::Bytes;

use crate::zip::central_directory::CentralDirectoryFileHeader;

const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFDIR: u32 = 0o040_000;
const CREATOR_FAT: u16 = 0;
const CREATOR_UNIX: u16 = 3;
const CREATOR_NTFS: u16 = 11;
const CREATOR_VFAT: u16 = 14;
const CREATOR_MACOSX: u16 = 19;

/// One entry as the central directory describes it. Cheap to clone: the name and comment
/// share the central directory's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub(crate) name: Bytes,
    pub(crate) comment: Bytes,
    pub(crate) version_made_by: u16,
    pub(crate) flags: u16,
    pub(crate) method: u16,
    pub(crate) dos_time: u16,
    pub(crate) dos_date: u16,
    pub(crate) crc32: u32,
    pub(crate) compressed_size: u64,
    pub(crate) uncompressed_size: u64,
    pub(crate) external_attributes: u32,
    /// Absolute offset of the local header in the source (shift applied).
    pub(crate) header_offset: u64,
    /// Offset of this entry's record from the start of the central directory.
    pub(crate) record_offset: u64,
}

impl Entry {
    /// `record_offset`: where the record starts, counted from the start of the central
    /// directory.
    pub(crate) fn from_header(h: &CentralDirectoryFileHeader<'_>, cd: &Bytes, shift: u64, record_offset: u64) -> Entry {
        Entry {
            name: cd.slice_ref(h.name),
            comment: cd.slice_ref(h.comment),
            version_made_by: h.version_made_by,
            flags: h.flags,
            method: h.method,
            dos_time: h.dos_time,
            dos_date: h.dos_date,
            crc32: h.crc32,
            compressed_size: h.compressed_size,
            uncompressed_size: h.uncompressed_size,
            external_attributes: h.external_attributes,
            header_offset: h.header_offset.saturating_add(shift),
            record_offset,
        }
    }

    /// Where this entry's record starts, counted in bytes from the start of the central
    /// directory. Unique per entry even when names repeat or records point at the same
    /// data, so per-entry outcomes (see [`verify`](crate::verify)) are keyed by it.
    pub fn record_offset(&self) -> u64 {
        self.record_offset
    }

    /// The raw name bytes, exactly as stored (no CP437 decoding).
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// The name as text, if it is valid UTF-8.
    pub fn name_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.name).ok()
    }

    /// The name as text, with invalid UTF-8 replaced: for messages and listings.
    pub fn display_name(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }

    /// The entry's comment.
    pub fn comment(&self) -> &[u8] {
        &self.comment
    }

    /// Compression method (APPNOTE 4.4.5): 0 stored, 8 deflate.
    pub fn method(&self) -> u16 {
        self.method
    }

    /// General purpose bit flags (APPNOTE 4.4.4).
    pub fn flags(&self) -> u16 {
        self.flags
    }

    /// Whether the entry is encrypted (flag bit 0).
    pub fn is_encrypted(&self) -> bool {
        self.flags & 1 != 0
    }

    /// CRC-32 of the uncompressed data, as declared.
    pub fn crc32(&self) -> u32 {
        self.crc32
    }

    /// Uncompressed size, as declared.
    pub fn size(&self) -> u64 {
        self.uncompressed_size
    }

    /// Compressed size, as declared.
    pub fn compressed_size(&self) -> u64 {
        self.compressed_size
    }

    /// "Version made by": the high byte names the system whose attributes are stored.
    pub fn version_made_by(&self) -> u16 {
        self.version_made_by
    }

    /// The raw external file attributes.
    pub fn external_attributes(&self) -> u32 {
        self.external_attributes
    }

    /// The Unix mode (type and permission bits), when the archive was made on Unix or macOS
    /// and stored one.
    pub fn unix_mode(&self) -> Option<u32> {
        match self.version_made_by >> 8 {
            CREATOR_UNIX | CREATOR_MACOSX => {
                let mode = self.external_attributes >> 16;
                (mode != 0).then_some(mode)
            }
            _ => None,
        }
    }

    /// Whether the entry is a directory: its name ends in `/`, or its attributes say so.
    pub fn is_dir(&self) -> bool {
        self.name.last() == Some(&b'/')
            || self.unix_mode().is_some_and(|m| m & S_IFMT == S_IFDIR)
            || (self.is_msdos() && self.external_attributes & 0x10 != 0)
    }

    /// Whether the entry is a symbolic link (S_IFLNK); its content is the link's target.
    pub fn is_symlink(&self) -> bool {
        self.unix_mode().is_some_and(|m| m & S_IFMT == S_IFLNK)
    }

    fn is_msdos(&self) -> bool {
        matches!(self.version_made_by >> 8, CREATOR_FAT | CREATOR_NTFS | CREATOR_VFAT)
    }

    /// Permission bits the way Go's `archive/zip` computes `Mode().Perm()`, which is what
    /// GitLab's metadata records: Unix bits for Unix and macOS archives, 0o777/0o666 minus
    /// write bits for read-only MS-DOS entries, 0 for other systems.
    pub fn permissions(&self) -> u32 {
        match self.version_made_by >> 8 {
            CREATOR_UNIX | CREATOR_MACOSX => (self.external_attributes >> 16) & 0o777,
            CREATOR_FAT | CREATOR_NTFS | CREATOR_VFAT => {
                let attrs = self.external_attributes;
                let mode = if attrs & 0x10 != 0 { 0o777 } else { 0o666 };
                if attrs & 0x01 != 0 { mode & !0o222 } else { mode }
            }
            _ => 0,
        }
    }

    /// The MS-DOS date and time fields, as stored.
    pub fn dos_date_time(&self) -> (u16, u16) {
        (self.dos_date, self.dos_time)
    }

    /// The MS-DOS modification time read as UTC, in Unix seconds, normalised the way Go's
    /// `time.Date` does (month 0 is December of the year before, day 0 the last day of the
    /// month before), so that it equals what GitLab writes in `metadata.gz`.
    pub fn modified_unix(&self) -> i64 {
        let (date, time) = (i64::from(self.dos_date), i64::from(self.dos_time));
        let year = (date >> 9) + 1980;
        let month = (date >> 5) & 0xf; // 0..=15, 1-based
        let day = date & 0x1f;
        let (hour, minute, second) = (time >> 11, (time >> 5) & 0x3f, (time & 0x1f) * 2);
        let months = year * 12 + (month - 1);
        let (year, month) = (months.div_euclid(12) as i32, months.rem_euclid(12) as u8 + 1);
        // Years 1979 to 2108, months 1 to 12: always a date.
        let first = time::Month::try_from(month).and_then(|m| time::Date::from_calendar_date(year, m, 1));
        let first = first.map_or(0, |d| d.midnight().assume_utc().unix_timestamp());
        first + (day - 1) * 86_400 + hour * 3600 + minute * 60 + second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(date: u16, time: u16) -> Entry {
        Entry {
            name: Bytes::from_static(b"x"),
            comment: Bytes::new(),
            version_made_by: 3 << 8,
            flags: 0,
            method: 0,
            dos_time: time,
            dos_date: date,
            crc32: 0,
            compressed_size: 0,
            uncompressed_size: 0,
            external_attributes: 0o100644 << 16,
            header_offset: 0,
            record_offset: 0,
        }
    }

    #[test]
    fn dos_time_is_utc_unix_seconds() {
        // 2024-01-02 03:04:06
        let date = ((2024 - 1980) << 9) | (1 << 5) | 2;
        let time = (3 << 11) | (4 << 5) | 3;
        assert_eq!(entry(date, time).modified_unix(), 1_704_164_646);
    }

    #[test]
    fn zero_dos_date_normalises_like_go() {
        // Go: time.Date(1980, 0, 0, 0, 0, 0, 0, UTC) is 1979-11-30T00:00:00Z.
        assert_eq!(entry(0, 0).modified_unix(), 312_768_000);
        // Month 13 rolls into January of the next year; hour 31 is just added.
        let date = ((2000 - 1980) << 9) | (13 << 5) | 1;
        assert_eq!(entry(date, 31 << 11).modified_unix(), 978_307_200 + 31 * 3600);
    }

    #[test]
    fn permissions_follow_go() {
        let mut e = entry(0, 0);
        assert_eq!(e.permissions(), 0o644);
        e.version_made_by = 0;
        e.external_attributes = 0x01;
        assert_eq!(e.permissions(), 0o444);
        e.external_attributes = 0x10;
        assert_eq!(e.permissions(), 0o777);
        e.version_made_by = 10 << 8;
        assert_eq!(e.permissions(), 0);
    }

    #[test]
    fn symlinks_and_directories_come_from_the_mode() {
        let mut e = entry(0, 0);
        e.external_attributes = 0o120777 << 16;
        assert!(e.is_symlink() && !e.is_dir());
        e.external_attributes = 0o040755 << 16;
        assert!(e.is_dir());
    }
}
