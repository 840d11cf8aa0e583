//! The column lists both stores' queries share: one schema, two dialects, the same names
//! in the same order (the row readers depend on the order).

/// A job's columns, in the order the row readers take them.
pub(super) const JOB_COLUMNS: &str = "id, project_id, pipeline_id, kind, name, stage, status, when_, allow_failure, retried, \
     coverage, failure_reason, user_id, created_at, queued_at, started_at, finished_at, erased_at, erased_by, \
     archive_key, archive_size, metadata_key, metadata_size, trace_key, trace_size, artifacts_expire_at, \
     tag_list, downstream_pipeline_id, lock_version";

/// A pipeline's columns, in the order the row readers take them.
pub(super) const PIPELINE_COLUMNS: &str =
    "id, iid, project_id, ref_name, tag, sha, status, source, parent_id, user_id, created_at, updated_at";

/// A personal token's columns, from `personal_tokens t`.
pub(super) const TOKEN_COLUMNS: &str = "t.id, t.user_id, t.scopes, t.expires_at, t.revoked_at, t.created_at";

/// A user's columns.
pub(super) const USER_COLUMNS: &str = "id, username, name, admin, created_at";

/// The columns a job's life changes, in the order of each store's `job_state`: the insert
/// and the update write the same list.
pub(super) const STATE_COLUMNS: [&str; 19] = [
    "status",
    "allow_failure",
    "coverage",
    "failure_reason",
    "user_id",
    "queued_at",
    "started_at",
    "finished_at",
    "erased_at",
    "erased_by",
    "archive_key",
    "archive_size",
    "metadata_key",
    "metadata_size",
    "trace_key",
    "trace_size",
    "artifacts_expire_at",
    "tag_list",
    "downstream_pipeline_id",
];
