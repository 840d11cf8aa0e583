//! The proxy's disk cache of indexes (`--cache`): keyed by the archive's identity, so it
//! holds no credential or signature and one entry per archive however callers spell their
//! requests, and bounded (`--cache-disk-bytes`), the least recently used going first.

use artifact_server::{ProxyConfig, proxy_routers};
use artifact_testkit::range_server::RangeServer;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::support::{World, files_under, fixture, private, upstream};

/// The proxy (and its metrics router) with `--cache DIR` and `change` made.
fn proxy(up: &str, dir: &std::path::Path, change: impl FnOnce(&mut ProxyConfig)) -> (axum::Router, axum::Router) {
    let mut config = ProxyConfig::new(up).unwrap();
    config.cache_dir = Some(dir.to_owned());
    change(&mut config);
    proxy_routers(config).unwrap()
}

async fn get(app: &axum::Router, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, Vec<u8>) {
    let mut req = Request::get(uri).header("host", "proxy.test");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
}

/// Every byte of every file under `dir`, names included.
fn everything_in(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for file in files_under(dir) {
        all.extend_from_slice(file.to_string_lossy().as_bytes());
        all.extend_from_slice(&std::fs::read(&file).unwrap());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_signature_is_written_and_junk_queries_make_no_entries() {
    let w = World::new();
    let id = w.build_with_artifacts();
    let up = upstream(w.app.clone()).await;
    let cache = tempfile::tempdir().unwrap();
    let (app, _) = proxy(&up, cache.path(), |_| {});
    let token = w.token("reporter").to_owned();
    let file = private(&format!("/jobs/{id}/artifacts/docs/readme.txt"));
    // The token in every form GitLab takes, and junk that looks like one.
    let forms = [
        format!("{file}?private_token={token}"),
        format!("{file}?access_token={token}"),
        format!("{file}?private_token={token}&bearer_token=sekrit-bearer&token=sekrit-plain"),
        format!("{file}?private_token={token}&X-Amz-Signature=sekrit-sig&job_token=sekrit-job"),
    ];
    for uri in &forms {
        let (status, body) = get(&app, uri, &[]).await;
        assert_eq!((status.as_u16(), body.len()), (200, 48), "{uri}");
    }
    assert_eq!(get(&app, &file, &[("PRIVATE-TOKEN", &token)]).await.0, 200);
    assert_eq!(get(&app, &file, &[("Authorization", &format!("Bearer {token}"))]).await.0, 200);
    // A thousand spellings of one archive.
    for n in 0..1000 {
        let (status, _) = get(&app, &format!("{file}?x={n}&private_token={token}"), &[]).await;
        assert_eq!(status, 200);
    }
    let files = files_under(cache.path());
    assert_eq!(files.len(), 1, "one archive, one entry: {files:?}");
    let bytes = everything_in(cache.path());
    for secret in [token.as_str(), "sekrit-bearer", "sekrit-plain", "sekrit-sig", "sekrit-job", "x=999"] {
        assert!(!contains(&bytes, secret), "{secret} is in the cache directory");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_urls_signature_never_lands_on_disk() {
    let storage = RangeServer::start();
    storage.put("bucket/a.zip", std::fs::read(fixture("infozip-basic.zip")).unwrap());
    let signed = format!("{}?X-Amz-Credential=sekrit-cred&X-Amz-Signature=sekrit-sig", storage.url("bucket/a.zip"));
    let front = axum::Router::new().route(
        "/api/v4/projects/1/jobs/9/artifacts",
        axum::routing::get(move || {
            let signed = signed.clone();
            async move { (StatusCode::FOUND, [("location", signed)]) }
        }),
    );
    let cache = tempfile::tempdir().unwrap();
    let (app, _) = proxy(&upstream(front).await, cache.path(), |_| {});
    let (status, body) = get(&app, "/api/v4/projects/1/jobs/9/artifacts/docs/readme.txt", &[]).await;
    assert_eq!((status.as_u16(), body.len()), (200, 48));
    let bytes = everything_in(cache.path());
    assert_eq!(files_under(cache.path()).len(), 1);
    for secret in ["sekrit-cred", "sekrit-sig", "bucket/a.zip"] {
        assert!(!contains(&bytes, secret), "{secret} is in the cache directory");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_bound_holds_under_churn_and_evictions_are_counted() {
    let w = World::new();
    let jobs: Vec<i64> = (0..12).map(|_| w.build_with_artifacts()).collect();
    let up = upstream(w.app.clone()).await;
    let token = w.token("reporter").to_owned();
    let cache = tempfile::tempdir().unwrap();
    // Files that are not the cache's own are neither counted nor removed.
    let foreign = ["report.idx", "page.tmpl", "notes.txt", "0123.tmp1"];
    for name in foreign {
        std::fs::write(cache.path().join(name), vec![b'x'; 4096]).unwrap();
    }
    let files_under = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        files_under(dir).into_iter().filter(|f| !foreign.iter().any(|n| f.ends_with(n))).collect()
    };
    // One index file's size, from a first proxy.
    {
        let (app, _) = proxy(&up, cache.path(), |_| {});
        let uri = private(&format!("/jobs/{}/artifacts/docs/readme.txt", jobs[0]));
        assert_eq!(get(&app, &uri, &[("PRIVATE-TOKEN", &token)]).await.0, 200);
    }
    let one: u64 = files_under(cache.path()).iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    let bound = one * 3 + one / 2;
    // Little memory of indexes and none of files: every round goes to the disk cache.
    let (app, metrics) = proxy(&up, cache.path(), |c| {
        c.cache_disk_bytes = bound;
        c.cache_bytes = 1;
        c.hot_bytes = 0;
    });
    for round in 0..3 {
        for id in &jobs {
            let uri = private(&format!("/jobs/{id}/artifacts/docs/readme.txt"));
            let (status, body) = get(&app, &uri, &[("PRIVATE-TOKEN", &token)]).await;
            assert_eq!((status.as_u16(), body.len()), (200, 48), "round {round}, job {id}");
            let held: u64 = files_under(cache.path()).iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
            assert!(held <= bound, "{held} bytes on disk over the bound of {bound}");
        }
    }
    assert_eq!(files_under(cache.path()).len(), 3, "the three most recently used");
    for name in foreign {
        assert!(cache.path().join(name).is_file(), "{name} was removed");
    }
    let (_, text) = get(&metrics, "/metrics", &[]).await;
    let text = String::from_utf8(text).unwrap();
    let value = |name: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value(r#"artifact_proxy_disk_cache{what="files"}"#), 3.0);
    assert_eq!(value(r#"artifact_proxy_disk_cache{what="max_bytes"}"#), bound as f64);
    assert!(value("artifact_proxy_disk_cache_evictions_total") >= 3.0 * 9.0, "churn in every round");
}
