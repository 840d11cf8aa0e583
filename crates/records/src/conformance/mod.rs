//! The contract of [`Store`], as checks that any backend must pass (feature `conformance`).
//!
//! Every method of the four concerns is called and its answer checked (and, with a second
//! handle, [`announcements`] checks what [`Store::subscribe`] hears): what is written
//! reads back the same, names are unique, compare-and-set refuses a stale write, a retry
//! happens once, listings filter, order and count, ref resolution walks child pipelines,
//! leases guard imports, sessions and grants expire and stay within their bounds. A
//! backend's own test calls [`run`] on a new, empty store:
//!
//! ```no_run
//! # fn open_my_store() -> artifact_records::SqliteStore { unimplemented!() }
//! artifact_records::conformance::run(&open_my_store());
//! ```
//!
//! A failed check panics with its name and what differed, as an assertion in a test does.
//! The checks share the store and make their own users, projects and keys, so that they
//! run one after another on one database.

mod identities;
mod imports;
mod jobs;
mod sessions;

use self::identities::*;
use self::imports::*;
use self::jobs::*;
use self::sessions::*;
use crate::model::{BlobRef, Job, JobKind, Role, Scope, Status, When};
use crate::store::{
    BrowserSession, JobQuery, Keep, NewPipeline, PageGrant, ProjectRef, Store, StoreError, TokenDigest,
};
use crate::time::Timestamp;

/// One check: panics if the store breaks the contract.
pub type Check = fn(&dyn Store);

/// The checks, by name, in the order [`run`] runs them.
pub const CHECKS: &[(&str, Check)] = &[
    ("users", users),
    ("tokens", tokens),
    ("projects_and_members", projects_and_members),
    ("pipelines", pipelines),
    ("jobs", jobs),
    ("job_updates", job_updates),
    ("retries", retries),
    ("listings", listings),
    ("ref_resolution", ref_resolution),
    ("latest_successful", latest_successful),
    ("verifications", verifications),
    ("leases_and_imports", leases_and_imports),
    ("sessions", sessions),
    ("grants", grants),
    ("health", health),
];

/// Runs every check of [`CHECKS`] on `store`, which should start empty.
pub fn run(store: &dyn Store) {
    for (_, check) in CHECKS {
        check(store);
    }
}

fn project(s: &dyn Store, path: &str) -> i64 {
    s.create_project(path, false).expect("create a project").id
}

/// A pipeline of `project_id` on the branch or tag `ref_name`, pushed.
fn new_pipeline(project_id: i64, ref_name: &str, tag: bool) -> NewPipeline {
    NewPipeline {
        project_id,
        ref_name: ref_name.into(),
        tag,
        sha: "0123abcd".into(),
        source: "push".into(),
        parent_id: None,
        user_id: None,
    }
}

fn pipeline(s: &dyn Store, project_id: i64, ref_name: &str) -> i64 {
    s.create_pipeline(&new_pipeline(project_id, ref_name, false)).expect("create a pipeline").id
}

/// A job of `pipeline_id` as a caller would store it (`id` and `lock_version` are the
/// store's).
fn job(project_id: i64, pipeline_id: i64, name: &str, status: Status) -> Job {
    Job {
        id: 0,
        project_id,
        pipeline_id,
        kind: JobKind::Build,
        name: name.into(),
        stage: "test".into(),
        status,
        when: When::OnSuccess,
        allow_failure: false,
        retried: false,
        coverage: Some(81.5),
        failure_reason: None,
        user_id: None,
        created_at: Timestamp(1_700_000_000_000),
        queued_at: Some(Timestamp(1_700_000_000_100)),
        started_at: None,
        finished_at: None,
        erased_at: None,
        erased_by: None,
        archive: Some(BlobRef { key: format!("{name}/archive.zip"), size: 1234 }),
        metadata: Some(BlobRef { key: format!("{name}/metadata.gz"), size: 56 }),
        trace: None,
        artifacts_expire_at: None,
        tag_list: vec!["linux".into(), "docker".into()],
        downstream_pipeline_id: None,
        lock_version: 0,
    }
}

/// A pipeline of `project` on `main` and, by a bridge named `bridge` that succeeded in it,
/// its child.
fn parent_and_child(s: &dyn Store, project: i64, bridge: &str) -> (i64, i64) {
    let parent = pipeline(s, project, "main");
    let child = pipeline(s, project, "main");
    let trigger = Job {
        kind: JobKind::Bridge,
        downstream_pipeline_id: Some(child),
        ..job(project, parent, bridge, Status::Success)
    };
    s.insert_job(&trigger, None).unwrap();
    (parent, child)
}

fn digest(name: &str) -> TokenDigest {
    TokenDigest::of(name)
}

/// That every change another handle must hear of is announced (see
/// [`Store::subscribe`]): each is made through `writer`, and `listener` (another handle to
/// the same data) must call its hook within `within`. For a backend that announces changes
/// (PostgreSQL); SQLite tells no one, by design.
pub fn announcements(writer: &dyn Store, listener: &dyn Store, within: std::time::Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    listener
        .subscribe(std::sync::Arc::new(move || {
            let _ = tx.lock().unwrap_or_else(|p| p.into_inner()).send(());
        }))
        .expect("subscribing");
    rx.recv_timeout(within).expect("a listener says it listens once it does");
    let heard = |what: &str| {
        rx.recv_timeout(within).unwrap_or_else(|_| panic!("{what} was not announced within {within:?}"));
        while rx.try_recv().is_ok() {}
    };
    let s = writer;
    let p = project(s, "conf/announced");
    let pl = pipeline(s, p, "main");
    let u = s.create_user("conf-announced", "A", false).unwrap();
    let t = s.create_token(u.id, &digest("conf-announced-token"), &[Scope::Api], None).unwrap();
    while rx.try_recv().is_ok() {}
    let j = s.insert_job(&job(p, pl, "conf-announced", Status::Running), None).unwrap();
    heard("insert_job");
    assert!(s.update_job(&Job { status: Status::Failed, ..j.clone() }).unwrap());
    heard("update_job");
    let j = s.job(j.id).unwrap().unwrap();
    s.retry_job(&j, &job(p, pl, "conf-announced", Status::Pending)).unwrap().unwrap();
    heard("retry_job");
    assert!(s.revoke_token(t.id).unwrap());
    heard("revoke_token");
    s.set_member(p, u.id, Role::Developer).unwrap();
    heard("set_member");
    assert!(s.set_keep_latest_artifact(p, false).unwrap());
    heard("set_keep_latest_artifact");
    let new = new_pipeline(p, "main", false);
    s.insert_imported_job(Some(&new), &job(p, 0, "conf-announced-import", Status::Success), None, &[]).unwrap();
    heard("insert_imported_job");
}

fn health(s: &dyn Store) {
    s.check().expect("a store that answers");
    s.subscribe(std::sync::Arc::new(|| {})).expect("subscribing");
}
