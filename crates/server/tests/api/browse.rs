//! Browsing pages at GitLab's web URLs: directory listings from `metadata.gz`, text and
//! images shown in pages, and files opened as they are, in a sandbox.

use std::io::Write;

use artifact_server::ImportJob;
use axum::http::Method;

use crate::support::{PRIVATE, PUBLIC, World, fixture};

/// A job in `project` with `zip` as its archive; its id.
fn job_with(w: &World, project: &str, zip: std::path::PathBuf) -> i64 {
    let job = ImportJob { artifacts: Some(zip), ..ImportJob::new(project, "main", "pages") };
    w.import(job)["id"].as_i64().unwrap()
}

/// An archive of `names` (each holding its own name) written by the zip crate.
fn archive_of(w: &World, file: &str, names: &[&str]) -> std::path::PathBuf {
    let path = w.dir.path().join(file);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for name in names {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(name.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    path
}

async fn page(w: &World, uri: &str, user: Option<&str>) -> crate::support::Reply {
    w.send(Method::GET, uri, user, &[]).await
}

#[tokio::test]
async fn a_directory_lists_folders_first_with_sizes_breadcrumbs_and_the_archive_link() {
    let w = World::new();
    let id = job_with(&w, PUBLIC, fixture("infozip-basic.zip"));
    let root = format!("/{PUBLIC}/-/jobs/{id}/artifacts");
    let reply = page(&w, &format!("{root}/browse"), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), "text/html; charset=utf-8");
    assert!(reply.header("content-security-policy").contains("default-src 'none'"));
    assert!(reply.header("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(reply.header("x-content-type-options"), "nosniff");
    let html = reply.text();
    let at = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle} in {html}"));
    // Folders first, then files by name.
    assert!(at("docs/</bdi>") < at(">data.bin<") && at(">data.bin<") < at(">empty.txt<"));
    assert!(html.contains(&format!("href=\"http://gitlab.test{root}/browse/docs\"")));
    assert!(html.contains(&format!("href=\"http://gitlab.test{root}/raw/data.bin\"")), "a binary opens as it is");
    assert!(html.contains(&format!("href=\"http://gitlab.test{root}/file/big.txt\"")), "text opens in a page");
    assert!(html.contains(">1.0 KiB<"), "data.bin's size");
    assert!(html.contains("/api/v4/projects/group%2Fpublic/jobs/") && html.contains("Download artifacts archive"));
    assert!(html.contains(&format!("href=\"/users/sign_in?return_to={root}/browse\">Sign in</a>")), "{html}");
    // Where the visitor is: the project, the job, its status, ref and pipeline, and when
    // its artifacts go.
    assert!(html.contains("<bdi>group/public</bdi>"), "{html}");
    assert!(html.contains(&format!("Job <bdi>pages</bdi> #{id}")), "{html}");
    assert!(
        html.contains("class=\"status success\">success<") && html.contains("<bdi class=\"ref\">main</bdi>"),
        "{html}"
    );
    let job = w.get(&format!("/api/v4/projects/group%2Fpublic/jobs/{id}"), "root").await.json();
    let pipeline = job["pipeline"]["id"].as_i64().unwrap();
    assert!(
        html.contains(&format!("href=\"http://gitlab.test/group/public/-/pipelines/{pipeline}\">#{pipeline}<")),
        "{html}"
    );
    assert!(html.contains("artifacts never expire"), "{html}");
    // A folder: breadcrumbs and a way up.
    let nested = page(&w, &format!("{root}/browse/docs/nested"), None).await.text();
    assert!(nested.contains(&format!("<a href=\"http://gitlab.test{root}/browse/docs\"><bdi>docs</bdi></a>")));
    assert!(nested.contains(">deep/</bdi>") && nested.contains(">..</a>"));
    // What is not there.
    assert_eq!(page(&w, &format!("{root}/browse/nope"), None).await.status, 404);
    assert_eq!(page(&w, &format!("{root}/browse/docs/readme.txt"), None).await.status, 404);
}

#[tokio::test]
async fn a_private_projects_pages_need_a_reader() {
    let w = World::new();
    let id = job_with(&w, PRIVATE, fixture("infozip-basic.zip"));
    let uri = format!("/{PRIVATE}/-/jobs/{id}/artifacts/browse");
    let anonymous = page(&w, &uri, None).await;
    assert_eq!(anonymous.status, 302, "an anonymous visitor signs in first");
    assert_eq!(
        anonymous.header("location"),
        format!("/users/sign_in?return_to=/group/private/-/jobs/{id}/artifacts/browse")
    );
    let outsider = page(&w, &uri, Some("outsider")).await;
    assert_eq!(outsider.status, 404);
    assert!(outsider.text().contains("<h1>404 Not Found</h1>"), "an error page, not JSON");
    assert_eq!(page(&w, &uri, Some("reporter")).await.status, 200);
}

#[tokio::test]
async fn every_name_from_the_archive_is_escaped() {
    let w = World::new();
    let names = [
        "<script>alert(1)<%2Fscript>.txt",
        "<img src=x onerror=alert(1)>.txt",
        "a\"b'c&d.txt",
        "rtl\u{202e}txt.exe",
        "dir<i>/x.txt",
    ];
    let id = job_with(&w, PUBLIC, archive_of(&w, "hostile.zip", &names));
    let html = page(&w, &format!("/{PUBLIC}/-/jobs/{id}/artifacts/browse"), None).await.text();
    assert!(!html.contains("<script>") && !html.contains("<img") && !html.contains("<i>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;%2Fscript&gt;.txt"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;.txt"));
    assert!(html.contains("a&quot;b'c&amp;d.txt"), "attributes are double-quoted: a ' stays");
    assert!(html.contains("<bdi>rtl\u{202e}txt.exe</bdi>"), "a right-to-left mark stays inside its name");
    assert!(html.contains("dir&lt;i&gt;/"));
    // In links, percent-encoded (the `%` too).
    assert!(html.contains("/file/%3Cscript%3Ealert%281%29%3C%252Fscript%3E.txt\""), "{html}");
}

#[tokio::test]
async fn a_large_directory_is_paged() {
    let w = World::new();
    let names: Vec<String> = (0..1_200).map(|i| format!("many/f{i:04}.txt")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let id = job_with(&w, PUBLIC, archive_of(&w, "many.zip", &refs));
    let at = format!("/{PUBLIC}/-/jobs/{id}/artifacts/browse/many");
    let rows = |html: &str| html.matches("<tr class=\"file\">").count();
    let first = page(&w, &at, None).await.text();
    assert_eq!(rows(&first), 500);
    assert!(first.contains("Page 1 of 3") && first.contains("rel=\"next\"") && !first.contains("rel=\"prev\""));
    assert!(first.contains(">f0000.txt<") && !first.contains(">f0500.txt<"));
    let last = page(&w, &format!("{at}?page=3"), None).await.text();
    assert_eq!(rows(&last), 200);
    assert!(last.contains(">f1199.txt<") && last.contains("rel=\"prev\""));
}

#[tokio::test]
async fn files_open_as_they_are_inline_in_a_sandbox_and_the_rest_download() {
    let w = World::new();
    let names = ["report/index.html", "report/style.css", "report/app.js", "report/logo.svg", "report/data.bin"];
    let id = job_with(&w, PUBLIC, archive_of(&w, "report.zip", &names));
    let listing = page(&w, &format!("/{PUBLIC}/-/jobs/{id}/artifacts/browse/report"), None).await.text();
    let raw = format!("http://gitlab.test/{PUBLIC}/-/jobs/{id}/artifacts/raw/report");
    assert!(listing.contains(&format!("href=\"{raw}/index.html\"")), "a report opens in one click: {listing}");
    assert!(listing.contains(&format!("href=\"{raw}/logo.svg\"")));
    let file = |name: &str| format!("/{PUBLIC}/-/jobs/{id}/artifacts/raw/report/{name}");
    let html = page(&w, &file("index.html"), None).await;
    assert_eq!(html.status, 200);
    assert_eq!(html.text(), "report/index.html");
    assert_eq!(html.header("content-type"), "text/html; charset=utf-8");
    let csp = html.header("content-security-policy");
    assert!(csp.starts_with("sandbox allow-scripts") && !csp.contains("allow-same-origin"), "{csp}");
    assert_eq!(html.header("content-disposition"), "<none>", "shown, not downloaded");
    for (name, kind) in [("style.css", "text/css"), ("app.js", "text/javascript"), ("logo.svg", "image/svg+xml")] {
        let reply = page(&w, &file(name), None).await;
        assert!(reply.header("content-type").starts_with(kind), "{name}");
        assert!(reply.header("content-security-policy").starts_with("sandbox"), "{name}");
    }
    let binary = page(&w, &file("data.bin"), None).await;
    assert!(binary.header("content-disposition").starts_with("attachment"));
    assert!(binary.header("content-security-policy").starts_with("sandbox"));
    let asked = page(&w, &format!("{}?download", file("style.css")), None).await;
    assert!(asked.header("content-disposition").starts_with("attachment"), "?download is a download");
    // A report's page is the report itself.
    let report = page(&w, &format!("/{PUBLIC}/-/jobs/{id}/artifacts/file/report/index.html"), None).await;
    assert_eq!((report.status.as_u16(), report.header("location")), (302, format!("{raw}/index.html").as_str()));
    // The path rule holds here too.
    assert_eq!(page(&w, &format!("/{PUBLIC}/-/jobs/{id}/artifacts/raw/report/../x"), None).await.status, 400);
    assert_eq!(page(&w, &format!("/{PUBLIC}/-/jobs/{id}/artifacts/file/report/../x"), None).await.status, 400);
}

#[tokio::test]
async fn text_is_shown_in_a_page_escaped_and_capped_images_shown_and_binaries_opened() {
    let w = World::new();
    let path = w.dir.path().join("texts.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let deflated = zip::write::SimpleFileOptions::default();
    let mut put = |name: &str, bytes: &[u8]| {
        zip.start_file(name, deflated).unwrap();
        zip.write_all(bytes).unwrap();
    };
    put("build.log", b"step 1 <ok>\nstep 2 </pre><script>alert(1)</script>\n");
    // 1.5 MiB of text: its first MiB is shown.
    let long: String = (0..98_304).map(|i| format!("line {i:010}\n")).collect();
    put("long.log", long.as_bytes());
    put("Makefile", b"all:\n\tcargo build\n");
    put("blob", &[0u8, 159, 146, 150, 1, 2, 3]);
    put("shot.png", b"\x89PNG\r\n\x1a\n");
    zip.finish().unwrap();
    let id = job_with(&w, PUBLIC, path);
    let file = |name: &str| format!("/{PUBLIC}/-/jobs/{id}/artifacts/file/{name}");
    let raw = format!("http://gitlab.test/{PUBLIC}/-/jobs/{id}/artifacts/raw");
    let log = page(&w, &file("build.log"), None).await;
    assert_eq!(log.status, 200);
    assert_eq!(log.header("content-type"), "text/html; charset=utf-8");
    assert!(log.header("content-security-policy").starts_with("default-src 'none'"), "a page, no script");
    let html = log.text();
    assert!(
        html.contains("<pre>step 1 &lt;ok&gt;\nstep 2 &lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;\n</pre>"),
        "{html}"
    );
    assert!(!html.contains("<script>"));
    assert!(html.contains(&format!("href=\"{raw}/build.log\">Open raw</a>")));
    assert!(html.contains(&format!("href=\"{raw}/build.log?download\">Download</a>")));
    let long_page = page(&w, &file("long.log"), None).await.text();
    assert!(long_page.contains("The first 1.0 MiB of 1.5 MiB are shown"), "capped");
    assert!(long_page.contains("line 0000000000\n") && !long_page.contains("line 0000098303"));
    let shown = long_page.split("<pre>").nth(1).unwrap().split("</pre>").next().unwrap();
    assert_eq!(shown.len(), 1 << 20, "exactly the cap");
    // A file of unknown type: text shown, anything else opened as it is.
    assert!(page(&w, &file("Makefile"), None).await.text().contains("<pre>all:\n\tcargo build\n</pre>"));
    let blob = page(&w, &file("blob"), None).await;
    assert_eq!((blob.status.as_u16(), blob.header("location")), (302, format!("{raw}/blob").as_str()));
    let image = page(&w, &file("shot.png"), None).await.text();
    assert!(image.contains(&format!("<img class=\"shown\" src=\"{raw}/shot.png\" alt=\"shot.png\">")), "{image}");
    assert_eq!(page(&w, &file("nope.txt"), None).await.status, 404);
}

#[tokio::test]
async fn a_text_file_that_fails_its_check_shows_nothing_of_itself() {
    let w = World::new();
    let path = w.dir.path().join("bad.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("bad.txt", stored).unwrap();
    zip.write_all(b"the original words of a stored file").unwrap();
    zip.finish().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(8).position(|w| w == b"original").unwrap();
    bytes[at..at + 8].copy_from_slice(b"ORIGINAL");
    std::fs::write(&path, bytes).unwrap();
    let id = job_with(&w, PUBLIC, path);
    let reply = page(&w, &format!("/{PUBLIC}/-/jobs/{id}/artifacts/file/bad.txt"), None).await;
    assert_eq!(reply.status, 500);
    assert!(!reply.text().contains("ORIGINAL") && !reply.text().contains("words"), "{}", reply.text());
}

/// `POST path` with a form body and optional cookie; the reply's status, headers and body.
async fn post_form(w: &World, path: &str, form: &str, cookie: Option<&str>) -> (u16, axum::http::HeaderMap, String) {
    let cookie = cookie.map(|c| ("cookie", c));
    post_form_with(w, path, form, cookie.as_slice()).await
}

/// `POST path` with a form body and `headers`; the reply's status, headers and body.
async fn post_form_with(
    w: &World,
    path: &str,
    form: &str,
    headers: &[(&str, &str)],
) -> (u16, axum::http::HeaderMap, String) {
    let form_type = [("content-type", "application/x-www-form-urlencoded")];
    ask(&w.app, Method::POST, path, form, &[&form_type[..], headers].concat()).await
}

/// `method path` through `app` as `gitlab.test` is asked, with `body` and `headers`; the
/// reply's status, headers and body.
async fn ask(
    app: &axum::Router,
    method: Method,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, axum::http::HeaderMap, String) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut req = axum::http::Request::builder().method(method).uri(path).header("host", "gitlab.test");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = app.clone().oneshot(req.body(axum::body::Body::from(body.to_owned())).unwrap()).await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn signing_in_keeps_the_token_on_the_server_behind_a_strict_http_only_cookie() {
    let w = World::new();
    let id = job_with(&w, PRIVATE, fixture("infozip-basic.zip"));
    let uri = format!("/{PRIVATE}/-/jobs/{id}/artifacts/browse");
    let form_page = page(&w, &format!("/users/sign_in?return_to={uri}"), None).await;
    assert_eq!(form_page.status, 200);
    assert!(form_page.text().contains("type=\"password\" name=\"token\""));
    assert!(form_page.text().contains(&format!("name=\"return_to\" value=\"{uri}\"")));
    // A token that does not work: the form again.
    let (status, _, body) = post_form(&w, "/users/sign_in", "token=glpat-nope&return_to=/", None).await;
    assert_eq!(status, 401);
    assert!(body.contains("does not work"));
    // One that does: a session, and back where the visitor was going.
    let form = format!("token={}&return_to={uri}", w.token("reporter"));
    let (status, headers, _) = post_form(&w, "/users/sign_in", &form, None).await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], uri.as_str());
    let set = headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Max-Age=28800"), "{set}");
    assert!(!set.contains(w.token("reporter")), "the token never goes to the browser");
    let cookie = set.split(';').next().unwrap().to_owned();
    let signed_in = w.send(Method::GET, &uri, None, &[("cookie", &cookie)]).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text());
    assert!(signed_in.text().contains("action=\"/users/sign_out\"") && !signed_in.text().contains(">Sign in<"));
    // A return address off this server is not followed.
    let form = format!("token={}&return_to=//evil.example/x", w.token("reporter"));
    assert_eq!(post_form(&w, "/users/sign_in", &form, None).await.1["location"], "/");
    // Signing out ends the session and clears the cookie.
    let (status, headers, _) = post_form(&w, "/users/sign_out", "", Some(&cookie)).await;
    assert_eq!(status, 303);
    assert!(headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(w.send(Method::GET, &uri, None, &[("cookie", &cookie)]).await.status, 302);
}

#[tokio::test]
async fn the_job_list_and_a_pipeline_link_to_their_artifacts() {
    let w = World::new();
    let with = job_with(&w, PUBLIC, fixture("infozip-basic.zip"));
    let without = w.import(ImportJob::new(PUBLIC, "main", "lint <b>"))["id"].as_i64().unwrap();
    let reply = page(&w, &format!("/{PUBLIC}/-/jobs"), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let html = reply.text();
    assert!(html.find(&format!("#{without} ")).unwrap() < html.find(&format!("#{with} ")).unwrap(), "newest first");
    assert!(html.contains(&format!("/{PUBLIC}/-/jobs/{with}/artifacts/browse\">Browse</a>")));
    assert!(!html.contains(&format!("/-/jobs/{without}/artifacts/browse")), "no archive, no link");
    assert!(html.contains("lint &lt;b&gt;") && !html.contains("<b>"));
    assert!(html.contains(">success<"));
    let pipeline = w.store.job(with).unwrap().unwrap().pipeline_id;
    let one = page(&w, &format!("/{PUBLIC}/-/pipelines/{pipeline}"), None).await;
    assert_eq!(one.status, 200);
    assert!(one.text().contains(&format!("#{with} ")) && !one.text().contains(&format!("#{without} ")));
    assert_eq!(page(&w, &format!("/{PUBLIC}/-/pipelines/999"), None).await.status, 404);
    assert_eq!(page(&w, &format!("/{PRIVATE}/-/jobs"), None).await.status, 302);
}

#[tokio::test]
async fn a_signed_in_browser_opens_files_through_a_grant_for_that_job_only() {
    let w = World::new();
    let id = job_with(&w, PRIVATE, fixture("infozip-basic.zip"));
    let other = job_with(&w, PRIVATE, fixture("infozip-basic.zip"));
    let form = format!("token={}&return_to=/", w.token("reporter"));
    let (_, headers, _) = post_form(&w, "/users/sign_in", &form, None).await;
    let cookie = headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let file = format!("/{PRIVATE}/-/jobs/{id}/artifacts/raw/docs/readme.txt");
    let sent = w.send(Method::GET, &file, None, &[("cookie", &cookie)]).await;
    assert_eq!(sent.status, 302);
    let view = sent.header("location").to_owned();
    let prefix = format!("http://gitlab.test/{PRIVATE}/-/jobs/{id}/artifacts/view/");
    assert!(view.starts_with(&prefix) && view.ends_with("/docs/readme.txt"), "{view}");
    let grant = view[prefix.len()..].split('/').next().unwrap().to_owned();
    assert_eq!(grant.len(), 64);
    // The listing links what opens as it is through the same grant, and its text pages
    // read with the session.
    let listing =
        w.send(Method::GET, &format!("/{PRIVATE}/-/jobs/{id}/artifacts/browse"), None, &[("cookie", &cookie)]).await;
    assert!(listing.text().contains(&format!("href=\"{prefix}{grant}/data.bin\"")), "{}", listing.text());
    let text = w
        .send(
            Method::GET,
            &format!("/{PRIVATE}/-/jobs/{id}/artifacts/file/docs/readme.txt"),
            None,
            &[("cookie", &cookie)],
        )
        .await;
    assert!(text.text().contains("<pre>Top-level readme for the infozip-basic fixture.\n</pre>"));
    // Without any cookie (as from the report's sandbox): the file and its neighbours.
    let path = view.trim_start_matches("http://gitlab.test");
    let read = page(&w, path, None).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.text(), "Top-level readme for the infozip-basic fixture.\n");
    assert!(read.header("content-security-policy").starts_with("sandbox"));
    let neighbour = format!("/{PRIVATE}/-/jobs/{id}/artifacts/view/{grant}/docs/nested/deep/leaf.txt");
    assert_eq!(page(&w, &neighbour, None).await.status, 200);
    // Not another job's files, not a made-up grant, and never the API.
    let elsewhere = format!("/{PRIVATE}/-/jobs/{other}/artifacts/view/{grant}/docs/readme.txt");
    assert_eq!(page(&w, &elsewhere, None).await.status, 404);
    let made_up = format!("/{PRIVATE}/-/jobs/{id}/artifacts/view/{}/docs/readme.txt", "0".repeat(64));
    assert_eq!(page(&w, &made_up, None).await.status, 404);
    assert_eq!(
        w.send(Method::GET, "/api/v4/projects/group%2Fprivate/jobs", None, &[("cookie", &cookie)]).await.status,
        401
    );
}

#[tokio::test]
async fn a_folder_by_ref_and_job_name_goes_to_the_newest_successful_jobs_page() {
    let w = World::new();
    job_with(&w, PUBLIC, fixture("infozip-basic.zip"));
    let newest = job_with(&w, PUBLIC, fixture("infozip-basic.zip"));
    let reply = page(&w, &format!("/{PUBLIC}/-/jobs/artifacts/main/browse/docs?job=pages"), None).await;
    assert_eq!(reply.status, 302, "{}", reply.text());
    assert_eq!(reply.header("location"), format!("http://gitlab.test/{PUBLIC}/-/jobs/{newest}/artifacts/browse/docs"));
    assert_eq!(page(&w, &format!("/{PUBLIC}/-/jobs/artifacts/main/browse?job=nope"), None).await.status, 404);
    assert_eq!(page(&w, &format!("/{PUBLIC}/-/jobs/artifacts/main/browse"), None).await.status, 400);
}

/// A server whose artifacts origin is `http://artifacts.test`, with a job in the public
/// project and one in the private one (their ids).
fn with_artifacts_origin() -> (World, i64, i64) {
    let config = artifact_server::AppConfig {
        artifacts_origin: Some("http://artifacts.test".into()),
        ..artifact_server::AppConfig::default()
    };
    let w = World::with_config(config);
    let public = job_with(&w, PUBLIC, fixture("infozip-basic.zip"));
    let private = job_with(&w, PRIVATE, fixture("infozip-basic.zip"));
    (w, public, private)
}

#[tokio::test]
async fn with_an_artifacts_origin_files_open_there_outside_the_sandbox_and_pages_never_do() {
    let (w, public, private) = with_artifacts_origin();
    // The listing links what opens as it is to the artifacts origin; text pages stay here.
    let html = page(&w, &format!("/{PUBLIC}/-/jobs/{public}/artifacts/browse"), None).await.text();
    assert!(html.contains(&format!("href=\"http://artifacts.test/{PUBLIC}/-/jobs/{public}/artifacts/raw/data.bin\"")));
    assert!(html.contains(&format!("href=\"http://gitlab.test/{PUBLIC}/-/jobs/{public}/artifacts/file/big.txt\"")));
    let text = page(&w, &format!("/{PUBLIC}/-/jobs/{public}/artifacts/file/big.txt"), None).await;
    assert!(text.text().contains("href=\"http://artifacts.test/"), "its raw link goes there");
    assert!(text.header("content-security-policy").contains("img-src 'self' http://artifacts.test;"));
    // There, a public file has no sandbox (its own origin is the isolation).
    let file = format!("/{PUBLIC}/-/jobs/{public}/artifacts/raw/docs/readme.txt");
    let there = w.send(Method::GET, &file, None, &[("host", "artifacts.test")]).await;
    assert_eq!(there.status, 200);
    assert_eq!(there.header("content-security-policy"), "frame-ancestors 'none'");
    // A signed-in browser is sent there through a grant.
    let form = format!("token={}&return_to=/", w.token("reporter"));
    let (_, headers, _) = post_form(&w, "/users/sign_in", &form, None).await;
    let cookie = headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let private_file = format!("/{PRIVATE}/-/jobs/{private}/artifacts/raw/docs/readme.txt");
    let sent = w.send(Method::GET, &private_file, None, &[("cookie", &cookie)]).await;
    let location = sent.header("location").to_owned();
    assert!(
        location.starts_with(&format!("http://artifacts.test/{PRIVATE}/-/jobs/{private}/artifacts/view/")),
        "{location}"
    );
    let path = location.trim_start_matches("http://artifacts.test");
    let granted = w.send(Method::GET, path, None, &[("host", "artifacts.test")]).await;
    assert_eq!(
        (granted.status.as_u16(), granted.text().as_str()),
        (200, "Top-level readme for the infozip-basic fixture.\n")
    );
    // The artifacts origin serves no page.
    let listing = format!("/{PUBLIC}/-/jobs/{public}/artifacts/browse");
    assert_eq!(w.send(Method::GET, &listing, None, &[("host", "artifacts.test")]).await.status, 404);
    let api = format!("/api/v4/projects/group%2Fpublic/jobs/{public}");
    assert_eq!(
        w.send(Method::GET, &api, Some("reporter"), &[("host", "artifacts.test")]).await.status,
        404,
        "no API there"
    );
    assert_eq!(w.send(Method::GET, &api, Some("reporter"), &[]).await.status, 200);
    let text_page = format!("/{PUBLIC}/-/jobs/{public}/artifacts/file/big.txt");
    assert_eq!(w.send(Method::GET, &text_page, None, &[("host", "artifacts.test")]).await.status, 404);
    assert_eq!(
        w.send(Method::GET, &format!("/{PUBLIC}/-/jobs"), None, &[("host", "artifacts.test")]).await.status,
        404
    );
    assert_eq!(w.send(Method::GET, "/users/sign_in", None, &[("host", "artifacts.test")]).await.status, 404);
}

#[tokio::test]
async fn the_store_keeps_sessions_and_grants_by_digest_bounded_per_token_and_drops_what_expired() {
    use artifact_server::{BrowserSession, Keep, PageGrant, TokenDigest};
    let w = World::new();
    let store = w.store.clone();
    tokio::task::spawn_blocking(move || {
        let (mine, theirs) = (TokenDigest::of("mine"), TokenDigest::of("theirs"));
        let now = 1_000_000;
        let (sessions, grants) = (Keep { per_token: 64, total: 100_000 }, Keep { per_token: 2, total: 100_000 });
        let session = |id: &str, token, expires_at| BrowserSession { id: TokenDigest::of(id), token, expires_at };
        store.open_session(&session("old", mine, now + 10), sessions, now).unwrap();
        store.open_session(&session("other", theirs, now + 10), sessions, now).unwrap();
        for i in 0..64 {
            store.open_session(&session(&format!("s{i}"), mine, now + 100 + i), sessions, now).unwrap();
        }
        assert_eq!(store.browser_session(&TokenDigest::of("old"), now).unwrap(), None, "past 64: the oldest ends");
        assert_eq!(store.browser_session(&TokenDigest::of("s0"), now).unwrap(), Some(mine));
        assert_eq!(store.browser_session(&TokenDigest::of("other"), now).unwrap(), Some(theirs), "not another's");
        assert_eq!(store.browser_session(&TokenDigest::of("other"), now + 10).unwrap(), None, "expired");
        store.close_session(&TokenDigest::of("s0")).unwrap();
        assert_eq!(store.browser_session(&TokenDigest::of("s0"), now).unwrap(), None, "closed");
        let grant = |id: &str, job| PageGrant {
            id: TokenDigest::of(id),
            token: mine,
            project: "g/p".into(),
            job,
            expires_at: now + 1000 + job,
        };
        for job in 0..3 {
            store.put_grant(&grant(&format!("g{job}"), job), grants, now).unwrap();
        }
        assert_eq!(store.page_grant(&TokenDigest::of("g0"), now).unwrap(), None, "past the bound: the oldest goes");
        assert_eq!(store.page_grant(&TokenDigest::of("g2"), now).unwrap(), Some(grant("g2", 2)));
        store.put_grant(&PageGrant { job: 99, ..grant("g2", 2) }, grants, now).unwrap();
        assert_eq!(
            store.page_grant(&TokenDigest::of("g2"), now).unwrap().unwrap().job,
            2,
            "the same id: kept as it was"
        );
        assert_eq!(store.page_grant(&TokenDigest::of("g2"), now + 1002).unwrap(), None, "expired");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_store_keeps_sessions_and_grants_bounded_in_total_the_first_inserted_going_first() {
    use artifact_server::{BrowserSession, Keep, PageGrant, TokenDigest};
    let w = World::new();
    let store = w.store.clone();
    tokio::task::spawn_blocking(move || {
        let now = 1_000_000;
        let keep = Keep { per_token: 64, total: 5 };
        // Every one of its own token (only the total bounds them), and the later inserted
        // the sooner expiring: the first inserted go, not the first to expire.
        let id = |kind: &str, i: i64| TokenDigest::of(&format!("{kind}{i}"));
        let session = |i| BrowserSession { id: id("s", i), token: id("t", i), expires_at: now + 1000 - i };
        let grant = |i| PageGrant {
            id: id("g", i),
            token: id("t", i),
            project: "g/p".into(),
            job: i,
            expires_at: now + 1000 - i,
        };
        for i in 0..12 {
            store.open_session(&session(i), keep, now).unwrap();
            store.put_grant(&grant(i), keep, now).unwrap();
        }
        let live_sessions =
            || (0..12).filter(|&i| store.browser_session(&id("s", i), now).unwrap().is_some()).collect::<Vec<_>>();
        let live_grants =
            || (0..12).filter(|&i| store.page_grant(&id("g", i), now).unwrap().is_some()).collect::<Vec<_>>();
        assert_eq!(live_sessions(), [7, 8, 9, 10, 11], "never more than the total: the first inserted went");
        assert_eq!(live_grants(), [7, 8, 9, 10, 11]);
        // A grant given again is no insertion: it pushes nothing out.
        store.put_grant(&grant(9), keep, now).unwrap();
        assert_eq!(live_grants(), [7, 8, 9, 10, 11], "the same grant again");
        // One ended early still counts until the numbers pass it, as in the proxy's memory.
        store.close_session(&id("s", 9)).unwrap();
        store.open_session(&session(12), keep, now).unwrap();
        assert_eq!(live_sessions(), [8, 10, 11]);
        assert_eq!(store.browser_session(&id("s", 12), now).unwrap(), Some(id("t", 12)));
        // The total and the per-token bound hold together.
        let mine = Keep { per_token: 2, total: 5 };
        for i in 20..23 {
            let later = BrowserSession { token: id("t", 0), expires_at: now + 2000 + i, ..session(i) };
            store.open_session(&later, mine, now).unwrap();
        }
        let live = |i| store.browser_session(&id("s", i), now).unwrap().is_some();
        assert_eq!((20..23).map(live).collect::<Vec<_>>(), [false, true, true], "past 2 for a token: its oldest");
        assert_eq!([8, 10, 11, 12].map(live), [false, false, true, true], "past 5 in all: the first inserted");
    })
    .await
    .unwrap();
}

/// Signs `user` in; the session's cookie as a request sends it (`name=value`).
async fn signed_in(w: &World, user: &str) -> String {
    let form = format!("token={}&return_to=/", w.token(user));
    let (status, headers, body) = post_form(w, "/users/sign_in", &form, None).await;
    assert_eq!(status, 303, "{body}");
    headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_return_address_after_sign_in_is_a_path_of_this_server_or_the_root() {
    let w = World::new();
    let token = w.token("reporter").to_owned();
    let table = [
        ("/group/private/-/jobs", "/group/private/-/jobs"),
        ("/", "/"),
        ("/a%41b", "/a%41b"),
        ("/a%20b", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example/x", "/"),
        ("/%09/evil.example/phish", "/"),
        ("/%0A/evil.example", "/"),
        ("/%2F/evil.example", "/"),
        ("/%5C/evil.example", "/"),
        ("/%252F/evil.example", "/"),
        ("/a%20b%09c", "/"),
        ("https://evil.example/", "/"),
        ("evil.example", "/"),
        ("", "/"),
        ("%2F%2Fevil.example", "/"),
        ("/%E3%80%80/x", "/"),
        ("/%FF", "/"),
    ];
    for (given, expected) in table {
        // The form's value, percent-encoded as a browser posts it.
        let value: String = given.bytes().map(|b| format!("%{b:02X}")).collect();
        let (status, headers, _) =
            post_form(&w, "/users/sign_in", &format!("token={token}&return_to={value}"), None).await;
        assert_eq!((status, headers["location"].to_str().unwrap()), (303, expected), "{given:?}");
    }
    // The form carries only what is kept.
    let form = page(&w, "/users/sign_in?return_to=/%2509/evil.example", None).await.text();
    assert!(form.contains("name=\"return_to\" value=\"/\""), "{form}");
}

#[tokio::test]
async fn a_form_from_another_site_signs_nobody_out() {
    let w = World::new();
    let id = job_with(&w, PRIVATE, fixture("infozip-basic.zip"));
    let uri = format!("/{PRIVATE}/-/jobs/{id}/artifacts/browse");
    let cookie = signed_in(&w, "reporter").await;
    for origin in ["http://evil.example", "null", "https://gitlab.test"] {
        let headers = [("cookie", cookie.as_str()), ("origin", origin)];
        let (status, set, _) = post_form_with(&w, "/users/sign_out", "", &headers).await;
        assert_eq!((status, set.get("set-cookie")), (403, None), "{origin}");
        assert_eq!(w.send(Method::GET, &uri, None, &[("cookie", &cookie)]).await.status, 200, "still signed in");
    }
    let headers = [("cookie", cookie.as_str()), ("origin", "http://gitlab.test")];
    assert_eq!(post_form_with(&w, "/users/sign_out", "", &headers).await.0, 303, "this server's own form");
    assert_eq!(w.send(Method::GET, &uri, None, &[("cookie", &cookie)]).await.status, 302, "signed out");
}

#[tokio::test]
async fn over_https_the_session_cookie_is_a_host_cookie() {
    let config = artifact_server::AppConfig {
        base_url: Some("https://gitlab.test".into()),
        ..artifact_server::AppConfig::default()
    };
    let w = World::with_config(config);
    let id = job_with(&w, PRIVATE, fixture("infozip-basic.zip"));
    let uri = format!("/{PRIVATE}/-/jobs/{id}/artifacts/browse");
    let form = format!("token={}&return_to=/", w.token("reporter"));
    let (_, headers, _) = post_form(&w, "/users/sign_in", &form, None).await;
    let set = headers["set-cookie"].to_str().unwrap().to_owned();
    let attributes = |set: &str| set.split(';').skip(1).map(|a| a.trim().to_owned()).collect::<Vec<_>>();
    assert!(set.starts_with("__Host-_artifact_session="), "{set}");
    let given = attributes(&set);
    for wanted in ["Secure", "Path=/", "HttpOnly", "SameSite=Strict"] {
        assert!(given.iter().any(|a| a == wanted), "{wanted} in {set}");
    }
    assert!(!set.to_ascii_lowercase().contains("domain"), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    assert_eq!(w.send(Method::GET, &uri, None, &[("cookie", &cookie)]).await.status, 200);
    let plain = cookie.replacen("__Host-", "", 1);
    assert_eq!(w.send(Method::GET, &uri, None, &[("cookie", &plain)]).await.status, 302, "not the http name");
    let headers = [("cookie", cookie.as_str())];
    let (status, cleared, _) = post_form_with(&w, "/users/sign_out", "", &headers).await;
    assert_eq!(status, 303);
    let cleared = cleared["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("__Host-_artifact_session=;"), "{cleared}");
    let given = attributes(cleared);
    assert!(given.iter().any(|a| a == "Max-Age=0") && given.iter().any(|a| a == "Secure"), "{cleared}");
}

#[tokio::test]
async fn the_artifacts_origin_never_reads_a_session_cookie_nor_a_token() {
    let (w, public, private) = with_artifacts_origin();
    let cookie = signed_in(&w, "reporter").await;
    let there = |cookie: &str| [("host", "artifacts.test".to_owned()), ("cookie", cookie.to_owned())];
    let send = |uri: String, headers: [(&'static str, String); 2]| {
        let w = &w;
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            w.send(Method::GET, &uri, None, &headers).await
        }
    };
    // A private file: not sent to a fresh grant, not read with the session: not found.
    let file = format!("/{PRIVATE}/-/jobs/{private}/artifacts/raw/docs/readme.txt");
    let reply = send(file.clone(), there(&cookie)).await;
    assert_eq!((reply.status.as_u16(), reply.header("location")), (404, "<none>"), "{}", reply.text());
    let reply = w.send(Method::GET, &file, Some("reporter"), &[("host", "artifacts.test")]).await;
    assert_eq!(reply.status, 404, "a token there is no credential either");
    let reply = send(format!("{file}?private_token={}", w.token("reporter")), there("")).await;
    assert_eq!(reply.status, 404);
    // A public file: served as it is, anonymously, not through a grant.
    let file = format!("/{PUBLIC}/-/jobs/{public}/artifacts/raw/docs/readme.txt");
    let reply = send(file, there(&cookie)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "Top-level readme for the infozip-basic fixture.\n");
    // On the main host the same cookie still opens the private file through a grant there.
    let file = format!("/{PRIVATE}/-/jobs/{private}/artifacts/raw/docs/readme.txt");
    let sent = w.send(Method::GET, &file, None, &[("cookie", &cookie)]).await;
    assert!(sent.header("location").starts_with("http://artifacts.test/"), "{}", sent.header("location"));
}

/// The id of the grant `cookie`'s session would have for `project`'s job `job` now (or in
/// the half hour before), as `crate::sessions::grant_stored` derives it.
fn grant_ids(cookie: &str, project: &str, job: i64) -> Vec<String> {
    let session = cookie.split_once('=').unwrap().1;
    let half = 30 * 60 * 1000;
    let bucket = artifact_server::Timestamp::now().0 / half;
    (bucket - 1..=bucket + 1)
        .map(|b| {
            let digest = artifact_server::TokenDigest::of(&format!("grant\0{session}\0{project}\0{job}\0{b}"));
            digest.0.iter().map(|b| format!("{b:02x}")).collect()
        })
        .collect()
}

#[tokio::test]
async fn a_grant_is_given_only_after_the_session_was_found_to_read_that_job() {
    let w = World::new();
    let id = job_with(&w, PRIVATE, fixture("infozip-basic.zip"));
    let report = job_with(&w, PRIVATE, archive_of(&w, "report.zip", &["report/index.html", "shot.png"]));
    let now = artifact_server::Timestamp::now().0;
    let no_grant = |cookie: &str, job: i64| {
        grant_ids(cookie, PRIVATE, job)
            .iter()
            .all(|g| w.store.page_grant(&artifact_server::TokenDigest::of(g), now).unwrap().is_none())
    };
    let outsider = signed_in(&w, "outsider").await;
    let reporter = signed_in(&w, "reporter").await;
    let asks = [
        format!("/{PRIVATE}/-/jobs/{id}/artifacts/raw/docs/readme.txt"),
        format!("/{PRIVATE}/-/jobs/{report}/artifacts/file/report/index.html"),
        format!("/{PRIVATE}/-/jobs/{report}/artifacts/file/shot.png"),
        format!("/{PRIVATE}/-/jobs/{id}/artifacts/browse"),
    ];
    for uri in &asks {
        let reply = w.send(Method::GET, uri, None, &[("cookie", &outsider)]).await;
        assert_eq!((reply.status.as_u16(), reply.header("location")), (404, "<none>"), "{uri}");
    }
    assert!(no_grant(&outsider, id) && no_grant(&outsider, report), "no grant for a session without access");
    // A job that is not there, for a reader of the project.
    for uri in [
        format!("/{PRIVATE}/-/jobs/99999/artifacts/raw/docs/readme.txt"),
        format!("/{PRIVATE}/-/jobs/99999/artifacts/file/report/index.html"),
    ] {
        let reply = w.send(Method::GET, &uri, None, &[("cookie", &reporter)]).await;
        assert_eq!((reply.status.as_u16(), reply.header("location")), (404, "<none>"), "{uri}");
    }
    assert!(no_grant(&reporter, 99999));
    // A path the path rule refuses: refused before any grant.
    let refused = format!("/{PRIVATE}/-/jobs/{id}/artifacts/raw/docs/../x");
    assert_eq!(w.send(Method::GET, &refused, None, &[("cookie", &reporter)]).await.status, 400);
    assert!(no_grant(&reporter, id));
    // A reader is granted, and the grant is what was checked.
    let reply = w.send(Method::GET, &asks[0], None, &[("cookie", &reporter)]).await;
    assert_eq!(reply.status, 302);
    assert!(!no_grant(&reporter, id), "the reader's grant is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_proxy_a_session_without_access_to_the_job_gets_no_grant() {
    let w = World::new();
    let id = job_with(&w, PRIVATE, fixture("infozip-basic.zip"));
    let report = job_with(&w, PRIVATE, archive_of(&w, "report.zip", &["report/index.html", "shot.png"]));
    let upstream = crate::support::upstream(w.app.clone()).await;
    let proxy = artifact_server::proxy_app(artifact_server::ProxyConfig::new(&upstream).unwrap()).unwrap();
    let mut cookies = Vec::new();
    for user in ["outsider", "reporter"] {
        let form = [("content-type", "application/x-www-form-urlencoded")];
        let (status, headers, body) =
            ask(&proxy, Method::POST, "/users/sign_in", &format!("token={}", w.token(user)), &form).await;
        assert_eq!(status, 303, "{user}: {body}");
        cookies.push(headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned());
    }
    let (outsider, reporter) = (&cookies[0], &cookies[1]);
    // No access to the project; a job that is not there, for a reader of the project.
    let asks = [
        (outsider, format!("/{PRIVATE}/-/jobs/{id}/artifacts/raw/docs/readme.txt")),
        (outsider, format!("/{PRIVATE}/-/jobs/{report}/artifacts/file/report/index.html")),
        (outsider, format!("/{PRIVATE}/-/jobs/{report}/artifacts/file/shot.png")),
        (outsider, format!("/{PRIVATE}/-/jobs/{id}/artifacts/browse")),
        (reporter, format!("/{PRIVATE}/-/jobs/99999/artifacts/raw/docs/readme.txt")),
        (reporter, format!("/{PRIVATE}/-/jobs/99999/artifacts/file/report/index.html")),
        (reporter, format!("/{PRIVATE}/-/jobs/99999/artifacts/browse")),
    ];
    for (cookie, uri) in &asks {
        let (status, headers, body) = ask(&proxy, Method::GET, uri, "", &[("cookie", cookie)]).await;
        let location = headers.get("location").map(|l| l.to_str().unwrap().to_owned());
        assert_eq!((status, location), (404, None), "{uri}: the error page, not a grant's URL: {body}");
        assert!(!body.contains("/artifacts/view/"), "{uri}: no grant in the page either: {body}");
    }
    // A reader of the job is sent to a grant: what the answers above would have been.
    let (status, headers, _) = ask(&proxy, Method::GET, &asks[0].1, "", &[("cookie", reporter)]).await;
    let location = headers["location"].to_str().unwrap();
    assert!(status == 302 && location.contains(&format!("/-/jobs/{id}/artifacts/view/")), "{status} {location}");
}

/// An expired archive that its project keeps (the newest success of `main`, see
/// `keep_latest.rs`) is browsable on the server's pages and on the proxy's, which read it
/// from the job's `artifacts` rows (the job has no `artifacts_file` then, as in GitLab).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_archive_is_browsable_on_the_servers_pages_and_the_proxys() {
    let w = World::new();
    let id = job_with(&w, PUBLIC, fixture("infozip-basic.zip"));
    crate::support::expire_a_week_ago(&w, id);
    let upstream = crate::support::upstream(w.app.clone()).await;
    let proxy = artifact_server::proxy_app(artifact_server::ProxyConfig::new(&upstream).unwrap()).unwrap();
    // The proxy's job list is the upstream's, which needs a signed-in reader.
    let mut sessions = Vec::new();
    for app in [&w.app, &proxy] {
        let form = [("content-type", "application/x-www-form-urlencoded")];
        let (status, headers, body) =
            ask(app, Method::POST, "/users/sign_in", &format!("token={}", w.token("reporter")), &form).await;
        assert_eq!(status, 303, "{body}");
        sessions.push(headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned());
    }
    let apps = [(&w.app, [("cookie", sessions[0].as_str())]), (&proxy, [("cookie", sessions[1].as_str())])];
    for (app, cookie) in &apps {
        let (status, _, html) = ask(app, Method::GET, &format!("/{PUBLIC}/-/jobs"), "", cookie).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains(&format!("/{PUBLIC}/-/jobs/{id}/artifacts/browse\">Browse</a>")), "{html}");
        let by_ref = format!("/{PUBLIC}/-/jobs/artifacts/main/browse?job=pages");
        let (status, headers, body) = ask(app, Method::GET, &by_ref, "", cookie).await;
        assert_eq!(status, 302, "{body}");
        assert!(headers["location"].to_str().unwrap().ends_with(&format!("/-/jobs/{id}/artifacts/browse")));
        let browse = format!("/{PUBLIC}/-/jobs/{id}/artifacts/browse");
        let (status, _, body) = ask(app, Method::GET, &browse, "", cookie).await;
        assert!(status == 200 && body.contains("<bdi>docs/</bdi>"), "{status} {body}");
    }
    // Turned off, it goes from both.
    w.admin.set_project(PUBLIC, Some(false)).unwrap();
    for (app, cookie) in &apps {
        let (status, _, html) = ask(app, Method::GET, &format!("/{PUBLIC}/-/jobs"), "", cookie).await;
        assert!(status == 200 && !html.contains(&format!("/-/jobs/{id}/artifacts/browse")), "{html}");
    }
}

/// `text` with the five characters a page escapes read back.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// The URL of the link whose text (inside `<bdi>` or not) is `shown` in `html`, read back
/// from HTML, relative to the server.
fn href_of(html: &str, shown: &str) -> String {
    let at = html.find(shown).unwrap_or_else(|| panic!("{shown} in {html}"));
    let start = html[..at].rfind("href=\"").unwrap() + 6;
    let end = start + html[start..].find('"').unwrap();
    unescape(&html[start..end]).trim_start_matches("http://gitlab.test").to_owned()
}

#[tokio::test]
async fn every_link_names_exactly_its_file() {
    let w = World::new();
    let names = [
        "a&amp;b.txt",
        "a&b.txt",
        "#",
        "?",
        "%41",
        "A",
        "with space.txt",
        "rtl\u{200f}.txt",
        "q\"uote's.txt",
        "semi;colon+plus=.txt",
        "dir #1/?x%2F.txt",
        "dir #1/é.html",
    ];
    let id = job_with(&w, PUBLIC, archive_of(&w, "names.zip", &names));
    let root = format!("/{PUBLIC}/-/jobs/{id}/artifacts/browse");
    for name in names {
        let (dir, file) = name.rsplit_once('/').unwrap_or(("", name));
        assert!(dir.is_empty() || dir == "dir #1");
        let listing = page(&w, &if dir.is_empty() { root.clone() } else { format!("{root}/dir%20%231") }, None).await;
        assert_eq!(listing.status, 200, "{name}: {}", listing.text());
        let escaped = file.replace('&', "&amp;").replace('"', "&quot;");
        let mut href = href_of(&listing.text(), &format!("<bdi>{escaped}</bdi>"));
        // A text file's page: its raw link.
        let mut reply = page(&w, &href, None).await;
        if reply.header("content-type").starts_with("text/html") && !name.ends_with(".html") {
            assert_eq!(reply.status, 200, "{name} at {href}: {}", reply.text());
            href = href_of(&reply.text(), ">Open raw<");
            reply = page(&w, &href, None).await;
        }
        assert_eq!((reply.status.as_u16(), reply.text()), (200, name.to_owned()), "{name} at {href}");
    }
    // The folder's own link and its breadcrumbs name it too.
    let listing = page(&w, &root, None).await.text();
    let folder = href_of(&listing, "<bdi>dir #1/</bdi>");
    assert_eq!(folder, format!("{root}/dir%20%231"));
    let inside = page(&w, &folder, None).await.text();
    assert_eq!(href_of(&inside, "<bdi>dir #1</bdi>"), folder);
}

#[tokio::test]
async fn the_head_of_a_page_says_when_the_artifacts_expire_or_that_they_are_kept() {
    let w = World::new();
    let zip = fixture("infozip-basic.zip");
    let expiring = ImportJob {
        artifacts: Some(zip.clone()),
        expire_in: Some("30 days".into()),
        ..ImportJob::new(PUBLIC, "main", "soon")
    };
    let id = w.import(expiring)["id"].as_i64().unwrap();
    let html = page(&w, &format!("/{PUBLIC}/-/jobs/{id}/artifacts/browse"), None).await.text();
    let job = w.get(&format!("/api/v4/projects/group%2Fpublic/jobs/{id}"), "root").await.json();
    let at = artifact_gitlab::pages::minutes_of(job["artifacts_expire_at"].as_str().unwrap());
    assert!(html.contains(&format!("artifacts expire {at} (UTC)")), "{html}");
    // Past its expiry, the latest successful archive of its ref is kept (and still shown).
    crate::support::expire_a_week_ago(&w, id);
    let reply = page(&w, &format!("/{PUBLIC}/-/jobs/{id}/artifacts/file/docs/readme.txt"), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.text().contains("artifacts kept"), "a file's page has the head too: {}", reply.text());
}
