//! Which paths of `metadata.gz` are served: GitLab's rule, checked eight bytes at a time
//! (by [`Buffer::check_path`](super::text::Buffer::check_path), with these helpers).
#![forbid(unsafe_code)]

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
