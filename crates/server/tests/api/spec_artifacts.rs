//! `spec/requests/api/ci/job_artifacts_spec.rb`, and the job and bridge lists of
//! `spec/requests/api/ci/pipelines_spec.rb`, in GitLab's repository, case by case: a test
//! for every `it` that applies, named after its context, citing the spec's line.
//!
//! Lines are those of gitlabhq's `job_artifacts_spec.rb` at commit 027f19b39c73 and
//! `pipelines_spec.rb` at commit 002718acf79d. Cases that depend on what this server does
//! not have are listed in `docs/jobs-api.md` ("GitLab's request specs", "Not built").
//!
//! The spec's project is private with a developer as `user`; here the world's
//! `group/private` plays it, `group/public` the public one.

use artifact_server::{ImportJob, Status, When};
use axum::http::Method;
use serde_json::Value;

use crate::support::{PUBLIC, World, fixture, private};

const README: &str = "Top-level readme for the infozip-basic fixture.\n";

fn public(rest: &str) -> String {
    format!("/api/v4/projects/group%2Fpublic{rest}")
}

fn id(job: &Value) -> i64 {
    job["id"].as_i64().unwrap()
}

fn pipeline_of(job: &Value) -> i64 {
    job["pipeline"]["id"].as_i64().unwrap()
}

/// A successful job with infozip-basic.zip (no log), started by the developer.
fn with_archive(w: &World, project: &str, ref_name: &str, name: &str) -> Value {
    w.import(ImportJob {
        artifacts: Some(fixture("infozip-basic.zip")),
        user: Some("developer".into()),
        ..ImportJob::new(project, ref_name, name)
    })
}

/// A successful job with neither archive nor log.
fn bare(w: &World) -> i64 {
    id(&w.import(w.job("test")))
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array().unwrap().iter().map(id).collect()
}

// ---------------------------------------------------------------------------------------
// job_artifacts_spec.rb, `DELETE /projects/:id/jobs/:job_id/artifacts`
// ---------------------------------------------------------------------------------------

/// job_artifacts_spec.rb:43 "when project is not undergoing stats refresh": anonymous
/// (:51 does not delete, :55 401), "with developer" (:61 does not delete, :65 403), "with
/// authorized user", a maintainer (:74 deletes artifacts, :78 204).
#[tokio::test]
async fn delete_artifacts_when_project_is_not_undergoing_stats_refresh() {
    let w = World::new();
    let job = id(&with_archive(&w, crate::support::PRIVATE, "main", "build"));
    let uri = private(&format!("/jobs/{job}/artifacts"));
    let kept = |w: &World| w.store.job(job).unwrap().unwrap().archive.is_some();
    w.send(Method::DELETE, &uri, None, &[]).await.expect(401, r#"{"message":"401 Unauthorized"}"#);
    assert!(kept(&w), "anonymous: not deleted");
    w.send(Method::DELETE, &uri, Some("developer"), &[]).await.expect(403, r#"{"message":"403 Forbidden"}"#);
    assert!(kept(&w), "developer (the job's own user): not deleted");
    let r = w.send(Method::DELETE, &uri, Some("maintainer"), &[]).await;
    assert_eq!((r.status.as_u16(), r.body.len()), (204, 0));
    assert!(!kept(&w));
    let shown = w.get(&private(&format!("/jobs/{job}")), "reporter").await.json();
    assert_eq!(shown["artifacts"], serde_json::json!([]), "archive and metadata gone");
    assert_eq!(w.get(&uri, "reporter").await.status, 404);
}

// ---------------------------------------------------------------------------------------
// job_artifacts_spec.rb, `GET /projects/:id/jobs/:job_id/artifacts/:artifact_path`
// ---------------------------------------------------------------------------------------

/// job_artifacts_spec.rb:176 "when user is anonymous": "when project is public" (:180,
/// `200`), "when project is private" (:234, `404`, the existence hidden).
#[tokio::test]
async fn artifact_file_when_user_is_anonymous() {
    let w = World::new();
    let open = id(&with_archive(&w, PUBLIC, "main", "build"));
    let hidden = id(&with_archive(&w, crate::support::PRIVATE, "main", "build"));
    let r = w.send(Method::GET, &public(&format!("/jobs/{open}/artifacts/docs/readme.txt")), None, &[]).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, README));
    let r = w.send(Method::GET, &private(&format!("/jobs/{hidden}/artifacts/docs/readme.txt")), None, &[]).await;
    r.expect(404, r#"{"message":"404 Project Not Found"}"#);
}

/// job_artifacts_spec.rb:246 "when user is authorized" (:247, `200`, the entry; GitLab's
/// body is Workhorse's `artifacts-entry` send-data, this server sends the bytes itself),
/// and :276 "when job does not have artifacts" (:277, `404`).
#[tokio::test]
async fn artifact_file_when_user_is_authorized_or_job_does_not_have_artifacts() {
    let w = World::new();
    let job = id(&with_archive(&w, crate::support::PRIVATE, "main", "build"));
    let r = w.get(&private(&format!("/jobs/{job}/artifacts/docs/readme.txt")), "developer").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, README));
    assert_eq!(r.header("content-type"), "text/plain; charset=utf-8");
    let bare = bare(&w);
    let r = w.get(&private(&format!("/jobs/{bare}/artifacts/some/artifact")), "developer").await;
    r.expect(404, r#"{"message":"404 Not found"}"#);
}

