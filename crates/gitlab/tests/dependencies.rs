//! The crate's rule of dependencies, read from `cargo tree`: GitLab's HTTP surface reaches
//! no database, no blob storage and nothing of the server, the records or the blobs, so
//! that a proxy built on it carries none of them.

use std::path::Path;

/// Packages this crate must never reach, directly or through another crate.
const FORBIDDEN: &[&str] = &[
    "rusqlite",
    "libsqlite3-sys",
    "postgres",
    "r2d2",
    "object_store",
    "artifact-records",
    "artifact-blobs",
    "artifact-server",
];

#[test]
fn gitlabs_http_surface_reaches_no_database_blob_storage_records_or_server() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    artifact_testkit::crates::hold_to_rule(&manifest, "artifact-gitlab", &["axum", "artifact-core"], FORBIDDEN);
}
