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

fn users(s: &dyn Store) {
    let u = s.create_user("conf-user", "Conformance", true).expect("create a user");
    assert_eq!((u.username.as_str(), u.name.as_str(), u.admin), ("conf-user", "Conformance", true));
    assert_eq!(s.user(u.id).unwrap(), Some(u.clone()), "a user reads back by id");
    assert_eq!(s.user_by_username("conf-user").unwrap(), Some(u.clone()), "and by name");
    assert!(matches!(s.create_user("conf-user", "Again", false), Err(StoreError::Exists(_))), "names are unique");
    assert_eq!(s.user_by_username("conf-nobody").unwrap(), None);
    assert_eq!(s.user(i64::MAX).unwrap(), None);
}

fn tokens(s: &dyn Store) {
    let u = s.create_user("conf-token-owner", "Owner", false).unwrap();
    let d = digest("conf-token");
    let t = s.create_token(u.id, &d, &[Scope::ReadApi, Scope::Api], Some("2031-01-02")).unwrap();
    assert_eq!(
        (t.user_id, t.scopes.as_slice(), t.expires_at.as_deref()),
        (u.id, &[Scope::ReadApi, Scope::Api][..], Some("2031-01-02"))
    );
    assert!(!t.revoked);
    assert_eq!(s.personal_token(&d).unwrap(), Some((t.clone(), u.clone())), "a token reads back with its user");
    assert_eq!(s.personal_token_by_id(t.id).unwrap(), Some(t.clone()));
    assert_eq!(s.personal_token(&digest("conf-no-such-token")).unwrap(), None);
    let plain = s.create_token(u.id, &digest("conf-token-2"), &[], None).unwrap();
    assert_eq!(s.personal_token_by_id(plain.id).unwrap().map(|t| (t.scopes, t.expires_at)), Some((vec![], None)));
    assert!(s.revoke_token(t.id).unwrap(), "revoked");
    assert!(!s.revoke_token(t.id).unwrap(), "once");
    assert!(!s.revoke_token(i64::MAX).unwrap(), "no such token");
    let revoked = s.personal_token(&d).unwrap().expect("a revoked token still reads back");
    assert!(revoked.0.revoked);
}

fn projects_and_members(s: &dyn Store) {
    let p = s.create_project("conf/members", true).unwrap();
    assert!(p.public && p.keep_latest_artifact, "a new project keeps its latest artifacts");
    assert_eq!(s.project(&ProjectRef::Id(p.id)).unwrap(), Some(p.clone()));
    assert_eq!(s.project(&ProjectRef::Path("conf/members".into())).unwrap(), Some(p.clone()));
    assert_eq!(s.project(&ProjectRef::Path("conf/none".into())).unwrap(), None);
    assert!(matches!(s.create_project("conf/members", false), Err(StoreError::Exists(_))), "paths are unique");

    assert!(s.set_keep_latest_artifact(p.id, false).unwrap());
    assert!(!s.project(&ProjectRef::Id(p.id)).unwrap().unwrap().keep_latest_artifact);
    assert!(!s.set_keep_latest_artifact(i64::MAX, true).unwrap(), "no such project");

    let u = s.create_user("conf-member", "Member", false).unwrap();
    assert_eq!(s.role(p.id, u.id).unwrap(), None);
    s.set_member(p.id, u.id, Role::Reporter).unwrap();
    assert_eq!(s.role(p.id, u.id).unwrap(), Some(Role::Reporter));
    s.set_member(p.id, u.id, Role::Maintainer).unwrap();
    assert_eq!(s.role(p.id, u.id).unwrap(), Some(Role::Maintainer), "a member's role is replaced");
}

