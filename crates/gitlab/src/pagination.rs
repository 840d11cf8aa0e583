//! Offset pagination with GitLab's headers: `X-Page`, `X-Per-Page`, `X-Next-Page`,
//! `X-Prev-Page`, `X-Total`, `X-Total-Pages` and a `Link` header of absolute URLs that keep
//! every other query parameter; and keyset pagination (`pagination=keyset`) with GitLab's
//! cursors and its `Link: <...>; rel="next"` alone.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::{ApiError, ApiResult};
use crate::query::Query;

/// Rows per page unless asked.
const DEFAULT_PER_PAGE: u64 = 20;
/// Larger `per_page` values are silently capped.
const MAX_PER_PAGE: u64 = 100;
/// Above this many rows GitLab stops counting: no `X-Total`, `X-Total-Pages` or `rel="last"`.
const COUNT_LIMIT: u64 = 10_000;

/// The page a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    page: u64,
    per_page: u64,
}

impl Page {
    /// The page `q` asks for (`page`, `per_page`): an empty or non-positive value is the
    /// default (1, 20), a larger `per_page` than 100 is 100, a non-integer is
    /// 400 `{"error":"page is invalid"}` (or `per_page`).
    pub fn from_query(q: &Query) -> ApiResult<Page> {
        let int = |key: &str, default: u64| -> ApiResult<u64> {
            match q.get(key) {
                None | Some("") => Ok(default),
                Some(v) => match v.trim().parse::<i64>() {
                    Ok(n) if n < 1 => Ok(default),
                    Ok(n) => Ok(n as u64),
                    Err(_) => Err(ApiError::InvalidParam(format!("{key} is invalid"))),
                },
            }
        };
        let page = int("page", 1)?;
        let per_page = int("per_page", DEFAULT_PER_PAGE)?.min(MAX_PER_PAGE);
        Ok(Page { page, per_page })
    }

    /// The page, from 1.
    pub fn page(&self) -> u64 {
        self.page
    }

    /// Rows per page: from 1 to 100.
    pub fn per_page(&self) -> u64 {
        self.per_page
    }

    /// The rows before this page.
    pub fn offset(&self) -> u64 {
        (self.page - 1).saturating_mul(self.per_page)
    }

    /// The headers for this page of `total` rows; `url` is the absolute URL of the request
    /// without its query.
    pub fn headers(&self, total: u64, url: &str, query: &Query) -> HeaderMap {
        let counted = total <= COUNT_LIMIT;
        let pages = total.div_ceil(self.per_page).max(1);
        let next = (self.page < pages).then_some(self.page + 1);
        // Past the last page there is no previous page either (Kaminari's `prev_page`).
        let prev = (self.page > 1 && self.page <= pages).then(|| self.page - 1);
        let mut h = HeaderMap::new();
        let mut put = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(HeaderName::from_static(name), v);
            }
        };
        put("x-page", self.page.to_string());
        put("x-per-page", self.per_page.to_string());
        put("x-next-page", next.map(|n| n.to_string()).unwrap_or_default());
        put("x-prev-page", prev.map(|n| n.to_string()).unwrap_or_default());
        if counted {
            put("x-total", total.to_string());
            put("x-total-pages", pages.to_string());
        }
        let link = |page: u64, rel: &str| format!("<{url}?{}>; rel=\"{rel}\"", query.with_page(page));
        let mut links = Vec::new();
        if let Some(p) = prev {
            links.push(link(p, "prev"));
        }
        if let Some(n) = next {
            links.push(link(n, "next"));
        }
        links.push(link(1, "first"));
        if counted {
            links.push(link(pages, "last"));
        }
        put("link", links.join(", "));
        h
    }
}

/// A keyset page (`pagination=keyset`): newest first by id, after a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyset {
    /// Rows per page.
    pub per_page: u64,
    /// The id the previous page ended at: this page has smaller ones.
    pub before_id: Option<i64>,
}

/// What GitLab answers to a keyset request in an order it cannot page by keyset.
pub const KEYSET_UNSUPPORTED: &str = "Keyset pagination is not yet available for this type of request";

