//! The embedded store: one SQLite file in WAL mode, so that `artifact admin` and `artifact
//! import` write while the server reads.

mod rows;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};

use self::rows::{job_row, kind_str, pipeline_row, project_row, status_at, token_row, user_row};
use self::schema::migrate;
use super::columns::{
    ADOPT_CHILD, JOB_COLUMNS, LATEST_SUCCESSFUL, PIPELINE_COLUMNS, PROJECT_COLUMNS, STATE_COLUMNS, TOKEN_COLUMNS,
    USER_COLUMNS,
};
use super::{
    BrowserSession, JobQuery, Keep, Listing, NewPipeline, PageGrant, ProjectRef, Store, StoreError, StoreResult,
    TokenDigest,
};
use crate::model::{
    BlobRef, Job, JobKind, PersonalToken, Pipeline, Project, Role, Scope, Status, User, composite_status,
};
use crate::time::Timestamp;

/// Connections kept for reuse; more are opened under load and closed when not needed.
const IDLE_CONNECTIONS: usize = 32;

/// SQLite behind [`Store`]. Each call takes a connection from a small pool.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs pending migrations.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let store = SqliteStore { path: path.to_owned(), idle: Mutex::new(Vec::new()) };
        let mut conn = store.connect()?;
        migrate(&mut conn)?;
        store.put_back(conn);
        Ok(store)
    }

    fn connect(&self) -> StoreResult<Connection> {
        let conn = Connection::open(&self.path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
        // Switching a fresh file to WAL takes an exclusive lock, and SQLite answers "locked"
        // at once (without its busy handler) when another process is opening it at the same
        // moment: try again for a while, with a growing pause.
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            // `synchronous=FULL`: a commit is on disk when it returns (WAL with `NORMAL`
            // survives a killed process but may lose the last commits to a power cut).
            match conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;") {
                Ok(()) => return Ok(conn),
                Err(e) if is_busy(&e) && started.elapsed() < std::time::Duration::from_secs(10) => {
                    std::thread::sleep(pause); // a backoff between attempts, not a synchronisation
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                }
                Err(e) => return Err(db(e)),
            }
        }
    }

    fn put_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(conn);
        }
    }

    /// `insert` (with `values`) into `table` of the pages' sessions or grants, in one
    /// transaction with dropping the table's expired rows (by the index on expiry), past
    /// `keep.total` the oldest rows (by rowid, which numbers rows in the order of insertion:
    /// one past the largest), and past `keep.per_token` the oldest rows of the token with
    /// digest `token` (by the index on token).
    fn insert_bounded(
        &self,
        table: &str,
        insert: &str,
        values: &[&dyn rusqlite::ToSql],
        token: &[u8],
        keep: Keep,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(&format!("DELETE FROM {table} WHERE expires_at <= ?"), [now_ms])?;
            let newest: Option<i64> =
                tx.query_row(&format!("{insert} RETURNING rowid"), values, |r| r.get(0)).optional()?;
            if let Some(newest) = newest {
                let below = newest.saturating_sub(i64::try_from(keep.total.max(1)).unwrap_or(i64::MAX));
                tx.execute(&format!("DELETE FROM {table} WHERE rowid <= ?"), [below])?;
            }
            tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE token_digest = ?1 AND id NOT IN \
                     (SELECT id FROM {table} WHERE token_digest = ?1 ORDER BY expires_at DESC LIMIT ?2)"
                ),
                params![token, keep.per_token as i64],
            )?;
            tx.commit()
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let conn = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match conn {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&mut conn);
        self.put_back(conn);
        out.map_err(db)
    }
}

