//! A world to test against: users of every role, a private and a public project, and jobs
//! imported with real archives from `tests/data`.

use std::path::PathBuf;
use std::sync::Arc;

use artifact_server::{
    Admin, AppConfig, AppState, Blobs, DataDir, ImportJob, LocalBlobs, PostgresStore, Status, Store, When,
};
use artifact_testkit::store::Double;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data").join(name)
}

pub(crate) const PRIVATE: &str = "group/private";
pub(crate) const PUBLIC: &str = "group/public";

/// The store a suite runs on: the same tests, one binary each (`tests/api/main.rs` on
/// SQLite, `tests/api_postgres.rs` on PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

pub(crate) struct World {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) blobs: Arc<dyn Blobs>,
    pub(crate) admin: Admin,
    pub(crate) app: axum::Router,
    /// Tokens by user name: root (admin), owner, maintainer, developer, reporter, guest,
    /// outsider (no membership).
    tokens: std::collections::HashMap<String, String>,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("<none>")
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    pub(crate) fn expect(&self, status: u16, body: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        assert_eq!(self.json(), serde_json::from_str::<Value>(body).unwrap());
    }
}

impl World {
    pub(crate) fn new() -> World {
        World::with_config(AppConfig::default())
    }

    pub(crate) fn with_config(config: AppConfig) -> World {
        let dir = tempfile::tempdir().unwrap();
        let (store, blobs): (Arc<dyn Store>, Arc<dyn Blobs>) = match crate::STORE {
            Backend::Sqlite => {
                let data = DataDir::open(&dir.path().join("data")).unwrap();
                (data.store(), data.blobs())
            }
            Backend::Postgres => {
                let store = off(|| {
                    let url = artifact_testkit::postgres::PostgresServer::shared().new_database();
                    PostgresStore::open(&url).unwrap()
                });
                (Arc::new(store), Arc::new(LocalBlobs::open(&dir.path().join("data/blobs")).unwrap()))
            }
        };
        let app = artifact_server::app(AppState::new(store.clone(), blobs.clone(), config));
        // The tests' own calls (and Admin's) come from async bodies.
        let store: Arc<dyn Store> = match crate::STORE {
            Backend::Sqlite => store,
            // Every call on a thread of its own: the synchronous PostgreSQL client may not block
            // a thread that drives async tasks, and these tests call the store (through
            // `Admin`) from their async bodies. The server itself calls the store only on the
            // blocking pool, where it uses the store directly.
            Backend::Postgres => Arc::new(Double::new(store).off_thread()),
        };
        let admin = Admin::new(store.clone(), blobs.clone(), "http://test");
        let mut world = World { dir, store, blobs, admin, app, tokens: Default::default() };
        world.admin.add_project(PRIVATE, false).unwrap();
        world.admin.add_project(PUBLIC, true).unwrap();
        for (user, role) in [
            ("root", None),
            ("owner", Some("owner")),
            ("maintainer", Some("maintainer")),
            ("developer", Some("developer")),
            ("reporter", Some("reporter")),
            ("guest", Some("guest")),
            ("outsider", None),
        ] {
            world.admin.add_user(user, user == "root").unwrap();
            let token = world.admin.add_token(user).unwrap();
            world.tokens.insert(user.to_owned(), token);
            if let Some(role) = role {
                world.admin.add_member(PRIVATE, user, role).unwrap();
            }
        }
        world
    }

    /// Swaps the store under the router (to inject failures).
    pub(crate) fn with_store(&mut self, store: Arc<dyn Store>) {
        self.app = artifact_server::app(AppState::new(store, self.blobs.clone(), AppConfig::default()));
    }

    pub(crate) fn token(&self, user: &str) -> &str {
        &self.tokens[user]
    }

    /// Imports a job; returns its JSON.
    pub(crate) fn import(&self, job: ImportJob) -> Value {
        self.admin.import(&job).unwrap().job
    }

