//! The path rule: which `artifact_path` values may name an entry.
//!
//! GitLab itself only rejects NUL and invalid UTF-8; this project refuses every path that
//! could escape a directory or mean something else after one more decoding (see
//! "The path rule" in `docs/jobs-api.md`). Accepted paths are compared byte for
//! byte with entry names: no case folding, no Unicode normalisation.
#![forbid(unsafe_code)]

use std::fmt;

/// The longest accepted path, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// A path that passed the path rule: non-empty UTF-8 of at most 4,096 bytes, no control
/// characters, not absolute or drive-prefixed, and no empty, `.` or `..` segment under
/// either `/` or `\`, also after one more percent-decoding.
///
/// The only way to get one is [`ArtifactPath::new`], so holding one proves the rule held.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactPath(String);

/// Which part of the path rule a rejected path broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathRule {
    /// The path is empty.
    Empty,
    /// The path is not valid UTF-8.
    NotUtf8,
    /// The path holds NUL or another control character.
    ControlCharacter,
    /// The path is longer than [`MAX_PATH_LEN`] bytes.
    TooLong,
    /// The path starts with `/` or `\`.
    Absolute,
    /// The path starts with a drive letter such as `C:`.
    DriveLetter,
    /// A segment is `..`.
    DotDot,
    /// A segment is `.`.
    Dot,
    /// A segment is empty (`a//b`, or a leading or trailing separator).
    EmptySegment,
}

impl PathRule {
    fn describe(self) -> &'static str {
        match self {
            PathRule::Empty => "is empty",
            PathRule::NotUtf8 => "is not valid UTF-8",
            PathRule::ControlCharacter => "holds a control character",
            PathRule::TooLong => "is longer than 4096 bytes",
            PathRule::Absolute => "is absolute",
            PathRule::DriveLetter => "starts with a drive letter",
            PathRule::DotDot => "has a '..' segment",
            PathRule::Dot => "has a '.' segment",
            PathRule::EmptySegment => "has an empty segment",
        }
    }
}

/// A path that broke the path rule, with the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidPath {
    /// The rejected path (lossy UTF-8, for messages).
    pub path: String,
    /// The rule it broke.
    pub rule: PathRule,
    /// Whether it broke the rule only after one more percent-decoding.
    pub encoded: bool,
}

impl fmt::Display for InvalidPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.path.chars().take(200).flat_map(char::escape_debug).collect();
        write!(f, "invalid artifact path \"{shown}\": it {}", self.rule.describe())?;
        if self.encoded {
            f.write_str(" once percent-decoded")?;
        }
        Ok(())
    }
}

impl ArtifactPath {
    /// Checks `path` against the path rule.
    ///
    /// ```
    /// use artifact_core::{ArtifactPath, PathRule};
    /// assert_eq!(ArtifactPath::new("dist/app.js")?.as_str(), "dist/app.js");
    /// assert_eq!(ArtifactPath::new("a/../b").unwrap_err().rule, PathRule::DotDot);
    /// assert_eq!(ArtifactPath::new("%2e%2e/x").unwrap_err().rule, PathRule::DotDot);
    /// # Ok::<(), artifact_core::InvalidPath>(())
    /// ```
    pub fn new(path: impl AsRef<[u8]>) -> Result<ArtifactPath, InvalidPath> {
        let bytes = path.as_ref();
        let reject = |rule, encoded| InvalidPath { path: String::from_utf8_lossy(bytes).into_owned(), rule, encoded };
        let text = check(bytes).map_err(|rule| reject(rule, false))?;
        if let Some(decoded) = percent_decode(bytes) {
            check(&decoded).map_err(|rule| reject(rule, true))?;
        }
        Ok(ArtifactPath(text.to_owned()))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path as the bytes an entry name must equal.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The last segment: what a download is named.
    pub fn file_name(&self) -> &str {
        self.0.rsplit(['/', '\\']).next().unwrap_or(&self.0)
    }

    /// The segments, split on `/` and `\`.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split(['/', '\\'])
    }
}

impl fmt::Debug for ArtifactPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for ArtifactPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ArtifactPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ArtifactPath {
    type Err = InvalidPath;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ArtifactPath::new(s)
    }
}

/// Every rule but the percent-decoding one.
fn check(bytes: &[u8]) -> Result<&str, PathRule> {
    if bytes.is_empty() {
        return Err(PathRule::Empty);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| PathRule::NotUtf8)?;
    if text.chars().any(char::is_control) {
        return Err(PathRule::ControlCharacter);
    }
    if bytes.len() > MAX_PATH_LEN {
        return Err(PathRule::TooLong);
    }
    match bytes {
        [b'/' | b'\\', ..] => return Err(PathRule::Absolute),
        [letter, b':', ..] if letter.is_ascii_alphabetic() => return Err(PathRule::DriveLetter),
        _ => {}
    }
    for segment in text.split(['/', '\\']) {
        match segment {
            "" => return Err(PathRule::EmptySegment),
            "." => return Err(PathRule::Dot),
            ".." => return Err(PathRule::DotDot),
            _ => {}
        }
    }
    Ok(text)
}

