//! The pages' HTML: every name from an archive or a job escaped, and isolated with `<bdi>`
//! (a right-to-left mark in one name never reorders the rest of a row).

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{Directory, JobList, Links};
use crate::error::ApiError;

/// The CSP of a file from an archive: a sandbox with scripts, forms and popups but never
/// the server's origin.
pub(super) const FILE_CSP: &str =
    "sandbox allow-scripts allow-forms allow-popups allow-downloads; frame-ancestors 'none'";

/// What a path segment keeps unescaped in a link: RFC 3986's unreserved characters
/// only (every other byte, `&`, `#`, `?`, `%`, `;`, `\\`, quotes, spaces, `/` and every
/// byte of a non-ASCII character, is percent-encoded).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What a path keeps unescaped as the `return_to` parameter: the unreserved characters
/// and its slashes.
pub(super) const RETURN_TO: &AsciiSet = &SEGMENT.remove(b'/');

const STYLE: &str = "body{font:14px/1.5 system-ui,sans-serif;margin:2em;color:#222}\
a{color:#1f5fbf;text-decoration:none}a:hover{text-decoration:underline}\
table{border-collapse:collapse;min-width:40em}th,td{text-align:left;padding:.25em 1em .25em 0;border-bottom:1px solid #eee}\
td:nth-child(2){text-align:right;font-variant-numeric:tabular-nums}tr.dir a{font-weight:600}\
.crumbs{margin-bottom:1em;font-size:16px}.pages{margin-top:1em}.account{float:right}\
pre{background:#f6f8fa;padding:1em;overflow:auto;white-space:pre-wrap;word-break:break-all;font:13px/1.45 ui-monospace,monospace}\
.note{color:#666}img.shown{max-width:100%;border:1px solid #eee}";

/// `text` with `&`, `<`, `>`, `"` and `'` escaped.
pub(super) fn escape(text: &str) -> String {
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

/// A path for a link: each `/`-separated segment percent-encoded ([`SEGMENT`]), so that
/// the URL names exactly that path (HTML-escape it too when it goes into a page).
pub(super) fn link_path(path: &str) -> String {
    path.split('/').map(|s| utf8_percent_encode(s, SEGMENT).to_string()).collect::<Vec<_>>().join("/")
}

/// A time for people, to the minute: `2026-12-04 18:51`.
pub fn minutes(unix_seconds: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix_seconds) else { return String::new() };
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    t.format(&format).unwrap_or_default()
}

/// An ISO 8601 time (as the API writes them) for people, to the minute.
pub fn minutes_of(iso: &str) -> String {
    iso.get(..16).map(|s| s.replacen('T', " ", 1)).unwrap_or_else(|| iso.to_owned())
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

/// A page's start, up to and including `<body>`: `title` (escaped) and the style.
pub(super) fn head(title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    )
}

/// An error as a page: its status, and what it says in words.
pub(super) fn error_page(e: ApiError) -> Response {
    let status = e.into_response().status();
    let text = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    let body = format!("{}<h1>{text}</h1></body></html>", head(&text));
    let mut response = html_page(&body, None);
    *response.status_mut() = status;
    response
}

/// The sign-in page: a personal access token, kept on the server behind a session cookie.
pub(super) fn sign_in_page(return_to: &str, problem: Option<&str>, status: StatusCode) -> Response {
    let problem = problem.map(|p| format!("<p class=\"problem\">{}</p>", escape(p))).unwrap_or_default();
    let body = format!(
        "{}<h1>Sign in</h1>{problem}<form method=\"post\" action=\"/users/sign_in\">\
         <label>Personal access token (read_api or api) <input type=\"password\" name=\"token\" autocomplete=\"off\" required autofocus></label>\
         <input type=\"hidden\" name=\"return_to\" value=\"{}\"> <button type=\"submit\">Sign in</button></form>\
         <p>The token stays on this server; your browser keeps only a session cookie, for {} hours.</p></body></html>",
        head("Sign in"),
        escape(return_to),
        super::SESSION_TTL.as_secs() / 3600
    );
    let mut response = html_page(&body, None);
    *response.status_mut() = status;
    response
}

