//! The one shape of a metadata object that GitLab writes, read without a JSON parser.
#![forbid(unsafe_code)]

use super::*;

/// The metadata object as GitLab writes it (Go's `json.Marshal` of Workhorse's struct): `{`,
/// the fields it has in the struct's order (`modified`, `mode`, `crc`, `size`, `zipped`,
/// `comment`), `,` between them, `}`, then JSON whitespace. Numbers are plain integers in
/// range, strings hold no escapes and no control characters. `None` for anything else
/// (other shapes are left to `serde_json`, which decides the same way on what this reads).
/// The fields go to `m`, which is meaningful only when this gives `Some`.
#[inline(always)]
pub(super) fn flat_json(buf: &Buffer, meta: std::ops::Range<usize>, m: &mut Flat) -> Option<()> {
    *m = Flat::default();
    let json = buf.get(meta.clone())?;
    // A string that `string` returned, checked as text where it lies in the buffer.
    let span = |text: &[u8]| {
        let start = meta.start + (text.as_ptr() as usize - json.as_ptr() as usize);
        buf.check(start..start + text.len())
    };
    let mut rest = json.strip_prefix(b"{")?;
    let mut first = true;
    if let Some(r) = key(rest, first, b"\"modified\":") {
        let (n, r) = integer(r, true)?;
        (m.modified, rest, first) = (Some(n), r, false);
    }
    if let Some(r) = key(rest, first, b"\"mode\":") {
        let (text, r) = string(r)?;
        (m.mode, rest, first) = (Some(span(text)?), r, false);
    }
    if let Some(r) = key(rest, first, b"\"crc\":") {
        let (n, r) = integer(r, false)?;
        (m.crc, rest, first) = (Some(u32::try_from(n).ok()?), r, false);
    }
    if let Some(r) = key(rest, first, b"\"size\":") {
        let (n, r) = integer(r, false)?;
        (m.size, rest, first) = (Some(n as u64), r, false);
    }
    if let Some(r) = key(rest, first, b"\"zipped\":") {
        let (n, r) = integer(r, false)?;
        (m.zipped, rest, first) = (Some(n as u64), r, false);
    }
    if let Some(r) = key(rest, first, b"\"comment\":") {
        let (text, r) = string(r)?;
        (m.comment, rest) = (Some(span(text)?), r);
    }
    let rest = rest.strip_prefix(b"}")?;
    rest.iter().all(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t')).then_some(())
}

/// What the flat parser read: the fields, its strings as text checked where it lies in the
/// reader's buffer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Flat {
    pub(super) modified: Option<i64>,
    pub(super) mode: Option<Text>,
    pub(super) crc: Option<u32>,
    pub(super) size: Option<u64>,
    pub(super) zipped: Option<u64>,
    pub(super) comment: Option<Text>,
}

impl Flat {
    pub(super) fn to_owned(&self, buf: &Buffer) -> EntryMetadata {
        EntryMetadata {
            modified: self.modified,
            mode: self.mode.as_ref().map(|s| buf.text(s).to_owned()),
            crc: self.crc,
            size: self.size,
            zipped: self.zipped,
            comment: self.comment.as_ref().map(|s| buf.text(s).to_owned()),
        }
    }
}

/// After `pattern` (a key with its quotes and colon, preceded by `,` unless `first`) at the
/// start of `json`, if it is there. The pattern's length is known when compiled, so the
/// comparison is a few word loads.
#[inline(always)]
pub(super) fn key<'a, const N: usize>(json: &'a [u8], first: bool, pattern: &[u8; N]) -> Option<&'a [u8]> {
    let json = if first { json } else { json.strip_prefix(b",")? };
    let (head, rest) = json.split_first_chunk::<N>()?;
    (head == pattern).then_some(rest)
}

/// A string without escapes or control characters at the start of `json`: its bytes (not
/// yet checked as UTF-8) and what follows it.
#[inline(always)]
pub(super) fn string(json: &[u8]) -> Option<(&[u8], &[u8])> {
    let body = json.strip_prefix(b"\"")?;
    let len = body.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    if body[len] != b'"' {
        return None;
    }
    Some((&body[..len], &body[len + 1..]))
}

/// An integer at the start of `json`: `0` or digits not starting with `0`, with a `-` when
/// `signed` (and not `-0`); at most 18 digits, so it fits `i64` and the sized fields check
/// their own range. The value and what follows it. (Digits read eight at a time with a
/// word's arithmetic measured slower on GitLab's numbers, which are short.)
#[inline(always)]
pub(super) fn integer(json: &[u8], signed: bool) -> Option<(i64, &[u8])> {
    let negative = signed && json.first() == Some(&b'-');
    let json = &json[usize::from(negative)..];
    let (mut n, mut digits) = (0u64, 0usize);
    while let Some(&b) = json.get(digits) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        // Wrapping: a number of more than 18 digits is refused below anyway.
        n = n.wrapping_mul(10).wrapping_add(u64::from(d));
        digits += 1;
    }
    if digits == 0 || digits > 18 || (json[0] == b'0' && (digits > 1 || negative)) {
        return None;
    }
    // A fraction or an exponent is a number this does not read.
    if matches!(json.get(digits), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    let n = n as i64; // At most 18 digits: in range.
    Some((if negative { -n } else { n }, &json[digits..]))
}
