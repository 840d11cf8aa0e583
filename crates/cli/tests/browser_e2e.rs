//! The browsing pages in a real browser: `artifact serve` as a process, and Debian's
//! headless Chromium driven through chromedriver by selenium (`tests/e2e/browser_e2e.py`):
//! sign in, job list, folder, a coverage report of HTML, CSS and JavaScript opened in one
//! click, whose script can read neither the server's cookie nor its API, and a relative
//! link inside it; a text file's page; then the same through a proxy in front of that
//! server, and with an artifacts origin (the server as `localhost` beside `127.0.0.1`),
//! where the report runs outside any sandbox; each time, every link of a folder of
//! awkward names ([`NAMES`]) leads to its own file. `scripts/test.sh` installs Chromium
//! (`chromium`, `chromium-driver`); the venv is `scripts/setup-python-gitlab.sh`'s. `BROWSER_SCREENSHOTS=DIR` keeps the screenshots
//! (`docs/screenshots` holds the ones docs/server.md shows).

#[path = "common/server_process.rs"]
mod server_process;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use server_process::{ServerProcess, artifact_bin};

const REPORT: &[(&str, &str)] = &[
    (
        "coverage/index.html",
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Coverage</title>\
         <link rel=\"stylesheet\" href=\"style.css\"><script src=\"app.js\"></script></head>\
         <body><h1 id=\"title\">Coverage report: 87.5%</h1><p id=\"js\">no script</p>\
         <pre id=\"probe\">pending</pre><p><a id=\"next\" href=\"details/module.html\">Per module</a></p></body></html>",
    ),
    ("coverage/style.css", "body { font-family: sans-serif; margin: 2em } h1 { color: rgb(0, 128, 0) }"),
    (
        "coverage/app.js",
        "document.addEventListener('DOMContentLoaded', async () => {\n\
           document.getElementById('js').textContent = 'script ran';\n\
           let cookie;\n\
           try { cookie = 'read: [' + document.cookie + ']'; } catch (e) { cookie = 'blocked (' + e.name + ')'; }\n\
           let api;\n\
           try {\n\
             const r = await fetch('/api/v4/projects/group%2Freports/jobs', { credentials: 'include' });\n\
             api = 'read: status ' + r.status;\n\
           } catch (e) { api = 'blocked (' + e.name + ')'; }\n\
           document.getElementById('probe').textContent = 'cookie ' + cookie + '; api ' + api;\n\
         });\n",
    ),
    ("coverage/details/module.html", "<!doctype html><h1 id=\"detail\">src/lib.rs: 42 of 48 lines</h1>"),
    ("coverage/lcov.info", "SF:src/lib.rs\nDA:1,1\nLH:42\nLF:48\nend_of_record\n"),
];

/// Files under `names/`, each holding `this is <its name>`: names that a link must encode
/// (`&`, `#`, `?`, `%`, a space, an invisible right-to-left mark), one that reads as
/// another when unescaped (`a&amp;b.txt` beside `a&b.txt`) or decoded twice (`%41.txt`
/// beside `A.txt`). The browser follows each link of the folder to its own file.
const NAMES: &[&str] =
    &["a&amp;b.txt", "a&b.txt", "#x.txt", "q?.txt", "%41.txt", "A.txt", "sp ace.txt", "rtl\u{200f}mark.txt"];

