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

/// A project's columns, in the order the row readers take them.
pub(super) const PROJECT_COLUMNS: &str = "id, full_path, public, created_at, keep_latest_artifact";

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

/// [`crate::store::Store::is_latest_successful`] in both dialects (`$1`: the pipeline): a
/// row when the pipeline's root (walking up its parents; `UNION` ends the walk on a cycle
/// that data from before imports refused them may hold) is the newest root pipeline of its
/// project and ref (a branch and a tag of one name apart) that has succeeded.
pub(super) const LATEST_SUCCESSFUL: &str = "WITH RECURSIVE up(id, parent_id) AS ( \
         SELECT id, parent_id FROM pipelines WHERE id = $1 \
         UNION SELECT p.id, p.parent_id FROM pipelines p JOIN up ON p.id = up.parent_id \
     ) \
     SELECT r.id FROM up JOIN pipelines r ON r.id = up.id \
     WHERE up.parent_id IS NULL AND r.succeeded AND r.id = ( \
         SELECT n.id FROM pipelines n WHERE n.project_id = r.project_id AND n.ref_name = r.ref_name \
         AND n.tag = r.tag AND n.succeeded AND n.parent_id IS NULL ORDER BY n.id DESC LIMIT 1 \
     )";

/// A bridge's downstream pipeline becomes the child of the bridge's pipeline, in both
/// dialects (`$1`: the bridge's pipeline, `$2`: the downstream): unless it has a parent
/// already, or is the bridge's pipeline or one of its ancestors (a cycle of parents).
pub(super) const ADOPT_CHILD: &str = "WITH RECURSIVE up(id) AS ( \
         SELECT CAST($1 AS BIGINT) \
         UNION SELECT p.parent_id FROM pipelines p JOIN up ON p.id = up.id WHERE p.parent_id IS NOT NULL \
     ) \
     UPDATE pipelines SET parent_id = $1, source = 'parent_pipeline' \
     WHERE id = $2 AND parent_id IS NULL AND id NOT IN (SELECT id FROM up)";