/// Breadcrumbs of `path` (a folder ending in `/`, or a file) below the archive's root: each
/// folder a link to its page, a file's own name plain.
fn crumbs(out: &mut String, links: &Links, path: &str) {
    let _ = write!(out, "<nav class=\"crumbs\"><a href=\"{}/browse\">artifacts</a>", escape(&links.pages));
    let mut walked = String::new();
    let mut segments = path.split('/').filter(|s| !s.is_empty()).peekable();
    while let Some(segment) = segments.next() {
        walked.push_str(segment);
        if segments.peek().is_none() && !path.ends_with('/') {
            let _ = write!(out, " / <bdi>{}</bdi>", escape(segment));
            break;
        }
        let _ = write!(
            out,
            " / <a href=\"{}\"><bdi>{}</bdi></a>",
            escape(&format!("{}/browse/{}", links.pages, link_path(&walked))),
            escape(segment)
        );
        walked.push('/');
    }
    out.push_str("</nav>");
}

/// A directory's page.
pub(super) fn listing(directory: &Directory, links: &Links, account: &str) -> String {
    let mut out = String::new();
    let title = format!("artifacts/{} · job {} · {}", directory.dir, links.job, links.project);
    let _ = write!(out, "{}{account}", head(&title));
    crumbs(&mut out, links, &directory.dir);
    let size = directory.archive_size.map(|s| format!(" ({})", human(s))).unwrap_or_default();
    let _ = write!(out, "<p><a href=\"{}\" download>Download artifacts archive</a>{size}</p>", escape(&links.archive));
    out.push_str("<table><thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr></thead><tbody>");
    if !directory.dir.is_empty() {
        let parent = directory.dir.trim_end_matches('/').rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        let href = if parent.is_empty() {
            format!("{}/browse", links.pages)
        } else {
            format!("{}/browse/{}", links.pages, link_path(parent))
        };
        let _ = write!(out, "<tr><td><a href=\"{}\">..</a></td><td></td><td></td></tr>", escape(&href));
    }
    for row in &directory.rows {
        let full = format!("{}{}", directory.dir, row.name);
        let (href, shown) = if row.folder {
            (format!("{}/browse/{}", links.pages, link_path(&full)), format!("{}/", escape(&row.name)))
        } else {
            (links.file(&full), escape(&row.name))
        };
        let class = if row.folder { "dir" } else { "file" };
        let size = if row.folder { String::new() } else { row.size.map(human).unwrap_or_default() };
        let time = row.modified.map(minutes).unwrap_or_default();
        let _ = write!(
            out,
            "<tr class=\"{class}\"><td><a href=\"{}\"><bdi>{shown}</bdi></a></td><td>{size}</td><td>{}</td></tr>",
            escape(&href),
            escape(&time)
        );
    }
    out.push_str("</tbody></table>");
    let here = if directory.dir.is_empty() {
        format!("{}/browse", links.pages)
    } else {
        format!("{}/browse/{}", links.pages, link_path(directory.dir.trim_end_matches('/')))
    };
    pager(&mut out, &here, directory.page as u64, directory.pages as u64);
    out.push_str("</body></html>");
    out
}

/// "Page N of M" with links to the neighbours, when there is more than one page.
fn pager(out: &mut String, here: &str, page: u64, pages: u64) {
    if pages <= 1 {
        return;
    }
    let here = escape(here);
    let _ = write!(out, "<nav class=\"pages\">Page {page} of {pages}");
    if page > 1 {
        let _ = write!(out, " · <a rel=\"prev\" href=\"{here}?page={}\">Previous</a>", page - 1);
    }
    if page < pages {
        let _ = write!(out, " · <a rel=\"next\" href=\"{here}?page={}\">Next</a>", page + 1);
    }
    out.push_str("</nav>");
}

