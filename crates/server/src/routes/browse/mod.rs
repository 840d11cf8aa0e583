//! Pages for people, at GitLab's web URLs (server-rendered, no JavaScript), served by the
//! server from its store and by the proxy from its upstream ([`Backend`]: the same pages,
//! the same rules). Anonymous for public projects; otherwise a browser signs in at
//! `/users/sign_in` with a personal access token, which is kept on the server behind an
//! opaque session cookie (`crate::sessions`: the server keeps sessions in its store, digests
//! only, so that every replica knows them; the proxy keeps them in memory and sends the
//! token upstream as the caller's `PRIVATE-TOKEN`), and a visitor who may not see a page is
//! sent there first:
//!
//! - `GET /<project path>/-/jobs/<id>/artifacts/browse[/<dir>]`: a directory of the archive
//!   (folders first, then files by name; size and time; breadcrumbs; the archive's download
//!   link), [`PER_PAGE`] rows a page (`?page=N`).
//! - `GET /<project path>/-/jobs/<id>/artifacts/file/<path>`: a file's page. Text is shown
//!   in it (escaped; up to [`SHOW_MAX`], read whole and verified first), an image is shown
//!   in it; HTML, SVG, PDF and archives are not pages: they are opened as they are (the
//!   listing links them there in one click, and this URL redirects there).
//! - `GET /<project path>/-/jobs/<id>/artifacts/raw/<path>`: the file as it is, read as the
//!   API reads it (verified, by range): inline when a browser can show it, else a download
//!   (`?download` always a download). Served from the artifacts origin when one is set
//!   (`--artifacts-origin`), else under `Content-Security-Policy: sandbox` without
//!   `allow-same-origin`: an HTML report runs its scripts in an opaque origin, without the
//!   server's cookies or its API, and its relative links, stylesheets, scripts and images
//!   resolve to the other files of the same archive.
//! - `GET .../artifacts/view/<grant>/<path>`: the same through a grant, for a signed-in
//!   browser (a sandboxed report sends no cookie; see `crate::sessions`).
//! - `GET /<project path>/-/jobs/artifacts/<ref>/browse[/<dir>]?job=<name>`: the same folder
//!   of the newest successful such job on the ref (a redirect to its page by id).
//! - `GET /<project path>/-/jobs` and `/<project path>/-/pipelines/<id>`: the recent jobs
//!   (or a pipeline's) with their status and a link to browse their artifacts.
//!
//! Every name from an archive is escaped, and every page carries a CSP that allows no
//! script, `nosniff` and `frame-ancestors 'none'`.

mod local;
mod render;

pub(crate) use self::local::pages;
pub(crate) use self::render::{minutes, minutes_of};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use percent_encoding::{percent_decode_str, utf8_percent_encode};

use self::render::{RETURN_TO, Shown, error_page, found, html_page, link_path, redirect, sign_in_page};
use super::artifacts::answer::artifact_path;
use super::id_param;
use crate::auth::{CREDENTIAL_HEADERS, Credential};
use crate::error::{ApiError, ApiResult};
use crate::query::Query;
use crate::sessions;

/// Rows of a directory page.
pub(crate) const PER_PAGE: usize = 500;

/// Jobs a page of the job list shows.
pub(crate) const JOBS_PER_PAGE: u64 = 50;

/// The most text a file's page shows; a longer file shows its start.
pub(crate) const SHOW_MAX: usize = 1 << 20;

/// The largest text file a page shows (the start of): it is read whole first, so that
/// what is shown is verified.
pub(crate) const VERIFY_MAX: u64 = 32 << 20;

/// How much of a file of unknown type is looked at to tell text from binary.
const SNIFF: usize = 8 << 10;

/// Whose request a page reads with: the request's own headers (a credential it presents)
/// and query (tokens in it), or the credential of its session or grant; and whether it is
/// a `HEAD`.
#[derive(Debug, Clone)]
pub(crate) struct Who {
    pub(crate) headers: HeaderMap,
    pub(crate) query: Query,
    /// The session's or the grant's credential, which the request itself does not carry.
    pub(crate) credential: Option<Credential>,
    pub(crate) head: bool,
}

impl Who {
    /// Only the credentials: for reading a file a page shows, without the request's own
    /// conditions, ranges or encodings.
    fn bare(&self) -> Who {
        let mut headers = HeaderMap::new();
        for name in CREDENTIAL_HEADERS {
            if let Some(value) = self.headers.get(name) {
                headers.insert(name, value.clone());
            }
        }
        Who { headers, query: self.query.clone(), credential: self.credential.clone(), head: false }
    }

    /// The request's headers with `credential` as its only credential (a grant's).
    fn with_credential(&self, credential: Credential) -> Who {
        let mut headers = self.headers.clone();
        for name in CREDENTIAL_HEADERS {
            headers.remove(name);
        }
        Who { headers, query: Query::parse(None), credential: Some(credential), head: self.head }
    }
}

