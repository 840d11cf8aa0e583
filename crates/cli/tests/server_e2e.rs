//! End-to-end: `artifact serve` as a real process on loopback, driven through all 15 Jobs
//! API operations by the real python-gitlab client (installed into a venv by
//! `scripts/setup-python-gitlab.sh`), with data put in by `artifact admin` and
//! `artifact import` while it runs.

#[path = "common/server_process.rs"]
mod server_process;

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

use server_process::{ServerProcess, artifact_bin, http_get};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's python, made (once) by the project's own script.
fn python_gitlab() -> PathBuf {
    let out =
        Command::new("bash").arg(repo().join("scripts/setup-python-gitlab.sh")).output().expect("run setup script");
    assert!(out.status.success(), "setup-python-gitlab.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().expect("the script prints the venv's python").trim())
}

/// Runs `tests/e2e/python_gitlab_e2e.py` against `url`, putting data in through `data`;
/// its stdout, after checking it reported all 15 operations.
fn python_gitlab_flow(data: &std::path::Path, url: &str) -> String {
    python_gitlab_flow_with(data, url, &[])
}

/// Like [`python_gitlab_flow`], with `envs` for the script and the `artifact` commands it runs.
fn python_gitlab_flow_with(data: &std::path::Path, url: &str, envs: &[(String, String)]) -> String {
    let out = Command::new(python_gitlab())
        .envs(envs.iter().cloned())
        .arg(repo().join("tests/e2e/python_gitlab_e2e.py"))
        .arg("--artifact-bin")
        .arg(artifact_bin())
        .arg("--data")
        .arg(data)
        .args(["--url", url])
        .arg("--fixtures")
        .arg(repo().join("tests/data"))
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("all 15 operations ok"),
        "python-gitlab e2e against {url} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
#[cfg_attr(not(feature = "external-tests"), ignore = "needs python-gitlab from PyPI: scripts/test.sh")]
fn python_gitlab_drives_all_15_operations() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(&data, &[]);
    python_gitlab_flow(&data, &server.url);
    assert!(server.stop(), "SIGTERM ends the server cleanly");
}

#[test]
#[cfg_attr(not(feature = "external-tests"), ignore = "needs python-gitlab from PyPI: scripts/test.sh")]
fn python_gitlab_drives_all_15_operations_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut upstream = ServerProcess::start(&data, &[]);
    let mut proxy = ServerProcess::start(&dir.path().join("unused"), &["--upstream", &upstream.url]);
    let stdout = python_gitlab_flow(&data, &proxy.url);
    assert!(!stdout.contains("differs from the user-provided base URL"), "upstream URLs leak through: {stdout}");
    assert!(!dir.path().join("unused").exists(), "a proxy keeps no data directory");
    assert!(proxy.stop() && upstream.stop());
}

#[test]
fn demo_prints_a_curl_line_that_works_as_pasted() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(&dir.path().join("data"), &["--demo"]);
    let text = server.demo_output();
    let line = text.lines().find_map(|l| l.strip_prefix("try: ")).unwrap();
    assert!(line.contains(&server.url), "the line names the real address: {line}");
    let out = Command::new("sh").arg("-c").arg(format!("{line} -fsS")).output().unwrap();
    assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Top-level readme for the infozip-basic fixture.\n");
    assert!(server.stop());
}

#[test]
fn import_refuses_a_file_that_is_not_a_zip_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| Command::new(artifact_bin()).args(args).arg("--data").arg(&data).output().unwrap();
    let _ = run(&["admin", "project", "add", "g/p"]);
    let not_zip = dir.path().join("not.zip");
    std::fs::write(&not_zip, b"this is not a zip archive at all, just text").unwrap();
    let out = Command::new(artifact_bin())
        .args(["import", "--project", "g/p", "--ref", "main", "--job", "build", "--artifacts"])
        .arg(&not_zip)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    let stored = walk(&data.join("blobs"));
    assert!(stored.is_empty(), "nothing is stored: {stored:?}");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

