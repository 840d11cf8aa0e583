//! The router test suite of `tests/api/` again, on PostgreSQL: a real server from the
//! distribution's packages (started once for this test process by the testkit, stopped when
//! it ends), one fresh database per test. The proxy tests do not touch a store and run only
//! in the SQLite binary.

#[path = "api/actions.rs"]
mod actions;
#[path = "api/artifacts.rs"]
mod artifacts;
#[path = "api/auth.rs"]
mod auth;
#[path = "api/browse.rs"]
mod browse;
#[path = "api/checkpoints.rs"]
mod checkpoints;
#[path = "api/compat.rs"]
mod compat;
#[path = "api/gc.rs"]
mod gc;
#[path = "api/hot.rs"]
mod hot;
#[path = "api/integrity.rs"]
mod integrity;
#[path = "api/jobs.rs"]
mod jobs;
#[path = "api/keep_latest.rs"]
mod keep_latest;
#[path = "api/metrics.rs"]
mod metrics;
#[path = "api/robustness.rs"]
mod robustness;
#[path = "api/support.rs"]
mod support;
#[path = "api/tree.rs"]
mod tree;

/// This binary runs the suite on PostgreSQL.
const STORE: support::Backend = support::Backend::Postgres;

use std::sync::{Arc, Barrier};

use artifact_server::{
    Admin, AppConfig, AppState, Identities, ImportJob, LocalBlobs, PostgresStore, Sessions, Status, Store, TokenDigest,
};
use artifact_testkit::postgres::PostgresServer;
use axum::body::Body;
use axum::http::{Method, Request};
use tower::ServiceExt;

#[test]
fn replicas_starting_at_once_apply_the_migrations_exactly_once() {
    let url = PostgresServer::shared().new_database();
    let start = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (url, start) = (url.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                PostgresStore::open(&url).map(|_| ())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().expect("every replica starts");
    }
    let store = PostgresStore::open(&url).unwrap();
    assert!(store.create_user("u", "u", false).is_ok(), "the schema is there, once");
}

#[test]
fn sessions_and_grants_kept_before_rows_were_numbered_get_numbers_and_go_first_past_the_total() {
    use artifact_server::{BrowserSession, Keep, PageGrant};
    let url = PostgresServer::shared().new_database();
    drop(PostgresStore::open(&url).unwrap());
    // The schema as it was before the numbers (version 4), with a session and a grant in it.
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    db.batch_execute(
        "ALTER TABLE browser_sessions DROP COLUMN seq; ALTER TABLE page_grants DROP COLUMN seq; \
         ALTER TABLE projects DROP COLUMN keep_latest_artifact; ALTER TABLE pipelines DROP COLUMN succeeded; \
         DELETE FROM artifact_schema WHERE version >= 5",
    )
    .unwrap();
    let now = 1_000_000_i64;
    let (old, token) = (TokenDigest::of("old"), TokenDigest::of("token"));
    db.execute(
        "INSERT INTO browser_sessions (id, token_digest, expires_at) VALUES ($1, $2, $3)",
        &[&&old.0[..], &&token.0[..], &(now + 1000)],
    )
    .unwrap();
    db.execute(
        "INSERT INTO page_grants (id, token_digest, project, job_id, expires_at) VALUES ($1, $2, 'g/p', 1, $3)",
        &[&&old.0[..], &&token.0[..], &(now + 1000)],
    )
    .unwrap();
    drop(db);
    let store = PostgresStore::open(&url).unwrap();
    assert_eq!(store.browser_session(&old, now).unwrap(), Some(token), "kept through the migration");
    assert!(store.page_grant(&old, now).unwrap().is_some());
    let keep = Keep { per_token: 64, total: 1 };
    let new = TokenDigest::of("new");
    store.open_session(&BrowserSession { id: new, token, expires_at: now + 1000 }, keep, now).unwrap();
    store
        .put_grant(&PageGrant { id: new, token, project: "g/p".into(), job: 2, expires_at: now + 1000 }, keep, now)
        .unwrap();
    assert_eq!(store.browser_session(&old, now).unwrap(), None, "numbered before the new one: it went");
    assert_eq!(store.page_grant(&old, now).unwrap(), None);
    assert_eq!(store.browser_session(&new, now).unwrap(), Some(token));
    assert!(store.page_grant(&new, now).unwrap().is_some());
}

