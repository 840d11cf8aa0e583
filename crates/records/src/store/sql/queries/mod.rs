//! The store's queries, once for both databases: every [`Backend`] is a [`Store`].

mod identities;
mod imports;
mod jobs;
mod sessions;

use super::rows::{
    self, JOB_COLUMNS, PIPELINE_COLUMNS, PROJECT_COLUMNS, STATE_COLUMNS, TOKEN_COLUMNS, USER_COLUMNS, job_state,
};
use super::{Backend, Conn, Mode, Value};
use crate::model::{Job, JobKind, PersonalToken, Pipeline, Project, Role, Scope, Status, User, composite_status};
use crate::store::{
    BrowserSession, ChangeHook, Identities, Imports, JobQuery, Jobs, Keep, Listing, NewPipeline, PageGrant, ProjectRef,
    Sessions, Store, StoreError, StoreResult, TokenDigest,
};
use crate::time::Timestamp;

/// [`Jobs::is_latest_successful`] (`$1`: the pipeline): a row when the pipeline's root
/// (walking up its parents; `UNION` ends the walk on a cycle that data from before imports
/// refused them may hold) is the newest root pipeline of its project and ref (a branch and
/// a tag of one name apart) that has succeeded.
const LATEST_SUCCESSFUL: &str = "WITH RECURSIVE up(id, parent_id) AS ( \
         SELECT id, parent_id FROM pipelines WHERE id = $1 \
         UNION SELECT p.id, p.parent_id FROM pipelines p JOIN up ON p.id = up.parent_id \
     ) \
     SELECT r.id FROM up JOIN pipelines r ON r.id = up.id \
     WHERE up.parent_id IS NULL AND r.succeeded AND r.id = ( \
         SELECT n.id FROM pipelines n WHERE n.project_id = r.project_id AND n.ref_name = r.ref_name \
         AND n.tag = r.tag AND n.succeeded AND n.parent_id IS NULL ORDER BY n.id DESC LIMIT 1 \
     )";

/// A bridge's downstream pipeline becomes the child of the bridge's pipeline (`$1`: the
/// bridge's pipeline, `$2`: the downstream): unless it has a parent already, or is the
/// bridge's pipeline or one of its ancestors (a cycle of parents).
const ADOPT_CHILD: &str = "WITH RECURSIVE up(id) AS ( \
         SELECT CAST($1 AS BIGINT) \
         UNION SELECT p.parent_id FROM pipelines p JOIN up ON p.id = up.id WHERE p.parent_id IS NOT NULL \
     ) \
     UPDATE pipelines SET parent_id = $1, source = 'parent_pipeline' \
     WHERE id = $2 AND parent_id IS NULL AND id NOT IN (SELECT id FROM up)";

/// `$n` for the value just pushed onto `args`.
fn arg<'a>(args: &mut Vec<Value<'a>>, v: impl Into<Value<'a>>) -> String {
    args.push(v.into());
    format!("${}", args.len())
}

fn digest(d: &TokenDigest) -> Value<'_> {
    Value::from(&d.0[..])
}

/// A digest read back; a stored one of another length is unusable.
fn read_digest(bytes: Vec<u8>, column: usize) -> StoreResult<TokenDigest> {
    bytes.try_into().map(TokenDigest).map_err(|_| super::bad(column, "a 32-byte digest"))
}

/// Recomputes a pipeline's status from its non-retried jobs; a pipeline that reaches
/// `success` is marked as having succeeded for good (kept through a retry).
fn refresh_pipeline(c: &mut dyn Conn, pipeline_id: i64) -> StoreResult<()> {
    let jobs = c.all(
        "SELECT status, allow_failure FROM jobs WHERE pipeline_id = $1 AND NOT retried",
        &[pipeline_id.into()],
        |r| Ok((rows::status(r, 0)?, r.boolean(1)?)),
    )?;
    let status = composite_status(jobs);
    c.execute(
        "UPDATE pipelines SET status = $1, updated_at = $2, succeeded = (succeeded OR $1 = 'success') \
         WHERE id = $3 AND status != $1",
        &[status.as_str().into(), Timestamp::now().0.into(), pipeline_id.into()],
    )?;
    Ok(())
}

/// Inserts a job's row; its id.
fn insert_job_row(c: &mut dyn Conn, job: &Job, token: Option<&TokenDigest>) -> StoreResult<i64> {
    let mut values: Vec<Value<'_>> = vec![
        job.project_id.into(),
        job.pipeline_id.into(),
        rows::kind(job.kind).into(),
        job.name.as_str().into(),
        job.stage.as_str().into(),
        job.when.as_str().into(),
        job.retried.into(),
        job.created_at.0.into(),
    ];
    values.extend(job_state(job));
    values.push(token.map(digest).unwrap_or(Value::Null));
    let placeholders = (1..=values.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "INSERT INTO jobs (project_id, pipeline_id, kind, name, stage, when_, retried, created_at, {}, token_digest) \
         VALUES ({placeholders}) RETURNING id",
        STATE_COLUMNS.join(", ")
    );
    returned_id(c, &sql, &values)
}

