//! The pages' HTML, as `maud` templates checked at compile time: every name from an archive
//! or a job escaped (every splice is, unless marked otherwise), and isolated with `<bdi>` (a
//! right-to-left mark in one name never reorders the rest of a row).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::routing::{Links, link_path};
use super::{Directory, Expiry, JobHead, JobList};
use crate::error::ApiError;

/// The CSP of a file from an archive: a sandbox with scripts, forms and popups but never
/// the server's origin.
pub(super) const FILE_CSP: &str =
    "sandbox allow-scripts allow-forms allow-popups allow-downloads; frame-ancestors 'none'";

const STYLE: &str = "body{font:14px/1.5 system-ui,sans-serif;margin:2em;color:#222}\
a{color:#1f5fbf;text-decoration:none}a:hover{text-decoration:underline}\
table{border-collapse:collapse;min-width:40em}th,td{text-align:left;padding:.25em 1em .25em 0;border-bottom:1px solid #eee}\
td:nth-child(2){text-align:right;font-variant-numeric:tabular-nums}tr.dir a{font-weight:600}\
.crumbs{margin-bottom:1em;font-size:16px}.pages{margin-top:1em}.account{float:right}\
pre{background:#f6f8fa;padding:1em;overflow:auto;white-space:pre-wrap;word-break:break-all;font:13px/1.45 ui-monospace,monospace}\
.note{color:#666}img.shown{max-width:100%;border:1px solid #eee}\
header.job h1{font-size:20px;margin:.2em 0}header.job p{margin:.2em 0 1em;color:#444}\
.status{font-weight:600}.status.success{color:#1f7f3f}.status.failed{color:#b3261e}";

/// A time for people, to the minute: `2026-12-04 18:51`.
pub fn minutes(unix_seconds: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix_seconds) else { return String::new() };
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    t.format(&format).unwrap_or_default()
}

/// An ISO 8601 time (as the API writes them, in any offset) for people, to the minute, in
/// UTC; a text that is not one is shown as it is, cut at the minute.
pub fn minutes_of(iso: &str) -> String {
    match unix_of(iso) {
        Some(seconds) => minutes(seconds),
        None => iso.get(..16).map(|s| s.replacen('T', " ", 1)).unwrap_or_else(|| iso.to_owned()),
    }
}

/// An RFC 3339 time (the API's) as Unix seconds.
pub fn unix_of(iso: &str) -> Option<i64> {
    time::OffsetDateTime::parse(iso, &time::format_description::well_known::Rfc3339).ok().map(|t| t.unix_timestamp())
}

/// Bytes for people: `2.5 KiB`.
pub(super) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (mut value, mut unit) = (bytes as f64, 0);
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// `302 Found` to `target`.
pub(super) fn found(target: &str) -> Response {
    redirect(StatusCode::FOUND, target, None)
}

/// A redirect (`status`) to `target`, setting `cookie` if given.
pub(super) fn redirect(status: StatusCode, target: &str, cookie: Option<&str>) -> Response {
    let mut response = status.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_str(target).unwrap_or(HeaderValue::from_static("/")));
    if let Some(Ok(cookie)) = cookie.map(HeaderValue::from_str) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    common(headers);
    response
}

/// The headers every page and every file carries besides its CSP.
pub(super) fn common(headers: &mut axum::http::HeaderMap) {
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
}

/// A page: no script, styles inline only, images from this origin and `images` (the
/// artifacts origin), nothing framing it, never stored.
pub(super) fn html_page(body: &str, images: Option<&str>) -> Response {
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'{}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        images.map(|origin| format!(" {origin}")).unwrap_or_default()
    );
    let mut response = (StatusCode::OK, body.to_owned()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    let csp = HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static("default-src 'none'"));
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    common(headers);
    response
}

/// Who the visitor is, as the corner of a page says: signed in (a sign-out button),
/// anonymous (a sign-in link that comes back `here`, a path percent-encoded by
/// `RETURN_TO`), or presenting a credential of its own (nothing).
pub(super) enum Account {
    SignedIn,
    Anonymous { here: String },
    Presented,
}

fn account(account: &Account) -> Markup {
    html! {
        @match account {
            Account::SignedIn => form class="account" method="post" action="/users/sign_out" {
                button type="submit" { "Sign out" }
            },
            Account::Anonymous { here } => a class="account" href={ "/users/sign_in?return_to=" (here) } { "Sign in" },
            Account::Presented => {},
        }
    }
}