/// Two replicas of the server on one fresh database (each its own store, its own pool),
/// sharing one blob folder, with project `g/p` (private) and its member `dev` in `role`.
/// Dropped in order: the routers, then their runtime, then the stores.
struct Replicas {
    apps: Vec<axum::Router>,
    runtime: tokio::runtime::Runtime,
    stores: Vec<Arc<dyn Store>>,
    admin: Admin,
    _dir: tempfile::TempDir,
}

impl Replicas {
    /// With `admin` on the first replica's store, or on a third handle of its own (as
    /// `artifact admin` in another process) when `apart`.
    fn new(role: &str, apart: bool) -> Replicas {
        let url = PostgresServer::shared().new_database();
        let dir = tempfile::tempdir().unwrap();
        let blobs = Arc::new(LocalBlobs::open(&dir.path().join("blobs")).unwrap());
        let stores: Vec<Arc<dyn Store>> = (0..2).map(|_| Arc::new(PostgresStore::open(&url).unwrap()) as _).collect();
        let admin_store = if apart { Arc::new(PostgresStore::open(&url).unwrap()) as _ } else { stores[0].clone() };
        let admin = Admin::new(admin_store, blobs.clone(), "http://test");
        admin.add_project("g/p", false).unwrap();
        admin.add_user("dev", false).unwrap();
        admin.add_member("g/p", "dev", role).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let apps = stores
            .iter()
            .map(|s| artifact_server::app(AppState::new(s.clone(), blobs.clone(), AppConfig::default())))
            .collect();
        Replicas { apps, runtime, stores, admin, _dir: dir }
    }
}

#[test]
fn the_same_job_retried_through_two_replicas_at_once_makes_one_new_job() {
    let Replicas { apps, runtime, stores: replicas, admin, .. } = &Replicas::new("developer", false);
    let token = admin.add_token("dev").unwrap();
    let mut failed = ImportJob::new("g/p", "main", "flaky");
    failed.status = Status::Failed;
    let job = admin.import(&failed).unwrap().job["id"].as_i64().unwrap();
    for round in 0..5 {
        let target = if round == 0 { job } else { newest(runtime, &apps[0], &token) };
        let statuses: Vec<u16> = runtime.block_on(async {
            let asks = (0..8).map(|i| {
                let app = apps[i % 2].clone();
                let req = Request::builder()
                    .method(Method::POST)
                    .uri(format!("/api/v4/projects/g%2Fp/jobs/{target}/retry"))
                    .header("PRIVATE-TOKEN", &token)
                    .body(Body::empty())
                    .unwrap();
                tokio::spawn(async move { app.oneshot(req).await.unwrap().status().as_u16() })
            });
            let mut out = Vec::new();
            for ask in asks.collect::<Vec<_>>() {
                out.push(ask.await.unwrap());
            }
            out
        });
        // The new job is pending, so only the first retry of each round finds a failed job;
        // make it fail again for the next round.
        assert_eq!(statuses.iter().filter(|&&s| s == 201).count(), 1, "round {round}: {statuses:?}");
        assert!(statuses.iter().all(|&s| s == 201 || s == 403), "round {round}: {statuses:?}");
        let newest = newest(runtime, &apps[1], &token);
        let mut j = std::thread::scope(|s| s.spawn(|| replicas[1].job(newest).unwrap().unwrap()).join().unwrap());
        j.status = Status::Failed;
        assert!(std::thread::scope(|s| s.spawn(|| replicas[1].update_job(&j).unwrap()).join().unwrap()));
    }
    // Six jobs in all (the first and one per round); the pipeline's list, which hides
    // retried jobs, shows only the newest.
    let all = list(runtime, &apps[1], &token, "jobs?per_page=100");
    assert_eq!(all.len(), 6, "{all:?}");
    let pipeline = all[0]["pipeline"]["id"].as_i64().unwrap();
    let current = list(runtime, &apps[0], &token, &format!("pipelines/{pipeline}/jobs"));
    assert_eq!(current.len(), 1, "{current:?}");
    assert_eq!(current[0]["id"], all[0]["id"]);
}