// ---------------------------------------------------------------------------------------
// job_artifacts_spec.rb, `GET /projects/:id/jobs/:job_id/artifacts`
// ---------------------------------------------------------------------------------------

#[track_caller]
fn assert_downloads_artifact(r: &crate::support::Reply) {
    // job_artifacts_spec.rb:300 "returns specific job artifacts": 200, GitLab's download
    // headers (the file's own name: `artifacts.zip` here, as runners upload it), the bytes.
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-transfer-encoding"), "binary");
    assert_eq!(
        r.header("content-disposition"),
        "attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip"
    );
    assert_eq!(r.body, std::fs::read(fixture("infozip-basic.zip")).unwrap());
}

/// job_artifacts_spec.rb:314 "when artifacts are stored locally": "authorized user" (:320 →
/// :300), "when job token is used" (:332 → :300: a running job of another project, whose
/// user is a developer here), "unauthorized user" (:356, `404`); and :477 "does not return
/// job artifacts if not uploaded" (`404`).
#[tokio::test]
async fn downloads_artifact_when_artifacts_are_stored_locally() {
    let w = World::new();
    let job = id(&with_archive(&w, crate::support::PRIVATE, "main", "build"));
    let uri = private(&format!("/jobs/{job}/artifacts"));
    assert_downloads_artifact(&w.get(&uri, "developer").await);
    w.admin.add_project("group/other", false).unwrap();
    let other = w.import(ImportJob {
        status: Status::Running,
        user: Some("developer".into()),
        ..ImportJob::new("group/other", "main", "deploy")
    });
    let token = other["token"].as_str().expect("a running job's token");
    assert_downloads_artifact(&w.send(Method::GET, &format!("{uri}?job_token={token}"), None, &[]).await);
    w.send(Method::GET, &uri, None, &[]).await.expect(404, r#"{"message":"404 Project Not Found"}"#);
    let bare = bare(&w);
    let r = w.get(&private(&format!("/jobs/{bare}/artifacts")), "developer").await;
    r.expect(404, r#"{"message":"404 Not found"}"#);
}

/// job_artifacts_spec.rb:450 "when public project guest and artifacts are non public", :465
/// "with the non_public_artifacts feature flag disabled" (:471, `200`): a guest of a public
/// project downloads (non-public artifacts themselves are not built).
#[tokio::test]
async fn public_project_guest_downloads_artifacts() {
    let w = World::new();
    w.admin.add_member(PUBLIC, "guest", "guest").unwrap();
    let job = id(&with_archive(&w, PUBLIC, "main", "build"));
    assert_downloads_artifact(&w.get(&public(&format!("/jobs/{job}/artifacts")), "guest").await);
}

// job_artifacts_spec.rb:364 "when artifacts are stored remotely": "when proxy download is
// disabled" (:387, `302`), "authorized user" (:436, a redirect to the object's URL): with
// `--blobs s3://...` the archive is a `302` to a presigned URL, and with `--proxy-download`
// the bytes come through the server; tested against a real S3 stand-in in
// `tests/blobs.rs`, `archive_downloads_redirect_to_a_presigned_url_or_stream_with_proxy_download`.
// "unauthorized user" (:444, `404`) is decided before storage is looked at, as :356 above.

// ---------------------------------------------------------------------------------------
// job_artifacts_spec.rb, `GET /projects/:id/jobs/artifacts/:ref_name/download?job=name`
// (the spec's caller is a reporter; the job is made successful)
// ---------------------------------------------------------------------------------------

/// job_artifacts_spec.rb:499 "when not logged in" (:506, `404` in a private project),
/// :512 "when logging as guest" (:519, `403`), :524 "non-existing job": "has no such ref"
/// (:534 → :526, `404`), "has no such job" (:542 → :526, `404`).
#[tokio::test]
async fn download_by_ref_when_not_logged_in_as_guest_or_for_a_non_existing_job() {
    let w = World::new();
    with_archive(&w, crate::support::PRIVATE, "main", "build");
    let uri = private("/jobs/artifacts/main/download?job=build");
    w.send(Method::GET, &uri, None, &[]).await.expect(404, r#"{"message":"404 Project Not Found"}"#);
    w.get(&uri, "guest").await.expect(403, r#"{"message":"403 Forbidden"}"#);
    for missing in ["/jobs/artifacts/TAIL/download?job=build", "/jobs/artifacts/main/download?job=NOBUILD"] {
        w.get(&private(missing), "reporter").await.expect(404, r#"{"message":"404 Not found"}"#);
    }
    assert_downloads_artifact(&w.get(&uri, "reporter").await);
}

/// job_artifacts_spec.rb:546 "find proper job", "a valid file" "when artifacts are stored
/// locally" (:557 `200`, :558 the download headers) for "with regular branch" (:585),
/// "with branch name containing slash" (:595) and "with job name in a child pipeline"
/// (:607: a job of the ref's successful pipeline's child). "when artifacts are stored
/// remotely" (:571) downloads by id, as :387.
#[tokio::test]
async fn find_proper_job() {
    let w = World::new();
    let parent = pipeline_of(&with_archive(&w, crate::support::PRIVATE, "master", "build"));
    with_archive(&w, crate::support::PRIVATE, "improve/awesome", "build");
    w.import(ImportJob {
        parent_pipeline: Some(parent),
        artifacts: Some(fixture("infozip-basic.zip")),
        ..ImportJob::new(crate::support::PRIVATE, "master", "rspec")
    });
    for (context, uri) in [
        ("with regular branch", "/jobs/artifacts/master/download?job=build"),
        ("with branch name containing slash", "/jobs/artifacts/improve/awesome/download?job=build"),
        ("with job name in a child pipeline", "/jobs/artifacts/master/download?job=rspec"),
    ] {
        let r = w.get(&private(uri), "reporter").await;
        assert_eq!(r.status, 200, "{context}: {}", r.text());
        assert_downloads_artifact(&r);
    }
}

// ---------------------------------------------------------------------------------------
// job_artifacts_spec.rb, `GET id/jobs/artifacts/:ref_name/raw/*artifact_path?job=name`
// ---------------------------------------------------------------------------------------

/// job_artifacts_spec.rb:628 "when user is anonymous": "when project is public" (:635,
/// `200`; and :675, the same with the non_public_artifacts flag off), "when project is
/// private" (:687, `404` with a `message`, no file).
#[tokio::test]
async fn raw_by_ref_when_user_is_anonymous() {
    let w = World::new();
    with_archive(&w, PUBLIC, "main", "build");
    with_archive(&w, crate::support::PRIVATE, "main", "build");
    let file = "/jobs/artifacts/main/raw/docs/readme.txt?job=build";
    let r = w.send(Method::GET, &public(file), None, &[]).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, README));
    let r = w.send(Method::GET, &private(file), None, &[]).await;
    r.expect(404, r#"{"message":"404 Project Not Found"}"#);
}

/// job_artifacts_spec.rb:696 "when user is authorized" (:700, `200`), :716 "with branch
/// name containing slash" (:722, `200`), :733 "non-existing job": "has no such ref" (:743 →
/// :735, `404`), "has no such job" (:751 → :735, `404`); :756 "when job does not have
/// artifacts" (:759, `404`).
#[tokio::test]
async fn raw_by_ref_when_user_is_authorized() {
    let w = World::new();
    with_archive(&w, crate::support::PRIVATE, "main", "build");
    with_archive(&w, crate::support::PRIVATE, "improve/awesome", "build");
    w.import(ImportJob::new(crate::support::PRIVATE, "bare", "build"));
    for uri in [
        "/jobs/artifacts/main/raw/docs/readme.txt?job=build",
        "/jobs/artifacts/improve/awesome/raw/docs/readme.txt?job=build",
    ] {
        let r = w.get(&private(uri), "reporter").await;
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, README), "{uri}");
    }
    for missing in [
        "/jobs/artifacts/wrong-ref/raw/some/artifact?job=build",
        "/jobs/artifacts/main/raw/some/artifact?job=wrong-job-name",
        "/jobs/artifacts/bare/raw/some/artifact?job=build",
    ] {
        w.get(&private(missing), "reporter").await.expect(404, r#"{"message":"404 Not found"}"#);
    }
}

// ---------------------------------------------------------------------------------------
// job_artifacts_spec.rb, `POST /projects/:id/jobs/:job_id/artifacts/keep` (as a developer)
// ---------------------------------------------------------------------------------------

/// job_artifacts_spec.rb:776 "artifacts did not expire" (:782, `200`,
/// `artifacts_expire_at` cleared) and :788 "no artifacts" (:791, `404`).
#[tokio::test]
async fn keep_artifacts_that_did_not_expire() {
    let w = World::new();
    let job = w.import(ImportJob {
        artifacts: Some(fixture("infozip-basic.zip")),
        expire_in: Some("7 days".into()),
        ..w.job("build")
    });
    assert!(job["artifacts_expire_at"].is_string());
    let r = w.post(&private(&format!("/jobs/{}/artifacts/keep", id(&job))), "developer").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["artifacts_expire_at"].is_null());
    let shown = w.get(&private(&format!("/jobs/{}", id(&job))), "reporter").await.json();
    assert!(shown["artifacts_expire_at"].is_null(), "stored");
    let bare = bare(&w);
    let r = w.post(&private(&format!("/jobs/{bare}/artifacts/keep")), "developer").await;
    r.expect(404, r#"{"message":"404 Not found"}"#);
}

// ---------------------------------------------------------------------------------------
// pipelines_spec.rb, `GET /projects/:id/pipelines/:pipeline_id/jobs` (:358; the caller a
// maintainer; the job `build`, successful, expiring in a day, with no artifacts)
// ---------------------------------------------------------------------------------------

/// pipelines_spec.rb:381 "authorized user": "returns pipeline jobs" (:382, `200`, paged, an
/// array), "returns correct values" (:399: the commit, `artifacts_expire_at` though there is
/// no archive, no `artifacts_file`, `artifacts` empty), "a job with artifacts and trace"
/// (:408 → spec/support/shared_examples/ci/jobs_shared_examples.rb:7 "returns artifacts
/// and trace data": `artifacts_file` and a row per file with its size, name and
/// format), "returns pipeline data" (:412).
#[tokio::test]
async fn pipeline_jobs_authorized_user() {
    let w = World::new();
    let job = w.import(ImportJob { expire_in: Some("1 day".into()), ..w.job("build") });
    let pipeline = pipeline_of(&job);
    let trace = w.dir.path().join("job.log");
    std::fs::write(&trace, "a log\n").unwrap();
    let second = w.import(ImportJob {
        pipeline: Some(pipeline),
        artifacts: Some(fixture("infozip-basic.zip")),
        trace: Some(trace),
        ..w.job("second")
    });
    let r = w.get(&private(&format!("/pipelines/{pipeline}/jobs")), "maintainer").await;
    assert_eq!(r.status, 200);
    assert_eq!((r.header("x-page"), r.header("x-per-page"), r.header("x-total")), ("1", "20", "2"));
    assert!(r.header("link").contains("rel=\"first\""));
    let list = r.json();
    assert_eq!(ids(&list), [id(&job), id(&second)]);
    let first = &list[0];
    assert_eq!(first["commit"]["id"], job["pipeline"]["sha"]);
    assert!(first["artifacts_expire_at"].is_string(), "{first}");
    assert_eq!(first["artifacts_expire_at"], job["artifacts_expire_at"]);
    assert!(first.get("artifacts_file").is_none_or(Value::is_null), "{first}");
    assert_eq!(first["artifacts"], serde_json::json!([]));
    let pipeline_json = &first["pipeline"];
    assert_eq!(pipeline_json["id"], pipeline);
    assert_eq!(pipeline_json["project_id"], job["pipeline"]["project_id"]);
    assert_eq!(pipeline_json["ref"], "main");
    assert_eq!(pipeline_json["sha"], job["pipeline"]["sha"]);
    assert_eq!(pipeline_json["status"], "success");
    let size = std::fs::metadata(fixture("infozip-basic.zip")).unwrap().len();
    let with_files = &list[1];
    assert_eq!(with_files["artifacts_file"], serde_json::json!({"filename": "artifacts.zip", "size": size}));
    let rows: Vec<_> = with_files["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["file_type"].clone(), a["filename"].clone(), a["file_format"].clone()))
        .collect();
    assert_eq!(
        rows,
        [
            ("archive".into(), "artifacts.zip".into(), "zip".into()),
            ("metadata".into(), "metadata.gz".into(), "gzip".into()),
            ("trace".into(), "job.log".into(), "raw".into())
        ]
    );
    assert_eq!(with_files["artifacts"][0]["size"], size);
    assert_eq!(with_files["artifacts"][2]["size"], 6);
}

/// pipelines_spec.rb:423 "filter jobs with one scope element" (:426: `pending` jobs, no
/// `duration`, a `queued_duration`), :437 "when filtering to only running jobs" (:440: both
/// durations), :451 "filter jobs with hash" (:454, `400`), :457 "filter jobs with array of
/// scope elements" (:460, `200`), :466 "respond 400 when scope contains invalid state"
/// (:469).
#[tokio::test]
async fn pipeline_jobs_filtered_by_scope() {
    let w = World::new();
    let pending = w.job_with("wait", Status::Pending, When::OnSuccess);
    let pipeline = pipeline_of(&pending);
    let running = w.import(ImportJob { pipeline: Some(pipeline), status: Status::Running, ..w.job("run") });
    w.import(ImportJob { pipeline: Some(pipeline), ..w.job("done") });
    let list = |query: &'static str| {
        let w = &w;
        async move { w.get(&private(&format!("/pipelines/{pipeline}/jobs?{query}")), "maintainer").await }
    };
    let r = list("scope=pending").await;
    assert_eq!(ids(&r.json()), [id(&pending)]);
    assert!(r.json()[0]["duration"].is_null());
    assert!(r.json()[0]["queued_duration"].as_f64().unwrap() >= 0.0);
    let r = list("scope=running").await;
    assert_eq!(ids(&r.json()), [id(&running)]);
    assert!(r.json()[0]["duration"].as_f64().unwrap() >= 0.0);
    assert!(r.json()[0]["queued_duration"].as_f64().unwrap() >= 0.0);
    assert_eq!(list("scope[hello]=pending&scope[world]=running").await.status, 400);
    let r = list("scope[]=pending&scope[]=running").await;
    assert_eq!((r.status.as_u16(), ids(&r.json())), (200, vec![id(&pending), id(&running)]));
    let r = list("scope[]=unknown&scope[]=running").await;
    r.expect(400, r#"{"error":"scope does not have a valid value"}"#);
}

/// pipelines_spec.rb:472 "jobs in different pipelines" (:476: only this pipeline's jobs),
/// :493 "pipeline has retried jobs": by default (:500) and with `include_retried=false`
/// (:508) one job, with `include_retried=true` (:517) both, of the same name.
#[tokio::test]
async fn pipeline_jobs_in_different_pipelines_and_retried() {
    let w = World::new();
    let job = w.import(w.job("build"));
    let pipeline = pipeline_of(&job);
    w.import(w.job("elsewhere"));
    let r = w.post(&private(&format!("/jobs/{}/retry", id(&job))), "developer").await;
    assert_eq!(r.status, 201);
    let successor = r.json();
    let list = |query: &'static str| {
        let w = &w;
        async move { w.get(&private(&format!("/pipelines/{pipeline}/jobs{query}")), "maintainer").await.json() }
    };
    let all = list("").await;
    assert!(all.as_array().unwrap().iter().all(|j| j["pipeline"]["id"] == pipeline));
    assert_eq!(ids(&all), [id(&successor)]);
    assert_eq!(ids(&list("?include_retried=false").await), [id(&successor)]);
    let both = list("?include_retried=true").await;
    assert_eq!(ids(&both), [id(&job), id(&successor)]);
    assert_eq!(both[0]["name"], both[1]["name"]);
}

/// pipelines_spec.rb:526 "no pipeline is found" (:527: a project the caller does not see
/// is `404 Project Not Found`), :535 "unauthorized user": "when user is not logged in"
/// (:539, `404 Project Not Found`, see also spec_parity.rs), "when user is guest" (:549,
/// `403`).
#[tokio::test]
async fn pipeline_jobs_no_pipeline_is_found_and_unauthorized_user() {
    let w = World::new();
    let pipeline = pipeline_of(&w.import(w.job("build")));
    w.admin.add_project("group/project2", false).unwrap();
    let elsewhere = format!("/api/v4/projects/group%2Fproject2/pipelines/{pipeline}/jobs");
    w.get(&elsewhere, "maintainer").await.expect(404, r#"{"message":"404 Project Not Found"}"#);
    let uri = private(&format!("/pipelines/{pipeline}/jobs"));
    w.send(Method::GET, &uri, None, &[]).await.expect(404, r#"{"message":"404 Project Not Found"}"#);
    w.get(&uri, "guest").await.expect(403, r#"{"message":"403 Forbidden"}"#);
}

// ---------------------------------------------------------------------------------------
// pipelines_spec.rb, `GET /projects/:id/pipelines/:pipeline_id/bridges` (:566; a bridge
// with a downstream pipeline; the caller a maintainer)
// ---------------------------------------------------------------------------------------

/// A pipeline with a bridge whose downstream pipeline is `downstream`; returns (pipeline,
/// bridge, downstream's job).
fn bridge_world(w: &World) -> (i64, Value, Value) {
    let build = w.import(w.job("build"));
    let pipeline = pipeline_of(&build);
    let downstream = w.import(w.job("downstream"));
    let bridge = w.import(ImportJob {
        pipeline: Some(pipeline),
        bridge: true,
        downstream: Some(pipeline_of(&downstream)),
        stage: "deploy".into(),
        ..w.job("trigger")
    });
    (pipeline, bridge, downstream)
}

/// pipelines_spec.rb:592 "authorized user": "returns pipeline bridges" (:593, `200`,
/// paged, an array), "returns correct values" (:599: commit, id, name, stage), "returns
/// pipeline data" (:607), "returns downstream pipeline data" (:618).
#[tokio::test]
async fn pipeline_bridges_authorized_user() {
    let w = World::new();
    let (pipeline, bridge, downstream) = bridge_world(&w);
    let r = w.get(&private(&format!("/pipelines/{pipeline}/bridges")), "maintainer").await;
    assert_eq!(r.status, 200);
    assert_eq!((r.header("x-page"), r.header("x-total")), ("1", "1"));
    let list = r.json();
    let first = &list[0];
    assert_eq!(first["id"], bridge["id"]);
    assert_eq!((first["name"].as_str(), first["stage"].as_str()), (Some("trigger"), Some("deploy")));
    assert_eq!(first["commit"]["id"], bridge["pipeline"]["sha"]);
    for key in ["id", "project_id", "ref", "sha", "status"] {
        assert_eq!(first["pipeline"][key], bridge["pipeline"][key], "pipeline {key}");
        assert_eq!(first["downstream_pipeline"][key], downstream["pipeline"][key], "downstream {key}");
    }
    assert_ne!(first["downstream_pipeline"]["id"], first["pipeline"]["id"]);
}

/// pipelines_spec.rb:629 "filter bridges": "with one scope element" (:638, the `pending`
/// one), "with array of scope elements" (:651, `pending` and `running`); :662 "respond 400
/// when scope contains invalid state": "in an array" (:666), "in a hash" (:672), "in a
/// string" (:678); :682 "bridges in different pipelines" (:686).
#[tokio::test]
async fn pipeline_bridges_filtered() {
    let w = World::new();
    let (pipeline, bridge, _) = bridge_world(&w);
    let mut made = Vec::new();
    for status in [Status::Pending, Status::Running] {
        made.push(id(&w.import(ImportJob { pipeline: Some(pipeline), bridge: true, status, ..w.job("trigger-more") })));
    }
    let (_, elsewhere, _) = bridge_world(&w);
    let list = |query: &'static str| {
        let w = &w;
        async move { w.get(&private(&format!("/pipelines/{pipeline}/bridges?{query}")), "maintainer").await }
    };
    let r = list("scope=pending").await;
    assert_eq!((r.status.as_u16(), ids(&r.json())), (200, vec![made[0]]));
    assert_eq!(r.json()[0]["status"], "pending");
    assert_eq!(ids(&list("scope[]=pending&scope[]=running").await.json()), made);
    for bad in ["scope[]=unknown&scope[]=running", "scope[unknown]=true", "scope=unknown"] {
        assert_eq!(list(bad).await.status, 400, "{bad}");
    }
    let all = ids(&list("").await.json());
    assert_eq!(all, [id(&bridge), made[0], made[1]]);
    assert!(!all.contains(&id(&elsewhere)));
}

/// pipelines_spec.rb:704 "no pipeline is found" (:705), :713 "unauthorized user": "when
/// user is not logged in" (:717), "when user is guest" (:727), "when user has no
/// read_build access for project" (:737, a guest again).
#[tokio::test]
async fn pipeline_bridges_no_pipeline_is_found_and_unauthorized_user() {
    let w = World::new();
    let (pipeline, _, _) = bridge_world(&w);
    w.admin.add_project("group/project2", false).unwrap();
    let elsewhere = format!("/api/v4/projects/group%2Fproject2/pipelines/{pipeline}/bridges");
    w.get(&elsewhere, "maintainer").await.expect(404, r#"{"message":"404 Project Not Found"}"#);
    let uri = private(&format!("/pipelines/{pipeline}/bridges"));
    w.send(Method::GET, &uri, None, &[]).await.expect(404, r#"{"message":"404 Project Not Found"}"#);
    w.get(&uri, "guest").await.expect(403, r#"{"message":"403 Forbidden"}"#);
}
