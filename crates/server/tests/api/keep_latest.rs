//! GitLab's "Keep artifacts from most recent successful jobs" (#25): a project keeps, past
//! their expiry, the artifacts of the newest successful pipeline of each ref and of its
//! child pipelines; a newer success on the ref lets the older go; the setting turned off
//! lets every expired archive go at once. `job_artifacts_spec.rb` (GitLab 027f19b) line
//! 264, "when artifacts are locked": "allows access to expired artifact".

use std::time::{Duration, SystemTime};

use artifact_server::{ImportJob, Job, MIN_GC_GRACE, Status, Timestamp};
use axum::http::Method;
use serde_json::Value;

use crate::support::{PRIVATE, World, archive_file, fixture, private};

/// A successful build named `name` on `ref_name` with artifacts, in a new pipeline (or as a
/// child of `parent`); its JSON.
fn build(w: &World, ref_name: &str, name: &str, parent: Option<i64>) -> Value {
    let job = ImportJob {
        artifacts: Some(fixture("infozip-basic.zip")),
        parent_pipeline: parent,
        user: Some("developer".into()),
        ..ImportJob::new(PRIVATE, ref_name, name)
    };
    w.import(job)
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap()
}

fn pipeline(v: &Value) -> i64 {
    v["pipeline"]["id"].as_i64().unwrap()
}

/// Makes the job's artifacts expire a week ago.
fn expire(w: &World, job: i64) {
    let stored = w.store.job(job).unwrap().unwrap();
    let week_ago = Timestamp(Timestamp::now().0 - 7 * 24 * 3600 * 1000);
    assert!(w.store.update_job(&Job { artifacts_expire_at: Some(week_ago), ..stored }).unwrap());
}

/// The status of the single file, the archive, and the ref's single file of `job` (named
/// `name` on `main`), read by `user`. A read after a change made outside the API (an import,
/// the setting) is by a user who has not read before: the server remembers a caller's
/// look-ups for up to a second, which is how such changes are documented to show.
async fn reads(w: &World, job: i64, name: &str, user: &str) -> [u16; 3] {
    let mut out = [0; 3];
    for (i, uri) in [
        private(&format!("/jobs/{job}/artifacts/docs/readme.txt")),
        private(&format!("/jobs/{job}/artifacts")),
        private(&format!("/jobs/artifacts/main/raw/docs/readme.txt?job={name}")),
    ]
    .iter()
    .enumerate()
    {
        out[i] = w.get(uri, user).await.status.as_u16();
    }
    out
}

fn set_keep(w: &World, keep: bool) -> Value {
    w.admin.set_project(PRIVATE, Some(keep)).unwrap()
}

