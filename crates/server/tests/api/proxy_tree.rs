//! The artifacts tree through the proxy, against this crate's server as its upstream: the
//! same entries as the server's own listing (from `metadata.gz`), from the proxy's index
//! of the central directory, with the upstream's authorization as for single files.

use artifact_server::{ImportJob, ProxyConfig, proxy_app};
use axum::http::Method;
use serde_json::Value;

use crate::proxy::counted;
use crate::support::{World, fixture, private, send, upstream};

/// The status, `X-Total` and JSON body of `uri` through `app` as the caller of `token`.
async fn list(app: &axum::Router, uri: &str, token: &str) -> (u16, String, Value) {
    let (status, headers, body) = send(app, Method::GET, uri, &[("PRIVATE-TOKEN", token)]).await;
    let total = headers.get("x-total").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status.as_u16(), total, serde_json::from_slice(&body.unwrap()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_lists_what_the_server_lists_with_one_authorization_and_no_read_warm() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let (router, asked) = counted(w.app.clone());
    let app = proxy_app(ProxyConfig::new(&upstream(router).await).unwrap()).unwrap();
    let reporter = w.token("reporter").to_owned();
    let tree = |q: &str| private(&format!("/jobs/{id}/artifacts/tree?{q}"));
    // Cold: the authorization, then the archive's tail (it holds the whole directory).
    let (status, total, root) = list(&app, &tree(""), &reporter).await;
    assert_eq!((status, total.as_str()), (200, "4"), "{root}");
    let cold: Vec<_> = asked.lock().unwrap().drain(..).collect();
    assert!((2..=3).contains(&cold.len()), "the authorization and at most 2 range reads: {cold:?}");
    assert_eq!(cold[0].2.as_deref(), Some("bytes=0-0"), "{cold:?}");
    assert!(cold.iter().all(|(_, uri, _)| uri.ends_with(&format!("/jobs/{id}/artifacts"))), "{cold:?}");
    // Every face the server has, the same entries: pages of both kinds, folders, depth.
    for q in [
        "",
        "path=docs",
        "path=docs/nested&recursive=true",
        "recursive=true&per_page=2&page=2",
        "pagination=keyset&per_page=2",
    ] {
        let through = list(&app, &tree(q), &reporter).await;
        let direct = w.get(&tree(q), "reporter").await;
        assert_eq!(through.2, direct.json(), "{q}");
        assert_eq!(through.0, 200, "{q}");
    }
    for q in ["path=nope", "path=empty.txt", "path=../x", "pagination=keyset&page_token=x"] {
        let through = list(&app, &tree(q), &reporter).await;
        let direct = w.get(&tree(q), "reporter").await;
        assert_eq!((through.0, through.2), (direct.status.as_u16(), direct.json()), "{q}");
    }
    // Warm, the same caller: nothing goes upstream.
    assert_eq!(asked.lock().unwrap().drain(..).collect::<Vec<_>>(), [], "the grant and the index are remembered");
    // Another caller who may read: its authorization alone. One who may not: the
    // upstream's refusal, as for a file.
    let developer = w.token("developer").to_owned();
    assert_eq!(list(&app, &tree("path=docs"), &developer).await.0, 200);
    assert_eq!(asked.lock().unwrap().drain(..).count(), 1);
    let (status, _, body) = list(&app, &tree(""), w.token("outsider")).await;
    assert_eq!((status, body), (404, serde_json::json!({"message": "404 Project Not Found"})));
    // A bad parameter never goes upstream.
    asked.lock().unwrap().clear();
    assert_eq!(list(&app, &tree("recursive=maybe"), w.token("outsider")).await.0, 400);
    assert_eq!(asked.lock().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_ref_the_proxy_lists_the_newest_archive_of_the_ref() {
    let w = World::new();
    w.build_with_artifacts();
    let (router, asked) = counted(w.app.clone());
    let app = proxy_app(ProxyConfig::new(&upstream(router).await).unwrap()).unwrap();
    let token = w.token("developer").to_owned();
    let uri = private("/jobs/artifacts/main/tree?job=build");
    let (status, _, first) = list(&app, &uri, &token).await;
    assert_eq!((status, first.as_array().unwrap().len()), (200, 4), "{first}");
    assert_eq!(first, w.get(&uri, "developer").await.json());
    // The ref's pipeline runs again with another archive: the next listing is of it.
    let newer = ImportJob { artifacts: Some(fixture("python-deflate.zip")), ..w.job("build") };
    w.import(newer);
    asked.lock().unwrap().clear();
    let (status, _, second) = list(&app, &uri, &token).await;
    assert_eq!(status, 200);
    assert_ne!(second, first);
    assert_eq!(second, w.get(&uri, "developer").await.json());
    // Unchanged since: the remembered grant, and one read of the archive's last byte.
    asked.lock().unwrap().clear();
    assert_eq!(list(&app, &uri, &token).await.2, second);
    let warm: Vec<_> = asked.lock().unwrap().drain(..).collect();
    assert_eq!(warm.len(), 1, "{warm:?}");
}
