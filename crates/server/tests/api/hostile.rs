//! Hostile requests against every route: ids with signs, spaces and 25 digits, refs of
//! 10,000 bytes, invalid UTF-8 (percent-encoded), page parameters out of every range, up to
//! 10,000 query parameters. Each gets a 4xx or a success with GitLab's JSON, never a 5xx or
//! a panic (a property test), and the cases GitLab answers in a known way are pinned.

use axum::http::Method;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::support::{World, private};

/// One of `items`, owned.
fn one_of(items: &[&str]) -> impl Strategy<Value = String> + use<> {
    proptest::sample::select(items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
}

/// Ids as a hostile caller writes them (percent-encoded where a URL needs it).
fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        one_of(&["1", "-1", "+5", "%205", "5%20", "0", "1e3", "0x10", "%FF", "%C3%28"]),
        "[0-9]{1,25}",
        "[a-z%]{0,12}",
    ]
}

fn project() -> impl Strategy<Value = String> {
    one_of(&["group%2Fprivate", "group%2Fpublic", "1", "99999999999999999999", "%FF%FE", "group%2F..%2Fprivate"])
}

fn refname() -> impl Strategy<Value = String> {
    prop_oneof![one_of(&["main", &"x".repeat(10_000), "%FF%FE", "..%2F..%2Fetc", "%00"]), "[a-z/%.]{0,30}"]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("page"),
        Just("per_page"),
        Just("scope"),
        Just("scope[]"),
        Just("job"),
        Just("pagination"),
        Just("cursor"),
        Just("include_retried"),
        Just("order_by"),
        Just("x"),
    ];
    let value = prop_oneof![
        Just("-1"),
        Just("0"),
        Just("1"),
        Just("1e9"),
        Just("1000000000"),
        Just("99999999999999999999999"),
        Just("abc"),
        Just(""),
        Just("%FF"),
        Just("keyset"),
        Just("success"),
        Just("build"),
        Just("%20%207%20"),
    ];
    proptest::collection::vec((key, value), 0..12)
        .prop_map(|pairs| pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"))
}

/// A route of the 15 operations, with its method, filled in from the parts.
fn request() -> impl Strategy<Value = (Method, String)> {
    (0usize..16, project(), id(), id(), refname(), refname(), query()).prop_map(
        |(route, p, id, pipeline, r, path, q)| {
            let base = format!("/api/v4/projects/{p}");
            let (method, uri) = match route {
                0 => (Method::GET, format!("{base}/jobs?{q}")),
                1 => (Method::GET, format!("{base}/pipelines/{pipeline}/jobs?{q}")),
                2 => (Method::GET, format!("{base}/pipelines/{pipeline}/bridges?{q}")),
                3 => (Method::GET, format!("{base}/jobs/{id}?{q}")),
                4 => (Method::GET, format!("{base}/jobs/{id}/artifacts?{q}")),
                5 => (Method::GET, format!("{base}/jobs/artifacts/{r}/download?job=build&{q}")),
                6 => (Method::GET, format!("{base}/jobs/{id}/artifacts/{path}?{q}")),
                7 => (Method::GET, format!("{base}/jobs/artifacts/{r}/raw/{path}?job=build&{q}")),
                8 => (Method::GET, format!("{base}/jobs/{id}/trace?{q}")),
                9 => (Method::POST, format!("{base}/jobs/{id}/cancel?{q}")),
                10 => (Method::POST, format!("{base}/jobs/{id}/retry?{q}")),
                11 => (Method::POST, format!("{base}/jobs/{id}/erase?{q}")),
                12 => (Method::POST, format!("{base}/jobs/{id}/artifacts/keep?{q}")),
                13 => (Method::DELETE, format!("{base}/jobs/{id}/artifacts?{q}")),
                14 => (Method::POST, format!("{base}/jobs/{id}/play?{q}")),
                _ => (Method::GET, format!("{base}/jobs/artifacts/{r}/download?job={path}&{q}")),
            };
            (method, uri)
        },
    )
}

