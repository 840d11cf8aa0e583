//! Pages for people, at GitLab's web URLs (the first part of browsing; no JavaScript).
//! Anonymous for public projects; otherwise a browser signs in at `/users/sign_in` with a
//! personal access token, which the server keeps behind an opaque session cookie
//! (`crate::sessions`), and a visitor who may not see a page is sent there first:
//!
//! - `GET /<project path>/-/jobs/<id>/artifacts/browse[/<dir>]`: a directory of the archive
//!   from its `metadata.gz` (folders first, then files by name; size and time; breadcrumbs;
//!   the archive's download link), [`PER_PAGE`] rows a page (`?page=N`).
//! - `GET /<project path>/-/jobs/<id>/artifacts/file/<path>`: the file itself, read as the
//!   API reads it (verified, by range). What a browser can show (text, images, HTML, SVG,
//!   CSS, JavaScript, PDF) is shown inline, everything else downloaded, and every file under
//!   `Content-Security-Policy: sandbox` without `allow-same-origin`: an HTML report runs its
//!   scripts in an opaque origin, without the server's cookies or its API, and its relative
//!   links, stylesheets and images resolve to the other files of the same archive.
//! - `GET /<project path>/-/jobs/artifacts/<ref>/browse[/<dir>]?job=<name>`: the same folder
//!   of the newest successful such job on the ref (a redirect to its page by id).
//! - `GET /<project path>/-/jobs` and `/<project path>/-/pipelines/<id>`: the recent jobs
//!   (or a pipeline's) with their status and a link to browse their artifacts.
//!
//! Every name from an archive is escaped, and every page carries a CSP that allows no
//! script, `nosniff` and `frame-ancestors 'none'`.

use std::fmt::Write as _;

use artifact_core::JobRef;
use artifact_core::metadata::{MetadataReader, is_child_of};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use super::jobs::find_job;
use super::{Ctx, blocking, id_param};
use crate::auth::{Caller, Credential, Need, Presented, Routes, authenticate};
use crate::error::{ApiError, ApiResult};
use crate::sessions;
use crate::time::Timestamp;

/// Rows of a directory page.
pub(crate) const PER_PAGE: usize = 500;

/// The CSP of the pages themselves: no script, styles inline only, nothing framing them.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The CSP of a file from an archive: a sandbox with scripts, forms and popups but never
/// the server's origin.
const FILE_CSP: &str = "sandbox allow-scripts allow-forms allow-popups allow-downloads; frame-ancestors 'none'";

/// What a path segment keeps unescaped in a link.
const SEGMENT: &AsciiSet =
    &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'/').add(b'<').add(b'>').add(b'?').add(b'`').add(b'\'');

/// What a path keeps unescaped as the `return_to` parameter (its slashes).
const RETURN_TO: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'\'');

/// A page route, or `None` for a path that is none (the API's 404 then).
enum Page {
    Browse {
        project: String,
        job: i64,
        dir: String,
    },
    File {
        project: String,
        job: i64,
        raw_path: String,
    },
    /// A file read through a grant (`crate::sessions::Grant`).
    View {
        project: String,
        job: i64,
        grant: String,
        raw_path: String,
    },
    /// The project's recent jobs, or one pipeline's.
    Jobs {
        project: String,
        pipeline: Option<i64>,
    },
    /// A folder of the newest successful `?job=` on a ref: sent to its page by id.
    ByRef {
        project: String,
        ref_name: String,
        dir: String,
    },
}

