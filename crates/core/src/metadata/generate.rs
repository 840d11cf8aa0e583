//! Writing `metadata.gz` the way GitLab Workhorse's `GenerateZipMetadata` does, so that the
//! decompressed bytes are identical for the same archive.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::{self, Write};

use flate2::{Compression, GzBuilder};

use super::gopath;
use crate::entry::Entry;

/// The version header every `metadata.gz` starts with.
pub const HEADER: &str = "GitLab Build Artifacts Metadata 0.0.2\n";

/// Writes the `metadata.gz` of the archive whose entries are `entries` (in central directory
/// order) to `out`, gzip-compressed, and returns `out`.
///
/// Like Workhorse: every missing parent directory (Go's `path.Dir`, repeated until `.` or
/// `/`) is added as `dir/`; on duplicate names the last entry wins; paths are sorted
/// byte-wise; each record is the JSON of `modified` (MS-DOS time as UTC), `mode` (octal
/// permission bits as Go computes them), `crc`, `size`, `zipped` and `comment`, the first two
/// and the last left out when zero or empty; added directories are `{"crc":0,"size":0,
/// "zipped":0}`. The gzip header carries no name, mtime 0 and OS 255, as Go's writer does.
pub fn generate<'a, W: Write>(entries: impl IntoIterator<Item = &'a Entry>, out: W) -> io::Result<W> {
    let paths = tree(entries);
    let mut gz = GzBuilder::new().operating_system(255).write(out, Compression::default());
    write_string(&mut gz, HEADER.as_bytes())?;
    write_string(&mut gz, b"{}")?;
    let mut json = Vec::with_capacity(256);
    for (path, entry) in paths.iter() {
        write_string(&mut gz, path)?;
        json.clear();
        entry_json(entry, &mut json);
        json.push(b'\n');
        write_string(&mut gz, &json)?;
    }
    gz.finish()
}

/// Every path GitLab's metadata lists for an archive, sorted byte-wise: each entry's name
/// (the last of duplicate names wins) and each missing parent directory as `dir/` with no
/// entry. What `metadata.gz` holds, and what a listing of the archive shows.
#[derive(Debug, Clone, Default)]
pub struct Tree<'a> {
    paths: Vec<(Cow<'a, [u8]>, Option<&'a Entry>)>,
}

impl<'a> Tree<'a> {
    /// The paths in byte-wise order, each with its entry (`None` for an added directory).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&'a Entry>)> + '_ {
        self.paths.iter().map(|(p, e)| (p.as_ref(), *e))
    }

    /// Whether `path` is in the tree (a directory as `dir/`).
    pub fn contains(&self, path: &[u8]) -> bool {
        self.paths.binary_search_by(|(p, _)| p.as_ref().cmp(path)).is_ok()
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether there are no paths.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// Builds the [`Tree`] of `entries` (in central directory order) as Workhorse does: parents
/// by Go's `path.Dir`, repeated until `.` or `/`.
pub fn tree<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Tree<'a> {
    let mut paths: Vec<(Cow<'a, [u8]>, Option<&'a Entry>)> = Vec::new();
    let mut dirs: HashSet<Cow<'a, [u8]>> = HashSet::new();
    let mut add_dir = |paths: &mut Vec<_>, dir: Cow<'a, [u8]>| {
        if dirs.insert(dir.clone()) {
            paths.push((dir, None));
        }
    };
    for entry in entries {
        let name = entry.name();
        paths.push((Cow::Borrowed(name), Some(entry)));
        if is_clean(name) {
            // Go's `path.Dir` of a clean name is a prefix: every parent is the name up to
            // and including one of its slashes.
            for (i, _) in name.iter().enumerate().filter(|(_, b)| **b == b'/') {
                add_dir(&mut paths, Cow::Borrowed(&name[..=i]));
            }
        } else {
            let mut d = gopath::dir(name);
            while d != b"." && d != b"/" {
                let mut key = d.clone();
                key.push(b'/');
                add_dir(&mut paths, Cow::Owned(key));
                d = gopath::dir(&d);
            }
        }
    }
    // Stable: among equal paths, entries keep central directory order.
    paths.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(Cow<'a, [u8]>, Option<&'a Entry>)> = Vec::with_capacity(paths.len());
    for (path, entry) in paths {
        match out.last_mut() {
            Some(last) if last.0 == path => {
                if entry.is_some() {
                    last.1 = entry;
                }
            }
            _ => out.push((path, entry)),
        }
    }
    Tree { paths: out }
}

