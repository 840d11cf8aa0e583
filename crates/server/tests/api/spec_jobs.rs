//! `spec/requests/api/ci/jobs_spec.rb` in GitLab's repository, case by case: a test for
//! every `it` that applies to the 15 operations and the job lists, named after its context,
//! citing the spec's line. Lines are those of the spec at GitLab commit
//! `9f2347fcc443bcae95898acf329d8f7d253b1251`. Cases this server has nothing for (agents,
//! CI debug logs, job variables, rate limits, SaaS plans...) are listed under "Not built"
//! in `docs/jobs-api.md`.

use artifact_server::{ImportJob, Status, When};
use axum::http::Method;
use serde_json::Value;

use crate::support::{Reply, World, fixture, private};

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap()
}

/// The ids a list answered.
fn ids(r: &Reply) -> Vec<i64> {
    r.json().as_array().unwrap().iter().map(id).collect()
}

/// The path and query of the `Link` header's next page.
fn next_page(r: &Reply) -> String {
    let link = r.header("link");
    assert!(link.contains("cursor="), "{link}");
    link.strip_prefix("<http://gitlab.test").unwrap().split_once('>').unwrap().0.to_owned()
}

/// A manual job waiting to be played.
fn manual(w: &World, name: &str) -> ImportJob {
    ImportJob { status: Status::Manual, when: When::Manual, ..w.job(name) }
}

/// A job with a log of `text`.
fn with_log(w: &World, text: &str, job: ImportJob) -> ImportJob {
    let trace = w.dir.path().join(format!("{}.log", job.name));
    std::fs::write(&trace, text).unwrap();
    ImportJob { trace: Some(trace), ..job }
}

/// jobs_spec.rb:56, "returns common job data", and :45, "returns common pipeline data":
/// the fields GitLab compares with the job and its pipeline.
#[track_caller]
fn common_job_and_pipeline_data(got: &Value, job: &Value) {
    for key in ["id", "status", "stage", "name", "ref", "tag", "coverage", "allow_failure", "created_at", "started_at"]
    {
        assert_eq!(got[key], job[key], "{key}");
    }
    assert!(got["started_at"].is_string());
    assert_eq!(got["artifacts_expire_at"], job["artifacts_expire_at"]);
    assert!(got["artifacts_file"].is_null());
    assert_eq!(got["artifacts"], serde_json::json!([]));
    assert!(got["web_url"].as_str().unwrap().ends_with(&format!("/group/private/-/jobs/{}", id(job))));
    assert_eq!(got["archived"], false);
    for key in ["id", "project_id", "ref", "sha", "status"] {
        assert_eq!(got["pipeline"][key], job["pipeline"][key], "pipeline {key}");
    }
    assert!(got["pipeline"]["project_id"].is_i64());
}

/// `GET /job`, "with job token authentication header" (jobs_spec.rb:121: common job data
/// :126, specific job data :130, common pipeline data :172) and "with job token
/// authentication params" (:177: :182, :186, :190).
#[tokio::test]
async fn get_job_with_job_token_authentication_header_and_params() {
    let w = World::new();
    let running = w.import(ImportJob { status: Status::Running, expire_in: Some("1 day".into()), ..w.job("running") });
    assert!(running["artifacts_expire_at"].is_string());
    let token = running["token"].as_str().unwrap().to_owned();
    let by_header = w.send(Method::GET, "/api/v4/job", None, &[("JOB-TOKEN", &token)]).await;
    let by_param = w.send(Method::GET, &format!("/api/v4/job?job_token={token}"), None, &[]).await;
    for r in [by_header, by_param] {
        assert_eq!(r.status, 200, "{}", r.text());
        let got = r.json();
        common_job_and_pipeline_data(&got, &running);
        assert!(got["finished_at"].is_null());
        assert!(got["erased_at"].is_null());
    }
}