fn pipelines(s: &dyn Store) {
    let p = project(s, "conf/pipelines");
    let who = s.create_user("conf-pipeline-user", "User", false).unwrap();
    let parent = pipeline(s, p, "main");
    let new = NewPipeline {
        project_id: p,
        ref_name: "v1.0".into(),
        tag: true,
        sha: "cafe".into(),
        source: "parent_pipeline".into(),
        parent_id: Some(parent),
        user_id: Some(who.id),
    };
    let made = s.create_pipeline(&new).unwrap();
    let read = s.pipeline(made.id).unwrap().unwrap();
    assert_eq!(read, made, "every field reads back");
    assert_eq!((read.tag, read.parent_id, read.user_id), (true, Some(parent), Some(who.id)));
    let other = project(s, "conf/pipelines-other");
    let a = s.pipeline(pipeline(s, p, "main")).unwrap().unwrap();
    let b = s.pipeline(pipeline(s, p, "main")).unwrap().unwrap();
    let c = s.pipeline(pipeline(s, other, "main")).unwrap().unwrap();
    assert_eq!((a.iid, b.iid, c.iid), (3, 4, 1), "pipelines are numbered per project");
    assert_eq!(
        (a.status, a.ref_name.as_str(), a.sha.as_str(), a.source.as_str()),
        (Status::Created, "main", "0123abcd", "push")
    );
    assert_eq!(s.pipeline(i64::MAX).unwrap(), None);
}

fn jobs(s: &dyn Store) {
    let p = project(s, "conf/jobs");
    let pl = pipeline(s, p, "main");
    let d = digest("conf-job-token");
    let owner = s.create_user("conf-job-owner", "Owner", false).unwrap();
    let downstream = pipeline(s, p, "other");
    // Every column set, each to a value of its own, so that two columns swapped show.
    let full = Job {
        allow_failure: true,
        failure_reason: Some("script_failure".into()),
        user_id: Some(owner.id),
        started_at: Some(Timestamp(1_700_000_000_200)),
        finished_at: Some(Timestamp(1_700_000_000_300)),
        erased_at: Some(Timestamp(1_700_000_000_400)),
        erased_by: Some(owner.id),
        trace: Some(BlobRef { key: "conf-build/trace".into(), size: 78 }),
        artifacts_expire_at: Some(Timestamp(1_700_000_000_500)),
        downstream_pipeline_id: Some(downstream),
        when: When::Manual,
        ..job(p, pl, "conf-build", Status::Running)
    };
    let stored = s.insert_job(&full, Some(&d)).unwrap();
    assert!(stored.id > 0);
    assert_eq!(s.job(stored.id).unwrap(), Some(stored.clone()), "every field reads back");
    assert_eq!(s.job_by_token(&d).unwrap().map(|j| j.id), Some(stored.id));
    assert_eq!(s.job(i64::MAX).unwrap(), None);
    assert_eq!(s.pipeline(pl).unwrap().unwrap().status, Status::Running, "the pipeline follows its jobs");

    // A bridge's downstream pipeline becomes its pipeline's child, never a cycle.
    let child = pipeline(s, p, "main");
    let bridge = Job {
        kind: JobKind::Bridge,
        downstream_pipeline_id: Some(child),
        ..job(p, pl, "conf-bridge", Status::Success)
    };
    s.insert_job(&bridge, None).unwrap();
    let child = s.pipeline(child).unwrap().unwrap();
    assert_eq!((child.parent_id, child.source.as_str()), (Some(pl), "parent_pipeline"));
    let back = Job {
        kind: JobKind::Bridge,
        downstream_pipeline_id: Some(pl),
        ..job(p, child.id, "conf-back", Status::Success)
    };
    s.insert_job(&back, None).unwrap();
    assert_eq!(s.pipeline(pl).unwrap().unwrap().parent_id, None, "an ancestor never becomes a child");
}

