//! Text checked once, read many times: the only `unsafe` of the metadata decoder, sound by
//! construction.
//!
//! The reader's bytes live in a [`Buffer`] whose contents change only through
//! [`Buffer::write`], and every write gives the buffer a new seal, taken from one counter
//! for the whole process. A [`Text`] is made only by [`Buffer::check`], which checks that
//! its bytes are UTF-8 and records the seal they were checked under. [`Buffer::text`] reads
//! a `Text` without checking again only when the seals match, so its bytes are the ones
//! checked, in that very buffer (no two buffers, and no two contents of one, share a seal);
//! any other `Text` reads as empty. Checking again instead cost about 40% of the borrowing
//! decoder's time (`benches/README.md` §25). A path's check is one pass with GitLab's rule
//! for its slashes ([`Buffer::check_path`]).

use std::ops::{Deref, Range};
use std::sync::atomic::{AtomicU64, Ordering};

/// Seals given out so far, for every buffer of the process.
static SEALS: AtomicU64 = AtomicU64::new(1);

fn new_seal() -> u64 {
    SEALS.fetch_add(1, Ordering::Relaxed)
}

/// The reader's bytes (see the module docs).
#[derive(Debug)]
pub(super) struct Buffer {
    bytes: Vec<u8>,
    seal: u64,
}

/// Bytes of a [`Buffer`] checked to be UTF-8 under one seal (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Text {
    start: usize,
    end: usize,
    /// Zero for none: no buffer has it.
    seal: u64,
}

impl Buffer {
    /// `len` zero bytes.
    pub(super) fn zeroed(len: usize) -> Buffer {
        Buffer { bytes: vec![0; len], seal: new_seal() }
    }

    /// The bytes, to change: every [`Text`] checked before reads as empty from now on.
    pub(super) fn write(&mut self) -> &mut Vec<u8> {
        self.seal = new_seal();
        &mut self.bytes
    }

    /// `range` as text, if it lies in the buffer and its bytes are UTF-8.
    #[inline(always)]
    pub(super) fn check(&self, range: Range<usize>) -> Option<Text> {
        let bytes = self.bytes.get(range.clone())?;
        // ASCII (paths and modes, nearly always) a word at a time, the rest by the standard
        // library's validation.
        (bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()).then_some(Text {
            start: range.start,
            end: range.end,
            seal: self.seal,
        })
    }

    /// `range` as text if it is a path the reader serves: UTF-8, and not one GitLab drops
    /// ([`bad_slash`](super::paths::bad_slash)). One pass, eight bytes at a time, that sees
    /// whether every byte is ASCII on the way and looks at the slashes alone one by one; a
    /// path that is not ASCII is then checked by the standard library.
    #[inline(always)]
    pub(super) fn check_path(&self, range: Range<usize>) -> Option<Text> {
        use super::paths::{bad_slash, bytes_equal_to};
        let path = self.bytes.get(range.clone())?;
        let words = path.chunks_exact(8);
        let tail = words.remainder();
        let whole = path.len() - tail.len();
        let mut high = 0u64;
        for (i, word) in words.enumerate() {
            let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
            high |= w;
            let mut slashes = bytes_equal_to(w, b'/');
            while slashes != 0 {
                if bad_slash(path, i * 8 + (slashes.trailing_zeros() / 8) as usize) {
                    return None;
                }
                slashes &= slashes - 1;
            }
        }
        for (j, &b) in tail.iter().enumerate() {
            high |= u64::from(b);
            if b == b'/' && bad_slash(path, whole + j) {
                return None;
            }
        }
        // Every byte below 0x80 is ASCII; else the standard library says.
        let utf8 = high & 0x8080_8080_8080_8080 == 0 || std::str::from_utf8(path).is_ok();
        utf8.then_some(Text { start: range.start, end: range.end, seal: self.seal })
    }

    /// The text `text` holds, if it was checked in this buffer since its last change; empty
    /// for any other.
    #[inline(always)]
    pub(super) fn text(&self, text: &Text) -> &str {
        match self.bytes.get(text.start..text.end) {
            Some(bytes) if text.seal == self.seal => {
                // SAFETY: `text` was made by `check` on this buffer (seals are unique to one
                // buffer's contents) over these very bytes, unchanged since (any change goes
                // through `write`, which changes the seal), and `check` found them UTF-8.
                #[allow(unsafe_code)]
                unsafe {
                    std::str::from_utf8_unchecked(bytes)
                }
            }
            _ => "",
        }
    }
}

impl Deref for Buffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_reads_only_where_and_while_it_was_checked() {
        let mut a = Buffer::zeroed(0);
        a.write().extend_from_slice("héllo wörld".as_bytes());
        let hello = a.check(0..6).unwrap();
        assert_eq!(a.text(&hello), "héllo");
        assert!(a.check(0..2).is_none(), "half of é is not UTF-8");
        assert!(a.check(0..100).is_none());
        let mut b = Buffer::zeroed(0);
        b.write().extend_from_slice(&[0xff; 16]);
        assert_eq!(b.text(&hello), "", "another buffer's text");
        a.write()[1] = 0xff;
        assert_eq!(a.text(&hello), "", "the bytes changed since");
        assert_eq!(a.text(&Text::default()), "");
    }
}
