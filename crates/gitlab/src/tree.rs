//! The artifacts tree, an addition beyond GitLab: `GET /projects/:id/jobs/:job_id/artifacts/tree`
//! and `GET /projects/:id/jobs/artifacts/:ref_name/tree?job=NAME` list a folder of a job's
//! archive the way GitLab's repository tree lists a folder of a commit, from the paths a
//! server (its `metadata.gz`) or a proxy (its index of the central directory) keeps as a
//! [`Listed`].
//!
//! Entries are `{"name", "path", "type": "tree"|"blob", "mode", "size"}` (`size` for blobs),
//! folders first, then files, each by path; `recursive=true` lists every path under the
//! folder (all its folders, then all its files, as GitLab's recursive tree does). Pages are
//! GitLab's: offset (`page`, `per_page` and the `X-*` and `Link` headers) or keyset
//! (`pagination=keyset`, a `Link: <...>; rel="next"` carrying a `page_token`).

use artifact_core::ArtifactPath;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::pages::Listed;
use crate::pagination::{Page, next_link};
use crate::query::Query;

/// A tree request's parameters, parsed ([`TreeQuery::from_query`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeQuery {
    dir: String,
    recursive: bool,
    paging: Paging,
}

/// How a tree request pages its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    /// `page` and `per_page` (GitLab's `pagination=legacy`, the default).
    Offset(Page),
    /// `pagination=keyset`: `per_page` entries after the one `page_token` names (from the
    /// first without one).
    Keyset {
        /// Entries per page.
        per_page: u64,
        /// The sort key of the entry the previous page ended at.
        after: Option<Key>,
    },
    /// `pagination=none` (with `recursive=true` only, as GitLab allows): every entry.
    None,
}

/// Where an entry sorts: folders before files, then by path (without a folder's `/`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// `false` for a folder, which sorts first.
    file: bool,
    path: String,
}

impl Key {
    /// Whether the entry is a folder.
    pub fn is_folder(&self) -> bool {
        !self.file
    }

    /// The entry's path (a folder's without its `/`).
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl TreeQuery {
    /// The parameters of `q`: `path` (a folder: `""`, `dir` or `dir/`, under the path
    /// rule), `recursive`, `pagination` (`legacy`, `keyset`, or `none` with `recursive`),
    /// `page`, `per_page` and `page_token`. Anything else that is bad is
    /// `400 {"error":"<name> is invalid"}` (the path's says why).
    pub fn from_query(q: &Query) -> ApiResult<TreeQuery> {
        let raw = q.get("path").unwrap_or("");
        let folder = raw.strip_suffix('/').unwrap_or(raw);
        let dir = if folder.is_empty() {
            String::new()
        } else {
            let path =
                ArtifactPath::new(folder).map_err(|e| ApiError::InvalidParam(format!("path is invalid: {e}")))?;
            format!("{}/", path.as_str())
        };
        let recursive =
            q.bool("recursive").map_err(|_| ApiError::InvalidParam("recursive is invalid".into()))?.unwrap_or(false);
        let page = Page::from_query(q)?;
        let paging = match q.get("pagination").unwrap_or("legacy") {
            "legacy" | "" => Paging::Offset(page),
            "keyset" => {
                let after = match q.get("page_token") {
                    None | Some("") => None,
                    Some(token) => Some(
                        decode_token(token).ok_or_else(|| ApiError::InvalidParam("page_token is invalid".into()))?,
                    ),
                };
                Paging::Keyset { per_page: page.per_page(), after }
            }
            "none" if recursive => Paging::None,
            "none" => {
                return Err(ApiError::InvalidParam(
                    "pagination cannot be \"none\" unless \"recursive\" is true".into(),
                ));
            }
            _ => return Err(ApiError::InvalidParam("pagination does not have a valid value".into())),
        };
        Ok(TreeQuery { dir, recursive, paging })
    }

    /// The folder listed: `""` (the archive's root) or a path that passed the path rule,
    /// ending in `/`.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// Whether every path under the folder is listed, not only its children.
    pub fn recursive(&self) -> bool {
        self.recursive
    }

    /// Which entries of the sorted list.
    pub fn paging(&self) -> &Paging {
        &self.paging
    }
}

/// One entry as the API writes it.
#[derive(Debug, Serialize)]
struct Written<'a> {
    name: &'a str,
    path: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
}

