//! The store: users, tokens, projects, members, pipelines and jobs.
//!
//! A small synchronous trait, so that each request makes one trip to a blocking pool for
//! all its queries (the server's `routes::blocking`). SQLite in WAL mode is the embedded default;
//! a PostgreSQL implementation (for many replicas) implements the same trait over a
//! connection pool. Every write that must stay consistent (a retry, a state change and its
//! pipeline's status) is one method, so each implementation makes it one transaction.

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::fmt;

#[cfg(feature = "postgres")]
pub use self::postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use self::sqlite::SqliteStore;
use crate::model::{Job, JobKind, PersonalToken, Pipeline, Project, Role, Scope, Status, User};

/// A store failure: the error of the [`Store`] trait, which every backend maps its own
/// failures into (the server's callers see it inside its `Error::Store`).
/// The message is for logs, never for clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The name is taken (user, project).
    #[error("{0} already exists")]
    Exists(String),
    /// A referenced record does not exist.
    #[error("{0} not found")]
    Missing(String),
    /// The database failed; the source is the driver's own error (downcast it to act on a
    /// particular backend's codes).
    #[error("database: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database cannot be reached now (down, restarting, no free connection in time);
    /// the same request may work later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// The SHA-256 of a token: tokens are never stored in the clear.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    /// Digests a token as presented.
    pub fn of(token: &str) -> TokenDigest {
        use sha2::Digest;
        TokenDigest(sha2::Sha256::digest(token.as_bytes()).into())
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// How a request names a project: `:id` as a number or as the full path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    /// Numeric id.
    Id(i64),
    /// `group/project` (already percent-decoded).
    Path(String),
}

impl ProjectRef {
    /// A number is an id; anything else is a path.
    pub fn parse(s: &str) -> ProjectRef {
        match s.parse::<i64>() {
            Ok(id) if !s.starts_with('+') => ProjectRef::Id(id),
            _ => ProjectRef::Path(s.to_owned()),
        }
    }
}

/// A new pipeline.
#[derive(Debug, Clone)]
pub struct NewPipeline {
    /// The project.
    pub project_id: i64,
    /// Branch or tag.
    pub ref_name: String,
    /// Whether `ref_name` is a tag.
    pub tag: bool,
    /// The commit.
    pub sha: String,
    /// `push`, `parent_pipeline`, ...
    pub source: String,
    /// The parent pipeline of a child pipeline.
    pub parent_id: Option<i64>,
    /// Who started it.
    pub user_id: Option<i64>,
}