/// One row of a directory: a name within it, whether a folder, size and time.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) folder: bool,
    pub(crate) size: Option<u64>,
    pub(crate) modified: Option<i64>,
}

/// One page of a directory.
#[derive(Debug)]
pub(crate) struct Directory {
    /// `""` or ending in `/`.
    pub(crate) dir: String,
    pub(crate) rows: Vec<Row>,
    pub(crate) page: usize,
    pub(crate) pages: usize,
    pub(crate) archive_size: Option<u64>,
}

/// The paths of an archive as the pages list them (a folder ends in `/`), each with its
/// size and time; the paths in one buffer (one allocation, not one per path).
#[derive(Debug, Default)]
pub(crate) struct Listed {
    text: String,
    rows: Vec<(usize, usize, Option<u64>, Option<i64>)>,
}

impl Listed {
    /// Adds a path.
    pub(crate) fn push(&mut self, path: &str, size: Option<u64>, modified: Option<i64>) {
        let start = self.text.len();
        self.text.push_str(path);
        self.rows.push((start, self.text.len(), size, modified));
    }

    fn iter(&self) -> impl Iterator<Item = (&str, Option<u64>, Option<i64>)> {
        self.rows.iter().map(|&(start, end, size, modified)| (&self.text[start..end], size, modified))
    }
}

/// Archives whose listed paths are kept.
const TREES_KEPT: usize = 4;

/// The listed paths of the archives whose folders were shown last, by a key that names one
/// version of one archive: a page then costs a pass over them, not the reading (or
/// building) of the whole list again.
#[derive(Debug)]
pub(crate) struct Trees<K>(std::sync::Mutex<std::collections::VecDeque<(K, std::sync::Arc<Listed>)>>);

impl<K> Default for Trees<K> {
    fn default() -> Trees<K> {
        Trees(Default::default())
    }
}

impl<K: PartialEq> Trees<K> {
    /// The paths kept for `key`, else made by `make` (and kept, dropping the least recently
    /// shown past [`TREES_KEPT`]).
    pub(crate) fn of(&self, key: K, make: impl FnOnce() -> ApiResult<Listed>) -> ApiResult<std::sync::Arc<Listed>> {
        {
            let mut trees = self.0.lock().unwrap_or_else(|p| p.into_inner());
            // The most recently shown first.
            if let Some(at) = trees.iter().position(|(k, _)| *k == key)
                && let Some(kept) = trees.remove(at)
            {
                let tree = kept.1.clone();
                trees.push_front(kept);
                return Ok(tree);
            }
        }
        let tree = std::sync::Arc::new(make()?);
        let mut trees = self.0.lock().unwrap_or_else(|p| p.into_inner());
        trees.push_front((key, tree.clone()));
        trees.truncate(TREES_KEPT);
        Ok(tree)
    }
}

/// Gathers a directory's rows from every path of an archive (in any order).
#[derive(Debug)]
pub(crate) struct Children {
    dir: String,
    exists: bool,
    rows: Vec<Row>,
}

impl Children {
    /// The children of `dir` (`""` or ending in `/`).
    pub(crate) fn of(dir: &str) -> Children {
        Children { dir: dir.to_owned(), exists: dir.is_empty(), rows: Vec::new() }
    }

    /// One path of the archive (a folder ends in `/`).
    pub(crate) fn offer(&mut self, path: &str, size: Option<u64>, modified: Option<i64>) {
        self.exists |= path == self.dir;
        if artifact_core::metadata::is_child_of(path, &self.dir) {
            let folder = path.ends_with('/');
            let name = path[self.dir.len()..].trim_end_matches('/').to_owned();
            self.rows.push(Row { name, folder, size, modified });
        }
    }

    /// Every path of `listed`.
    pub(crate) fn with(mut self, listed: &Listed) -> Children {
        for (path, size, modified) in listed.iter() {
            self.offer(path, size, modified);
        }
        self
    }

    /// Page `page` (from 1; past the last is the last): folders first, then by name.
    /// `NotFound` if the directory is not in the archive.
    pub(crate) fn page(mut self, page: usize, archive_size: Option<u64>) -> ApiResult<Directory> {
        if !self.exists {
            return Err(ApiError::NotFound("Not found"));
        }
        self.rows.sort_by(|a, b| b.folder.cmp(&a.folder).then_with(|| a.name.cmp(&b.name)));
        let pages = self.rows.len().div_ceil(PER_PAGE).max(1);
        let page = page.clamp(1, pages);
        let rows = self.rows.into_iter().skip((page - 1) * PER_PAGE).take(PER_PAGE).collect();
        Ok(Directory { dir: self.dir, rows, page, pages, archive_size })
    }
}

