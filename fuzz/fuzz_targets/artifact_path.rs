//! The path rule: an accepted path is canonical (re-parsing gives the same path) and cannot
//! escape (no empty, `.` or `..` segment, no leading separator, no control character).
#![no_main]

use artifact_core::ArtifactPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = ArtifactPath::new(data) {
        assert_eq!(path.as_bytes(), data);
        assert_eq!(ArtifactPath::new(path.as_str()).as_ref(), Ok(&path));
        assert!(!path.as_str().starts_with(['/', '\\']));
        assert!(!path.as_str().chars().any(char::is_control));
        for segment in path.segments() {
            assert!(!segment.is_empty() && segment != "." && segment != "..");
        }
    }
});
