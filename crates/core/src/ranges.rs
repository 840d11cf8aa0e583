//! The `Range` request header (RFC 9110 §14.1.2) for one representation of known length.
//! Pure and bounded: it is fuzzed (`artifact_testkit::fuzz::http_range`).
#![forbid(unsafe_code)]

/// At most this many ranges are honoured; a longer list is answered with the whole
/// representation (RFC 9110 lets a server ignore `Range`), so that no request can make the
/// server seek thousands of times for a few bytes each.
pub const MAX_RANGES: usize = 16;

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// Serve everything (no header, a header we ignore, or too many ranges).
    Full,
    /// Serve these inclusive-exclusive byte ranges (`start < end <= len`), in request order.
    Partial(Vec<(u64, u64)>),
    /// Every range lies past the end: 416.
    Unsatisfiable,
}

/// Interprets `header` for a representation of `len` bytes. Syntax errors make the header
/// ignored (`Full`), as RFC 9110 asks.
pub fn parse_range(header: &str, len: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    let mut ranges = Vec::new();
    let mut any = false;
    for part in spec.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        any = true;
        let Some((first, last)) = part.split_once('-') else {
            return RangeRequest::Full;
        };
        let (first, last) = (first.trim(), last.trim());
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let range = if first.is_empty() {
            // Suffix: the last N bytes.
            if !digits(last) {
                return RangeRequest::Full;
            }
            let n = last.parse::<u64>().unwrap_or(u64::MAX);
            if n == 0 || len == 0 { None } else { Some((len - n.min(len), len)) }
        } else {
            if !digits(first) || !(last.is_empty() || digits(last)) {
                return RangeRequest::Full;
            }
            let Ok(start) = first.parse::<u64>() else {
                return RangeRequest::Unsatisfiable;
            };
            let end = if last.is_empty() {
                len
            } else {
                let last = last.parse::<u64>().unwrap_or(u64::MAX);
                if last < start {
                    return RangeRequest::Full;
                }
                last.saturating_add(1).min(len)
            };
            (start < len).then_some((start, end))
        };
        if let Some(r) = range {
            if ranges.len() == MAX_RANGES {
                return RangeRequest::Full;
            }
            ranges.push(r);
        }
    }
    if !any {
        RangeRequest::Full
    } else if ranges.is_empty() {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Partial(ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::*;
    use super::*;

    #[test]
    fn single_ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Partial(vec![(0, 100)]));
        assert_eq!(parse_range("bytes=900-", 1000), Partial(vec![(900, 1000)]));
        assert_eq!(parse_range("bytes=-100", 1000), Partial(vec![(900, 1000)]));
        assert_eq!(parse_range("bytes=-5000", 1000), Partial(vec![(0, 1000)]));
        assert_eq!(parse_range("bytes=990-5000", 1000), Partial(vec![(990, 1000)]));
    }

    #[test]
    fn multiple_ranges_skip_unsatisfiable_parts() {
        assert_eq!(parse_range("bytes=0-0, 5000-6000, -1", 1000), Partial(vec![(0, 1), (999, 1000)]));
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(parse_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=99999999999999999999999-", 10), Unsatisfiable);
        for ignored in ["items=0-1", "bytes=", "bytes=5-1", "bytes=a-b", "bytes=1", "bytes=--1", "bytes=+1-2"] {
            assert_eq!(parse_range(ignored, 1000), Full, "{ignored}");
        }
    }

    #[test]
    fn too_many_ranges_serve_everything() {
        let many: Vec<String> = (0..=MAX_RANGES).map(|i| format!("{i}-{i}")).collect();
        assert_eq!(parse_range(&format!("bytes={}", many.join(",")), 1000), Full);
    }
}
