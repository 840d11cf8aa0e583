//! Rows to records and back: the column order of `store::columns`.

use rusqlite::Row;

use crate::model::{BlobRef, Job, JobKind, PersonalToken, Pipeline, Project, Scope, Status, User, When};
use crate::time::Timestamp;

pub(super) fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User { id: r.get(0)?, username: r.get(1)?, name: r.get(2)?, admin: r.get(3)?, created_at: Timestamp(r.get(4)?) })
}

pub(super) fn token_row(r: &Row<'_>) -> rusqlite::Result<PersonalToken> {
    let names: String = r.get(2)?;
    let scopes = names
        .split_whitespace()
        .map(|n| Scope::parse(n).ok_or_else(|| bad_value(2, "token scope")))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(PersonalToken {
        id: r.get(0)?,
        user_id: r.get(1)?,
        scopes,
        expires_at: r.get(3)?,
        revoked: r.get::<_, Option<i64>>(4)?.is_some(),
        created_at: Timestamp(r.get(5)?),
    })
}

pub(super) fn project_row(r: &Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: r.get(0)?,
        full_path: r.get(1)?,
        public: r.get(2)?,
        created_at: Timestamp(r.get(3)?),
        keep_latest_artifact: r.get(4)?,
    })
}

pub(super) fn bad_value(col: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, what.to_owned().into())
}

pub(super) fn status_at(r: &Row<'_>, col: usize) -> rusqlite::Result<Status> {
    let s: String = r.get(col)?;
    Status::parse(&s).ok_or_else(|| bad_value(col, "unknown status"))
}

pub(super) fn pipeline_row(r: &Row<'_>) -> rusqlite::Result<Pipeline> {
    Ok(Pipeline {
        id: r.get(0)?,
        iid: r.get(1)?,
        project_id: r.get(2)?,
        ref_name: r.get(3)?,
        tag: r.get(4)?,
        sha: r.get(5)?,
        status: status_at(r, 6)?,
        source: r.get(7)?,
        parent_id: r.get(8)?,
        user_id: r.get(9)?,
        created_at: Timestamp(r.get(10)?),
        updated_at: Timestamp(r.get(11)?),
    })
}

pub(super) fn blob_at(r: &Row<'_>, key: usize) -> rusqlite::Result<Option<BlobRef>> {
    let k: Option<String> = r.get(key)?;
    let size: Option<i64> = r.get(key + 1)?;
    Ok(k.map(|key| BlobRef { key, size: size.unwrap_or(0).max(0) as u64 }))
}

pub(super) fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp)
}

pub(super) fn job_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    let kind: String = r.get(3)?;
    let when: String = r.get(7)?;
    let tags: String = r.get(26)?;
    Ok(Job {
        id: r.get(0)?,
        project_id: r.get(1)?,
        pipeline_id: r.get(2)?,
        kind: if kind == "bridge" { JobKind::Bridge } else { JobKind::Build },
        name: r.get(4)?,
        stage: r.get(5)?,
        status: status_at(r, 6)?,
        when: When::parse(&when).ok_or_else(|| bad_value(7, "unknown when"))?,
        allow_failure: r.get(8)?,
        retried: r.get(9)?,
        coverage: r.get(10)?,
        failure_reason: r.get(11)?,
        user_id: r.get(12)?,
        created_at: Timestamp(r.get(13)?),
        queued_at: ts(r.get(14)?),
        started_at: ts(r.get(15)?),
        finished_at: ts(r.get(16)?),
        erased_at: ts(r.get(17)?),
        erased_by: r.get(18)?,
        archive: blob_at(r, 19)?,
        metadata: blob_at(r, 21)?,
        trace: blob_at(r, 23)?,
        artifacts_expire_at: ts(r.get(25)?),
        tag_list: serde_json::from_str(&tags).map_err(|_| bad_value(26, "bad tag list"))?,
        downstream_pipeline_id: r.get(27)?,
        lock_version: r.get(28)?,
    })
}

pub(super) fn kind_str(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Build => "build",
        JobKind::Bridge => "bridge",
    }
}
