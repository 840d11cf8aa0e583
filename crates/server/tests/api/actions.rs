//! Cancel, retry, erase, keep, delete and play, with GitLab's state rules.

use artifact_server::{ImportJob, Scope, Status, When};
use axum::http::Method;

use crate::support::{World, fixture, private};

fn id(v: &serde_json::Value) -> i64 {
    v["id"].as_i64().unwrap()
}

#[tokio::test]
async fn cancel_moves_unfinished_jobs_and_leaves_finished_ones() {
    let w = World::new();
    for status in [
        Status::Created,
        Status::WaitingForResource,
        Status::Preparing,
        Status::Pending,
        Status::Running,
        Status::Manual,
        Status::Scheduled,
    ] {
        let job = w.job_with(status.as_str(), status, When::OnSuccess);
        let r = w.post(&private(&format!("/jobs/{}/cancel", id(&job))), "developer").await;
        assert_eq!(r.status, 201, "{status:?}");
        assert_eq!(r.json()["status"], "canceled", "{status:?}");
        assert!(r.json()["finished_at"].is_string());
    }
    for status in [Status::Success, Status::Failed, Status::Canceled, Status::Skipped] {
        let job = w.job_with(status.as_str(), status, When::OnSuccess);
        let r = w.post(&private(&format!("/jobs/{}/cancel", id(&job))), "developer").await;
        assert_eq!(r.status, 201);
        assert_eq!(r.json()["status"], status.as_str(), "a finished job is unchanged");
        assert_eq!(r.json()["finished_at"], job["finished_at"]);
    }
}

