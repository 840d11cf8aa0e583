//! Pages for people at GitLab's web URLs (server-rendered, no JavaScript), over a
//! [`PageSource`]: the same pages and the same rules whether they read a server's own
//! records and blobs or a proxy's upstream. [`visit`] answers a page request; the source
//! answers the questions a page asks (who signed in, may this visitor read that job's
//! archive, a folder of it, a page of jobs, one entry), each as one typed call. Anonymous
//! for public projects; otherwise a browser signs in at `/users/sign_in` with a personal
//! access token, which the source keeps behind an opaque session cookie ([`session_id`]:
//! a server keeps sessions in its store, digests only, so that every replica knows them;
//! a proxy keeps them in memory and sends the token upstream as the caller's
//! `PRIVATE-TOKEN`), and a visitor who may not see a page is sent there first:
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
//!   browser (a sandboxed report sends no cookie; see [`PageSource::grant`]).
//! - `GET /<project path>/-/jobs/artifacts/<ref>/browse[/<dir>]?job=<name>`: the same folder
//!   of the newest successful such job on the ref (a redirect to its page by id).
//! - `GET /<project path>/-/jobs` and `/<project path>/-/pipelines/<id>`: the recent jobs
//!   (or a pipeline's) with their status and a link to browse their artifacts.
//!
//! Every name from an archive is escaped, and every page carries a CSP that allows no
//! script, `nosniff` and `frame-ancestors 'none'`.

mod listing;
mod render;
mod routing;
mod session;
mod source;

use self::listing::SNIFF;
pub use self::listing::{
    Children, Directory, Expiry, JOBS_PER_PAGE, JobHead, JobList, JobRow, Listed, PER_PAGE, Row, SHOW_MAX, Trees,
    VERIFY_MAX, Who,
};
pub use self::render::{minutes, minutes_of, unix_of};
use self::routing::*;
pub use self::routing::{is_page, on_artifacts_origin};
use self::session::*;
pub use self::session::{
    GRANT_TTL, GRANTS_PER_TOKEN, MAX_SESSIONS, SECURE_COOKIE, SESSION_TTL, SESSIONS_PER_TOKEN, new_id, session_cookie,
    session_id,
};
pub use self::source::PageSource;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use percent_encoding::utf8_percent_encode;

use self::render::{Account, Shown, error_page, found, html_page, sign_in_page};

use crate::credentials::{CREDENTIAL_HEADERS, Credential};
use crate::entry::artifact_path;
use crate::error::{ApiError, ApiResult};
use crate::query::Query;

