//! Writing `metadata.gz` the way GitLab Workhorse's `GenerateZipMetadata` does, so that the
//! decompressed bytes are identical for the same archive.

use std::collections::BTreeMap;
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
    for (path, entry) in &paths {
        write_string(&mut gz, path)?;
        json.clear();
        entry_json(*entry, &mut json);
        json.push(b'\n');
        write_string(&mut gz, &json)?;
    }
    gz.finish()
}

/// Every path GitLab's metadata lists for these entries, sorted byte-wise: each entry's name
/// (the last of duplicates wins), and each missing parent directory as `dir/` with `None`.
/// What `metadata.gz` holds, and what a listing of the archive shows.
pub fn tree<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> BTreeMap<Vec<u8>, Option<&'a Entry>> {
    let mut paths: BTreeMap<Vec<u8>, Option<&Entry>> = BTreeMap::new();
    for entry in entries {
        paths.insert(entry.name().to_vec(), Some(entry));
        let mut d = gopath::dir(entry.name());
        while d != b"." && d != b"/" {
            let mut key = d.clone();
            key.push(b'/');
            paths.entry(key).or_insert(None);
            d = gopath::dir(&d);
        }
    }
    paths
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

    #[test]
    fn strings_escape_like_go() {
        let mut out = Vec::new();
        go_json_string(b"a\"b\\c\x08\x0c\n\r\t\x01\x1f<>&\x7f\xe2\x80\xa8\xe2\x82 ok", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""a\"b\\c\b\f\n\r\t\u0001\u001f\u003c\u003e\u0026"#.to_owned()
                + "\u{7f}"
                + r#"\u2028\ufffd\ufffd ok""#
        );
    }
}