/// Parses `/<project path>/-/jobs/<id>/artifacts/(browse[/<dir>]|file/<path>)`; the project
/// path and the directory decoded once, the file's path kept raw for the path rule.
fn route(path: &str) -> Option<ApiResult<Page>> {
    let trimmed = path.strip_prefix('/')?.trim_end_matches('/');
    if let Some(project) = trimmed.strip_suffix("/-/jobs") {
        let project = percent_decode_str(project).decode_utf8().ok()?.into_owned();
        return Some(Ok(Page::Jobs { project, pipeline: None }));
    }
    if let Some((project, id)) = trimmed.split_once("/-/pipelines/") {
        let project = percent_decode_str(project).decode_utf8().ok()?.into_owned();
        return Some(id_param(id, "pipeline_id").map(|id| Page::Jobs { project, pipeline: Some(id) }));
    }
    let (project, rest) = path.strip_prefix('/')?.split_once("/-/jobs/")?;
    // `artifacts/<ref>/browse[/<dir>]`: the ref may hold `/`; the first `browse` segment
    // after its first segment ends it (as `raw` does for endpoint 8).
    if let Some(by_ref) = rest.strip_prefix("artifacts/") {
        let project = percent_decode_str(project).decode_utf8().ok()?.into_owned();
        let segments: Vec<&str> = by_ref.split('/').collect();
        let at = segments.iter().skip(1).position(|s| *s == "browse")? + 1;
        let ref_name = percent_decode_str(&segments[..at].join("/")).decode_utf8().ok()?.into_owned();
        let dir = segments[at + 1..].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join("/");
        let dir = percent_decode_str(&dir).decode_utf8().ok()?.into_owned();
        return Some(Ok(Page::ByRef { project, ref_name, dir }));
    }
    let (job, rest) = rest.split_once("/artifacts/")?;
    let project = percent_decode_str(project).decode_utf8().ok()?.into_owned();
    let job = match id_param(job, "job_id") {
        Ok(job) => job,
        Err(e) => return Some(Err(e)),
    };
    if let Some(raw_path) = rest.strip_prefix("file/") {
        return Some(Ok(Page::File { project, job, raw_path: raw_path.to_owned() }));
    }
    if let Some((grant, raw_path)) = rest.strip_prefix("view/").and_then(|r| r.split_once('/')) {
        let (grant, raw_path) = (grant.to_owned(), raw_path.to_owned());
        return Some(Ok(Page::View { project, job, grant, raw_path }));
    }
    let dir = match rest.strip_prefix("browse") {
        Some("" | "/") => String::new(),
        Some(dir) => dir.strip_prefix('/')?.trim_end_matches('/').to_owned() + "/",
        None => return None,
    };
    let dir = percent_decode_str(&dir).decode_utf8().ok()?.into_owned();
    Some(Ok(Page::Browse { project, job, dir }))
}

