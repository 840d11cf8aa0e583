//! Panics, internal errors and broken archives: a 500 that leaks nothing, a server that
//! keeps serving, and aborted bodies instead of truncated ones.

use std::fmt;
use std::sync::Arc;

use artifact_server::*;

use crate::support::{World, private};

/// Delegates to SQLite, but panics or fails for one project path.
struct Sabotaged(Arc<dyn Store>);

impl fmt::Debug for Sabotaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sabotaged")
    }
}

impl Store for Sabotaged {
    fn create_user(&self, u: &str, n: &str, a: bool) -> StoreResult<User> {
        self.0.create_user(u, n, a)
    }
    fn user(&self, id: i64) -> StoreResult<Option<User>> {
        self.0.user(id)
    }
    fn user_by_username(&self, u: &str) -> StoreResult<Option<User>> {
        self.0.user_by_username(u)
    }
    fn create_token(&self, id: i64, t: &TokenDigest, s: &[Scope], e: Option<&str>) -> StoreResult<PersonalToken> {
        self.0.create_token(id, t, s, e)
    }
    fn personal_token(&self, t: &TokenDigest) -> StoreResult<Option<(PersonalToken, User)>> {
        self.0.personal_token(t)
    }
    fn personal_token_by_id(&self, id: i64) -> StoreResult<Option<PersonalToken>> {
        self.0.personal_token_by_id(id)
    }
    fn revoke_token(&self, id: i64) -> StoreResult<bool> {
        self.0.revoke_token(id)
    }
    fn create_project(&self, p: &str, public: bool) -> StoreResult<Project> {
        self.0.create_project(p, public)
    }
    fn project(&self, p: &ProjectRef) -> StoreResult<Option<Project>> {
        match p {
            ProjectRef::Path(p) if p == "boom/panic" => panic!("sabotaged store"),
            ProjectRef::Path(p) if p == "boom/error" => {
                Err(StoreError::Database("SELECT secret FROM /var/lib/artifact/artifact.db".into()))
            }
            p => self.0.project(p),
        }
    }
    fn set_member(&self, p: i64, u: i64, r: Role) -> StoreResult<()> {
        self.0.set_member(p, u, r)
    }
    fn role(&self, p: i64, u: i64) -> StoreResult<Option<Role>> {
        self.0.role(p, u)
    }
    fn create_pipeline(&self, n: &NewPipeline) -> StoreResult<Pipeline> {
        self.0.create_pipeline(n)
    }
    fn pipeline(&self, id: i64) -> StoreResult<Option<Pipeline>> {
        self.0.pipeline(id)
    }
    fn insert_job(&self, j: &Job, t: Option<&TokenDigest>) -> StoreResult<Job> {
        self.0.insert_job(j, t)
    }
    fn job(&self, id: i64) -> StoreResult<Option<Job>> {
        self.0.job(id)
    }
    fn job_by_token(&self, t: &TokenDigest) -> StoreResult<Option<Job>> {
        self.0.job_by_token(t)
    }
    fn list_jobs(&self, q: &JobQuery) -> StoreResult<Listing<Job>> {
        self.0.list_jobs(q)
    }
    fn update_job(&self, j: &Job) -> StoreResult<bool> {
        self.0.update_job(j)
    }
    fn retry_job(&self, o: &Job, n: &Job) -> StoreResult<Option<Job>> {
        self.0.retry_job(o, n)
    }
    fn latest_job_with_artifacts(&self, p: i64, r: &str, j: &str, at: Option<i64>) -> StoreResult<Option<Job>> {
        self.0.latest_job_with_artifacts(p, r, j, at)
    }
    fn is_latest_successful(&self, id: i64) -> StoreResult<bool> {
        self.0.is_latest_successful(id)
    }
    fn set_keep_latest_artifact(&self, p: i64, keep: bool) -> StoreResult<bool> {
        self.0.set_keep_latest_artifact(p, keep)
    }
    fn put_verification(&self, k: &str, o: &str) -> StoreResult<()> {
        self.0.put_verification(k, o)
    }
    fn verification(&self, k: &str) -> StoreResult<Option<String>> {
        self.0.verification(k)
    }
    fn delete_verification(&self, k: &str) -> StoreResult<()> {
        self.0.delete_verification(k)
    }
    fn insert_imported_job(
        &self,
        p: Option<&NewPipeline>,
        j: &Job,
        t: Option<&TokenDigest>,
        l: &[String],
    ) -> StoreResult<Job> {
        self.0.insert_imported_job(p, j, t, l)
    }
    fn lease_blobs(&self, k: &[String], now: i64) -> StoreResult<()> {
        self.0.lease_blobs(k, now)
    }
    fn release_blobs(&self, k: &[String]) -> StoreResult<()> {
        self.0.release_blobs(k)
    }
    fn claim_stale_lease(&self, k: &str, before: i64) -> StoreResult<bool> {
        self.0.claim_stale_lease(k, before)
    }
    fn blob_leases(&self) -> StoreResult<Vec<(String, i64)>> {
        self.0.blob_leases()
    }
    fn referenced_blobs(&self) -> StoreResult<std::collections::HashSet<String>> {
        self.0.referenced_blobs()
    }
    fn verification_keys(&self) -> StoreResult<Vec<String>> {
        self.0.verification_keys()
    }
    fn open_session(&self, s: &BrowserSession, keep: Keep, now_ms: i64) -> StoreResult<()> {
        self.0.open_session(s, keep, now_ms)
    }
    fn browser_session(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<TokenDigest>> {
        self.0.browser_session(id, now_ms)
    }
    fn close_session(&self, id: &TokenDigest) -> StoreResult<()> {
        self.0.close_session(id)
    }
    fn put_grant(&self, g: &PageGrant, keep: Keep, now_ms: i64) -> StoreResult<()> {
        self.0.put_grant(g, keep, now_ms)
    }
    fn page_grant(&self, id: &TokenDigest, now_ms: i64) -> StoreResult<Option<PageGrant>> {
        self.0.page_grant(id, now_ms)
    }
}

#[tokio::test]
async fn a_panic_is_a_500_with_a_request_id_and_the_server_keeps_serving() {
    let mut w = World::new();
    w.with_store(Arc::new(Sabotaged(w.store.clone())));
    let r = w.get("/api/v4/projects/boom%2Fpanic/jobs", "reporter").await;
    r.expect(500, r#"{"message":"500 Internal Server Error"}"#);
    assert_ne!(r.header("x-request-id"), "<none>");
    assert_eq!(w.get(&private("/jobs"), "reporter").await.status, 200);
}

#[tokio::test]
async fn internal_errors_never_leak_paths_or_sql() {
    let mut w = World::new();
    w.with_store(Arc::new(Sabotaged(w.store.clone())));
    let r = w.get("/api/v4/projects/boom%2Ferror/jobs", "reporter").await;
    r.expect(500, r#"{"message":"500 Internal Server Error"}"#);
    assert!(!r.text().contains("SELECT") && !r.text().contains("/var/lib"));
}

/// A zip with one deflated entry of `len` pseudo-random-ish but compressible bytes.
fn zip_with(dir: &std::path::Path, name: &str, len: usize) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join(format!("{name}.zip"));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(name, opts).unwrap();
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8 ^ (i / 4096) as u8).collect();
    zip.write_all(&data).unwrap();
    zip.finish().unwrap();
    path
}

/// Flips bytes `at..at + 64` after the first occurrence of `name` in the stored archive
/// (blobs are immutable in normal operation; this is disk corruption).
fn corrupt_after(w: &World, name: &[u8], at: usize) {
    let archive = find_blob(&w.dir.path().join("data/blobs/archive"));
    let mut bytes = std::fs::read(&archive).unwrap();
    let start = bytes.windows(name.len()).position(|win| win == name).unwrap() + name.len() + at;
    for b in &mut bytes[start..start + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&archive, &bytes).unwrap();
}

#[tokio::test]
async fn a_corrupt_small_entry_is_a_500_before_any_byte() {
    let w = World::new();
    let id = w.build_with_artifacts();
    corrupt_after(&w, b"big.txt", 400);
    let (status, body) = w.send_raw(&private(&format!("/jobs/{id}/artifacts/big.txt")), "reporter").await;
    assert_eq!(status, 500);
    assert_eq!(body.unwrap(), br#"{"message":"500 Internal Server Error"}"#);
    // The healthy entries of the archive are still served.
    assert_eq!(w.get(&private(&format!("/jobs/{id}/artifacts/docs/readme.txt")), "reporter").await.status, 200);
}

#[tokio::test]
async fn a_corrupt_large_entry_aborts_the_body_instead_of_ending_it_short() {
    let w = World::new();
    let zip = zip_with(w.dir.path(), "large.bin", 4 << 20);
    let job = w.import(artifact_server::ImportJob { artifacts: Some(zip), ..w.job("build") });
    let id = job["id"].as_i64().unwrap();
    // The flip sits well past the first chunks, so the headers and some data go out first.
    corrupt_after(&w, b"large.bin", 60_000);
    let (status, body) = w.send_raw(&private(&format!("/jobs/{id}/artifacts/large.bin")), "reporter").await;
    assert_eq!(status, 200, "the headers were sent before the data went bad");
    assert!(body.is_err(), "the body must fail, not end: got {} bytes", body.map(|b| b.len()).unwrap_or(0));
    // Intact, the same entry streams completely and checks out.
    let w2 = World::new();
    let zip = zip_with(w2.dir.path(), "large.bin", 4 << 20);
    let id = w2.import(artifact_server::ImportJob { artifacts: Some(zip), ..w2.job("build") })["id"].as_i64().unwrap();
    let (status, body) = w2.send_raw(&private(&format!("/jobs/{id}/artifacts/large.bin")), "reporter").await;
    assert_eq!((status.as_u16(), body.unwrap().len()), (200, 4 << 20));
}

fn find_blob(dir: &std::path::Path) -> std::path::PathBuf {
    let first = std::fs::read_dir(dir).unwrap().flatten().next().expect("a blob").path();
    if first.is_dir() { find_blob(&first) } else { first }
}

#[tokio::test]
async fn the_health_check_answers_gitlab_ok_without_credentials() {
    let w = World::new();
    let r = w.send(axum::http::Method::GET, "/-/health", None, &[]).await;
    assert_eq!((r.status.as_u16(), r.text()), (200, "GitLab OK".to_owned()));
    // A store that fails is a 503 that says which part failed.
    let mut w = w;
    w.with_store(Arc::new(Down));
    let r = w.send(axum::http::Method::GET, "/-/health", None, &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!((r.json()["store"].as_bool(), r.json()["blobs"].as_bool()), (Some(false), Some(true)));
}

/// A store whose every query fails as an unreachable database does.
#[derive(Debug)]
struct Down;

fn down<T>() -> StoreResult<T> {
    Err(StoreError::Unavailable("connection refused".into()))
}

impl Store for Down {
    fn create_user(&self, _: &str, _: &str, _: bool) -> StoreResult<User> {
        down()
    }
    fn user(&self, _: i64) -> StoreResult<Option<User>> {
        down()
    }
    fn user_by_username(&self, _: &str) -> StoreResult<Option<User>> {
        down()
    }
    fn create_token(&self, _: i64, _: &TokenDigest, _: &[Scope], _: Option<&str>) -> StoreResult<PersonalToken> {
        down()
    }
    fn personal_token(&self, _: &TokenDigest) -> StoreResult<Option<(PersonalToken, User)>> {
        down()
    }
    fn personal_token_by_id(&self, _: i64) -> StoreResult<Option<PersonalToken>> {
        down()
    }
    fn revoke_token(&self, _: i64) -> StoreResult<bool> {
        down()
    }
    fn create_project(&self, _: &str, _: bool) -> StoreResult<Project> {
        down()
    }
    fn project(&self, _: &ProjectRef) -> StoreResult<Option<Project>> {
        down()
    }
    fn set_member(&self, _: i64, _: i64, _: Role) -> StoreResult<()> {
        down()
    }
    fn role(&self, _: i64, _: i64) -> StoreResult<Option<Role>> {
        down()
    }
    fn create_pipeline(&self, _: &NewPipeline) -> StoreResult<Pipeline> {
        down()
    }
    fn pipeline(&self, _: i64) -> StoreResult<Option<Pipeline>> {
        down()
    }
    fn insert_job(&self, _: &Job, _: Option<&TokenDigest>) -> StoreResult<Job> {
        down()
    }
    fn job(&self, _: i64) -> StoreResult<Option<Job>> {
        down()
    }
    fn job_by_token(&self, _: &TokenDigest) -> StoreResult<Option<Job>> {
        down()
    }
    fn list_jobs(&self, _: &JobQuery) -> StoreResult<Listing<Job>> {
        down()
    }
    fn update_job(&self, _: &Job) -> StoreResult<bool> {
        down()
    }
    fn retry_job(&self, _: &Job, _: &Job) -> StoreResult<Option<Job>> {
        down()
    }
    fn latest_job_with_artifacts(&self, _: i64, _: &str, _: &str, _: Option<i64>) -> StoreResult<Option<Job>> {
        down()
    }
    fn is_latest_successful(&self, _: i64) -> StoreResult<bool> {
        down()
    }
    fn set_keep_latest_artifact(&self, _: i64, _: bool) -> StoreResult<bool> {
        down()
    }
    fn put_verification(&self, _: &str, _: &str) -> StoreResult<()> {
        down()
    }
    fn verification(&self, _: &str) -> StoreResult<Option<String>> {
        down()
    }
    fn delete_verification(&self, _: &str) -> StoreResult<()> {
        down()
    }
    fn insert_imported_job(
        &self,
        _: Option<&NewPipeline>,
        _: &Job,
        _: Option<&TokenDigest>,
        _: &[String],
    ) -> StoreResult<Job> {
        down()
    }
    fn lease_blobs(&self, _: &[String], _: i64) -> StoreResult<()> {
        down()
    }
    fn release_blobs(&self, _: &[String]) -> StoreResult<()> {
        down()
    }
    fn claim_stale_lease(&self, _: &str, _: i64) -> StoreResult<bool> {
        down()
    }
    fn blob_leases(&self) -> StoreResult<Vec<(String, i64)>> {
        down()
    }
    fn referenced_blobs(&self) -> StoreResult<std::collections::HashSet<String>> {
        down()
    }
    fn verification_keys(&self) -> StoreResult<Vec<String>> {
        down()
    }
    fn open_session(&self, _: &BrowserSession, _: Keep, _: i64) -> StoreResult<()> {
        down()
    }
    fn browser_session(&self, _: &TokenDigest, _: i64) -> StoreResult<Option<TokenDigest>> {
        down()
    }
    fn close_session(&self, _: &TokenDigest) -> StoreResult<()> {
        down()
    }
    fn put_grant(&self, _: &PageGrant, _: Keep, _: i64) -> StoreResult<()> {
        down()
    }
    fn page_grant(&self, _: &TokenDigest, _: i64) -> StoreResult<Option<PageGrant>> {
        down()
    }
}

#[tokio::test]
async fn an_unreachable_store_is_a_503_with_a_gitlab_body() {
    let mut w = World::new();
    let token = w.token("reporter").to_owned();
    w.with_store(Arc::new(Down));
    let r = w.send(axum::http::Method::GET, &private("/jobs"), None, &[("PRIVATE-TOKEN", &token)]).await;
    r.expect(503, r#"{"message":"503 Service Unavailable"}"#);
}
