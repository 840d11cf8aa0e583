//! Lists as streams: each page's items, then the next page by the absolute `Link
//! rel="next"` URL (or `X-Next-Page` when a server sends no `Link`), until there is none.
//! `X-Total` is never needed. And one page at a time ([`Page`]), for a caller that shows
//! pages itself.

use std::collections::{HashSet, VecDeque};

use futures_util::Stream;
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

use crate::client::{Client, JobFilter, decode, with_filter};
use crate::error::Result;
use crate::models::{Bridge, Job};

/// The URL of `rel="next"` in a `Link` header.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<Url> {
    for value in headers.get_all(reqwest::header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for part in value.split(',') {
            let mut pieces = part.split(';');
            let target = pieces.next()?.trim();
            let is_next = pieces.any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next {
                return Url::parse(target.trim_start_matches('<').trim_end_matches('>')).ok();
            }
        }
    }
    None
}

fn next_page(current: &Url, headers: &HeaderMap) -> Option<Url> {
    if let Some(url) = next_link(headers) {
        return Some(url);
    }
    let next = headers.get("x-next-page")?.to_str().ok()?.trim();
    if next.is_empty() {
        return None;
    }
    let mut url = current.clone();
    let pairs: Vec<(String, String)> =
        url.query_pairs().filter(|(k, _)| k != "page").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    url.query_pairs_mut().clear().extend_pairs(pairs).append_pair("page", next);
    Some(url)
}

/// One page of an offset-paginated listing, and what GitLab says of the others.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// The number of pages (`X-Total-Pages`; GitLab leaves it out past 10,000 rows).
    pub total_pages: Option<u64>,
    /// The next page's number (`X-Next-Page`), if there is one.
    pub next_page: Option<u64>,
}

impl<T> Page<T> {
    /// The number of pages as far as this page tells: `X-Total-Pages`, or, without it, one
    /// more than `page` while there is a next one.
    pub fn pages(&self, page: u64) -> u64 {
        match (self.total_pages, self.next_page) {
            (Some(total), _) => total.max(1),
            (None, Some(_)) => page + 1,
            (None, None) => page.max(1),
        }
    }
}

impl Client {
    /// 1: the project's jobs, newest first, every page.
    pub fn jobs(&self, project: &str, filter: &JobFilter) -> impl Stream<Item = Result<Job>> + Send + 'static {
        let url = self.project_url(project, "/jobs").map(|u| {
            let mut u = with_filter(u, filter, false);
            if filter.keyset {
                u.query_pairs_mut()
                    .append_pair("pagination", "keyset")
                    .append_pair("order_by", "id")
                    .append_pair("sort", "desc");
            }
            u
        });
        items(self.clone(), url)
    }

    /// 2: a pipeline's jobs (child pipelines too), oldest first, every page.
    pub fn pipeline_jobs(
        &self,
        project: &str,
        pipeline: u64,
        filter: &JobFilter,
    ) -> impl Stream<Item = Result<Job>> + Send + 'static {
        let url =
            self.project_url(project, &format!("/pipelines/{pipeline}/jobs")).map(|u| with_filter(u, filter, true));
        items(self.clone(), url)
    }

    /// 3: a pipeline's bridges, every page.
    pub fn pipeline_bridges(
        &self,
        project: &str,
        pipeline: u64,
        filter: &JobFilter,
    ) -> impl Stream<Item = Result<Bridge>> + Send + 'static {
        let url =
            self.project_url(project, &format!("/pipelines/{pipeline}/bridges")).map(|u| with_filter(u, filter, false));
        items(self.clone(), url)
    }

    /// Page `page` (from 1) of the project's jobs, newest first.
    pub async fn jobs_page(&self, project: &str, filter: &JobFilter, page: u64) -> Result<Page<Job>> {
        let url = with_filter(self.project_url(project, "/jobs")?, filter, false);
        self.page(url, page).await
    }

    /// Page `page` (from 1) of a pipeline's jobs, oldest first.
    pub async fn pipeline_jobs_page(
        &self,
        project: &str,
        pipeline: u64,
        filter: &JobFilter,
        page: u64,
    ) -> Result<Page<Job>> {
        let url = with_filter(self.project_url(project, &format!("/pipelines/{pipeline}/jobs"))?, filter, true);
        self.page(url, page).await
    }

    pub(crate) async fn page<T: DeserializeOwned>(&self, mut url: Url, page: u64) -> Result<Page<T>> {
        url.query_pairs_mut().append_pair("page", &page.max(1).to_string());
        let resp = self.transport.send(Method::GET, url, &HeaderMap::new(), &[]).await?;
        let number = |name: &str| {
            resp.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok())
        };
        let (total_pages, next_page) = (number("x-total-pages"), number("x-next-page"));
        Ok(Page { items: decode(resp, self.transport.json_max).await?, total_pages, next_page })
    }
}