impl Keyset {
    /// The keyset page asked for, or `None` without `pagination=keyset`. Only GitLab's
    /// order for jobs is supported (`order_by=id`, `sort=desc`, the defaults): another is
    /// `Err(None)` (GitLab's 405). A cursor this server did not make is `Err(Some(400))`.
    pub fn from_query(q: &Query) -> Result<Option<Keyset>, Option<ApiError>> {
        if q.get("pagination") != Some("keyset") {
            return Ok(None);
        }
        let per_page = Page::from_query(q).map_err(Some)?.per_page();
        if q.get("order_by").is_some_and(|o| o != "id") || q.get("sort").is_some_and(|s| s != "desc") {
            return Err(None);
        }
        let before_id = match q.get("cursor") {
            None | Some("") => None,
            Some(cursor) => {
                Some(decode_cursor(cursor).ok_or_else(|| ApiError::InvalidParam("cursor is invalid".into()))?)
            }
        };
        Ok(Some(Keyset { per_page, before_id }))
    }

    /// The headers of a keyset page: only `Link` with `rel="next"`, when there is a next
    /// page, ending at `last_id`. Its URL is GitLab's: the request's parameters (with the
    /// path's `id` and the defaults of `page` and `per_page`) and the new cursor, each
    /// `key=value` escaped as Ruby's `CGI.escape` does and sorted, as Rails' `to_query`
    /// writes them.
    pub fn headers(&self, next_after: Option<i64>, url: &str, project: &str, query: &Query) -> HeaderMap {
        match next_after {
            Some(last_id) => next_link(url, query, project, ("cursor", &encode_cursor(last_id)), &[]),
            None => HeaderMap::new(),
        }
    }
}

/// GitLab's keyset `Link: <...>; rel="next"` to the page after `cursor` (its parameter name
/// and value): the request's parameters with the path's `id`, the defaults of `page` and
/// `per_page` (and `defaults`, each where the request did not send it), and the cursor,
/// each `key=value` escaped as Ruby's `CGI.escape` does and sorted, as Rails' `to_query`
/// writes them. `url` is the absolute URL of the request without its query.
pub fn next_link(
    url: &str,
    query: &Query,
    project: &str,
    cursor: (&str, &str),
    defaults: &[(&str, &str)],
) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut pairs: Vec<String> = Vec::new();
    let mut scalars: Vec<(&str, &str)> = Vec::new();
    for (key, value) in query.pairs() {
        if key == "scope" || key.ends_with("[]") {
            let key = if key == "scope" { "scope[]" } else { key };
            pairs.push(format!("{}={}", cgi_escape(key), cgi_escape(value)));
        } else if key != "id" && key != cursor.0 {
            // Repeated scalars: the last one counts.
            scalars.retain(|(k, _)| *k != key);
            scalars.push((key, value));
        }
    }
    for &(key, default) in [("page", "1"), ("per_page", "20")].iter().chain(defaults) {
        if !scalars.iter().any(|(k, _)| *k == key) {
            scalars.push((key, default));
        }
    }
    scalars.push(("id", project));
    scalars.push(cursor);
    pairs.extend(scalars.iter().map(|(k, v)| format!("{}={}", cgi_escape(k), cgi_escape(v))));
    pairs.sort();
    if let Ok(v) = HeaderValue::from_str(&format!("<{url}?{}>; rel=\"next\"", pairs.join("&"))) {
        h.insert(HeaderName::from_static("link"), v);
    }
    h
}

/// GitLab's cursor: URL-safe base64 (padded) of `{"id":"<id>","_kd":"n"}`.
pub fn encode_cursor(id: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE.encode(format!("{{\"id\":\"{id}\",\"_kd\":\"n\"}}"))
}

