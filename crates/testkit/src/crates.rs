//! The workspace's rules of dependencies: which packages a crate reaches when it is built by
//! itself, for tests that hold each crate to what it may depend on.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The names of every package `package` (of the workspace of `manifest`, a `Cargo.toml`)
/// reaches through normal (not dev or build) dependencies when it is built by itself with
/// its default features, on this machine's platform, `package` included: `cargo tree`
/// resolves features for the package alone, where `cargo metadata` would unify them with
/// every other member's. Panics if cargo fails.
pub fn reached(manifest: &Path, package: &str) -> BTreeSet<String> {
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["tree", "--edges", "normal", "--prefix", "none", "--format", "{p}", "--package", package])
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("cargo tree writes UTF-8");
    text.lines().filter_map(|line| line.split_whitespace().next()).map(str::to_owned).collect()
}

/// Holds `package` (of the workspace of `manifest`) to its rule: built by itself it reaches
/// every package of `seen` (so that the check sees the graph at all) and none of
/// `forbidden`. Panics naming what breaks the rule.
pub fn hold_to_rule(manifest: &Path, package: &str, seen: &[&str], forbidden: &[&str]) {
    let reached = reached(manifest, package);
    let unseen: Vec<&&str> = seen.iter().filter(|name| !reached.contains(**name)).collect();
    assert!(unseen.is_empty(), "{package} does not reach {unseen:?}: the check does not see its graph ({reached:?})");
    let bad: Vec<&&str> = forbidden.iter().filter(|name| reached.contains(**name)).collect();
    assert!(bad.is_empty(), "{package} reaches {bad:?}");
}