/// The answer to `tree` over `listed` (every path of one archive): the JSON array of this
/// page's entries with GitLab's pagination headers; `404 {"message":"404 Not Found"}` if
/// the folder is not in the archive. `url` is the request's absolute URL without its
/// query, `query` its query, and `project` the path's `:id` as sent (for keyset links).
pub fn answer(listed: &Listed, tree: &TreeQuery, url: &str, query: &Query, project: &str) -> ApiResult<Response> {
    let (headers, body) = page(listed, tree, url, query, project)?;
    let mut response = (headers, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// [`answer`]'s headers and JSON body, written straight from `listed` (no document of
/// values in between, however many entries a page has).
pub fn page(
    listed: &Listed,
    tree: &TreeQuery,
    url: &str,
    query: &Query,
    project: &str,
) -> ApiResult<(HeaderMap, Vec<u8>)> {
    let dir = tree.dir.as_str();
    let mut exists = dir.is_empty();
    let mut found: Vec<(bool, &str, usize)> = Vec::new();
    for (at, path) in listed.paths() {
        exists |= path == dir;
        let wanted = if tree.recursive {
            artifact_core::metadata::is_under(path, dir)
        } else {
            artifact_core::metadata::is_child_of(path, dir)
        };
        if wanted {
            let file = !path.ends_with('/');
            found.push((file, path.trim_end_matches('/'), at));
        }
    }
    if !exists {
        return Err(ApiError::NotFound("Not Found"));
    }
    // Stable: of equal names, the first listed stays (the dedup keeps it).
    found.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    found.dedup_by(|b, a| (a.0, a.1) == (b.0, b.1));
    let (headers, rows): (HeaderMap, &[(bool, &str, usize)]) = match &tree.paging {
        Paging::Offset(page) => {
            let from = page.offset().min(found.len() as u64) as usize;
            let rows = &found[from..found.len().min(from + page.per_page() as usize)];
            (page.headers(found.len() as u64, url, query), rows)
        }
        Paging::Keyset { per_page, after } => {
            let from = match after {
                Some(key) => found.partition_point(|&(file, path, _)| (file, path) <= (key.file, key.path.as_str())),
                None => 0,
            };
            let rows = &found[from..found.len().min(from.saturating_add(*per_page as usize))];
            let headers = match rows.last() {
                Some(&(file, path, _)) if from + rows.len() < found.len() => {
                    let token = encode_token(file, path);
                    next_link(url, query, project, ("page_token", &token), &[("recursive", "false")])
                }
                _ => HeaderMap::new(),
            };
            (headers, rows)
        }
        Paging::None => (HeaderMap::new(), &found[..]),
    };
    let written = rows.iter().map(|&(file, path, at)| {
        let (_, size, mode) = listed.at(at);
        Written {
            name: path.rsplit('/').next().unwrap_or(path),
            path,
            kind: if file { "blob" } else { "tree" },
            mode: if !file {
                "040000"
            } else if mode.is_some_and(|m| m & 0o100 != 0) {
                // Git's two file modes: executable by its owner, or not.
                "100755"
            } else {
                "100644"
            },
            size: file.then(|| size.unwrap_or(0)),
        }
    });
    let mut body = Vec::with_capacity(rows.len() * 96 + 2);
    serde_json::to_writer(&mut body, &SerializeIter(std::cell::Cell::new(Some(written))))
        .map_err(ApiError::internal)?;
    Ok((headers, body))
}

/// A sequence serialized from an iterator, once.
struct SerializeIter<I>(std::cell::Cell<Option<I>>);

impl<'a, I: Iterator<Item = Written<'a>>> Serialize for SerializeIter<I> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.take().into_iter().flatten())
    }
}

/// The `page_token` after an entry: standard base64 of `{"file_name":"<path>"}` (Gitaly's
/// shape), a folder's path ending in `/`.
fn encode_token(file: bool, path: &str) -> String {
    use base64::Engine;
    let name = if file { path.to_owned() } else { format!("{path}/") };
    let json = Value::Object(Map::from_iter([("file_name".to_owned(), Value::String(name))]));
    base64::engine::general_purpose::STANDARD.encode(json.to_string())
}