/// The JSON document a page cursor or token (`text`) holds: base64 in `alphabet`, padded or
/// not; `None` for anything else.
pub(crate) fn cursor_json(alphabet: &base64::alphabet::Alphabet, text: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let engine = base64::engine::GeneralPurpose::new(
        alphabet,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    serde_json::from_slice(&engine.decode(text.trim()).ok()?).ok()
}

/// The id of a cursor for the next page, padded or not; `None` for anything else.
fn decode_cursor(cursor: &str) -> Option<i64> {
    let value = cursor_json(&base64::alphabet::URL_SAFE, cursor)?;
    let object = value.as_object()?;
    if object.get("_kd").and_then(|k| k.as_str()) != Some("n") || object.len() != 2 {
        return None;
    }
    let id = object.get("id")?;
    id.as_str().and_then(|s| s.parse::<i64>().ok()).or_else(|| id.as_i64()).filter(|&id| id > 0)
}

/// Ruby's `CGI.escape`: letters, digits and `_.-~` as they are, a space as `+`, every other
/// byte as `%XX`.
pub fn cgi_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(query: &str, total: u64) -> HeaderMap {
        let q = Query::parse(Some(query));
        Page::from_query(&q).unwrap().headers(total, "http://h/api/v4/projects/1/jobs", &q)
    }

    fn get<'a>(h: &'a HeaderMap, k: &str) -> &'a str {
        h.get(k).map(|v| v.to_str().unwrap()).unwrap_or("<none>")
    }

    #[test]
    fn middle_page_links_keep_the_query() {
        let h = headers("scope[]=failed&per_page=2&page=2", 5);
        assert_eq!(get(&h, "x-page"), "2");
        assert_eq!(get(&h, "x-next-page"), "3");
        assert_eq!(get(&h, "x-prev-page"), "1");
        assert_eq!(get(&h, "x-total"), "5");
        assert_eq!(get(&h, "x-total-pages"), "3");
        assert_eq!(
            get(&h, "link"),
            "<http://h/api/v4/projects/1/jobs?scope[]=failed&per_page=2&page=1>; rel=\"prev\", \
             <http://h/api/v4/projects/1/jobs?scope[]=failed&per_page=2&page=3>; rel=\"next\", \
             <http://h/api/v4/projects/1/jobs?scope[]=failed&per_page=2&page=1>; rel=\"first\", \
             <http://h/api/v4/projects/1/jobs?scope[]=failed&per_page=2&page=3>; rel=\"last\""
        );
    }

    #[test]
    fn keyset_links_are_gitlabs() {
        let q = Query::parse(Some("pagination=keyset&per_page=2&scope[]=failed&private_token=glpat-x+y"));
        let k = Keyset::from_query(&q).unwrap().unwrap();
        assert_eq!(k, Keyset { per_page: 2, before_id: None });
        let h = k.headers(Some(149771), "http://h/api/v4/projects/group%2Fapp/jobs", "group/app", &q);
        assert_eq!(
            get(&h, "link"),
            "<http://h/api/v4/projects/group%2Fapp/jobs?cursor=eyJpZCI6IjE0OTc3MSIsIl9rZCI6Im4ifQ%3D%3D&id=group%2Fapp\
             &page=1&pagination=keyset&per_page=2&private_token=glpat-x+y&scope%5B%5D=failed>; rel=\"next\""
        );
        assert_eq!(get(&h, "x-total"), "<none>");
        assert!(k.headers(None, "http://h/x", "1", &q).is_empty(), "the last page has no Link");
        let next = Query::parse(Some("pagination=keyset&cursor=eyJpZCI6IjE0OTc3MSIsIl9rZCI6Im4ifQ%3D%3D"));
        assert_eq!(Keyset::from_query(&next).unwrap().unwrap().before_id, Some(149771));
        let unpadded = Query::parse(Some("pagination=keyset&cursor=eyJpZCI6IjE0OTc3MSIsIl9rZCI6Im4ifQ"));
        assert_eq!(Keyset::from_query(&unpadded).unwrap().unwrap().before_id, Some(149771));
        for bad in ["cursor=nope", "cursor=eyJfa2QiOiJuIn0%3D", "order_by=name", "sort=asc"] {
            assert!(Keyset::from_query(&Query::parse(Some(&format!("pagination=keyset&{bad}")))).is_err(), "{bad}");
        }
        assert_eq!(Keyset::from_query(&Query::parse(Some("per_page=2"))).unwrap(), None);
    }

    #[test]
    fn last_page_and_empty_list() {
        let h = headers("page=3&per_page=2", 5);
        assert_eq!(get(&h, "x-next-page"), "");
        let h = headers("", 0);
        assert_eq!(get(&h, "x-total"), "0");
        assert_eq!(get(&h, "x-total-pages"), "1");
        assert_eq!(get(&h, "x-next-page"), "");
        assert_eq!(get(&h, "x-prev-page"), "");
    }

    #[test]
    fn huge_lists_are_not_counted() {
        let h = headers("per_page=100", 10_001);
        assert_eq!(get(&h, "x-total"), "<none>");
        assert_eq!(get(&h, "x-total-pages"), "<none>");
        assert!(!get(&h, "link").contains("rel=\"last\""));
        assert_eq!(get(&h, "x-next-page"), "2");
    }

    #[test]
    fn per_page_is_capped_and_validated() {
        let q = Query::parse(Some("per_page=1000"));
        assert_eq!(Page::from_query(&q).unwrap().per_page(), 100);
        assert!(Page::from_query(&Query::parse(Some("page=two"))).is_err());
        assert!(Page::from_query(&Query::parse(Some("per_page=1.5"))).is_err());
    }
}