/// One job of a job list.
#[derive(Debug, Clone)]
pub(crate) struct JobRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) stage: String,
    pub(crate) ref_name: String,
    pub(crate) pipeline: i64,
    pub(crate) status: String,
    /// When it finished, for people (`minutes`).
    pub(crate) finished: Option<String>,
    /// Whether it has an archive to browse.
    pub(crate) browsable: bool,
}

/// One page of a job list.
#[derive(Debug)]
pub(crate) struct JobList {
    /// The project's full path, as shown.
    pub(crate) project: String,
    pub(crate) rows: Vec<JobRow>,
    pub(crate) pages: u64,
}

/// Where the pages read from: the server's store and blobs, or the proxy's upstream.
pub(crate) trait Backend: Send + Sync {
    /// Opens a browser session for `token` (which [`signs_in`](Self::signs_in)); its id.
    fn open_session(&self, token: &str) -> impl Future<Output = ApiResult<String>> + Send;
    /// The credential of the live session `id`.
    fn session(&self, id: &str) -> impl Future<Output = ApiResult<Option<Credential>>> + Send;
    /// Ends the session `id` (its grants stay until they expire: they name one job's
    /// files only).
    fn close_session(&self, id: &str) -> impl Future<Output = ApiResult<()>> + Send;
    /// A grant to read job `job`'s files with `credential`, the one of session `session`
    /// (see `crate::sessions`).
    fn grant(
        &self,
        session: &str,
        credential: &Credential,
        project: &str,
        job: i64,
    ) -> impl Future<Output = ApiResult<String>> + Send;
    /// Whether `who` may read job `job`'s archive (`Ok`), else why not: a grant is given
    /// only after this said yes.
    fn readable(&self, who: &Who, project: &str, job: i64) -> impl Future<Output = ApiResult<()>> + Send;
    /// The live grant `id`: its credential, project and job.
    fn granted(&self, id: &str) -> impl Future<Output = ApiResult<Option<(Credential, String, i64)>>> + Send;
    /// The artifacts origin, without a trailing slash.
    fn artifacts_origin(&self) -> Option<&str>;
    /// The external base URL for a request with `headers`.
    fn base(&self, headers: &HeaderMap) -> String;
    /// Whether `token` is a user's token that works here (`Ok(false)`: it does not).
    fn signs_in(&self, token: &str) -> impl Future<Output = ApiResult<bool>> + Send;
    /// Page `page` of directory `dir` (`""` or ending in `/`) of job `job`'s archive.
    fn directory(
        &self,
        who: &Who,
        project: &str,
        job: i64,
        dir: &str,
        page: usize,
    ) -> impl Future<Output = ApiResult<Directory>> + Send;
    /// Page `page` of the project's recent jobs, or of one pipeline's.
    fn jobs(
        &self,
        who: &Who,
        project: &str,
        pipeline: Option<i64>,
        page: u64,
    ) -> impl Future<Output = ApiResult<JobList>> + Send;
    /// The id of the newest successful job `job` on `ref_name` (whose archive the API's
    /// by-ref endpoints serve).
    fn latest(
        &self,
        who: &Who,
        project: &str,
        ref_name: &str,
        job: &str,
    ) -> impl Future<Output = ApiResult<i64>> + Send;
    /// The single-file API's answer for `raw_path` of job `job`'s archive.
    fn file(
        &self,
        who: &Who,
        project: &str,
        job: i64,
        raw_path: &str,
    ) -> impl Future<Output = ApiResult<Response>> + Send;
}

