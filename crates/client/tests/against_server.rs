//! The client against our own server (`artifact-server` on a loopback socket, real SQLite
//! and blobs): all 15 operations, downloads, remote archive reads, job tokens, errors.

use std::path::PathBuf;

use artifact_client::{Client, Error, JobFilter, JobRef, JobStatus, RemoteResolver, Resolve};
use artifact_server::{Admin, AppConfig, DataDir, ImportJob, Status, When};
use futures_util::{StreamExt, TryStreamExt};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data").join(name)
}

struct World {
    _dir: tempfile::TempDir,
    url: String,
    admin: Admin,
    token: String,
    maintainer: String,
}

const P: &str = "group/app";

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::open(&dir.path().join("data")).unwrap();
    let admin = Admin::new(data.store(), data.blobs(), "http://test");
    admin.add_project(P, false).unwrap();
    admin.add_user("dev", false).unwrap();
    admin.add_user("boss", false).unwrap();
    admin.add_member(P, "dev", "developer").unwrap();
    admin.add_member(P, "boss", "maintainer").unwrap();
    let token = admin.add_token("dev").unwrap();
    let maintainer = admin.add_token("boss").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = artifact_server::app(data.state(AppConfig::default()));
    tokio::spawn(artifact_server::serve(listener, app, std::future::pending()));
    World { _dir: dir, url, admin, token, maintainer }
}

impl World {
    fn client(&self) -> Client {
        Client::builder(&self.url).private_token(&self.token).build().unwrap()
    }

    fn import(&self, job: ImportJob) -> serde_json::Value {
        self.admin.import(&job).unwrap().job
    }

    fn job(&self, name: &str) -> ImportJob {
        let mut j = ImportJob::new(P, "main", name);
        j.user = Some("dev".into());
        j
    }
}

fn id(v: &serde_json::Value) -> u64 {
    v["id"].as_u64().unwrap()
}

