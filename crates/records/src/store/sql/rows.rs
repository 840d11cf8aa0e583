//! Rows to records and records to values: the column lists every query shares, in the
//! order the readers take them.

use super::{Row, Value, bad};
use crate::model::{BlobRef, Job, JobKind, PersonalToken, Pipeline, Project, Scope, Status, User, When};
use crate::store::StoreResult;
use crate::time::Timestamp;

/// A job's columns, in the order [`job`] takes them.
pub(super) const JOB_COLUMNS: &str = "id, project_id, pipeline_id, kind, name, stage, status, when_, allow_failure, retried, \
     coverage, failure_reason, user_id, created_at, queued_at, started_at, finished_at, erased_at, erased_by, \
     archive_key, archive_size, metadata_key, metadata_size, trace_key, trace_size, artifacts_expire_at, \
     tag_list, downstream_pipeline_id, lock_version";

/// A pipeline's columns, in the order [`pipeline`] takes them.
pub(super) const PIPELINE_COLUMNS: &str =
    "id, iid, project_id, ref_name, tag, sha, status, source, parent_id, user_id, created_at, updated_at";

/// A project's columns, in the order [`project`] takes them.
pub(super) const PROJECT_COLUMNS: &str = "id, full_path, public, created_at, keep_latest_artifact";

/// A personal token's columns, from `personal_tokens t`, in the order [`token`] takes them.
pub(super) const TOKEN_COLUMNS: &str = "t.id, t.user_id, t.scopes, t.expires_at, t.revoked_at, t.created_at";

/// A user's columns, in the order [`user`] takes them.
pub(super) const USER_COLUMNS: &str = "id, username, name, admin, created_at";

/// The columns a job's life changes, in the order of [`job_state`]: the insert and the
/// update write the same list.
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

/// A user from [`USER_COLUMNS`] starting at column `at`.
pub(super) fn user(r: &dyn Row, at: usize) -> StoreResult<User> {
    Ok(User {
        id: r.int(at)?,
        username: r.text(at + 1)?,
        name: r.text(at + 2)?,
        admin: r.boolean(at + 3)?,
        created_at: Timestamp(r.int(at + 4)?),
    })
}

/// A personal token from [`TOKEN_COLUMNS`]. A scope this version does not know makes the
/// row unusable (the store writes only [`Scope`] names), in both databases.
pub(super) fn token(r: &dyn Row) -> StoreResult<PersonalToken> {
    let names = r.text(2)?;
    let scopes = names
        .split_whitespace()
        .map(|n| Scope::parse(n).ok_or_else(|| bad(2, "a token scope")))
        .collect::<Result<_, _>>()?;
    Ok(PersonalToken {
        id: r.int(0)?,
        user_id: r.int(1)?,
        scopes,
        expires_at: r.opt_text(3)?,
        revoked: r.opt_int(4)?.is_some(),
        created_at: Timestamp(r.int(5)?),
    })
}

/// A project from [`PROJECT_COLUMNS`].
pub(super) fn project(r: &dyn Row) -> StoreResult<Project> {
    Ok(Project {
        id: r.int(0)?,
        full_path: r.text(1)?,
        public: r.boolean(2)?,
        created_at: Timestamp(r.int(3)?),
        keep_latest_artifact: r.boolean(4)?,
    })
}

/// A status in column `i`.
pub(super) fn status(r: &dyn Row, i: usize) -> StoreResult<Status> {
    Status::parse(&r.text(i)?).ok_or_else(|| bad(i, "a job status"))
}

/// A pipeline from [`PIPELINE_COLUMNS`].
pub(super) fn pipeline(r: &dyn Row) -> StoreResult<Pipeline> {
    Ok(Pipeline {
        id: r.int(0)?,
        iid: r.int(1)?,
        project_id: r.int(2)?,
        ref_name: r.text(3)?,
        tag: r.boolean(4)?,
        sha: r.text(5)?,
        status: status(r, 6)?,
        source: r.text(7)?,
        parent_id: r.opt_int(8)?,
        user_id: r.opt_int(9)?,
        created_at: Timestamp(r.int(10)?),
        updated_at: Timestamp(r.int(11)?),
    })
}

fn blob(r: &dyn Row, key: usize) -> StoreResult<Option<BlobRef>> {
    let k = r.opt_text(key)?;
    let size = r.opt_int(key + 1)?;
    Ok(k.map(|key| BlobRef { key, size: size.unwrap_or(0).max(0) as u64 }))
}

fn ts(r: &dyn Row, i: usize) -> StoreResult<Option<Timestamp>> {
    Ok(r.opt_int(i)?.map(Timestamp))
}

/// A job from [`JOB_COLUMNS`].
pub(super) fn job(r: &dyn Row) -> StoreResult<Job> {
    let kind = match r.text(3)?.as_str() {
        "build" => JobKind::Build,
        "bridge" => JobKind::Bridge,
        _ => return Err(bad(3, "a job kind")),
    };
    let tags = r.text(26)?;
    Ok(Job {
        id: r.int(0)?,
        project_id: r.int(1)?,
        pipeline_id: r.int(2)?,
        kind,
        name: r.text(4)?,
        stage: r.text(5)?,
        status: status(r, 6)?,
        when: When::parse(&r.text(7)?).ok_or_else(|| bad(7, "a job's when"))?,
        allow_failure: r.boolean(8)?,
        retried: r.boolean(9)?,
        coverage: r.opt_real(10)?,
        failure_reason: r.opt_text(11)?,
        user_id: r.opt_int(12)?,
        created_at: Timestamp(r.int(13)?),
        queued_at: ts(r, 14)?,
        started_at: ts(r, 15)?,
        finished_at: ts(r, 16)?,
        erased_at: ts(r, 17)?,
        erased_by: r.opt_int(18)?,
        archive: blob(r, 19)?,
        metadata: blob(r, 21)?,
        trace: blob(r, 23)?,
        artifacts_expire_at: ts(r, 25)?,
        tag_list: serde_json::from_str(&tags).map_err(|_| bad(26, "a tag list"))?,
        downstream_pipeline_id: r.opt_int(27)?,
        lock_version: r.int(28)?,
    })
}

/// How a job's kind is stored.
pub(super) fn kind(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Build => "build",
        JobKind::Bridge => "bridge",
    }
}

/// A job's values for [`STATE_COLUMNS`].
pub(super) fn job_state(job: &Job) -> Vec<Value<'_>> {
    let ts = |t: Option<Timestamp>| Value::from(t.map(|t| t.0));
    fn key(b: &Option<BlobRef>) -> Value<'_> {
        Value::from(b.as_ref().map(|b| b.key.as_str()))
    }
    let size = |b: &Option<BlobRef>| Value::from(b.as_ref().map(|b| b.size.min(i64::MAX as u64) as i64));
    vec![
        job.status.as_str().into(),
        job.allow_failure.into(),
        job.coverage.into(),
        job.failure_reason.as_deref().into(),
        job.user_id.into(),
        ts(job.queued_at),
        ts(job.started_at),
        ts(job.finished_at),
        ts(job.erased_at),
        job.erased_by.into(),
        key(&job.archive),
        size(&job.archive),
        key(&job.metadata),
        size(&job.metadata),
        key(&job.trace),
        size(&job.trace),
        ts(job.artifacts_expire_at),
        serde_json::to_string(&job.tag_list).unwrap_or_else(|_| "[]".into()).into(),
        job.downstream_pipeline_id.into(),
    ]
}
