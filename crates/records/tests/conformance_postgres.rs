//! The store's contract on PostgreSQL (a real server from the distribution's packages):
//! every check of the conformance suite, and what the backend makes of a row it cannot
//! read. Built with the feature `external-tests` (the README's test command).

use artifact_records::{Identities, PostgresStore, StoreError, TokenDigest};
use artifact_testkit::postgres::PostgresServer;

#[test]
fn postgres_passes_the_conformance_suite() {
    let url = PostgresServer::shared().new_database();
    artifact_records::conformance::run(&PostgresStore::open(&url).unwrap());
}

#[test]
fn a_stored_scope_this_version_does_not_know_is_an_error_not_a_dropped_right() {
    let url = PostgresServer::shared().new_database();
    let store = PostgresStore::open(&url).unwrap();
    let user = store.create_user("u", "U", false).unwrap();
    let token = TokenDigest::of("t");
    store.create_token(user.id, &token, &[], None).unwrap();
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    raw.execute("UPDATE personal_tokens SET scopes = 'api admin_mode'", &[]).unwrap();
    let read = store.personal_token(&token);
    assert!(matches!(&read, Err(StoreError::Database(e)) if e.to_string().contains("token scope")), "{read:?}");
}

#[test]
fn every_change_is_announced_to_another_handle() {
    let url = PostgresServer::shared().new_database();
    let (writer, listener) = (PostgresStore::open(&url).unwrap(), PostgresStore::open(&url).unwrap());
    artifact_records::conformance::announcements(&writer, &listener, std::time::Duration::from_secs(10));
}