/// The key a `page_token` names; `None` if it is not one.
fn decode_token(token: &str) -> Option<Key> {
    let value = crate::pagination::cursor_json(&base64::alphabet::STANDARD, token)?;
    let name = value.as_object().filter(|o| o.len() == 1)?.get("file_name")?.as_str()?;
    let (file, path) = match name.strip_suffix('/') {
        Some(folder) => (false, folder),
        None => (true, name),
    };
    (!path.is_empty()).then(|| Key { file, path: path.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(paths: &[&str]) -> Listed {
        let mut listed = Listed::default();
        for p in paths {
            let file = !p.ends_with('/');
            listed.push_with_mode(p, file.then_some(p.len() as u64), None, file.then_some(0o750));
        }
        listed
    }

    fn names(entries: &[Value]) -> Vec<&str> {
        entries.iter().map(|e| e["path"].as_str().unwrap()).collect()
    }

    fn ask(listed: &Listed, query: &str) -> ApiResult<(HeaderMap, Vec<Value>)> {
        let q = Query::parse(Some(query));
        let (headers, body) =
            page(listed, &TreeQuery::from_query(&q)?, "http://h/api/v4/projects/7/jobs/1/artifacts/tree", &q, "7")?;
        Ok((headers, serde_json::from_slice(&body).unwrap()))
    }

    const PATHS: &[&str] = &["b.txt", "a/", "a/x.txt", "a/sub/", "a/sub/y", "c/", "a.txt", "a/x.txt"];

    #[test]
    fn folders_come_first_then_files_by_path() {
        let listed = listed(PATHS);
        let (h, e) = ask(&listed, "").unwrap();
        assert_eq!(names(&e), ["a", "c", "a.txt", "b.txt"]);
        assert_eq!(e[0], serde_json::json!({"name":"a","path":"a","type":"tree","mode":"040000"}));
        assert_eq!(e[2], serde_json::json!({"name":"a.txt","path":"a.txt","type":"blob","mode":"100755","size":5}));
        assert_eq!(h.get("x-total").unwrap(), "4");
        let (_, e) = ask(&listed, "path=a&recursive=true").unwrap();
        assert_eq!(names(&e), ["a/sub", "a/sub/y", "a/x.txt"]);
        let (_, e) = ask(&listed, "path=a/").unwrap();
        assert_eq!(names(&e), ["a/sub", "a/x.txt"], "a duplicate path is listed once");
    }

    #[test]
    fn a_missing_folder_or_a_file_is_not_found_and_a_bad_path_is_refused() {
        let listed = listed(PATHS);
        assert!(matches!(ask(&listed, "path=nope"), Err(ApiError::NotFound("Not Found"))));
        assert!(matches!(ask(&listed, "path=b.txt"), Err(ApiError::NotFound(_))));
        for bad in ["path=../a", "path=a/../b", "path=%2Fa", "recursive=maybe", "pagination=other", "pagination=none"] {
            assert!(matches!(ask(&listed, bad), Err(ApiError::InvalidParam(_))), "{bad}");
        }
        assert!(matches!(ask(&listed, "pagination=keyset&page_token=nope"), Err(ApiError::InvalidParam(_))));
        assert_eq!(names(&ask(&listed, "pagination=none&recursive=true").unwrap().1).len(), 7);
    }

    #[test]
    fn keyset_pages_continue_after_their_token_and_end_without_a_link() {
        let listed = listed(PATHS);
        let mut seen = Vec::new();
        let mut query = "pagination=keyset&per_page=2&recursive=true".to_owned();
        loop {
            let (h, e) = ask(&listed, &query).unwrap();
            seen.extend(names(&e).iter().map(|s| s.to_string()));
            let Some(link) = h.get("link") else { break };
            let link = link.to_str().unwrap();
            assert!(link.ends_with(">; rel=\"next\"") && link.contains("recursive=true"), "{link}");
            let token = link.split("page_token=").nth(1).unwrap().split(['&', '>']).next().unwrap();
            let token = percent_encoding::percent_decode_str(token).decode_utf8().unwrap();
            query = format!(
                "pagination=keyset&per_page=2&recursive=true&page_token={}",
                token.replace('+', "%2B").replace('=', "%3D")
            );
        }
        assert_eq!(seen, ["a", "a/sub", "c", "a.txt", "a/sub/y", "a/x.txt", "b.txt"]);
    }
}
