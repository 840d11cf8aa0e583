//! The client commands (`artifact job ...`, `download`, `get`, `trace --follow`) as
//! processes against `artifact serve` on loopback, configured by flags and by the GitLab CI
//! environment.

#[path = "common/server_process.rs"]
mod server_process;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use server_process::{ServerProcess, artifact_bin};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn admin(data: &Path, args: &[&str]) -> String {
    let out = Command::new(artifact_bin()).args(args).arg("--data").arg(data).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

struct Setup {
    _dir: tempfile::TempDir,
    server: ServerProcess,
    token: String,
    build: u64,
    running: serde_json::Value,
    data: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    admin(&data, &["admin", "user", "add", "dev"]);
    let token = admin(&data, &["admin", "token", "add", "dev"]).trim().to_owned();
    admin(&data, &["admin", "project", "add", "group/app"]);
    admin(&data, &["admin", "member", "add", "group/app", "dev", "maintainer"]);
    let zip = repo().join("tests/data/infozip-basic.zip");
    let log = dir.path().join("log");
    std::fs::write(&log, "building\ndone\n").unwrap();
    let build: serde_json::Value = serde_json::from_str(&admin(
        &data,
        &[
            "import",
            "--project",
            "group/app",
            "--ref",
            "release/1.0",
            "--job",
            "build",
            "--artifacts",
            zip.to_str().unwrap(),
            "--trace",
            log.to_str().unwrap(),
        ],
    ))
    .unwrap();
    let running: serde_json::Value = serde_json::from_str(&admin(
        &data,
        &[
            "import",
            "--project",
            "group/app",
            "--ref",
            "main",
            "--job",
            "deploy",
            "--status",
            "running",
            "--user",
            "dev",
            "--trace",
            log.to_str().unwrap(),
        ],
    ))
    .unwrap();
    let server = ServerProcess::start(&data, &[]);
    Setup { _dir: dir, server, token, build: build["id"].as_u64().unwrap(), running, data }
}

impl Setup {
    /// `artifact ARGS` configured by the CI environment.
    fn run(&self, args: &[&str]) -> Output {
        self.run_at(&self.server.url, args)
    }