    pub(crate) fn job(&self, name: &str) -> ImportJob {
        let mut j = ImportJob::new(PRIVATE, "main", name);
        j.user = Some("developer".into());
        j
    }

    /// A successful job on `main` with infozip-basic.zip and a trace; returns its id.
    pub(crate) fn build_with_artifacts(&self) -> i64 {
        let trace = self.dir.path().join("build.log");
        std::fs::write(&trace, "line one\nline two\n").unwrap();
        let job = ImportJob { artifacts: Some(fixture("infozip-basic.zip")), trace: Some(trace), ..self.job("build") };
        self.import(job)["id"].as_i64().unwrap()
    }

    pub(crate) fn job_with(&self, name: &str, status: Status, when: When) -> Value {
        self.import(ImportJob { status, when, ..self.job(name) })
    }

    pub(crate) async fn send(&self, method: Method, uri: &str, user: Option<&str>, headers: &[(&str, &str)]) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req = req.header("host", "gitlab.test");
        }
        if let Some(u) = user {
            req = req.header("PRIVATE-TOKEN", self.token(u));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("a complete body").to_bytes().to_vec();
        Reply { status, headers, body }
    }

    /// Sends and returns the status and whether the body failed midway.
    pub(crate) async fn send_raw(&self, uri: &str, user: &str) -> (StatusCode, Result<Vec<u8>, String>) {
        let req = Request::builder().uri(uri).header("PRIVATE-TOKEN", self.token(user)).body(Body::empty()).unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.map(|b| b.to_bytes().to_vec()).map_err(|e| e.to_string());
        (status, body)
    }

    pub(crate) async fn get(&self, uri: &str, user: &str) -> Reply {
        self.send(Method::GET, uri, Some(user), &[]).await
    }

    pub(crate) async fn post(&self, uri: &str, user: &str) -> Reply {
        self.send(Method::POST, uri, Some(user), &[]).await
    }
}

/// Serves `router` on a loopback port (a real upstream for a proxy under test); its URL.
pub(crate) async fn upstream(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// `/api/v4/projects/group%2Fprivate` + `rest`.
pub(crate) fn private(rest: &str) -> String {
    format!("/api/v4/projects/group%2Fprivate{rest}")
}

/// Every file under `dir` (none if it is not there).
pub(crate) fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else { return Vec::new() };
    read.flat_map(|e| {
        let p = e.unwrap().path();
        if p.is_dir() { files_under(&p) } else { vec![p] }
    })
    .collect()
}

/// Where job `id`'s archive lies in the world's local blob folder.
pub(crate) fn archive_file(w: &World, id: i64) -> PathBuf {
    let key = w.store.job(id).unwrap().unwrap().archive.unwrap().key;
    let (folder, name) = key.split_once('/').unwrap();
    w.dir.path().join("data/blobs").join(folder).join(&name[..2]).join(name)
}

/// Makes job `id`'s artifacts expire a week ago (in the store, as an import with a short
/// `expire_in` would leave them a week later).
pub(crate) fn expire_a_week_ago(w: &World, id: i64) {
    let stored = w.store.job(id).unwrap().unwrap();
    let week_ago = artifact_server::Timestamp(artifact_server::Timestamp::now().0 - 7 * 86_400_000);
    assert!(w.store.update_job(&artifact_server::Job { artifacts_expire_at: Some(week_ago), ..stored }).unwrap());
}

/// Runs `f` on a thread of its own (opening a PostgreSQL store from an async body).
fn off<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("a store call panicked"))
}

/// Sends through `app` as `gitlab.test` would be asked; the status, headers and the body
/// (`Err` if it broke).
pub(crate) async fn send(
    app: &axum::Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Result<Vec<u8>, String>) {
    let mut req = Request::builder().method(method).uri(uri).header("host", "proxy.test");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = resp.into_body().collect().await.map(|b| b.to_bytes().to_vec()).map_err(|e| e.to_string());
    (status, headers, body)
}
