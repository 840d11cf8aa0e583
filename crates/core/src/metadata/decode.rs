//! Reading `metadata.gz` as a stream, with every length and count bounded before it is used.

use std::io::{self, BufReader, Read};

use flate2::read::GzDecoder;
use serde::{Deserialize, Serialize};

use crate::error::{Corruption, Error, MetadataProblem, Result};

/// Bounds on what a decoder holds or reads; a violation is an error, never an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest path accepted, in bytes.
    pub max_path: usize,
    /// Longest metadata JSON accepted, in bytes.
    pub max_metadata: usize,
    /// Most entries read.
    pub max_entries: u64,
    /// Most decompressed bytes read.
    pub max_decompressed: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_path: 4096, max_metadata: 64 * 1024, max_entries: 10_000_000, max_decompressed: 4 << 30 }
    }
}

/// One entry's metadata; every field is optional, as GitLab leaves out zero values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EntryMetadata {
    /// Modification time, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<i64>,
    /// Octal permission bits, like `"644"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// CRC-32 of the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc: Option<u32>,
    /// Uncompressed size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Compressed size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipped: Option<u64>,
    /// The entry's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A path and its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetadataEntry {
    /// The entry path; ends in `/` for a directory.
    pub path: String,
    /// Its metadata.
    #[serde(flatten)]
    pub metadata: EntryMetadata,
}

impl MetadataEntry {
    /// Whether the path names a directory.
    pub fn is_dir(&self) -> bool {
        self.path.is_empty() || self.path.ends_with('/')
    }
}

/// Streams the entries of a `metadata.gz`, applying GitLab's reading rules: pairs whose path
/// or metadata is not UTF-8, whose path is unsafe, or whose metadata is not JSON are skipped;
/// a truncated final pair ends the stream.
#[derive(Debug)]
pub struct MetadataReader<R: Read> {
    // Buffered so that the decoder inflates in large blocks, not in 4-byte reads.
    input: Counted<BufReader<GzDecoder<R>>>,
    limits: Limits,
    version: String,
    entries: u64,
    done: bool,
}

#[derive(Debug)]
struct Counted<R> {
    inner: R,
    read: u64,
    max: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(io::Error::new(io::ErrorKind::InvalidData, LimitHit("decompressed bytes")));
        }
        Ok(n)
    }
}

#[derive(Debug)]
struct LimitHit(&'static str);
impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "limit on {} exceeded", self.0)
    }
}
impl std::error::Error for LimitHit {}

fn bad(problem: MetadataProblem) -> Error {
    Corruption::Metadata(problem).into()
}

/// What reading one string gave.
enum Read1 {
    String(Vec<u8>),
    /// Clean end of stream before the length.
    End,
    /// The stream ended inside the length or the string.
    Truncated,
}

impl<R: Read> MetadataReader<R> {
    /// Reads the header and the errors field of the gzip stream `input`.
    pub fn new(input: R) -> Result<MetadataReader<R>> {
        MetadataReader::with_limits(input, Limits::default())
    }

    /// Like [`new`](Self::new), with explicit limits.
    pub fn with_limits(input: R, limits: Limits) -> Result<MetadataReader<R>> {
        let inflated = BufReader::with_capacity(64 * 1024, GzDecoder::new(input));
        let input = Counted { inner: inflated, read: 0, max: limits.max_decompressed };
        let mut reader = MetadataReader { input, limits, version: String::new(), entries: 0, done: false };
        let header = match reader.read_string(limits.max_path)? {
            Read1::String(s) => s,
            Read1::End => return Err(bad(MetadataProblem::Empty)),
            Read1::Truncated => return Err(bad(MetadataProblem::TruncatedHeader)),
        };
        reader.version = parse_version(&header).ok_or_else(|| bad(MetadataProblem::Version))?;
        match reader.read_string(limits.max_metadata)? {
            Read1::String(errors) => {
                let ok = serde_json::from_slice::<serde_json::Value>(&errors).is_ok_and(|v| v.is_object());
                if !ok {
                    return Err(bad(MetadataProblem::ErrorsField));
                }
            }
            _ => return Err(bad(MetadataProblem::NoErrorsField)),
        }
        Ok(reader)
    }

    /// The format version from the header, like `0.0.2`.
    pub fn version(&self) -> &str {
        &self.version
    }

    fn read_string(&mut self, max: usize) -> Result<Read1> {
        let mut len = [0u8; 4];
        match read_full(&mut self.input, &mut len).map_err(io_error)? {
            0 => return Ok(Read1::End),
            4 => {}
            _ => return Ok(Read1::Truncated),
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > max {
            return Err(bad(MetadataProblem::StringTooLong { len: len as u64, max: max as u64 }));
        }
        let mut buf = vec![0; len];
        if read_full(&mut self.input, &mut buf).map_err(io_error)? < len {
            return Ok(Read1::Truncated);
        }
        Ok(Read1::String(buf))
    }

    fn next_entry(&mut self) -> Result<Option<MetadataEntry>> {
        loop {
            let path = match self.read_string(self.limits.max_path)? {
                Read1::String(s) => s,
                Read1::End | Read1::Truncated => return Ok(None),
            };
            let meta = match self.read_string(self.limits.max_metadata)? {
                Read1::String(s) => s,
                Read1::End | Read1::Truncated => return Ok(None),
            };
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(bad(MetadataProblem::TooManyEntries { max: self.limits.max_entries }));
            }
            let (Ok(path), Ok(meta)) = (String::from_utf8(path), std::str::from_utf8(&meta)) else {
                continue;
            };
            if unsafe_path(&path) {
                continue;
            }
            let Ok(metadata) = serde_json::from_str::<EntryMetadata>(meta) else {
                continue;
            };
            return Ok(Some(MetadataEntry { path, metadata }));
        }
    }

