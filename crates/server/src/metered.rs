//! The store, timed: every query's latency by name (`store_query_seconds`), for the
//! server's metrics. A thin wrapper: each call is the inner store's, measured.

use std::collections::HashSet;
use std::sync::Arc;

use artifact_records::model::{Job, PersonalToken, Pipeline, Project, Role, Scope, User};
use artifact_records::store::{
    BrowserSession, ChangeHook, Identities, Imports, JobQuery, Jobs, Keep, Listing, NewPipeline, PageGrant, ProjectRef,
    Sessions, Store, StoreResult, TokenDigest,
};

use crate::metrics::ServerMetrics;

/// A store whose every call is timed into the server's metrics.
#[derive(Debug)]
pub(crate) struct MeteredStore {
    pub(crate) inner: Arc<dyn Store>,
    pub(crate) metrics: Arc<ServerMetrics>,
}

impl MeteredStore {
    fn timed<T>(&self, query: &'static str, f: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
        let started = std::time::Instant::now();
        let out = f();
        self.metrics.store_query(query, started.elapsed());
        out
    }
}

impl Store for MeteredStore {
    fn subscribe(&self, on_change: ChangeHook) -> StoreResult<()> {
        self.timed("subscribe", || self.inner.subscribe(on_change))
    }
    fn check(&self) -> StoreResult<()> {
        self.timed("check", || self.inner.check())
    }
}

impl Identities for MeteredStore {
    fn create_user(&self, username: &str, name: &str, admin: bool) -> StoreResult<User> {
        self.timed("create_user", || self.inner.create_user(username, name, admin))
    }
    fn user(&self, id: i64) -> StoreResult<Option<User>> {
        self.timed("user", || self.inner.user(id))
    }
    fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.timed("user_by_username", || self.inner.user_by_username(username))
    }
    fn create_token(
        &self,
        user_id: i64,
        token: &TokenDigest,
        scopes: &[Scope],
        expires_at: Option<&str>,
    ) -> StoreResult<PersonalToken> {
        self.timed("create_token", || self.inner.create_token(user_id, token, scopes, expires_at))
    }
    fn personal_token(&self, token: &TokenDigest) -> StoreResult<Option<(PersonalToken, User)>> {
        self.timed("personal_token", || self.inner.personal_token(token))
    }
    fn personal_token_by_id(&self, id: i64) -> StoreResult<Option<PersonalToken>> {
        self.timed("personal_token_by_id", || self.inner.personal_token_by_id(id))
    }
    fn revoke_token(&self, id: i64) -> StoreResult<bool> {
        self.timed("revoke_token", || self.inner.revoke_token(id))
    }
    fn create_project(&self, full_path: &str, public: bool) -> StoreResult<Project> {
        self.timed("create_project", || self.inner.create_project(full_path, public))
    }
    fn project(&self, project: &ProjectRef) -> StoreResult<Option<Project>> {
        self.timed("project", || self.inner.project(project))
    }
    fn set_member(&self, project_id: i64, user_id: i64, role: Role) -> StoreResult<()> {
        self.timed("set_member", || self.inner.set_member(project_id, user_id, role))
    }
    fn role(&self, project_id: i64, user_id: i64) -> StoreResult<Option<Role>> {
        self.timed("role", || self.inner.role(project_id, user_id))
    }
    fn set_keep_latest_artifact(&self, project_id: i64, keep: bool) -> StoreResult<bool> {
        self.timed("set_keep_latest_artifact", || self.inner.set_keep_latest_artifact(project_id, keep))
    }
}

