//! The crate's rule of dependencies, read from `cargo tree`: the blobs reach no
//! database and nothing of the server or the client (only the engine, for sources, and the
//! records' model without a backend), so that whatever builds on them does not pull those in
//! through them.

use std::path::Path;

/// Packages the blobs must never reach, directly or through another crate.
const FORBIDDEN: &[&str] = &["rusqlite", "postgres", "r2d2", "axum", "artifact-server", "artifact-client"];

#[test]
fn the_blobs_reach_no_database_server_or_client() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    artifact_testkit::crates::hold_to_rule(
        &manifest,
        "artifact-blobs",
        &["object_store", "artifact-records"],
        FORBIDDEN,
    );
}