fn list(runtime: &tokio::runtime::Runtime, app: &axum::Router, token: &str, what: &str) -> Vec<serde_json::Value> {
    runtime.block_on(async {
        let req = Request::builder()
            .uri(format!("/api/v4/projects/g%2Fp/{what}"))
            .header("PRIVATE-TOKEN", token)
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
        serde_json::from_slice::<Vec<serde_json::Value>>(&body).unwrap()
    })
}

fn newest(runtime: &tokio::runtime::Runtime, app: &axum::Router, token: &str) -> i64 {
    list(runtime, app, token, "jobs")[0]["id"].as_i64().unwrap()
}

#[test]
fn a_change_through_one_replica_stops_the_others_serving_the_old_state_within_100_ms() {
    // `artifact admin` in another process: a third handle.
    let Replicas { apps, runtime, admin, .. } = &Replicas::new("maintainer", true);
    let (token, record) = admin.add_token_with("dev", &[artifact_server::Scope::Api], None).unwrap();
    let other = admin.add_token("dev").unwrap();
    let import = |name: &str| {
        let job =
            ImportJob { artifacts: Some(support::fixture("infozip-basic.zip")), ..ImportJob::new("g/p", "main", name) };
        admin.import(&job).unwrap().job["id"].as_i64().unwrap()
    };
    let (erased, kept) = (import("a"), import("b"));
    let ask = |app: &axum::Router, method: Method, uri: String, token: &str| {
        let req =
            Request::builder().method(method).uri(uri).header("PRIVATE-TOKEN", token).body(Body::empty()).unwrap();
        runtime.block_on(app.clone().oneshot(req)).unwrap().status().as_u16()
    };
    let entry = |id: i64| format!("/api/v4/projects/g%2Fp/jobs/{id}/artifacts/docs/readme.txt");
    // How long replica B keeps answering `was` after the change made by `change`.
    let until_changed = |uri: String, token: &str, was: u16, change: &dyn Fn()| {
        for _ in 0..2 {
            assert_eq!(ask(&apps[1], Method::GET, uri.clone(), token), was, "B remembers the look-up");
        }
        change();
        let at = std::time::Instant::now();
        while ask(&apps[1], Method::GET, uri.clone(), token) == was {
            assert!(at.elapsed() < std::time::Duration::from_secs(2), "B never noticed");
        }
        at.elapsed()
    };
    // An erase through replica A.
    let took = until_changed(entry(erased), &token, 200, &|| {
        let uri = format!("/api/v4/projects/g%2Fp/jobs/{erased}/erase");
        assert_eq!(ask(&apps[0], Method::POST, uri, &token), 201);
    });
    assert!(took < std::time::Duration::from_millis(100), "B served an erased job for {took:?}");
    // A token revoked with `artifact admin`.
    let took = until_changed(entry(kept), &token, 200, &|| {
        admin.revoke_token(artifact_server::TokenRef::Id(record.id)).unwrap();
    });
    assert!(took < std::time::Duration::from_millis(100), "B served a revoked token for {took:?}");
    assert_eq!(ask(&apps[1], Method::GET, entry(kept), &other), 200, "other tokens still work");
}