/// A page route, or `None` for a path that is none.
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
    Raw {
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

/// Whether `path` is one of the pages' (the proxy answers these itself).
pub(crate) fn is_page(path: &str) -> bool {
    matches!(path, "/users/sign_in" | "/users/sign_out") || route(path).is_some()
}

/// Parses a page's path; the project path and the directory decoded once, a file's path
/// kept raw for the path rule.
fn route(path: &str) -> Option<ApiResult<Page>> {
    let decoded = |s: &str| percent_decode_str(s).decode_utf8().ok().map(|s| s.into_owned());
    let trimmed = path.strip_prefix('/')?.trim_end_matches('/');
    if let Some(project) = trimmed.strip_suffix("/-/jobs") {
        return Some(Ok(Page::Jobs { project: decoded(project)?, pipeline: None }));
    }
    if let Some((project, id)) = trimmed.split_once("/-/pipelines/") {
        // `/-/pipelines/<id>/...` is another page (one of GitLab's, through the proxy).
        if id.contains('/') {
            return None;
        }
        let project = decoded(project)?;
        return Some(id_param(id, "pipeline_id").map(|id| Page::Jobs { project, pipeline: Some(id) }));
    }
    let (project, rest) = path.strip_prefix('/')?.split_once("/-/jobs/")?;
    let project = decoded(project)?;
    // `artifacts/<ref>/browse[/<dir>]`: the ref may hold `/`; the first `browse` segment
    // after its first segment ends it (as `raw` does for endpoint 8).
    if let Some(by_ref) = rest.strip_prefix("artifacts/") {
        let segments: Vec<&str> = by_ref.split('/').collect();
        let at = segments.iter().skip(1).position(|s| *s == "browse")? + 1;
        let ref_name = decoded(&segments[..at].join("/"))?;
        let dir = segments[at + 1..].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join("/");
        return Some(Ok(Page::ByRef { project, ref_name, dir: decoded(&dir)? }));
    }
    let (job, rest) = rest.split_once("/artifacts/")?;
    let job = match id_param(job, "job_id") {
        Ok(job) => job,
        Err(e) => return Some(Err(e)),
    };
    if let Some(raw_path) = rest.strip_prefix("file/") {
        return Some(Ok(Page::File { project, job, raw_path: raw_path.to_owned() }));
    }
    if let Some(raw_path) = rest.strip_prefix("raw/") {
        return Some(Ok(Page::Raw { project, job, raw_path: raw_path.to_owned() }));
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
    Some(Ok(Page::Browse { project, job, dir: decoded(&dir)? }))
}

/// How a file is opened from the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// As it is, in one click: what a browser renders (HTML, SVG, PDF) or only downloads.
    AsItIs,
    /// In a page, as an image.
    Image,
    /// In a page, as text.
    Text,
    /// Looked at first: text in a page, anything else as it is.
    Unknown,
}

/// A file's [`Kind`] by its name's extension.
fn kind(name: &str) -> Kind {
    let base = name.rsplit('/').next().unwrap_or(name);
    let ext = base.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" | "xhtml" | "svg" | "pdf" | "zip" | "gz" | "tgz" | "tar" | "bz2" | "xz" | "zst" | "7z"
        | "jar" | "war" | "whl" | "deb" | "rpm" | "apk" | "exe" | "dll" | "so" | "dylib" | "a" | "o" | "bin"
        | "wasm" | "class" | "pyc" | "iso" | "dmg" | "img" => Kind::AsItIs,
        "png" | "jpg" | "jpeg" | "gif" | "webp" | "avif" | "bmp" | "ico" => Kind::Image,
        "txt" | "log" | "md" | "markdown" | "json" | "xml" | "css" | "js" | "mjs" | "ts" | "tsx" | "jsx" | "csv"
        | "tsv" | "yml" | "yaml" | "toml" | "ini" | "cfg" | "conf" | "sh" | "py" | "rb" | "rs" | "go" | "c" | "h"
        | "cc" | "cpp" | "hpp" | "java" | "kt" | "swift" | "sql" | "diff" | "patch" | "lcov" | "info" | "out"
        | "err" | "properties" | "gradle" | "lock" | "env" | "tex" | "rst" | "adoc" | "junit" | "trx" => Kind::Text,
        _ => Kind::Unknown,
    }
}

/// The links of one job's archive.
pub(crate) struct Links {
    /// The project's full path, as shown.
    project: String,
    job: i64,
    /// `<base>/<project>/-/jobs/<id>/artifacts` (the pages).
    pages: String,
    /// Where files are opened as they are: `<files>/<project>/-/jobs/<id>/artifacts/raw`,
    /// or `.../view/<grant>` for a signed-in browser.
    open_root: String,
    /// The archive's download (endpoint 5).
    archive: String,
}

impl Links {
    fn new(base: &str, files: &str, project: &str, job: i64, grant: Option<&str>) -> Links {
        let path = link_path(project);
        let open_root = match grant {
            Some(grant) => format!("{files}/{path}/-/jobs/{job}/artifacts/view/{grant}"),
            None => format!("{files}/{path}/-/jobs/{job}/artifacts/raw"),
        };
        let id = utf8_percent_encode(project, percent_encoding::NON_ALPHANUMERIC);
        Links {
            project: project.to_owned(),
            job,
            pages: format!("{base}/{path}/-/jobs/{job}/artifacts"),
            open_root,
            archive: format!("{base}/api/v4/projects/{id}/jobs/{job}/artifacts"),
        }
    }

    /// The listing's link for the file at `path`: opened as it is, or its page.
    fn file(&self, path: &str) -> String {
        match kind(path) {
            Kind::AsItIs => self.open(path),
            _ => format!("{}/file/{}", self.pages, link_path(path)),
        }
    }

    /// The file at `path` as it is.
    fn open(&self, path: &str) -> String {
        format!("{}/{}", self.open_root, link_path(path))
    }
}

