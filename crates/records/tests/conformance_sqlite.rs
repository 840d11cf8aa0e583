//! The store's contract on SQLite: every check of the conformance suite, and what the
//! backend makes of a row it cannot read.

use artifact_records::{Identities, SqliteStore, StoreError, TokenDigest};

#[test]
fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    artifact_records::conformance::run(&SqliteStore::open(&dir.path().join("records.db")).unwrap());
}

/// The testkit's store double forwards every call as it is: it passes the suite too, on
/// threads of its own.
#[test]
fn the_store_double_passes_the_conformance_suite_forwarding_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("records.db")).unwrap());
    artifact_records::conformance::run(&artifact_testkit::store::Double::new(store).off_thread());
}

#[test]
fn a_stored_scope_this_version_does_not_know_is_an_error_not_a_dropped_right() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.db");
    let store = SqliteStore::open(&path).unwrap();
    let user = store.create_user("u", "U", false).unwrap();
    let token = TokenDigest::of("t");
    store.create_token(user.id, &token, &[], None).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE personal_tokens SET scopes = 'api admin_mode'", [])
        .unwrap();
    let read = store.personal_token(&token);
    assert!(matches!(&read, Err(StoreError::Database(e)) if e.to_string().contains("token scope")), "{read:?}");
}