#[tokio::test]
async fn retry_makes_a_new_job_only_from_finished_states() {
    let w = World::new();
    for status in [Status::Success, Status::Failed, Status::Canceled] {
        let job = w.job_with("t", status, When::OnSuccess);
        let r = w.post(&private(&format!("/jobs/{}/retry", id(&job))), "developer").await;
        assert_eq!(r.status, 201);
        let new = r.json();
        assert_ne!(id(&new), id(&job));
        assert_eq!(new["status"], "pending");
        assert_eq!(new["name"], "t");
        assert_eq!(new["pipeline"]["id"], job["pipeline"]["id"]);
    }
    for status in [Status::Running, Status::Pending, Status::Manual, Status::Skipped, Status::Created] {
        let job = w.job_with("t", status, When::OnSuccess);
        let r = w.post(&private(&format!("/jobs/{}/retry", id(&job))), "developer").await;
        r.expect(403, r#"{"message":"403 Forbidden - Job is not retryable"}"#);
    }
}

#[tokio::test]
async fn a_retried_job_is_no_longer_found_by_ref() {
    let w = World::new();
    let build = w.build_with_artifacts();
    let by_ref = private("/jobs/artifacts/main/download?job=build");
    assert_eq!(w.get(&by_ref, "reporter").await.status, 200);
    assert_eq!(w.post(&private(&format!("/jobs/{build}/retry")), "developer").await.status, 201);
    // The new job has no artifacts, and the retried one is hidden from resolution.
    w.get(&by_ref, "reporter").await.expect(404, r#"{"message":"404 Not found"}"#);
}

#[tokio::test]
async fn erase_removes_artifacts_and_log_of_finished_jobs() {
    let w = World::new();
    let build = w.build_with_artifacts();
    let blobs = || count_files(&w.dir.path().join("data/blobs"));
    assert_eq!(blobs(), 3, "archive, metadata and trace");
    let archive = w.store.job(build).unwrap().unwrap().archive.unwrap().key;
    assert!(w.store.verification(&archive).unwrap().is_some(), "the store keeps the archive's verification");
    let r = w.post(&private(&format!("/jobs/{build}/erase")), "developer").await;
    assert_eq!(r.status, 201);
    let job = r.json();
    assert!(job["erased_at"].is_string());
    assert!(job["artifacts_expire_at"].is_null());
    assert!(job.get("artifacts_file").is_none());
    assert_eq!(job["artifacts"], serde_json::json!([]));
    assert_eq!(blobs(), 0, "the files are gone from disk");
    assert_eq!(w.store.verification(&archive).unwrap(), None, "and the verification with them");
    let r = w.get(&private(&format!("/jobs/{build}/trace")), "reporter").await;
    assert_eq!((r.status.as_u16(), r.body.len()), (200, 0));
    // Nothing left to erase, or not finished: 403.
    let r = w.post(&private(&format!("/jobs/{build}/erase")), "developer").await;
    r.expect(403, r#"{"message":"403 Forbidden - Job is not erasable!"}"#);
    let running =
        w.import(ImportJob { status: Status::Running, artifacts: Some(fixture("infozip-basic.zip")), ..w.job("r") });
    let r = w.post(&private(&format!("/jobs/{}/erase", id(&running))), "developer").await;
    r.expect(403, r#"{"message":"403 Forbidden - Job is not erasable!"}"#);
}

/// A finished job with an archive and a log, started by `user` (`None`: by nobody); its id.
fn erasable_job_of(w: &World, user: Option<&str>) -> i64 {
    let job = ImportJob {
        status: Status::Success,
        artifacts: Some(fixture("infozip-basic.zip")),
        user: user.map(str::to_owned),
        ..w.job("build")
    };
    id(&w.import(job))
}

fn user_id(w: &World, name: &str) -> i64 {
    w.store.user_by_username(name).unwrap().unwrap().id
}

#[tokio::test]
async fn a_developer_erases_only_the_jobs_they_started() {
    // GitLab's `erase_build` (spec/requests/api/ci/jobs_spec.rb, "when a developer erases a
    // build"): created by the developer, 201; by another user, 403.
    let w = World::new();
    for owner in [Some("maintainer"), Some("owner"), Some("reporter"), Some("outsider"), None] {
        let job = erasable_job_of(&w, owner);
        let r = w.post(&private(&format!("/jobs/{job}/erase")), "developer").await;
        r.expect(403, r#"{"message":"403 Forbidden"}"#);
        let kept = w.store.job(job).unwrap().unwrap();
        assert!(kept.archive.is_some() && kept.erased_at.is_none(), "{owner:?}: the job keeps its artifacts");
        assert_eq!(w.get(&private(&format!("/jobs/{job}/artifacts")), "reporter").await.status, 200, "{owner:?}");
    }
    let own = erasable_job_of(&w, Some("developer"));
    let r = w.post(&private(&format!("/jobs/{own}/erase")), "developer").await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.json()["erased_at"].is_string());
    assert_eq!(w.store.job(own).unwrap().unwrap().erased_by, Some(user_id(&w, "developer")));
    // Below developer, not even one's own job.
    for role in ["reporter", "guest"] {
        let job = erasable_job_of(&w, Some(role));
        w.post(&private(&format!("/jobs/{job}/erase")), role).await.expect(403, r#"{"message":"403 Forbidden"}"#);
    }
}

#[tokio::test]
async fn maintainers_owners_and_administrators_erase_anyones_job() {
    let w = World::new();
    for (caller, owner) in [
        ("maintainer", Some("developer")),
        ("maintainer", None),
        ("owner", Some("maintainer")),
        ("owner", None),
        // An administrator who is no member.
        ("root", Some("developer")),
    ] {
        let job = erasable_job_of(&w, owner);
        let r = w.post(&private(&format!("/jobs/{job}/erase")), caller).await;
        assert_eq!(r.status, 201, "{caller} on {owner:?}'s job: {}", r.text());
        let erased = w.store.job(job).unwrap().unwrap();
        assert!(erased.archive.is_none() && erased.erased_at.is_some());
        assert_eq!(erased.erased_by, Some(user_id(&w, caller)), "erased_by is the caller");
        assert_eq!(erased.user_id, owner.map(|o| user_id(&w, o)), "the job's user stays");
    }
}

#[tokio::test]
async fn who_may_erase_is_answered_before_whether_the_job_can_be() {
    // GitLab's order: `authorize!(:erase_build)` (403 Forbidden), then `erasable?`
    // (403 Job is not erasable!).
    let w = World::new();
    let others_running = w.import(ImportJob {
        status: Status::Running,
        artifacts: Some(fixture("infozip-basic.zip")),
        user: Some("maintainer".into()),
        ..w.job("r")
    });
    let uri = private(&format!("/jobs/{}/erase", id(&others_running)));
    w.post(&uri, "developer").await.expect(403, r#"{"message":"403 Forbidden"}"#);
    w.post(&uri, "maintainer").await.expect(403, r#"{"message":"403 Forbidden - Job is not erasable!"}"#);
    // The spec's "job is not erasable": a maintainer, a job of nobody's that is not finished.
    let nobodys_pending = w.import(ImportJob { status: Status::Pending, user: None, ..w.job("p") });
    let uri = private(&format!("/jobs/{}/erase", id(&nobodys_pending)));
    w.post(&uri, "maintainer").await.expect(403, r#"{"message":"403 Forbidden - Job is not erasable!"}"#);
    // One's own job that cannot be erased says why.
    let own_pending = w.job_with("q", Status::Pending, When::OnSuccess);
    let uri = private(&format!("/jobs/{}/erase", id(&own_pending)));
    w.post(&uri, "developer").await.expect(403, r#"{"message":"403 Forbidden - Job is not erasable!"}"#);
}

#[tokio::test]
async fn sudo_erases_as_the_user_it_names() {
    let w = World::new();
    let (sudo, _) = w.admin.add_token_with("root", &[Scope::Api, Scope::Sudo], None).unwrap();
    let as_developer = [("PRIVATE-TOKEN", sudo.as_str()), ("Sudo", "developer")];
    let others = erasable_job_of(&w, Some("maintainer"));
    let r = w.send(Method::POST, &private(&format!("/jobs/{others}/erase")), None, &as_developer).await;
    r.expect(403, r#"{"message":"403 Forbidden"}"#);
    let own = erasable_job_of(&w, Some("developer"));
    let r = w.send(Method::POST, &private(&format!("/jobs/{own}/erase")), None, &as_developer).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(w.store.job(own).unwrap().unwrap().erased_by, Some(user_id(&w, "developer")));
}

#[tokio::test]
async fn keep_clears_the_expiry_and_needs_a_live_archive() {
    let w = World::new();
    let job = w.import(ImportJob {
        artifacts: Some(fixture("infozip-basic.zip")),
        expire_in: Some("1 day".into()),
        ..w.job("build")
    });
    assert!(job["artifacts_expire_at"].is_string());
    let r = w.post(&private(&format!("/jobs/{}/artifacts/keep", id(&job))), "developer").await;
    assert_eq!(r.status, 200);
    assert!(r.json()["artifacts_expire_at"].is_null());
    let bare = w.import(w.job("bare"));
    let r = w.post(&private(&format!("/jobs/{}/artifacts/keep", id(&bare))), "developer").await;
    r.expect(404, r#"{"message":"404 Not found"}"#);
    // A GET of an entry named "keep" is a download, not the action.
    let r = w.get(&private(&format!("/jobs/{}/artifacts/keep", id(&job))), "developer").await;
    r.expect(404, r#"{"message":"404 Not found"}"#);
}

#[tokio::test]
async fn delete_artifacts_keeps_the_log_and_is_204_even_twice() {
    let w = World::new();
    let build = w.build_with_artifacts();
    let uri = private(&format!("/jobs/{build}/artifacts"));
    for _ in 0..2 {
        let r = w.send(Method::DELETE, &uri, Some("maintainer"), &[]).await;
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
    }
    let job = w.get(&private(&format!("/jobs/{build}")), "reporter").await.json();
    assert!(job.get("artifacts_file").is_none());
    assert_eq!(job["artifacts"][0]["file_type"], "trace");
    assert_eq!(w.get(&private(&format!("/jobs/{build}/trace")), "reporter").await.text(), "line one\nline two\n");
    assert_eq!(count_files(&w.dir.path().join("data/blobs")), 1);
}

#[tokio::test]
async fn play_starts_waiting_manual_jobs_as_the_caller() {
    let w = World::new();
    for (status, when) in [(Status::Manual, When::Manual), (Status::Scheduled, When::Delayed)] {
        let job = w.import(ImportJob { status, when, user: Some("owner".into()), ..w.job("deploy") });
        let r = w.post(&private(&format!("/jobs/{}/play", id(&job))), "developer").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["status"], "pending");
        assert_eq!(r.json()["user"]["username"], "developer");
        assert_eq!(id(&r.json()), id(&job));
    }
    // A finished manual job plays again as a new job.
    let done = w.import(ImportJob { status: Status::Success, when: When::Manual, ..w.job("deploy") });
    let r = w.post(&private(&format!("/jobs/{}/play", id(&done))), "developer").await;
    assert_eq!(r.status, 200);
    assert_ne!(id(&r.json()), id(&done));
    for (status, when) in
        [(Status::Success, When::OnSuccess), (Status::Running, When::Manual), (Status::Pending, When::Manual)]
    {
        let job = w.import(ImportJob { status, when, ..w.job("x") });
        let r = w.post(&private(&format!("/jobs/{}/play", id(&job))), "developer").await;
        r.expect(400, r#"{"message":"400 Bad request - Unplayable Job"}"#);
    }
}

#[tokio::test]
async fn actions_on_missing_jobs_are_404_before_403() {
    let w = World::new();
    for action in ["cancel", "retry", "erase", "play", "artifacts/keep"] {
        let r = w.post(&private(&format!("/jobs/424242/{action}")), "reporter").await;
        r.expect(404, r#"{"message":"404 Not found"}"#);
    }
}

pub(crate) fn count_files(dir: &std::path::Path) -> usize {
    crate::support::files_under(dir).len()
}

#[tokio::test]
async fn a_remembered_lookup_never_outlives_an_erase_or_delete() {
    let w = World::new();
    for action in ["erase", "delete"] {
        let build = w.build_with_artifacts();
        let entry = private(&format!("/jobs/{build}/artifacts/docs/readme.txt"));
        // Twice: the second answer comes from the remembered look-up.
        for _ in 0..2 {
            assert_eq!(w.get(&entry, "maintainer").await.status, 200);
        }
        let r = match action {
            "erase" => w.post(&private(&format!("/jobs/{build}/erase")), "maintainer").await,
            _ => w.send(Method::DELETE, &private(&format!("/jobs/{build}/artifacts")), Some("maintainer"), &[]).await,
        };
        assert!(r.status.is_success(), "{action}: {}", r.text());
        w.get(&entry, "maintainer").await.expect(404, r#"{"message":"404 Not found"}"#);
    }
}

#[tokio::test]
async fn a_stale_write_loses_to_a_newer_one() {
    // keep read the job, delete committed, then keep's write must not bring the archive back.
    let w = World::new();
    let build = w.build_with_artifacts();
    let store = w.store.clone();
    let stale = store.job(build).unwrap().unwrap();
    let r = w.send(Method::DELETE, &private(&format!("/jobs/{build}/artifacts")), Some("maintainer"), &[]).await;
    assert_eq!(r.status, 204);
    let kept = artifact_server::Job { artifacts_expire_at: None, ..stale };
    assert!(!store.update_job(&kept).unwrap(), "the stale write is refused");
    assert!(store.job(build).unwrap().unwrap().archive.is_none());
}

#[tokio::test]
async fn a_retried_job_cannot_be_retried_or_played_again() {
    let w = World::new();
    let job = w.job_with("t", Status::Failed, When::OnSuccess);
    let first = w.post(&private(&format!("/jobs/{}/retry", id(&job))), "developer").await;
    assert_eq!(first.status, 201);
    let again = w.post(&private(&format!("/jobs/{}/retry", id(&job))), "developer").await;
    again.expect(403, r#"{"message":"403 Forbidden - Job is not retryable"}"#);
    // The new job is untouched: still the live one of its name.
    let new = w.get(&private(&format!("/jobs/{}", id(&first.json()))), "reporter").await.json();
    assert_eq!(new["status"], "pending");
    let pipeline = job["pipeline"]["id"].as_i64().unwrap();
    let live = w.get(&private(&format!("/pipelines/{pipeline}/jobs")), "reporter").await.json();
    assert_eq!(live.as_array().unwrap().len(), 1);
    assert_eq!(live[0]["id"], first.json()["id"]);

    let manual = w.import(ImportJob { status: Status::Success, when: When::Manual, ..w.job("deploy") });
    assert_eq!(w.post(&private(&format!("/jobs/{}/play", id(&manual))), "developer").await.status, 200);
    let r = w.post(&private(&format!("/jobs/{}/play", id(&manual))), "developer").await;
    r.expect(400, r#"{"message":"400 Bad request - Unplayable Job"}"#);
}
