//! Who may do what: tokens, roles, job tokens, anonymous reads, and no existence leaks.

use artifact_server::{ImportJob, Status, When};
use axum::http::Method;

use crate::support::{PUBLIC, World, private};

#[tokio::test]
async fn no_or_unknown_credentials_are_401_on_the_jobs_endpoints() {
    let w = World::new();
    let r = w.send(Method::GET, &private("/jobs"), None, &[]).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
    let r = w.send(Method::GET, &private("/jobs"), None, &[("PRIVATE-TOKEN", "glpat-nope")]).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
    let r = w.send(Method::GET, "/api/v4/user", None, &[("Authorization", "Bearer glpat-nope")]).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
    // Authentication comes before parameter checks, as in GitLab.
    let r = w.send(Method::GET, &private("/jobs/abc"), None, &[]).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
    let r = w.send(Method::GET, &format!("{}?scope=bogus", private("/jobs")), None, &[]).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
    // Public projects still need a token on the jobs endpoints.
    let r = w.send(Method::GET, "/api/v4/projects/group%2Fpublic/jobs", None, &[]).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn every_token_form_is_accepted() {
    let w = World::new();
    let token = w.token("reporter").to_owned();
    for (uri, headers) in [
        (private("/jobs"), vec![("PRIVATE-TOKEN", token.as_str())]),
        (private("/jobs"), vec![("Authorization", &*format!("Bearer {token}"))]),
        (format!("{}?private_token={token}", private("/jobs")), vec![]),
    ] {
        let r = w.send(Method::GET, &uri, None, &headers).await;
        assert_eq!(r.status, 200, "{uri} {headers:?}: {}", r.text());
    }
}

#[tokio::test]
async fn a_private_project_is_404_to_outsiders_never_403() {
    let w = World::new();
    let id = w.build_with_artifacts();
    for uri in [
        private("/jobs"),
        private(&format!("/jobs/{id}")),
        private(&format!("/jobs/{id}/artifacts")),
        private(&format!("/jobs/{id}/artifacts/docs/readme.txt")),
        private(&format!("/jobs/{id}/trace")),
        private(""),
    ] {
        let r = w.get(&uri, "outsider").await;
        r.expect(404, r#"{"message":"404 Project Not Found"}"#);
    }
    let r = w.post(&private(&format!("/jobs/{id}/cancel")), "outsider").await;
    r.expect(404, r#"{"message":"404 Project Not Found"}"#);
    // Anonymous artifact reads of a private project: 404 too.
    let r = w.send(Method::GET, &private(&format!("/jobs/{id}/artifacts")), None, &[]).await;
    r.expect(404, r#"{"message":"404 Project Not Found"}"#);
    let r = w.get("/api/v4/projects/nobody%2Fnothing/jobs", "root").await;
    r.expect(404, r#"{"message":"404 Project Not Found"}"#);
}

#[tokio::test]
async fn roles_gate_reads_actions_and_deletion() {
    let w = World::new();
    let id = w.build_with_artifacts();
    // A guest sees the project but not its jobs.
    w.get(&private("/jobs"), "guest").await.expect(403, r#"{"message":"403 Forbidden"}"#);
    assert_eq!(w.get(&private("/jobs"), "reporter").await.status, 200);
    // Acting needs developer.
    let r = w.post(&private(&format!("/jobs/{id}/retry")), "reporter").await;
    r.expect(403, r#"{"message":"403 Forbidden"}"#);
    assert_eq!(w.post(&private(&format!("/jobs/{id}/retry")), "developer").await.status, 201);
    // Deleting artifacts needs maintainer.
    let del = private(&format!("/jobs/{id}/artifacts"));
    let r = w.send(Method::DELETE, &del, Some("developer"), &[]).await;
    r.expect(403, r#"{"message":"403 Forbidden"}"#);
    assert_eq!(w.send(Method::DELETE, &del, Some("maintainer"), &[]).await.status, 204);
    // Administrators act everywhere without membership.
    assert_eq!(w.get(&private(&format!("/jobs/{id}")), "root").await.status, 200);
}

#[tokio::test]
async fn public_projects_are_readable_by_anyone_and_their_artifacts_anonymously() {
    let w = World::new();
    let job = w.import(ImportJob {
        artifacts: Some(crate::support::fixture("infozip-basic.zip")),
        ..ImportJob::new(PUBLIC, "main", "build")
    });
    let id = job["id"].as_i64().unwrap();
    let base = "/api/v4/projects/group%2Fpublic";
    assert_eq!(w.get(&format!("{base}/jobs"), "outsider").await.status, 200);
    let r = w.send(Method::GET, &format!("{base}/jobs/{id}/artifacts/docs/readme.txt"), None, &[]).await;
    assert_eq!(r.status, 200);
    let r = w.send(Method::GET, &format!("{base}/jobs/artifacts/main/download?job=build"), None, &[]).await;
    assert_eq!(r.status, 200);
    // Acting still needs a role.
    assert_eq!(w.post(&format!("{base}/jobs/{id}/retry"), "outsider").await.status, 403);
}

#[tokio::test]
async fn job_tokens_work_on_artifact_routes_only_while_the_job_runs() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let running = w.job_with("deploy", Status::Running, When::OnSuccess);
    let token = running["token"].as_str().expect("a running job's token").to_owned();
    let hdr = [("JOB-TOKEN", token.as_str())];
    let r = w.send(Method::GET, &private(&format!("/jobs/{id}/artifacts/docs/readme.txt")), None, &hdr).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let uri = format!("{}?job_token={token}", private("/jobs/artifacts/main/download"));
    let r = w.send(Method::GET, &format!("{uri}&job=build"), None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // /job answers with the token's job.
    let r = w.send(Method::GET, "/api/v4/job", None, &hdr).await;
    assert_eq!(r.json()["id"], running["id"]);
    // Not on the jobs endpoints.
    let r = w.send(Method::GET, &private("/jobs"), None, &hdr).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
    // Not once the job stopped running.
    let rid = running["id"].as_i64().unwrap();
    assert_eq!(w.post(&private(&format!("/jobs/{rid}/cancel")), "developer").await.status, 201);
    let r = w.send(Method::GET, &private(&format!("/jobs/{id}/artifacts")), None, &hdr).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
}

#[tokio::test]
async fn user_version_and_project_answer_like_gitlab() {
    let w = World::new();
    let r = w.get("/api/v4/user", "developer").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["username"], "developer");
    assert_eq!(r.json()["state"], "active");
    let r = w.get("/api/v4/version", "developer").await;
    let v = r.json();
    assert!(v["version"].as_str().unwrap().split('.').count() == 3, "{v}");
    assert!(v["revision"].is_string());
    let r = w.get(&private(""), "reporter").await;
    let p = r.json();
    assert_eq!(p["path_with_namespace"], "group/private");
    assert_eq!(p["path"], "private");
    assert_eq!(p["visibility"], "private");
    assert_eq!(p["web_url"], "http://gitlab.test/group/private");
    // The numeric id works as well as the encoded path.
    let id = p["id"].as_i64().unwrap();
    assert_eq!(w.get(&format!("/api/v4/projects/{id}"), "reporter").await.json()["id"], id);
}