/// `GET /job`: "when token is valid but not CI_JOB_TOKEN" (jobs_spec.rb:116) and "with basic
/// auth header" (:211, a personal token in `PRIVATE-TOKEN`) are `404`; "with non running
/// job" (:200) and "without authentication" (:219) are `401`.
#[tokio::test]
async fn get_job_with_non_running_job_a_personal_token_or_none() {
    let w = World::new();
    w.get("/api/v4/job", "developer").await.expect(404, r#"{"message":"404 Not Found"}"#);
    let running = w.import(ImportJob { status: Status::Running, ..w.job("running") });
    let token = running["token"].as_str().unwrap().to_owned();
    w.post(&private(&format!("/jobs/{}/cancel", id(&running))), "developer").await;
    let r = w.send(Method::GET, "/api/v4/job", None, &[("JOB-TOKEN", &token)]).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
    let r = w.send(Method::GET, "/api/v4/job", None, &[]).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
}

/// `GET /projects/:id/jobs`, "authorized user": "returns project jobs" (jobs_spec.rb:449,
/// with the limited pagination headers), "returns correct values" (:455), "without artifacts
/// and trace" (:463), "a job with artifacts and trace" (:473) and "returns pipeline data"
/// (:477).
#[tokio::test]
async fn project_jobs_authorized_user() {
    let w = World::new();
    let plain = w.import(ImportJob { expire_in: Some("1 day".into()), ..w.job("plain") });
    let r = w.get(&private("/jobs"), "developer").await;
    assert_eq!(r.status, 200);
    for header in ["x-per-page", "x-page", "x-next-page", "x-prev-page", "link"] {
        assert_ne!(r.header(header), "<none>", "{header}");
    }
    let first = &r.json()[0];
    assert_eq!(first["id"], plain["id"]);
    assert_eq!(first["commit"]["id"], plain["pipeline"]["sha"]);
    assert_eq!(first["artifacts_expire_at"], plain["artifacts_expire_at"]);
    assert_eq!(first["tag_list"], serde_json::json!([]), "the job's tags (an imported job has none)");
    assert!(first["artifacts_file"].is_null());
    assert_eq!(first["artifacts"], serde_json::json!([]));
    for key in ["id", "ref", "sha", "status"] {
        assert_eq!(first["pipeline"][key], plain["pipeline"][key], "pipeline {key}");
    }
    // "a job with artifacts and trace": artifacts_file and a row per stored file.
    let second = w.build_with_artifacts();
    let listed = w.get(&private("/jobs"), "developer").await.json();
    let job = listed.as_array().unwrap().iter().find(|j| id(j) == second).unwrap();
    a_job_with_artifacts_and_trace(job, second, &w);
}

/// The shared example "a job with artifacts and trace" (jobs_spec.rb:473 and :652).
#[track_caller]
fn a_job_with_artifacts_and_trace(job: &Value, id: i64, w: &World) {
    let stored = w.store.job(id).unwrap().unwrap();
    let archive = stored.archive.unwrap();
    assert_eq!(job["artifacts_file"]["filename"], "artifacts.zip");
    assert_eq!(job["artifacts_file"]["size"], archive.size);
    let types: Vec<_> = job["artifacts"].as_array().unwrap().iter().map(|a| a["file_type"].clone()).collect();
    assert_eq!(types, ["archive", "metadata", "trace"]);
    for row in job["artifacts"].as_array().unwrap() {
        for key in ["size", "filename", "file_format"] {
            assert!(!row[key].is_null(), "{key} of {row}");
        }
    }
}

/// `GET /projects/:id/jobs`: "filter project with one scope element" (jobs_spec.rb:509),
/// "filter project with array of scope elements" (:518), "respond 400 when scope contains
/// invalid state" (:527).
#[tokio::test]
async fn project_jobs_filter_project_with_scope_elements() {
    let w = World::new();
    let pending = w.job_with("pending", Status::Pending, When::OnSuccess);
    let running = w.job_with("running", Status::Running, When::OnSuccess);
    w.job_with("done", Status::Success, When::OnSuccess);
    let r = w.get(&private("/jobs?scope=pending"), "developer").await;
    assert_eq!(r.status, 200);
    assert_eq!(ids(&r), [id(&pending)]);
    let r = w.get(&private("/jobs?scope[]=pending&scope[]=running"), "developer").await;
    assert_eq!(r.status, 200);
    assert_eq!(ids(&r), [id(&running), id(&pending)]);
    let r = w.get(&private("/jobs?scope[]=unknown&scope[]=running"), "developer").await;
    assert_eq!(r.status, 400, "{}", r.text());
}

/// `GET /projects/:id/jobs`, "an endpoint with keyset pagination" (jobs_spec.rb:530; the
/// shared example's four cases): keyset URL parameters in `Link`, no offset pagination
/// headers, the records one page at a time newest first, and another order `405`.
#[tokio::test]
async fn project_jobs_an_endpoint_with_keyset_pagination() {
    let w = World::new();
    let older = id(&w.import(w.job("build")));
    let newer = id(&w.import(w.job("another")));
    let r = w.get(&private("/jobs?pagination=keyset&per_page=1"), "developer").await;
    assert_eq!(r.status, 200);
    let link = r.header("link").to_owned();
    for param in ["cursor=", "pagination=keyset", "per_page=1"] {
        assert!(link.contains(param), "{link}");
    }
    for header in ["x-total", "x-total-pages", "x-page", "x-per-page", "x-next-page", "x-prev-page"] {
        assert_eq!(r.header(header), "<none>", "{header}");
    }
    assert_eq!(ids(&r), [newer]);
    let r = w.get(&next_page(&r), "developer").await;
    assert_eq!(ids(&r), [older]);
    let r = w.get(&private("/jobs?pagination=keyset&per_page=1&order_by=name&sort=asc"), "developer").await;
    r.expect(405, r#"{"error":"Keyset pagination is not yet available for this type of request"}"#);
}

/// `GET /projects/:id/jobs`, "unauthorized user": "when user is not logged in" `401`
/// (jobs_spec.rb:543), "when user is guest" `403` (:551).
#[tokio::test]
async fn project_jobs_unauthorized_user() {
    let w = World::new();
    w.import(w.job("build"));
    let r = w.send(Method::GET, &private("/jobs"), None, &[]).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
    w.get(&private("/jobs"), "guest").await.expect(403, r#"{"message":"403 Forbidden"}"#);
}

/// "GET /projects/:id/jobs offset pagination": "returns one record for the first page"
/// (jobs_spec.rb:567), "returns second record when passed in offset and per_page params"
/// (:575); "GET /projects/:id/jobs keyset pagination": "returns first page with cursor to next
/// page" (:589; the last page has no `Link`), "respects scope filters" (:607).
#[tokio::test]
async fn project_jobs_offset_and_keyset_pagination() {
    let w = World::new();
    let job = id(&w.import(w.job("build")));
    let running = id(&w.job_with("running", Status::Running, When::OnSuccess));
    let r = w.get(&private("/jobs?per_page=1"), "developer").await;
    assert_eq!(ids(&r), [running]);
    let r = w.get(&private("/jobs?page=2&per_page=1"), "developer").await;
    assert_eq!((r.status.as_u16(), ids(&r)), (200, vec![job]));
    let r = w.get(&private("/jobs?pagination=keyset&per_page=1"), "developer").await;
    assert_eq!(ids(&r), [running]);
    let r = w.get(&next_page(&r), "developer").await;
    assert_eq!((r.status.as_u16(), ids(&r)), (200, vec![job]));
    assert_eq!(r.header("link"), "<none>");
    let r = w.get(&private("/jobs?pagination=keyset&scope[]=success"), "developer").await;
    assert_eq!(ids(&r), [job]);
    assert_eq!(r.header("link"), "<none>");
}

/// `GET /projects/:id/jobs/:job_id`, "authorized user": common job data (jobs_spec.rb:643),
/// "returns specific job data" (:647: `finished_at`, `duration`), "a job with artifacts and
/// trace" (:652), common pipeline data (:656).
#[tokio::test]
async fn job_authorized_user() {
    let w = World::new();
    let job = w.import(ImportJob { expire_in: Some("1 day".into()), ..w.job("build") });
    let r = w.get(&private(&format!("/jobs/{}", id(&job))), "developer").await;
    assert_eq!(r.status, 200);
    let got = r.json();
    common_job_and_pipeline_data(&got, &job);
    assert!(got["artifacts_expire_at"].is_string());
    assert_eq!(got["finished_at"], job["finished_at"]);
    assert!(got["finished_at"].is_string());
    assert_eq!(got["duration"], job["duration"]);
    assert!(got["duration"].is_number());
    let second = w.build_with_artifacts();
    let got = w.get(&private(&format!("/jobs/{second}")), "developer").await.json();
    a_job_with_artifacts_and_trace(&got, second, &w);
}

/// `GET /projects/:id/jobs/:job_id`: "unauthorized user" `401` (jobs_spec.rb:664); "when job
/// succeeded" no `failure_reason` (:670); "when job failed" `failure_reason` (:682); "when job
/// is erased" `erased_at` (:694).
#[tokio::test]
async fn job_unauthorized_succeeded_failed_and_erased() {
    let w = World::new();
    let ok = id(&w.import(w.job("ok")));
    let r = w.send(Method::GET, &private(&format!("/jobs/{ok}")), None, &[]).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
    let got = w.get(&private(&format!("/jobs/{ok}")), "developer").await.json();
    assert!(got.get("failure_reason").is_none(), "{got}");
    let failed = id(&w.job_with("failed", Status::Failed, When::OnSuccess));
    let got = w.get(&private(&format!("/jobs/{failed}")), "developer").await.json();
    assert!(got.get("failure_reason").is_some(), "{got}");
    let erased = w.build_with_artifacts();
    let at = w.post(&private(&format!("/jobs/{erased}/erase")), "maintainer").await.json()["erased_at"].clone();
    assert!(at.is_string());
    assert_eq!(w.get(&private(&format!("/jobs/{erased}")), "developer").await.json()["erased_at"], at);
}

/// `GET /projects/:id/jobs/:job_id`, "when trace artifact record exists with no stored file"
/// (jobs_spec.rb:706): the job's only stored file is its log, so `artifacts` is one `trace`
/// row named `job.log` (here the log is stored; GitLab's case is a record whose file is not
/// uploaded yet, a state of live logs this server does not have).
#[tokio::test]
async fn job_when_trace_artifact_record_exists() {
    let w = World::new();
    let job = id(&w.import(with_log(&w, "hello\n", w.job("build"))));
    let got = w.get(&private(&format!("/jobs/{job}")), "developer").await.json();
    let artifacts = got["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 1, "{got}");
    assert_eq!(
        (artifacts[0]["file_type"].as_str(), artifacts[0]["filename"].as_str()),
        (Some("trace"), Some("job.log"))
    );
}

/// `GET /projects/:id/jobs/:job_id/trace`, "authorized user": "when log is artifact"
/// (jobs_spec.rb:759) and "when log is in ObjectStorage" (:750; the log is read through the
/// same blob store, local here, S3 in `tests/blobs.rs`) answer the log; "when no log" (:786)
/// is `200` and empty; "unauthorized user" (:809) `401`.
#[tokio::test]
async fn trace_when_log_is_artifact_when_no_log_and_unauthorized() {
    let w = World::new();
    let logged = id(&w.import(with_log(&w, "line one\nline two\n", w.job("build"))));
    let r = w.get(&private(&format!("/jobs/{logged}/trace")), "developer").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "line one\nline two\n"));
    let bare = id(&w.import(w.job("bare")));
    let r = w.get(&private(&format!("/jobs/{bare}/trace")), "developer").await;
    assert_eq!((r.status.as_u16(), r.body.len()), (200, 0));
    let r = w.send(Method::GET, &private(&format!("/jobs/{logged}/trace")), None, &[]).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
}

/// `POST .../cancel`: "user with :cancel_build permission", "cancels running or pending job"
/// (jobs_spec.rb:868: a finished job is `201` and stays `success`); "user without
/// :cancel_build permission" (:877, a reporter) `403`; "unauthorized user" (:886) `401`.
#[tokio::test]
async fn cancel_authorized_and_unauthorized_user() {
    let w = World::new();
    let job = id(&w.import(w.job("build")));
    let uri = private(&format!("/jobs/{job}/cancel"));
    let r = w.post(&uri, "developer").await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["status"], "success");
    w.post(&uri, "reporter").await.expect(403, r#"{"message":"403 Forbidden"}"#);
    w.send(Method::POST, &uri, None, &[]).await.expect(401, r#"{"message":"401 Unauthorized"}"#);
    assert_eq!(w.store.job(job).unwrap().unwrap().status, Status::Success);
}

/// `POST .../retry`, "job retry API call handler" (jobs_spec.rb:987): "when the job is a
/// build" and "user with :update_build permission" (:911, :947: `201`, the new job `pending`,
/// the old one still `canceled`); "when a build is not retryable" (:930, :957: a `created`
/// job, `403 Job is not retryable`); "user without :update_build permission" (:940, :968)
/// `403`; "unauthorized user" (:979) `401`. (The bridge, :921, is
/// `spec_parity::bridge_is_retried_by_a_developer`.)
#[tokio::test]
async fn retry_job_retry_api_call_handler() {
    let w = World::new();
    let canceled = id(&w.job_with("build", Status::Canceled, When::OnSuccess));
    let uri = private(&format!("/jobs/{canceled}/retry"));
    w.post(&uri, "reporter").await.expect(403, r#"{"message":"403 Forbidden"}"#);
    w.send(Method::POST, &uri, None, &[]).await.expect(401, r#"{"message":"401 Unauthorized"}"#);
    let r = w.post(&uri, "developer").await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["status"], "pending");
    assert_ne!(id(&r.json()), canceled);
    assert_eq!(w.store.job(canceled).unwrap().unwrap().status, Status::Canceled);
    let created = id(&w.job_with("created", Status::Created, When::OnSuccess));
    let r = w.post(&private(&format!("/jobs/{created}/retry")), "developer").await;
    r.expect(403, r#"{"message":"403 Forbidden - Job is not retryable"}"#);
}

/// `POST .../erase`, "when project is not undergoing stats refresh": "job is erasable"
/// (jobs_spec.rb:1041 "erases job content", :1043 "updates job": `erased_at`, `erased_by`)
/// and "when job has an unarchived trace artifact" (:1054; here a finished job with only a
/// log, the nearest state this server has), as a maintainer.
#[tokio::test]
async fn erase_job_is_erasable() {
    let w = World::new();
    let maintainer = w.store.user_by_username("maintainer").unwrap().unwrap().id;
    let full = w.build_with_artifacts();
    let log_only = id(&w.import(with_log(&w, "log\n", w.job("logged"))));
    for job in [full, log_only] {
        let r = w.post(&private(&format!("/jobs/{job}/erase")), "maintainer").await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert!(r.json()["artifacts_file"].is_null());
        assert_eq!(r.json()["artifacts"], serde_json::json!([]));
        let stored = w.store.job(job).unwrap().unwrap();
        assert!(stored.archive.is_none() && stored.erased_at.is_some());
        assert_eq!(stored.erased_by, Some(maintainer));
        let r = w.get(&private(&format!("/jobs/{job}/trace")), "developer").await;
        assert!(r.body.is_empty(), "the log is gone");
    }
}

/// `POST .../erase`, "job is not erasable" (jobs_spec.rb:1060: an unfinished job with a log,
/// `403`), and "when a developer erases a build": "created by the developer" `201` (:1072),
/// "created by another user" `403` (:1078).
#[tokio::test]
async fn erase_job_is_not_erasable_and_a_developer_erases_a_build() {
    let w = World::new();
    let pending = id(&w.import(with_log(&w, "log\n", ImportJob { status: Status::Pending, ..w.job("live") })));
    let r = w.post(&private(&format!("/jobs/{pending}/erase")), "maintainer").await;
    r.expect(403, r#"{"message":"403 Forbidden - Job is not erasable!"}"#);
    let job_of = |user: &str| {
        let job =
            ImportJob { artifacts: Some(fixture("infozip-basic.zip")), user: Some(user.into()), ..w.job("build") };
        id(&w.import(with_log(&w, "log\n", job)))
    };
    let other = job_of("maintainer");
    let r = w.post(&private(&format!("/jobs/{other}/erase")), "developer").await;
    r.expect(403, r#"{"message":"403 Forbidden"}"#);
    let own = job_of("developer");
    assert_eq!(w.post(&private(&format!("/jobs/{own}/erase")), "developer").await.status, 201);
}

/// `POST .../play`, "on a playable job", "when user is authorized to trigger a manual
/// action", "that is a build" (jobs_spec.rb:1126): `200`, the same job `pending`, its user the
/// caller. (The bridge, :1117, is `spec_parity::playable_bridge_is_played`.)
#[tokio::test]
async fn play_that_is_a_build() {
    let w = World::new();
    let job = w.import(ImportJob { user: Some("maintainer".into()), ..manual(&w, "deploy") });
    let r = w.post(&private(&format!("/jobs/{}/play", id(&job))), "developer").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let played = r.json();
    assert_eq!((id(&played), played["status"].as_str()), (id(&job), Some("pending")));
    assert_eq!(played["user"]["username"], "developer");
    assert_eq!(w.store.job(id(&job)).unwrap().unwrap().status, Status::Pending);
}

/// `POST .../play`, "when user is not authorized to trigger a manual action": "when user does
/// not have access to the project" `404` (jobs_spec.rb:1180), "when user is not allowed to
/// trigger the manual action" (:1189, a reporter) `403`; the job stays `manual`. "on a
/// non-playable job" (:1198): `400`, "Unplayable Job".
#[tokio::test]
async fn play_when_user_is_not_authorized_and_on_a_non_playable_job() {
    let w = World::new();
    let job = id(&w.import(manual(&w, "deploy")));
    let uri = private(&format!("/jobs/{job}/play"));
    w.post(&uri, "outsider").await.expect(404, r#"{"message":"404 Project Not Found"}"#);
    w.post(&uri, "reporter").await.expect(403, r#"{"message":"403 Forbidden"}"#);
    assert_eq!(w.store.job(job).unwrap().unwrap().status, Status::Manual);
    let done = id(&w.import(w.job("build")));
    let r = w.post(&private(&format!("/jobs/{done}/play")), "developer").await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Unplayable Job"), "{}", r.text());
}