impl Jobs for MeteredStore {
    fn create_pipeline(&self, new: &NewPipeline) -> StoreResult<Pipeline> {
        self.timed("create_pipeline", || self.inner.create_pipeline(new))
    }
    fn pipeline(&self, id: i64) -> StoreResult<Option<Pipeline>> {
        self.timed("pipeline", || self.inner.pipeline(id))
    }
    fn insert_job(&self, job: &Job, token: Option<&TokenDigest>) -> StoreResult<Job> {
        self.timed("insert_job", || self.inner.insert_job(job, token))
    }
    fn job(&self, id: i64) -> StoreResult<Option<Job>> {
        self.timed("job", || self.inner.job(id))
    }
    fn job_by_token(&self, token: &TokenDigest) -> StoreResult<Option<Job>> {
        self.timed("job_by_token", || self.inner.job_by_token(token))
    }
    fn list_jobs(&self, query: &JobQuery) -> StoreResult<Listing<Job>> {
        self.timed("list_jobs", || self.inner.list_jobs(query))
    }
    fn update_job(&self, job: &Job) -> StoreResult<bool> {
        self.timed("update_job", || self.inner.update_job(job))
    }
    fn retry_job(&self, old: &Job, new: &Job) -> StoreResult<Option<Job>> {
        self.timed("retry_job", || self.inner.retry_job(old, new))
    }
    fn latest_job_with_artifacts(
        &self,
        project_id: i64,
        ref_name: &str,
        job_name: &str,
        live_at: Option<i64>,
    ) -> StoreResult<Option<Job>> {
        self.timed("latest_job_with_artifacts", || {
            self.inner.latest_job_with_artifacts(project_id, ref_name, job_name, live_at)
        })
    }
    fn is_latest_successful(&self, pipeline_id: i64) -> StoreResult<bool> {
        self.timed("is_latest_successful", || self.inner.is_latest_successful(pipeline_id))
    }
}

impl Imports for MeteredStore {
    fn put_verification(&self, archive_key: &str, outcome: &str) -> StoreResult<()> {
        self.timed("put_verification", || self.inner.put_verification(archive_key, outcome))
    }
    fn verification(&self, archive_key: &str) -> StoreResult<Option<String>> {
        self.timed("verification", || self.inner.verification(archive_key))
    }
    fn delete_verification(&self, archive_key: &str) -> StoreResult<()> {
        self.timed("delete_verification", || self.inner.delete_verification(archive_key))
    }
    fn insert_imported_job(
        &self,
        pipeline: Option<&NewPipeline>,
        job: &Job,
        token: Option<&TokenDigest>,
        leases: &[String],
    ) -> StoreResult<Job> {
        self.timed("insert_imported_job", || self.inner.insert_imported_job(pipeline, job, token, leases))
    }
    fn lease_blobs(&self, keys: &[String], now_ms: i64) -> StoreResult<()> {
        self.timed("lease_blobs", || self.inner.lease_blobs(keys, now_ms))
    }
    fn release_blobs(&self, keys: &[String]) -> StoreResult<()> {
        self.timed("release_blobs", || self.inner.release_blobs(keys))
    }
    fn claim_stale_lease(&self, key: &str, stale_before_ms: i64) -> StoreResult<bool> {
        self.timed("claim_stale_lease", || self.inner.claim_stale_lease(key, stale_before_ms))
    }
    fn blob_leases(&self) -> StoreResult<Vec<(String, i64)>> {
        self.timed("blob_leases", || self.inner.blob_leases())
    }
    fn referenced_blobs(&self) -> StoreResult<HashSet<String>> {
        self.timed("referenced_blobs", || self.inner.referenced_blobs())
    }
    fn verification_keys(&self) -> StoreResult<Vec<String>> {
        self.timed("verification_keys", || self.inner.verification_keys())
    }
}

impl Sessions for MeteredStore {
    fn open_session(&self, session: &BrowserSession, keep: Keep, now_ms: i64) -> StoreResult<()> {
        self.timed("open_session", || self.inner.open_session(session, keep, now_ms))
    }
    fn browser_session(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<TokenDigest>> {
        self.timed("browser_session", || self.inner.browser_session(id, now_ms))
    }
    fn close_session(&self, id: &TokenDigest) -> StoreResult<()> {
        self.timed("close_session", || self.inner.close_session(id))
    }
    fn put_grant(&self, grant: &PageGrant, keep: Keep, now_ms: i64) -> StoreResult<()> {
        self.timed("put_grant", || self.inner.put_grant(grant, keep, now_ms))
    }
    fn page_grant(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<PageGrant>> {
        self.timed("page_grant", || self.inner.page_grant(id, now_ms))
    }
}
