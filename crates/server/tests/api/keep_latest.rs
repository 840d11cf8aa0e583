//! GitLab's "Keep artifacts from most recent successful jobs" (#25): a project keeps, past
//! their expiry, the artifacts of the newest successful pipeline of each ref and of its
//! child pipelines; a newer success on the ref lets the older go; the setting turned off
//! lets every expired archive go at once. `job_artifacts_spec.rb` (GitLab 027f19b) line
//! 264, "when artifacts are locked": "allows access to expired artifact".

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use artifact_server::{
    Admin, ImportJob, LocalBlobs, MIN_GC_GRACE, PostgresStore, ProjectRef, SqliteStore, Status, Store, Timestamp,
};
use artifact_testkit::postgres::PostgresServer;
use serde_json::Value;

use crate::support::{Backend, PRIVATE, World, archive_file, expire_a_week_ago, fixture, private};

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
    expire_a_week_ago(&w, job);
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
    expire_a_week_ago(&w, first);
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
    expire_a_week_ago(&w, second);
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
    expire_a_week_ago(&w, id(&parent));
    expire_a_week_ago(&w, child);
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
    expire_a_week_ago(&w, main);
    expire_a_week_ago(&w, feature);
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
    expire_a_week_ago(&w, job);
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
    expire_a_week_ago(&w, job);
    let file = std::fs::File::options().write(true).open(archive_file(&w, job)).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();
    let archive = w.store.job(job).unwrap().unwrap().archive.unwrap().key;
    let collected = w.admin.gc(MIN_GC_GRACE, false).unwrap();
    assert!(!collected.blobs.contains(&archive) && !collected.verifications.contains(&archive), "{collected:?}");
    assert_eq!(reads(&w, job, "build", "reporter").await, [200, 200, 200]);
}

/// A bridge never makes a cycle of parents: the second of two bridges naming each other's
/// pipelines as downstream leaves its downstream (an ancestor) alone, and the family stays
/// kept.
#[tokio::test]
async fn a_bridge_makes_no_cycle_of_parents() {
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
    assert_eq!((pa.parent_id, pb.parent_id), (None, Some(a)), "b is a's child; a stays the root");
    assert!(w.store.is_latest_successful(a).unwrap() && w.store.is_latest_successful(b).unwrap());
}

/// Retrying a job of the kept pipeline runs it again: it stays the one kept (GitLab's lock
/// stays on it) and the older success does not come back. By ref, the newest pipeline
/// that is successful now is the older one, whose expired artifacts are not kept: `404`,
/// as in GitLab, until the retried pipeline succeeds again.
#[tokio::test]
async fn a_retry_of_the_kept_pipeline_keeps_it_kept() {
    let w = World::new();
    let first = id(&build(&w, "main", "build", None));
    let second = build(&w, "main", "build", None);
    let test = w.import(ImportJob { pipeline: Some(pipeline(&second)), ..w.job("test") });
    expire_a_week_ago(&w, first);
    expire_a_week_ago(&w, id(&second));
    let r = w.post(&private(&format!("/jobs/{}/retry", id(&test))), "developer").await;
    assert_eq!(r.status, 201, "{}", r.text());
    let running = w.get(&private(&format!("/pipelines/{}/jobs", pipeline(&second))), "reporter").await;
    assert_eq!(running.json()[0]["pipeline"]["status"], "running", "the kept pipeline runs again");
    assert_eq!(reads(&w, id(&second), "build", "reporter").await, [200, 200, 404]);
    assert_eq!(reads(&w, first, "build", "developer").await, [404, 404, 404]);
}

/// A branch and a tag of one name are two refs, each keeping its own.
#[tokio::test]
async fn a_branch_and_a_tag_of_one_name_keep_apart() {
    let w = World::new();
    let branch = id(&build(&w, "v1", "build", None));
    let tag = w.import(ImportJob {
        tag: true,
        artifacts: Some(fixture("infozip-basic.zip")),
        ..ImportJob::new(PRIVATE, "v1", "build")
    });
    assert_eq!((tag["ref"].as_str(), tag["tag"].as_bool()), (Some("v1"), Some(true)));
    let tag = id(&tag);
    expire_a_week_ago(&w, branch);
    expire_a_week_ago(&w, tag);
    for job in [branch, tag] {
        assert_eq!(w.get(&private(&format!("/jobs/{job}/artifacts")), "reporter").await.status, 200, "job {job}");
    }
}

/// Upgrading brings back no expired archive: pipelines that succeeded before the store knew
/// of keeping keep nothing; the first success after does. The schema is put back as it was
/// before (SQLite version 6, PostgreSQL version 5), with the pipeline in it.
#[test]
fn upgrading_brings_back_no_expired_archive() {
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, postgres) = (dir.path().join("artifact.db"), std::cell::OnceCell::new());
    let store = || -> Arc<dyn Store> {
        match crate::STORE {
            Backend::Sqlite => Arc::new(SqliteStore::open(&sqlite).unwrap()),
            Backend::Postgres => {
                Arc::new(PostgresStore::open(postgres.get_or_init(|| PostgresServer::shared().new_database())).unwrap())
            }
        }
    };
    let blobs = Arc::new(LocalBlobs::open(&dir.path().join("blobs")).unwrap());
    let admin = Admin::new(store(), blobs.clone(), "http://t");
    admin.add_project("g/p", false).unwrap();
    let import =
        |admin: &Admin| admin.import(&ImportJob::new("g/p", "main", "build")).unwrap().job["pipeline"]["id"].as_i64();
    let before = import(&admin).unwrap();
    drop(admin);
    match crate::STORE {
        Backend::Sqlite => rusqlite::Connection::open(&sqlite)
            .unwrap()
            .execute_batch(
                "DROP INDEX pipelines_succeeded; ALTER TABLE pipelines DROP COLUMN succeeded; \
                 ALTER TABLE projects DROP COLUMN keep_latest_artifact; PRAGMA user_version = 6;",
            )
            .unwrap(),
        Backend::Postgres => postgres::Client::connect(postgres.get().unwrap(), postgres::NoTls)
            .unwrap()
            .batch_execute(
                "ALTER TABLE pipelines DROP COLUMN succeeded; ALTER TABLE projects DROP COLUMN keep_latest_artifact; \
                 DELETE FROM artifact_schema WHERE version >= 6",
            )
            .unwrap(),
    }
    let upgraded = store();
    let admin = Admin::new(upgraded.clone(), blobs, "http://t");
    assert!(upgraded.project(&ProjectRef::Path("g/p".into())).unwrap().unwrap().keep_latest_artifact);
    assert!(!upgraded.is_latest_successful(before).unwrap(), "succeeded before keeping: not kept");
    let after = import(&admin).unwrap();
    assert!(upgraded.is_latest_successful(after).unwrap());
}
