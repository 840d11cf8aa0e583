//! Offset pagination with GitLab's headers: `X-Page`, `X-Per-Page`, `X-Next-Page`,
//! `X-Prev-Page`, `X-Total`, `X-Total-Pages` and a `Link` header of absolute URLs that keep
//! every other query parameter.

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
pub(crate) struct Page {
    pub(crate) page: u64,
    pub(crate) per_page: u64,
}

impl Page {
    pub(crate) fn from_query(q: &Query) -> ApiResult<Page> {
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

    pub(crate) fn offset(&self) -> u64 {
        (self.page - 1).saturating_mul(self.per_page)
    }

    /// The headers for this page of `total` rows; `url` is the absolute URL of the request
    /// without its query.
    pub(crate) fn headers(&self, total: u64, url: &str, query: &Query) -> HeaderMap {
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
        assert_eq!(Page::from_query(&q).unwrap().per_page, 100);
        assert!(Page::from_query(&Query::parse(Some("page=two"))).is_err());
        assert!(Page::from_query(&Query::parse(Some("per_page=1.5"))).is_err());
    }
}