/// The router's fallback: the sign-in pages, a page, or the API's `404`.
pub(crate) async fn pages(mut ctx: Ctx, method: Method, uri: Uri, body: axum::body::Bytes) -> Response {
    let reading = method == Method::GET || method == Method::HEAD;
    let on_artifacts_origin = ctx.state.inner.artifacts_origin.as_deref().is_some_and(|origin| {
        let origin_host = origin.split_once("://").map_or(origin, |(_, host)| host);
        let host = ctx.headers.get(header::HOST).and_then(|h| h.to_str().ok());
        host.is_some_and(|host| host.eq_ignore_ascii_case(origin_host))
    });
    match (uri.path(), reading) {
        ("/users/sign_in" | "/users/sign_out", _) if on_artifacts_origin => {
            return ApiError::NotFound("Not Found").into_response();
        }
        ("/users/sign_in", true) => return sign_in_page(&return_to(ctx.query.get("return_to")), None, StatusCode::OK),
        ("/users/sign_in", false) if method == Method::POST => return sign_in(ctx, &body).await,
        ("/users/sign_out", false) if method == Method::POST => return sign_out(&ctx),
        _ => {}
    }
    let page = match route(uri.path()) {
        Some(page) if reading => page,
        _ => return ApiError::NotFound("Not Found").into_response(),
    };
    // The artifacts origin serves files and nothing else: no page, no session.
    if on_artifacts_origin && !matches!(page, Ok(Page::File { .. } | Page::View { .. })) {
        return ApiError::NotFound("Not Found").into_response();
    }
    let files = ctx.state.inner.artifacts_origin.clone().unwrap_or_else(|| ctx.base.clone());
    let sandbox = !on_artifacts_origin;
    // A signed-in browser presents its session's token.
    let session = sessions::cookie(&ctx.headers).and_then(|id| ctx.state.inner.sessions.token(&id));
    let anonymous = ctx.presented.credential.is_none() && session.is_none();
    let by_session = ctx.presented.credential.is_none() && session.is_some();
    if ctx.presented.credential.is_none() {
        ctx.presented.credential = session.map(Credential::Personal);
    }
    // Sign out for a signed-in browser, sign in for an anonymous one.
    let account = if by_session {
        "<form class=\"account\" method=\"post\" action=\"/users/sign_out\"><button type=\"submit\">Sign out</button></form>"
            .to_owned()
    } else if anonymous {
        let here = utf8_percent_encode(uri.path(), RETURN_TO);
        format!("<a class=\"account\" href=\"/users/sign_in?return_to={here}\">Sign in</a>")
    } else {
        String::new()
    };
    let answer = match page {
        Ok(Page::Browse { project, job, dir }) => {
            let number = ctx.query.get("page").and_then(|p| p.trim().parse::<usize>().ok()).unwrap_or(1).max(1);
            let base = ctx.base.clone();
            let shown = project.clone();
            blocking(move || directory(&ctx, &project, job, &dir, number))
                .await
                .map(|listing| html_page(&listing.render(&base, &files, &shown, &account)))
        }
        Ok(Page::ByRef { project, ref_name, dir }) => match ctx.query.get("job").filter(|j| !j.is_empty()) {
            Some(job) => {
                let job = JobRef::Latest { ref_name, job: job.to_owned() };
                blocking(move || {
                    use artifact_core::Resolve as _;
                    let access = ctx.access(Routes::Artifacts, &project)?;
                    access.require(Need::Read)?;
                    let resolver =
                        crate::resolve::StoreResolver { store: &*ctx.state.inner.store, now: Timestamp::now() };
                    let resolved = resolver.resolve(&access.project, &job)?;
                    let id = resolved.and_then(|r| r.job_id).ok_or(ApiError::NotFound("Not found"))?;
                    let dir = if dir.is_empty() { String::new() } else { format!("/{}", link_path(&dir)) };
                    Ok(found(&format!("{}/{}/-/jobs/{id}/artifacts/browse{dir}", ctx.base, link_path(&project))))
                })
                .await
            }
            None => Err(ApiError::InvalidParam("job is missing".into())),
        },
        Ok(Page::Jobs { project, pipeline }) => {
            let number = ctx.query.get("page").and_then(|p| p.trim().parse::<u64>().ok()).unwrap_or(1).max(1);
            let base = ctx.base.clone();
            blocking(move || jobs_page(&ctx, &project, pipeline, number, &base, &account))
                .await
                .map(|body| html_page(&body))
        }
        // Signed in by cookie: the file is opened through a grant, in a URL that its
        // sandbox (which sends no cookie) can read its neighbours with.
        Ok(Page::File { project, job, raw_path }) if by_session => {
            let Some(Credential::Personal(token)) = ctx.presented.credential.clone() else {
                return ApiError::Unauthorized.into_response();
            };
            let granted = ctx.state.inner.sessions.grant(sessions::Grant { token, project: project.clone(), job });
            match granted {
                Ok(grant) => {
                    let project_path = link_path(&project);
                    Ok(found(&format!("{files}/{project_path}/-/jobs/{job}/artifacts/view/{grant}/{raw_path}")))
                }
                Err(e) => Err(ApiError::internal(e)),
            }
        }
        Ok(Page::File { project, job, raw_path }) => {
            let entry = super::artifacts::entry_for_page(ctx, project, JobRef::Id(job as u64), &raw_path).await;
            entry.map(|response| for_browser(response, sandbox))
        }
        Ok(Page::View { project, job, grant, raw_path }) => match ctx.state.inner.sessions.granted(&grant) {
            Some(granted) if granted.project == project && granted.job == job => {
                ctx.presented.credential = Some(Credential::Personal(granted.token));
                let entry = super::artifacts::entry_for_page(ctx, project, JobRef::Id(job as u64), &raw_path).await;
                entry.map(|response| for_browser(response, sandbox))
            }
            _ => Err(ApiError::NotFound("Not found")),
        },
        Err(e) => Err(e),
    };
    match answer {
        Ok(response) => response,
        // A project an anonymous visitor may not see may exist: sign in first (GitLab's way).
        Err(ApiError::ProjectNotFound | ApiError::Unauthorized) if anonymous => {
            found(&format!("/users/sign_in?return_to={}", utf8_percent_encode(uri.path(), RETURN_TO)))
        }
        Err(e) => error_page(e),
    }
}

