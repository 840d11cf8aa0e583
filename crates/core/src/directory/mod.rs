//! The central directory, read once and scanned in place.
#![forbid(unsafe_code)]

mod sans_io;

pub use sans_io::{DirectoryRead, DirectoryStep};

use bytes::Bytes;

use crate::entry::Entry;
use crate::error::{Corruption, Result};
use crate::source::Source;
use crate::zip::central_directory;
use crate::zip::eocd::{self, CentralDirectoryLocation, LOCATOR_LEN, MAX_TAIL, ZIP64_EOCD_LEN};

/// An archive's central directory: its bytes and where they were.
///
/// Scanning it allocates nothing per entry; [`CentralDirectory::find`] compares names in
/// place. For repeated look-ups build an [`Index`](crate::Index).
#[derive(Debug, Clone)]
pub struct CentralDirectory {
    bytes: Bytes,
    location: CentralDirectoryLocation,
    archive_size: u64,
}

impl CentralDirectory {
    /// Reads the end records from the last bytes of `source`, then the central directory
    /// itself with one more read unless the first one already held it.
    ///
    /// When the end record's directory size is wrong but its offset and count are right
    /// (the declared count of records, read from the declared offset, fills the space up to
    /// the end records exactly), those records are the directory, as Go's `archive/zip`
    /// and Info-ZIP read it; [`CentralDirectoryLocation::size_was_wrong`] says so.
    pub fn read<S: Source + ?Sized>(source: &S) -> Result<CentralDirectory> {
        CentralDirectory::from_tail(source, read_tail(source)?, source.len())
    }

    /// Like [`read`](Self::read), with the archive's last bytes already in hand (`tail`
    /// ends at the end of the archive); reads only what `tail` lacks.
    pub fn from_tail<S: Source + ?Sized>(source: &S, tail: Bytes, size: u64) -> Result<CentralDirectory> {
        let tail = widen_tail(source, tail, size)?;
        let location = CentralDirectory::locate_in_tail(source, &tail, size)?;
        let len = usize::try_from(location.size).map_err(|_| Corruption::CentralDirectoryOutOfBounds {
            offset: location.offset,
            size: location.size,
            limit: size,
        })?;
        let bytes = fetch(source, &tail, size, location.offset, len)?;
        Ok(CentralDirectory { bytes, location, archive_size: size })
    }

    /// Reads the end records (one read of the tail, more only for a zip64 record outside
    /// it) and says where the central directory is, without reading it.
    pub fn locate<S: Source + ?Sized>(source: &S) -> Result<CentralDirectoryLocation> {
        CentralDirectory::locate_in_tail(source, &read_tail(source)?, source.len())
    }

    fn locate_in_tail<S: Source + ?Sized>(source: &S, tail: &Bytes, size: u64) -> Result<CentralDirectoryLocation> {
        let fetch = |offset: u64, len: usize| fetch(source, tail, size, offset, len);
        let end = eocd::find(tail, size)?;
        if end.wants_zip64() && end.offset >= LOCATOR_LEN as u64 {
            let locator_at = end.offset - LOCATOR_LEN as u64;
            let locator = fetch(locator_at, LOCATOR_LEN)?;
            if let Ok(declared) = eocd::parse_locator(&locator, locator_at) {
                // With prepended data the declared offset is off by the shift; the record
                // (without extensible data) then sits right before the locator.
                let fallback = locator_at.checked_sub(ZIP64_EOCD_LEN as u64);
                for at in [Some(declared), fallback].into_iter().flatten() {
                    if at.checked_add(ZIP64_EOCD_LEN as u64).is_none_or(|e| e > locator_at) {
                        continue;
                    }
                    let bytes = fetch(at, ZIP64_EOCD_LEN)?;
                    match eocd::parse_zip64(&bytes, at) {
                        Ok(z) => {
                            eocd::check_disks(z.disk, z.cd_disk)?;
                            let declared = Declared {
                                entries: z.entries,
                                size: z.cd_size,
                                offset: z.cd_offset,
                                end: at,
                                zip64: true,
                            };
                            return settle(source, tail, size, declared);
                        }
                        Err(e) if at == declared && fallback.is_some_and(|f| f != at) => drop(e),
                        Err(e) => return Err(e.into()),
                    }
                }
                return Err(Corruption::BadSignature {
                    record: "zip64 end of central directory",
                    offset: declared,
                    found: 0,
                }
                .into());
            }
        }
        eocd::check_disks(end.disk.into(), end.cd_disk.into())?;
        let declared = Declared {
            entries: end.entries.into(),
            size: end.cd_size.into(),
            offset: end.cd_offset.into(),
            end: end.offset,
            zip64: false,
        };
        settle(source, tail, size, declared)
    }