struct State<T> {
    client: Client,
    next: Option<Url>,
    buffer: VecDeque<T>,
    failed: bool,
    /// Pages fetched: a server whose next link comes back to one is looping.
    fetched: HashSet<String>,
}

/// A next page must be on the API's own origin: credentials go with it. A link to another
/// origin (a proxy that builds `http://` links for an `https://` GitLab, say) is moved onto
/// the API's origin when its path is an API path, and refused otherwise.
fn on_api_origin(api: &Url, next: Url) -> Result<Url> {
    if api.origin() == next.origin() {
        return Ok(next);
    }
    if !next.path().starts_with(api.path()) {
        return Err(crate::error::Error::Decode {
            url: crate::error::shown(&next),
            message: "a next-page link leaves the API; not following it with credentials".into(),
        });
    }
    let mut moved = api.clone();
    moved.set_path(next.path());
    moved.set_query(next.query());
    Ok(moved)
}

/// Every item of every page from `first` on.
pub(crate) fn items<T>(client: Client, first: Result<Url>) -> impl Stream<Item = Result<T>> + Send + 'static
where
    T: DeserializeOwned + Send + 'static,
{
    let (next, failed_first) = match first {
        Ok(url) => (Some(url), None),
        Err(e) => (None, Some(e)),
    };
    let state = State { client, next, buffer: VecDeque::new(), failed: false, fetched: HashSet::new() };
    let head = futures_util::stream::iter(failed_first.map(Err));
    let body = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.buffer.pop_front() {
                return Some((Ok(item), st));
            }
            if st.failed {
                return None;
            }
            let url = st.next.take()?;
            if !st.fetched.insert(url.to_string()) {
                st.failed = true;
                let message = "the next-page link repeats a page already read".to_owned();
                return Some((Err(crate::error::Error::Decode { url: crate::error::shown(&url), message }), st));
            }
            let resp = match st.client.transport.send(Method::GET, url.clone(), &HeaderMap::new(), &[]).await {
                Ok(r) => r,
                Err(e) => {
                    st.failed = true;
                    return Some((Err(e), st));
                }
            };
            st.next = match next_page(&url, resp.headers()).map(|n| on_api_origin(st.client.api_url(), n)).transpose() {
                Ok(next) => next,
                Err(e) => {
                    st.failed = true;
                    return Some((Err(e), st));
                }
            };
            match decode::<Vec<T>>(resp, st.client.transport.json_max).await {
                Ok(page) => st.buffer.extend(page),
                Err(e) => {
                    st.failed = true;
                    return Some((Err(e), st));
                }
            }
        }
    });
    futures_util::StreamExt::chain(head, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            "<http://h/api/v4/projects/1/jobs?page=1>; rel=\"prev\", <http://h/api/v4/projects/1/jobs?page=3&scope[]=failed>; rel=\"next\", <http://h/x?page=1>; rel=\"first\"".parse().unwrap(),
        );
        assert_eq!(next_link(&h).unwrap().as_str(), "http://h/api/v4/projects/1/jobs?page=3&scope[]=failed");
    }

    #[test]
    fn next_links_stay_on_the_api_origin() {
        let api = Url::parse("https://gitlab.example.com/api/v4/").unwrap();
        let moved = on_api_origin(&api, Url::parse("http://gitlab.example.com/api/v4/projects/1/jobs?page=2").unwrap());
        assert_eq!(moved.unwrap().as_str(), "https://gitlab.example.com/api/v4/projects/1/jobs?page=2");
        assert!(on_api_origin(&api, Url::parse("https://evil.example/steal?page=2").unwrap()).is_err());
    }

    #[test]
    fn falls_back_to_x_next_page() {
        let mut h = HeaderMap::new();
        h.insert("x-next-page", "4".parse().unwrap());
        let url = Url::parse("http://h/api/v4/projects/1/jobs?per_page=2&page=3").unwrap();
        assert_eq!(next_page(&url, &h).unwrap().as_str(), "http://h/api/v4/projects/1/jobs?per_page=2&page=4");
        h.insert("x-next-page", "".parse().unwrap());
        assert!(next_page(&url, &h).is_none());
    }
}