/// `302 Found` to `target`.
fn found(target: &str) -> Response {
    redirect(StatusCode::FOUND, target, None)
}

/// A redirect (`status`) to `target`, setting `cookie` if given.
fn redirect(status: StatusCode, target: &str, cookie: Option<&str>) -> Response {
    let mut response = status.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_str(target).unwrap_or(HeaderValue::from_static("/")));
    if let Some(Ok(cookie)) = cookie.map(HeaderValue::from_str) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    common(headers);
    response
}

/// Where to go after signing in: a path of this server, else the root of nothing (`/`).
fn return_to(given: Option<&str>) -> String {
    match given {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path.to_owned(),
        _ => "/".to_owned(),
    }
}

/// The sign-in page: a personal access token, kept on the server behind a session cookie.
fn sign_in_page(return_to: &str, problem: Option<&str>, status: StatusCode) -> Response {
    let problem = problem.map(|p| format!("<p class=\"problem\">{}</p>", escape(p))).unwrap_or_default();
    let body = format!(
        "{}<h1>Sign in</h1>{problem}<form method=\"post\" action=\"/users/sign_in\">\
         <label>Personal access token (read_api or api) <input type=\"password\" name=\"token\" autocomplete=\"off\" required autofocus></label>\
         <input type=\"hidden\" name=\"return_to\" value=\"{}\"> <button type=\"submit\">Sign in</button></form>\
         <p>The token stays on this server; your browser keeps only a session cookie, for {} hours.</p></body></html>",
        head("Sign in"),
        escape(return_to),
        sessions::SESSION_TTL.as_secs() / 3600
    );
    let mut response = html_page(&body);
    *response.status_mut() = status;
    response
}