    /// The first entry named `name`, found in one pass over the central directory at
    /// `location` through a small reused buffer instead of holding the directory whole: the
    /// cheapest single look-up in a local file (the buffer stays in cache, nothing is mapped).
    pub fn scan<S: Source + ?Sized>(
        source: &S,
        location: CentralDirectoryLocation,
        name: &[u8],
    ) -> Result<Option<Entry>> {
        let read = |at: u64, buf: &mut [u8]| Ok(source.read_exact_at(at, buf)?);
        let visit = |candidate: &[u8], record: &[u8], at: u64| -> Result<Option<Entry>> {
            if candidate != name {
                return Ok(None);
            }
            let record = Bytes::copy_from_slice(record);
            let header = central_directory::parse(&record, 0, at)?;
            Ok(Some(Entry::from_header(&header, &record, location.shift, at - location.offset)))
        };
        match walk_records(read, location.offset, location.offset + location.size, visit)? {
            Walk::Found(entry) => Ok(Some(entry)),
            Walk::End { records } => {
                check_count(&location, records)?;
                Ok(None)
            }
            Walk::Broken(e) => Err(e.into()),
        }
    }

    /// A central directory read earlier (from a cache): `bytes` must be exactly the
    /// directory that `location` describes in an archive of `archive_size` bytes.
    pub fn from_parts(bytes: Bytes, location: CentralDirectoryLocation, archive_size: u64) -> Result<CentralDirectory> {
        let fits = location.offset.checked_add(location.size).is_some_and(|end| end <= archive_size);
        if bytes.len() as u64 != location.size || !fits {
            return Err(Corruption::CentralDirectoryOutOfBounds {
                offset: location.offset,
                size: location.size,
                limit: archive_size,
            }
            .into());
        }
        Ok(CentralDirectory { bytes, location, archive_size })
    }

    /// Where the central directory was and what the end record claimed.
    pub fn location(&self) -> CentralDirectoryLocation {
        self.location
    }

    /// Size of the whole archive in bytes.
    pub fn archive_size(&self) -> u64 {
        self.archive_size
    }

    /// Number of entries the end record claims.
    pub fn len(&self) -> u64 {
        self.location.entries
    }

    /// Whether the archive has no entries.
    pub fn is_empty(&self) -> bool {
        self.location.entries == 0
    }

    /// The raw bytes of the central directory.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The end of the region where local headers and data may lie: the central directory's
    /// start.
    pub fn data_limit(&self) -> u64 {
        self.location.offset
    }

    /// Every entry in central directory order. A corrupt record ends the walk with an error.
    pub fn entries(&self) -> Entries<'_> {
        Entries { cd: self, at: 0, count: 0, done: false }
    }

    /// The first entry (in central directory order) whose name is exactly `name`, found by
    /// scanning the buffer without allocating.
    pub fn find(&self, name: &[u8]) -> Result<Option<Entry>> {
        let (bytes, base) = (&self.bytes[..], self.location.offset);
        let mut at = 0;
        let mut count = 0u64;
        while at < bytes.len() {
            let (candidate, len) = central_directory::name_and_len(bytes, at, base)?;
            if candidate == name {
                return self.entry_at(at).map(|(entry, _)| Some(entry));
            }
            at += len;
            count += 1;
        }
        check_count(&self.location, count)?;
        Ok(None)
    }

    /// The entry whose record starts at `at` in the buffer, and the record's length.
    pub(crate) fn entry_at(&self, at: usize) -> Result<(Entry, usize)> {
        let header = central_directory::parse(&self.bytes, at, self.location.offset)?;
        Ok((Entry::from_header(&header, &self.bytes, self.location.shift, at as u64), header.len))
    }
}