/// Whether a request with `headers` was made to the artifacts origin `origin` (by its
/// `Host`).
pub(crate) fn on_artifacts_origin(origin: Option<&str>, headers: &HeaderMap) -> bool {
    origin.is_some_and(|origin| {
        let origin_host = origin.split_once("://").map_or(origin, |(_, host)| host);
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        host.is_some_and(|host| host.eq_ignore_ascii_case(origin_host))
    })
}

/// A page request, answered from `backend`: the sign-in pages, a page, or `404`.
pub(crate) async fn visit<B: Backend>(
    backend: &B,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let reading = method == Method::GET || method == Method::HEAD;
    let query = Query::parse(uri.query());
    let base = backend.base(headers);
    let on_artifacts_origin = on_artifacts_origin(backend.artifacts_origin(), headers);
    match (uri.path(), reading) {
        ("/users/sign_in" | "/users/sign_out", _) if on_artifacts_origin => {
            return ApiError::NotFound("Not Found").into_response();
        }
        ("/users/sign_in", true) => return sign_in_page(&return_to(query.get("return_to")), None, StatusCode::OK),
        ("/users/sign_in", false) if method == Method::POST => return sign_in(backend, headers, &base, body).await,
        ("/users/sign_out", false) if method == Method::POST => return sign_out(backend, headers, &base).await,
        _ => {}
    }
    let page = match route(uri.path()) {
        Some(page) if reading => page,
        _ => return ApiError::NotFound("Not Found").into_response(),
    };
    // The artifacts origin serves files as they are and nothing else: no page, no session.
    if on_artifacts_origin && !matches!(page, Ok(Page::Raw { .. } | Page::View { .. })) {
        return ApiError::NotFound("Not Found").into_response();
    }
    let files = backend.artifacts_origin().map(str::to_owned).unwrap_or_else(|| base.clone());
    let images = backend.artifacts_origin();
    let sandbox = !on_artifacts_origin;
    let download = query.get("download").is_some();
    // The artifacts origin reads no cookie and no credential: its files are public ones,
    // read anonymously, and granted ones, read with their grant's credential only.
    let mut headers = headers.clone();
    let query = if on_artifacts_origin {
        for name in CREDENTIAL_HEADERS {
            headers.remove(name);
        }
        headers.remove(header::COOKIE);
        Query::parse(None)
    } else {
        query
    };
    // A signed-in browser presents its session's token; the cookie itself goes no further.
    let presented = Credential::from_request(&headers, &query).is_some();
    let session = match sessions::cookie(&headers, &base) {
        Some(id) if !presented => match backend.session(&id).await {
            Ok(credential) => credential.map(|credential| (id, credential)),
            Err(e) => return error_page(e),
        },
        _ => None,
    };
    let anonymous = !presented && session.is_none();
    headers.remove(header::COOKIE);
    let who =
        Who { headers, query, credential: session.as_ref().map(|(_, c)| c.clone()), head: method == Method::HEAD };
    // Sign out for a signed-in browser, sign in for an anonymous one.
    let account = if session.is_some() {
        "<form class=\"account\" method=\"post\" action=\"/users/sign_out\"><button type=\"submit\">Sign out</button></form>"
            .to_owned()
    } else if anonymous {
        let here = utf8_percent_encode(uri.path(), RETURN_TO);
        format!(
            "<a class=\"account\" href=\"/users/sign_in?return_to={}\">Sign in</a>",
            render::escape(&here.to_string())
        )
    } else {
        String::new()
    };
    let place = Place { base: &base, files: &files, session: session.as_ref(), who: &who };
    let page_number = || who.query.get("page").and_then(|p| p.trim().parse::<u64>().ok()).unwrap_or(1).max(1);
    let answer = match page {
        Ok(Page::Browse { project, job, dir }) => {
            match backend.directory(&who, &project, job, &dir, page_number() as usize).await {
                Ok(directory) => place
                    .links(backend, &project, job)
                    .await
                    .map(|l| html_page(&render::listing(&directory, &l, &account), None)),
                Err(e) => Err(e),
            }
        }
        Ok(Page::ByRef { project, ref_name, dir }) => match who.query.get("job").filter(|j| !j.is_empty()) {
            Some(job) => backend.latest(&who, &project, &ref_name, job).await.map(|id| {
                let dir = if dir.is_empty() { String::new() } else { format!("/{}", link_path(&dir)) };
                found(&format!("{base}/{}/-/jobs/{id}/artifacts/browse{dir}", link_path(&project)))
            }),
            None => Err(ApiError::InvalidParam("job is missing".into())),
        },
        Ok(Page::Jobs { project, pipeline }) => {
            let number = page_number();
            backend
                .jobs(&who, &project, pipeline, number)
                .await
                .map(|list| html_page(&render::jobs(&list, &base, pipeline, number, &account), None))
        }
        Ok(Page::File { project, job, raw_path }) => {
            file_page(backend, &who, &place, &project, job, &raw_path, &account, images).await
        }
        Ok(Page::Raw { project, job, raw_path }) if session.is_some() => match artifact_path(&raw_path) {
            Ok(_) => place.links(backend, &project, job).await.map(|links| {
                let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
                found(&format!("{}/{raw_path}{query}", links.open_root))
            }),
            Err(e) => Err(e),
        },
        Ok(Page::Raw { project, job, raw_path }) => {
            let entry = backend.file(&who, &project, job, &raw_path).await;
            entry.map(|response| for_browser(response, sandbox, download))
        }
        Ok(Page::View { project, job, grant, raw_path }) => match backend.granted(&grant).await {
            Ok(Some((credential, granted, granted_job))) if granted == project && granted_job == job => {
                let who = who.with_credential(credential);
                let entry = backend.file(&who, &project, job, &raw_path).await;
                entry.map(|response| for_browser(response, sandbox, download))
            }
            Ok(_) => Err(ApiError::NotFound("Not found")),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match answer {
        Ok(response) => response,
        // A project an anonymous visitor may not see may exist: sign in first (GitLab's way).
        // (The proxy's upstream says so with a `404` or a `401`.)
        Err(
            ApiError::ProjectNotFound
            | ApiError::Unauthorized
            | ApiError::Upstream(StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED),
        ) if anonymous && !on_artifacts_origin => {
            found(&format!("/users/sign_in?return_to={}", utf8_percent_encode(uri.path(), RETURN_TO)))
        }
        Err(e) => error_page(e),
    }
}

/// Where a request's links point: this server, the origin files are opened from, and the
/// browser's session (id and credential), whose files are opened through a grant, and who
/// asks.
struct Place<'a> {
    base: &'a str,
    files: &'a str,
    session: Option<&'a (String, Credential)>,
    who: &'a Who,
}

impl Place<'_> {
    /// The links of job `job`'s archive. A signed-in browser opens files through a grant,
    /// in URLs that a sandboxed report (which sends no cookie) reads its neighbours with;
    /// a grant means "checked": it is given only once the session may read that job's
    /// archive (else that refusal, and no grant).
    async fn links<B: Backend>(&self, backend: &B, project: &str, job: i64) -> ApiResult<Links> {
        let grant = match self.session {
            Some((id, credential)) => {
                backend.readable(self.who, project, job).await?;
                Some(backend.grant(id, credential, project, job).await?)
            }
            None => None,
        };
        Ok(Links::new(self.base, self.files, project, job, grant.as_deref()))
    }
}

