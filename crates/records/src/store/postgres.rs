//! PostgreSQL behind [`Store`]: the records of many stateless replicas in one database.
//!
//! The same semantics as the SQLite store, query for query: every consistent change is one
//! transaction, and the compare-and-set on `lock_version` is an `UPDATE ... WHERE
//! lock_version = $n` whose row lock makes a second writer re-check the condition after the
//! first commits, so two replicas retrying one job at once make exactly one new job.
//! Migrations run under a transaction-scoped advisory lock: replicas that start at once
//! take turns, and each applies only what the ones before it did not.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{GenericClient, NoTls, Row};
use r2d2_postgres::PostgresConnectionManager;

use super::columns::{
    ADOPT_CHILD, JOB_COLUMNS, LATEST_SUCCESSFUL, PIPELINE_COLUMNS, PROJECT_COLUMNS, STATE_COLUMNS, TOKEN_COLUMNS,
    USER_COLUMNS,
};
use super::{
    BrowserSession, ChangeHook, JobQuery, Keep, Listing, NewPipeline, PageGrant, ProjectRef, Store, StoreError,
    StoreResult, TokenDigest,
};
use crate::model::{
    BlobRef, Job, JobKind, PersonalToken, Pipeline, Project, Role, Scope, Status, User, When, composite_status,
};
use crate::time::Timestamp;

/// Connections a replica keeps at most.
const POOL_SIZE: u32 = 16;
/// The channel every change is announced on (`NOTIFY`, delivered at commit).
const CHANNEL: &str = "artifact_changes";
/// How often a listener looks up from waiting (to notice that its store is gone).
const LISTEN_POLL: Duration = Duration::from_millis(250);

/// The advisory lock migrations run under (any constant the application owns).
const MIGRATION_LOCK: i64 = 0x6172_7469_6661_6374; // "artifact"