/// Whether Go's `path.Clean` leaves every parent of `name` unchanged: relative, and no
/// empty, `.` or `..` segment before the last one.
fn is_clean(name: &[u8]) -> bool {
    if name.first() == Some(&b'/') {
        return false;
    }
    let mut segments = name.split(|&b| b == b'/');
    segments.next_back(); // the last segment is the entry's own name, not a parent
    segments.all(|s| !s.is_empty() && s != b"." && s != b"..")
}

fn write_string(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "metadata string over 4 GiB"))?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(bytes)
}

/// `json.Marshal` of Workhorse's `metadata` struct.
fn entry_json(entry: Option<&Entry>, out: &mut Vec<u8>) {
    use std::io::Write as _;
    let Some(e) = entry else {
        out.extend_from_slice(br#"{"crc":0,"size":0,"zipped":0}"#);
        return;
    };
    out.push(b'{');
    let modified = e.modified_unix();
    if modified != 0 {
        let _ = write!(out, "\"modified\":{modified},");
    }
    let _ = write!(
        out,
        "\"mode\":\"{:o}\",\"crc\":{},\"size\":{},\"zipped\":{}",
        e.permissions(),
        e.crc32(),
        e.size(),
        e.compressed_size()
    );
    if !e.comment().is_empty() {
        out.extend_from_slice(b",\"comment\":");
        go_json_string(e.comment(), out);
    }
    out.push(b'}');
}

/// A string as Go's `encoding/json` writes it with HTML escaping on: `\"`, `\\`, `\b`,
/// `\f`, `\n`, `\r`, `\t`; other control bytes, `<`, `>` and `&` as `\u00xx`; U+2028 and
/// U+2029 escaped; each byte of invalid UTF-8 as `\ufffd`.
pub(crate) fn go_json_string(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{0}'..='\u{1f}' | '<' | '>' | '&' => {
                    let b = c as u8;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                '\u{2028}' => out.extend_from_slice(b"\\u2028"),
                '\u{2029}' => out.extend_from_slice(b"\\u2029"),
                c => {
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Workhorse's algorithm, literally: a map, parents by `path.Dir` only.
    fn reference(names: &[Vec<u8>]) -> Vec<(Vec<u8>, Option<usize>)> {
        let mut map: BTreeMap<Vec<u8>, Option<usize>> = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            map.insert(name.clone(), Some(i));
            let mut d = gopath::dir(name);
            while d != b"." && d != b"/" {
                let mut key = d.clone();
                key.push(b'/');
                map.entry(key).or_insert(None);
                d = gopath::dir(&d);
            }
        }
        map.into_iter().collect()
    }

    fn entry(name: &[u8]) -> Entry {
        Entry {
            name: bytes::Bytes::copy_from_slice(name),
            comment: bytes::Bytes::new(),
            version_made_by: 0,
            flags: 0,
            method: 0,
            dos_time: 0,
            dos_date: 0,
            crc32: 0,
            compressed_size: 0,
            uncompressed_size: 0,
            external_attributes: 0,
            header_offset: 0,
            record_offset: 0,
        }
    }

    proptest! {
        #[test]
        fn tree_equals_workhorse_map(parts in proptest::collection::vec(
            proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("/"), Just("."), Just("..")], 1..6)
                .prop_map(|p| p.concat().into_bytes()),
            1..8,
        )) {
            let entries: Vec<Entry> = parts.iter().map(|n| entry(n)).collect();
            let got: Vec<(Vec<u8>, Option<usize>)> = tree(&entries)
                .iter()
                .map(|(p, e)| (p.to_vec(), e.map(|e| entries.iter().position(|x| std::ptr::eq(x, e)).unwrap())))
                .collect();
            prop_assert_eq!(got, reference(&parts));
        }
    }

    #[test]
    fn strings_escape_like_go() {
        let mut out = Vec::new();
        go_json_string(b"a\"b\\c\x08\x0c\n\r\t\x01\x1f<>&\x7f\xe2\x80\xa8\xe2\x82 ok", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""a\"b\\c\b\f\n\r\t\u0001\u001f\u003c\u003e\u0026"#.to_owned() + "\u{7f}" + r#"\u2028\ufffd\ufffd ok""#
        );
    }
}