/// The page of a job list: status, name, stage, ref, pipeline, when it finished, and a
/// link to browse its artifacts when it has some.
pub(super) fn jobs(list: &JobList, base: &str, pipeline: Option<i64>, page: u64, account: &str) -> String {
    let project_url = format!("{base}/{}", link_path(&list.project));
    let project_link = escape(&project_url);
    let title = match pipeline {
        Some(id) => format!("Pipeline #{id} · {}", list.project),
        None => format!("Jobs · {}", list.project),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "{}{account}\
         <nav class=\"crumbs\"><a href=\"{project_link}/-/jobs\">{}</a></nav><h1>{}</h1>\
         <table><thead><tr><th>Status</th><th>Job</th><th>Stage</th><th>Ref</th><th>Pipeline</th><th>Finished (UTC)</th><th>Artifacts</th></tr></thead><tbody>",
        head(&title),
        escape(&list.project),
        escape(&title)
    );
    for job in &list.rows {
        let artifacts = if job.browsable {
            format!("<a href=\"{project_link}/-/jobs/{}/artifacts/browse\">Browse</a>", job.id)
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<tr><td class=\"status {status}\">{status}</td><td>#{id} <bdi>{name}</bdi></td><td><bdi>{stage}</bdi></td>\
             <td><bdi>{ref_name}</bdi></td><td><a href=\"{project_link}/-/pipelines/{pipeline}\">#{pipeline}</a></td>\
             <td>{finished}</td><td>{artifacts}</td></tr>",
            status = escape(&job.status),
            id = job.id,
            name = escape(&job.name),
            stage = escape(&job.stage),
            ref_name = escape(&job.ref_name),
            pipeline = job.pipeline,
            finished = escape(job.finished.as_deref().unwrap_or("")),
        );
    }
    out.push_str("</tbody></table>");
    let here = match pipeline {
        Some(id) => format!("{project_url}/-/pipelines/{id}"),
        None => format!("{project_url}/-/jobs"),
    };
    pager(&mut out, &here, page, list.pages);
    out.push_str("</body></html>");
    out
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
pub(super) fn file(links: &Links, path: &str, shown: Shown<'_>, account: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let mut out = String::new();
    let _ = write!(out, "{}{account}", head(&format!("{name} · job {} · {}", links.job, links.project)));
    crumbs(&mut out, links, path);
    let open = escape(&links.open(path));
    let _ = write!(out, "<p><a href=\"{open}\">Open raw</a> · <a href=\"{open}?download\">Download</a>");
    match shown {
        Shown::Text { text, total } => {
            let _ = write!(out, " · {}</p>", human(total));
            if (text.len() as u64) < total {
                let _ = write!(
                    out,
                    "<p class=\"note\">The first {} of {} are shown; open it raw to see all of it.</p>",
                    human(text.len() as u64),
                    human(total)
                );
            }
            let _ = write!(out, "<pre>{}</pre>", escape(text));
        }
        Shown::TooLarge { at_least } => {
            let _ = write!(
                out,
                "</p><p class=\"note\">This file is larger than {}, too large to show in a page: open it raw or download it.</p>",
                human(at_least)
            );
        }
        Shown::Image => {
            let _ = write!(out, "</p><p><img class=\"shown\" src=\"{open}\" alt=\"{}\"></p>", escape(name));
        }
    }
    out.push_str("</body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_sizes_read_for_people() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(link_path("a b/c#d?e"), "a%20b/c%23d%3Fe");
        assert_eq!(link_path("a&amp;b.txt"), "a%26amp%3Bb.txt");
        assert_eq!(link_path("%41/x\\y/'\"<>`"), "%2541/x%5Cy/%27%22%3C%3E%60");
        assert_eq!(link_path("\u{200f}é/-._~"), "%E2%80%8F%C3%A9/-._~");
        assert_eq!(human(900), "900 B");
        assert_eq!(human(2560), "2.5 KiB");
    }
}