fn job_updates(s: &dyn Store) {
    let p = project(s, "conf/updates");
    let pl = pipeline(s, p, "main");
    let d = digest("conf-update-token");
    let stored = s.insert_job(&job(p, pl, "conf-update", Status::Pending), Some(&d)).unwrap();
    let running = Job { status: Status::Running, started_at: Some(Timestamp(1_700_000_008_000)), ..stored.clone() };
    assert!(s.update_job(&running).unwrap());
    assert_eq!(s.job_by_token(&d).unwrap().map(|j| j.id), Some(stored.id), "a running job keeps its token");
    let stored = s.job(stored.id).unwrap().unwrap();
    let done = Job {
        status: Status::Success,
        finished_at: Some(Timestamp(1_700_000_009_000)),
        trace: Some(BlobRef { key: "conf-update/trace".into(), size: 9 }),
        ..stored.clone()
    };
    assert!(s.update_job(&done).unwrap(), "a write with the version it read");
    assert!(!s.update_job(&done).unwrap(), "the same version again is stale");
    let now = s.job(stored.id).unwrap().unwrap();
    assert_eq!(now.lock_version, stored.lock_version + 1);
    assert_eq!(stored.lock_version, 1, "each write bumps the version");
    assert_eq!(Job { lock_version: done.lock_version, ..now }, done, "the write reads back");
    assert_eq!(s.job_by_token(&d).unwrap(), None, "a finished job's token is gone");
    assert_eq!(s.pipeline(pl).unwrap().unwrap().status, Status::Success);
}

fn retries(s: &dyn Store) {
    let p = project(s, "conf/retries");
    let pl = pipeline(s, p, "main");
    let old = s.insert_job(&job(p, pl, "conf-retry", Status::Failed), None).unwrap();
    assert_eq!(s.pipeline(pl).unwrap().unwrap().status, Status::Failed);
    let new = s.retry_job(&old, &job(p, pl, "conf-retry", Status::Pending)).unwrap().expect("retried");
    assert!(new.id > old.id && !new.retried);
    assert!(s.job(old.id).unwrap().unwrap().retried, "the old job is marked retried");
    assert_eq!(s.pipeline(pl).unwrap().unwrap().status, Status::Pending, "retried jobs stop counting");
    assert_eq!(s.retry_job(&old, &job(p, pl, "conf-retry", Status::Pending)).unwrap(), None, "a retry happens once");

    // A job that changed since it was read is not retried (its version alone says so).
    let other = s.insert_job(&job(p, pl, "conf-retry-2", Status::Failed), None).unwrap();
    assert!(s.update_job(&Job { coverage: Some(1.0), ..other.clone() }).unwrap());
    assert_eq!(s.retry_job(&other, &job(p, pl, "conf-retry-2", Status::Pending)).unwrap(), None, "stale");
    assert!(!s.job(other.id).unwrap().unwrap().retried);

    // Every other job of the name in the pipeline is marked retried too.
    let twin = s.insert_job(&job(p, pl, "conf-twin", Status::Failed), None).unwrap();
    let twin2 = s.insert_job(&job(p, pl, "conf-twin", Status::Failed), None).unwrap();
    let fresh = s.retry_job(&twin2, &job(p, pl, "conf-twin", Status::Pending)).unwrap().unwrap();
    assert!(s.job(twin.id).unwrap().unwrap().retried && !s.job(fresh.id).unwrap().unwrap().retried);
}

fn listings(s: &dyn Store) {
    let p = project(s, "conf/listings");
    let (a, b) = (pipeline(s, p, "main"), pipeline(s, p, "main"));
    let mut ids = Vec::new();
    for (pl, name, status) in
        [(a, "l1", Status::Success), (a, "l2", Status::Failed), (b, "l3", Status::Success), (b, "l4", Status::Running)]
    {
        ids.push(s.insert_job(&job(p, pl, name, status), None).unwrap().id);
    }
    let retried = s.insert_job(&job(p, b, "l5", Status::Failed), None).unwrap();
    s.retry_job(&retried, &job(p, b, "l5", Status::Pending)).unwrap().unwrap();
    let q = JobQuery {
        project_id: p,
        pipeline_id: None,
        kind: JobKind::Build,
        scope: vec![],
        include_retried: false,
        newest_first: true,
        before_id: None,
        count: true,
        offset: 0,
        limit: 100,
    };
    let names = |q: &JobQuery| s.list_jobs(q).unwrap().rows.into_iter().map(|j| j.name).collect::<Vec<_>>();
    assert_eq!(names(&q), ["l5", "l4", "l3", "l2", "l1"], "newest first, retried left out");
    assert_eq!(s.list_jobs(&q).unwrap().total, 5);
    assert_eq!(names(&JobQuery { include_retried: true, ..q.clone() }).len(), 6);
    assert_eq!(names(&JobQuery { newest_first: false, pipeline_id: Some(a), ..q.clone() }), ["l1", "l2"]);
    assert_eq!(names(&JobQuery { scope: vec![Status::Success, Status::Running], ..q.clone() }), ["l4", "l3", "l1"]);
    let page = s.list_jobs(&JobQuery { offset: 1, limit: 2, ..q.clone() }).unwrap();
    assert_eq!((page.rows.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(), page.total), (vec!["l4", "l3"], 5));
    assert_eq!(names(&JobQuery { before_id: Some(ids[2]), count: false, ..q.clone() }), ["l2", "l1"]);
    assert_eq!(names(&JobQuery { kind: JobKind::Bridge, ..q.clone() }).len(), 0);
}

