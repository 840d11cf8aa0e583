//! The store's queries, once for both databases: every [`Backend`] is a [`Store`].

use std::collections::HashSet;

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

impl<B: Backend> Identities for B {
    fn create_user(&self, username: &str, name: &str, admin: bool) -> StoreResult<User> {
        let now = Timestamp::now();
        let res = self.run(Mode::Single, |c| {
            returned_id(
                c,
                "INSERT INTO users (username, name, admin, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                &[username.into(), name.into(), admin.into(), now.0.into()],
            )
        });
        match res {
            Ok(id) => Ok(User { id, username: username.into(), name: name.into(), admin, created_at: now }),
            Err(e) if self.is_unique_violation(&e) => Err(StoreError::Exists(format!("user {username}"))),
            Err(e) => Err(e),
        }
    }

    fn user(&self, id: i64) -> StoreResult<Option<User>> {
        self.run(Mode::Single, |c| {
            c.first(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"), &[id.into()], |r| rows::user(r, 0))
        })
    }

    fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.run(Mode::Single, |c| {
            c.first(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"), &[username.into()], |r| {
                rows::user(r, 0)
            })
        })
    }

    fn create_token(
        &self,
        user_id: i64,
        token: &TokenDigest,
        scopes: &[Scope],
        expires_at: Option<&str>,
    ) -> StoreResult<PersonalToken> {
        let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        let now = Timestamp::now();
        let id = self.run(Mode::Single, |c| {
            returned_id(
                c,
                "INSERT INTO personal_tokens (digest, user_id, created_at, scopes, expires_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[digest(token), user_id.into(), now.0.into(), names.join(" ").into(), expires_at.into()],
            )
        })?;
        Ok(PersonalToken {
            id,
            user_id,
            scopes: scopes.to_vec(),
            expires_at: expires_at.map(str::to_owned),
            revoked: false,
            created_at: now,
        })
    }

    fn personal_token(&self, token: &TokenDigest) -> StoreResult<Option<(PersonalToken, User)>> {
        self.run(Mode::Single, |c| {
            c.first(
                &format!(
                    "SELECT {TOKEN_COLUMNS}, u.id, u.username, u.name, u.admin, u.created_at \
                     FROM personal_tokens t JOIN users u ON u.id = t.user_id WHERE t.digest = $1"
                ),
                &[digest(token)],
                |r| {
                    let user = rows::user(r, 6)?;
                    Ok((rows::token(r)?, user))
                },
            )
        })
    }

    fn personal_token_by_id(&self, id: i64) -> StoreResult<Option<PersonalToken>> {
        self.run(Mode::Single, |c| {
            c.first(
                &format!("SELECT {TOKEN_COLUMNS} FROM personal_tokens t WHERE t.id = $1"),
                &[id.into()],
                rows::token,
            )
        })
    }

    fn revoke_token(&self, id: i64) -> StoreResult<bool> {
        self.run(Mode::Write, |c| {
            let n = c.execute(
                "UPDATE personal_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                &[Timestamp::now().0.into(), id.into()],
            )?;
            if n == 1 {
                c.announce()?;
            }
            Ok(n == 1)
        })
    }

    fn create_project(&self, full_path: &str, public: bool) -> StoreResult<Project> {
        let now = Timestamp::now();
        let res = self.run(Mode::Single, |c| {
            returned_id(
                c,
                "INSERT INTO projects (full_path, public, created_at) VALUES ($1, $2, $3) RETURNING id",
                &[full_path.into(), public.into(), now.0.into()],
            )
        });
        match res {
            Ok(id) => {
                Ok(Project { id, full_path: full_path.into(), public, keep_latest_artifact: true, created_at: now })
            }
            Err(e) if self.is_unique_violation(&e) => Err(StoreError::Exists(format!("project {full_path}"))),
            Err(e) => Err(e),
        }
    }

    fn project(&self, project: &ProjectRef) -> StoreResult<Option<Project>> {
        let (column, value) = match project {
            ProjectRef::Id(id) => ("id", Value::Int(*id)),
            ProjectRef::Path(path) => ("full_path", Value::from(path.as_str())),
        };
        self.run(Mode::Single, |c| {
            c.first(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE {column} = $1"), &[value], rows::project)
        })
    }

    fn set_member(&self, project_id: i64, user_id: i64, role: Role) -> StoreResult<()> {
        self.run(Mode::Write, |c| {
            c.execute(
                "INSERT INTO members (project_id, user_id, access_level) VALUES ($1, $2, $3) \
                 ON CONFLICT (project_id, user_id) DO UPDATE SET access_level = excluded.access_level",
                &[project_id.into(), user_id.into(), role.access_level().into()],
            )?;
            c.announce()
        })
    }

    fn role(&self, project_id: i64, user_id: i64) -> StoreResult<Option<Role>> {
        let level = self.run(Mode::Single, |c| {
            c.first(
                "SELECT access_level FROM members WHERE project_id = $1 AND user_id = $2",
                &[project_id.into(), user_id.into()],
                |r| r.int(0),
            )
        })?;
        Ok(level.and_then(Role::from_access_level))
    }

    fn set_keep_latest_artifact(&self, project_id: i64, keep: bool) -> StoreResult<bool> {
        self.run(Mode::Write, |c| {
            let n = c.execute(
                "UPDATE projects SET keep_latest_artifact = $1 WHERE id = $2",
                &[keep.into(), project_id.into()],
            )?;
            c.announce()?;
            Ok(n == 1)
        })
    }
}

