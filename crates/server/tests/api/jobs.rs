//! Reading jobs: lists (1-3), one job (4), the trace (9), bodies, scopes and pagination.

use artifact_server::{AppConfig, ImportJob, Status, When};
use axum::http::Method;
use serde_json::Value;

use crate::support::{World, private};

fn ids(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|j| j["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn project_jobs_are_newest_first_and_pipeline_jobs_oldest_first() {
    let w = World::new();
    let a = w.import(w.job("a"));
    let pipeline = a["pipeline"]["id"].as_i64().unwrap();
    let b = w.import(ImportJob { pipeline: Some(pipeline), ..w.job("b") });
    let c = w.import(w.job("c"));
    let (a, b, c) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap(), c["id"].as_i64().unwrap());
    assert_eq!(ids(&w.get(&private("/jobs"), "reporter").await.json()), [c, b, a]);
    assert_eq!(ids(&w.get(&private(&format!("/pipelines/{pipeline}/jobs")), "reporter").await.json()), [a, b]);
}

#[tokio::test]
async fn scope_takes_a_string_an_array_or_repeats_and_nothing_else() {
    let w = World::new();
    let ok = w.job_with("ok", Status::Success, When::OnSuccess)["id"].as_i64().unwrap();
    let bad = w.job_with("bad", Status::Failed, When::OnSuccess)["id"].as_i64().unwrap();
    let _manual = w.job_with("manual", Status::Manual, When::Manual);
    for (q, want) in [
        ("scope=success", vec![ok]),
        ("scope[]=failed", vec![bad]),
        ("scope[]=failed&scope[]=success", vec![bad, ok]),
        ("scope=failed&scope=success", vec![bad, ok]),
    ] {
        let r = w.get(&format!("{}?{q}", private("/jobs")), "reporter").await;
        assert_eq!(ids(&r.json()), want, "{q}");
    }
    for q in ["scope=Success", "scope[]=success&scope[]=bogus", "scope="] {
        let r = w.get(&format!("{}?{q}", private("/jobs")), "reporter").await;
        r.expect(400, r#"{"error":"scope does not have a valid value"}"#);
    }
}

#[tokio::test]
async fn pagination_headers_and_absolute_links() {
    let w = World::new();
    for i in 0..5 {
        w.import(w.job(&format!("j{i}")));
    }
    let r = w.get(&format!("{}?per_page=2&page=2&scope[]=success", private("/jobs")), "reporter").await;
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    assert_eq!(r.header("x-page"), "2");
    assert_eq!(r.header("x-per-page"), "2");
    assert_eq!(r.header("x-next-page"), "3");
    assert_eq!(r.header("x-prev-page"), "1");
    assert_eq!(r.header("x-total"), "5");
    assert_eq!(r.header("x-total-pages"), "3");
    let link = r.header("link");
    assert!(
        link.contains(
            "<http://gitlab.test/api/v4/projects/group%2Fprivate/jobs?per_page=2&scope[]=success&page=3>; rel=\"next\""
        ),
        "{link}"
    );
    assert!(link.contains("rel=\"first\"") && link.contains("rel=\"last\"") && link.contains("rel=\"prev\""));
    w.get(&format!("{}?page=abc", private("/jobs")), "reporter").await.expect(400, r#"{"error":"page is invalid"}"#);
    // Past the last page: no rows, no previous page.
    let r = w.get(&format!("{}?per_page=2&page=9", private("/jobs")), "reporter").await;
    assert_eq!((r.json().as_array().unwrap().len(), r.header("x-prev-page")), (0, ""));
    // A Host that is not a host name does not reach the links.
    let r = w.send(Method::GET, &private("/jobs"), Some("reporter"), &[("host", "evil>; rel=\"next\", <x")]).await;
    assert!(r.header("link").starts_with("<http://localhost/api/v4/"), "{}", r.header("link"));
    let r = w.get(&format!("{}?per_page=x", private("/jobs")), "reporter").await;
    r.expect(400, r#"{"error":"per_page is invalid"}"#);
    let r = w.get(&format!("{}?per_page=500", private("/jobs")), "reporter").await;
    assert_eq!(r.header("x-per-page"), "100");
}

#[tokio::test]
async fn links_use_the_base_url_when_one_is_set() {
    let config = AppConfig { base_url: Some("https://gitlab.example.com/".into()), ..AppConfig::default() };
    let w = World::with_config(config);
    w.import(w.job("a"));
    let r = w.get(&private("/jobs"), "reporter").await;
    assert!(r.header("link").starts_with("<https://gitlab.example.com/api/v4/projects/group%2Fprivate/jobs?page=1>"));
    let job = &r.json()[0];
    assert!(job["web_url"].as_str().unwrap().starts_with("https://gitlab.example.com/group/private/-/jobs/"));
}

#[tokio::test]
async fn retried_jobs_hide_from_pipeline_lists_unless_asked() {
    let w = World::new();
    let old = w.import(w.job("test"));
    let (old_id, pipeline) = (old["id"].as_i64().unwrap(), old["pipeline"]["id"].as_i64().unwrap());
    let new = w.post(&private(&format!("/jobs/{old_id}/retry")), "developer").await.json();
    let new_id = new["id"].as_i64().unwrap();
    let list = private(&format!("/pipelines/{pipeline}/jobs"));
    assert_eq!(ids(&w.get(&list, "reporter").await.json()), [new_id]);
    for q in ["include_retried=true", "include_retried=True"] {
        assert_eq!(ids(&w.get(&format!("{list}?{q}"), "reporter").await.json()), [old_id, new_id], "{q}");
    }
    let r = w.get(&format!("{list}?include_retried=maybe"), "reporter").await;
    r.expect(400, r#"{"error":"include_retried is invalid"}"#);
    // The project list shows both.
    assert_eq!(ids(&w.get(&private("/jobs"), "reporter").await.json()), [new_id, old_id]);
}

#[tokio::test]
async fn a_job_has_the_spec_fields() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let job = w.get(&private(&format!("/jobs/{id}")), "reporter").await.json();
    for key in [
        "id",
        "status",
        "stage",
        "name",
        "ref",
        "tag",
        "coverage",
        "allow_failure",
        "created_at",
        "started_at",
        "finished_at",
        "erased_at",
        "duration",
        "queued_duration",
        "user",
        "commit",
        "pipeline",
        "web_url",
        "project",
        "artifacts_file",
        "artifacts",
        "runner",
        "artifacts_expire_at",
        "archived",
        "tag_list",
    ] {
        assert!(job.get(key).is_some(), "missing {key}: {job}");
    }
    assert!(job.get("failure_reason").is_none(), "only failed jobs carry failure_reason");
    assert_eq!(job["artifacts_file"]["filename"], "artifacts.zip");
    assert_eq!(job["artifacts_file"]["size"], 2934);
    let kinds: Vec<&str> =
        job["artifacts"].as_array().unwrap().iter().map(|a| a["file_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["archive", "metadata", "trace"]);
    assert_eq!(job["artifacts"][2]["filename"], "job.log");
    assert_eq!(job["artifacts"][2]["file_format"], "raw");
    let created = job["created_at"].as_str().unwrap();
    assert!(created.len() == 24 && created.ends_with('Z') && created.as_bytes()[19] == b'.', "{created}");
    for key in ["id", "iid", "project_id", "sha", "ref", "status", "source", "created_at", "updated_at", "web_url"] {
        assert!(job["pipeline"].get(key).is_some(), "pipeline.{key}");
    }
    for key in ["id", "short_id", "created_at", "parent_ids", "title", "message", "author_name", "author_email"] {
        assert!(job["commit"].get(key).is_some(), "commit.{key}");
    }
    assert_eq!(job["user"]["username"], "developer");
    let failed = w.job_with("broken", Status::Failed, When::OnSuccess);
    assert_eq!(failed["failure_reason"], "script_failure");
}

#[tokio::test]
async fn expired_artifacts_disappear_from_the_job() {
    let w = World::new();
    // The newest success of a ref would be kept (`keep_latest.rs`): not in this project.
    w.admin.set_project(crate::support::PRIVATE, Some(false)).unwrap();
    let job = w.import(ImportJob {
        artifacts: Some(crate::support::fixture("infozip-basic.zip")),
        expire_in: Some("0s".into()),
        ..w.job("old")
    });
    assert!(job.get("artifacts_file").is_none(), "{job}");
    let id = job["id"].as_i64().unwrap();
    let r = w.get(&private(&format!("/jobs/{id}/artifacts")), "reporter").await;
    r.expect(404, r#"{"message":"404 Not found"}"#);
}

#[tokio::test]
async fn bad_ids_and_missing_jobs() {
    let w = World::new();
    w.get(&private("/jobs/abc"), "reporter").await.expect(400, r#"{"error":"job_id is invalid"}"#);
    w.get(&private("/jobs/999999"), "reporter").await.expect(404, r#"{"message":"404 Not found"}"#);
    w.get(&private("/pipelines/999/jobs"), "reporter").await.expect(404, r#"{"message":"404 Not found"}"#);
    w.get(&private("/pipelines/x/jobs"), "reporter").await.expect(400, r#"{"error":"pipeline_id is invalid"}"#);
    // A job of another project is not found through this one.
    let other = w.import(ImportJob::new(crate::support::PUBLIC, "main", "x"))["id"].as_i64().unwrap();
    w.get(&private(&format!("/jobs/{other}")), "root").await.expect(404, r#"{"message":"404 Not found"}"#);
}

#[tokio::test]
async fn bridges_list_with_their_downstream_pipeline() {
    let w = World::new();
    let child = w.import(w.job("child-build"));
    let child_pipeline = child["pipeline"]["id"].as_i64().unwrap();
    let parent = w.import(w.job("build"));
    let pipeline = parent["pipeline"]["id"].as_i64().unwrap();
    let bridge = w.import(ImportJob {
        pipeline: Some(pipeline),
        bridge: true,
        downstream: Some(child_pipeline),
        ..w.job("trigger")
    });
    let list = w.get(&private(&format!("/pipelines/{pipeline}/bridges")), "reporter").await.json();
    assert_eq!(ids(&list), [bridge["id"].as_i64().unwrap()]);
    assert_eq!(list[0]["downstream_pipeline"]["id"], child_pipeline);
    assert!(list[0].get("artifacts").is_none() && list[0].get("artifacts_file").is_none());
    // Bridges are not in the jobs lists, and a child pipeline's jobs list works.
    let jobs = w.get(&private(&format!("/pipelines/{pipeline}/jobs")), "reporter").await.json();
    assert_eq!(ids(&jobs), [parent["id"].as_i64().unwrap()]);
    let jobs = w.get(&private(&format!("/pipelines/{child_pipeline}/jobs")), "reporter").await.json();
    assert_eq!(ids(&jobs), [child["id"].as_i64().unwrap()]);
}

#[tokio::test]
async fn the_trace_is_plain_text_inline_and_empty_without_one() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let r = w.get(&private(&format!("/jobs/{id}/trace")), "reporter").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "line one\nline two\n");
    assert_eq!(r.header("content-type"), "text/plain");
    assert_eq!(r.header("content-disposition"), format!("infile; filename=\"{id}.log\""));
    // New bytes only, by Range.
    let r =
        w.send(Method::GET, &private(&format!("/jobs/{id}/trace")), Some("reporter"), &[("Range", "bytes=9-")]).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (206, "line two\n"));
    let bare = w.import(w.job("no-log"))["id"].as_i64().unwrap();
    let r = w.get(&private(&format!("/jobs/{bare}/trace")), "reporter").await;
    assert_eq!((r.status.as_u16(), r.body.len()), (200, 0));
}

#[tokio::test]
async fn pipeline_status_follows_its_jobs() {
    let w = World::new();
    let a = w.job_with("a", Status::Running, When::OnSuccess);
    let pipeline = a["pipeline"]["id"].as_i64().unwrap();
    assert_eq!(a["pipeline"]["status"], "running");
    let a_id = a["id"].as_i64().unwrap();
    let r = w.send(Method::POST, &private(&format!("/jobs/{a_id}/cancel")), Some("developer"), &[]).await;
    assert_eq!(r.json()["pipeline"]["status"], "canceled");
    let b = w.import(ImportJob { pipeline: Some(pipeline), status: Status::Success, ..w.job("b") });
    assert_eq!(b["pipeline"]["status"], "canceled");
}
