//! Where the engine may use `unsafe`: raw inflate (zlib's `inflatePrime` and
//! `inflateSetDictionary`, for checkpoints), the memory map of a file source, and the
//! metadata decoder's conversion of text it checked. Every other module forbids it, so that
//! an `#[allow(unsafe_code)]` cannot creep in anywhere else; the parents of those three
//! (and the crate root) deny it, as the workspace does.

use std::path::{Path, PathBuf};

/// The modules allowed `unsafe`, and their parents (which cannot forbid what a child
/// allows), relative to `src/`.
const ALLOWED: [&str; 3] = ["checkpoints/raw.rs", "source.rs", "metadata/decode/text.rs"];
/// How many `#[allow(unsafe_code)]` each of them holds at most.
const ALLOWANCES: [(&str, usize); 3] = [("checkpoints/raw.rs", 3), ("source.rs", 1), ("metadata/decode/text.rs", 1)];
const PARENTS: [&str; 4] = ["lib.rs", "checkpoints/mod.rs", "metadata/mod.rs", "metadata/decode/mod.rs"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_but_three_forbids_unsafe_code() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 40, "{} files", files.len());
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(&file).unwrap();
        // The forbid, as the module's own inner attribute: before its first item.
        let head: Vec<&str> = text.lines().take_while(|l| l.starts_with("//!") || l.starts_with("#!")).collect();
        let forbids = head.iter().any(|l| l.trim() == "#![forbid(unsafe_code)]");
        let allows = text.matches("allow(unsafe_code)").count() + text.matches("expect(unsafe_code)").count();
        let uses = text.lines().any(|l| {
            let code = l.split("//").next().unwrap_or("");
            code.contains("unsafe {") || code.contains("unsafe impl") || code.contains("unsafe fn")
        });
        if let Some(&(_, most)) = ALLOWANCES.iter().find(|(file, _)| *file == rel) {
            assert!(allows <= most, "{rel}: {allows} allowances of unsafe code, {most} at most");
        } else {
            assert_eq!(allows, 0, "{rel} allows unsafe code");
        }
        if ALLOWED.contains(&rel.as_str()) {
            assert!(!forbids, "{rel} is allowed unsafe code");
        } else if PARENTS.contains(&rel.as_str()) {
            assert!(!forbids && !uses, "{rel}: a parent of an allowed module, itself without unsafe code");
        } else {
            assert!(forbids, "{rel} does not forbid unsafe code");
            assert!(!uses, "{rel} uses unsafe code");
        }
    }
}
