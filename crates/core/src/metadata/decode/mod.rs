//! Reading `metadata.gz` as a stream, with every length and count bounded before it is used.

use std::io::{self, Read};

use flate2::read::GzDecoder;
use serde::{Deserialize, Serialize};

use crate::error::{Corruption, Error, MetadataProblem, Result};

mod entry_ref;
mod json;
mod paths;
mod text;

use self::entry_ref::Fields;
pub use self::entry_ref::MetadataRef;
use self::json::*;
use self::text::{Buffer, Text};

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

/// A pair served: its path, checked as text, and which of the reader's two slots holds its
/// metadata (`true`: the flat parser's).
type Pair = (Text, bool);

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
///
/// The inflated stream is read in blocks into one buffer, and each pair is parsed where it
/// lies; the metadata GitLab writes (a flat object of known fields) is read by a small
/// parser of that shape, anything else by `serde_json`, with the same outcome.
#[derive(Debug)]
pub struct MetadataReader<R: Read> {
    input: GzDecoder<R>,
    /// Inflated bytes; `buf[pos..end]` not yet taken.
    buf: Buffer,
    pos: usize,
    end: usize,
    /// Inflated bytes taken so far (bounded by `limits.max_decompressed`).
    taken: u64,
    limits: Limits,
    version: String,
    entries: u64,
    done: bool,
    /// The last pair's metadata as the flat parser read it (written in place: no copy of
    /// the fields on the way out), or as `serde_json` did.
    flat: Flat,
    owned: EntryMetadata,
}