/// `artifact` run against the data directory; stdout as text.
fn cli(data: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(artifact_bin()).args(args).arg("--data").arg(data).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `artifact admin project set PATH --keep-latest-artifacts true|false` (#25): prints the
/// project with GitLab's `keep_latest_artifact`; a value other than true or false, no
/// setting, or no such project is a usage error (exit 2) with one line saying so.
#[test]
fn admin_project_set_turns_keep_latest_artifacts_off_and_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let added: serde_json::Value =
        serde_json::from_str(&cli(&data, &["admin", "project", "add", "group/app"])).unwrap();
    assert_eq!(added["keep_latest_artifact"], true, "on for a new project");
    for value in ["false", "true"] {
        let set: serde_json::Value = serde_json::from_str(&cli(
            &data,
            &["admin", "project", "set", "group/app", "--keep-latest-artifacts", value],
        ))
        .unwrap();
        assert_eq!(set["keep_latest_artifact"].to_string(), value);
        assert_eq!(set["path_with_namespace"], "group/app");
    }
    for (args, says) in [
        (&["group/app", "--keep-latest-artifacts", "maybe"][..], "invalid value 'maybe'"),
        (&["group/app"][..], "--keep-latest-artifacts"),
        (&["group/none", "--keep-latest-artifacts", "false"][..], "no project group/none"),
    ] {
        let out = Command::new(artifact_bin())
            .args(["admin", "project", "set"])
            .args(args)
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says) && stderr.trim().lines().count() == 1, "{args:?}: {stderr}");
    }
}

#[test]
fn the_rust_gitlab_crate_downloads_by_ref_with_encoded_refs() {
    use gitlab::api::projects::jobs::artifacts::{DownloadRefJobArtifactFile, DownloadRefJobArtifacts};
    use gitlab::api::{Query, raw};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cli(&data, &["admin", "user", "add", "ci"]);
    let token = cli(&data, &["admin", "token", "add", "ci"]).trim().to_owned();
    cli(&data, &["admin", "project", "add", "group/app"]);
    cli(&data, &["admin", "member", "add", "group/app", "ci", "developer"]);
    let zip = repo().join("tests/data/infozip-basic.zip");
    let zip = zip.to_str().unwrap();
    cli(&data, &["import", "--project", "group/app", "--ref", "feature/x", "--job", "build", "--artifacts", zip]);
    let running: serde_json::Value = serde_json::from_str(&cli(
        &data,
        &[
            "import",
            "--project",
            "group/app",
            "--ref",
            "feature/x",
            "--job",
            "deploy",
            "--status",
            "running",
            "--user",
            "ci",
        ],
    ))
    .unwrap();
    let mut server = ServerProcess::start(&data, &[]);
    let host = server.url.trim_start_matches("http://").to_owned();

    let client = gitlab::GitlabBuilder::new(&host, &token).insecure().build().expect("the crate's /user handshake");
    let archive =
        DownloadRefJobArtifacts::builder().project("group/app").ref_name("feature/x").job("build").build().unwrap();
    let bytes = raw(archive).query(&client).expect("download by ref (%2F in the ref)");
    assert_eq!(bytes, std::fs::read(repo().join("tests/data/infozip-basic.zip")).unwrap());
    let file = DownloadRefJobArtifactFile::builder()
        .project("group/app")
        .ref_name("feature/x")
        .job("build")
        .path("docs/nested/deep/leaf.txt")
        .build()
        .unwrap();
    let leaf = raw(file).query(&client).expect("one file by ref");
    assert_eq!(leaf.len(), 33);

    // A job token: the crate checks it against /job, then downloads with it.
    let job_token = running["token"].as_str().unwrap();
    let as_job =
        gitlab::GitlabBuilder::new_with_job_token(&host, job_token).insecure().build().expect("/job handshake");
    let file = DownloadRefJobArtifactFile::builder()
        .project("group/app")
        .ref_name("feature/x")
        .job("build")
        .path("docs/readme.txt")
        .build()
        .unwrap();
    let readme = raw(file).query(&as_job).expect("one file with a job token");
    assert_eq!(readme, b"Top-level readme for the infozip-basic fixture.\n");
    // A miss is an error the crate reports with GitLab's status.
    let missing =
        DownloadRefJobArtifacts::builder().project("group/app").ref_name("feature/y").job("build").build().unwrap();
    let err = raw(missing).query(&client).unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    assert!(server.stop());
}