fn ref_resolution(s: &dyn Store) {
    let p = project(s, "conf/refs");
    let now = 1_700_000_000_000;
    // A successful parent whose child holds the job; a newer pipeline still running.
    let (_, child) = parent_and_child(s, p, "trigger");
    let expiring =
        Job { artifacts_expire_at: Some(Timestamp(now + 1000)), ..job(p, child, "conf-ref", Status::Success) };
    let found = s.insert_job(&expiring, None).unwrap();
    let running = pipeline(s, p, "main");
    s.insert_job(&job(p, running, "conf-ref", Status::Running), None).unwrap();
    let resolve = |live_at| s.latest_job_with_artifacts(p, "main", "conf-ref", live_at).unwrap().map(|j| j.id);
    assert_eq!(resolve(Some(now)), Some(found.id), "the newest successful pipeline, through its child");
    assert_eq!(resolve(Some(now + 1000)), None, "an expired archive does not count");
    assert_eq!(resolve(None), Some(found.id), "unless expired archives count");
    assert_eq!(s.latest_job_with_artifacts(p, "other", "conf-ref", None).unwrap(), None);
    assert_eq!(s.latest_job_with_artifacts(p, "main", "conf-none", None).unwrap(), None);

    // The parent's own job comes before its child's; retried jobs, bridges and jobs
    // without an archive do not count.
    let q = project(s, "conf/refs-order");
    let (parent, child) = parent_and_child(s, q, "conf-order");
    let in_child = s.insert_job(&job(q, child, "conf-order", Status::Success), None).unwrap();
    let in_parent = s.insert_job(&job(q, parent, "conf-order", Status::Success), None).unwrap();
    let resolve = |name| s.latest_job_with_artifacts(q, "main", name, None).unwrap().map(|j| j.id);
    assert_eq!(resolve("conf-order"), Some(in_parent.id), "parent first");
    let no_archive = Job { archive: None, ..job(q, parent, "conf-bare", Status::Success) };
    s.insert_job(&no_archive, None).unwrap();
    assert_eq!(resolve("conf-bare"), None, "a job without an archive");
    let retried = s.insert_job(&job(q, parent, "conf-again", Status::Success), None).unwrap();
    let again = s.retry_job(&retried, &Job { archive: None, ..job(q, parent, "conf-again", Status::Success) });
    assert!(again.unwrap().is_some());
    assert_eq!(resolve("conf-again"), None, "a retried job");
    let _ = in_child;
}

