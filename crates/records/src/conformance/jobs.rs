//! The checks of [`Jobs`](crate::store::Jobs): pipelines, jobs, updates, retries, listings, refs.

use super::*;

pub(super) fn pipelines(s: &dyn Store) {
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

pub(super) fn jobs(s: &dyn Store) {
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

pub(super) fn job_updates(s: &dyn Store) {
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

pub(super) fn retries(s: &dyn Store) {
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

pub(super) fn listings(s: &dyn Store) {
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

pub(super) fn ref_resolution(s: &dyn Store) {
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

pub(super) fn latest_successful(s: &dyn Store) {
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