    /// The same against the GitLab at `url`.
    fn run_at(&self, url: &str, args: &[&str]) -> Output {
        Command::new(artifact_bin())
            .args(args)
            .env("CI_SERVER_URL", url)
            .env("GITLAB_TOKEN", &self.token)
            .env("CI_PROJECT_ID", "group/app")
            .env_remove("CI_JOB_TOKEN")
            .env_remove("PRIVATE_TOKEN")
            .env_remove("GITLAB_URL")
            .output()
            .unwrap()
    }
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn job_commands_print_tables_and_json() {
    let s = setup();
    let out = s.run(&["job", "list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = text(&out);
    assert!(table.lines().next().unwrap().starts_with("ID"), "{table}");
    assert!(table.contains("deploy") && table.contains("build"));
    let out = s.run(&["job", "list", "--json", "--scope", "running"]);
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_eq!(jobs[0]["name"], "deploy");
    let out = s.run(&["job", "get", &s.build.to_string(), "--json"]);
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["artifacts_file"]["size"], 2934);
    let out = s.run(&["job", "retry", &s.build.to_string(), "--json"]);
    let new: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(new["id"], job["id"]);
    let out = s.run(&["job", "keep", "999999"]);
    assert_eq!(out.status.code(), Some(4), "404 is exit 4");
}

#[test]
fn download_and_get_by_id_and_by_ref() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("a.zip");
    let out = s.run(&["download", "--ref", "release/1.0", "--job-name", "build", "-o", zip.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&zip).unwrap(), std::fs::read(repo().join("tests/data/infozip-basic.zip")).unwrap());
    let readme = "Top-level readme for the infozip-basic fixture.\n";
    let id = s.build.to_string();
    assert_eq!(text(&s.run(&["get", "docs/readme.txt", "--job", &id])), readme);
    assert_eq!(text(&s.run(&["get", "docs/readme.txt", "--job", &id, "--via-archive"])), readme);
    assert_eq!(text(&s.run(&["get", "docs/readme.txt", "--ref", "release/1.0", "--job-name", "build"])), readme);
    let to = dir.path().join("big.txt");
    assert!(s.run(&["get", "big.txt", "--job", &id, "-o", to.to_str().unwrap()]).status.success());
    assert_eq!(std::fs::metadata(&to).unwrap().len(), 20900);
    // Exit codes: a bad path is 3, a missing entry 4, a bad token 1 with a hint.
    assert_eq!(s.run(&["get", "../x", "--job", &id]).status.code(), Some(3));
    assert_eq!(s.run(&["get", "nope.txt", "--job", &id]).status.code(), Some(4));
    let out = Command::new(artifact_bin())
        .args(["job", "list", "--url", &s.server.url, "--token", "glpat-wrong", "--project", "group/app"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "{}", String::from_utf8_lossy(&out.stderr));
    // A job token from the CI environment reads artifacts while its job runs.
    let out = Command::new(artifact_bin())
        .args(["get", "docs/readme.txt", "--job", &id])
        .env("CI_SERVER_URL", &s.server.url)
        .env("CI_JOB_TOKEN", s.running["token"].as_str().unwrap())
        .env("CI_PROJECT_ID", "group/app")
        .env_remove("GITLAB_TOKEN")
        .env_remove("PRIVATE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(text(&out), readme, "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn trace_follow_stops_when_the_job_finishes() {
    let s = setup();
    let running = s.running["id"].as_u64().unwrap().to_string();
    let mut follow = Command::new(artifact_bin())
        .args(["trace", &running, "--follow", "--interval", "0.2"])
        .env("CI_SERVER_URL", &s.server.url)
        .env("GITLAB_TOKEN", &s.token)
        .env("CI_PROJECT_ID", "group/app")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Following: it prints the log so far, then keeps asking (the server's request ids,
    // less the ones this test's probes take, show its requests).
    let mut stdout = follow.stdout.take().unwrap();
    let mut printed = vec![0u8; "building\ndone\n".len()];
    std::io::Read::read_exact(&mut stdout, &mut printed).unwrap();
    let start = s.server.requests_so_far();
    let mut probes = 1;
    while s.server.requests_so_far() - start - probes < 2 {
        probes += 1;
        assert!(probes < 1000, "the follow stopped asking while the job runs");
        std::thread::sleep(Duration::from_millis(20)); // between probes, not a synchronisation
    }
    assert!(follow.try_wait().unwrap().is_none(), "still following a running job");
    assert!(s.run(&["job", "cancel", &running]).status.success());
    // Canceled, it stops by itself.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(follow.wait());
    });
    let status = rx.recv_timeout(Duration::from_secs(30)).expect("follow stops after the job was canceled");
    assert!(status.unwrap().success());
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    printed.extend(rest);
    assert_eq!(String::from_utf8_lossy(&printed), "building\ndone\n", "the log once, no repeats");
    let _ = &s.data;
}

#[test]
fn the_command_line_works_through_the_proxy() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let mut proxy = ServerProcess::start(&dir.path().join("unused"), &["--upstream", &s.server.url]);
    let via = |args: &[&str]| {
        let out = s.run_at(&proxy.url, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let table = text(&via(&["job", "list"]));
    assert!(table.contains("deploy") && table.contains("build"), "{table}");
    let job: serde_json::Value =
        serde_json::from_slice(&via(&["job", "get", &s.build.to_string(), "--json"]).stdout).unwrap();
    assert_eq!(job["artifacts_file"]["size"], 2934);
    assert!(job["web_url"].as_str().unwrap().starts_with(&proxy.url), "{}", job["web_url"]);
    let zip = dir.path().join("a.zip");
    via(&["download", "--ref", "release/1.0", "--job-name", "build", "-o", zip.to_str().unwrap()]);
    assert_eq!(std::fs::read(&zip).unwrap(), std::fs::read(repo().join("tests/data/infozip-basic.zip")).unwrap());
    let readme = "Top-level readme for the infozip-basic fixture.\n";
    let id = s.build.to_string();
    assert_eq!(text(&via(&["get", "docs/readme.txt", "--job", &id])), readme);
    assert_eq!(text(&via(&["get", "docs/readme.txt", "--job", &id, "--via-archive"])), readme);
    assert_eq!(text(&via(&["get", "docs/readme.txt", "--ref", "release/1.0", "--job-name", "build"])), readme);
    assert_eq!(text(&via(&["trace", &id])), "building\ndone\n");
    // Exit codes come through too: a bad path is 3, a missing file 4.
    assert_eq!(s.run_at(&proxy.url, &["get", "../x", "--job", &id]).status.code(), Some(3));
    assert_eq!(s.run_at(&proxy.url, &["get", "nope.txt", "--job", &id]).status.code(), Some(4));
    assert!(proxy.stop());
}

#[test]
fn two_proxy_processes_share_one_cache() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let flags = ["--upstream", &s.server.url, "--shared-cache", shared.to_str().unwrap()];
    let id = s.build.to_string();
    let readme = "Top-level readme for the infozip-basic fixture.\n";
    let mut first = ServerProcess::start(&dir.path().join("unused"), &flags);
    assert_eq!(text(&s.run_at(&first.url, &["get", "docs/readme.txt", "--job", &id])), readme);
    // Written in the background, after the answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_dir(shared.join("index")).map_or(0, |d| d.count()) == 0 {
        assert!(std::time::Instant::now() < deadline, "the first proxy wrote no index");
        std::thread::sleep(std::time::Duration::from_millis(10)); // polling a directory
    }
    assert!(first.stop());
    let mut second = ServerProcess::start(&dir.path().join("unused2"), &flags);
    assert_eq!(text(&s.run_at(&second.url, &["get", "docs/readme.txt", "--job", &id])), readme);
    assert!(second.stop());
    // A bucket without keys is refused at start, with what to set.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_artifact"))
        .args(["serve", "--upstream", &s.server.url, "--shared-cache", "s3://bucket", "--listen", "127.0.0.1:0"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SKIP_SIGNATURE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--shared-cache") && stderr.contains("AWS_ACCESS_KEY_ID"), "{stderr}");
}

#[test]
fn an_internal_authority_is_trusted_with_ca_cert_by_the_client_and_the_proxy() {
    use artifact_testkit::fronts::{TEST_CA_PEM, TlsFront};
    let s = setup();
    let addr: std::net::SocketAddr = s.server.url.trim_start_matches("http://").parse().unwrap();
    let front = TlsFront::start(addr);
    let https = front.url("");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, TEST_CA_PEM).unwrap();
    let ca = ca.to_str().unwrap();
    let refused = s.run_at(&https, &["job", "list"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let listed = s.run_at(&https, &["job", "list", "--ca-cert", ca]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(text(&listed).contains("build"));
    let id = s.build.to_string();
    let readme = "Top-level readme for the infozip-basic fixture.\n";
    let got = s.run_at(&https, &["get", "docs/readme.txt", "--job", &id, "--via-archive", "--ca-cert", ca]);
    assert_eq!(text(&got), readme, "{}", String::from_utf8_lossy(&got.stderr));
    // The proxy in front of it: authorization, forwarding and range reads, all over TLS.
    let mut proxy =
        ServerProcess::start(&dir.path().join("unused"), &["--upstream", &https, "--ca-cert", ca, "--auth-ttl", "0"]);
    let listed = s.run_at(&proxy.url, &["job", "list"]);
    assert!(listed.status.success() && text(&listed).contains("build"), "{}", String::from_utf8_lossy(&listed.stderr));
    assert_eq!(text(&s.run_at(&proxy.url, &["get", "docs/readme.txt", "--job", &id])), readme);
    assert!(proxy.stop());
    let mut untrusting = ServerProcess::start(&dir.path().join("unused2"), &["--upstream", &https]);
    let out = s.run_at(&untrusting.url, &["get", "docs/readme.txt", "--job", &id]);
    assert!(!out.status.success(), "a proxy that does not trust the upstream serves nothing from it");
    assert!(untrusting.stop());
}

#[test]
fn the_server_serves_its_metrics_without_an_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    admin(&data, &["admin", "user", "add", "dev"]);
    let server = ServerProcess::start(&data, &["--metrics-listen", "127.0.0.1:0"]);
    let metrics = server.metrics.clone().expect("the metrics address was printed");
    assert_ne!(metrics, server.url);
    /// A plain `GET` of `url` over HTTP/1.0: its status line and body.
    fn get(url: &str) -> (String, String) {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut conn = std::net::TcpStream::connect(host).unwrap();
        write!(conn, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        (head.lines().next().unwrap().to_owned(), body.to_owned())
    }
    let (status, _) = get(&format!("{}/api/v4/user", server.url));
    assert!(status.contains(" 401 "), "{status}");
    let (status, text) = get(&format!("{metrics}/metrics"));
    assert!(status.contains(" 200 "), "{status}");
    assert!(text.contains(r#"artifact_server_requests_total{route="/api/v4/user",status="401"} 1"#), "{text}");
    assert!(text.contains("artifact_server_request_seconds_bucket"), "{text}");
    assert!(text.contains(r#"artifact_server_store_query_seconds_count{query="#), "{text}");
}

/// `artifact ARGS` against the GitLab at `url` as the holder of `token`, in `project`.
fn run_as(url: &str, token: &str, project: &str, args: &[&str]) -> Output {
    Command::new(artifact_bin())
        .args(args)
        .env("CI_SERVER_URL", url)
        .env("GITLAB_TOKEN", token)
        .env("CI_PROJECT_ID", project)
        .env_remove("CI_JOB_TOKEN")
        .env_remove("PRIVATE_TOKEN")
        .env_remove("GITLAB_URL")
        .output()
        .unwrap()
}

/// `artifact ls ARGS` of a local archive: its output.
fn local_ls(archive: &Path, args: &[&str]) -> String {
    let out = Command::new(artifact_bin()).arg("ls").arg(archive).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    text(&out)
}

#[test]
fn job_ls_against_the_demo_prints_what_ls_prints_of_the_same_archive() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(&dir.path().join("data"), &["--demo"]);
    let demo = server.demo_output();
    let token = demo.lines().find_map(|l| l.strip_prefix("token: ")).unwrap().trim().to_owned();
    // The demo's `try:` line names the main build's job: `.../jobs/<id>/artifacts/...`.
    let tried = demo.lines().find_map(|l| l.strip_prefix("try: ")).unwrap();
    let job = tried.split("/jobs/").nth(1).unwrap().split('/').next().unwrap().to_owned();
    let ls = |args: &[&str]| run_as(&server.url, &token, "demo/app", args);
    let zip = repo().join("tests/data/infozip-basic.zip");
    for (remote, local) in [
        (vec!["job", "ls", &job], vec![]),
        (vec!["job", "ls", &job, "-r"], vec!["-r"]),
        (vec!["job", "ls", &job, "docs"], vec!["docs"]),
        (vec!["job", "ls", &job, "docs/", "--recursive"], vec!["docs/", "--recursive"]),
        (vec!["job", "ls", "--ref", "main", "--job", "build", "-r"], vec!["-r"]),
        (vec!["job", "ls", "--ref", "main", "--job-name", "build", "docs/nested"], vec!["docs/nested"]),
    ] {
        let out = ls(&remote);
        assert!(out.status.success(), "{remote:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(text(&out), local_ls(&zip, &local), "{remote:?}");
    }
    // JSON: `artifact ls --json`'s rows, with what the API says.
    let json: serde_json::Value = serde_json::from_slice(&ls(&["job", "ls", &job, "docs", "--json"]).stdout).unwrap();
    assert_eq!(json[1]["path"], "docs/readme.txt");
    assert_eq!(
        (json[1]["size"].as_u64(), json[1]["mode"].as_str(), json[1]["dir"].as_bool()),
        (Some(48), Some("644"), Some(false))
    );
    assert_eq!(json[0]["dir"], true);
    // `artifact ls`'s exit codes: 4 for a folder that is not there (or a file), 3 for a
    // path the path rule refuses, 2 for a usage error.
    for (args, code) in [
        (vec!["job", "ls", &job, "nope"], 4),
        (vec!["job", "ls", &job, "empty.txt"], 4),
        (vec!["job", "ls", "999999"], 4),
        (vec!["job", "ls", &job, "../etc"], 3),
        (vec!["job", "ls"], 2),
        (vec!["job", "ls", "build"], 2),
    ] {
        let out = ls(&args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let missing = ls(&["job", "ls", &job, "nope"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no directory named \"nope/\""));
}

#[test]
fn job_ls_round_trips_names_with_spaces_hashes_percents_and_rtl_marks() {
    let s = setup();
    let names =
        ["with space/a b.txt", "with space/c#d.txt", "50%+1.txt", "ünï/çødé.txt", "ünï/\u{200f}rtl\u{202e}txt.exe"];
    let zip = s._dir.path().join("odd.zip");
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
    for name in names {
        writer.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut writer, name.as_bytes()).unwrap();
    }
    writer.finish().unwrap();
    let zip_arg = zip.to_str().unwrap();
    admin(&s.data, &["import", "--project", "group/app", "--ref", "main", "--job", "odd", "--artifacts", zip_arg]);
    let out = s.run(&["job", "ls", "--ref", "main", "--job", "odd", "-r"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text(&out), local_ls(&zip, &["-r"]));
    for name in names {
        assert!(text(&out).lines().any(|l| l == name), "{name:?} in {}", text(&out));
    }
    let spaced = s.run(&["job", "ls", "--ref", "main", "--job", "odd", "with space", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&spaced.stdout).unwrap();
    let paths: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["with space/a b.txt", "with space/c#d.txt"]);
}
