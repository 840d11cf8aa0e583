//! The schema: migrations applied in order, recorded in `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

use super::db;
use crate::store::StoreResult;

/// Schema versions, applied in order; `PRAGMA user_version` records how many ran.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    admin INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE tokens (
    digest BLOB PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL
);
CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    full_path TEXT NOT NULL UNIQUE,
    public INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE members (
    project_id INTEGER NOT NULL REFERENCES projects(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    access_level INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE TABLE pipelines (
    id INTEGER PRIMARY KEY,
    iid INTEGER NOT NULL,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    ref_name TEXT NOT NULL,
    tag INTEGER NOT NULL,
    sha TEXT NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    parent_id INTEGER REFERENCES pipelines(id),
    user_id INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX pipelines_by_ref ON pipelines(project_id, ref_name, status, id);
CREATE INDEX pipelines_by_parent ON pipelines(parent_id);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    pipeline_id INTEGER NOT NULL REFERENCES pipelines(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    stage TEXT NOT NULL,
    status TEXT NOT NULL,
    when_ TEXT NOT NULL,
    allow_failure INTEGER NOT NULL,
    retried INTEGER NOT NULL,
    coverage REAL,
    failure_reason TEXT,
    user_id INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    queued_at INTEGER,
    started_at INTEGER,
    finished_at INTEGER,
    erased_at INTEGER,
    erased_by INTEGER,
    archive_key TEXT,
    archive_size INTEGER,
    metadata_key TEXT,
    metadata_size INTEGER,
    trace_key TEXT,
    trace_size INTEGER,
    artifacts_expire_at INTEGER,
    tag_list TEXT NOT NULL,
    downstream_pipeline_id INTEGER REFERENCES pipelines(id),
    token_digest BLOB UNIQUE
);
CREATE INDEX jobs_by_project ON jobs(project_id, kind, id);
CREATE INDEX jobs_by_pipeline ON jobs(pipeline_id, kind, id);
CREATE INDEX jobs_by_name ON jobs(pipeline_id, name);
"#,
    r#"
ALTER TABLE jobs ADD COLUMN lock_version INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX pipelines_by_iid ON pipelines(project_id, iid);
"#,
    // Personal access tokens get an id, GitLab's scopes (space-separated), an expiry day
    // (`YYYY-MM-DD`) and revocation. Tokens made before had every right: `api`.
    r#"
CREATE TABLE personal_tokens (
    id INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    scopes TEXT NOT NULL,
    expires_at TEXT,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);
INSERT INTO personal_tokens (digest, user_id, scopes, created_at)
    SELECT digest, user_id, 'api', created_at FROM tokens ORDER BY rowid;
DROP TABLE tokens;
"#,
    // The outcome of verifying an archive at import, by archive key (it was a blob beside
    // the archive: one more object request for every archive's first read).
    r#"
CREATE TABLE verifications (
    archive_key TEXT PRIMARY KEY,
    outcome TEXT NOT NULL
);
"#,
    // Leases on the blobs an import is writing before a job refers to them
    // (`artifact admin gc` leaves them alone while they are renewed).
    r#"
CREATE TABLE blob_leases (
    key TEXT PRIMARY KEY,
    renewed_at INTEGER NOT NULL
);
"#,
    // Browser sessions and grants of the pages, shared by every process (digests only).
    r#"
CREATE TABLE browser_sessions (
    id BLOB PRIMARY KEY,
    token_digest BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX browser_sessions_by_token ON browser_sessions(token_digest, expires_at);
CREATE INDEX browser_sessions_by_expiry ON browser_sessions(expires_at);
CREATE TABLE page_grants (
    id BLOB PRIMARY KEY,
    token_digest BLOB NOT NULL,
    project TEXT NOT NULL,
    job_id INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX page_grants_by_token ON page_grants(token_digest, expires_at);
CREATE INDEX page_grants_by_expiry ON page_grants(expires_at);
"#,
    // GitLab's "Keep artifacts from most recent successful jobs", on unless turned off, and
    // whether a pipeline has succeeded (kept through a retry): pipelines from before have
    // not, so that upgrading brings back no expired archive.
    r#"
ALTER TABLE projects ADD COLUMN keep_latest_artifact INTEGER NOT NULL DEFAULT 1;
ALTER TABLE pipelines ADD COLUMN succeeded INTEGER NOT NULL DEFAULT 0;
CREATE INDEX pipelines_succeeded ON pipelines(project_id, ref_name, tag, id) WHERE succeeded AND parent_id IS NULL;
"#,
];

/// Applies the pending migrations in one transaction that holds the write lock from the
/// start (`BEGIN IMMEDIATE`), reading the version under that lock: processes that start at
/// once on a fresh file take turns, and each applies only what the ones before it did not.
pub(super) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
    let done: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db)?;
    if done >= MIGRATIONS.len() {
        return Ok(());
    }
    for sql in &MIGRATIONS[done..] {
        tx.execute_batch(sql).map_err(db)?;
    }
    tx.execute_batch(&format!("PRAGMA user_version = {}", MIGRATIONS.len())).map_err(db)?;
    tx.commit().map_err(db)
}