/// job_artifacts_spec.rb:264, "when artifacts are locked", "allows access to expired
/// artifact": the newest successful pipeline's expired artifacts are read by id and by ref;
/// the job shows them among `artifacts`, without `artifacts_file` (unexpired only), and the
/// past `artifacts_expire_at`, as GitLab's entity does.
#[tokio::test]
async fn when_artifacts_are_locked_expired_artifacts_stay_readable() {
    let w = World::new();
    let job = id(&build(&w, "main", "build", None));
    expire(&w, job);
    assert_eq!(reads(&w, job, "build", "reporter").await, [200, 200, 200]);
    let shown = w.get(&private(&format!("/jobs/{job}")), "reporter").await.json();
    assert!(shown.get("artifacts_file").is_none(), "{shown}");
    let kinds: Vec<&str> =
        shown["artifacts"].as_array().unwrap().iter().map(|a| a["file_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["archive", "metadata"]);
    assert!(shown["artifacts_expire_at"].as_str().unwrap() < Timestamp::now().to_string().as_str());
    // Keeping for good asks for unexpired artifacts, as GitLab's `artifacts?`.
    let r = w.post(&private(&format!("/jobs/{job}/artifacts/keep")), "maintainer").await;
    r.expect(404, r#"{"message":"404 Not found"}"#);
}

/// A newer successful pipeline on the ref lets the older one's expired artifacts go; a
/// newer failed or running one does not (the ref's newest success is still the same).
#[tokio::test]
async fn a_newer_success_on_the_ref_lets_the_older_go() {
    let w = World::new();
    let first = id(&build(&w, "main", "build", None));
    expire(&w, first);
    let failed = w.import(ImportJob { status: Status::Failed, ..w.job("build") });
    let running = w.import(ImportJob { status: Status::Running, ..w.job("test") });
    assert_eq!(
        (failed["pipeline"]["status"].as_str(), running["pipeline"]["status"].as_str()),
        (Some("failed"), Some("running"))
    );
    assert_eq!(
        reads(&w, first, "build", "reporter").await,
        [200, 200, 200],
        "a failed or running pipeline keeps nothing from going"
    );
    let second = id(&build(&w, "main", "build", None));
    assert_eq!(
        reads(&w, first, "build", "developer").await[..2],
        [404, 404],
        "the older pipeline's expired archive is gone"
    );
    // The ref now resolves to the newer one, and its expired artifacts are kept in turn.
    expire(&w, second);
    assert_eq!(reads(&w, second, "build", "maintainer").await, [200, 200, 200]);
    // An unexpired archive of an older pipeline is read as ever.
    let old_live = id(&w.import(ImportJob { artifacts: Some(fixture("infozip-basic.zip")), ..w.job("lint") }));
    let _newest = build(&w, "main", "build", None);
    assert_eq!(w.get(&private(&format!("/jobs/{old_live}/artifacts")), "reporter").await.status, 200);
}

/// A child pipeline's jobs are kept with their parent's pipeline, and the ref's single file
/// finds an expired child job's file.
#[tokio::test]
async fn child_pipelines_of_the_newest_success_are_kept() {
    let w = World::new();
    let parent = build(&w, "main", "build", None);
    let child = id(&build(&w, "main", "rspec", Some(pipeline(&parent))));
    expire(&w, id(&parent));
    expire(&w, child);
    assert_eq!(reads(&w, child, "rspec", "reporter").await, [200, 200, 200]);
    assert_eq!(reads(&w, id(&parent), "build", "reporter").await, [200, 200, 200]);
    build(&w, "main", "build", None);
    assert_eq!(
        reads(&w, child, "rspec", "developer").await,
        [404, 404, 404],
        "the newer root pipeline has no rspec job"
    );
}

/// Each ref keeps its own newest success; another ref's pipelines change nothing.
#[tokio::test]
async fn each_ref_keeps_its_own() {
    let w = World::new();
    let main = id(&build(&w, "main", "build", None));
    let feature = id(&build(&w, "feature/x", "build", None));
    expire(&w, main);
    expire(&w, feature);
    build(&w, "feature/x", "build", None);
    assert_eq!(reads(&w, main, "build", "reporter").await, [200, 200, 200]);
    let r = w.get(&private(&format!("/jobs/{feature}/artifacts")), "reporter").await;
    assert_eq!(r.status, 404, "feature/x has a newer success");
}

/// `artifact admin project set PATH --keep-latest-artifacts false`: expired archives go at
/// once, including the newest; back on, they are read again (nothing was removed). The
/// project's JSON shows the setting to maintainers (GitLab's `keep_latest_artifact`).
#[tokio::test]
async fn turning_the_setting_off_lets_every_expired_archive_go() {
    let w = World::new();
    let job = id(&build(&w, "main", "build", None));
    expire(&w, job);
    let shown = w.get(&private(""), "maintainer").await.json();
    assert_eq!(shown["keep_latest_artifact"], true, "on by default");
    assert!(w.get(&private(""), "reporter").await.json().get("keep_latest_artifact").is_none());
    assert_eq!(set_keep(&w, false)["keep_latest_artifact"], false);
    assert_eq!(reads(&w, job, "build", "reporter").await, [404, 404, 404]);
    let shown = w.get(&private(&format!("/jobs/{job}")), "reporter").await.json();
    assert_eq!(shown["artifacts"].as_array().unwrap().len(), 0, "{shown}");
    assert_eq!(w.get(&private(""), "maintainer").await.json()["keep_latest_artifact"], false);
    assert_eq!(set_keep(&w, true)["keep_latest_artifact"], true);
    assert_eq!(reads(&w, job, "build", "developer").await, [200, 200, 200]);
    assert!(w.admin.set_project("group/none", Some(false)).is_err());
}

/// `admin gc` never removes what is kept (it removes only blobs no job refers to), however
/// old the archive is.
#[tokio::test]
async fn gc_leaves_kept_artifacts() {
    let w = World::new();
    let job = id(&build(&w, "main", "build", None));
    expire(&w, job);
    let file = std::fs::File::options().write(true).open(archive_file(&w, job)).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();
    let archive = w.store.job(job).unwrap().unwrap().archive.unwrap().key;
    let collected = w.admin.gc(MIN_GC_GRACE, false).unwrap();
    assert!(!collected.blobs.contains(&archive) && !collected.verifications.contains(&archive), "{collected:?}");
    assert_eq!(reads(&w, job, "build", "reporter").await, [200, 200, 200]);
}

/// A cycle of parents (a bridge in each of two pipelines naming the other as downstream,
/// which an import can make) ends the walk: neither is a root, so neither is kept.
#[tokio::test]
async fn a_cycle_of_parent_pipelines_ends_the_walk() {
    let w = World::new();
    let a = pipeline(&build(&w, "main", "build", None));
    let b = pipeline(&build(&w, "main", "build", None));
    let bridge = |into: i64, downstream: i64| ImportJob {
        pipeline: Some(into),
        bridge: true,
        downstream: Some(downstream),
        artifacts: None,
        ..w.job("trigger")
    };
    w.import(bridge(a, b));
    w.import(bridge(b, a));
    let (pa, pb) = (w.store.pipeline(a).unwrap().unwrap(), w.store.pipeline(b).unwrap().unwrap());
    assert_eq!((pa.parent_id, pb.parent_id), (Some(b), Some(a)), "the import made a cycle");
    assert!(!w.store.is_latest_successful(a).unwrap());
    assert!(!w.store.is_latest_successful(b).unwrap());
    let r = w.send(Method::GET, &private("/jobs/artifacts/main/download?job=build"), Some("reporter"), &[]).await;
    assert_eq!(r.status, 404, "no root pipeline on main");
}
