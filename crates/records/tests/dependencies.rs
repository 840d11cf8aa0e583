//! The crate's rule of dependencies, read from `cargo tree`: the records reach no HTTP
//! stack, no blob storage and nothing of the server, the client or the engine, so that
//! whatever builds on them does not pull those in through them. (The `postgres` client runs
//! a small tokio runtime of its own inside: tokio is allowed, hyper and the rest are not.)

use std::path::Path;

/// Packages the records must never reach, directly or through another crate.
const FORBIDDEN: &[&str] =
    &["hyper", "axum", "tower", "reqwest", "object_store", "artifact-core", "artifact-server", "artifact-client"];

#[test]
fn the_records_reach_no_http_stack_blob_storage_server_client_or_engine() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    artifact_testkit::crates::hold_to_rule(&manifest, "artifact-records", &["rusqlite", "postgres"], FORBIDDEN);
}
