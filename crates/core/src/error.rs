//! The engine's one public error type.
#![forbid(unsafe_code)]

use std::io;

use crate::path::InvalidPath;

/// Everything that can go wrong while finding or streaming an entry.
///
/// Each variant is something a caller can act on: a server maps `InvalidPath` to 400,
/// `NotFound` and `ArchiveNotFound` to 404, `Corrupt` and `Unsupported` to a failed
/// download, `Io` to a retry; `Checkpoints` says checkpoints cannot be built or used (read
/// the entry from its start instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The requested artifact path breaks the path rule.
    #[error(transparent)]
    InvalidPath(#[from] InvalidPath),
    /// No entry of that name (or it names a directory).
    #[error("no entry named {name:?} in the archive")]
    NotFound {
        /// The name that was looked up.
        name: String,
    },
    /// No archive there: a remote archive's URL answered `404` or `410`.
    #[error("{url}: no archive there (HTTP {status})")]
    ArchiveNotFound {
        /// The URL asked for (without its query).
        url: String,
        /// The status it answered.
        status: u16,
    },
    /// The archive contradicts itself or the zip format; the data names the offending numbers.
    #[error("corrupt archive: {0}")]
    Corrupt(#[from] Corruption),
    /// The archive is well formed but uses something this engine does not read.
    #[error("unsupported: {0}")]
    Unsupported(#[from] Unsupported),
    /// The remote archive changed between two requests of one read (another ETag or
    /// Last-Modified, a 412, or a 200 to a ranged request).
    #[error("{url}: the archive changed while it was being read")]
    Changed {
        /// The archive's URL.
        url: String,
    },
    /// An HTTP exchange did not give what a range read needs.
    #[error("{url}: {problem}")]
    Http {
        /// The URL asked for.
        url: String,
        /// What was wrong.
        problem: HttpProblem,
    },
    /// Checkpoints (random access into a deflated entry) that cannot be built or used: a
    /// caller reads the entry from its start instead.
    #[error("checkpoints: {0}")]
    Checkpoints(#[from] CheckpointProblem),
    /// Reading the source failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Why checkpoints cannot be built or used ([`crate::checkpoints`]). Bad deflate data met
/// while using them is [`Corruption::Deflate`], as for any read of the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointProblem {
    /// An encoded index that does not decode (damaged, cut short, or not an index), or a
    /// window in it that does not inflate to at most 32 KiB.
    #[error("a damaged index: {0}")]
    Damaged(&'static str),
    /// Checkpoints asked of an entry they were not built for (another size, CRC-32 or
    /// compressed size).
    #[error("entry {name:?}: checkpoints built for another entry")]
    OtherEntry {
        /// Entry name (lossy UTF-8).
        name: String,
    },
    /// Checkpoints asked of an entry that is not deflated.
    #[error("entry {name:?}: not deflated")]
    NotDeflated {
        /// Entry name (lossy UTF-8).
        name: String,
    },
    /// Building stopped before the entry's end.
    #[error("entry {name:?}: not read to its end")]
    Unfinished {
        /// Entry name (lossy UTF-8).
        name: String,
    },
}

/// What was wrong with an HTTP exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpProblem {
    /// A status other than the one the request needs.
    #[error("HTTP status {0}")]
    Status(u16),
    /// A 206 without a usable `Content-Range`.
    #[error("206 without a valid Content-Range (got {0:?})")]
    MissingContentRange(Option<String>),
    /// A `Content-Range` other than the range asked for.
    #[error("asked for bytes {expected}, the server sent {found}")]
    WrongRange {
        /// What was asked, as `start-end/total`.
        expected: String,
        /// The `Content-Range` received.
        found: String,
    },
    /// The body ended before its length, and resuming did not help.
    #[error("the body ended after {received} of {expected} bytes")]
    ShortBody {
        /// Bytes the range holds.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// A buffered read larger than the configured bound (a central directory the server
    /// claims to be huge).
    #[error("a buffered read of {len} bytes is over the limit of {limit}")]
    TooLarge {
        /// Bytes asked for.
        len: u64,
        /// The bound.
        limit: u64,
    },
    /// More redirects than allowed.
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    /// A redirect without a usable `Location`.
    #[error("a redirect without a valid Location")]
    BadRedirect,
    /// The URL cannot be requested.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// No connection could be made (refused, unreachable, TLS failed).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server stopped sending for longer than the stall timeout.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The connection broke during the exchange (a reset, a body cut off).
    #[error("{0}")]
    Transport(String),
    /// The destination is not one requests may go to (see `http::Destinations`).
    #[error("refused destination: {0}")]
    Refused(String),
}

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What is wrong with a corrupt or hostile archive, with the numbers that prove it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// No end-of-central-directory record in the searched tail.
    #[error("no end-of-central-directory record in the last {searched} bytes of {archive_size}")]
    NoEndOfCentralDirectory {
        /// Bytes searched at the end of the archive.
        searched: u64,
        /// Size of the archive.
        archive_size: u64,
    },
    /// A record signature was not where the archive said it would be.
    #[error("expected {record} signature at offset {offset}, found {found:#010x}")]
    BadSignature {
        /// The record that was expected.
        record: &'static str,
        /// Absolute offset in the archive.
        offset: u64,
        /// The four bytes found there, little-endian.
        found: u32,
    },
    /// A record (or a field in it) runs past the end of the bytes that hold it.
    #[error("{record} at offset {offset} needs {needed} bytes, only {available} remain")]
    Truncated {
        /// The record being read.
        record: &'static str,
        /// Absolute offset of the record.
        offset: u64,
        /// Bytes the record claims or needs.
        needed: u64,
        /// Bytes actually there.
        available: u64,
    },
    /// The central directory does not fit in the archive before its end record.
    #[error("central directory at offset {offset} with size {size} does not fit before offset {limit}")]
    CentralDirectoryOutOfBounds {
        /// Declared offset of the central directory (after any shift).
        offset: u64,
        /// Declared size of the central directory.
        size: u64,
        /// Where the end-of-central-directory records start.
        limit: u64,
    },
    /// More entries are claimed than the central directory could possibly hold.
    #[error("{claimed} entries claimed, but a {cd_size}-byte central directory holds at most {max}")]
    ImpossibleEntryCount {
        /// Claimed number of entries.
        claimed: u64,
        /// Size of the central directory in bytes.
        cd_size: u64,
        /// The most entries that size can hold (46 bytes each at least).
        max: u64,
    },
    /// The end record's entry count disagrees with the records found.
    #[error("end record claims {claimed} entries, the central directory holds {found}")]
    EntryCountMismatch {
        /// Entries the end record claims.
        claimed: u64,
        /// Entries actually parsed.
        found: u64,
    },
    /// An entry's local header or data lies outside the region where entries can be.
    #[error("entry {name:?}: {what} at offset {offset} (+{len}) is past offset {limit}")]
    OutOfBounds {
        /// Entry name (lossy UTF-8).
        name: String,
        /// What was out of bounds.
        what: &'static str,
        /// Absolute offset.
        offset: u64,
        /// Length claimed.
        len: u64,
        /// The end of the region entries may occupy.
        limit: u64,
    },
    /// Two entries claim overlapping bytes (the shape of an overlap zip bomb).
    #[error("entries overlap: one starts at offset {first} and runs to {first_end}, the next starts at {second}")]
    OverlappingEntries {
        /// Offset of the earlier entry's local header.
        first: u64,
        /// The least offset where the earlier entry's data can end.
        first_end: u64,
        /// Offset of the next entry's local header.
        second: u64,
    },
    /// The local header disagrees with the central directory.
    #[error("entry {name:?}: local header at offset {offset} disagrees on {field}")]
    LocalHeaderMismatch {
        /// Entry name (lossy UTF-8).
        name: String,
        /// Offset of the local header.
        offset: u64,
        /// Which field differs.
        field: &'static str,
    },
    /// The declared sizes cannot both be true for this method.
    #[error("entry {name:?}: {uncompressed} bytes cannot come from {compressed} bytes with method {method}")]
    ImpossibleSizes {
        /// Entry name (lossy UTF-8).
        name: String,
        /// Compression method.
        method: u16,
        /// Declared compressed size.
        compressed: u64,
        /// Declared uncompressed size.
        uncompressed: u64,
    },
    /// The data did not have the declared uncompressed size.
    #[error("entry {name:?}: size mismatch, expected {expected} bytes, found {found}")]
    SizeMismatch {
        /// Entry name (lossy UTF-8).
        name: String,
        /// Size the central directory declares.
        expected: u64,
        /// Bytes the data really produced (at least this many when too long).
        found: u64,
    },
    /// The data's CRC-32 did not match the central directory.
    #[error("entry {name:?}: CRC-32 mismatch, expected {expected:#010x}, found {found:#010x}")]
    CrcMismatch {
        /// Entry name (lossy UTF-8).
        name: String,
        /// CRC-32 the central directory declares.
        expected: u32,
        /// CRC-32 of the bytes produced.
        found: u32,
    },
    /// The deflate stream is invalid or ends before its compressed size.
    #[error("entry {name:?}: bad deflate data after {consumed} compressed bytes: {why}")]
    Deflate {
        /// Entry name (lossy UTF-8).
        name: String,
        /// Compressed bytes consumed when it failed.
        consumed: u64,
        /// The decoder's message.
        why: String,
    },
    /// A `metadata.gz` stream breaks its format.
    #[error("metadata: {0}")]
    Metadata(MetadataProblem),
}

/// What is wrong with a `metadata.gz` stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataProblem {
    /// Nothing at all.
    #[error("the file is empty")]
    Empty,
    /// The version header is cut off.
    #[error("the header is truncated")]
    TruncatedHeader,
    /// The version header is not one GitLab writes.
    #[error("invalid version header")]
    Version,
    /// The errors field is not valid JSON.
    #[error("invalid errors field")]
    ErrorsField,
    /// The errors field is missing.
    #[error("the errors field is missing")]
    NoErrorsField,
    /// A string longer than the decoder's limit.
    #[error("a string of {len} bytes is over the limit of {max}")]
    StringTooLong {
        /// Its declared length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// More entries than the decoder's limit.
    #[error("more than {max} entries")]
    TooManyEntries {
        /// The limit.
        max: u64,
    },
    /// A limit on the decompressed stream was passed.
    #[error("limit on {0} exceeded")]
    Limit(&'static str),
    /// The gzip stream itself is broken (the decoder's message).
    #[error("bad gzip stream: {0}")]
    Gzip(String),
}

/// A well-formed feature this engine does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unsupported {
    /// A compression method other than stored (0) and deflate (8).
    #[error("entry {name:?} uses compression method {method} ({})", method_name(*method))]
    Method {
        /// Entry name (lossy UTF-8).
        name: String,
        /// The method number from APPNOTE 4.4.5.
        method: u16,
    },
    /// The entry is encrypted (general purpose flag bit 0).
    #[error("entry {name:?} is encrypted")]
    Encrypted {
        /// Entry name (lossy UTF-8).
        name: String,
    },
    /// The server answers ranged requests with the whole body.
    #[error("the server at {url} ignores Range")]
    ServerIgnoresRange {
        /// The archive's URL.
        url: String,
    },
    /// The archive spans several disks.
    #[error("multi-disk archives (disk {disk})")]
    MultiDisk {
        /// The disk number found.
        disk: u32,
    },
}

/// The name APPNOTE 4.4.5 gives a compression method.
pub fn method_name(method: u16) -> &'static str {
    match method {
        0 => "stored",
        1 => "shrunk",
        2..=5 => "reduced",
        6 => "imploded",
        8 => "deflate",
        9 => "deflate64",
        10 => "PKWARE imploding",
        12 => "bzip2",
        14 => "lzma",
        16 => "IBM z/OS cmpsc",
        18 => "IBM terse",
        19 => "IBM lz77",
        93 => "zstd",
        94 => "mp3",
        95 => "xz",
        96 => "jpeg",
        97 => "wavpack",
        98 => "ppmd",
        99 => "aes-encrypted",
        _ => "unknown",
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        match err {
            Error::Io(e) => e,
            Error::NotFound { .. } | Error::ArchiveNotFound { .. } => io::Error::new(io::ErrorKind::NotFound, err),
            Error::InvalidPath(_) => io::Error::new(io::ErrorKind::InvalidInput, err),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

impl Error {
    /// Recovers an engine error that travelled through an `io::Error` (as from `Read`).
    pub fn from_io(err: io::Error) -> Error {
        if !err.get_ref().is_some_and(|e| e.is::<Error>()) {
            return Error::Io(err);
        }
        let kind = err.kind();
        match err.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(engine)) => *engine,
            Some(Err(other)) => Error::Io(io::Error::new(kind, other)),
            None => Error::Io(kind.into()),
        }
    }
}

pub(crate) fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}
