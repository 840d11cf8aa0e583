//! The server's metrics (`artifact serve --metrics-listen` without `--upstream`): requests
//! by route and status, the time to each answer's head, store queries by name, and the
//! caches' hits and misses, with the proxy's names where the two faces measure the same.

use artifact_server::{AppConfig, AppState, app_routers};
use axum::http::Method;

use crate::support::{World, private, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_store_queries_and_the_caches() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let config = AppConfig { metrics: true, ..AppConfig::default() };
    let (app, metrics) = app_routers(AppState::new(w.store.clone(), w.blobs.clone(), config));
    let token = w.token("reporter").to_owned();
    let auth = [("PRIVATE-TOKEN", token.as_str())];
    let file = private(&format!("/jobs/{id}/artifacts/docs/readme.txt"));
    // A file twice (read, then from memory), a list, a refusal, a path that is no route.
    assert_eq!(send(&app, Method::GET, &file, &auth).await.0, 200);
    assert_eq!(send(&app, Method::GET, &file, &auth).await.0, 200);
    assert_eq!(send(&app, Method::GET, &private("/jobs"), &auth).await.0, 200);
    assert_eq!(send(&app, Method::GET, &file, &[]).await.0, 404);
    assert_eq!(send(&app, Method::GET, "/api/v4/nothing/here", &auth).await.0, 404);

    let (status, headers, body) = send(&metrics, Method::GET, "/metrics", &[]).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = String::from_utf8(body.unwrap()).unwrap();
    let value = |line: &str| -> f64 {
        let found = text.lines().find(|l| l.starts_with(line)).unwrap_or_else(|| panic!("no {line} in:\n{text}"));
        found.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let route = "/api/v4/projects/{id}/jobs/{job_id}/artifacts/{*artifact_path}";
    assert_eq!(value(&format!(r#"artifact_server_requests_total{{route="{route}",status="200"}}"#)), 2.0);
    assert_eq!(value(&format!(r#"artifact_server_requests_total{{route="{route}",status="404"}}"#)), 1.0);
    assert_eq!(value(r#"artifact_server_requests_total{route="/api/v4/projects/{id}/jobs",status="200"}"#), 1.0);
    assert_eq!(value(r#"artifact_server_requests_total{route="pages",status="404"}"#), 1.0);
    assert!(!text.contains("readme.txt") && !text.contains(&format!("/jobs/{id}/")), "patterns, never paths");
    assert_eq!(value("artifact_server_request_seconds_count"), 5.0);
    assert!(value(r#"artifact_server_store_query_seconds_count{query="personal_token"}"#) >= 2.0);
    assert!(value(r#"artifact_server_store_query_seconds_count{query="list_jobs"}"#) >= 1.0);
    assert_eq!(value(r#"artifact_server_hot_entries_total{result="hit"}"#), 1.0);
    assert_eq!(value(r#"artifact_server_hot_entries_total{result="miss"}"#), 1.0);
    // Each single file's look-up, once: remembered or queried (PostgreSQL replicas drop the
    // memory on every change they are told of, so which of the two varies by store).
    let lookups = value(r#"artifact_server_lookups_total{result="hit"}"#)
        + value(r#"artifact_server_lookups_total{result="miss"}"#);
    assert_eq!(lookups, 3.0);
    assert_eq!(value(r#"artifact_server_index_cache_total{event="miss"}"#), 1.0);
    // Local disk: no object-storage reads to count.
    assert_eq!(value("artifact_server_object_requests_total"), 0.0);

    // Without metrics kept, nothing is measured and the metrics router has none.
    let (_, quiet) = app_routers(AppState::new(w.store.clone(), w.blobs.clone(), AppConfig::default()));
    assert_eq!(send(&quiet, Method::GET, "/metrics", &[]).await.0, 404);
}
