//! The artifacts tree through the proxy ([`artifact_gitlab::tree`], an addition beyond
//! GitLab): a folder of a job's archive listed from the proxy's index of its central
//! directory, once the upstream said the caller may read the archive, as for single files
//! (a remembered grant asks nothing; a cold index is the suffix read and at most one more).
//! By ref, a known index is checked first with one range read of the archive's last byte,
//! since the ref's latest job may have changed.

use std::sync::Arc;

use artifact_core::{ArtifactPath, JobRef};
use artifact_gitlab::pages::Listed;
use artifact_gitlab::tree::{self, TreeQuery};
use artifact_gitlab::{ApiError, ApiResult, Query, Target, credential_headers};
use axum::extract::Request;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};

use crate::{Authorization, Proxy, engine_api_error};

/// An archive's index as the key of its listable paths: the same `Arc` while the index
/// cache keeps it (a reloaded index may be another version of the archive, and gets its
/// own).
#[derive(Debug)]
pub(crate) struct ByIndex(pub(crate) Arc<artifact_core::Index>);

impl PartialEq for ByIndex {
    fn eq(&self, other: &ByIndex) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Every path of the archive as GitLab's `metadata.gz` lists it (missing parent folders
/// added as `dir/`, byte-wise order, the first of equal names: the one served), without
/// the paths that are not UTF-8 or that the path rule refuses; each with its size, time and
/// permission bits.
pub(crate) fn listable(index: &artifact_core::Index) -> Listed {
    let entries: Vec<artifact_core::Entry> = index.central_directory().entries().filter_map(Result::ok).collect();
    let tree = artifact_core::metadata::tree(&entries);
    let mut out = Listed::default();
    let mut last: &[u8] = b"";
    for (path, entry) in tree.iter() {
        if std::mem::replace(&mut last, path) == path {
            continue;
        }
        let Ok(path) = std::str::from_utf8(path) else { continue };
        if ArtifactPath::new(path.trim_end_matches('/')).is_err() {
            continue;
        }
        let modified = entry.map(|e| e.modified_unix()).filter(|t| *t != 0);
        out.push_with_mode(path, entry.map(|e| e.size()), modified, entry.map(|e| e.permissions()));
    }
    out
}

/// A tree listing's request, parsed: its query, and its target (or why it has none).
pub(crate) struct TreeRequest(Query, ApiResult<Target>);

/// `req` parsed as a tree listing's request (`GET` or `HEAD` of a tree's path), if it is
/// one: a cheap test first, since every request through the proxy passes here.
pub(crate) fn tree_request(req: &Request) -> Option<TreeRequest> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) || !req.uri().path().ends_with("/tree") {
        return None;
    }
    let query = Query::parse(req.uri().query());
    let target = Target::tree(req.uri().path(), query.get("job"))?;
    Some(TreeRequest(query, target))
}

impl Proxy {
    /// Answers `req` if it is an artifacts tree listing (`GET` or `HEAD` of
    /// `/api/v4/projects/:id/jobs/:job_id/artifacts/tree` or
    /// `.../jobs/artifacts/:ref/tree?job=NAME`): from the archive's index, once the upstream
    /// let the caller read the archive; a bad parameter is `400` before anything goes
    /// upstream, and the upstream's refusal comes back as it is. Otherwise (or when the
    /// [`Authorize`](crate::Authorize) says the request is not for the proxy) the request
    /// comes back untouched.
    pub async fn tree(&self, req: Request) -> Result<Response, Request> {
        match tree_request(&req) {
            Some(parsed) => self.tree_of(req, parsed).await,
            None => Err(req),
        }
    }

    /// [`tree`](Self::tree) of a request parsed as one.
    pub(crate) async fn tree_of(
        &self,
        req: Request,
        TreeRequest(query, target): TreeRequest,
    ) -> Result<Response, Request> {
        let target = match target {
            Err(refused) => return Ok(refused.into_response()),
            Ok(target) => target,
        };
        let wanted = match TreeQuery::from_query(&query) {
            Ok(wanted) => wanted,
            Err(refused) => return Ok(refused.into_response()),
        };
        let (parts, body) = req.into_parts();
        let grant = match self.authorize(&parts, &target).await {
            Authorization::Granted(grant) => grant,
            Authorization::Refused(refusal) => return Ok(refusal),
            Authorization::Forward => return Err(Request::from_parts(parts, body)),
        };
        let headers = if grant.credentials { credential_headers(&parts.headers, &query) } else { HeaderMap::new() };
        let remote = self.remote.get();
        let index = match target.job {
            JobRef::Id(_) => remote.index_keyed_async(&grant.key, &grant.url, &headers).await,
            JobRef::Latest { .. } => remote.index_keyed_current_async(&grant.key, &grant.url, &headers).await,
        };
        let index = match index {
            Ok(index) => index,
            Err(e) => return Ok(engine_api_error(e).into_response()),
        };
        let url = format!("{}{}", self.base(&parts.headers), parts.uri.path());
        let trees = self.trees.clone();
        // Building a large archive's list takes a moment: off the async workers.
        let answered = tokio::task::spawn_blocking(move || {
            let listed = trees.of(ByIndex(index.clone()), || Ok(listable(&index)))?;
            tree::answer(&listed, &wanted, &url, &query, &target.project)
        })
        .await;
        Ok(match answered {
            Ok(answer) => answer.unwrap_or_else(IntoResponse::into_response),
            Err(e) => ApiError::internal(e).into_response(),
        })
    }
}
