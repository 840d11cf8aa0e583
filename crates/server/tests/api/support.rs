//! A world to test against: users of every role, a private and a public project, and jobs
//! imported with real archives from `tests/data`.

use std::path::PathBuf;
use std::sync::Arc;

use artifact_server::{Admin, AppConfig, AppState, DataDir, ImportJob, Status, Store, When};
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

pub(crate) struct World {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) data: DataDir,
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
        let data = DataDir::open(&dir.path().join("data")).unwrap();
        let admin = Admin::new(data.store(), data.blobs(), "http://test");
        let app = artifact_server::app(data.state(config));
        let mut world = World { dir, data, admin, app, tokens: Default::default() };
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
        self.app = artifact_server::app(AppState::new(store, self.data.blobs(), AppConfig::default()));
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

/// `/api/v4/projects/group%2Fprivate` + `rest`.
pub(crate) fn private(rest: &str) -> String {
    format!("/api/v4/projects/group%2Fprivate{rest}")
}