/// Schema versions, applied in order; `artifact_schema` records which ran.
const MIGRATIONS: &[&str] = &[
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

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// PostgreSQL behind [`Store`], over a pool of connections.
#[derive(Debug)]
pub struct PostgresStore {
    /// `Some` until dropped.
    pool: Option<Pool>,
    /// For the listener's own connection.
    config: postgres::Config,
    /// Tells listeners that the store is gone.
    closed: Arc<AtomicBool>,
}

impl Drop for PostgresStore {
    /// Closing a connection of the synchronous client blocks on its own runtime, which a
    /// thread that drives async tasks may not do: the pool is dropped on a thread of its own.
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(pool) = self.pool.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

/// A failure as the store reports it: the database unreachable (a connection that closed or
/// could not be had, an I/O error) is [`StoreError::Unavailable`], anything else
/// [`StoreError::Database`].
fn db(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    let unreachable = boxed.is::<r2d2::Error>()
        || boxed.downcast_ref::<postgres::Error>().is_some_and(|pg| {
            use std::error::Error as _;
            pg.is_closed() || pg.source().is_some_and(|s| s.is::<std::io::Error>())
        });
    if unreachable { StoreError::Unavailable(boxed) } else { StoreError::Database(boxed) }
}

fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// A parameter list built at run time.
type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
}

/// `$1, $2, ...` from `start` for `n` parameters.
fn placeholders(start: usize, n: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:pass@host:port/db`) and runs pending migrations.
    pub fn open(url: &str) -> StoreResult<PostgresStore> {
        let config: postgres::Config = url.parse().map_err(|e| StoreError::Database(Box::new(e)))?;
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            // A database that is down is a prompt 503, not a long wait.
            .connection_timeout(Duration::from_secs(2))
            .build(manager)
            .map_err(db)?;
        let store = PostgresStore { pool: Some(pool), config, closed: Arc::default() };
        store.migrate()?;
        Ok(store)
    }

    /// A connection from the pool.
    fn conn(&self) -> StoreResult<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>> {
        self.pool.as_ref().expect("present until dropped").get().map_err(db)
    }

    /// `insert` (with `values`) into `table` of the pages' sessions or grants, in one
    /// transaction with dropping the table's expired rows (by the index on expiry), past
    /// `keep.total` the oldest rows (by `seq`, an identity that numbers rows in the order of
    /// insertion, and its index), and past `keep.per_token` the oldest rows of the token
    /// with digest `token` (by the index on token).
    fn insert_bounded(
        &self,
        table: &str,
        insert: &str,
        values: &[&(dyn ToSql + Sync)],
        token: &[u8],
        keep: Keep,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute(&format!("DELETE FROM {table} WHERE expires_at <= $1"), &[&now_ms])?;
            let newest = tx.query_opt(&format!("{insert} RETURNING seq"), values)?;
            if let Some(newest) = newest {
                let below =
                    newest.get::<_, i64>(0).saturating_sub(i64::try_from(keep.total.max(1)).unwrap_or(i64::MAX));
                tx.execute(&format!("DELETE FROM {table} WHERE seq <= $1"), &[&below])?;
            }
            tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE token_digest = $1 AND id NOT IN \
                     (SELECT id FROM {table} WHERE token_digest = $1 ORDER BY expires_at DESC LIMIT $2)"
                ),
                &[&token, &(keep.per_token as i64)],
            )?;
            tx.commit()
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error>) -> StoreResult<T> {
        let mut conn = self.conn()?;
        f(&mut conn).map_err(db)
    }

    /// Applies the pending migrations in one transaction under the advisory lock.
    fn migrate(&self) -> StoreResult<()> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS artifact_schema (version BIGINT NOT NULL)")?;
            let done: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM artifact_schema", &[])?.get(0);
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(done.max(0) as usize) {
                tx.batch_execute(sql)?;
                tx.execute("INSERT INTO artifact_schema (version) VALUES ($1)", &[&(i as i64 + 1)])?;
            }
            tx.commit()
        })
    }
}

/// Announces a change to every replica's listener (on commit of `tx`).
fn notify(c: &mut impl GenericClient) -> StoreResult<()> {
    c.batch_execute(&format!("NOTIFY {CHANNEL}")).map_err(db)
}

/// A replica's listener: its own connection, `LISTEN`, and `on_change` for every
/// notification. After a lost connection it reconnects and calls `on_change` once, since
/// notifications may have been missed meanwhile. Ends when the store is dropped.
fn listen(config: postgres::Config, closed: Arc<AtomicBool>, on_change: ChangeHook) {
    let mut retry = Duration::from_millis(100);
    while !closed.load(Ordering::SeqCst) {
        let mut client = match config.connect(NoTls) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "change listener: cannot connect; retrying");
                std::thread::sleep(retry); // a backoff between attempts, not a synchronisation
                retry = (retry * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if client.batch_execute(&format!("LISTEN {CHANNEL}")).is_err() {
            continue;
        }
        retry = Duration::from_millis(100);
        on_change();
        while !closed.load(Ordering::SeqCst) {
            let next = client.notifications().timeout_iter(LISTEN_POLL).next();
            match next {
                Ok(Some(_)) => on_change(),
                Ok(None) if !client.is_closed() => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}

fn user_row(r: &Row) -> Result<User, postgres::Error> {
    Ok(User {
        id: r.try_get(0)?,
        username: r.try_get(1)?,
        name: r.try_get(2)?,
        admin: r.try_get(3)?,
        created_at: Timestamp(r.try_get(4)?),
    })
}

fn token_row(r: &Row) -> Result<PersonalToken, postgres::Error> {
    let names: String = r.try_get(2)?;
    Ok(PersonalToken {
        id: r.try_get(0)?,
        user_id: r.try_get(1)?,
        // Unknown names cannot be written (the store writes only `Scope` names).
        scopes: names.split_whitespace().filter_map(Scope::parse).collect(),
        expires_at: r.try_get(3)?,
        revoked: r.try_get::<_, Option<i64>>(4)?.is_some(),
        created_at: Timestamp(r.try_get(5)?),
    })
}

fn project_row(r: &Row) -> Result<Project, postgres::Error> {
    Ok(Project {
        id: r.try_get(0)?,
        full_path: r.try_get(1)?,
        public: r.try_get(2)?,
        created_at: Timestamp(r.try_get(3)?),
        keep_latest_artifact: r.try_get(4)?,
    })
}

/// A stored status or `when` that this version does not know: the row is unusable.
fn unknown(what: &str, value: &str) -> StoreError {
    StoreError::Database(format!("unknown {what} {value:?} in the database").into())
}

fn pipeline_row(r: &Row) -> StoreResult<Pipeline> {
    let status: String = r.try_get(6).map_err(db)?;
    Ok(Pipeline {
        id: r.try_get(0).map_err(db)?,
        iid: r.try_get(1).map_err(db)?,
        project_id: r.try_get(2).map_err(db)?,
        ref_name: r.try_get(3).map_err(db)?,
        tag: r.try_get(4).map_err(db)?,
        sha: r.try_get(5).map_err(db)?,
        status: Status::parse(&status).ok_or_else(|| unknown("status", &status))?,
        source: r.try_get(7).map_err(db)?,
        parent_id: r.try_get(8).map_err(db)?,
        user_id: r.try_get(9).map_err(db)?,
        created_at: Timestamp(r.try_get(10).map_err(db)?),
        updated_at: Timestamp(r.try_get(11).map_err(db)?),
    })
}

fn job_row(r: &Row) -> StoreResult<Job> {
    let get_ts =
        |i: usize| -> StoreResult<Option<Timestamp>> { Ok(r.try_get::<_, Option<i64>>(i).map_err(db)?.map(Timestamp)) };
    let blob = |i: usize| -> StoreResult<Option<BlobRef>> {
        let key: Option<String> = r.try_get(i).map_err(db)?;
        let size: Option<i64> = r.try_get(i + 1).map_err(db)?;
        Ok(key.map(|key| BlobRef { key, size: size.unwrap_or(0).max(0) as u64 }))
    };
    let kind: String = r.try_get(3).map_err(db)?;
    let status: String = r.try_get(6).map_err(db)?;
    let when: String = r.try_get(7).map_err(db)?;
    let tags: String = r.try_get(26).map_err(db)?;
    Ok(Job {
        id: r.try_get(0).map_err(db)?,
        project_id: r.try_get(1).map_err(db)?,
        pipeline_id: r.try_get(2).map_err(db)?,
        kind: if kind == "bridge" { JobKind::Bridge } else { JobKind::Build },
        name: r.try_get(4).map_err(db)?,
        stage: r.try_get(5).map_err(db)?,
        status: Status::parse(&status).ok_or_else(|| unknown("status", &status))?,
        when: When::parse(&when).ok_or_else(|| unknown("when", &when))?,
        allow_failure: r.try_get(8).map_err(db)?,
        retried: r.try_get(9).map_err(db)?,
        coverage: r.try_get(10).map_err(db)?,
        failure_reason: r.try_get(11).map_err(db)?,
        user_id: r.try_get(12).map_err(db)?,
        created_at: Timestamp(r.try_get(13).map_err(db)?),
        queued_at: get_ts(14)?,
        started_at: get_ts(15)?,
        finished_at: get_ts(16)?,
        erased_at: get_ts(17)?,
        erased_by: r.try_get(18).map_err(db)?,
        archive: blob(19)?,
        metadata: blob(21)?,
        trace: blob(23)?,
        artifacts_expire_at: get_ts(25)?,
        tag_list: serde_json::from_str(&tags).map_err(|_| unknown("tag list", &tags))?,
        downstream_pipeline_id: r.try_get(27).map_err(db)?,
        lock_version: r.try_get(28).map_err(db)?,
    })
}

fn kind_str(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Build => "build",
        JobKind::Bridge => "bridge",
    }
}

/// A job's values for [`STATE_COLUMNS`].
fn job_state(job: &Job) -> Params {
    let ts = |t: Option<Timestamp>| -> Box<dyn ToSql + Sync + Send> { Box::new(t.map(|t| t.0)) };
    let key = |b: &Option<BlobRef>| -> Box<dyn ToSql + Sync + Send> { Box::new(b.as_ref().map(|b| b.key.clone())) };
    let size = |b: &Option<BlobRef>| -> Box<dyn ToSql + Sync + Send> { Box::new(b.as_ref().map(|b| b.size as i64)) };
    vec![
        Box::new(job.status.as_str().to_owned()),
        Box::new(job.allow_failure),
        Box::new(job.coverage),
        Box::new(job.failure_reason.clone()),
        Box::new(job.user_id),
        ts(job.queued_at),
        ts(job.started_at),
        ts(job.finished_at),
        ts(job.erased_at),
        Box::new(job.erased_by),
        key(&job.archive),
        size(&job.archive),
        key(&job.metadata),
        size(&job.metadata),
        key(&job.trace),
        size(&job.trace),
        ts(job.artifacts_expire_at),
        Box::new(serde_json::to_string(&job.tag_list).unwrap_or_else(|_| "[]".into())),
        Box::new(job.downstream_pipeline_id),
    ]
}

/// Numbers and inserts a new pipeline (in the caller's transaction); the project's row lock
/// serialises its pipelines' numbering across replicas.
fn insert_pipeline(tx: &mut impl GenericClient, new: &NewPipeline, now: Timestamp) -> StoreResult<Pipeline> {
    tx.execute("SELECT id FROM projects WHERE id = $1 FOR UPDATE", &[&new.project_id]).map_err(db)?;
    let iid: i64 = tx
        .query_one("SELECT COALESCE(MAX(iid), 0) + 1 FROM pipelines WHERE project_id = $1", &[&new.project_id])
        .map_err(db)?
        .get(0);
    let status = Status::Created.as_str();
    let id: i64 = tx
        .query_one(
            "INSERT INTO pipelines (iid, project_id, ref_name, tag, sha, status, source, parent_id, user_id, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
            &[
                &iid,
                &new.project_id,
                &new.ref_name,
                &new.tag,
                &new.sha,
                &status,
                &new.source,
                &new.parent_id,
                &new.user_id,
                &now.0,
            ],
        )
        .map_err(db)?
        .get(0);
    Ok(new.created(id, iid, now))
}

/// Inserts a job, makes a bridge's downstream pipeline its child, refreshes the pipeline's
/// status and announces the change (in the caller's transaction).
fn insert_job_tx(tx: &mut impl GenericClient, job: &Job, token: Option<&TokenDigest>) -> StoreResult<Job> {
    let id = insert_job_row(tx, job, token).map_err(db)?;
    if let (JobKind::Bridge, Some(child)) = (job.kind, job.downstream_pipeline_id) {
        // A pipeline a bridge triggers is that pipeline's child, unless it has a parent or
        // is an ancestor of the bridge's pipeline.
        tx.execute(ADOPT_CHILD, &[&job.pipeline_id, &child]).map_err(db)?;
    }
    refresh_pipeline(tx, job.pipeline_id)?;
    notify(tx)?;
    Ok(Job { id, ..job.clone() })
}

fn insert_job_row(c: &mut impl GenericClient, job: &Job, token: Option<&TokenDigest>) -> Result<i64, postgres::Error> {
    let mut values: Params = vec![
        Box::new(job.project_id),
        Box::new(job.pipeline_id),
        Box::new(kind_str(job.kind).to_owned()),
        Box::new(job.name.clone()),
        Box::new(job.stage.clone()),
        Box::new(job.when.as_str().to_owned()),
        Box::new(job.retried),
        Box::new(job.created_at.0),
    ];
    values.extend(job_state(job));
    values.push(Box::new(token.map(|t| t.0.to_vec())));
    let sql = format!(
        "INSERT INTO jobs (project_id, pipeline_id, kind, name, stage, when_, retried, created_at, {}, token_digest) \
         VALUES ({}) RETURNING id",
        STATE_COLUMNS.join(", "),
        placeholders(1, values.len())
    );
    Ok(c.query_one(&sql, &refs(&values))?.get(0))
}

fn select_job(c: &mut impl GenericClient, id: i64) -> StoreResult<Option<Job>> {
    let row = c.query_opt(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"), &[&id]).map_err(db)?;
    row.as_ref().map(job_row).transpose()
}

/// Recomputes a pipeline's status from its non-retried jobs.
fn refresh_pipeline(c: &mut impl GenericClient, pipeline_id: i64) -> StoreResult<()> {
    let rows = c
        .query("SELECT status, allow_failure FROM jobs WHERE pipeline_id = $1 AND NOT retried", &[&pipeline_id])
        .map_err(db)?;
    let mut jobs = Vec::with_capacity(rows.len());
    for r in &rows {
        let status: String = r.try_get(0).map_err(db)?;
        jobs.push((Status::parse(&status).ok_or_else(|| unknown("status", &status))?, r.try_get(1).map_err(db)?));
    }
    let status = composite_status(jobs);
    c.execute(
        "UPDATE pipelines SET status = $1, updated_at = $2, succeeded = (succeeded OR $1 = 'success') \
         WHERE id = $3 AND status != $1",
        &[&status.as_str(), &Timestamp::now().0, &pipeline_id],
    )
    .map_err(db)?;
    Ok(())
}

impl Store for PostgresStore {
    /// A listener thread with its own connection (`LISTEN artifact_changes`); every change
    /// this store makes is announced with `NOTIFY` in its own transaction, so a replica
    /// hears of another's change as soon as it commits.
    fn subscribe(&self, on_change: ChangeHook) -> StoreResult<()> {
        let (config, closed) = (self.config.clone(), self.closed.clone());
        std::thread::Builder::new()
            .name("artifact-pg-listen".into())
            .spawn(move || listen(config, closed, on_change))
            .map(drop)
            .map_err(db)
    }

    fn create_user(&self, username: &str, name: &str, admin: bool) -> StoreResult<User> {
        let now = Timestamp::now();
        let mut conn = self.conn()?;
        match conn.query_one(
            "INSERT INTO users (username, name, admin, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            &[&username, &name, &admin, &now.0],
        ) {
            Ok(row) => {
                Ok(User { id: row.get(0), username: username.into(), name: name.into(), admin, created_at: now })
            }
            Err(e) if is_unique_violation(&e) => Err(StoreError::Exists(format!("user {username}"))),
            Err(e) => Err(db(e)),
        }
    }

    fn user(&self, id: i64) -> StoreResult<Option<User>> {
        self.with(|c| {
            c.query_opt(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"), &[&id])?
                .as_ref()
                .map(user_row)
                .transpose()
        })
    }

    fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.with(|c| {
            c.query_opt(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"), &[&username])?
                .as_ref()
                .map(user_row)
                .transpose()
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
        let id: i64 = self.with(|c| {
            Ok(c.query_one(
                "INSERT INTO personal_tokens (digest, user_id, created_at, scopes, expires_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&token.0.to_vec(), &user_id, &now.0, &names.join(" "), &expires_at],
            )?
            .get(0))
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
            let row = c.query_opt(
                &format!(
                    "SELECT {TOKEN_COLUMNS}, u.id, u.username, u.name, u.admin, u.created_at \
                     FROM personal_tokens t JOIN users u ON u.id = t.user_id WHERE t.digest = $1"
                ),
                &[&token.0.to_vec()],
            )?;
            let Some(r) = row else { return Ok(None) };
            let user = User {
                id: r.try_get(6)?,
                username: r.try_get(7)?,
                name: r.try_get(8)?,
                admin: r.try_get(9)?,
                created_at: Timestamp(r.try_get(10)?),
            };
            Ok(Some((token_row(&r)?, user)))
        })
    }

    fn personal_token_by_id(&self, id: i64) -> StoreResult<Option<PersonalToken>> {
        self.with(|c| {
            c.query_opt(&format!("SELECT {TOKEN_COLUMNS} FROM personal_tokens t WHERE t.id = $1"), &[&id])?
                .as_ref()
                .map(token_row)
                .transpose()
        })
    }

    fn revoke_token(&self, id: i64) -> StoreResult<bool> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        let n = tx
            .execute(
                "UPDATE personal_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                &[&Timestamp::now().0, &id],
            )
            .map_err(db)?;
        if n == 1 {
            notify(&mut tx)?;
        }
        tx.commit().map_err(db)?;
        Ok(n == 1)
    }

    fn create_project(&self, full_path: &str, public: bool) -> StoreResult<Project> {
        let now = Timestamp::now();
        let mut conn = self.conn()?;
        match conn.query_one(
            "INSERT INTO projects (full_path, public, created_at) VALUES ($1, $2, $3) RETURNING id",
            &[&full_path, &public, &now.0],
        ) {
            Ok(row) => Ok(Project {
                id: row.try_get(0).map_err(db)?,
                full_path: full_path.into(),
                public,
                keep_latest_artifact: true,
                created_at: now,
            }),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Exists(format!("project {full_path}"))),
            Err(e) => Err(db(e)),
        }
    }

    fn set_keep_latest_artifact(&self, project_id: i64, keep: bool) -> StoreResult<bool> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        let n = tx
            .execute("UPDATE projects SET keep_latest_artifact = $1 WHERE id = $2", &[&keep, &project_id])
            .map_err(db)?;
        notify(&mut tx)?;
        tx.commit().map_err(db)?;
        Ok(n == 1)
    }

    fn project(&self, project: &ProjectRef) -> StoreResult<Option<Project>> {
        self.with(|c| {
            let row = match project {
                ProjectRef::Id(id) => {
                    c.query_opt(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1"), &[id])?
                }
                ProjectRef::Path(path) => {
                    c.query_opt(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE full_path = $1"), &[path])?
                }
            };
            row.as_ref().map(project_row).transpose()
        })
    }

    fn set_member(&self, project_id: i64, user_id: i64, role: Role) -> StoreResult<()> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        tx.execute(
            "INSERT INTO members (project_id, user_id, access_level) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET access_level = excluded.access_level",
            &[&project_id, &user_id, &role.access_level()],
        )
        .map_err(db)?;
        notify(&mut tx)?;
        tx.commit().map_err(db)
    }

    fn role(&self, project_id: i64, user_id: i64) -> StoreResult<Option<Role>> {
        let level: Option<i64> = self.with(|c| {
            Ok(c.query_opt(
                "SELECT access_level FROM members WHERE project_id = $1 AND user_id = $2",
                &[&project_id, &user_id],
            )?
            .map(|r| r.get(0)))
        })?;
        Ok(level.and_then(Role::from_access_level))
    }

    fn create_pipeline(&self, new: &NewPipeline) -> StoreResult<Pipeline> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        let pipeline = insert_pipeline(&mut tx, new, Timestamp::now())?;
        tx.commit().map_err(db)?;
        Ok(pipeline)
    }

    fn pipeline(&self, id: i64) -> StoreResult<Option<Pipeline>> {
        let mut conn = self.conn()?;
        let row =
            conn.query_opt(&format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE id = $1"), &[&id]).map_err(db)?;
        row.as_ref().map(pipeline_row).transpose()
    }

    fn insert_job(&self, job: &Job, token: Option<&TokenDigest>) -> StoreResult<Job> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        let job = insert_job_tx(&mut tx, job, token)?;
        tx.commit().map_err(db)?;
        Ok(job)
    }

    fn job(&self, id: i64) -> StoreResult<Option<Job>> {
        let mut conn = self.conn()?;
        select_job(&mut *conn, id)
    }

    fn job_by_token(&self, token: &TokenDigest) -> StoreResult<Option<Job>> {
        let mut conn = self.conn()?;
        let row = conn
            .query_opt(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE token_digest = $1"), &[&token.0.to_vec()])
            .map_err(db)?;
        row.as_ref().map(job_row).transpose()
    }

    fn list_jobs(&self, q: &JobQuery) -> StoreResult<Listing<Job>> {
        let mut filter = String::from("project_id = $1 AND kind = $2");
        let mut args: Params = vec![Box::new(q.project_id), Box::new(kind_str(q.kind).to_owned())];
        if let Some(p) = q.pipeline_id {
            args.push(Box::new(p));
            filter.push_str(&format!(" AND pipeline_id = ${}", args.len()));
        }
        if !q.scope.is_empty() {
            args.push(Box::new(q.scope.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>()));
            filter.push_str(&format!(" AND status = ANY(${})", args.len()));
        }
        if !q.include_retried {
            filter.push_str(" AND NOT retried");
        }
        if let Some(before) = q.before_id {
            args.push(Box::new(before));
            filter.push_str(&format!(" AND id < ${}", args.len()));
        }
        let order = if q.newest_first { "DESC" } else { "ASC" };
        let mut conn = self.conn()?;
        // One snapshot for the count and the page.
        let mut tx =
            conn.build_transaction().isolation_level(postgres::IsolationLevel::RepeatableRead).start().map_err(db)?;
        let total: i64 = if q.count {
            tx.query_one(&format!("SELECT COUNT(*) FROM jobs WHERE {filter}"), &refs(&args)).map_err(db)?.get(0)
        } else {
            0
        };
        let n = args.len();
        args.push(Box::new(q.limit.min(i64::MAX as u64) as i64));
        args.push(Box::new(q.offset.min(i64::MAX as u64) as i64));
        let rows = tx
            .query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE {filter} ORDER BY id {order} LIMIT ${} OFFSET ${}",
                    n + 1,
                    n + 2
                ),
                &refs(&args),
            )
            .map_err(db)?;
        tx.commit().map_err(db)?;
        let rows = rows.iter().map(job_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(Listing { rows, total: total.max(0) as u64 })
    }

    fn update_job(&self, job: &Job) -> StoreResult<bool> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        let mut values = job_state(job);
        let set: Vec<String> = STATE_COLUMNS.iter().enumerate().map(|(i, c)| format!("{c} = ${}", i + 1)).collect();
        let n = values.len();
        values.push(Box::new(job.status.as_str().to_owned()));
        values.push(Box::new(job.id));
        values.push(Box::new(job.lock_version));
        let changed = tx
            .execute(
                &format!(
                    "UPDATE jobs SET {}, \
                     token_digest = CASE WHEN ${} IN ('running', 'pending', 'preparing') THEN token_digest ELSE NULL END, \
                     lock_version = lock_version + 1 \
                     WHERE id = ${} AND lock_version = ${}",
                    set.join(", "),
                    n + 1,
                    n + 2,
                    n + 3
                ),
                &refs(&values),
            )
            .map_err(db)?;
        if changed == 1 {
            refresh_pipeline(&mut tx, job.pipeline_id)?;
            notify(&mut tx)?;
        }
        tx.commit().map_err(db)?;
        Ok(changed == 1)
    }

    fn retry_job(&self, old: &Job, new: &Job) -> StoreResult<Option<Job>> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        let still = tx
            .execute(
                "UPDATE jobs SET retried = TRUE, lock_version = lock_version + 1 \
                 WHERE id = $1 AND lock_version = $2 AND NOT retried",
                &[&old.id, &old.lock_version],
            )
            .map_err(db)?;
        if still != 1 {
            return Ok(None);
        }
        tx.execute(
            "UPDATE jobs SET retried = TRUE, lock_version = lock_version + 1 \
             WHERE pipeline_id = $1 AND name = $2 AND kind = $3",
            &[&old.pipeline_id, &old.name, &kind_str(old.kind)],
        )
        .map_err(db)?;
        let id = insert_job_row(&mut tx, new, None).map_err(db)?;
        refresh_pipeline(&mut tx, new.pipeline_id)?;
        notify(&mut tx)?;
        let job = select_job(&mut tx, id)?;
        tx.commit().map_err(db)?;
        Ok(job)
    }

    fn latest_job_with_artifacts(
        &self,
        project_id: i64,
        ref_name: &str,
        job_name: &str,
        live_at: Option<i64>,
    ) -> StoreResult<Option<Job>> {
        let mut conn = self.conn()?;
        let pipeline: Option<i64> = conn
            .query_opt(
                "SELECT id FROM pipelines WHERE project_id = $1 AND ref_name = $2 AND status = 'success' \
                 AND parent_id IS NULL ORDER BY id DESC LIMIT 1",
                &[&project_id, &ref_name],
            )
            .map_err(db)?
            .map(|r| r.get(0));
        let Some(pipeline) = pipeline else { return Ok(None) };
        // The pipeline and its descendants, parent first (depth, then id).
        let columns = JOB_COLUMNS.split(", ").map(|col| format!("j.{col}")).collect::<Vec<_>>().join(", ");
        let row = conn
            .query_opt(
                &format!(
                    "WITH RECURSIVE tree(id, depth) AS ( \
                         SELECT $1::BIGINT, 0 UNION ALL \
                         SELECT p.id, tree.depth + 1 FROM pipelines p JOIN tree ON p.parent_id = tree.id \
                     ) \
                     SELECT {columns} FROM jobs j JOIN tree ON j.pipeline_id = tree.id \
                     WHERE j.name = $2 AND j.kind = 'build' AND NOT j.retried AND j.archive_key IS NOT NULL \
                     AND (j.artifacts_expire_at IS NULL OR $3::BIGINT IS NULL OR j.artifacts_expire_at > $3) \
                     ORDER BY tree.depth, j.pipeline_id, j.id DESC LIMIT 1"
                ),
                &[&pipeline, &job_name, &live_at],
            )
            .map_err(db)?;
        row.as_ref().map(job_row).transpose()
    }

    fn is_latest_successful(&self, pipeline_id: i64) -> StoreResult<bool> {
        self.with(|c| Ok(c.query_opt(LATEST_SUCCESSFUL, &[&pipeline_id])?.is_some()))
    }

    fn put_verification(&self, archive_key: &str, outcome: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO verifications (archive_key, outcome) VALUES ($1, $2) \
                 ON CONFLICT (archive_key) DO UPDATE SET outcome = excluded.outcome",
                &[&archive_key, &outcome],
            )
            .map(drop)
        })
    }

    fn verification(&self, archive_key: &str) -> StoreResult<Option<String>> {
        self.with(|c| {
            c.query_opt("SELECT outcome FROM verifications WHERE archive_key = $1", &[&archive_key])?
                .map(|r| r.try_get(0))
                .transpose()
        })
    }

    fn delete_verification(&self, archive_key: &str) -> StoreResult<()> {
        self.with(|c| c.execute("DELETE FROM verifications WHERE archive_key = $1", &[&archive_key]).map(drop))
    }

    fn insert_imported_job(
        &self,
        pipeline: Option<&NewPipeline>,
        job: &Job,
        token: Option<&TokenDigest>,
        leases: &[String],
    ) -> StoreResult<Job> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db)?;
        for key in leases {
            if tx.execute("DELETE FROM blob_leases WHERE key = $1", &[key]).map_err(db)? == 0 {
                return Err(StoreError::Missing(format!("the lease on blob {key}")));
            }
        }
        let pipeline_id = match pipeline {
            Some(new) => insert_pipeline(&mut tx, new, Timestamp::now())?.id,
            None => job.pipeline_id,
        };
        let job = insert_job_tx(&mut tx, &Job { pipeline_id, ..job.clone() }, token)?;
        tx.commit().map_err(db)?;
        Ok(job)
    }

    fn lease_blobs(&self, keys: &[String], now_ms: i64) -> StoreResult<()> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            for key in keys {
                tx.execute(
                    "INSERT INTO blob_leases (key, renewed_at) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET renewed_at = excluded.renewed_at",
                    &[key, &now_ms],
                )?;
            }
            tx.commit()
        })
    }

    fn release_blobs(&self, keys: &[String]) -> StoreResult<()> {
        self.with(|c| c.execute("DELETE FROM blob_leases WHERE key = ANY($1)", &[&keys]).map(drop))
    }

    fn claim_stale_lease(&self, key: &str, stale_before_ms: i64) -> StoreResult<bool> {
        self.with(|c| {
            c.execute("DELETE FROM blob_leases WHERE key = $1 AND renewed_at < $2", &[&key, &stale_before_ms])
                .map(|n| n > 0)
        })
    }

    fn blob_leases(&self) -> StoreResult<Vec<(String, i64)>> {
        self.with(|c| {
            Ok(c.query("SELECT key, renewed_at FROM blob_leases", &[])?.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn referenced_blobs(&self) -> StoreResult<std::collections::HashSet<String>> {
        self.with(|c| {
            let rows = c.query(
                "SELECT archive_key FROM jobs WHERE archive_key IS NOT NULL \
                 UNION SELECT metadata_key FROM jobs WHERE metadata_key IS NOT NULL \
                 UNION SELECT trace_key FROM jobs WHERE trace_key IS NOT NULL",
                &[],
            )?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn verification_keys(&self) -> StoreResult<Vec<String>> {
        self.with(|c| Ok(c.query("SELECT archive_key FROM verifications", &[])?.iter().map(|r| r.get(0)).collect()))
    }

    fn open_session(&self, session: &BrowserSession, keep: Keep, now_ms: i64) -> StoreResult<()> {
        let (id, token) = (&session.id.0[..], &session.token.0[..]);
        let insert = "INSERT INTO browser_sessions (id, token_digest, expires_at) VALUES ($1, $2, $3)";
        self.insert_bounded("browser_sessions", insert, &[&id, &token, &session.expires_at], token, keep, now_ms)
    }

    fn browser_session(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<TokenDigest>> {
        let row = self.with(|c| {
            c.query_opt(
                "SELECT token_digest FROM browser_sessions WHERE id = $1 AND expires_at > $2",
                &[&&id.0[..], &now_ms],
            )
        })?;
        Ok(row.and_then(|r| r.get::<_, Vec<u8>>(0).try_into().ok().map(TokenDigest)))
    }

    fn close_session(&self, id: &TokenDigest) -> StoreResult<()> {
        self.with(|c| c.execute("DELETE FROM browser_sessions WHERE id = $1", &[&&id.0[..]]).map(drop))
    }

    fn put_grant(&self, grant: &PageGrant, keep: Keep, now_ms: i64) -> StoreResult<()> {
        let (id, token) = (&grant.id.0[..], &grant.token.0[..]);
        let insert = "INSERT INTO page_grants (id, token_digest, project, job_id, expires_at) \
                      VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING";
        let values: [&(dyn ToSql + Sync); 5] = [&id, &token, &grant.project, &grant.job, &grant.expires_at];
        self.insert_bounded("page_grants", insert, &values, token, keep, now_ms)
    }

    fn page_grant(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<PageGrant>> {
        let row = self.with(|c| {
            c.query_opt(
                "SELECT token_digest, project, job_id, expires_at FROM page_grants WHERE id = $1 AND expires_at > $2",
                &[&&id.0[..], &now_ms],
            )
        })?;
        Ok(row.and_then(|r| {
            let token = TokenDigest(r.get::<_, Vec<u8>>(0).try_into().ok()?);
            Some(PageGrant { id: *id, token, project: r.get(1), job: r.get(2), expires_at: r.get(3) })
        }))
    }
}