/// One round of percent-decoding, or `None` when there is nothing to decode.
fn percent_decode(bytes: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::new();
    let mut changed = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
            {
                if !changed {
                    out.reserve(bytes.len());
                    out.extend_from_slice(&bytes[..i]);
                    changed = true;
                }
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        if changed {
            out.push(bytes[i]);
        }
        i += 1;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(path: &str) -> Option<PathRule> {
        ArtifactPath::new(path).err().map(|e| e.rule)
    }

    #[test]
    fn spec_examples_are_rejected_with_their_rule() {
        use PathRule::*;
        let cases: &[(&str, PathRule)] = &[
            ("", Empty),
            ("a\0b", ControlCharacter),
            ("a\nb", ControlCharacter),
            ("a\u{7f}b", ControlCharacter),
            ("a\u{85}b", ControlCharacter),
            ("/etc/passwd", Absolute),
            ("\\windows", Absolute),
            ("C:", DriveLetter),
            ("c:/x", DriveLetter),
            ("C:\\x", DriveLetter),
            ("..", DotDot),
            ("../x", DotDot),
            ("x/..", DotDot),
            ("a/../b", DotDot),
            ("a\\..\\b", DotDot),
            ("..\\x", DotDot),
            ("a//b", EmptySegment),
            ("a/", EmptySegment),
            ("a\\\\b", EmptySegment),
            ("./a", Dot),
            ("a/./b", Dot),
            ("a/.", Dot),
            ("%2e%2e/x", DotDot),
            ("%2E%2E/x", DotDot),
            ("..%2fx", DotDot),
            ("..%5cx", DotDot),
            ("a%2f%2fb", EmptySegment),
            ("%2fetc", Absolute),
            ("x%00", ControlCharacter),
            ("%ff", NotUtf8),
            ("%2e", Dot),
        ];
        for (path, expected) in cases {
            assert_eq!(rule(path), Some(*expected), "{path:?}");
        }
        assert_eq!(rule(&"a".repeat(4097)), Some(TooLong));
        assert_eq!(ArtifactPath::new(b"a\xffb").unwrap_err().rule, NotUtf8);
        assert!(ArtifactPath::new("%2e%2e/x").unwrap_err().encoded);
        assert!(!ArtifactPath::new("../x").unwrap_err().encoded);
    }

    #[test]
    fn ordinary_paths_are_accepted_unchanged() {
        for path in [
            "a",
            "dist/app.js",
            "..a/b..",
            "a/.hidden",
            "...",
            "日本語/ファイル.txt",
            "100%.txt",
            "50%zz",
            "a%2",
            "C",
            "1:2",
            "a b/c d",
            "a/C:/b",
        ] {
            assert_eq!(ArtifactPath::new(path).unwrap().as_str(), path, "{path:?}");
        }
        assert!(ArtifactPath::new("a".repeat(4096)).is_ok());
    }

    #[test]
    fn error_message_names_the_rule() {
        let err = ArtifactPath::new("a/../b").unwrap_err();
        assert_eq!(err.to_string(), "invalid artifact path \"a/../b\": it has a '..' segment");
        let err = ArtifactPath::new("..%2fx").unwrap_err();
        assert!(err.to_string().ends_with("once percent-decoded"), "{err}");
    }

    #[test]
    fn file_name_is_the_last_segment() {
        assert_eq!(ArtifactPath::new("a/b/c.txt").unwrap().file_name(), "c.txt");
        assert_eq!(ArtifactPath::new("c.txt").unwrap().file_name(), "c.txt");
    }

    fn any_path() -> impl Strategy<Value = String> {
        // Short strings over an alphabet rich in the characters the rule cares about.
        proptest::collection::vec(
            prop_oneof![
                Just("/"),
                Just("\\"),
                Just("."),
                Just(".."),
                Just("%"),
                Just("2e"),
                Just("2f"),
                Just("5c"),
                Just("a"),
                Just("b"),
                Just(":"),
                Just("C"),
                Just("\0"),
                Just("é"),
                Just("%2e"),
                Just("%2F"),
                Just(" "),
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    fn segment() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_.%é-]{1,12}".prop_filter("accepted", |s| ArtifactPath::new(s).is_ok())
    }

    proptest! {
        #[test]
        fn accepted_paths_cannot_escape(path in any_path()) {
            if let Ok(p) = ArtifactPath::new(&path) {
                prop_assert!(!p.as_str().starts_with(['/', '\\']));
                prop_assert!(!p.as_str().chars().any(char::is_control));
                for seg in p.segments() {
                    prop_assert!(!seg.is_empty() && seg != "." && seg != "..", "{:?}", p);
                }
            }
        }

        #[test]
        fn accepting_is_idempotent(path in any_path()) {
            if let Ok(p) = ArtifactPath::new(&path) {
                prop_assert_eq!(p.as_str(), path.as_str());
                prop_assert_eq!(ArtifactPath::new(p.as_str()), Ok(p.clone()));
            }
        }

        #[test]
        fn joining_accepted_segments_is_accepted(segments in proptest::collection::vec(segment(), 1..8)) {
            let joined = segments.join("/");
            prop_assert!(ArtifactPath::new(&joined).is_ok(), "{:?}", joined);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ArtifactPath::new(&bytes);
        }
    }
}