/// A file's page (`.../artifacts/file/<path>`): text or an image shown in it; anything
/// else sent to the file as it is.
#[allow(clippy::too_many_arguments)]
async fn file_page<B: Backend>(
    backend: &B,
    who: &Who,
    place: &Place<'_>,
    project: &str,
    job: i64,
    raw_path: &str,
    account: &str,
    images: Option<&str>,
) -> ApiResult<Response> {
    // The path rule first, for every route.
    let path = artifact_path(raw_path)?;
    let path = path.as_str();
    let kind = kind(path);
    let text = match kind {
        Kind::AsItIs => return place.links(backend, project, job).await.map(|l| found(&l.open(path))),
        Kind::Image => {
            let links = place.links(backend, project, job).await?;
            return Ok(html_page(&render::file(&links, path, Shown::Image, account), images));
        }
        Kind::Text | Kind::Unknown => read_text(backend.file(&who.bare(), project, job, raw_path).await?, kind).await?,
    };
    let links = place.links(backend, project, job).await?;
    let shown = match &text {
        Read::Text { bytes, total } => Shown::Text { text: &String::from_utf8_lossy(bytes), total: *total },
        Read::TooLarge => Shown::TooLarge { at_least: VERIFY_MAX },
        Read::Binary => return Ok(found(&links.open(path))),
    };
    Ok(html_page(&render::file(&links, path, shown, account), images))
}

/// What a file's page read of it.
enum Read {
    /// The first [`SHOW_MAX`] bytes (or all) of a file of `total` bytes, all of it verified.
    Text { bytes: Vec<u8>, total: u64 },
    /// Longer than [`VERIFY_MAX`].
    TooLarge,
    /// A file of unknown type that is not text.
    Binary,
}