/// `POST /users/sign_in`: a token that works opens a session and goes back where the
/// visitor was going; one that does not shows the form again (`401`).
async fn sign_in(ctx: Ctx, body: &[u8]) -> Response {
    // A form posted from another site's page is not a sign-in (login CSRF).
    if let Some(origin) = ctx.headers.get(header::ORIGIN).and_then(|o| o.to_str().ok())
        && origin != ctx.base
    {
        return error_page(ApiError::Forbidden(None));
    }
    let form = crate::query::Query::parse(std::str::from_utf8(body).ok());
    let token = form.get("token").unwrap_or_default().trim().to_owned();
    let target = return_to(form.get("return_to"));
    let presented = Presented { credential: Some(Credential::Personal(token.clone())), write: false, sudo: None };
    let store = ctx.state.inner.store.clone();
    let checked = blocking(move || match authenticate(&*store, &presented, Routes::Api)? {
        Caller::User(_) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    })
    .await;
    if checked.is_err() || token.is_empty() {
        return sign_in_page(&target, Some("That token does not work here."), StatusCode::UNAUTHORIZED);
    }
    let Ok(id) = ctx.state.inner.sessions.open(&token) else {
        return error_page(ApiError::Internal("no randomness for a session id".into()));
    };
    let secure = if ctx.base.starts_with("https://") { "; Secure" } else { "" };
    let cookie = format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        sessions::COOKIE,
        sessions::SESSION_TTL.as_secs()
    );
    let mut response = redirect(StatusCode::SEE_OTHER, &target, Some(&cookie));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /users/sign_out`: the session ends and its cookie is cleared.
fn sign_out(ctx: &Ctx) -> Response {
    if let Some(id) = sessions::cookie(&ctx.headers) {
        ctx.state.inner.sessions.close(&id);
    }
    let clear = format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", sessions::COOKIE);
    redirect(StatusCode::SEE_OTHER, "/users/sign_in", Some(&clear))
}

/// One directory's page.
struct Listing {
    job: i64,
    dir: String,
    /// The rows of this page: name (within `dir`), whether a folder, size, time.
    rows: Vec<(String, bool, Option<u64>, Option<i64>)>,
    page: usize,
    pages: usize,
    archive_size: Option<u64>,
}

/// Reads `dir` (`""` or ending in `/`) of job `job`'s archive from its `metadata.gz`.
fn directory(ctx: &Ctx, project: &str, job: i64, dir: &str, page: usize) -> ApiResult<Listing> {
    let access = ctx.access(Routes::Artifacts, project)?;
    access.require(Need::Read)?;
    let found = find_job(&*ctx.state.inner.store, &access.project, job)?;
    let (Some(archive), Some(metadata)) = (found.live_archive(Timestamp::now()), &found.metadata) else {
        return Err(ApiError::NotFound("Not found"));
    };
    let open = ctx.state.inner.blobs.open(&metadata.key).map_err(ApiError::internal)?;
    let stream = open.source.read_stream(0, open.source.len()).map_err(ApiError::internal)?;
    let mut reader = MetadataReader::new(stream).map_err(ApiError::internal)?;
    let (mut exists, mut rows) = (dir.is_empty(), Vec::new());
    while let Some(entry) = reader.next_ref().map_err(ApiError::internal)? {
        exists |= entry.path == dir;
        if is_child_of(entry.path, dir) {
            let name = entry.path[dir.len()..].trim_end_matches('/').to_owned();
            rows.push((name, entry.is_dir(), entry.size(), entry.modified()));
        }
    }
    if !exists {
        return Err(ApiError::NotFound("Not found"));
    }
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let pages = rows.len().div_ceil(PER_PAGE).max(1);
    let page = page.min(pages);
    let rows = rows.into_iter().skip((page - 1) * PER_PAGE).take(PER_PAGE).collect();
    Ok(Listing { job, dir: dir.to_owned(), rows, page, pages, archive_size: Some(archive.size) })
}

/// Jobs a page of the job list shows.
const JOBS_PER_PAGE: u64 = 50;

/// The project's recent jobs (newest first), or one pipeline's: status, name, stage, ref,
/// pipeline, when it finished, and a link to browse its artifacts when it has some.
fn jobs_page(
    ctx: &Ctx,
    project: &str,
    pipeline: Option<i64>,
    page: u64,
    base: &str,
    account: &str,
) -> ApiResult<String> {
    let access = ctx.access(Routes::Artifacts, project)?;
    access.require(Need::Read)?;
    let store = &*ctx.state.inner.store;
    let ref_of = |pipeline_id: i64| store.pipeline(pipeline_id).ok().flatten();
    if let Some(id) = pipeline {
        match ref_of(id) {
            Some(p) if p.project_id == access.project.id => {}
            _ => return Err(ApiError::NotFound("Not found")),
        }
    }
    let query = crate::store::JobQuery {
        project_id: access.project.id,
        pipeline_id: pipeline,
        kind: crate::model::JobKind::Build,
        scope: Vec::new(),
        include_retried: pipeline.is_some(),
        newest_first: pipeline.is_none(),
        before_id: None,
        count: true,
        offset: (page - 1).saturating_mul(JOBS_PER_PAGE),
        limit: JOBS_PER_PAGE,
    };
    let listing = store.list_jobs(&query)?;
    let project_link = format!("{base}/{}", link_path(&access.project.full_path));
    let title = match pipeline {
        Some(id) => format!("Pipeline #{id} · {}", access.project.full_path),
        None => format!("Jobs · {}", access.project.full_path),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "{}{account}\
         <nav class=\"crumbs\"><a href=\"{project_link}/-/jobs\">{}</a></nav><h1>{}</h1>\
         <table><thead><tr><th>Status</th><th>Job</th><th>Stage</th><th>Ref</th><th>Pipeline</th><th>Finished (UTC)</th><th>Artifacts</th></tr></thead><tbody>",
        head(&title),
        escape(&access.project.full_path),
        escape(&title)
    );
    let mut refs: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
    for job in &listing.rows {
        let ref_name = refs
            .entry(job.pipeline_id)
            .or_insert_with(|| ref_of(job.pipeline_id).map(|p| p.ref_name).unwrap_or_default());
        let finished = job.finished_at.map(minutes).unwrap_or_default();
        let artifacts = if job.live_archive(Timestamp::now()).is_some() {
            format!("<a href=\"{project_link}/-/jobs/{}/artifacts/browse\">Browse</a>", job.id)
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<tr><td class=\"status {status}\">{status}</td><td>#{id} <bdi>{name}</bdi></td><td><bdi>{stage}</bdi></td>\
             <td><bdi>{ref_name}</bdi></td><td><a href=\"{project_link}/-/pipelines/{pipeline}\">#{pipeline}</a></td>\
             <td>{finished}</td><td>{artifacts}</td></tr>",
            status = job.status.as_str(),
            id = job.id,
            name = escape(&job.name),
            stage = escape(&job.stage),
            ref_name = escape(ref_name),
            pipeline = job.pipeline_id,
            finished = escape(&finished),
        );
    }
    out.push_str("</tbody></table>");
    let pages = listing.total.div_ceil(JOBS_PER_PAGE).max(1);
    if pages > 1 {
        let _ = write!(out, "<nav class=\"pages\">Page {page} of {pages}");
        if page > 1 {
            let _ = write!(out, " · <a rel=\"prev\" href=\"?page={}\">Previous</a>", page - 1);
        }
        if page < pages {
            let _ = write!(out, " · <a rel=\"next\" href=\"?page={}\">Next</a>", page + 1);
        }
        out.push_str("</nav>");
    }
    out.push_str("</body></html>");
    Ok(out)
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path for a link: each `/`-separated segment percent-encoded.
fn link_path(path: &str) -> String {
    path.split('/').map(|s| utf8_percent_encode(s, SEGMENT).to_string()).collect::<Vec<_>>().join("/")
}

/// A time for people, to the minute: `2026-12-04 18:51`.
fn minutes(t: Timestamp) -> String {
    let iso = t.to_string();
    iso.get(..16).map(|s| s.replacen('T', " ", 1)).unwrap_or(iso)
}

/// Bytes for people: `2.5 KiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (mut value, mut unit) = (bytes as f64, 0);
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

