//! Which paths of `metadata.gz` are served: GitLab's rule, checked eight bytes at a time.

/// Whether a pair's path is served: UTF-8, and not a path GitLab drops (`(^\.?\.?/)|(/\.?\.?/)`,
/// that is: a segment of `""`, `.` or `..` ending in `/`). One pass, eight bytes at a time:
/// only the slashes are looked at one by one. The one check behind
/// [`served_path`].
#[inline(always)]
pub(super) fn path_is_served(path: &[u8]) -> bool {
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
                return false;
            }
            slashes &= slashes - 1;
        }
    }
    for (j, &b) in tail.iter().enumerate() {
        high |= u64::from(b);
        if b == b'/' && bad_slash(path, whole + j) {
            return false;
        }
    }
    high & 0x8080_8080_8080_8080 == 0 || std::str::from_utf8(path).is_ok()
}

/// The bytes of the word `w` (in memory order) equal to `byte`: `0x80` in each such byte,
/// `0` in the others. Exact (no carries between bytes: each byte's low seven bits are added
/// apart from its high bit).
#[inline(always)]
pub(super) fn bytes_equal_to(w: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let x = w ^ u64::from_ne_bytes([byte; 8]);
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// Whether the `/` at `at` in `path` ends a segment of `""`, `.` or `..`.
#[inline]
pub(super) fn bad_slash(path: &[u8], at: usize) -> bool {
    let before = |back: usize| {
        if back > at {
            None
        } else if back == at {
            Some(b'/')
        } else {
            Some(path[at - back - 1])
        }
    };
    // A segment starts at the path's start or after a `/`: seen as a `/` just before it.
    matches!(
        (before(0), before(1), before(2)),
        (Some(b'/'), _, _) | (Some(b'.'), Some(b'/'), _) | (Some(b'.'), Some(b'.'), Some(b'/'))
    )
}

/// The text of a path that [`path_is_served`] passed.
#[inline]
pub(super) fn served_path(path: &[u8]) -> &str {
    checked_text(path)
}

/// Bytes this module has already checked to be UTF-8, as text: a path passed by
/// [`path_is_served`], or a string of the flat parser ([`string`]), taken again from the
/// same bytes of the reader's buffer (not written in between).
#[inline]
pub(super) fn checked_text(text: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(text).is_ok());
    // SAFETY: the callers pass only bytes checked as said above; checking them again took
    // a tenth of the decoder's time.
    #[allow(unsafe_code)]
    unsafe {
        std::str::from_utf8_unchecked(text)
    }
}