/// What the end records declare about the central directory, and where the record that
/// follows it (`end`: the zip64 record if used, else the end record) was found.
#[derive(Debug, Clone, Copy)]
struct Declared {
    entries: u64,
    size: u64,
    offset: u64,
    end: u64,
    zip64: bool,
}

/// Where the central directory is. The declared offset and size normally say so; when the
/// end of the declared directory falls short of the end records, the gap is data prepended
/// to the archive (a self-extracting stub) and every offset shifts by it.
///
/// One leniency, as Go's `archive/zip` and Info-ZIP have it: when that reading fails (the
/// declared size runs past the end records, or the shifted offset holds no directory
/// record) but the declared count of records, read from the declared (unshifted) offset,
/// fills the space up to the end records exactly, the declared size was wrong and those
/// records are the directory. Anything less exact is still corrupt.
fn settle<S: Source + ?Sized>(source: &S, tail: &Bytes, size: u64, d: Declared) -> Result<CentralDirectoryLocation> {
    let strict = eocd::locate(d.entries, d.size, d.offset, d.end, d.zip64);
    let strict = match strict {
        Ok(location) if location.shift == 0 || location.entries == 0 => return Ok(location),
        Ok(location) => {
            let first = fetch(source, tail, size, location.offset, 4.min(location.size as usize))?;
            let found = crate::zip::u32_at(&first, 0).unwrap_or(0);
            if found == central_directory::SIGNATURE {
                return Ok(location);
            }
            Corruption::BadSignature { record: "central directory file header", offset: location.offset, found }
        }
        Err(e) => e,
    };
    match by_count(source, tail, size, d)? {
        Some(location) => Ok(location),
        None => Err(strict.into()),
    }
}

/// Reads `d.entries` records from the declared offset; a location if they end exactly at
/// the end records.
fn by_count<S: Source + ?Sized>(
    source: &S,
    tail: &Bytes,
    size: u64,
    d: Declared,
) -> Result<Option<CentralDirectoryLocation>> {
    let Some(room) = d.end.checked_sub(d.offset).filter(|&r| r > 0 && d.entries <= r / 46) else {
        return Ok(None);
    };
    // Walked through a small buffer: a hostile end record can claim gigabytes here, and
    // the walk stops at the first byte that is not a record.
    let read = |at: u64, buf: &mut [u8]| {
        buf.copy_from_slice(&fetch(source, tail, size, at, buf.len())?);
        Ok(())
    };
    let Walk::End { records: found } = walk_records(read, d.offset, d.end, |_, _, _| Ok(None::<()>))? else {
        return Ok(None);
    };
    let location = CentralDirectoryLocation {
        offset: d.offset,
        size: room,
        entries: d.entries,
        shift: 0,
        zip64: d.zip64,
        declared_size: d.size,
    };
    Ok(check_count(&location, found).is_ok().then_some(location))
}

/// Where a walk over central-directory records stopped.
enum Walk<T> {
    /// The visitor found what it looked for.
    Found(T),
    /// Every record up to the end, and how many there were.
    End { records: u64 },
    /// Bytes that are not a whole record.
    Broken(Corruption),
}

