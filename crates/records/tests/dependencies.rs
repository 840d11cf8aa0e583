//! The crate's rule of dependencies, read from `cargo metadata`: the records depend on no
//! HTTP stack, no blob storage and nothing of the server, the client or the engine, so that
//! whatever builds on them (the server, the command line, tools) does not pull those in
//! through them. (The `postgres` client runs a small tokio runtime of its own inside: tokio
//! is allowed, hyper and the rest are not.)

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// Packages the records must never reach, directly or through another crate.
const FORBIDDEN: &[&str] =
    &["hyper", "axum", "tower", "reqwest", "object_store", "artifact-core", "artifact-server", "artifact-client"];

/// The names of every package `package` reaches through normal (not dev or build)
/// dependencies, with its default features, on this platform.
fn normal_dependencies(package: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .args(["--filter-platform", &host()])
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &Value> =
        meta["resolve"]["nodes"].as_array().unwrap().iter().map(|n| (n["id"].as_str().unwrap(), n)).collect();
    let root =
        names.iter().find(|(_, name)| **name == package).map(|(id, _)| *id).expect("the package is in the workspace");
    let (mut seen, mut todo) = (BTreeSet::new(), vec![root]);
    while let Some(id) = todo.pop() {
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null());
            let dep_id = dep["pkg"].as_str().unwrap();
            if normal && seen.insert(names[dep_id].to_owned()) {
                todo.push(dep_id);
            }
        }
    }
    seen
}

/// The host's target triple, as rustc names it.
fn host() -> String {
    let out = Command::new("rustc").arg("-vV").output().expect("rustc runs");
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().find_map(|l| l.strip_prefix("host: ")).expect("rustc names its host").to_owned()
}

#[test]
fn the_records_reach_no_http_stack_runtime_blob_storage_server_or_engine() {
    let reached = normal_dependencies("artifact-records");
    assert!(reached.contains("rusqlite") && reached.contains("postgres"), "the check sees the graph: {reached:?}");
    let bad: Vec<&&str> = FORBIDDEN.iter().filter(|name| reached.contains(**name)).collect();
    assert!(bad.is_empty(), "artifact-records reaches {bad:?}");
}