impl Listing {
    fn render(&self, base: &str, files: &str, project: &str, account: &str) -> String {
        let root = format!("{base}/{}/-/jobs/{}/artifacts", link_path(project), self.job);
        let files_root = format!("{files}/{}/-/jobs/{}/artifacts", link_path(project), self.job);
        let mut out = String::new();
        let title = format!("{}{} · job {} · {}", "artifacts/", self.dir, self.job, project);
        let _ = write!(out, "{}{account}", head(&title));
        // Breadcrumbs: the archive's root, then each folder of the path.
        let _ = write!(out, "<nav class=\"crumbs\"><a href=\"{root}/browse\">artifacts</a>");
        let mut walked = String::new();
        for segment in self.dir.trim_end_matches('/').split('/').filter(|s| !s.is_empty()) {
            walked.push_str(segment);
            walked.push('/');
            let _ = write!(
                out,
                " / <a href=\"{root}/browse/{}\"><bdi>{}</bdi></a>",
                link_path(walked.trim_end_matches('/')),
                escape(segment)
            );
        }
        out.push_str("</nav>");
        let size = self.archive_size.map(|s| format!(" ({})", human(s))).unwrap_or_default();
        let download =
            format!("{base}/api/v4/projects/{}/jobs/{}/artifacts", utf8_percent_encode(project, SEGMENT), self.job);
        let _ = write!(out, "<p><a href=\"{download}\" download>Download artifacts archive</a>{size}</p>");
        out.push_str("<table><thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr></thead><tbody>");
        if !self.dir.is_empty() {
            let parent = self.dir.trim_end_matches('/').rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            let href = if parent.is_empty() {
                format!("{root}/browse")
            } else {
                format!("{root}/browse/{}", link_path(parent))
            };
            let _ = write!(out, "<tr><td><a href=\"{href}\">..</a></td><td></td><td></td></tr>");
        }
        for (name, folder, size, modified) in &self.rows {
            let full = format!("{}{name}", self.dir);
            let (href, shown) = if *folder {
                (format!("{root}/browse/{}", link_path(&full)), format!("{}/", escape(name)))
            } else {
                (format!("{files_root}/file/{}", link_path(&full)), escape(name))
            };
            let class = if *folder { "dir" } else { "file" };
            let size = if *folder { String::new() } else { size.map(human).unwrap_or_default() };
            let time = modified.map(|s| minutes(Timestamp(s.saturating_mul(1000)))).unwrap_or_default();
            let _ = write!(
                out,
                "<tr class=\"{class}\"><td><a href=\"{href}\"><bdi>{shown}</bdi></a></td><td>{size}</td><td>{}</td></tr>",
                escape(&time)
            );
        }
        out.push_str("</tbody></table>");
        if self.pages > 1 {
            let here = if self.dir.is_empty() {
                format!("{root}/browse")
            } else {
                format!("{root}/browse/{}", link_path(self.dir.trim_end_matches('/')))
            };
            let _ = write!(out, "<nav class=\"pages\">Page {} of {}", self.page, self.pages);
            if self.page > 1 {
                let _ = write!(out, " · <a rel=\"prev\" href=\"{here}?page={}\">Previous</a>", self.page - 1);
            }
            if self.page < self.pages {
                let _ = write!(out, " · <a rel=\"next\" href=\"{here}?page={}\">Next</a>", self.page + 1);
            }
            out.push_str("</nav>");
        }
        out.push_str("</body></html>");
        out
    }
}