/// A whole page: `title`, the style, and `body`.
fn document(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

/// An error as a page: its status, and what it says in words.
pub(super) fn error_page(e: ApiError) -> Response {
    let status = e.into_response().status();
    let text = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    let mut response = html_page(&document(&text, html! { h1 { (text) } }), None);
    *response.status_mut() = status;
    response
}

/// The sign-in page: a personal access token, kept on the server behind a session cookie.
pub(super) fn sign_in_page(return_to: &str, problem: Option<&str>, status: StatusCode) -> Response {
    let hours = super::SESSION_TTL.as_secs() / 3600;
    let body = html! {
        h1 { "Sign in" }
        @if let Some(problem) = problem { p class="problem" { (problem) } }
        form method="post" action="/users/sign_in" {
            label {
                "Personal access token (read_api or api) "
                input type="password" name="token" autocomplete="off" required autofocus;
            }
            input type="hidden" name="return_to" value=(return_to);
            " "
            button type="submit" { "Sign in" }
        }
        p { "The token stays on this server; your browser keeps only a session cookie, for " (hours) " hours." }
    };
    let mut response = html_page(&document("Sign in", body), None);
    *response.status_mut() = status;
    response
}

/// Breadcrumbs of `path` (a folder ending in `/`, or a file) below the archive's root: each
/// folder a link to its page, a file's own name plain.
fn crumbs(links: &Links, path: &str) -> Markup {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let folder = |at: usize| format!("{}/browse/{}", links.pages, link_path(&segments[..=at].join("/")));
    html! {
        nav class="crumbs" {
            a href={ (links.pages) "/browse" } { "artifacts" }
            @for (at, segment) in segments.iter().enumerate() {
                " / "
                @if at + 1 == segments.len() && !path.ends_with('/') {
                    bdi { (segment) }
                } @else {
                    a href=(folder(at)) { bdi { (segment) } }
                }
            }
        }
    }
}

/// The page of folder `dir` (`""` or ending in `/`).
fn folder_url(links: &Links, dir: &str) -> String {
    match dir.trim_end_matches('/') {
        "" => format!("{}/browse", links.pages),
        dir => format!("{}/browse/{}", links.pages, link_path(dir)),
    }
}

/// Where the visitor is: the project, the job (name and id), its status, ref and pipeline,
/// and when its artifacts go, as GitLab's own artifacts page says.
fn heading(head: &JobHead, links: &Links) -> Markup {
    let pipeline = format!("{}/-/pipelines/{}", links.project_page, head.pipeline);
    html! {
        header class="job" {
            div class="project" { a href={ (links.project_page) "/-/jobs" } { bdi { (links.project) } } }
            h1 { "Job " bdi { (head.name) } " #" (head.id) }
            p {
                span class={ "status " (head.status) } { (head.status) }
                " · ref " bdi class="ref" { (head.ref_name) }
                @if head.pipeline > 0 { " · pipeline " a href=(pipeline) { "#" (head.pipeline) } }
                " · "
                span class="expiry" {
                    @match &head.expiry {
                        Expiry::At(at) => { "artifacts expire " (at) " (UTC)" }
                        Expiry::Kept => { "artifacts kept: the latest of their ref, until newer ones replace them" }
                        Expiry::Never => { "artifacts never expire" }
                    }
                }
            }
        }
    }
}

/// A directory's page.
pub(super) fn listing(directory: &Directory, head: Option<&JobHead>, links: &Links, visitor: &Account) -> String {
    let title = format!("artifacts/{} · job {} · {}", directory.dir, links.job, links.project);
    let parent = directory.dir.trim_end_matches('/').rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    let body = html! {
        (account(visitor))
        @if let Some(head) = head { (heading(head, links)) }
        (crumbs(links, &directory.dir))
        p {
            a href=(links.archive) download { "Download artifacts archive" }
            @if let Some(size) = directory.archive_size { " (" (human(size)) ")" }
        }
        table {
            thead { tr { th { "Name" } th { "Size" } th { "Modified (UTC)" } } }
            tbody {
                @if !directory.dir.is_empty() {
                    tr { td { a href=(folder_url(links, parent)) { ".." } } td {} td {} }
                }
                @for row in &directory.rows {
                    @let full = format!("{}{}", directory.dir, row.name);
                    tr class=(if row.folder { "dir" } else { "file" }) {
                        @if row.folder {
                            td { a href=(folder_url(links, &full)) { bdi { (row.name) "/" } } }
                            td {}
                        } @else {
                            td { a href=(links.file(&full)) { bdi { (row.name) } } }
                            td { (row.size.map(human).unwrap_or_default()) }
                        }
                        td { (row.modified.map(minutes).unwrap_or_default()) }
                    }
                }
            }
        }
        (pager(&folder_url(links, &directory.dir), directory.page as u64, directory.pages as u64))
    };
    document(&title, body)
}

/// "Page N of M" with links to the neighbours, when there is more than one page.
fn pager(here: &str, page: u64, pages: u64) -> Markup {
    html! {
        @if pages > 1 {
            nav class="pages" {
                "Page " (page) " of " (pages)
                @if page > 1 { " · " a rel="prev" href={ (here) "?page=" (page - 1) } { "Previous" } }
                @if page < pages { " · " a rel="next" href={ (here) "?page=" (page + 1) } { "Next" } }
            }
        }
    }
}

/// The page of a job list: status, name, stage, ref, pipeline, when it finished, and a
/// link to browse its artifacts when it has some.
pub(super) fn jobs(list: &JobList, base: &str, pipeline: Option<i64>, page: u64, visitor: &Account) -> String {
    let project = format!("{base}/{}", link_path(&list.project));
    let title = match pipeline {
        Some(id) => format!("Pipeline #{id} · {}", list.project),
        None => format!("Jobs · {}", list.project),
    };
    let here = match pipeline {
        Some(id) => format!("{project}/-/pipelines/{id}"),
        None => format!("{project}/-/jobs"),
    };
    let body = html! {
        (account(visitor))
        nav class="crumbs" { a href={ (project) "/-/jobs" } { (list.project) } }
        h1 { (title) }
        table {
            thead { tr {
                th { "Status" } th { "Job" } th { "Stage" } th { "Ref" } th { "Pipeline" } th { "Finished (UTC)" }
                th { "Artifacts" }
            } }
            tbody {
                @for job in &list.rows {
                    tr {
                        td class={ "status " (job.status) } { (job.status) }
                        td { "#" (job.id) " " bdi { (job.name) } }
                        td { bdi { (job.stage) } }
                        td { bdi { (job.ref_name) } }
                        td { a href={ (project) "/-/pipelines/" (job.pipeline) } { "#" (job.pipeline) } }
                        td { (job.finished.as_deref().unwrap_or("")) }
                        td {
                            @if job.browsable {
                                a href={ (project) "/-/jobs/" (job.id) "/artifacts/browse" } { "Browse" }
                            }
                        }
                    }
                }
            }
        }
        (pager(&here, page, list.pages))
    };
    document(&title, body)
}

/// What a file's page shows of it.
pub(super) enum Shown<'a> {
    /// Its text: all of it, or the first part of a file of `total` bytes.
    Text { text: &'a str, total: u64 },
    /// Too large to show (more than `at_least` bytes).
    TooLarge { at_least: u64 },
    /// An image, from its URL.
    Image,
}

/// A file's page: its text (escaped, in `<pre>`) or its image, with links to open it as
/// it is and to download it.
pub(super) fn file(links: &Links, head: Option<&JobHead>, path: &str, shown: Shown<'_>, visitor: &Account) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let open = links.open(path);
    let body = html! {
        (account(visitor))
        @if let Some(head) = head { (heading(head, links)) }
        (crumbs(links, path))
        p {
            a href=(open) { "Open raw" } " · " a href={ (open) "?download" } { "Download" }
            @if let Shown::Text { total, .. } = shown { " · " (human(total)) }
        }
        @match shown {
            Shown::Text { text, total } => {
                @if (text.len() as u64) < total {
                    p class="note" {
                        "The first " (human(text.len() as u64)) " of " (human(total))
                        " are shown; open it raw to see all of it."
                    }
                }
                pre { (text) }
            }
            Shown::TooLarge { at_least } => p class="note" {
                "This file is larger than " (human(at_least)) ", too large to show in a page: open it raw or download it."
            },
            Shown::Image => p { img class="shown" src=(open) alt=(name); },
        }
    };
    document(&format!("{name} · job {} · {}", links.job, links.project), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_sizes_read_for_people() {
        let shown = html! { bdi { ("<script>\"a\" & 'b'</script>") } }.into_string();
        assert_eq!(shown, "<bdi>&lt;script&gt;&quot;a&quot; &amp; 'b'&lt;/script&gt;</bdi>");
        assert_eq!(link_path("a b/c#d?e"), "a%20b/c%23d%3Fe");
        assert_eq!(link_path("a&amp;b.txt"), "a%26amp%3Bb.txt");
        assert_eq!(link_path("%41/x\\y/'\"<>`"), "%2541/x%5Cy/%27%22%3C%3E%60");
        assert_eq!(link_path("\u{200f}é/-._~"), "%E2%80%8F%C3%A9/-._~");
        assert_eq!(human(900), "900 B");
        assert_eq!(human(2560), "2.5 KiB");
    }
}