fn run(data: &Path, args: &[&str]) -> String {
    let out = Command::new(artifact_bin()).args(args).arg("--data").arg(data).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_coverage_report_opens_in_one_click_and_its_script_cannot_reach_the_server() {
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: apt-get install chromium chromium-driver (scripts/test.sh does)"
        );
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let setup = Command::new("bash").arg(root.join("scripts/setup-python-gitlab.sh")).output().unwrap();
    assert!(setup.status.success(), "venv: {}", String::from_utf8_lossy(&setup.stderr));
    let python = String::from_utf8_lossy(&setup.stdout).lines().last().unwrap().trim().to_owned();

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let zip_path = dir.path().join("report.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let names = NAMES.iter().map(|name| (format!("names/{name}"), format!("this is {name}\n")));
    for (name, text) in REPORT.iter().map(|(n, t)| (n.to_string(), t.to_string())).chain(names) {
        zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    run(&data, &["admin", "project", "add", "group/reports"]);
    run(&data, &["admin", "user", "add", "ada"]);
    run(&data, &["admin", "member", "add", "group/reports", "ada", "reporter"]);
    let token = run(&data, &["admin", "token", "add", "ada", "--scope", "read_api"]);
    let job = run(
        &data,
        &["import", "--project", "group/reports", "--ref", "main", "--job", "coverage", "--artifacts"]
            .iter()
            .copied()
            .chain([zip_path.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    let job: serde_json::Value = serde_json::from_str(&job).unwrap();
    let job = job["id"].as_i64().unwrap().to_string();

    let shots = std::env::var("BROWSER_SCREENSHOTS").unwrap_or_else(|_| dir.path().join("shots").display().to_string());
    let browse = |server: &ServerProcess, artifacts_origin: &str, shots: &str| {
        let out = Command::new(&python)
            .arg(root.join("tests/e2e/browser_e2e.py"))
            .args([&server.url, &token, "group/reports", &job, shots, artifacts_origin])
            .env("BROWSER_E2E_NAMES", serde_json::to_string(NAMES).unwrap())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        println!("{stdout}");
        assert!(
            out.status.success() && stdout.contains("browser e2e ok"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Without an artifacts origin: the report in its sandbox.
    let mut server = ServerProcess::start(&data, &[]);
    browse(&server, "", &shots);
    for shot in ["listing.png", "report.png", "text.png"] {
        let bytes = std::fs::read(Path::new(&shots).join(shot)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 4096, "{shot}");
    }
    // The same through a proxy in front of it: the proxy's own pages, read upstream with
    // the token its session keeps.
    let mut proxy = ServerProcess::start(&dir.path().join("proxy"), &["--upstream", &server.url]);
    browse(&proxy, "", &dir.path().join("shots-proxy").display().to_string());
    assert!(proxy.stop());
    assert!(server.stop());
    // With one: the same server as `localhost` is the artifacts origin of `127.0.0.1`.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (listen, origin) = (format!("127.0.0.1:{port}"), format!("http://localhost:{port}"));
    let mut server = ServerProcess::start(&data, &["--listen", &listen, "--artifacts-origin", &origin]);
    browse(&server, &origin, &dir.path().join("shots-origin").display().to_string());
    assert!(server.stop());
}

#[test]
fn serve_refuses_an_artifacts_origin_on_its_own_site_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--data"];
        let data = dir.path().join("data");
        args.push(data.to_str().unwrap());
        args.extend_from_slice(extra);
        Command::new(artifact_bin()).args(&args).stdin(std::process::Stdio::null()).output().unwrap()
    };
    for (base, origin) in [
        ("https://gitlab.example.com", "https://files.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8081"),
    ] {
        let out = serve(&["--base-url", base, "--artifacts-origin", origin]);
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{base} {origin}: {said}");
        assert_eq!(said.trim_end().lines().count(), 1, "one line: {said}");
        assert!(said.contains("same site") && said.contains("--allow-same-site-artifacts-origin"), "{said}");
        assert!(!dir.path().join("data").exists(), "refused before anything was made");
    }
    // Without --base-url the listen address is the server's site: 127.0.0.1 beside it.
    let out = serve(&["--artifacts-origin", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    // Told so, or on another site, it starts (and is stopped here).
    let (base, same, other) =
        ("https://gitlab.example.com", "https://files.example.com", "https://example-artifacts.com");
    for extra in [
        &["--base-url", base, "--artifacts-origin", same, "--allow-same-site-artifacts-origin"][..],
        &["--base-url", base, "--artifacts-origin", other],
    ] {
        let mut server = ServerProcess::start(&dir.path().join("data"), extra);
        assert!(server.stop());
    }
}
