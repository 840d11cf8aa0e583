//! GitLab compatibility of authentication: empty credentials, token scopes and expiry,
//! `Sudo`, and keyset pagination, each row as GitLab answers it.

use artifact_server::{ImportJob, Status, When};
use axum::http::Method;

use crate::support::{PUBLIC, World, private};

#[tokio::test]
async fn an_empty_credential_is_no_credential() {
    let w = World::new();
    let job = w.import(ImportJob {
        artifacts: Some(crate::support::fixture("infozip-basic.zip")),
        ..ImportJob::new(PUBLIC, "main", "build")
    });
    let public = format!("/api/v4/projects/group%2Fpublic/jobs/{}/artifacts/docs/readme.txt", job["id"]);
    // Anonymous reads of a public project's artifacts, whatever empty token comes along.
    for (query, headers) in [
        ("", vec![("PRIVATE-TOKEN", "")]),
        ("", vec![("PRIVATE-TOKEN", "   ")]),
        ("", vec![("JOB-TOKEN", "")]),
        ("", vec![("Authorization", "Bearer ")]),
        ("?private_token=", vec![]),
        ("?job_token=&private_token=", vec![("PRIVATE-TOKEN", "")]),
    ] {
        let r = w.send(Method::GET, &format!("{public}{query}"), None, &headers).await;
        assert_eq!(r.status, 200, "{query} {headers:?}: {}", r.text());
    }
    // An empty personal token next to a valid job token: the job token counts.
    let id = w.build_with_artifacts();
    let running = w.job_with("deploy", Status::Running, When::OnSuccess);
    let job_token = running["token"].as_str().unwrap().to_owned();
    let uri = format!("{}?job_token={job_token}", private(&format!("/jobs/{id}/artifacts/docs/readme.txt")));
    let r = w.send(Method::GET, &uri, None, &[("PRIVATE-TOKEN", "")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let uri = private(&format!("/jobs/{id}/artifacts/docs/readme.txt"));
    let r = w.send(Method::GET, &format!("{uri}?private_token="), None, &[("JOB-TOKEN", &job_token)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // An empty token next to a valid personal token: the valid one counts.
    let token = w.token("reporter").to_owned();
    let r =
        w.send(Method::GET, &format!("{}?private_token=", private("/jobs")), None, &[("PRIVATE-TOKEN", &token)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Where a token is needed, an empty one is none: 401.
    let r = w.send(Method::GET, &private("/jobs"), None, &[("PRIVATE-TOKEN", "")]).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
}
