//! The schema: migrations applied in order, recorded in the table `artifact_schema`.

/// Schema versions, applied in order; `artifact_schema` records which ran.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    admin BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE personal_tokens (
    id BIGSERIAL PRIMARY KEY,
    digest BYTEA NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users(id),
    scopes TEXT NOT NULL,
    expires_at TEXT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE TABLE projects (
    id BIGSERIAL PRIMARY KEY,
    full_path TEXT NOT NULL UNIQUE,
    public BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE members (
    project_id BIGINT NOT NULL REFERENCES projects(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    access_level BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE TABLE pipelines (
    id BIGSERIAL PRIMARY KEY,
    iid BIGINT NOT NULL,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    ref_name TEXT NOT NULL,
    tag BOOLEAN NOT NULL,
    sha TEXT NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    parent_id BIGINT REFERENCES pipelines(id),
    user_id BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (project_id, iid)
);
CREATE INDEX pipelines_by_ref ON pipelines(project_id, ref_name, status, id);
CREATE INDEX pipelines_by_parent ON pipelines(parent_id);
CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    pipeline_id BIGINT NOT NULL REFERENCES pipelines(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    stage TEXT NOT NULL,
    status TEXT NOT NULL,
    when_ TEXT NOT NULL,
    allow_failure BOOLEAN NOT NULL,
    retried BOOLEAN NOT NULL,
    coverage DOUBLE PRECISION,
    failure_reason TEXT,
    user_id BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL,
    queued_at BIGINT,
    started_at BIGINT,
    finished_at BIGINT,
    erased_at BIGINT,
    erased_by BIGINT,
    archive_key TEXT,
    archive_size BIGINT,
    metadata_key TEXT,
    metadata_size BIGINT,
    trace_key TEXT,
    trace_size BIGINT,
    artifacts_expire_at BIGINT,
    tag_list TEXT NOT NULL,
    downstream_pipeline_id BIGINT REFERENCES pipelines(id),
    token_digest BYTEA UNIQUE,
    lock_version BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_project ON jobs(project_id, kind, id);
CREATE INDEX jobs_by_pipeline ON jobs(pipeline_id, kind, id);
CREATE INDEX jobs_by_name ON jobs(pipeline_id, name);
"#,
    // The outcome of verifying an archive at import, by archive key.
    r#"
CREATE TABLE verifications (
    archive_key TEXT PRIMARY KEY,
    outcome TEXT NOT NULL
);
"#,
    // Leases on the blobs an import is writing before a job refers to them.
    r#"
CREATE TABLE blob_leases (
    key TEXT PRIMARY KEY,
    renewed_at BIGINT NOT NULL
);
"#,
    // Browser sessions and grants of the pages, shared by every replica (digests only).
    r#"
CREATE TABLE browser_sessions (
    id BYTEA PRIMARY KEY,
    token_digest BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX browser_sessions_by_token ON browser_sessions(token_digest, expires_at);
CREATE INDEX browser_sessions_by_expiry ON browser_sessions(expires_at);
CREATE TABLE page_grants (
    id BYTEA PRIMARY KEY,
    token_digest BYTEA NOT NULL,
    project TEXT NOT NULL,
    job_id BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX page_grants_by_token ON page_grants(token_digest, expires_at);
CREATE INDEX page_grants_by_expiry ON page_grants(expires_at);
"#,
    // Sessions and grants numbered in the order of insertion (rows there already get
    // numbers in some order), so that each insert drops what is past the bound in all by
    // an index: SQLite's rowid does this there.
    r#"
ALTER TABLE browser_sessions ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX browser_sessions_by_seq ON browser_sessions(seq);
ALTER TABLE page_grants ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX page_grants_by_seq ON page_grants(seq);
"#,
    // GitLab's "Keep artifacts from most recent successful jobs", on unless turned off, and
    // whether a pipeline has succeeded (kept through a retry): pipelines from before have
    // not, so that upgrading brings back no expired archive.
    r#"
ALTER TABLE projects ADD COLUMN keep_latest_artifact BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE pipelines ADD COLUMN succeeded BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX pipelines_succeeded ON pipelines(project_id, ref_name, tag, id) WHERE succeeded AND parent_id IS NULL;
"#,
];