#[test]
fn hostile_requests_on_every_route_get_a_4xx_or_an_answer_never_a_5xx() {
    let w = World::new();
    w.build_with_artifacts();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut runner = TestRunner::new(Config { cases: 600, ..Config::default() });
    runner
        .run(
            &(request(), prop_oneof![Just(Some("developer")), Just(Some("guest")), Just(None)]),
            |((method, uri), user)| {
                let reply = runtime.block_on(w.send(method.clone(), &uri, user, &[]));
                let status = reply.status.as_u16();
                prop_assert!(status < 500, "{method} {uri}: {status} {}", reply.text());
                if status >= 400 {
                    // GitLab's JSON, or its plain `Bad Request` for a malformed string.
                    let json = serde_json::from_slice::<serde_json::Value>(&reply.body).is_ok();
                    let malformed = status == 400 && reply.body == b"Bad Request";
                    prop_assert!(json || malformed, "{uri}: {status} {}", reply.text());
                }
                Ok(())
            },
        )
        .unwrap();
}

#[tokio::test]
async fn the_hostile_cases_gitlab_answers_in_a_known_way() {
    let w = World::new();
    let id = w.build_with_artifacts();
    // Ids: 20 digits name no job (404); `+` reads as Ruby's `Integer` reads it; a minus, a
    // space or a letter is not an id (400).
    assert_eq!(w.get(&private(&format!("/jobs/+{id}")), "developer").await.status, 200);
    w.get(&private("/jobs/99999999999999999999"), "developer").await.expect(404, r#"{"message":"404 Not found"}"#);
    for bad in ["-1", "%205", "5%20", "0", "1e3", "0x10"] {
        let reply = w.get(&private(&format!("/jobs/{bad}")), "developer").await;
        assert_eq!(
            (reply.status.as_u16(), reply.json()),
            (400, serde_json::json!({"error": "job_id is invalid"})),
            "{bad}"
        );
    }
    // Page parameters: out of range is the default or the cap; not a number is 400.
    for (q, per_page) in [("per_page=-1", "20"), ("per_page=0", "20"), ("per_page=1000000000", "100")] {
        let reply = w.get(&private(&format!("/jobs?{q}")), "developer").await;
        assert_eq!((reply.status.as_u16(), reply.header("x-per-page")), (200, per_page), "{q}");
    }
    w.get(&private("/jobs?per_page=1e9"), "developer").await.expect(400, r#"{"error":"per_page is invalid"}"#);
    let past = w.get(&private("/jobs?page=1000000"), "developer").await;
    assert_eq!((past.status.as_u16(), past.json()), (200, serde_json::json!([])));
    // 10,000 query parameters: the last `page` counts, the rest are ignored.
    let many: Vec<String> = (0..10_000).map(|i| format!("{}=1", i % 7)).collect();
    let reply = w.get(&private(&format!("/jobs?{}&page=1", many.join("&"))), "developer").await;
    assert_eq!(reply.status, 200);
    // A ref of 10,000 bytes is a ref with no such job.
    let long = "x".repeat(10_000);
    let reply = w.get(&private(&format!("/jobs/artifacts/{long}/download?job=build")), "developer").await;
    assert_eq!(reply.status, 404, "{}", reply.text());
    // Invalid UTF-8 in an id: GitLab's malformed-strings answer.
    for uri in ["/api/v4/projects/%FF%FE/jobs", &private("/jobs/%C3%28"), &private("/pipelines/%FF/jobs")] {
        let reply = w.get(uri, "developer").await;
        assert_eq!((reply.status.as_u16(), reply.text().as_str()), (400, "Bad Request"), "{uri}");
        assert_eq!(reply.header("content-type"), "text/plain");
    }
    // Invalid UTF-8 in an artifact path is the path rule's 400.
    let reply = w.get(&private(&format!("/jobs/{id}/artifacts/%FF%FE")), "developer").await;
    assert_eq!(reply.status, 400, "{}", reply.text());
}