impl NewPipeline {
    /// The pipeline as stored under `id` and `iid` at `now`: status `created` until it
    /// has jobs.
    pub fn created(&self, id: i64, iid: i64, now: crate::time::Timestamp) -> Pipeline {
        Pipeline {
            id,
            iid,
            project_id: self.project_id,
            ref_name: self.ref_name.clone(),
            tag: self.tag,
            sha: self.sha.clone(),
            status: Status::Created,
            source: self.source.clone(),
            parent_id: self.parent_id,
            user_id: self.user_id,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Which jobs a listing wants.
#[derive(Debug, Clone)]
pub struct JobQuery {
    /// The project.
    pub project_id: i64,
    /// Only this pipeline's jobs.
    pub pipeline_id: Option<i64>,
    /// Builds or bridges.
    pub kind: JobKind,
    /// Only these statuses (empty: all).
    pub scope: Vec<Status>,
    /// Include jobs replaced by a retry.
    pub include_retried: bool,
    /// Newest first (project lists) or oldest first (pipeline lists).
    pub newest_first: bool,
    /// Only jobs with a smaller id (keyset pagination, newest first).
    pub before_id: Option<i64>,
    /// Whether to count every row ([`Listing::total`]; keyset pages skip the count).
    pub count: bool,
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return.
    pub limit: u64,
}

/// One page of rows and the total number of rows.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    /// The page.
    pub rows: Vec<T>,
    /// Rows in all pages.
    pub total: u64,
}

/// What a store calls when data changed through another handle; see [`Store::subscribe`].
pub type ChangeHook = std::sync::Arc<dyn Fn() + Send + Sync>;

/// The store's operations: the four concerns below, and the two calls every backend may
/// answer in its own way. See the module docs.
///
/// Each concern is a trait of its own, so that a reader (or a test double) sees one at a
/// time; `dyn Store` calls every method of all four.
pub trait Store: Identities + Jobs + Imports + Sessions + Send + Sync + fmt::Debug {
    /// Calls `on_change` soon after any change that another handle to the same data makes
    /// (another replica, `artifact admin`, `artifact import`), so that memories of look-ups
    /// can be dropped at once. A store that cannot tell (SQLite, the default) does nothing,
    /// and such changes show once those memories expire (one second).
    fn subscribe(&self, on_change: ChangeHook) -> StoreResult<()> {
        let _ = on_change;
        Ok(())
    }

    /// Whether the store answers now (for `GET /-/health`): one small query.
    fn check(&self) -> StoreResult<()> {
        self.user(0).map(drop)
    }
}

/// Who is who: users, their personal access tokens, projects, their members and settings.
pub trait Identities {
    /// Makes a user.
    fn create_user(&self, username: &str, name: &str, admin: bool) -> StoreResult<User>;
    /// A user by id.
    fn user(&self, id: i64) -> StoreResult<Option<User>>;
    /// A user by login name.
    fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// Records a personal access token for a user, with its scopes and the day it expires
    /// (`YYYY-MM-DD`).
    fn create_token(
        &self,
        user_id: i64,
        token: &TokenDigest,
        scopes: &[Scope],
        expires_at: Option<&str>,
    ) -> StoreResult<PersonalToken>;
    /// A personal access token's record and its user, revoked and expired ones included.
    fn personal_token(&self, token: &TokenDigest) -> StoreResult<Option<(PersonalToken, User)>>;
    /// A personal access token's record by id.
    fn personal_token_by_id(&self, id: i64) -> StoreResult<Option<PersonalToken>>;
    /// Revokes a token for good; false if there is no such token or it was revoked already.
    fn revoke_token(&self, id: i64) -> StoreResult<bool>;

    /// Makes a project.
    fn create_project(&self, full_path: &str, public: bool) -> StoreResult<Project>;
    /// A project by id or path.
    fn project(&self, project: &ProjectRef) -> StoreResult<Option<Project>>;
    /// Sets a member's role.
    fn set_member(&self, project_id: i64, user_id: i64, role: Role) -> StoreResult<()>;
    /// A user's role in a project.
    fn role(&self, project_id: i64, user_id: i64) -> StoreResult<Option<Role>>;
    /// Turns GitLab's "Keep artifacts from most recent successful jobs" on or off for a
    /// project ([`Project::keep_latest_artifact`]); false if there is no such project.
    fn set_keep_latest_artifact(&self, project_id: i64, keep: bool) -> StoreResult<bool>;
}

/// Pipelines and their jobs: what runs, and the keys of what it left.
pub trait Jobs {
    /// Makes a pipeline (status `created` until it has jobs).
    fn create_pipeline(&self, new: &NewPipeline) -> StoreResult<Pipeline>;
    /// A pipeline by id.
    fn pipeline(&self, id: i64) -> StoreResult<Option<Pipeline>>;

    /// Stores a new job (its `id` is ignored and assigned), with the job token a runner
    /// would hold while it runs, and updates its pipeline's status. A bridge's downstream
    /// pipeline becomes a child of the bridge's pipeline (if it has no parent yet and is not
    /// the bridge's pipeline or one of its ancestors).
    fn insert_job(&self, job: &Job, token: Option<&TokenDigest>) -> StoreResult<Job>;
    /// A job by id.
    fn job(&self, id: i64) -> StoreResult<Option<Job>>;
    /// The job a job token belongs to.
    fn job_by_token(&self, token: &TokenDigest) -> StoreResult<Option<Job>>;
    /// A page of jobs.
    fn list_jobs(&self, query: &JobQuery) -> StoreResult<Listing<Job>>;
    /// Writes `job` if its stored `lock_version` is still the one it was read with (false:
    /// another write came first), bumps the version, and updates its pipeline's status.
    fn update_job(&self, job: &Job) -> StoreResult<bool>;
    /// Marks `old` and every other job of its name in its pipeline retried and stores
    /// `new` in one transaction; `None` if `old` changed since it was read or was already
    /// retried.
    fn retry_job(&self, old: &Job, new: &Job) -> StoreResult<Option<Job>>;
    /// Ref + job resolution: in the newest successful pipeline for `ref_name` and its
    /// descendants (parent first), the first non-retried job named `job_name` that has an
    /// archive unexpired at `live_at` (Unix milliseconds; `None`: expired archives count
    /// too, as for a project that keeps its latest artifacts).
    fn latest_job_with_artifacts(
        &self,
        project_id: i64,
        ref_name: &str,
        job_name: &str,
        live_at: Option<i64>,
    ) -> StoreResult<Option<Job>>;
    /// Whether the pipeline is, or descends from, the newest pipeline without a parent of its
    /// project and ref (a branch and a tag of one name apart) that has succeeded (whatever
    /// its status now: a retry runs it again): the pipeline whose artifacts a project that
    /// keeps its latest artifacts keeps past their expiry. A pipeline that had succeeded
    /// before the store knew of keeping does not count.
    fn is_latest_successful(&self, pipeline_id: i64) -> StoreResult<bool>;
}

/// What an import leaves behind and `artifact admin gc` reads: verification outcomes, leases
/// on blobs being written, and every blob key a job refers to.
pub trait Imports {
    /// Keeps the outcome of verifying the archive `archive_key` at import
    /// (`artifact_core::Verification` as JSON), replacing any kept before. Written before the
    /// job that refers to the archive, so a job is never without it.
    fn put_verification(&self, archive_key: &str, outcome: &str) -> StoreResult<()>;
    /// The outcome kept for `archive_key` (see [`Imports::put_verification`]), if any.
    fn verification(&self, archive_key: &str) -> StoreResult<Option<String>>;
    /// Forgets the outcome kept for `archive_key` (its archive was dropped or never
    /// referred to).
    fn delete_verification(&self, archive_key: &str) -> StoreResult<()>;

    /// Stores an imported job, in its new pipeline when `pipeline` is given (then the job's
    /// `pipeline_id` is ignored), and gives up the `leases` on its blobs, all in one
    /// transaction: a failure or a crash leaves none of it. Fails with
    /// [`StoreError::Missing`] if any of the leases is gone (`artifact admin gc` collected
    /// its blobs after it went stale), so that no job ever refers to a collected blob.
    fn insert_imported_job(
        &self,
        pipeline: Option<&NewPipeline>,
        job: &Job,
        token: Option<&TokenDigest>,
        leases: &[String],
    ) -> StoreResult<Job>;

    /// Takes or renews the leases on blob keys that an import is writing and no job refers
    /// to yet, as of `now_ms`: `artifact admin gc` leaves a leased blob alone until its lease
    /// is older than its grace period (see `docs/operations.md`).
    fn lease_blobs(&self, keys: &[String], now_ms: i64) -> StoreResult<()>;
    /// Gives leases up (the import failed and deleted its blobs).
    fn release_blobs(&self, keys: &[String]) -> StoreResult<()>;
    /// Takes over the lease on `key` if it was last renewed before `stale_before_ms`: true
    /// if it was (the lease is gone, the blob is the caller's to delete), false if it was
    /// renewed since or given up with its job stored.
    fn claim_stale_lease(&self, key: &str, stale_before_ms: i64) -> StoreResult<bool>;
    /// Every lease: a key and when it was last renewed (Unix milliseconds).
    fn blob_leases(&self) -> StoreResult<Vec<(String, i64)>>;
    /// Every blob key a job refers to (archive, `metadata.gz`, log).
    fn referenced_blobs(&self) -> StoreResult<std::collections::HashSet<String>>;
    /// The archive keys with a kept verification outcome.
    fn verification_keys(&self) -> StoreResult<Vec<String>>;
}

/// The pages' browser sessions and grants, kept as digests so that every replica knows them.
pub trait Sessions {
    /// Keeps a browser session (dropping the expired ones and, past the bounds of `keep`,
    /// the oldest of its token's and the oldest of all), so that every replica knows it.
    fn open_session(&self, session: &BrowserSession, keep: Keep, now_ms: i64) -> StoreResult<()>;
    /// The token digest of the browser session whose id has digest `id`, if it is live.
    fn browser_session(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<TokenDigest>>;
    /// Ends a browser session.
    fn close_session(&self, id: &TokenDigest) -> StoreResult<()>;
    /// Keeps a grant (once: the same id again changes nothing), dropping the expired ones
    /// and, past the bounds of `keep`, the oldest of its token's and the oldest of all.
    fn put_grant(&self, grant: &PageGrant, keep: Keep, now_ms: i64) -> StoreResult<()>;
    /// The live grant whose id has digest `id`.
    fn page_grant(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<PageGrant>>;
}

/// How many browser sessions (or, apart, grants) the store keeps: past either bound, the
/// oldest go. Each insert keeps both with a few index look-ups, never a scan or a count:
/// rows are numbered in the order of insertion, and a row numbered `total` or more below
/// the newest goes (so rows that went early, expired, closed or of a token past its
/// bound, still count against `total` until the numbers pass them, as in the proxy's
/// memory). Replicas inserting at the same moment may each leave one row more for as long
/// as their transactions overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    /// The most rows of one token.
    pub per_token: usize,
    /// The most rows in all.
    pub total: usize,
}

/// A browser session of the pages as the store keeps it: digests only, so that the store
/// holds neither the cookie nor the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSession {
    /// The digest of the session's id (the cookie's value).
    pub id: TokenDigest,
    /// The digest of the personal access token it signed in with.
    pub token: TokenDigest,
    /// When it ends, Unix milliseconds.
    pub expires_at: i64,
}

/// A grant of the pages: the files of one job's archive, read with one token, for a while
/// (a URL that a sandboxed report, which sends no cookie, reads its neighbours with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageGrant {
    /// The digest of the grant's id (in the URL).
    pub id: TokenDigest,
    /// The digest of the personal access token it reads with.
    pub token: TokenDigest,
    /// The project, as the page named it (a full path).
    pub project: String,
    /// The job.
    pub job: i64,
    /// When it ends, Unix milliseconds.
    pub expires_at: i64,
}