/// The id an `INSERT ... RETURNING id` returned.
fn returned_id(c: &mut dyn Conn, sql: &str, params: &[Value<'_>]) -> StoreResult<i64> {
    c.first(sql, params, |r| r.int(0))?.ok_or_else(|| StoreError::Database("an insert returned no id".into()))
}

/// Numbers and inserts a new pipeline (in the caller's transaction). In PostgreSQL the
/// project's row lock orders its pipelines' numbering across replicas; SQLite's write lock
/// does so already.
fn insert_pipeline(c: &mut dyn Conn, new: &NewPipeline, now: Timestamp) -> StoreResult<Pipeline> {
    let lock = c.dialect().for_update();
    if !lock.is_empty() {
        c.each(&format!("SELECT id FROM projects WHERE id = $1{lock}"), &[new.project_id.into()], &mut |_| Ok(()))?;
    }
    let iid = c
        .first(
            "SELECT COALESCE(MAX(iid), 0) + 1 FROM pipelines WHERE project_id = $1",
            &[new.project_id.into()],
            |r| r.int(0),
        )?
        .ok_or_else(|| StoreError::Database("a count returned no row".into()))?;
    let id = returned_id(
        c,
        "INSERT INTO pipelines (iid, project_id, ref_name, tag, sha, status, source, parent_id, user_id, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
        &[
            iid.into(),
            new.project_id.into(),
            new.ref_name.as_str().into(),
            new.tag.into(),
            new.sha.as_str().into(),
            Status::Created.as_str().into(),
            new.source.as_str().into(),
            new.parent_id.into(),
            new.user_id.into(),
            now.0.into(),
        ],
    )?;
    Ok(new.created(id, iid, now))
}

/// Inserts a job, makes a bridge's downstream pipeline its child, refreshes the pipeline's
/// status and announces the change (in the caller's transaction).
fn insert_job_tx(c: &mut dyn Conn, job: &Job, token: Option<&TokenDigest>) -> StoreResult<Job> {
    let id = insert_job_row(c, job, token)?;
    if let (JobKind::Bridge, Some(child)) = (job.kind, job.downstream_pipeline_id) {
        c.execute(ADOPT_CHILD, &[job.pipeline_id.into(), child.into()])?;
    }
    refresh_pipeline(c, job.pipeline_id)?;
    c.announce()?;
    Ok(Job { id, ..job.clone() })
}

fn select_job(c: &mut dyn Conn, id: i64) -> StoreResult<Option<Job>> {
    c.first(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"), &[id.into()], rows::job)
}

/// `insert` (with `values`) into `table` of the pages' sessions or grants, in one
/// transaction with dropping the table's expired rows (by the index on expiry), past
/// `keep.total` the oldest rows (by the column that numbers rows in the order of insertion,
/// and its index), and past `keep.per_token` the oldest rows of the token with digest
/// `token` (by the index on token).
fn insert_bounded(
    b: &impl Backend,
    table: &str,
    insert: &str,
    values: &[Value<'_>],
    token: &TokenDigest,
    keep: Keep,
    now_ms: i64,
) -> StoreResult<()> {
    b.run(Mode::Write, |c| {
        let order = c.dialect().insertion_order();
        c.execute(&format!("DELETE FROM {table} WHERE expires_at <= $1"), &[now_ms.into()])?;
        if let Some(newest) = c.first(&format!("{insert} RETURNING {order}"), values, |r| r.int(0))? {
            let below = newest.saturating_sub(i64::try_from(keep.total.max(1)).unwrap_or(i64::MAX));
            c.execute(&format!("DELETE FROM {table} WHERE {order} <= $1"), &[below.into()])?;
        }
        c.execute(
            &format!(
                "DELETE FROM {table} WHERE token_digest = $1 AND id NOT IN \
                 (SELECT id FROM {table} WHERE token_digest = $1 ORDER BY expires_at DESC LIMIT $2)"
            ),
            &[digest(token), i64::try_from(keep.per_token).unwrap_or(i64::MAX).into()],
        )?;
        Ok(())
    })
}

impl<B: Backend> Store for B {
    fn subscribe(&self, on_change: ChangeHook) -> StoreResult<()> {
        Backend::subscribe(self, on_change)
    }
}