    /// Whether `path` is listed (a directory as `dir/`).
    pub fn exists(self, path: &str) -> Result<bool> {
        for entry in self {
            if entry?.path == path {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The direct children of the directory `dir` (`""` for the root, else ending in `/`):
    /// paths matching `^dir[^/]+/?$`.
    pub fn children(self, dir: &str) -> impl Iterator<Item = Result<MetadataEntry>> {
        let dir = dir.to_owned();
        self.filter(move |e| e.as_ref().map_or(true, |e| is_child_of(&e.path, &dir)))
    }

    /// Everything under `prefix`, recursively.
    pub fn under(self, prefix: &str) -> impl Iterator<Item = Result<MetadataEntry>> {
        let prefix = prefix.to_owned();
        self.filter(move |e| e.as_ref().map_or(true, |e| is_under(&e.path, &prefix)))
    }
}

impl<R: Read> Iterator for MetadataReader<R> {
    type Item = Result<MetadataEntry>;

    fn next(&mut self) -> Option<Result<MetadataEntry>> {
        if self.done {
            return None;
        }
        let item = self.next_entry().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// GitLab's header rule `^[\w\s]+(\d+\.\d+\.\d+)`: the version found.
fn parse_version(header: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let word = |c: char| c.is_alphanumeric() || c == '_' || c.is_whitespace();
    let start = text.find(|c: char| !word(c)).unwrap_or(text.len());
    let lead = &text[..start];
    // `[\w\s]+` is greedy but backtracks: the version's digits are the tail of that run.
    for (i, _) in lead.char_indices().skip(1) {
        let rest = &text[i..];
        let parts: Vec<&str> = rest.splitn(4, '.').collect();
        if parts.len() >= 3 {
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            let third: String = parts[2].chars().take_while(char::is_ascii_digit).collect();
            if digits(parts[0]) && digits(parts[1]) && !third.is_empty() {
                return Some(format!("{}.{}.{}", parts[0], parts[1], third));
            }
        }
    }
    None
}

/// GitLab drops paths matching `(^\.?\.?/)|(/\.?\.?/)`.
fn unsafe_path(path: &str) -> bool {
    let bad_start = path.starts_with('/') || path.starts_with("./") || path.starts_with("../");
    bad_start || path.contains("//") || path.contains("/./") || path.contains("/../")
}

/// Whether `path` is a direct child of `dir`: `^dir[^/]+/?$`.
pub fn is_child_of(path: &str, dir: &str) -> bool {
    let Some(rest) = path.strip_prefix(dir) else {
        return false;
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    !rest.is_empty() && !rest.contains('/')
}

/// Whether `path` lies under `prefix` (and is not `prefix` itself).
pub fn is_under(path: &str, prefix: &str) -> bool {
    path.len() > prefix.len() && path.starts_with(prefix)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn io_error(e: io::Error) -> Error {
    if let Some(LimitHit(what)) = e.get_ref().and_then(|inner| inner.downcast_ref::<LimitHit>()) {
        return bad(MetadataProblem::Limit(what));
    }
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof => {
            bad(MetadataProblem::Gzip(e.to_string()))
        }
        _ => Error::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rule_matches_gitlab() {
        assert_eq!(parse_version(b"GitLab Build Artifacts Metadata 0.0.2\n").as_deref(), Some("0.0.2"));
        assert_eq!(parse_version(b"X 12.34.56"), Some("12.34.56".into()));
        assert_eq!(parse_version(b"0.0.2"), None);
        assert_eq!(parse_version(b"GitLab metadata"), None);
        assert_eq!(parse_version(b"-GitLab 0.0.2"), None);
    }

    #[test]
    fn children_rule_matches_gitlab() {
        assert!(is_child_of("a/", ""));
        assert!(is_child_of("a.txt", ""));
        assert!(!is_child_of("a/b", ""));
        assert!(is_child_of("a/b", "a/"));
        assert!(is_child_of("a/b/", "a/"));
        assert!(!is_child_of("a/b/c", "a/"));
        assert!(!is_child_of("a/", "a/"));
        assert!(is_under("a/b/c", "a/"));
        assert!(!is_under("a/", "a/"));
    }

    #[test]
    fn unsafe_paths_are_dropped() {
        for p in ["/a", "./a", "../a", "a//b", "a/./b", "a/../b"] {
            assert!(unsafe_path(p), "{p}");
        }
        for p in ["a", "a/", ".a", "a/..b", "..a/b"] {
            assert!(!unsafe_path(p), "{p}");
        }
    }
}