/// Walks the records in `offset..end` through a reused buffer of 256 KiB (larger than the
/// largest record, 46 + 3 * 65,535 bytes, so a full buffer always holds a whole one),
/// filled by `read`, calling `visit(name, record, absolute offset)` on each until it
/// returns a value. Nothing is held but the buffer: a directory of gigabytes, or a claim of
/// one, costs no more memory.
fn walk_records<T>(
    mut read: impl FnMut(u64, &mut [u8]) -> Result<()>,
    offset: u64,
    end: u64,
    mut visit: impl FnMut(&[u8], &[u8], u64) -> Result<Option<T>>,
) -> Result<Walk<T>> {
    const CHUNK: u64 = 256 * 1024;
    let mut buf = vec![0u8; CHUNK.min(end - offset) as usize];
    let (mut next, mut start, mut filled, mut records) = (offset, 0usize, 0usize, 0u64);
    loop {
        let base = next - filled as u64;
        while start < filled {
            match central_directory::name_and_len(&buf[..filled], start, base) {
                Ok((name, len)) => {
                    if let Some(found) = visit(name, &buf[start..start + len], base + start as u64)? {
                        return Ok(Walk::Found(found));
                    }
                    start += len;
                    records += 1;
                }
                Err(Corruption::Truncated { .. }) if next < end => break,
                Err(e) => return Ok(Walk::Broken(e)),
            }
        }
        if next >= end {
            return Ok(Walk::End { records });
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        start = 0;
        let n = (buf.len() - filled).min((end - next) as usize);
        read(next, &mut buf[filled..filled + n])?;
        filled += n;
        next += n as u64;
    }
}

/// Checks the records found against the count the end record claims.
fn check_count(location: &CentralDirectoryLocation, found: u64) -> Result<(), Corruption> {
    let claimed = location.entries;
    // Writers without zip64 that hold more than 65,535 entries keep the count modulo 2^16.
    let wrapped = !location.zip64 && found % 65_536 == claimed;
    if found == claimed || wrapped {
        return Ok(());
    }
    Err(Corruption::EntryCountMismatch { claimed, found })
}

/// The last [`MAX_TAIL`] bytes of the source (all of it if shorter): every end record is
/// in there.
fn read_tail<S: Source + ?Sized>(source: &S) -> Result<Bytes> {
    let size = source.len();
    let len = size.min(MAX_TAIL as u64);
    Ok(source.read_bytes(size - len, len as usize)?)
}

/// `tail` itself, or, when it holds no end record whose comment ends exactly at the end of
/// the archive but is shorter than the longest the end records can take (a short suffix read
/// and a long comment), the whole [`MAX_TAIL`]: so that a remote read finds the same record
/// a local one does, not a lookalike inside the comment.
fn widen_tail<S: Source + ?Sized>(source: &S, tail: Bytes, size: u64) -> Result<Bytes> {
    let full = size.min(MAX_TAIL as u64);
    if (tail.len() as u64) >= full || eocd::find(&tail, size).is_ok_and(|e| e.exact) {
        return Ok(tail);
    }
    let start = size - full;
    let head = source.read_bytes(start, (size - tail.len() as u64 - start) as usize)?;
    let mut wide = Vec::with_capacity(full as usize);
    wide.extend_from_slice(&head);
    wide.extend_from_slice(&tail);
    Ok(Bytes::from(wide))
}

/// `len` bytes at `offset`: from `tail` (the last bytes of an archive of `size` bytes) when
/// it holds them, else from the source.
fn fetch<S: Source + ?Sized>(source: &S, tail: &Bytes, size: u64, offset: u64, len: usize) -> Result<Bytes> {
    let tail_start = size - tail.len() as u64;
    if offset >= tail_start && offset.saturating_add(len as u64) <= size {
        let at = (offset - tail_start) as usize;
        return Ok(tail.slice(at..at + len));
    }
    Ok(source.read_bytes(offset, len)?)
}

/// Iterator over a central directory's entries.
#[derive(Debug)]
pub struct Entries<'a> {
    cd: &'a CentralDirectory,
    at: usize,
    count: u64,
    done: bool,
}

impl Entries<'_> {
    /// Offset in the central directory of the next record.
    pub(crate) fn position(&self) -> usize {
        self.at
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.done {
            return None;
        }
        if self.at >= self.cd.bytes.len() {
            self.done = true;
            return check_count(&self.cd.location, self.count).err().map(|e| Err(e.into()));
        }
        match self.cd.entry_at(self.at) {
            Ok((entry, len)) => {
                self.at += len;
                self.count += 1;
                Some(Ok(entry))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