const STYLE: &str = "body{font:14px/1.5 system-ui,sans-serif;margin:2em;color:#222}\
a{color:#1f5fbf;text-decoration:none}a:hover{text-decoration:underline}\
table{border-collapse:collapse;min-width:40em}th,td{text-align:left;padding:.25em 1em .25em 0;border-bottom:1px solid #eee}\
td:nth-child(2){text-align:right;font-variant-numeric:tabular-nums}tr.dir a{font-weight:600}\
.crumbs{margin-bottom:1em;font-size:16px}.pages{margin-top:1em}.account{float:right}";

/// The headers every page and every file carries besides its CSP.
fn common(headers: &mut axum::http::HeaderMap) {
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
}

fn html_page(body: &str) -> Response {
    let mut response = (StatusCode::OK, body.to_owned()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    common(headers);
    response
}

/// A file from an archive as a page opens it: inline when a browser can show it, and in
/// the sandbox unless served from the artifacts origin.
fn for_browser(mut response: Response, sandbox: bool) -> Response {
    let shown = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| {
        t.starts_with("text/") || t.starts_with("image/") || t == "application/pdf" || t == "application/json"
    });
    let headers = response.headers_mut();
    if shown {
        headers.remove(header::CONTENT_DISPOSITION);
    }
    if sandbox {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(FILE_CSP));
    } else {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'"));
    }
    common(headers);
    response
}

/// A page's start, up to and including `<body>`: `title` (escaped) and the style.
fn head(title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    )
}

/// An error as a page: its status, and what it says in words.
fn error_page(e: ApiError) -> Response {
    let status = e.into_response().status();
    let text = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    let body = format!("{}<h1>{text}</h1></body></html>", head(&text));
    let mut response = html_page(&body);
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_gitlabs_web_urls() {
        let browse = |p: &str| match route(p) {
            Some(Ok(Page::Browse { project, job, dir })) => Some((project, job, dir)),
            _ => None,
        };
        assert_eq!(browse("/g/p/-/jobs/7/artifacts/browse"), Some(("g/p".into(), 7, String::new())));
        assert_eq!(
            browse("/g/sub/p/-/jobs/7/artifacts/browse/docs/nested"),
            Some(("g/sub/p".into(), 7, "docs/nested/".into()))
        );
        assert_eq!(browse("/g/p/-/jobs/7/artifacts/browse/a%20b/"), Some(("g/p".into(), 7, "a b/".into())));
        assert!(matches!(route("/g/p/-/jobs/x/artifacts/browse"), Some(Err(_))));
        assert!(matches!(route("/g/p/-/jobs/7/artifacts/file/a%2Fb"), Some(Ok(Page::File { .. }))));
        assert!(route("/api/v4/nothing").is_none());
        assert!(route("/g/p/-/jobs/7/artifacts/other").is_none());
    }

    #[test]
    fn names_are_escaped_and_sizes_read_for_people() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(link_path("a b/c#d?e"), "a%20b/c%23d%3Fe");
        assert_eq!(human(900), "900 B");
        assert_eq!(human(2560), "2.5 KiB");
    }
}