/// A page request, answered from `source`: the sign-in pages, a page, or `404`. `body` is
/// the request's (a sign-in form): read it with a bound first. Put the
/// [`guard`](crate::guard::guard) middleware in front (the request-path rule), and answer
/// nothing but these pages' files on the artifacts origin ([`on_artifacts_origin`]).
pub async fn visit<S: PageSource>(
    source: &S,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let reading = method == Method::GET || method == Method::HEAD;
    let query = Query::parse(uri.query());
    let base = source.base(headers);
    let on_artifacts_origin = on_artifacts_origin(source.artifacts_origin(), headers);
    match (uri.path(), reading) {
        ("/users/sign_in" | "/users/sign_out", _) if on_artifacts_origin => {
            return ApiError::NotFound("Not Found").into_response();
        }
        ("/users/sign_in", true) => return sign_in_page(&return_to(query.get("return_to")), None, StatusCode::OK),
        ("/users/sign_in", false) if method == Method::POST => return sign_in(source, headers, &base, body).await,
        ("/users/sign_out", false) if method == Method::POST => return sign_out(source, headers, &base).await,
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
    let files = source.artifacts_origin().map(str::to_owned).unwrap_or_else(|| base.clone());
    let images = source.artifacts_origin();
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
    let session = match session_id(&headers, &base) {
        Some(id) if !presented => match source.session(&id).await {
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
        Account::SignedIn
    } else if anonymous {
        Account::Anonymous { here: utf8_percent_encode(uri.path(), RETURN_TO).to_string() }
    } else {
        Account::Presented
    };
    let place = Place { base: &base, files: &files, session: session.as_ref(), who: &who };
    let page_number = || who.query.get("page").and_then(|p| p.trim().parse::<u64>().ok()).unwrap_or(1).max(1);
    let answer = match page {
        Ok(Page::Browse { project, job, dir }) => {
            let listed = futures_util::future::join(
                source.directory(&who, &project, job, &dir, page_number() as usize),
                source.heading(&who, &project, job),
            );
            match listed.await {
                (Ok(directory), head) => place
                    .links(source, &project, job)
                    .await
                    .map(|l| html_page(&render::listing(&directory, head.as_ref(), &l, &account), None)),
                (Err(e), _) => Err(e),
            }
        }
        Ok(Page::ByRef { project, ref_name, dir }) => match who.query.get("job").filter(|j| !j.is_empty()) {
            Some(job) => source.latest(&who, &project, &ref_name, job).await.map(|id| {
                let dir = if dir.is_empty() { String::new() } else { format!("/{}", link_path(&dir)) };
                found(&format!("{base}/{}/-/jobs/{id}/artifacts/browse{dir}", link_path(&project)))
            }),
            None => Err(ApiError::InvalidParam("job is missing".into())),
        },
        Ok(Page::Jobs { project, pipeline }) => {
            let number = page_number();
            source
                .jobs(&who, &project, pipeline, number)
                .await
                .map(|list| html_page(&render::jobs(&list, &base, pipeline, number, &account), None))
        }
        Ok(Page::File { project, job, raw_path }) => {
            file_page(source, &who, &place, &project, job, &raw_path, &account, images).await
        }
        Ok(Page::Raw { project, job, raw_path }) if session.is_some() => match artifact_path(&raw_path) {
            Ok(_) => place.links(source, &project, job).await.map(|links| {
                let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
                found(&format!("{}/{raw_path}{query}", links.open_root))
            }),
            Err(e) => Err(e),
        },
        Ok(Page::Raw { project, job, raw_path }) => match artifact_path(&raw_path) {
            Ok(path) => source.entry(&who, &project, job, &path).await.map(|r| for_browser(r, sandbox, download)),
            Err(e) => Err(e),
        },
        Ok(Page::View { project, job, grant, raw_path }) => match source.granted(&grant).await {
            Ok(Some((credential, granted, granted_job))) if granted == project && granted_job == job => {
                let who = who.with_credential(credential);
                match artifact_path(&raw_path) {
                    Ok(path) => {
                        source.entry(&who, &project, job, &path).await.map(|r| for_browser(r, sandbox, download))
                    }
                    Err(e) => Err(e),
                }
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
    async fn links<S: PageSource>(&self, source: &S, project: &str, job: i64) -> ApiResult<Links> {
        let grant = match self.session {
            Some((id, credential)) => {
                source.readable(self.who, project, job).await?;
                Some(source.grant(id, credential, project, job).await?)
            }
            None => None,
        };
        Ok(Links::new(self.base, self.files, project, job, grant.as_deref()))
    }
}

/// A file's page (`.../artifacts/file/<path>`): text or an image shown in it; anything
/// else sent to the file as it is.
#[allow(clippy::too_many_arguments)]
async fn file_page<S: PageSource>(
    source: &S,
    who: &Who,
    place: &Place<'_>,
    project: &str,
    job: i64,
    raw_path: &str,
    account: &Account,
    images: Option<&str>,
) -> ApiResult<Response> {
    // The path rule first, for every route.
    let parsed = artifact_path(raw_path)?;
    let path = parsed.as_str();
    let kind = kind(path);
    let text = match kind {
        Kind::AsItIs => return place.links(source, project, job).await.map(|l| found(&l.open(path))),
        Kind::Image => {
            let links = place.links(source, project, job).await?;
            let head = source.heading(who, project, job).await;
            return Ok(html_page(&render::file(&links, head.as_ref(), path, Shown::Image, account), images));
        }
        Kind::Text | Kind::Unknown => {
            let read = async { read_text(source.entry(&who.bare(), project, job, &parsed).await?, kind).await };
            let (text, head) = futures_util::future::join(read, source.heading(who, project, job)).await;
            (text?, head)
        }
    };
    let (text, head) = text;
    let links = place.links(source, project, job).await?;
    let shown = match &text {
        Read::Text { bytes, total } => Shown::Text { text: &String::from_utf8_lossy(bytes), total: *total },
        Read::TooLarge => Shown::TooLarge { at_least: VERIFY_MAX },
        Read::Binary => return Ok(found(&links.open(path))),
    };
    Ok(html_page(&render::file(&links, head.as_ref(), path, shown, account), images))
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
        assert_eq!(kind("a/b.AVIF"), Kind::Image);
        assert_eq!(kind("favicon.ico"), Kind::Unknown, "not served as an image: not shown as one");
        assert_eq!(kind("plot.svg"), Kind::AsItIs);
        assert_eq!(kind("build.log"), Kind::Text);
        assert_eq!(kind("Makefile"), Kind::Unknown);
        assert!(!binary("héllo\n".as_bytes()));
        assert!(!binary(&"é".as_bytes()[..1]), "a character cut at the end is still text");
        assert!(binary(b"ab\0cd"));
        assert!(binary(&[0xff, b'a']));
    }
}