/// Bytes inflated at a time.
const BLOCK: usize = 128 * 1024;

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
        let mut reader = MetadataReader {
            input: GzDecoder::new(input),
            buf: Buffer::zeroed(BLOCK),
            pos: 0,
            end: 0,
            taken: 0,
            limits,
            version: String::new(),
            entries: 0,
            done: false,
            flat: Flat::default(),
            owned: EntryMetadata::default(),
        };
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

    /// Makes `need` bytes available from `pos` if the stream has them: `false` when it
    /// ends first. The buffer grows only for a string longer than a block (its length was
    /// checked against the limits before).
    #[inline(always)]
    fn fill(&mut self, need: usize) -> Result<bool> {
        if self.end - self.pos >= need {
            return Ok(true);
        }
        self.refill(need)
    }

    /// [`fill`](Self::fill) when the buffer does not hold `need` bytes.
    #[cold]
    #[inline(never)]
    fn refill(&mut self, need: usize) -> Result<bool> {
        let buf = self.buf.write();
        buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if buf.len() < need {
            buf.resize(need.next_multiple_of(BLOCK), 0);
        }
        while self.end < need {
            let n = match self.input.read(&mut buf[self.end..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(e)),
            };
            if n == 0 {
                return Ok(false);
            }
            self.end += n;
        }
        Ok(true)
    }

    /// Takes `n` available bytes, counting them against the limit on inflated bytes.
    fn take(&mut self, n: usize) -> Result<std::ops::Range<usize>> {
        self.taken += n as u64;
        if self.taken > self.limits.max_decompressed {
            return Err(bad(MetadataProblem::Limit("decompressed bytes")));
        }
        let at = self.pos;
        self.pos += n;
        Ok(at..at + n)
    }

    /// The big-endian length at `pos + at` (available).
    fn length_at(&self, at: usize) -> usize {
        let b = &self.buf[self.pos + at..self.pos + at + 4];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
    }

    fn read_string(&mut self, max: usize) -> Result<Read1> {
        if !self.fill(4)? {
            return Ok(if self.end == self.pos { Read1::End } else { Read1::Truncated });
        }
        let len = self.length_at(0);
        if len > max {
            return Err(bad(MetadataProblem::StringTooLong { len: len as u64, max: max as u64 }));
        }
        if !self.fill(4 + len)? {
            return Ok(Read1::Truncated);
        }
        let range = self.take(4 + len)?;
        Ok(Read1::String(self.buf[range.start + 4..range.end].to_vec()))
    }

    /// The next pair of path and metadata, as ranges of `buf` (valid until the next read);
    /// `None` at the end of the stream, clean or inside the pair.
    #[inline(always)]
    fn read_pair(&mut self) -> Result<Option<(std::ops::Range<usize>, std::ops::Range<usize>)>> {
        if !self.fill(4)? {
            return Ok(None);
        }
        let path_len = self.length_at(0);
        if path_len > self.limits.max_path {
            return Err(bad(MetadataProblem::StringTooLong { len: path_len as u64, max: self.limits.max_path as u64 }));
        }
        if !self.fill(4 + path_len + 4)? {
            return Ok(None);
        }
        let meta_len = self.length_at(4 + path_len);
        if meta_len > self.limits.max_metadata {
            let max = self.limits.max_metadata as u64;
            return Err(bad(MetadataProblem::StringTooLong { len: meta_len as u64, max }));
        }
        if !self.fill(4 + path_len + 4 + meta_len)? {
            return Ok(None);
        }
        let all = self.take(4 + path_len + 4 + meta_len)?;
        let path = all.start + 4..all.start + 4 + path_len;
        Ok(Some((path.clone(), path.end + 4..all.end)))
    }

    fn next_entry(&mut self) -> Result<Option<MetadataEntry>> {
        let Some((path, flat)) = self.next_pair()? else { return Ok(None) };
        let path = self.buf.text(&path).to_owned();
        let metadata = if flat { self.flat.to_owned(&self.buf) } else { std::mem::take(&mut self.owned) };
        Ok(Some(MetadataEntry { path, metadata }))
    }

    /// The next entry, borrowed from the reader's buffer: no allocation for the entries
    /// GitLab writes (the fastest way through a large `metadata.gz`; the iterator gives
    /// owned [`MetadataEntry`] values). The same entries, skipped by the same rules.
    pub fn next_ref(&mut self) -> Result<Option<MetadataRef<'_>>> {
        let Some((path, flat)) = self.next_pair()? else { return Ok(None) };
        let fields = if flat { Fields::Flat(&self.flat) } else { Fields::Owned(&self.owned) };
        Ok(Some(MetadataRef { path: self.buf.text(&path), buf: &self.buf, fields }))
    }

    /// The next pair served: where its path and metadata lie in the buffer (valid until the
    /// next read), and the metadata read.
    #[inline(always)]
    fn next_pair(&mut self) -> Result<Option<Pair>> {
        if self.done {
            return Ok(None);
        }
        loop {
            let pair = match self.read_pair() {
                Ok(Some(pair)) => pair,
                Ok(None) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            };
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                self.done = true;
                return Err(bad(MetadataProblem::TooManyEntries { max: self.limits.max_entries }));
            }
            let (path, meta) = pair;
            let Some(path) = self.buf.check_path(path) else {
                continue;
            };
            // The flat parser checks the UTF-8 of what it reads (its strings; the rest is
            // ASCII it matched), so metadata that is not UTF-8 is never read by it.
            let json = &self.buf[meta.clone()];
            if flat_json(&self.buf, meta.clone(), &mut self.flat).is_some() {
                return Ok(Some((path, true)));
            }
            match std::str::from_utf8(json).ok().and_then(|m| serde_json::from_str(m).ok()) {
                Some(metadata) => self.owned = metadata,
                None => continue,
            }
            return Ok(Some((path, false)));
        }
    }

    /// Whether `path` is listed (a directory as `dir/`).
    pub fn exists(mut self, path: &str) -> Result<bool> {
        while let Some(entry) = self.next_ref()? {
            if entry.path == path {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The direct children of the directory `dir` (`""` for the root, else ending in `/`):
    /// paths matching `^dir[^/]+/?$`.
    pub fn children(self, dir: &str) -> impl Iterator<Item = Result<MetadataEntry>> {
        let dir = dir.to_owned();
        self.matching(move |path| is_child_of(path, &dir))
    }

    /// Everything under `prefix`, recursively.
    pub fn under(self, prefix: &str) -> impl Iterator<Item = Result<MetadataEntry>> {
        let prefix = prefix.to_owned();
        self.matching(move |path| is_under(path, &prefix))
    }

    /// The entries whose path `keep` accepts, owned; the others are looked at where they lie
    /// and never copied.
    fn matching(mut self, keep: impl Fn(&str) -> bool) -> impl Iterator<Item = Result<MetadataEntry>> {
        std::iter::from_fn(move || {
            loop {
                match self.next_ref() {
                    Ok(Some(entry)) if keep(entry.path) => return Some(Ok(entry.to_entry())),
                    Ok(Some(_)) => {}
                    Ok(None) => return None,
                    Err(e) => return Some(Err(e)),
                }
            }
        })
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

fn io_error(e: io::Error) -> Error {
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

    /// Whether the reader serves a pair with this path (UTF-8, GitLab's slash rule).
    fn path_is_served(path: &[u8]) -> bool {
        let mut buf = Buffer::zeroed(0);
        buf.write().extend_from_slice(path);
        buf.check_path(0..path.len()).is_some()
    }

    /// What the flat parser makes of `json`, owned.
    fn flat(json: &str) -> Option<EntryMetadata> {
        let mut m = Flat::default();
        let mut buf = Buffer::zeroed(0);
        buf.write().extend_from_slice(json.as_bytes());
        flat_json(&buf, 0..json.len(), &mut m).map(|()| m.to_owned(&buf))
    }

    /// What `serde_json` makes of `json`, which the flat parser must agree with.
    fn by_serde(json: &str) -> Option<EntryMetadata> {
        serde_json::from_str(json).ok()
    }

    #[test]
    fn the_flat_parser_reads_what_gitlab_writes_and_agrees_with_serde() {
        let read = [
            "{}",
            "{}\n",
            r#"{"crc":0,"size":0,"zipped":0}"#,
            "{\"modified\":1700000000,\"mode\":\"644\",\"crc\":4294967295,\"size\":2048,\"zipped\":900}\n",
            r#"{"modified":-5,"mode":"755","crc":1,"size":18446744073709,"zipped":0,"comment":"a comment <ok>"}"#,
            r#"{"size":1,"zipped":2}  "#,
        ];
        for json in read {
            let flat = flat(json);
            assert!(flat.is_some(), "{json}");
            assert_eq!(flat, by_serde(json), "{json}");
        }
        // Shapes left to serde (which may read them or refuse them): never a different answer.
        let left = [
            r#"{"size":1,"crc":2}"#,
            r#"{"crc":4294967296}"#,
            r#"{"crc":-1}"#,
            r#"{"modified":-0}"#,
            r#"{"size":01}"#,
            r#"{"size":1.0}"#,
            r#"{"size":1e3}"#,
            r#"{"size":null}"#,
            r#"{"size":1,"size":2}"#,
            r#"{"other":1}"#,
            r#"{ "size":1}"#,
            r#"{"size" :1}"#,
            r#"{"size":1,}"#,
            r#"{"mode":"6\u00344"}"#,
            r#"{"comment":"tab	inside"}"#,
            r#"{"size":1}x"#,
            r#"{"size":1234567890123456789}"#,
            "[]",
            "",
            "{",
            r#"{"size""#,
        ];
        for json in left {
            assert_eq!(flat(json), None, "{json}");
            let _ = by_serde(json);
        }
    }

    proptest::proptest! {
        /// Objects of the known fields in any order, with values in and out of range and
        /// optional whitespace: the flat parser reads them as serde does, or leaves them.
        #[test]
        fn the_flat_parser_never_disagrees_with_serde(
            fields in proptest::collection::vec((0usize..7, proptest::num::i64::ANY, "[ -~]{0,6}"), 0..7),
            space in proptest::bool::ANY,
        ) {
            let names = ["modified", "mode", "crc", "size", "zipped", "comment", "x"];
            let parts: Vec<String> = fields
                .iter()
                .map(|(k, n, text)| match names[*k] {
                    "mode" | "comment" => format!("\"{}\":{}", names[*k], serde_json::to_string(text).unwrap()),
                    name => format!("\"{name}\":{n}"),
                })
                .collect();
            let json = format!("{{{}}}{}", parts.join(if space { ", " } else { "," }), if space { "\n" } else { "" });
            if let Some(flat) = flat(&json) {
                proptest::prop_assert_eq!(Some(flat), by_serde(&json), "{}", json);
            }
        }
    }

    proptest::proptest! {
        /// The one-pass check is GitLab's `(^\.?\.?/)|(/\.?\.?/)`, written as substring checks,
        /// on UTF-8, for paths long and short, in and out of words of eight bytes.
        #[test]
        fn the_path_check_is_gitlabs_rule(path in proptest::collection::vec(proptest::sample::select(b"a./\xc3\xa9".to_vec()), 0..40)) {
            let text = std::str::from_utf8(&path);
            let gitlab = text.is_ok_and(|path| {
                let bad_start = path.starts_with('/') || path.starts_with("./") || path.starts_with("../");
                !(bad_start || path.contains("//") || path.contains("/./") || path.contains("/../"))
            });
            proptest::prop_assert_eq!(path_is_served(&path), gitlab, "{:?}", String::from_utf8_lossy(&path));
        }
    }

    proptest::proptest! {
        /// The integer reader agrees with `str::parse` on the digits it accepts, for numbers
        /// of every length, with and without bytes after them.
        #[test]
        fn integers_are_read_as_digit_by_digit(
            digits in "-?[0-9]{0,22}",
            after in "[}, .eE0-9a]{0,10}",
            signed in proptest::bool::ANY,
        ) {
            let json = format!("{digits}{after}");
            let negative = signed && digits.starts_with('-');
            let body = &json[usize::from(negative)..];
            let run = body.bytes().take_while(u8::is_ascii_digit).count();
            let plain = (run > 0 && run <= 18 && !(body.starts_with('0') && (run > 1 || negative))
                && !matches!(body.as_bytes().get(run), Some(b'.' | b'e' | b'E')))
                .then(|| {
                    let n: i64 = body[..run].parse().unwrap_or_default();
                    (if negative { -n } else { n }, &body.as_bytes()[run..])
                });
            proptest::prop_assert_eq!(integer(json.as_bytes(), signed), plain, "{}", json);
        }
    }

    #[test]
    fn unsafe_paths_are_dropped() {
        for p in ["/a", "./a", "../a", "a//b", "a/./b", "a/../b", "build/objects/../../etc/passwd", "/"] {
            assert!(!path_is_served(p.as_bytes()), "{p}");
        }
        for p in ["a", "a/", ".a", "a/..b", "..a/b", "build/objects/file-000001.o", "d\u{e9}j\u{e0}/vu/", ""] {
            assert!(path_is_served(p.as_bytes()), "{p}");
        }
        assert!(!path_is_served(b"bad\xff/utf-8"));
    }
}