fn latest_successful(s: &dyn Store) {
    let p = project(s, "conf/latest");
    let old = pipeline(s, p, "main");
    s.insert_job(&job(p, old, "conf-latest", Status::Success), None).unwrap();
    assert!(s.is_latest_successful(old).unwrap());
    let (new, child) = parent_and_child(s, p, "go");
    assert!(s.is_latest_successful(new).unwrap() && s.is_latest_successful(child).unwrap(), "a child counts");
    assert!(!s.is_latest_successful(old).unwrap(), "a newer success replaces it");
    let failing = pipeline(s, p, "main");
    s.insert_job(&job(p, failing, "conf-latest", Status::Failed), None).unwrap();
    assert!(!s.is_latest_successful(failing).unwrap() && s.is_latest_successful(new).unwrap());

    // A pipeline that succeeded counts while a retry runs it again.
    let retried = pipeline(s, p, "main");
    let done = s.insert_job(&job(p, retried, "conf-latest", Status::Success), None).unwrap();
    s.retry_job(&done, &job(p, retried, "conf-latest", Status::Pending)).unwrap().unwrap();
    assert_eq!(s.pipeline(retried).unwrap().unwrap().status, Status::Pending);
    assert!(s.is_latest_successful(retried).unwrap(), "succeeded once, kept through a retry");

    // A tag of the branch's name is another ref.
    let tag = s.create_pipeline(&new_pipeline(p, "main", true)).unwrap().id;
    s.insert_job(&job(p, tag, "conf-latest", Status::Success), None).unwrap();
    assert!(s.is_latest_successful(tag).unwrap() && s.is_latest_successful(retried).unwrap());
}

