//! The crate's rule of dependencies, read from `cargo tree`: the proxy reaches no database,
//! no blob storage, neither the records nor the blobs nor the server, so that an embedder
//! builds none of them.

use std::path::Path;

/// Packages the proxy must never reach, directly or through another crate.
const FORBIDDEN: &[&str] = &[
    "rusqlite",
    "libsqlite3-sys",
    "postgres",
    "r2d2",
    "r2d2_postgres",
    "object_store",
    "artifact-records",
    "artifact-blobs",
    "artifact-server",
];

#[test]
fn the_proxy_reaches_no_database_blob_storage_records_blobs_or_server() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    artifact_testkit::crates::hold_to_rule(
        &manifest,
        "artifact-proxy",
        &["artifact-core", "artifact-gitlab", "reqwest"],
        FORBIDDEN,
    );
}
