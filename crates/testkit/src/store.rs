//! A store double: forwards every call to a real store, except what a test changes.
//!
//! A test that needs a store to fail, panic or run elsewhere for one call names that call
//! and nothing else:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use artifact_records::{ProjectRef, Store, StoreError};
//! # use artifact_testkit::store::{Call, Double};
//! # fn real() -> Arc<dyn Store> { unimplemented!() }
//! let store = Double::new(real()).failing(|call| match call {
//!     Call::Project(ProjectRef::Path(p)) if p == "boom/error" => Some(StoreError::Missing("it".into())),
//!     _ => None,
//! });
//! ```
//!
//! [`Double::off_thread`] runs every call on a thread of its own (for a synchronous client
//! that may not block a thread driving async tasks, as PostgreSQL's).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use artifact_records::model::{Job, PersonalToken, Pipeline, Project, Role, Scope, User};
use artifact_records::store::{
    BrowserSession, ChangeHook, Identities, Imports, JobQuery, Jobs, Keep, Listing, NewPipeline, PageGrant, ProjectRef,
    Sessions, Store, StoreError, StoreResult, TokenDigest,
};

/// One call to the store and its arguments, as a [`Double`]'s hook sees it.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)] // each variant is the `Store` method of its name
pub enum Call<'a> {
    Subscribe,
    Check,
    CreateUser {
        username: &'a str,
        name: &'a str,
        admin: bool,
    },
    User(i64),
    UserByUsername(&'a str),
    CreateToken {
        user_id: i64,
        token: &'a TokenDigest,
        scopes: &'a [Scope],
        expires_at: Option<&'a str>,
    },
    PersonalToken(&'a TokenDigest),
    PersonalTokenById(i64),
    RevokeToken(i64),
    CreateProject {
        full_path: &'a str,
        public: bool,
    },
    Project(&'a ProjectRef),
    SetMember {
        project_id: i64,
        user_id: i64,
        role: Role,
    },
    Role {
        project_id: i64,
        user_id: i64,
    },
    SetKeepLatestArtifact {
        project_id: i64,
        keep: bool,
    },
    CreatePipeline(&'a NewPipeline),
    Pipeline(i64),
    InsertJob {
        job: &'a Job,
        token: Option<&'a TokenDigest>,
    },
    Job(i64),
    JobByToken(&'a TokenDigest),
    ListJobs(&'a JobQuery),
    UpdateJob(&'a Job),
    RetryJob {
        old: &'a Job,
        new: &'a Job,
    },
    LatestJobWithArtifacts {
        project_id: i64,
        ref_name: &'a str,
        job_name: &'a str,
        live_at: Option<i64>,
    },
    IsLatestSuccessful(i64),
    PutVerification {
        archive_key: &'a str,
        outcome: &'a str,
    },
    Verification(&'a str),
    DeleteVerification(&'a str),
    InsertImportedJob {
        pipeline: Option<&'a NewPipeline>,
        job: &'a Job,
        token: Option<&'a TokenDigest>,
        leases: &'a [String],
    },
    LeaseBlobs {
        keys: &'a [String],
        now_ms: i64,
    },
    ReleaseBlobs(&'a [String]),
    ClaimStaleLease {
        key: &'a str,
        stale_before_ms: i64,
    },
    BlobLeases,
    ReferencedBlobs,
    VerificationKeys,
    OpenSession {
        session: &'a BrowserSession,
        keep: Keep,
        now_ms: i64,
    },
    BrowserSession {
        id: &'a TokenDigest,
        now_ms: i64,
    },
    CloseSession(&'a TokenDigest),
    PutGrant {
        grant: &'a PageGrant,
        keep: Keep,
        now_ms: i64,
    },
    PageGrant {
        id: &'a TokenDigest,
        now_ms: i64,
    },
}

/// What a [`Double`] asks before each call: `Some(error)` answers the call with it instead
/// of forwarding (the hook may also panic, as a broken backend would).
pub type Hook = Arc<dyn Fn(Call<'_>) -> Option<StoreError> + Send + Sync>;

/// A [`Store`] that forwards to another; see the module docs.
#[derive(Clone)]
pub struct Double {
    inner: Arc<dyn Store>,
    hook: Option<Hook>,
    off_thread: bool,
}

impl fmt::Debug for Double {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Double").field("inner", &self.inner).field("off_thread", &self.off_thread).finish()
    }
}

impl Double {
    /// A double that forwards every call to `inner` as it is.
    pub fn new(inner: Arc<dyn Store>) -> Double {
        Double { inner, hook: None, off_thread: false }
    }

    /// Asks `hook` before every call: an error it returns is the call's answer.
    pub fn failing(mut self, hook: impl Fn(Call<'_>) -> Option<StoreError> + Send + Sync + 'static) -> Double {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Runs every call on a thread of its own (a panic there is re-raised on the caller's).
    pub fn off_thread(mut self) -> Double {
        self.off_thread = true;
        self
    }

    fn call<T: Send>(&self, call: Call<'_>, f: impl FnOnce(&dyn Store) -> StoreResult<T> + Send) -> StoreResult<T> {
        if let Some(e) = self.hook.as_ref().and_then(|hook| hook(call)) {
            return Err(e);
        }
        let inner = &*self.inner;
        if !self.off_thread {
            return f(inner);
        }
        std::thread::scope(|s| match s.spawn(|| f(inner)).join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    }
}

impl Store for Double {
    fn subscribe(&self, on_change: ChangeHook) -> StoreResult<()> {
        self.call(Call::Subscribe, |s| s.subscribe(on_change))
    }
    fn check(&self) -> StoreResult<()> {
        self.call(Call::Check, |s| s.check())
    }
}

impl Identities for Double {
    fn create_user(&self, username: &str, name: &str, admin: bool) -> StoreResult<User> {
        self.call(Call::CreateUser { username, name, admin }, |s| s.create_user(username, name, admin))
    }
    fn user(&self, id: i64) -> StoreResult<Option<User>> {
        self.call(Call::User(id), |s| s.user(id))
    }
    fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.call(Call::UserByUsername(username), |s| s.user_by_username(username))
    }
    fn create_token(
        &self,
        user_id: i64,
        token: &TokenDigest,
        scopes: &[Scope],
        expires_at: Option<&str>,
    ) -> StoreResult<PersonalToken> {
        self.call(Call::CreateToken { user_id, token, scopes, expires_at }, |s| {
            s.create_token(user_id, token, scopes, expires_at)
        })
    }
    fn personal_token(&self, token: &TokenDigest) -> StoreResult<Option<(PersonalToken, User)>> {
        self.call(Call::PersonalToken(token), |s| s.personal_token(token))
    }
    fn personal_token_by_id(&self, id: i64) -> StoreResult<Option<PersonalToken>> {
        self.call(Call::PersonalTokenById(id), |s| s.personal_token_by_id(id))
    }
    fn revoke_token(&self, id: i64) -> StoreResult<bool> {
        self.call(Call::RevokeToken(id), |s| s.revoke_token(id))
    }
    fn create_project(&self, full_path: &str, public: bool) -> StoreResult<Project> {
        self.call(Call::CreateProject { full_path, public }, |s| s.create_project(full_path, public))
    }
    fn project(&self, project: &ProjectRef) -> StoreResult<Option<Project>> {
        self.call(Call::Project(project), |s| s.project(project))
    }
    fn set_member(&self, project_id: i64, user_id: i64, role: Role) -> StoreResult<()> {
        self.call(Call::SetMember { project_id, user_id, role }, |s| s.set_member(project_id, user_id, role))
    }
    fn role(&self, project_id: i64, user_id: i64) -> StoreResult<Option<Role>> {
        self.call(Call::Role { project_id, user_id }, |s| s.role(project_id, user_id))
    }
    fn set_keep_latest_artifact(&self, project_id: i64, keep: bool) -> StoreResult<bool> {
        self.call(Call::SetKeepLatestArtifact { project_id, keep }, |s| s.set_keep_latest_artifact(project_id, keep))
    }
}

impl Jobs for Double {
    fn create_pipeline(&self, new: &NewPipeline) -> StoreResult<Pipeline> {
        self.call(Call::CreatePipeline(new), |s| s.create_pipeline(new))
    }
    fn pipeline(&self, id: i64) -> StoreResult<Option<Pipeline>> {
        self.call(Call::Pipeline(id), |s| s.pipeline(id))
    }
    fn insert_job(&self, job: &Job, token: Option<&TokenDigest>) -> StoreResult<Job> {
        self.call(Call::InsertJob { job, token }, |s| s.insert_job(job, token))
    }
    fn job(&self, id: i64) -> StoreResult<Option<Job>> {
        self.call(Call::Job(id), |s| s.job(id))
    }
    fn job_by_token(&self, token: &TokenDigest) -> StoreResult<Option<Job>> {
        self.call(Call::JobByToken(token), |s| s.job_by_token(token))
    }
    fn list_jobs(&self, query: &JobQuery) -> StoreResult<Listing<Job>> {
        self.call(Call::ListJobs(query), |s| s.list_jobs(query))
    }
    fn update_job(&self, job: &Job) -> StoreResult<bool> {
        self.call(Call::UpdateJob(job), |s| s.update_job(job))
    }
    fn retry_job(&self, old: &Job, new: &Job) -> StoreResult<Option<Job>> {
        self.call(Call::RetryJob { old, new }, |s| s.retry_job(old, new))
    }
    fn latest_job_with_artifacts(
        &self,
        project_id: i64,
        ref_name: &str,
        job_name: &str,
        live_at: Option<i64>,
    ) -> StoreResult<Option<Job>> {
        self.call(Call::LatestJobWithArtifacts { project_id, ref_name, job_name, live_at }, |s| {
            s.latest_job_with_artifacts(project_id, ref_name, job_name, live_at)
        })
    }
    fn is_latest_successful(&self, pipeline_id: i64) -> StoreResult<bool> {
        self.call(Call::IsLatestSuccessful(pipeline_id), |s| s.is_latest_successful(pipeline_id))
    }
}

impl Imports for Double {
    fn put_verification(&self, archive_key: &str, outcome: &str) -> StoreResult<()> {
        self.call(Call::PutVerification { archive_key, outcome }, |s| s.put_verification(archive_key, outcome))
    }
    fn verification(&self, archive_key: &str) -> StoreResult<Option<String>> {
        self.call(Call::Verification(archive_key), |s| s.verification(archive_key))
    }
    fn delete_verification(&self, archive_key: &str) -> StoreResult<()> {
        self.call(Call::DeleteVerification(archive_key), |s| s.delete_verification(archive_key))
    }
    fn insert_imported_job(
        &self,
        pipeline: Option<&NewPipeline>,
        job: &Job,
        token: Option<&TokenDigest>,
        leases: &[String],
    ) -> StoreResult<Job> {
        self.call(Call::InsertImportedJob { pipeline, job, token, leases }, |s| {
            s.insert_imported_job(pipeline, job, token, leases)
        })
    }
    fn lease_blobs(&self, keys: &[String], now_ms: i64) -> StoreResult<()> {
        self.call(Call::LeaseBlobs { keys, now_ms }, |s| s.lease_blobs(keys, now_ms))
    }
    fn release_blobs(&self, keys: &[String]) -> StoreResult<()> {
        self.call(Call::ReleaseBlobs(keys), |s| s.release_blobs(keys))
    }
    fn claim_stale_lease(&self, key: &str, stale_before_ms: i64) -> StoreResult<bool> {
        self.call(Call::ClaimStaleLease { key, stale_before_ms }, |s| s.claim_stale_lease(key, stale_before_ms))
    }
    fn blob_leases(&self) -> StoreResult<Vec<(String, i64)>> {
        self.call(Call::BlobLeases, |s| s.blob_leases())
    }
    fn referenced_blobs(&self) -> StoreResult<HashSet<String>> {
        self.call(Call::ReferencedBlobs, |s| s.referenced_blobs())
    }
    fn verification_keys(&self) -> StoreResult<Vec<String>> {
        self.call(Call::VerificationKeys, |s| s.verification_keys())
    }
}

impl Sessions for Double {
    fn open_session(&self, session: &BrowserSession, keep: Keep, now_ms: i64) -> StoreResult<()> {
        self.call(Call::OpenSession { session, keep, now_ms }, |s| s.open_session(session, keep, now_ms))
    }
    fn browser_session(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<TokenDigest>> {
        self.call(Call::BrowserSession { id, now_ms }, |s| s.browser_session(id, now_ms))
    }
    fn close_session(&self, id: &TokenDigest) -> StoreResult<()> {
        self.call(Call::CloseSession(id), |s| s.close_session(id))
    }
    fn put_grant(&self, grant: &PageGrant, keep: Keep, now_ms: i64) -> StoreResult<()> {
        self.call(Call::PutGrant { grant, keep, now_ms }, |s| s.put_grant(grant, keep, now_ms))
    }
    fn page_grant(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<PageGrant>> {
        self.call(Call::PageGrant { id, now_ms }, |s| s.page_grant(id, now_ms))
    }
}
