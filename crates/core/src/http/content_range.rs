//! `Content-Range: bytes start-end/total` (RFC 9110 14.4), parsed without I/O.
#![forbid(unsafe_code)]

/// A satisfied byte range and the representation's total length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentRange {
    pub(crate) start: u64,
    /// Inclusive.
    pub(crate) end: u64,
    pub(crate) total: u64,
}

impl ContentRange {
    pub(crate) fn len(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// Parses `bytes a-b/total`; anything else (an unknown total `*`, `a > b`, `b >= total`)
/// is `None`.
pub(crate) fn parse(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (start, end, total) = (number(start)?, number(end)?, number(total)?);
    (start <= end && end < total).then_some(ContentRange { start, end, total })
}

/// The total from the `bytes */total` of a 416.
pub(crate) fn unsatisfied_total(value: &str) -> Option<u64> {
    value.trim().strip_prefix("bytes */")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ranges_parse() {
        assert_eq!(parse("bytes 0-99/1000"), Some(ContentRange { start: 0, end: 99, total: 1000 }));
        assert_eq!(parse("bytes 999-999/1000").map(|r| r.len()), Some(1));
    }

    #[test]
    fn invalid_ranges_are_refused() {
        for bad in ["bytes 0-99/*", "bytes 5-4/10", "bytes 0-10/10", "items 0-1/2", "bytes -1/2", "bytes 0-+1/2", ""] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(unsatisfied_total("bytes */1234"), Some(1234));
    }
}
