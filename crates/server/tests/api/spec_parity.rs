//! Cases of GitLab's own request specs (`spec/requests/api/ci/jobs_spec.rb`,
//! `job_artifacts_spec.rb`, `pipelines_spec.rb` in GitLab's repository), each test named
//! after the spec's context, that an earlier version answered otherwise (#25).

use artifact_server::ImportJob;
use axum::http::Method;

use crate::support::{PUBLIC, World, private};

fn public(rest: &str) -> String {
    format!("/api/v4/projects/group%2Fpublic{rest}")
}

/// pipelines_spec.rb, `GET /projects/:id/pipelines/:pipeline_id/jobs` and `.../bridges`,
/// "when user is not logged in": a private project's pipeline is `404 Project Not Found`, a
/// public one's lists are read anonymously.
#[tokio::test]
async fn pipeline_lists_when_user_is_not_logged_in() {
    let w = World::new();
    let private_pipeline = w.import(w.job("build"))["pipeline"]["id"].as_i64().unwrap();
    let built = w.import(ImportJob::new(PUBLIC, "main", "build"));
    let pipeline = built["pipeline"]["id"].as_i64().unwrap();
    for list in ["jobs", "bridges"] {
        let r = w.send(Method::GET, &private(&format!("/pipelines/{private_pipeline}/{list}")), None, &[]).await;
        r.expect(404, r#"{"message":"404 Project Not Found"}"#);
        let r = w.send(Method::GET, &public(&format!("/pipelines/{pipeline}/{list}")), None, &[]).await;
        assert_eq!(r.status, 200, "{list}: {}", r.text());
    }
    let r = w.send(Method::GET, &public(&format!("/pipelines/{pipeline}/jobs")), None, &[]).await;
    assert_eq!(r.json()[0]["id"], built["id"]);
    // The project's own job list stays authenticated (jobs_spec.rb: "unauthorized user").
    let r = w.send(Method::GET, &public("/jobs"), None, &[]).await;
    assert_eq!(r.status, 401);
}

/// jobs_spec.rb and pipelines_spec.rb, "filter jobs with hash": a scope that is a hash is
/// `400` (jobs and bridges alike).
#[tokio::test]
async fn filter_jobs_with_hash() {
    let w = World::new();
    let pipeline = w.import(w.job("build"))["pipeline"]["id"].as_i64().unwrap();
    for uri in [
        private("/jobs?scope[hello]=pending&scope[world]=running"),
        private(&format!("/pipelines/{pipeline}/jobs?scope[hello]=pending&scope[world]=running")),
        private(&format!("/pipelines/{pipeline}/bridges?scope[unknown]=true")),
    ] {
        w.get(&uri, "reporter").await.expect(400, r#"{"error":"scope is invalid"}"#);
    }
    // "filter jobs with array of scope elements" still lists.
    assert_eq!(w.get(&private("/jobs?scope[]=success&scope[]=running"), "reporter").await.status, 200);
}

/// jobs_spec.rb, `GET /job`, "when token is valid but not CI_JOB_TOKEN": `404`; no token
/// or a bad one stays `401`.
#[tokio::test]
async fn current_job_when_token_is_valid_but_not_ci_job_token() {
    let w = World::new();
    w.get("/api/v4/job", "reporter").await.expect(404, r#"{"message":"404 Not Found"}"#);
    assert_eq!(w.send(Method::GET, "/api/v4/job", None, &[]).await.status, 401);
    assert_eq!(w.send(Method::GET, "/api/v4/job", None, &[("PRIVATE-TOKEN", "glpat-nobody")]).await.status, 401);
}

/// jobs_spec.rb, "downloads artifact" (by id and by ref, local storage): the download
/// carries `Content-Transfer-Encoding: binary` among GitLab's headers.
#[tokio::test]
async fn downloads_artifact_with_gitlabs_headers() {
    let w = World::new();
    let id = w.build_with_artifacts();
    for uri in [private(&format!("/jobs/{id}/artifacts")), private("/jobs/artifacts/main/download?job=build")] {
        let r = w.get(&uri, "reporter").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-transfer-encoding"), "binary", "{uri}");
        assert_eq!(r.header("content-type"), "application/octet-stream");
    }
}

/// The same answers through the proxy, which forwards them: the upstream's answer arrives
/// unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_passes_these_answers_on() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let w = World::new();
    let id = w.build_with_artifacts();
    let built = w.import(ImportJob::new(PUBLIC, "main", "build"));
    let pipeline = built["pipeline"]["id"].as_i64().unwrap();
    let up = crate::support::upstream(w.app.clone()).await;
    let proxy = artifact_server::proxy_app(artifact_server::ProxyConfig::new(&up).unwrap()).unwrap();
    let reporter = w.token("reporter").to_owned();
    let ask = |uri: String, token: Option<String>| {
        let proxy = proxy.clone();
        async move {
            let mut req = axum::http::Request::get(&uri).header("host", "proxy.test");
            if let Some(token) = token {
                req = req.header("PRIVATE-TOKEN", token);
            }
            let resp = proxy.oneshot(req.body(axum::body::Body::empty()).unwrap()).await.unwrap();
            let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (status, headers, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (status, _, body) = ask(public(&format!("/pipelines/{pipeline}/jobs")), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = ask("/api/v4/job".into(), Some(reporter.clone())).await;
    assert_eq!((status, body.as_str()), (404, r#"{"message":"404 Not Found"}"#));
    let (status, _, _) = ask(private("/jobs?scope[hello]=pending"), Some(reporter.clone())).await;
    assert_eq!(status, 400);
    // The newest success of `main` expired a week ago: kept (`keep_latest.rs`), and read
    // through the proxy as from the server.
    crate::support::expire_a_week_ago(&w, id);
    let (status, headers, _) = ask(private(&format!("/jobs/{id}/artifacts")), Some(reporter.clone())).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("content-transfer-encoding").unwrap(), "binary");
    for uri in
        [format!("/jobs/{id}/artifacts/docs/readme.txt"), "/jobs/artifacts/main/raw/docs/readme.txt?job=build".into()]
    {
        let (status, _, body) = ask(private(&uri), Some(reporter.clone())).await;
        let direct = w.get(&private(&uri), "developer").await;
        assert_eq!((status, body.as_bytes()), (200, &direct.body[..]), "{uri}");
    }
}

/// jobs_spec.rb, `POST /projects/:id/jobs/:job_id/retry`, "when the job is a bridge": a
/// finished bridge is retried by a developer (`201`, the new bridge `pending`, without the
/// old run's downstream pipeline); a reporter may not.
#[tokio::test]
async fn bridge_is_retried_by_a_developer() {
    let w = World::new();
    let pipeline = w.import(w.job("build"))["pipeline"]["id"].as_i64().unwrap();
    let child = w.import(w.job("child"))["pipeline"]["id"].as_i64().unwrap();
    let bridge = w.import(ImportJob {
        pipeline: Some(pipeline),
        bridge: true,
        downstream: Some(child),
        status: artifact_server::Status::Canceled,
        ..w.job("trigger")
    });
    let retry = private(&format!("/jobs/{}/retry", bridge["id"]));
    assert_eq!(w.post(&retry, "reporter").await.status, 403);
    let r = w.post(&retry, "developer").await;
    assert_eq!(r.status, 201, "{}", r.text());
    let new = r.json();
    assert_eq!(new["status"], "pending");
    assert_ne!(new["id"], bridge["id"]);
    let bridges = w.get(&private(&format!("/pipelines/{pipeline}/bridges")), "reporter").await.json();
    let listed: Vec<_> = bridges.as_array().unwrap().iter().map(|b| (b["id"].clone(), b["status"].clone())).collect();
    assert_eq!(listed, [(new["id"].clone(), "pending".into())], "the retried bridge is hidden, the new one listed");
    assert!(bridges[0]["downstream_pipeline"].is_null());
    // Retrying the old one again: it is retried already.
    w.post(&retry, "developer").await.expect(403, r#"{"message":"403 Forbidden - Job is not retryable"}"#);
}

/// jobs_spec.rb, `POST /projects/:id/jobs/:job_id/play`, "on a playable job", "that is a
/// bridge": `200`, the same bridge `pending`, as the caller.
#[tokio::test]
async fn playable_bridge_is_played() {
    let w = World::new();
    let pipeline = w.import(w.job("build"))["pipeline"]["id"].as_i64().unwrap();
    let bridge = w.import(ImportJob {
        pipeline: Some(pipeline),
        bridge: true,
        status: artifact_server::Status::Manual,
        when: artifact_server::When::Manual,
        user: Some("maintainer".into()),
        ..w.job("deploy-downstream")
    });
    let r = w.post(&private(&format!("/jobs/{}/play", bridge["id"])), "developer").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let played = r.json();
    assert_eq!((played["id"].clone(), played["status"].clone()), (bridge["id"].clone(), "pending".into()));
    assert_eq!(played["user"]["username"], "developer");
    // The other actions stay the builds' (GitLab finds builds for them): a bridge is 404.
    for action in ["cancel", "erase"] {
        let r = w.post(&private(&format!("/jobs/{}/{action}", bridge["id"])), "maintainer").await;
        assert_eq!(r.status, 404, "{action}");
    }
}
