//! The blobs' contract on local disk: every check of the conformance suite, and what only
//! a folder has (leftovers of writes that never finished).

use artifact_blobs::{Blobs, LocalBlobs};

fn files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| if e.path().is_dir() { files(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}

#[test]
fn a_folder_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    artifact_blobs::conformance::run(&LocalBlobs::open(dir.path()).unwrap(), &|| files(dir.path()));
}

#[test]
fn a_local_write_that_never_finished_is_a_leftover_until_removed() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = LocalBlobs::open(dir.path()).unwrap();
    let part = dir.path().join("tmp").join(format!("{}.part", "0f".repeat(16)));
    std::fs::write(&part, b"half").unwrap();
    std::fs::write(dir.path().join("tmp/unrelated.txt"), b"not ours").unwrap();
    let leftovers = blobs.leftovers().unwrap();
    assert_eq!(leftovers.len(), 1);
    assert_eq!(leftovers[0].size, 4);
    assert!(blobs.list().unwrap().is_empty(), "a leftover is not a blob");
    assert!(blobs.remove_leftover("tmp/../archive/x").is_err(), "only leftovers' names");
    blobs.remove_leftover(&leftovers[0].key).unwrap();
    assert!(!part.exists());
    assert!(dir.path().join("tmp/unrelated.txt").exists());
}
