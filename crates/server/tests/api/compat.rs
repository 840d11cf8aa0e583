//! GitLab compatibility of authentication: empty credentials, token scopes and expiry,
//! `Sudo`, and keyset pagination, each row as GitLab answers it.

use artifact_server::{ImportJob, Scope, Status, When};
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

const SCOPE_BODY: &str = r#"{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api read_api"}"#;

#[tokio::test]
async fn a_read_api_token_reads_and_may_not_act() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let (token, _) = w.admin.add_token_with("developer", &[Scope::ReadApi], None).unwrap();
    let hdr = [("PRIVATE-TOKEN", token.as_str())];
    for uri in [
        private("/jobs"),
        private(&format!("/jobs/{id}")),
        private(&format!("/jobs/{id}/trace")),
        private(&format!("/jobs/{id}/artifacts")),
        private(&format!("/jobs/{id}/artifacts/docs/readme.txt")),
        "/api/v4/user".to_owned(),
    ] {
        let r = w.send(Method::GET, &uri, None, &hdr).await;
        assert_eq!(r.status, 200, "{uri}: {}", r.text());
        assert_eq!(w.send(Method::HEAD, &uri, None, &hdr).await.status, 200, "HEAD {uri}");
    }
    for (method, action) in [
        (Method::POST, "cancel"),
        (Method::POST, "retry"),
        (Method::POST, "erase"),
        (Method::POST, "play"),
        (Method::POST, "artifacts/keep"),
        (Method::DELETE, "artifacts"),
    ] {
        let r = w.send(method, &private(&format!("/jobs/{id}/{action}")), None, &hdr).await;
        assert_eq!(r.status, 403, "{action}: {}", r.text());
        assert_eq!(r.text(), SCOPE_BODY, "{action}: GitLab's body, key for key");
        assert_eq!(
            r.header("www-authenticate"),
            "Bearer realm=\"Protected by OAuth 2.0\", error=\"insufficient_scope\", error_description=\"The \
             request requires higher privileges than provided by the access token.\", scope=\"api read_api\""
        );
    }
    // Scopes come before the project: a project the token cannot see is still a 403.
    let r = w.send(Method::POST, "/api/v4/projects/nobody%2Fnothing/jobs/1/cancel", None, &hdr).await;
    assert_eq!((r.status.as_u16(), r.text()), (403, SCOPE_BODY.to_owned()));
    // A sudo-only token reads nothing by itself.
    let (sudo_only, _) = w.admin.add_token_with("root", &[Scope::Sudo], None).unwrap();
    let r = w.send(Method::GET, &private("/jobs"), None, &[("PRIVATE-TOKEN", &sudo_only)]).await;
    assert_eq!((r.status.as_u16(), r.text()), (403, SCOPE_BODY.to_owned()));
}

