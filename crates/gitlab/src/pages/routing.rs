//! Which page a path asks for, what kind of file a name is, and the links between pages.

use axum::http::{HeaderMap, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::error::ApiResult;
use crate::target::id_param;

/// What a path segment keeps unescaped in a link: RFC 3986's unreserved characters
/// only (every other byte, `&`, `#`, `?`, `%`, `;`, `\\`, quotes, spaces, `/` and every
/// byte of a non-ASCII character, is percent-encoded).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What a path keeps unescaped as the `return_to` parameter: the unreserved characters
/// and its slashes.
pub(super) const RETURN_TO: &AsciiSet = &SEGMENT.remove(b'/');

/// A path for a link: each `/`-separated segment percent-encoded ([`SEGMENT`]), so that
/// the URL names exactly that path (HTML-escape it too when it goes into a page).
pub(super) fn link_path(path: &str) -> String {
    path.split('/').map(|s| utf8_percent_encode(s, SEGMENT).to_string()).collect::<Vec<_>>().join("/")
}

/// A page route, or `None` for a path that is none.
pub(super) enum Page {
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
    /// A file read through a grant ([`PageSource::grant`](super::PageSource::grant)).
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
pub fn is_page(path: &str) -> bool {
    matches!(path, "/users/sign_in" | "/users/sign_out") || route(path).is_some()
}

/// Parses a page's path; the project path and the directory decoded once, a file's path
/// kept raw for the path rule.
pub(super) fn route(path: &str) -> Option<ApiResult<Page>> {
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
pub(super) enum Kind {
    /// As it is, in one click: what a browser renders (HTML, SVG, PDF) or only downloads.
    AsItIs,
    /// In a page, as an image.
    Image,
    /// In a page, as text.
    Text,
    /// Looked at first: text in a page, anything else as it is.
    Unknown,
}

/// A file's [`Kind`] by its name's extension. Images are the names the single-file API
/// serves as an image (`artifact_gitlab::entry`'s one media-type table, Workhorse's), so
/// that a page never shows as an image what its URL serves as something else.
pub(super) fn kind(name: &str) -> Kind {
    let base = name.rsplit('/').next().unwrap_or(name);
    match crate::entry::content_type(base) {
        "image/svg+xml" => return Kind::AsItIs,
        image if image.starts_with("image/") => return Kind::Image,
        _ => {}
    }
    let ext = base.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" | "xhtml" | "pdf" | "zip" | "gz" | "tgz" | "tar" | "bz2" | "xz" | "zst" | "7z" | "jar"
        | "war" | "whl" | "deb" | "rpm" | "apk" | "exe" | "dll" | "so" | "dylib" | "a" | "o" | "bin" | "wasm"
        | "class" | "pyc" | "iso" | "dmg" | "img" => Kind::AsItIs,
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
    pub(super) project: String,
    pub(super) job: i64,
    /// `<base>/<project>` (its jobs and pipelines are below it).
    pub(super) project_page: String,
    /// `<base>/<project>/-/jobs/<id>/artifacts` (the pages).
    pub(super) pages: String,
    /// Where files are opened as they are: `<files>/<project>/-/jobs/<id>/artifacts/raw`,
    /// or `.../view/<grant>` for a signed-in browser.
    pub(super) open_root: String,
    /// The archive's download (endpoint 5).
    pub(super) archive: String,
}

impl Links {
    pub(super) fn new(base: &str, files: &str, project: &str, job: i64, grant: Option<&str>) -> Links {
        let path = link_path(project);
        let open_root = match grant {
            Some(grant) => format!("{files}/{path}/-/jobs/{job}/artifacts/view/{grant}"),
            None => format!("{files}/{path}/-/jobs/{job}/artifacts/raw"),
        };
        let id = utf8_percent_encode(project, percent_encoding::NON_ALPHANUMERIC);
        Links {
            project: project.to_owned(),
            job,
            project_page: format!("{base}/{path}"),
            pages: format!("{base}/{path}/-/jobs/{job}/artifacts"),
            open_root,
            archive: format!("{base}/api/v4/projects/{id}/jobs/{job}/artifacts"),
        }
    }

    /// The listing's link for the file at `path`: opened as it is, or its page.
    pub(super) fn file(&self, path: &str) -> String {
        match kind(path) {
            Kind::AsItIs => self.open(path),
            _ => format!("{}/file/{}", self.pages, link_path(path)),
        }
    }

    /// The file at `path` as it is.
    pub(super) fn open(&self, path: &str) -> String {
        format!("{}/{}", self.open_root, link_path(path))
    }
}

/// Whether a request with `headers` was made to the artifacts origin `origin` (by its
/// `Host`).
pub fn on_artifacts_origin(origin: Option<&str>, headers: &HeaderMap) -> bool {
    origin.is_some_and(|origin| {
        let origin_host = origin.split_once("://").map_or(origin, |(_, host)| host);
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        host.is_some_and(|host| host.eq_ignore_ascii_case(origin_host))
    })
}