impl<B: Backend> Jobs for B {
    fn create_pipeline(&self, new: &NewPipeline) -> StoreResult<Pipeline> {
        self.run(Mode::Write, |c| insert_pipeline(c, new, Timestamp::now()))
    }

    fn pipeline(&self, id: i64) -> StoreResult<Option<Pipeline>> {
        self.run(Mode::Single, |c| {
            c.first(&format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE id = $1"), &[id.into()], rows::pipeline)
        })
    }

    fn insert_job(&self, job: &Job, token: Option<&TokenDigest>) -> StoreResult<Job> {
        self.run(Mode::Write, |c| insert_job_tx(c, job, token))
    }

    fn job(&self, id: i64) -> StoreResult<Option<Job>> {
        self.run(Mode::Single, |c| select_job(c, id))
    }

    fn job_by_token(&self, token: &TokenDigest) -> StoreResult<Option<Job>> {
        self.run(Mode::Single, |c| {
            c.first(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE token_digest = $1"), &[digest(token)], rows::job)
        })
    }

    fn list_jobs(&self, q: &JobQuery) -> StoreResult<Listing<Job>> {
        let mut args = Vec::new();
        let mut filter =
            format!("project_id = {} AND kind = {}", arg(&mut args, q.project_id), arg(&mut args, rows::kind(q.kind)));
        if let Some(p) = q.pipeline_id {
            filter += &format!(" AND pipeline_id = {}", arg(&mut args, p));
        }
        if !q.scope.is_empty() {
            // Each status once (a caller may repeat one): one statement per set of statuses.
            let mut scope: Vec<&str> = q.scope.iter().map(|s| s.as_str()).collect();
            scope.sort_unstable();
            scope.dedup();
            let each: Vec<String> = scope.into_iter().map(|s| arg(&mut args, s)).collect();
            filter += &format!(" AND status IN ({})", each.join(", "));
        }
        if !q.include_retried {
            filter += " AND NOT retried";
        }
        if let Some(before) = q.before_id {
            filter += &format!(" AND id < {}", arg(&mut args, before));
        }
        let order = if q.newest_first { "DESC" } else { "ASC" };
        let count = format!("SELECT COUNT(*) FROM jobs WHERE {filter}");
        let mut page_args = args.clone();
        let limit = arg(&mut page_args, q.limit.min(i64::MAX as u64) as i64);
        let offset = arg(&mut page_args, q.offset.min(i64::MAX as u64) as i64);
        let page =
            format!("SELECT {JOB_COLUMNS} FROM jobs WHERE {filter} ORDER BY id {order} LIMIT {limit} OFFSET {offset}");
        // One snapshot for the count and the page.
        self.run(Mode::Snapshot, |c| {
            let total = match q.count {
                true => c.first(&count, &args, |r| r.int(0))?.unwrap_or(0),
                false => 0,
            };
            let rows = c.all(&page, &page_args, rows::job)?;
            Ok(Listing { rows, total: total.max(0) as u64 })
        })
    }

    fn update_job(&self, job: &Job) -> StoreResult<bool> {
        let mut values = job_state(job);
        let set: Vec<String> = STATE_COLUMNS.iter().enumerate().map(|(i, c)| format!("{c} = ${}", i + 1)).collect();
        let status = arg(&mut values, job.status.as_str());
        let id = arg(&mut values, job.id);
        let version = arg(&mut values, job.lock_version);
        let sql = format!(
            "UPDATE jobs SET {}, \
             token_digest = CASE WHEN {status} IN ('running', 'pending', 'preparing') THEN token_digest ELSE NULL END, \
             lock_version = lock_version + 1 WHERE id = {id} AND lock_version = {version}",
            set.join(", ")
        );
        self.run(Mode::Write, |c| {
            let changed = c.execute(&sql, &values)? == 1;
            if changed {
                refresh_pipeline(c, job.pipeline_id)?;
                c.announce()?;
            }
            Ok(changed)
        })
    }

    fn retry_job(&self, old: &Job, new: &Job) -> StoreResult<Option<Job>> {
        self.run(Mode::Write, |c| {
            let still = c.execute(
                "UPDATE jobs SET retried = TRUE, lock_version = lock_version + 1 \
                 WHERE id = $1 AND lock_version = $2 AND NOT retried",
                &[old.id.into(), old.lock_version.into()],
            )?;
            if still != 1 {
                return Ok(None);
            }
            c.execute(
                "UPDATE jobs SET retried = TRUE, lock_version = lock_version + 1 \
                 WHERE pipeline_id = $1 AND name = $2 AND kind = $3",
                &[old.pipeline_id.into(), old.name.as_str().into(), rows::kind(old.kind).into()],
            )?;
            let id = insert_job_row(c, new, None)?;
            refresh_pipeline(c, new.pipeline_id)?;
            c.announce()?;
            select_job(c, id)
        })
    }

    fn latest_job_with_artifacts(
        &self,
        project_id: i64,
        ref_name: &str,
        job_name: &str,
        live_at: Option<i64>,
    ) -> StoreResult<Option<Job>> {
        // The pipeline and its descendants, parent first (depth, then id).
        let columns = JOB_COLUMNS.split(", ").map(|col| format!("j.{col}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "WITH RECURSIVE tree(id, depth) AS ( \
                 SELECT CAST($1 AS BIGINT), 0 UNION ALL \
                 SELECT p.id, tree.depth + 1 FROM pipelines p JOIN tree ON p.parent_id = tree.id \
             ) \
             SELECT {columns} FROM jobs j JOIN tree ON j.pipeline_id = tree.id \
             WHERE j.name = $2 AND j.kind = 'build' AND NOT j.retried AND j.archive_key IS NOT NULL \
             AND (j.artifacts_expire_at IS NULL OR CAST($3 AS BIGINT) IS NULL OR j.artifacts_expire_at > $3) \
             ORDER BY tree.depth, j.pipeline_id, j.id DESC LIMIT 1"
        );
        self.run(Mode::Single, |c| {
            let pipeline = c.first(
                "SELECT id FROM pipelines WHERE project_id = $1 AND ref_name = $2 AND status = 'success' \
                     AND parent_id IS NULL ORDER BY id DESC LIMIT 1",
                &[project_id.into(), ref_name.into()],
                |r| r.int(0),
            )?;
            let Some(pipeline) = pipeline else { return Ok(None) };
            c.first(&sql, &[pipeline.into(), job_name.into(), live_at.into()], rows::job)
        })
    }

    fn is_latest_successful(&self, pipeline_id: i64) -> StoreResult<bool> {
        self.run(Mode::Single, |c| Ok(c.first(LATEST_SUCCESSFUL, &[pipeline_id.into()], |_| Ok(()))?.is_some()))
    }
}

impl<B: Backend> Imports for B {
    fn put_verification(&self, archive_key: &str, outcome: &str) -> StoreResult<()> {
        self.run(Mode::Single, |c| {
            c.execute(
                "INSERT INTO verifications (archive_key, outcome) VALUES ($1, $2) \
                 ON CONFLICT (archive_key) DO UPDATE SET outcome = excluded.outcome",
                &[archive_key.into(), outcome.into()],
            )
            .map(drop)
        })
    }

    fn verification(&self, archive_key: &str) -> StoreResult<Option<String>> {
        self.run(Mode::Single, |c| {
            c.first("SELECT outcome FROM verifications WHERE archive_key = $1", &[archive_key.into()], |r| r.text(0))
        })
    }

    fn delete_verification(&self, archive_key: &str) -> StoreResult<()> {
        self.run(Mode::Single, |c| {
            c.execute("DELETE FROM verifications WHERE archive_key = $1", &[archive_key.into()]).map(drop)
        })
    }

    fn insert_imported_job(
        &self,
        pipeline: Option<&NewPipeline>,
        job: &Job,
        token: Option<&TokenDigest>,
        leases: &[String],
    ) -> StoreResult<Job> {
        self.run(Mode::Write, |c| {
            for key in leases {
                if c.execute("DELETE FROM blob_leases WHERE key = $1", &[key.as_str().into()])? == 0 {
                    return Err(StoreError::Missing(format!("the lease on blob {key}")));
                }
            }
            let pipeline_id = match pipeline {
                Some(new) => insert_pipeline(c, new, Timestamp::now())?.id,
                None => job.pipeline_id,
            };
            insert_job_tx(c, &Job { pipeline_id, ..job.clone() }, token)
        })
    }

    fn lease_blobs(&self, keys: &[String], now_ms: i64) -> StoreResult<()> {
        self.run(Mode::Write, |c| {
            for key in keys {
                c.execute(
                    "INSERT INTO blob_leases (key, renewed_at) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET renewed_at = excluded.renewed_at",
                    &[key.as_str().into(), now_ms.into()],
                )?;
            }
            Ok(())
        })
    }

    fn release_blobs(&self, keys: &[String]) -> StoreResult<()> {
        self.run(Mode::Write, |c| {
            for key in keys {
                c.execute("DELETE FROM blob_leases WHERE key = $1", &[key.as_str().into()])?;
            }
            Ok(())
        })
    }

    fn claim_stale_lease(&self, key: &str, stale_before_ms: i64) -> StoreResult<bool> {
        self.run(Mode::Single, |c| {
            Ok(c.execute(
                "DELETE FROM blob_leases WHERE key = $1 AND renewed_at < $2",
                &[key.into(), stale_before_ms.into()],
            )? > 0)
        })
    }

    fn blob_leases(&self) -> StoreResult<Vec<(String, i64)>> {
        self.run(Mode::Single, |c| {
            c.all("SELECT key, renewed_at FROM blob_leases", &[], |r| Ok((r.text(0)?, r.int(1)?)))
        })
    }

    fn referenced_blobs(&self) -> StoreResult<HashSet<String>> {
        self.run(Mode::Single, |c| {
            let keys = c.all(
                "SELECT archive_key FROM jobs WHERE archive_key IS NOT NULL \
                 UNION SELECT metadata_key FROM jobs WHERE metadata_key IS NOT NULL \
                 UNION SELECT trace_key FROM jobs WHERE trace_key IS NOT NULL",
                &[],
                |r| r.text(0),
            )?;
            Ok(keys.into_iter().collect())
        })
    }

    fn verification_keys(&self) -> StoreResult<Vec<String>> {
        self.run(Mode::Single, |c| c.all("SELECT archive_key FROM verifications", &[], |r| r.text(0)))
    }
}

impl<B: Backend> Sessions for B {
    fn open_session(&self, session: &BrowserSession, keep: Keep, now_ms: i64) -> StoreResult<()> {
        let insert = "INSERT INTO browser_sessions (id, token_digest, expires_at) VALUES ($1, $2, $3)";
        let values = [digest(&session.id), digest(&session.token), session.expires_at.into()];
        insert_bounded(self, "browser_sessions", insert, &values, &session.token, keep, now_ms)
    }

    fn browser_session(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<TokenDigest>> {
        self.run(Mode::Single, |c| {
            c.first(
                "SELECT token_digest FROM browser_sessions WHERE id = $1 AND expires_at > $2",
                &[digest(id), now_ms.into()],
                |r| read_digest(r.bytes(0)?, 0),
            )
        })
    }

    fn close_session(&self, id: &TokenDigest) -> StoreResult<()> {
        self.run(Mode::Single, |c| c.execute("DELETE FROM browser_sessions WHERE id = $1", &[digest(id)]).map(drop))
    }

    fn put_grant(&self, grant: &PageGrant, keep: Keep, now_ms: i64) -> StoreResult<()> {
        let insert = "INSERT INTO page_grants (id, token_digest, project, job_id, expires_at) \
                      VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING";
        let values = [
            digest(&grant.id),
            digest(&grant.token),
            grant.project.as_str().into(),
            grant.job.into(),
            grant.expires_at.into(),
        ];
        insert_bounded(self, "page_grants", insert, &values, &grant.token, keep, now_ms)
    }

    fn page_grant(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<PageGrant>> {
        self.run(Mode::Single, |c| {
            c.first(
                "SELECT token_digest, project, job_id, expires_at FROM page_grants WHERE id = $1 AND expires_at > $2",
                &[digest(id), now_ms.into()],
                |r| {
                    Ok(PageGrant {
                        id: *id,
                        token: read_digest(r.bytes(0)?, 0)?,
                        project: r.text(1)?,
                        job: r.int(2)?,
                        expires_at: r.int(3)?,
                    })
                },
            )
        })
    }
}