#[tokio::test]
async fn expired_and_revoked_tokens_are_401_invalid_token() {
    let w = World::new();
    let today = artifact_server::Timestamp::now();
    let day = |t: artifact_server::Timestamp| t.to_string()[..10].to_owned();
    let tomorrow = day(today.plus(std::time::Duration::from_secs(86_400)));
    let (expiring, _) = w.admin.add_token_with("reporter", &[Scope::Api], Some(&tomorrow)).unwrap();
    let r = w.send(Method::GET, &private("/jobs"), None, &[("PRIVATE-TOKEN", &expiring)]).await;
    assert_eq!(r.status, 200, "works through the day before its expiry: {}", r.text());
    let (expired, _) = w.admin.add_token_with("reporter", &[Scope::Api], Some(&day(today))).unwrap();
    let r = w.send(Method::GET, &private("/jobs"), None, &[("PRIVATE-TOKEN", &expired)]).await;
    let why = "Token is expired. You can either do re-authorization or token refresh.";
    r.expect(401, &format!(r#"{{"error":"invalid_token","error_description":"{why}"}}"#));
    assert_eq!(
        r.header("www-authenticate"),
        format!("Bearer realm=\"Protected by OAuth 2.0\", error=\"invalid_token\", error_description=\"{why}\"")
    );
    // Revoked by the token, or by its id: never works again, on any route.
    let (by_token, _) = w.admin.add_token_with("reporter", &[Scope::Api], None).unwrap();
    let (by_id, record) = w.admin.add_token_with("reporter", &[Scope::ReadApi], None).unwrap();
    w.admin.revoke_token(artifact_server::TokenRef::Token(&by_token)).unwrap();
    let revoked = w.admin.revoke_token(artifact_server::TokenRef::Id(record.id)).unwrap();
    assert!(revoked.revoked && revoked.scopes == [Scope::ReadApi]);
    assert!(w.admin.revoke_token(artifact_server::TokenRef::Id(record.id)).is_err(), "once");
    let why = "Token was revoked. You have to re-authorize from the user.";
    for token in [&by_token, &by_id] {
        for uri in [private("/jobs"), "/api/v4/user".to_owned()] {
            let r = w.send(Method::GET, &uri, None, &[("PRIVATE-TOKEN", token)]).await;
            r.expect(401, &format!(r#"{{"error":"invalid_token","error_description":"{why}"}}"#));
        }
    }
    // Not a token at all: GitLab's plain 401.
    let r = w.send(Method::GET, &private("/jobs"), None, &[("PRIVATE-TOKEN", "glpat-unknown")]).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
    assert_eq!(r.header("www-authenticate"), "<none>");
    // Bad expiry days are refused when the token is made.
    for bad in ["2026-02-30", "tomorrow", "2026-1-1"] {
        assert!(w.admin.add_token_with("reporter", &[Scope::Api], Some(bad)).is_err(), "{bad}");
    }
    assert!(w.admin.add_token_with("reporter", &[], None).is_err(), "a token needs a scope");
}

#[tokio::test]
async fn the_user_endpoint_shows_admin_fields_only_to_admins() {
    let w = World::new();
    let admin = w.get("/api/v4/user", "root").await.json();
    assert_eq!((admin["username"].as_str(), admin["is_admin"].as_bool()), (Some("root"), Some(true)));
    assert!(admin.get("note").is_some());
    let dev = w.get("/api/v4/user", "developer").await.json();
    assert_eq!(dev["username"], "developer");
    assert!(dev.get("is_admin").is_none() && dev.get("note").is_none(), "{dev}");
}

#[tokio::test]
async fn an_admin_token_with_sudo_acts_as_another_user_exactly_as_gitlab() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let (sudo, _) = w.admin.add_token_with("root", &[Scope::Api, Scope::Sudo], None).unwrap();
    let as_user = |who: &str| vec![("PRIVATE-TOKEN", sudo.clone()), ("Sudo", who.to_owned())];
    let send = |method: Method, uri: String, headers: Vec<(&'static str, String)>| {
        let w = &w;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            w.send(method, &uri, None, &h).await
        }
    };
    // /user is the sudoed user, by name or by id.
    let r = send(Method::GET, "/api/v4/user".into(), as_user("developer")).await;
    assert_eq!(r.json()["username"], "developer");
    assert!(r.json().get("is_admin").is_none());
    let dev_id = r.json()["id"].as_i64().unwrap();
    let r = send(Method::GET, "/api/v4/user".into(), as_user(&dev_id.to_string())).await;
    assert_eq!(r.json()["username"], "developer");
    // The parameter wins over the header.
    let r = send(Method::GET, "/api/v4/user?sudo=reporter".into(), as_user("developer")).await;
    assert_eq!(r.json()["username"], "reporter");
    // Acting: authorised and attributed as that user.
    let r = send(Method::POST, private(&format!("/jobs/{id}/retry")), as_user("developer")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["user"]["username"], "developer", "the new job is the developer's");
    let r = send(Method::POST, private(&format!("/jobs/{id}/retry")), as_user("reporter")).await;
    r.expect(403, r#"{"message":"403 Forbidden"}"#);
    let r = send(Method::GET, private("/jobs"), as_user("outsider")).await;
    r.expect(404, r#"{"message":"404 Project Not Found"}"#);
    // An unknown user; an empty Sudo names nobody.
    let r = send(Method::GET, "/api/v4/user".into(), as_user("nobody")).await;
    r.expect(404, r#"{"message":"404 User with ID or username 'nobody' Not Found"}"#);
    let r = send(Method::GET, "/api/v4/user".into(), as_user("")).await;
    r.expect(404, r#"{"message":"404 User with ID or username '' Not Found"}"#);
    // Not an administrator's token, or one without the sudo scope.
    let dev = w.token("developer").to_owned();
    let r = w.send(Method::GET, "/api/v4/user", None, &[("PRIVATE-TOKEN", &dev), ("Sudo", "reporter")]).await;
    r.expect(403, r#"{"message":"403 Forbidden - Must be admin to use sudo"}"#);
    let root = w.token("root").to_owned();
    let r = w.send(Method::GET, "/api/v4/user", None, &[("PRIVATE-TOKEN", &root), ("Sudo", "reporter")]).await;
    r.expect(
        403,
        r#"{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"sudo"}"#,
    );
    // Without a token, or with a job token.
    let r = w.send(Method::GET, "/api/v4/user", None, &[("Sudo", "reporter")]).await;
    r.expect(401, r#"{"message":"401 Unauthorized"}"#);
    let running = w.job_with("deploy", Status::Running, When::OnSuccess);
    let job_token = running["token"].as_str().unwrap().to_owned();
    let uri = private(&format!("/jobs/{id}/artifacts/docs/readme.txt"));
    let r = w.send(Method::GET, &uri, None, &[("JOB-TOKEN", &job_token), ("Sudo", "reporter")]).await;
    r.expect(403, r#"{"message":"403 Forbidden - Must be admin to use sudo"}"#);
    // A sudo-scoped token acting as someone else needs no other scope; as itself it does.
    let (sudo_only, _) = w.admin.add_token_with("root", &[Scope::Sudo], None).unwrap();
    let r = w.send(Method::GET, &private("/jobs"), None, &[("PRIVATE-TOKEN", &sudo_only), ("Sudo", "developer")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = w.send(Method::GET, &private("/jobs"), None, &[("PRIVATE-TOKEN", &sudo_only), ("Sudo", "root")]).await;
    assert_eq!((r.status.as_u16(), r.text()), (403, SCOPE_BODY.to_owned()));
}

#[tokio::test]
async fn keyset_pagination_walks_project_jobs_once_each_while_jobs_are_added() {
    let w = World::new();
    let mut ids: Vec<i64> = (0..7)
        .map(|i| w.job_with(&format!("j{i}"), Status::Success, When::OnSuccess)["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    let mut uri = format!("{}?pagination=keyset&per_page=3", private("/jobs"));
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = w.get(&uri, "reporter").await;
        assert_eq!(r.status, 200, "{uri}: {}", r.text());
        for h in ["x-total", "x-total-pages", "x-page", "x-next-page", "x-prev-page", "x-per-page"] {
            assert_eq!(r.header(h), "<none>", "{h}: keyset pages have no offset headers");
        }
        seen.extend(r.json().as_array().unwrap().iter().map(|j| j["id"].as_i64().unwrap()));
        pages += 1;
        if pages == 1 {
            // A job made during the walk is newer than every cursor: never seen, never
            // pushing one that existed into a repeat.
            w.job_with("late", Status::Success, When::OnSuccess);
        }
        let link = r.header("link").to_owned();
        if link == "<none>" {
            break;
        }
        assert!(link.ends_with(r#">; rel="next""#) && !link.contains("rel=\"prev\""), "{link}");
        let next = link.trim_start_matches('<').split('>').next().unwrap();
        assert!(next.starts_with("http://gitlab.test/api/v4/projects/group%2Fprivate/jobs?cursor="), "{next}");
        assert!(next.contains("&pagination=keyset&per_page=3"), "{next}");
        uri = next.trim_start_matches("http://gitlab.test").to_owned();
        assert!(pages < 10, "the walk ends");
    }
    assert_eq!(seen, ids, "every job that existed, once, newest first");
    assert_eq!(pages, 3);
    // Only GitLab's order pages by keyset; a cursor not made here is a 400.
    let r = w.get(&format!("{}?pagination=keyset&order_by=name", private("/jobs")), "reporter").await;
    r.expect(405, r#"{"error":"Keyset pagination is not yet available for this type of request"}"#);
    let r = w.get(&format!("{}?pagination=keyset&cursor=bogus", private("/jobs")), "reporter").await;
    r.expect(400, r#"{"error":"cursor is invalid"}"#);
    // Without pagination=keyset, offset pagination as before.
    let r = w.get(&format!("{}?per_page=3", private("/jobs")), "reporter").await;
    assert_eq!(r.header("x-total"), "8");
}