#[test]
fn import_keeps_the_healthy_members_of_a_damaged_archive_and_serve_refuses_only_the_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cli(&data, &["admin", "user", "add", "ci"]);
    let token = cli(&data, &["admin", "token", "add", "ci"]).trim().to_owned();
    cli(&data, &["admin", "project", "add", "group/app"]);
    cli(&data, &["admin", "member", "add", "group/app", "ci", "reporter"]);
    let import = |file: &str, job: &str| {
        let zip = repo().join("tests/hostile").join(file);
        Command::new(artifact_bin())
            .args(["import", "--project", "group/app", "--ref", "main", "--job", job, "--artifacts"])
            .arg(zip)
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap()
    };
    let out = import("overlap-and-out-of-bounds.zip", "mixed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.starts_with("artifact: 2 of 5 entries refused: \"intruder.txt\": "), "{stderr}");
    assert!(stderr.contains("\"too-long.bin\": "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one summary line: {stderr}");
    let mixed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = import("crc-mismatch.zip", "crc");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("artifact: 4 of 5 entries refused"));
    let crc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = import("cd-size-understated.zip", "lenient");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "artifact: 2 entries verified\n");

    let server = ServerProcess::start(&data, &[]);
    let auth = [("PRIVATE-TOKEN", token.as_str())];
    let entry = |job: &serde_json::Value, name: &str| {
        format!("/api/v4/projects/group%2Fapp/jobs/{}/artifacts/{name}", job["id"])
    };
    let (status, _, body) = http_get(&server.url, &entry(&mixed, "c/d.txt"), &auth);
    assert_eq!((status, body), (200, b"deeper\n".repeat(50)));
    let (status, _, body) = http_get(&server.url, &entry(&mixed, "intruder.txt"), &auth);
    assert_eq!((status, &body[..]), (500, &br#"{"message":"500 Internal Server Error"}"#[..]));
    for headers in [vec![("Accept-Encoding", "gzip")], vec![("Range", "bytes=-10")], vec![("Range", "bytes=0-99")]] {
        let mut h = auth.to_vec();
        h.extend(headers.iter().copied());
        let (status, _, _) = http_get(&server.url, &entry(&crc, "large-deflated.bin"), &h);
        assert_eq!(status, 500, "{headers:?}");
        let (status, _, _) = http_get(&server.url, &entry(&crc, "small-stored.txt"), &h);
        assert_eq!(status, 500, "{headers:?}");
    }
    let (status, _, body) =
        http_get(&server.url, "/api/v4/projects/group%2Fapp/jobs/artifacts/main/raw/b.bin?job=lenient", &auth);
    assert_eq!((status, body), (200, (0..=255u8).collect::<Vec<_>>().repeat(4)));
}

#[test]
fn a_post_with_a_body_keeps_the_connection_for_the_next_request() {
    // python-gitlab sends `{}` with every POST; a body left unread made the server close the
    // connection after its answer, and the client's next request on it failed.
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cli(&data, &["admin", "user", "add", "ci", "--admin"]);
    let token = cli(&data, &["admin", "token", "add", "ci"]).trim().to_owned();
    cli(&data, &["admin", "project", "add", "group/app"]);
    let job: serde_json::Value = serde_json::from_str(&cli(
        &data,
        &["import", "--project", "group/app", "--ref", "main", "--job", "deploy", "--status", "running"],
    ))
    .unwrap();
    let server = ServerProcess::start(&data, &[]);
    let host = server.url.trim_start_matches("http://").to_owned();
    let stream = std::net::TcpStream::connect(&host).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    // The head first, the body in a second write (as Python's http.client sends them): the
    // server must read the body before it answers, or it answers and then drops the
    // connection, with the body unread.
    let head = format!(
        "POST /api/v4/projects/group%2Fapp/jobs/{}/cancel HTTP/1.1\r\nHost: {host}\r\nPRIVATE-TOKEN: {token}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n",
        job["id"]
    );
    writer.write_all(head.as_bytes()).unwrap();
    reader.get_ref().set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    let mut early = String::new();
    let answered_early = reader.read_line(&mut early).is_ok_and(|n| n > 0);
    assert!(!answered_early, "the server answered before reading the request body: {early}");
    reader.get_ref().set_read_timeout(None).unwrap();
    writer.write_all(b"{}").unwrap();
    assert_eq!(read_response(&mut reader), 201);
    let get = format!("GET /api/v4/version HTTP/1.1\r\nHost: {host}\r\nPRIVATE-TOKEN: {token}\r\n\r\n");
    writer.write_all(get.as_bytes()).unwrap();
    assert_eq!(read_response(&mut reader), 200, "the same connection answers the next request");
}

/// Reads one response with a `Content-Length` body off a kept-alive connection; its status.
fn read_response(reader: &mut impl std::io::BufRead) -> u16 {
    let mut status = String::new();
    assert!(reader.read_line(&mut status).unwrap() > 0, "the connection was closed instead of answered");
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    status.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn admin_tokens_get_scopes_and_expiry_and_are_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cli(&data, &["admin", "user", "add", "ci"]);
    let tomorrow = {
        let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 86_400 + 1;
        // Days to a civil date (the same algorithm the server uses, checked by its tests).
        let z = days as i64 + 719_468;
        let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        format!("{:04}-{m:02}-{d:02}", yoe + era * 400 + i64::from(m <= 2))
    };
    let reader = cli(&data, &["admin", "token", "add", "ci", "--scope", "read_api", "--expires", &tomorrow]);
    let reader = reader.trim().to_owned();
    let full = cli(&data, &["admin", "token", "add", "ci"]).trim().to_owned();
    let mut server = ServerProcess::start(&data, &[]);
    for token in [&reader, &full] {
        let (status, _, body) = http_get(&server.url, "/api/v4/user", &[("PRIVATE-TOKEN", token)]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    // Revoked by the token, then (another) by id: the JSON record, then 401 at once.
    let revoked: serde_json::Value = serde_json::from_str(&cli(&data, &["admin", "token", "revoke", &reader])).unwrap();
    assert_eq!((revoked["revoked"].as_bool(), revoked["scopes"][0].as_str()), (Some(true), Some("read_api")));
    assert_eq!(revoked["expires_at"], tomorrow.as_str());
    let (status, _, body) = http_get(&server.url, "/api/v4/user", &[("PRIVATE-TOKEN", &reader)]);
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("Token was revoked"));
    let id = (revoked["id"].as_i64().unwrap() + 1).to_string();
    cli(&data, &["admin", "token", "revoke", "--id", &id]);
    assert_eq!(http_get(&server.url, "/api/v4/user", &[("PRIVATE-TOKEN", &full)]).0, 401);
    // Bad input (an unknown scope, a day that does not exist, a token revoked already, no
    // token named): a one-line error and the usage exit status.
    for (args, code) in [
        (&["admin", "token", "add", "ci", "--scope", "write_everything"][..], 2),
        (&["admin", "token", "add", "ci", "--expires", "2026-02-30"][..], 2),
        (&["admin", "token", "revoke", "--id", &id][..], 2),
        (&["admin", "token", "revoke"][..], 2),
    ] {
        let out = Command::new(artifact_bin()).args(args).arg("--data").arg(&data).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(!stderr.trim().is_empty(), "{args:?} says why");
    }
    assert!(server.stop());
}

#[test]
fn processes_started_at_once_on_a_fresh_data_folder_all_come_up() {
    // Each process opens the store and runs the migrations: they race for a fresh file.
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let start = std::sync::Arc::new(std::sync::Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (data, start) = (data.clone(), start.clone());
                std::thread::spawn(move || {
                    let mut cmd = Command::new(artifact_bin());
                    cmd.args(["admin", "user", "add", &format!("user{i}"), "--data"]).arg(&data);
                    start.wait();
                    cmd.output().unwrap()
                })
            })
            .collect();
        for h in handles {
            let out = h.join().unwrap();
            assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

#[test]
#[cfg_attr(not(feature = "external-tests"), ignore = "needs PostgreSQL: scripts/test.sh")]
fn two_replicas_on_one_postgresql_serve_the_same_jobs_and_see_each_others_changes() {
    let db = artifact_testkit::postgres::PostgresServer::shared().new_database();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let with_db = |args: &[&str]| {
        let out = Command::new(artifact_bin())
            .args(args)
            .arg("--data")
            .arg(&data)
            .env("ARTIFACT_DATABASE", &db)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    with_db(&["admin", "user", "add", "ci"]);
    let token = with_db(&["admin", "token", "add", "ci"]).trim().to_owned();
    with_db(&["admin", "project", "add", "group/app"]);
    with_db(&["admin", "member", "add", "group/app", "ci", "maintainer"]);
    let zip = repo().join("tests/data/infozip-basic.zip");
    let job: serde_json::Value = serde_json::from_str(&with_db(&[
        "import",
        "--project",
        "group/app",
        "--ref",
        "main",
        "--job",
        "build",
        "--artifacts",
        zip.to_str().unwrap(),
    ]))
    .unwrap();
    let id = job["id"].as_i64().unwrap();
    // Nothing in SQLite: the records are in PostgreSQL.
    assert!(!data.join("artifact.db").exists(), "no SQLite file with --database");
    let database = format!("--database={db}");
    let mut a = ServerProcess::start(&data, &[&database]);
    let mut b = ServerProcess::start(&data, &[&database]);
    let auth = [("PRIVATE-TOKEN", token.as_str())];
    let archive = format!("/api/v4/projects/group%2Fapp/jobs/{id}/artifacts");
    let expected = std::fs::read(&zip).unwrap();
    for replica in [&a, &b] {
        let (status, _, body) = http_get(&replica.url, &archive, &auth);
        assert_eq!(status, 200);
        assert!(body == expected, "byte-identical from {}", replica.url);
        let (status, _, body) = http_get(&replica.url, &format!("{archive}/docs/readme.txt"), &auth);
        assert_eq!((status, body.len()), (200, 48));
    }
    // Erased through A: B stops serving it (within its one-second look-up memory).
    let erased = {
        use std::io::Write;
        let mut conn = std::net::TcpStream::connect(a.url.trim_start_matches("http://")).unwrap();
        write!(
            conn,
            "POST /api/v4/projects/group%2Fapp/jobs/{id}/erase HTTP/1.1\r\nHost: a\r\nPRIVATE-TOKEN: {token}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(erased.starts_with("HTTP/1.1 201"), "{erased}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let (status, _, _) = http_get(&b.url, &archive, &auth);
        if status == 404 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "B still serves an erased job: {status}");
        std::thread::sleep(std::time::Duration::from_millis(50)); // between probes, not a synchronisation
    }
    assert!(a.stop() && b.stop());
}

#[test]
#[cfg_attr(not(feature = "external-tests"), ignore = "needs PostgreSQL and an S3 server from PyPI: scripts/test.sh")]
fn two_replicas_on_postgresql_and_a_bucket_serve_a_cli_import_byte_identical() {
    let db = artifact_testkit::postgres::PostgresServer::shared().new_database();
    let s3 = artifact_testkit::s3::S3Server::shared();
    let bucket = s3.new_bucket();
    let env: Vec<(String, String)> = s3
        .config()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_uppercase(), v))
        .chain([("ARTIFACT_DATABASE".into(), db.clone()), ("ARTIFACT_BLOBS".into(), format!("s3://{bucket}/ci"))])
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        let out = Command::new(artifact_bin())
            .args(args)
            .arg("--data")
            .arg(&data)
            .envs(env.iter().cloned())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["admin", "user", "add", "ci"]);
    let token = run(&["admin", "token", "add", "ci"]).trim().to_owned();
    run(&["admin", "project", "add", "group/app"]);
    run(&["admin", "member", "add", "group/app", "ci", "developer"]);
    let zip = repo().join("tests/data/infozip-basic.zip");
    let trace = dir.path().join("build.log");
    std::fs::write(&trace, "built\n").unwrap();
    let args = ["import", "--project", "group/app", "--ref", "main", "--job", "build", "--artifacts"];
    let mut args: Vec<&str> = args.to_vec();
    args.extend([zip.to_str().unwrap(), "--trace", trace.to_str().unwrap()]);
    let job: serde_json::Value = serde_json::from_str(&run(&args)).unwrap();
    let id = job["id"].as_i64().unwrap();
    // The blobs are in the bucket (archive, metadata, trace).
    let objects = s3.objects(&bucket);
    assert_eq!(objects.len(), 3, "{objects:?}");
    assert!(objects.iter().all(|(key, _)| key.starts_with("ci/")), "{objects:?}");
    assert!(!data.join("blobs/archive").exists(), "nothing in the local blob folder");
    let start = |extra: &[&str]| {
        let mut cmd = Command::new(artifact_bin());
        cmd.envs(env.iter().cloned());
        ServerProcess::start_with(cmd, &data, extra)
    };
    // A streams archive downloads itself; B sends them to the bucket.
    let mut a = start(&["--proxy-download"]);
    let mut b = start(&[]);
    let auth = [("PRIVATE-TOKEN", token.as_str())];
    let expected = std::fs::read(&zip).unwrap();
    for replica in [&a, &b] {
        let base = format!("/api/v4/projects/group%2Fapp/jobs/{id}");
        let (status, head, body) = http_get(&replica.url, &format!("{base}/artifacts"), &auth);
        if replica.url == a.url {
            assert_eq!(status, 200);
            assert!(body == expected, "the archive byte-identical from {}", replica.url);
        } else {
            assert_eq!(status, 302);
            let location = head.lines().find_map(|l| l.strip_prefix("location: ")).expect("a Location");
            let (host, path) = location.trim_start_matches("http://").split_once('/').unwrap();
            let (status, _, body) = http_get(&format!("http://{host}"), &format!("/{path}"), &[]);
            assert_eq!(status, 200);
            assert!(body == expected, "the presigned URL gives the archive byte-identical");
        }
        let (status, _, body) = http_get(&replica.url, &format!("{base}/artifacts/docs/readme.txt"), &auth);
        assert_eq!((status, body.len()), (200, 48));
        let (status, _, body) = http_get(&replica.url, &format!("{base}/trace"), &auth);
        assert_eq!((status, body), (200, b"built\n".to_vec()));
        let (status, _, body) = http_get(&replica.url, "/-/health", &[]);
        assert_eq!((status, body), (200, b"GitLab OK".to_vec()));
    }
    assert!(a.stop() && b.stop());
}

#[test]
#[cfg_attr(
    not(feature = "external-tests"),
    ignore = "needs PostgreSQL, an S3 server and python-gitlab from PyPI: scripts/test.sh"
)]
fn python_gitlab_drives_replica_a_on_postgresql_and_a_bucket_and_replica_b_sees_every_change() {
    let db = artifact_testkit::postgres::PostgresServer::shared().new_database();
    let s3 = artifact_testkit::s3::S3Server::shared();
    let bucket = s3.new_bucket();
    let env: Vec<(String, String)> = s3
        .config()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_uppercase(), v))
        .chain([("ARTIFACT_DATABASE".into(), db), ("ARTIFACT_BLOBS".into(), format!("s3://{bucket}"))])
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let start = |extra: &[&str]| {
        let mut cmd = Command::new(artifact_bin());
        cmd.envs(env.iter().cloned());
        ServerProcess::start_with(cmd, &data, extra)
    };
    // A streams archives itself (the flow checks the server's own download headers); B
    // redirects them to the bucket, as GitLab does.
    let (mut a, mut b) = (start(&["--proxy-download"]), start(&[]));
    python_gitlab_flow_with(&data, &a.url, &env);
    // Every change made through A (imports, actions, erasures, deletions, a retry by sudo)
    // shows through B: the same jobs, statuses and artifacts.
    let admin = |args: &[&str]| {
        let out = Command::new(artifact_bin()).args(args).arg("--data").arg(&data).envs(env.iter().cloned()).output();
        let out = out.unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    admin(&["admin", "user", "add", "checker", "--admin"]);
    let token = admin(&["admin", "token", "add", "checker"]);
    let auth = [("PRIVATE-TOKEN", token.trim())];
    let (status, _, projects) = http_get(&a.url, "/api/v4/projects/1/jobs?per_page=100", &auth);
    assert_eq!(status, 200);
    let through_a: Vec<serde_json::Value> = serde_json::from_slice(&projects).unwrap();
    let (_, _, projects) = http_get(&b.url, "/api/v4/projects/1/jobs?per_page=100", &auth);
    let through_b: Vec<serde_json::Value> = serde_json::from_slice(&projects).unwrap();
    let summary = |jobs: &[serde_json::Value]| -> Vec<(i64, String, bool)> {
        jobs.iter()
            .map(|j| {
                (j["id"].as_i64().unwrap(), j["status"].as_str().unwrap().to_owned(), j["artifacts_file"].is_object())
            })
            .collect()
    };
    assert!(through_a.len() > 10, "the flow made its jobs: {}", through_a.len());
    assert_eq!(summary(&through_a), summary(&through_b));
    for job in through_a.iter().filter(|j| j["artifacts_file"].is_object()) {
        let archive = format!("/api/v4/projects/1/jobs/{}/artifacts", job["id"]);
        let (sa, _, _) = http_get(&a.url, &archive, &auth);
        let (sb, headers, _) = http_get(&b.url, &archive, &auth);
        assert_eq!((sa, sb), (200, 302), "A streams, B redirects to the bucket");
        assert!(
            headers.to_ascii_lowercase().contains("\r\nlocation: ") && headers.contains("X-Amz-Signature"),
            "{headers}"
        );
        let file = format!("{archive}/docs/readme.txt");
        let (sa, _, fa) = http_get(&a.url, &file, &auth);
        let (sb, _, fb) = http_get(&b.url, &file, &auth);
        assert_eq!((sa, fa.len()), (sb, fb.len()));
        assert!(fa == fb);
    }
    assert!(a.stop() && b.stop());
}