#[test]
fn a_database_that_goes_away_is_a_prompt_503_and_the_replica_recovers_by_itself() {
    let url = PostgresServer::shared().new_database();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let pg_port: u16 = url.rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap();
    let cable = artifact_testkit::cable::Cable::to(runtime.handle(), pg_port);
    let via_cable = url.replace(&format!(":{pg_port}/"), &format!(":{}/", cable.port()));
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(LocalBlobs::open(&dir.path().join("blobs")).unwrap());
    let store: Arc<dyn Store> = Arc::new(PostgresStore::open(&via_cable).unwrap());
    let admin = Admin::new(store.clone(), blobs.clone(), "http://test");
    admin.add_project("g/p", true).unwrap();
    admin.add_user("dev", false).unwrap();
    let token = admin.add_token("dev").unwrap();
    let app = artifact_server::app(AppState::new(store.clone(), blobs, AppConfig::default()));
    let ask = |uri: &str| {
        let req = Request::builder().uri(uri).header("PRIVATE-TOKEN", &token).body(Body::empty()).unwrap();
        let resp = runtime.block_on(app.clone().oneshot(req)).unwrap();
        let status = resp.status().as_u16();
        let body = runtime.block_on(http_body_util::BodyExt::collect(resp.into_body())).unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    assert_eq!(ask("/api/v4/projects/g%2Fp/jobs").0, 200);
    assert_eq!(ask("/-/health").0, 200);
    cable.cut();
    let at = std::time::Instant::now();
    assert_eq!(ask("/api/v4/projects/g%2Fp/jobs"), (503, r#"{"message":"503 Service Unavailable"}"#.to_owned()));
    assert_eq!(ask("/-/health").0, 503);
    assert!(at.elapsed() < std::time::Duration::from_secs(6), "prompt: {:?}", at.elapsed());
    cable.restore();
    // No restart: the pool makes new connections once the database answers again.
    assert_eq!(ask("/api/v4/projects/g%2Fp/jobs").0, 200);
    assert_eq!(ask("/-/health").0, 200);
    drop(app);
    drop(admin);
    drop(store);
    drop(runtime);
}

#[test]
fn cancels_and_retries_racing_through_two_replicas_leave_one_consistent_history() {
    let Replicas { apps, runtime, stores: replicas, admin, .. } = &Replicas::new("developer", false);
    let token = admin.add_token("dev").unwrap();
    for round in 0..5 {
        let mut running = ImportJob::new("g/p", "main", &format!("deploy-{round}"));
        running.status = Status::Running;
        let job = admin.import(&running).unwrap().job["id"].as_i64().unwrap();
        // Cancels and retries at once, alternating replicas.
        let answers: Vec<(&str, u16)> = runtime.block_on(async {
            let asks: Vec<_> = (0..8)
                .map(|i| {
                    let action = if i % 2 == 0 { "cancel" } else { "retry" };
                    let req = Request::builder()
                        .method(Method::POST)
                        .uri(format!("/api/v4/projects/g%2Fp/jobs/{job}/{action}"))
                        .header("PRIVATE-TOKEN", &token)
                        .body(Body::empty())
                        .unwrap();
                    let app = apps[(i / 2) % 2].clone();
                    tokio::spawn(async move { (action, app.oneshot(req).await.unwrap().status().as_u16()) })
                })
                .collect();
            let mut out = Vec::new();
            for ask in asks {
                out.push(ask.await.unwrap());
            }
            out
        });
        let retried: Vec<u16> = answers.iter().filter(|(a, _)| *a == "retry").map(|(_, s)| *s).collect();
        assert!(answers.iter().filter(|(a, _)| *a == "cancel").all(|(_, s)| *s == 201), "round {round}: {answers:?}");
        assert!(retried.iter().all(|&s| s == 201 || s == 403), "round {round}: {answers:?}");
        let made = retried.iter().filter(|&&s| s == 201).count();
        assert!(made <= 1, "round {round}: at most one retry wins: {answers:?}");
        // The history: the original canceled; exactly `made` new jobs of its name, and one
        // current (non-retried) job of that name in the pipeline.
        let original = std::thread::scope(|s| s.spawn(|| replicas[1].job(job).unwrap().unwrap()).join().unwrap());
        assert_eq!(original.status, Status::Canceled, "round {round}");
        assert_eq!(original.retried, made == 1, "round {round}");
        let all = list(runtime, &apps[1], &token, "jobs?per_page=100");
        let named: Vec<_> = all.iter().filter(|j| j["name"] == format!("deploy-{round}")).collect();
        assert_eq!(named.len(), 1 + made, "round {round}: {named:?}");
        let pipeline = original.pipeline_id;
        let current = list(runtime, &apps[0], &token, &format!("pipelines/{pipeline}/jobs"));
        assert_eq!(current.iter().filter(|j| j["name"] == format!("deploy-{round}")).count(), 1, "round {round}");
    }
}

/// One request to `app` (on `runtime`): the status, headers and body as text.
fn ask(
    runtime: &tokio::runtime::Runtime,
    app: &axum::Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, axum::http::HeaderMap, String) {
    runtime.block_on(async {
        let mut req = Request::builder().method(method).uri(uri).header("host", "gitlab.test");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = app.clone().oneshot(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    })
}

#[test]
fn a_browser_signed_in_at_one_replica_is_signed_in_at_every_one_and_its_grants_read_there_too() {
    let Replicas { apps, runtime, stores: replicas, admin, .. } = &Replicas::new("reporter", false);
    let token = admin.add_token("dev").unwrap();
    let archive =
        ImportJob { artifacts: Some(support::fixture("infozip-basic.zip")), ..ImportJob::new("g/p", "main", "pages") };
    let job = admin.import(&archive).unwrap().job["id"].as_i64().unwrap();
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let browse = format!("/g/p/-/jobs/{job}/artifacts/browse");
    // Signed in through one replica...
    let (status, headers, _) = ask(runtime, &apps[0], Method::POST, "/users/sign_in", &form, &format!("token={token}"));
    assert_eq!(status, 303);
    let cookie = headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let id = cookie.split_once('=').unwrap().1.to_owned();
    // ...the store knows the session by digests only...
    let now = artifact_server::Timestamp::now().0;
    assert_eq!(replicas[1].browser_session(&TokenDigest::of(&id), now).unwrap(), Some(TokenDigest::of(&token)));
    // ...and the other replica shows the private folder to that browser.
    let (status, _, listing) = ask(runtime, &apps[1], Method::GET, &browse, &[("cookie", &cookie)], "");
    assert_eq!(status, 200, "{listing}");
    assert!(listing.contains("Sign out"));
    let prefix = format!("/g/p/-/jobs/{job}/artifacts/view/");
    let at = listing.find(&prefix).unwrap() + prefix.len();
    let grant = listing[at..].split('/').next().unwrap().to_owned();
    // A grant made by one replica reads through the other, without a cookie; asked again
    // at the other, it is the same grant.
    let view = format!("{prefix}{grant}/docs/readme.txt");
    let (status, _, text) = ask(runtime, &apps[0], Method::GET, &view, &[], "");
    assert_eq!((status, text.as_str()), (200, "Top-level readme for the infozip-basic fixture.\n"));
    let (_, _, again) = ask(runtime, &apps[0], Method::GET, &browse, &[("cookie", &cookie)], "");
    assert!(again.contains(&format!("{prefix}{grant}/")), "the same grant from the other replica");
    // Signed out at one replica: out at both.
    let (status, _, _) = ask(runtime, &apps[1], Method::POST, "/users/sign_out", &[("cookie", &cookie)], "");
    assert_eq!(status, 303);
    let (status, headers, _) = ask(runtime, &apps[0], Method::GET, &browse, &[("cookie", &cookie)], "");
    assert_eq!(
        (status, headers["location"].to_str().unwrap()),
        (302, format!("/users/sign_in?return_to={browse}").as_str())
    );
    // A session reads with its token: revoked, the session reads nothing more.
    let (_, headers, _) = ask(runtime, &apps[0], Method::POST, "/users/sign_in", &form, &format!("token={token}"));
    let cookie = headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert_eq!(ask(runtime, &apps[1], Method::GET, &browse, &[("cookie", &cookie)], "").0, 200);
    admin.revoke_token(artifact_server::TokenRef::Token(&token)).unwrap();
    // Another process's change shows within the look-up memory's second at most (the
    // replicas hear it by NOTIFY, not at once); two seconds allowed, as for the erase above.
    let revoked_within_a_second = |app: &axum::Router, uri: &str, headers: &[(&str, &str)]| {
        let at = std::time::Instant::now();
        loop {
            match ask(runtime, app, Method::GET, uri, headers, "").0 {
                401 => return true,
                200 if at.elapsed() < std::time::Duration::from_secs(2) => continue,
                _ => return false,
            }
        }
    };
    assert!(revoked_within_a_second(&apps[1], &browse, &[("cookie", &cookie)]), "the session reads nothing more");
    assert!(revoked_within_a_second(&apps[0], &view, &[]), "nor do its grants");
}