/// Reads a file for its page: whole (so that it is verified), keeping its first
/// [`SHOW_MAX`] bytes; a file of unknown type is first looked at ([`SNIFF`] bytes).
async fn read_text(response: Response, kind: Kind) -> ApiResult<Read> {
    let status = response.status();
    if !status.is_success() {
        return Err(ApiError::Upstream(status));
    }
    let mut body = response.into_body().into_data_stream();
    let (mut kept, mut total) = (Vec::new(), 0u64);
    let mut sniffed = kind != Kind::Unknown;
    while let Some(chunk) = body.next().await {
        // A file that fails verification ends its stream in an error: nothing is shown.
        let chunk = chunk.map_err(ApiError::internal)?;
        total += chunk.len() as u64;
        let room = SHOW_MAX - kept.len();
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if !sniffed && kept.len() >= SNIFF {
            if binary(&kept) {
                return Ok(Read::Binary);
            }
            sniffed = true;
        }
        if total > VERIFY_MAX {
            return Ok(Read::TooLarge);
        }
    }
    if !sniffed && binary(&kept) {
        return Ok(Read::Binary);
    }
    Ok(Read::Text { bytes: kept, total })
}

/// Whether the start of a file is not text: a NUL, or bytes that are not UTF-8 (a
/// character cut at the end of what was read is fine).
fn binary(bytes: &[u8]) -> bool {
    let start = &bytes[..bytes.len().min(SNIFF)];
    start.contains(&0) || std::str::from_utf8(start).is_err_and(|e| e.error_len().is_some())
}

/// Where to go after signing in: a path of this server, else the root of nothing (`/`).
/// A path is `/` alone, or one `/` followed by a character that is neither `/` nor `\`,
/// without control characters, whitespace, bidirectional controls or zero-width characters,
/// as it is given and as every decoding of it reads (a browser reads `/\t/host` or
/// `/%2F/host` as another host's URL).
fn return_to(given: Option<&str>) -> String {
    // Characters that reorder or hide what the address shows (bidirectional controls,
    // zero-width characters): a `Location` that reads other than it goes.
    let invisible = |c: char| matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}');
    let local = |path: &str| {
        let bytes = path.as_bytes();
        bytes.first() == Some(&b'/')
            && !matches!(bytes.get(1), Some(b'/' | b'\\'))
            && !path.chars().any(|c| c.is_control() || c.is_whitespace() || invisible(c))
    };
    let Some(given) = given else { return "/".to_owned() };
    let mut form = std::borrow::Cow::Borrowed(given);
    loop {
        if !local(&form) {
            return "/".to_owned();
        }
        let Ok(decoded) = percent_decode_str(&form).decode_utf8() else { return "/".to_owned() };
        if decoded == form {
            return given.to_owned();
        }
        form = std::borrow::Cow::Owned(decoded.into_owned());
    }
}

/// Whether a form was posted from another site's page (its `Origin` is not this server's).
fn foreign(headers: &HeaderMap, base: &str) -> bool {
    headers.get(header::ORIGIN).is_some_and(|origin| origin.to_str().map_or(true, |origin| origin != base))
}