pub(super) fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(Box::new(e))
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Recomputes a pipeline's status from its non-retried jobs.
fn refresh_pipeline(conn: &Connection, pipeline_id: i64) -> rusqlite::Result<()> {
    let mut stmt =
        conn.prepare_cached("SELECT status, allow_failure FROM jobs WHERE pipeline_id = ? AND retried = 0")?;
    let jobs = stmt
        .query_map([pipeline_id], |r| Ok((status_at(r, 0)?, r.get::<_, bool>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let status = composite_status(jobs);
    conn.execute(
        "UPDATE pipelines SET status = ?1, updated_at = ?2, succeeded = (succeeded OR ?1 = 'success') \
         WHERE id = ?3 AND status != ?1",
        params![status.as_str(), Timestamp::now().0, pipeline_id],
    )?;
    Ok(())
}

/// A job's values for [`STATE_COLUMNS`].
fn job_state(job: &Job) -> Vec<Value> {
    let ts = |t: Option<Timestamp>| Value::from(t.map(|t| t.0));
    let key = |b: &Option<BlobRef>| Value::from(b.as_ref().map(|b| b.key.clone()));
    let size = |b: &Option<BlobRef>| Value::from(b.as_ref().map(|b| b.size as i64));
    vec![
        job.status.as_str().to_owned().into(),
        job.allow_failure.into(),
        job.coverage.into(),
        job.failure_reason.clone().into(),
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

fn insert_job_row(conn: &Connection, job: &Job, token: Option<&TokenDigest>) -> rusqlite::Result<i64> {
    let mut values: Vec<Value> = vec![
        job.project_id.into(),
        job.pipeline_id.into(),
        kind_str(job.kind).to_owned().into(),
        job.name.clone().into(),
        job.stage.clone().into(),
        job.when.as_str().to_owned().into(),
        job.retried.into(),
        job.created_at.0.into(),
    ];
    values.extend(job_state(job));
    values.push(token.map(|t| t.0.to_vec()).into());
    let placeholders = vec!["?"; values.len()].join(", ");
    conn.execute(
        &format!(
            "INSERT INTO jobs (project_id, pipeline_id, kind, name, stage, when_, retried, created_at, {}, \
             token_digest) VALUES ({placeholders})",
            STATE_COLUMNS.join(", ")
        ),
        params_from_iter(values),
    )?;
    Ok(conn.last_insert_rowid())
}

/// Numbers and inserts a new pipeline (in the caller's transaction).
fn insert_pipeline(tx: &Connection, new: &NewPipeline, now: Timestamp) -> rusqlite::Result<Pipeline> {
    let iid: i64 =
        tx.query_row("SELECT COALESCE(MAX(iid), 0) + 1 FROM pipelines WHERE project_id = ?", [new.project_id], |r| {
            r.get(0)
        })?;
    tx.execute(
        &format!("INSERT INTO pipelines ({PIPELINE_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        params![
            iid,
            new.project_id,
            new.ref_name,
            new.tag,
            new.sha,
            Status::Created.as_str(),
            new.source,
            new.parent_id,
            new.user_id,
            now.0,
            now.0
        ],
    )?;
    Ok(new.created(tx.last_insert_rowid(), iid, now))
}

/// Inserts a job, makes a bridge's downstream pipeline its child and refreshes the
/// pipeline's status (in the caller's transaction).
fn insert_job_tx(tx: &Connection, job: &Job, token: Option<&TokenDigest>) -> rusqlite::Result<Job> {
    let id = insert_job_row(tx, job, token)?;
    if let (JobKind::Bridge, Some(child)) = (job.kind, job.downstream_pipeline_id) {
        // A pipeline a bridge triggers is that pipeline's child (for ref resolution
        // and the `parent_pipeline` source), unless it already has a parent or is an
        // ancestor of the bridge's pipeline.
        tx.prepare_cached(ADOPT_CHILD)?.execute(params![job.pipeline_id, child])?;
    }
    refresh_pipeline(tx, job.pipeline_id)?;
    Ok(Job { id, ..job.clone() })
}

fn select_job(conn: &Connection, id: i64) -> rusqlite::Result<Option<Job>> {
    conn.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))?.query_row([id], job_row).optional()
}

impl Store for SqliteStore {
    fn create_user(&self, username: &str, name: &str, admin: bool) -> StoreResult<User> {
        let now = Timestamp::now();
        let res = self.with(|c| {
            c.execute(
                "INSERT INTO users (username, name, admin, created_at) VALUES (?, ?, ?, ?)",
                params![username, name, admin, now.0],
            )?;
            Ok(c.last_insert_rowid())
        });
        match res {
            Ok(id) => Ok(User { id, username: username.into(), name: name.into(), admin, created_at: now }),
            Err(StoreError::Database(_)) if self.user_by_username(username)?.is_some() => {
                Err(StoreError::Exists(format!("user {username}")))
            }
            Err(e) => Err(e),
        }
    }

    fn user(&self, id: i64) -> StoreResult<Option<User>> {
        self.with(|c| {
            c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))?
                .query_row([id], user_row)
                .optional()
        })
    }

    fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.with(|c| {
            c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?"))?
                .query_row([username], user_row)
                .optional()
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
        let id = self.with(|c| {
            c.execute(
                "INSERT INTO personal_tokens (digest, user_id, created_at, scopes, expires_at) VALUES (?, ?, ?, ?, ?)",
                params![token.0.to_vec(), user_id, now.0, names.join(" "), expires_at],
            )?;
            Ok(c.last_insert_rowid())
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
        self.with(|c| {
            c.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS}, u.id, u.username, u.name, u.admin, u.created_at FROM personal_tokens t \
                 JOIN users u ON u.id = t.user_id WHERE t.digest = ?"
            ))?
            .query_row([token.0.to_vec()], |r| {
                let user = User {
                    id: r.get(6)?,
                    username: r.get(7)?,
                    name: r.get(8)?,
                    admin: r.get(9)?,
                    created_at: Timestamp(r.get(10)?),
                };
                Ok((token_row(r)?, user))
            })
            .optional()
        })
    }

    fn personal_token_by_id(&self, id: i64) -> StoreResult<Option<PersonalToken>> {
        self.with(|c| {
            c.prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM personal_tokens t WHERE t.id = ?"))?
                .query_row([id], token_row)
                .optional()
        })
    }

    fn revoke_token(&self, id: i64) -> StoreResult<bool> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE personal_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                params![Timestamp::now().0, id],
            )?;
            Ok(n == 1)
        })
    }

    fn create_project(&self, full_path: &str, public: bool) -> StoreResult<Project> {
        let now = Timestamp::now();
        let mut unique = false;
        let res = self.with(|c| {
            let r = c.execute(
                "INSERT INTO projects (full_path, public, created_at) VALUES (?, ?, ?)",
                params![full_path, public, now.0],
            );
            if let Err(e) = &r {
                unique = is_unique_violation(e);
            }
            r?;
            Ok(c.last_insert_rowid())
        });
        match res {
            Ok(id) => {
                Ok(Project { id, full_path: full_path.into(), public, keep_latest_artifact: true, created_at: now })
            }
            Err(_) if unique => Err(StoreError::Exists(format!("project {full_path}"))),
            Err(e) => Err(e),
        }
    }

    fn set_keep_latest_artifact(&self, project_id: i64, keep: bool) -> StoreResult<bool> {
        self.with(|c| {
            c.execute("UPDATE projects SET keep_latest_artifact = ? WHERE id = ?", params![keep, project_id])
                .map(|n| n == 1)
        })
    }

    fn project(&self, project: &ProjectRef) -> StoreResult<Option<Project>> {
        self.with(|c| match project {
            ProjectRef::Id(id) => c
                .prepare_cached(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?"))?
                .query_row([id], project_row)
                .optional(),
            ProjectRef::Path(path) => c
                .prepare_cached(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE full_path = ?"))?
                .query_row([path], project_row)
                .optional(),
        })
    }

    fn set_member(&self, project_id: i64, user_id: i64, role: Role) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO members (project_id, user_id, access_level) VALUES (?, ?, ?) \
                 ON CONFLICT (project_id, user_id) DO UPDATE SET access_level = excluded.access_level",
                params![project_id, user_id, role.access_level()],
            )
            .map(drop)
        })
    }

    fn role(&self, project_id: i64, user_id: i64) -> StoreResult<Option<Role>> {
        let level = self.with(|c| {
            c.prepare_cached("SELECT access_level FROM members WHERE project_id = ? AND user_id = ?")?
                .query_row([project_id, user_id], |r| r.get::<_, i64>(0))
                .optional()
        })?;
        Ok(level.and_then(Role::from_access_level))
    }

    fn create_pipeline(&self, new: &NewPipeline) -> StoreResult<Pipeline> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let pipeline = insert_pipeline(&tx, new, Timestamp::now())?;
            tx.commit()?;
            Ok(pipeline)
        })
    }

    fn pipeline(&self, id: i64) -> StoreResult<Option<Pipeline>> {
        self.with(|c| {
            c.prepare_cached(&format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE id = ?"))?
                .query_row([id], pipeline_row)
                .optional()
        })
    }

    fn insert_job(&self, job: &Job, token: Option<&TokenDigest>) -> StoreResult<Job> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let job = insert_job_tx(&tx, job, token)?;
            tx.commit()?;
            Ok(job)
        })
    }

    fn job(&self, id: i64) -> StoreResult<Option<Job>> {
        self.with(|c| select_job(c, id))
    }

    fn job_by_token(&self, token: &TokenDigest) -> StoreResult<Option<Job>> {
        self.with(|c| {
            c.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE token_digest = ?"))?
                .query_row([token.0.to_vec()], job_row)
                .optional()
        })
    }

    fn list_jobs(&self, q: &JobQuery) -> StoreResult<Listing<Job>> {
        let mut filter = String::from("project_id = ? AND kind = ?");
        let mut args: Vec<rusqlite::types::Value> = vec![q.project_id.into(), kind_str(q.kind).to_owned().into()];
        if let Some(p) = q.pipeline_id {
            filter.push_str(" AND pipeline_id = ?");
            args.push(p.into());
        }
        if !q.scope.is_empty() {
            filter.push_str(" AND status IN (");
            for (i, s) in q.scope.iter().enumerate() {
                filter.push_str(if i == 0 { "?" } else { ", ?" });
                args.push(s.as_str().to_owned().into());
            }
            filter.push(')');
        }
        if !q.include_retried {
            filter.push_str(" AND retried = 0");
        }
        if let Some(before) = q.before_id {
            filter.push_str(" AND id < ?");
            args.push(before.into());
        }
        let order = if q.newest_first { "DESC" } else { "ASC" };
        self.with(|c| {
            // One read transaction: the count and the page see the same snapshot.
            let c = c.transaction()?;
            let total: i64 = if q.count {
                c.prepare_cached(&format!("SELECT COUNT(*) FROM jobs WHERE {filter}"))?
                    .query_row(params_from_iter(args.iter()), |r| r.get(0))?
            } else {
                0
            };
            let mut page_args = args.clone();
            page_args.push((q.limit.min(i64::MAX as u64) as i64).into());
            page_args.push((q.offset.min(i64::MAX as u64) as i64).into());
            let rows = c
                .prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE {filter} ORDER BY id {order} LIMIT ? OFFSET ?"
                ))?
                .query_map(params_from_iter(page_args.iter()), job_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Listing { rows, total: total.max(0) as u64 })
        })
    }

    fn update_job(&self, job: &Job) -> StoreResult<bool> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let set: Vec<String> = STATE_COLUMNS.iter().map(|c| format!("{c} = ?")).collect();
            let mut values = job_state(job);
            values.extend([job.status.as_str().to_owned().into(), job.id.into(), job.lock_version.into()]);
            let changed = tx.execute(
                &format!(
                    "UPDATE jobs SET {}, \
                     token_digest = CASE WHEN ? IN ('running', 'pending', 'preparing') THEN token_digest ELSE NULL END, \
                     lock_version = lock_version + 1 \
                     WHERE id = ? AND lock_version = ?",
                    set.join(", ")
                ),
                params_from_iter(values),
            )?;
            if changed == 1 {
                refresh_pipeline(&tx, job.pipeline_id)?;
            }
            tx.commit()?;
            Ok(changed == 1)
        })
    }

    fn retry_job(&self, old: &Job, new: &Job) -> StoreResult<Option<Job>> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let still = tx.execute(
                "UPDATE jobs SET retried = 1, lock_version = lock_version + 1 \
                 WHERE id = ? AND lock_version = ? AND retried = 0",
                params![old.id, old.lock_version],
            )?;
            if still != 1 {
                return Ok(None);
            }
            tx.execute("UPDATE jobs SET retried = 1, lock_version = lock_version + 1 WHERE pipeline_id = ? AND name = ? AND kind = ?", params![
                old.pipeline_id,
                old.name,
                kind_str(old.kind)
            ])?;
            let id = insert_job_row(&tx, new, None)?;
            refresh_pipeline(&tx, new.pipeline_id)?;
            let job = select_job(&tx, id)?;
            tx.commit()?;
            Ok(job)
        })
    }

    fn latest_job_with_artifacts(
        &self,
        project_id: i64,
        ref_name: &str,
        job_name: &str,
        live_at: Option<i64>,
    ) -> StoreResult<Option<Job>> {
        self.with(|c| {
            let pipeline: Option<i64> = c
                .prepare_cached(
                    "SELECT id FROM pipelines WHERE project_id = ? AND ref_name = ? AND status = 'success' \
                     AND parent_id IS NULL ORDER BY id DESC LIMIT 1",
                )?
                .query_row(params![project_id, ref_name], |r| r.get(0))
                .optional()?;
            let Some(pipeline) = pipeline else { return Ok(None) };
            // The pipeline and its descendants, parent first (depth, then id).
            c.prepare_cached(&format!(
                "WITH RECURSIVE tree(id, depth) AS ( \
                     SELECT ?1, 0 UNION ALL \
                     SELECT p.id, tree.depth + 1 FROM pipelines p JOIN tree ON p.parent_id = tree.id \
                 ) \
                 SELECT {} FROM jobs j JOIN tree ON j.pipeline_id = tree.id \
                 WHERE j.name = ?2 AND j.kind = 'build' AND j.retried = 0 AND j.archive_key IS NOT NULL \
                 AND (j.artifacts_expire_at IS NULL OR ?3 IS NULL OR j.artifacts_expire_at > ?3) \
                 ORDER BY tree.depth, j.pipeline_id, j.id DESC LIMIT 1",
                JOB_COLUMNS.split(", ").map(|col| format!("j.{col}")).collect::<Vec<_>>().join(", ")
            ))?
            .query_row(params![pipeline, job_name, live_at], job_row)
            .optional()
        })
    }

    fn is_latest_successful(&self, pipeline_id: i64) -> StoreResult<bool> {
        self.with(|c| c.prepare_cached(LATEST_SUCCESSFUL)?.exists([pipeline_id]))
    }

    fn put_verification(&self, archive_key: &str, outcome: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO verifications (archive_key, outcome) VALUES (?, ?) \
                 ON CONFLICT (archive_key) DO UPDATE SET outcome = excluded.outcome",
                params![archive_key, outcome],
            )
            .map(drop)
        })
    }

    fn verification(&self, archive_key: &str) -> StoreResult<Option<String>> {
        self.with(|c| {
            c.prepare_cached("SELECT outcome FROM verifications WHERE archive_key = ?")?
                .query_row([archive_key], |r| r.get(0))
                .optional()
        })
    }

    fn delete_verification(&self, archive_key: &str) -> StoreResult<()> {
        self.with(|c| c.execute("DELETE FROM verifications WHERE archive_key = ?", [archive_key]).map(drop))
    }

    fn insert_imported_job(
        &self,
        pipeline: Option<&NewPipeline>,
        job: &Job,
        token: Option<&TokenDigest>,
        leases: &[String],
    ) -> StoreResult<Job> {
        let mut lost = None;
        let stored = self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for key in leases {
                if tx.execute("DELETE FROM blob_leases WHERE key = ?", [key])? == 0 {
                    lost = Some(key.clone());
                    return Ok(None);
                }
            }
            let pipeline_id = match pipeline {
                Some(new) => insert_pipeline(&tx, new, Timestamp::now())?.id,
                None => job.pipeline_id,
            };
            let job = insert_job_tx(&tx, &Job { pipeline_id, ..job.clone() }, token)?;
            tx.commit()?;
            Ok(Some(job))
        })?;
        stored.ok_or_else(|| StoreError::Missing(format!("the lease on blob {}", lost.unwrap_or_default())))
    }

    fn lease_blobs(&self, keys: &[String], now_ms: i64) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for key in keys {
                tx.execute(
                    "INSERT INTO blob_leases (key, renewed_at) VALUES (?, ?) \
                     ON CONFLICT (key) DO UPDATE SET renewed_at = excluded.renewed_at",
                    params![key, now_ms],
                )?;
            }
            tx.commit()
        })
    }

    fn release_blobs(&self, keys: &[String]) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for key in keys {
                tx.execute("DELETE FROM blob_leases WHERE key = ?", [key])?;
            }
            tx.commit()
        })
    }

    fn claim_stale_lease(&self, key: &str, stale_before_ms: i64) -> StoreResult<bool> {
        self.with(|c| {
            c.execute("DELETE FROM blob_leases WHERE key = ? AND renewed_at < ?", params![key, stale_before_ms])
                .map(|n| n > 0)
        })
    }

    fn blob_leases(&self) -> StoreResult<Vec<(String, i64)>> {
        self.with(|c| {
            c.prepare("SELECT key, renewed_at FROM blob_leases")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    fn referenced_blobs(&self) -> StoreResult<std::collections::HashSet<String>> {
        self.with(|c| {
            let mut keys = std::collections::HashSet::new();
            let mut rows = c.prepare("SELECT archive_key, metadata_key, trace_key FROM jobs")?;
            let mut rows = rows.query([])?;
            while let Some(row) = rows.next()? {
                for i in 0..3 {
                    if let Some(key) = row.get::<_, Option<String>>(i)? {
                        keys.insert(key);
                    }
                }
            }
            Ok(keys)
        })
    }

    fn verification_keys(&self) -> StoreResult<Vec<String>> {
        self.with(|c| c.prepare("SELECT archive_key FROM verifications")?.query_map([], |r| r.get(0))?.collect())
    }

    fn open_session(&self, session: &BrowserSession, keep: Keep, now_ms: i64) -> StoreResult<()> {
        let (id, token) = (session.id.0.to_vec(), session.token.0.to_vec());
        let insert = "INSERT INTO browser_sessions (id, token_digest, expires_at) VALUES (?, ?, ?)";
        self.insert_bounded("browser_sessions", insert, params![id, token, session.expires_at], &token, keep, now_ms)
    }

    fn browser_session(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<TokenDigest>> {
        let digest = self.with(|c| {
            c.prepare_cached("SELECT token_digest FROM browser_sessions WHERE id = ? AND expires_at > ?")?
                .query_row(params![id.0.to_vec(), now_ms], |r| r.get::<_, Vec<u8>>(0))
                .optional()
        })?;
        Ok(digest.and_then(|d| d.try_into().ok().map(TokenDigest)))
    }

    fn close_session(&self, id: &TokenDigest) -> StoreResult<()> {
        self.with(|c| c.execute("DELETE FROM browser_sessions WHERE id = ?", [id.0.to_vec()]).map(drop))
    }

    fn put_grant(&self, grant: &PageGrant, keep: Keep, now_ms: i64) -> StoreResult<()> {
        let (id, token) = (grant.id.0.to_vec(), grant.token.0.to_vec());
        let insert = "INSERT INTO page_grants (id, token_digest, project, job_id, expires_at) VALUES (?, ?, ?, ?, ?) \
                      ON CONFLICT (id) DO NOTHING";
        let values = params![id, token, grant.project, grant.job, grant.expires_at];
        self.insert_bounded("page_grants", insert, values, &token, keep, now_ms)
    }

    fn page_grant(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<PageGrant>> {
        let row = self.with(|c| {
            c.prepare_cached(
                "SELECT token_digest, project, job_id, expires_at FROM page_grants WHERE id = ? AND expires_at > ?",
            )?
            .query_row(params![id.0.to_vec(), now_ms], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
            })
            .optional()
        })?;
        Ok(row.and_then(|(token, project, job, expires_at)| {
            let token = TokenDigest(token.try_into().ok()?);
            Some(PageGrant { id: *id, token, project, job, expires_at })
        }))
    }
}