fn verifications(s: &dyn Store) {
    assert_eq!(s.verification("conf/v.zip").unwrap(), None);
    s.put_verification("conf/v.zip", r#"{"ok":1}"#).unwrap();
    s.put_verification("conf/v.zip", r#"{"ok":2}"#).unwrap();
    assert_eq!(s.verification("conf/v.zip").unwrap().as_deref(), Some(r#"{"ok":2}"#), "replaced");
    assert!(s.verification_keys().unwrap().contains(&"conf/v.zip".to_owned()));
    s.delete_verification("conf/v.zip").unwrap();
    assert_eq!(s.verification("conf/v.zip").unwrap(), None);
    assert!(!s.verification_keys().unwrap().contains(&"conf/v.zip".to_owned()));
}

fn leases_and_imports(s: &dyn Store) {
    let p = project(s, "conf/imports");
    let keys = vec!["conf-import/archive.zip".to_owned(), "conf-import/metadata.gz".to_owned()];
    s.lease_blobs(&keys, 1000).unwrap();
    s.lease_blobs(&keys[..1], 2000).unwrap();
    let mut leases = s.blob_leases().unwrap();
    leases.retain(|(k, _)| k.starts_with("conf-import/"));
    leases.sort();
    assert_eq!(leases, [(keys[0].clone(), 2000), (keys[1].clone(), 1000)], "a lease is renewed");

    let new = new_pipeline(p, "main", false);
    let imported = job(p, 0, "conf-import", Status::Success);
    let stored = s.insert_imported_job(Some(&new), &imported, None, &keys).unwrap();
    assert!(s.pipeline(stored.pipeline_id).unwrap().is_some(), "its new pipeline is stored with it");
    assert!(s.blob_leases().unwrap().iter().all(|(k, _)| !keys.contains(k)), "its leases are given up");
    let referenced = s.referenced_blobs().unwrap();
    assert!(referenced.contains("conf-import/archive.zip") && referenced.contains("conf-import/metadata.gz"));

    // One of its leases collected meanwhile: nothing is stored, and the lease that was
    // still there is still there (one transaction).
    let before = s.list_jobs(&all_jobs(p)).unwrap().total;
    let held = vec!["conf-held".to_owned(), "conf-collected".to_owned()];
    s.lease_blobs(&held[..1], 3000).unwrap();
    let lost = s.insert_imported_job(Some(&new), &job(p, 0, "conf-lost", Status::Success), None, &held);
    assert!(matches!(lost, Err(StoreError::Missing(_))), "{lost:?}");
    assert_eq!(s.list_jobs(&all_jobs(p)).unwrap().total, before, "no job");
    assert!(s.blob_leases().unwrap().contains(&("conf-held".to_owned(), 3000)), "the held lease is back");
    let next = s.create_pipeline(&new).unwrap();
    assert_eq!(next.iid, s.pipeline(stored.pipeline_id).unwrap().unwrap().iid + 1, "no pipeline either");
    s.release_blobs(&held).unwrap();

    s.lease_blobs(&["conf-stale".to_owned(), "conf-fresh".to_owned()], 1000).unwrap();
    assert!(!s.claim_stale_lease("conf-stale", 1000).unwrap(), "renewed at the bound: not stale");
    assert!(s.claim_stale_lease("conf-stale", 1001).unwrap(), "stale: claimed");
    assert!(!s.claim_stale_lease("conf-stale", 1001).unwrap(), "once");
    s.release_blobs(&["conf-fresh".to_owned()]).unwrap();
    assert!(s.blob_leases().unwrap().iter().all(|(k, _)| !k.starts_with("conf-")));
}

fn all_jobs(project_id: i64) -> JobQuery {
    JobQuery {
        project_id,
        pipeline_id: None,
        kind: JobKind::Build,
        scope: vec![],
        include_retried: true,
        newest_first: true,
        before_id: None,
        count: true,
        offset: 0,
        limit: 1,
    }
}

fn sessions(s: &dyn Store) {
    let keep = Keep { per_token: 2, total: 100 };
    let token = digest("conf-session-token");
    let session = |n: &str, expires_at| BrowserSession { id: digest(n), token, expires_at };
    s.open_session(&session("conf-s1", 5000), keep, 1000).unwrap();
    assert_eq!(s.browser_session(&digest("conf-s1"), 4999).unwrap(), Some(token));
    assert_eq!(s.browser_session(&digest("conf-s1"), 5000).unwrap(), None, "expired");
    s.open_session(&session("conf-s2", 6000), keep, 1000).unwrap();
    s.open_session(&session("conf-s3", 7000), keep, 1000).unwrap();
    assert_eq!(s.browser_session(&digest("conf-s1"), 1000).unwrap(), None, "past the bound of a token");
    assert_eq!(s.browser_session(&digest("conf-s3"), 1000).unwrap(), Some(token));
    s.close_session(&digest("conf-s3")).unwrap();
    assert_eq!(s.browser_session(&digest("conf-s3"), 1000).unwrap(), None, "closed");

    let small = Keep { per_token: 10, total: 2 };
    for n in 0..3 {
        let other = BrowserSession {
            id: digest(&format!("conf-t{n}")),
            token: digest(&format!("conf-tt{n}")),
            expires_at: 9000,
        };
        s.open_session(&other, small, 1000).unwrap();
    }
    assert_eq!(s.browser_session(&digest("conf-t0"), 1000).unwrap(), None, "past the bound of all");
    assert!(s.browser_session(&digest("conf-t1"), 1000).unwrap().is_some(), "the bound, not fewer");
    assert!(s.browser_session(&digest("conf-t2"), 1000).unwrap().is_some());
}

fn grants(s: &dyn Store) {
    let keep = Keep { per_token: 10, total: 100 };
    let grant = PageGrant {
        id: digest("conf-g1"),
        token: digest("conf-gt"),
        project: "conf/p".into(),
        job: 7,
        expires_at: 5000,
    };
    s.put_grant(&grant, keep, 1000).unwrap();
    s.put_grant(&PageGrant { job: 8, ..grant.clone() }, keep, 1000).unwrap();
    assert_eq!(s.page_grant(&grant.id, 1000).unwrap(), Some(grant.clone()), "the same id again changes nothing");
    assert_eq!(s.page_grant(&grant.id, 5000).unwrap(), None, "expired");
    assert_eq!(s.page_grant(&digest("conf-g2"), 1000).unwrap(), None);

    let two = Keep { per_token: 2, total: 100 };
    for (n, expires_at) in [(3, 6000), (4, 7000), (5, 8000)] {
        let g = PageGrant { id: digest(&format!("conf-g{n}")), expires_at, ..grant.clone() };
        s.put_grant(&g, two, 1000).unwrap();
    }
    assert_eq!(s.page_grant(&digest("conf-g3"), 1000).unwrap(), None, "past the bound of a token");
    assert!(s.page_grant(&digest("conf-g5"), 1000).unwrap().is_some());
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