/// `POST /users/sign_in`: a token that works opens a session and goes back where the
/// visitor was going; one that does not shows the form again (`401`).
async fn sign_in<B: Backend>(backend: &B, headers: &HeaderMap, base: &str, body: &[u8]) -> Response {
    // A form posted from another site's page is not a sign-in (login CSRF).
    if foreign(headers, base) {
        return error_page(ApiError::Forbidden(None));
    }
    let form = Query::parse(std::str::from_utf8(body).ok());
    let token = form.get("token").unwrap_or_default().trim().to_owned();
    let target = return_to(form.get("return_to"));
    let works = !token.is_empty() && HeaderValue::from_str(&token).is_ok();
    match if works { backend.signs_in(&token).await } else { Ok(false) } {
        Ok(true) => {}
        Ok(false) => return sign_in_page(&target, Some("That token does not work here."), StatusCode::UNAUTHORIZED),
        Err(e) => return error_page(e),
    }
    let id = match backend.open_session(&token).await {
        Ok(id) => id,
        Err(e) => return error_page(e),
    };
    let cookie = session_cookie(base, &id, sessions::SESSION_TTL.as_secs());
    let mut response = redirect(StatusCode::SEE_OTHER, &target, Some(&cookie));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The `Set-Cookie` of session `id` (empty: cleared) for `max_age` seconds, on a server
/// whose base URL is `base`: over `https` a `__Host-` cookie, `Secure`.
fn session_cookie(base: &str, id: &str, max_age: u64) -> String {
    let secure = if base.starts_with("https://") { "; Secure" } else { "" };
    let name = sessions::cookie_name(base);
    format!("{name}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// `POST /users/sign_out`: the session ends and its cookie is cleared. A form posted from
/// another site's page signs nobody out.
async fn sign_out<B: Backend>(backend: &B, headers: &HeaderMap, base: &str) -> Response {
    if foreign(headers, base) {
        return error_page(ApiError::Forbidden(None));
    }
    if let Some(id) = sessions::cookie(headers, base)
        && let Err(e) = backend.close_session(&id).await
    {
        return error_page(e);
    }
    redirect(StatusCode::SEE_OTHER, "/users/sign_in", Some(&session_cookie(base, "", 0)))
}

/// A file from an archive as it is opened: inline when a browser can show it (unless a
/// download was asked for), and in the sandbox unless served from the artifacts origin.
fn for_browser(mut response: Response, sandbox: bool, download: bool) -> Response {
    let shown = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| {
        t.starts_with("text/") || t.starts_with("image/") || t == "application/pdf" || t == "application/json"
    });
    let headers = response.headers_mut();
    if shown && !download {
        headers.remove(header::CONTENT_DISPOSITION);
    }
    if sandbox {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(render::FILE_CSP));
    } else {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'"));
    }
    render::common(headers);
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
        assert!(matches!(route("/g/p/-/jobs/7/artifacts/raw/a"), Some(Ok(Page::Raw { .. }))));
        assert!(route("/api/v4/nothing").is_none());
        assert!(route("/g/p/-/jobs/7/artifacts/other").is_none());
        assert!(matches!(route("/g/p/-/pipelines/9"), Some(Ok(Page::Jobs { pipeline: Some(9), .. }))));
        assert!(route("/g/p/-/pipelines/9/builds").is_none(), "GitLab's own pages pass through a proxy");
        assert!(is_page("/users/sign_in") && is_page("/g/p/-/jobs") && !is_page("/api/v4/version"));
    }

    #[test]
    fn the_lists_of_the_last_four_archives_are_kept_each_under_its_own_key() {
        let trees: Trees<&str> = Trees::default();
        let made = std::cell::Cell::new(0);
        let list = |key: &'static str| {
            trees
                .of(key, || {
                    made.set(made.get() + 1);
                    let mut listed = Listed::default();
                    listed.push(&format!("{key}/"), None, None);
                    Ok(listed)
                })
                .unwrap()
        };
        let paths = |listed: &Listed| listed.iter().map(|(p, _, _)| p.to_owned()).collect::<Vec<_>>();
        assert_eq!(paths(&list("a")), ["a/"]);
        assert_eq!(paths(&list("b")), ["b/"], "another key, another list");
        assert_eq!((paths(&list("a")), made.get()), (vec!["a/".to_owned()], 2), "kept: not made again");
        for key in ["c", "d", "e"] {
            list(key);
        }
        list("a");
        assert_eq!(made.get(), 5, "a was among the last four: kept");
        list("b");
        assert_eq!(made.get(), 6, "b was not: made again");
        assert!(trees.of("x", || Err(ApiError::NotFound("Not found"))).is_err(), "a failure is not kept");
        assert!(trees.of("x", || Ok(Listed::default())).is_ok());
    }

    #[test]
    fn the_return_address_is_a_local_path_by_a_strict_grammar() {
        let table = [
            ("/", "/"),
            ("/g/p/-/jobs", "/g/p/-/jobs"),
            ("/a%41b?x=1#y", "/a%41b?x=1#y"),
            ("/a%20b", "/"),
            ("/%41", "/%41"),
            ("//evil.example/x", "/"),
            ("/\\evil.example", "/"),
            ("/\t/evil.example/phish", "/"),
            ("/\n/evil.example", "/"),
            ("/ /evil.example", "/"),
            ("/%09/evil.example", "/"),
            ("/%2F/evil.example", "/"),
            ("/%2f%2fevil.example", "/"),
            ("/%5C/evil.example", "/"),
            ("/%252F/evil.example", "/"),
            ("/%25252F/evil.example", "/"),
            ("/a\u{3000}b", "/"),
            ("/a%E3%80%80b", "/"),
            ("/a%C2%85b", "/"),
            ("/%FF", "/"),
            ("/a\u{7f}", "/"),
            ("", "/"),
            ("evil.example", "/"),
            ("https://evil.example/", "/"),
            ("%2Fevil", "/"),
            ("%2F%2Fevil.example", "/"),
            ("/\u{202e}/x", "/"),
            ("/%E2%80%AE/x", "/"),
            ("/a%E2%80%8Bb", "/"),
            ("/caf%C3%A9", "/caf%C3%A9"),
        ];
        for (given, expected) in table {
            assert_eq!(return_to(Some(given)), expected, "{given:?}");
        }
        assert_eq!(return_to(None), "/");
    }

    #[test]
    fn files_open_by_kind_and_text_is_told_from_binary() {
        assert_eq!(kind("report/index.html"), Kind::AsItIs);
        assert_eq!(kind("a/b.tar.GZ"), Kind::AsItIs);
        assert_eq!(kind("shot.png"), Kind::Image);
        assert_eq!(kind("build.log"), Kind::Text);
        assert_eq!(kind("Makefile"), Kind::Unknown);
        assert!(!binary("héllo\n".as_bytes()));
        assert!(!binary(&"é".as_bytes()[..1]), "a character cut at the end is still text");
        assert!(binary(b"ab\0cd"));
        assert!(binary(&[0xff, b'a']));
    }
}