async fn collect(mut s: artifact_client::ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_follow_every_page() {
    let w = world().await;
    let first = w.import(w.job("a"));
    let pipeline = first["pipeline"]["id"].as_u64().unwrap();
    for name in ["b", "c", "d"] {
        w.import(ImportJob { pipeline: Some(pipeline as i64), ..w.job(name) });
    }
    w.import(ImportJob { status: Status::Failed, ..w.job("e") });
    let gl = w.client();
    let small = JobFilter { per_page: Some(2), ..JobFilter::default() };
    let all: Vec<_> = gl.jobs(P, &small).try_collect().await.unwrap();
    assert_eq!(all.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(), ["e", "d", "c", "b", "a"]);
    let failed = JobFilter { scope: vec![JobStatus::Failed], per_page: Some(1), ..JobFilter::default() };
    let only: Vec<_> = gl.jobs(P, &failed).try_collect().await.unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].status, JobStatus::Failed);
    let in_pipeline: Vec<_> = gl.pipeline_jobs(P, pipeline, &small).try_collect().await.unwrap();
    assert_eq!(in_pipeline.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    // Retried jobs only when asked.
    let retried = gl.retry(P, id(&first)).await.unwrap();
    let live: Vec<_> = gl.pipeline_jobs(P, pipeline, &JobFilter::default()).try_collect().await.unwrap();
    assert!(live.iter().any(|j| j.id == retried.id) && !live.iter().any(|j| j.id == id(&first)));
    let with = JobFilter { include_retried: true, ..JobFilter::default() };
    let all: Vec<_> = gl.pipeline_jobs(P, pipeline, &with).try_collect().await.unwrap();
    assert_eq!(all.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_come_one_page_at_a_time_with_their_count() {
    let w = world().await;
    let first = w.import(w.job("a"));
    let pipeline = first["pipeline"]["id"].as_u64().unwrap();
    for name in ["b", "c", "d", "e"] {
        w.import(ImportJob { pipeline: Some(pipeline as i64), ..w.job(name) });
    }
    let gl = w.client();
    let two = JobFilter { per_page: Some(2), ..JobFilter::default() };
    let names = |page: &artifact_client::Page<artifact_client::Job>| {
        page.items.iter().map(|j| j.name.clone()).collect::<Vec<_>>()
    };
    let second = gl.jobs_page(P, &two, 2).await.unwrap();
    assert_eq!(names(&second), ["c", "b"]);
    assert_eq!((second.total_pages, second.next_page, second.pages(2)), (Some(3), Some(3), 3));
    let last = gl.jobs_page(P, &two, 3).await.unwrap();
    assert_eq!((names(&last), last.next_page), (vec!["a".to_owned()], None));
    let past = gl.jobs_page(P, &two, 9).await.unwrap();
    assert!(past.items.is_empty());
    let in_pipeline = gl.pipeline_jobs_page(P, pipeline, &two, 1).await.unwrap();
    assert_eq!(names(&in_pipeline), ["a", "b"]);
    // Who the token is, and a token that is nobody's.
    assert_eq!(gl.current_user().await.unwrap().username, "dev");
    let stranger = Client::builder(&w.url).private_token("glpat-nobody").build().unwrap();
    let refused = stranger.current_user().await.unwrap_err();
    assert_eq!(refused.status(), Some(reqwest::StatusCode::UNAUTHORIZED), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifacts_tree_comes_in_pages_of_both_kinds() {
    let w = world().await;
    let build = id(&w.import(ImportJob { artifacts: Some(fixture("infozip-basic.zip")), ..w.job("build") }));
    let gl = w.client();
    let paths = |entries: &[artifact_client::TreeEntry]| entries.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
    let every = [
        "docs",
        "docs/nested",
        "docs/nested/deep",
        "big.txt",
        "data.bin",
        "docs/nested/deep/leaf.txt",
        "docs/readme.txt",
        "empty.txt",
    ];
    for keyset in [false, true] {
        // One entry a page: the iterator follows every next link, offset or keyset.
        let filter = artifact_client::TreeFilter { recursive: true, per_page: Some(1), keyset, ..Default::default() };
        let all: Vec<_> = gl.artifacts_tree(P, &JobRef::Id(build), &filter).try_collect().await.unwrap();
        assert_eq!(paths(&all), every, "keyset {keyset}");
        let by_ref = JobRef::Latest { ref_name: "main".into(), job: "build".into() };
        let docs = artifact_client::TreeFilter { path: "docs/".into(), keyset, ..Default::default() };
        let listed: Vec<_> = gl.artifacts_tree(P, &by_ref, &docs).try_collect().await.unwrap();
        assert_eq!(paths(&listed), ["docs/nested", "docs/readme.txt"]);
        assert!(listed[0].is_folder() && listed[0].size.is_none() && listed[0].mode == "040000");
        assert_eq!((listed[1].kind, listed[1].size), (artifact_client::TreeKind::Blob, Some(48)));
    }
    let two = artifact_client::TreeFilter { per_page: Some(2), ..Default::default() };
    let page = gl.artifacts_tree_page(P, &JobRef::Id(build), &two, 2).await.unwrap();
    assert_eq!(
        (paths(&page.items), page.total_pages, page.next_page),
        (vec!["data.bin".into(), "empty.txt".into()], Some(2), None)
    );
    // A folder not there, and a path refused before anything is sent.
    let missing = artifact_client::TreeFilter { path: "nope".into(), ..Default::default() };
    let err = gl.artifacts_tree(P, &JobRef::Id(build), &missing).try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(err.status(), Some(reqwest::StatusCode::NOT_FOUND), "{err}");
    let climbing = artifact_client::TreeFilter { path: "../x".into(), ..Default::default() };
    let err = gl.artifacts_tree(P, &JobRef::Id(build), &climbing).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(matches!(err, Error::Engine(_)), "{err}");
    let dot = JobRef::Latest { ref_name: "..".into(), job: "build".into() };
    let err =
        gl.artifacts_tree(P, &dot, &artifact_client::TreeFilter::default()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_the_operations() {
    let w = world().await;
    let gl = w.client();
    let trace = w._dir.path().join("log");
    std::fs::write(&trace, "hello log\n").unwrap();
    let build = w.import(ImportJob {
        artifacts: Some(fixture("infozip-basic.zip")),
        trace: Some(trace),
        expire_in: Some("1 week".into()),
        ..w.job("build")
    });
    let (build_id, pipeline) = (id(&build), build["pipeline"]["id"].as_u64().unwrap());
    let child = w.import(w.job("child"));
    w.import(ImportJob {
        pipeline: Some(pipeline as i64),
        bridge: true,
        downstream: child["pipeline"]["id"].as_i64(),
        ..w.job("trigger")
    });

    // 3: bridges.
    let bridges: Vec<_> = gl.pipeline_bridges(P, pipeline, &JobFilter::default()).try_collect().await.unwrap();
    assert_eq!(bridges[0].downstream_pipeline.as_ref().unwrap().id, child["pipeline"]["id"].as_u64().unwrap());
    // 4: one job, with the spec's fields typed.
    let job = gl.job(P, build_id).await.unwrap();
    assert_eq!(job.artifacts_file.as_ref().unwrap().size, 2934);
    assert_eq!(job.user.as_ref().unwrap().username, "dev");
    // 5 and 6: the archive by id and by ref.
    let whole = std::fs::read(fixture("infozip-basic.zip")).unwrap();
    assert_eq!(collect(gl.archive(P, &JobRef::Id(build_id)).await.unwrap()).await, whole);
    let by_ref = JobRef::Latest { ref_name: "main".into(), job: "build".into() };
    assert_eq!(collect(gl.archive(P, &by_ref).await.unwrap()).await, whole);
    // 7 and 8: one file.
    let readme = b"Top-level readme for the infozip-basic fixture.\n".to_vec();
    assert_eq!(collect(gl.artifact(P, &JobRef::Id(build_id), "docs/readme.txt").await.unwrap()).await, readme);
    assert_eq!(collect(gl.artifact(P, &by_ref, "docs/readme.txt").await.unwrap()).await, readme);
    // 9: the log, and only new bytes by Range.
    assert_eq!(collect(gl.trace(P, build_id).await.unwrap()).await, b"hello log\n");
    assert_eq!(collect(gl.trace_from(P, build_id, 6).await.unwrap()).await, b"log\n");
    assert_eq!(collect(gl.trace_from(P, build_id, 10).await.unwrap()).await, b"");
    // 13: keep.
    assert_eq!(gl.keep_artifacts(P, build_id).await.unwrap().artifacts_expire_at, None);
    // 10: cancel.
    let running = w.import(ImportJob { status: Status::Running, ..w.job("long") });
    assert_eq!(gl.cancel(P, id(&running)).await.unwrap().status, JobStatus::Canceled);
    // 11: retry.
    let again = gl.retry(P, id(&running)).await.unwrap();
    assert_ne!(again.id, id(&running));
    assert_eq!(again.status, JobStatus::Pending);
    // 15: play.
    let manual = w.import(ImportJob { status: Status::Manual, when: When::Manual, ..w.job("deploy") });
    assert_eq!(gl.play(P, id(&manual)).await.unwrap().status, JobStatus::Pending);
    // 14: delete artifacts needs a maintainer; 403 is an error with its status.
    let err = gl.delete_artifacts(P, build_id).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403), "{err}");
    let boss = Client::builder(&w.url).private_token(&w.maintainer).build().unwrap();
    boss.delete_artifacts(P, build_id).await.unwrap();
    assert!(gl.job(P, build_id).await.unwrap().artifacts_file.is_none());
    // 12: erase.
    let erased = gl.erase(P, build_id).await.unwrap();
    assert!(erased.erased_at.is_some());
    // Errors carry GitLab's message.
    match gl.job(P, 999_999).await {
        Err(Error::Api { status, message, .. }) => {
            assert_eq!((status.as_u16(), message.as_str()), (404, "404 Not found"))
        }
        other => panic!("{other:?}"),
    }
    let err = gl.retry(P, id(&manual)).await.unwrap_err();
    assert!(err.to_string().contains("Job is not retryable"), "{err}");
    // The calls clients make first.
    assert!(gl.version().await.unwrap().version.split('.').count() == 3);
    assert_eq!(gl.project(P).await.unwrap().path_with_namespace, P);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_to_files_and_reads_archives_remotely() {
    let w = world().await;
    let gl = w.client();
    let build = id(&w.import(ImportJob { artifacts: Some(fixture("infozip-basic.zip")), ..w.job("build") }));
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("artifacts.zip");
    let done = gl.download_archive_to(P, &JobRef::Id(build), &to, None).await.unwrap();
    assert_eq!(done.bytes, 2934);
    assert_eq!(std::fs::read(&to).unwrap(), std::fs::read(fixture("infozip-basic.zip")).unwrap());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    let big = dir.path().join("big.txt");
    gl.download_artifact_to(P, &JobRef::Id(build), "big.txt", &big, None).await.unwrap();
    assert_eq!(std::fs::metadata(&big).unwrap().len(), 20900);
    // A missing file leaves no file behind.
    assert!(gl.download_artifact_to(P, &JobRef::Id(build), "nope", &dir.path().join("nope"), None).await.is_err());
    assert!(!dir.path().join("nope").exists());

    // The engine reads the archive itself: central directory once, entries by range.
    let remote = gl.remote_archive(P, &JobRef::Id(build)).await.unwrap();
    let names: Vec<String> = remote.entries().unwrap().iter().map(|e| e.display_name().into_owned()).collect();
    assert!(names.contains(&"docs/readme.txt".to_owned()) && names.contains(&"big.txt".to_owned()));
    assert_eq!(collect(remote.read("big.txt").await.unwrap()).await.len(), 20900);
    assert_eq!(
        collect(gl.artifact_via_archive(P, &JobRef::Id(build), "docs/readme.txt").await.unwrap()).await.len(),
        48
    );
    // The resolver names the archive's URL.
    let resolved = RemoteResolver::new(gl.clone()).resolve(P, &JobRef::Id(build)).unwrap().unwrap();
    assert!(resolved.archive.unwrap().ends_with(&format!("/projects/group%2Fapp/jobs/{build}/artifacts")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_token_reads_artifacts_while_its_job_runs() {
    let w = world().await;
    let build = id(&w.import(ImportJob { artifacts: Some(fixture("infozip-basic.zip")), ..w.job("build") }));
    let running = w.import(ImportJob { status: Status::Running, ..w.job("deploy") });
    let ci = Client::builder(&w.url).job_token(running["token"].as_str().unwrap()).build().unwrap();
    assert_eq!(ci.current_job().await.unwrap().id, id(&running));
    let file = collect(ci.artifact(P, &JobRef::Id(build), "docs/readme.txt").await.unwrap()).await;
    assert_eq!(file.len(), 48);
    let remote = ci.remote_archive(P, &JobRef::Latest { ref_name: "main".into(), job: "build".into() }).await.unwrap();
    assert_eq!(collect(remote.read("docs/readme.txt").await.unwrap()).await.len(), 48);
    // Not the jobs API; a download by id still works (its size is then checked against
    // Content-Length alone).
    let err = ci.job(P, build).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    let dir = tempfile::tempdir().unwrap();
    let done = ci.download_archive_to(P, &JobRef::Id(build), &dir.path().join("a.zip"), None).await.unwrap();
    assert_eq!(done.bytes, 2934);
    // A `..` in an artifact path never leaves the artifacts route.
    let err = ci.artifact(P, &JobRef::Id(build), "../../1/artifacts").await.err().unwrap();
    assert!(matches!(err, Error::Engine(artifact_core::Error::InvalidPath(_))), "{err}");
}
