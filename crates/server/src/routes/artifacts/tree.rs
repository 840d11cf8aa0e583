//! The artifacts tree by job id or by ref + job name (an addition beyond GitLab,
//! `artifact_gitlab::tree`): a folder of a job's archive listed from its `metadata.gz`,
//! whose paths are kept for the last few archives listed.

use artifact_gitlab::tree::{self, TreeQuery};
use axum::response::Response;

use super::target::{Target, TreeById};
use crate::error::ApiResult;
use crate::routes::{Ctx, blocking};

/// `GET /projects/:id/jobs/:job_id/artifacts/tree`.
pub(crate) async fn tree_by_id(ctx: Ctx, TreeById(target): TreeById) -> ApiResult<Response> {
    tree(ctx, target).await
}

/// The tree of `target`'s archive: its parameters first (a bad one is `400` before
/// anything else), then the roles and refs of endpoints 7 and 8.
pub(crate) async fn tree(ctx: Ctx, target: Target) -> ApiResult<Response> {
    let wanted = TreeQuery::from_query(&ctx.query)?;
    let (url, query) = (ctx.url.clone(), ctx.query.clone());
    let ask = ctx.into_asker();
    blocking(move || {
        let metadata = super::metadata_of(&ask, &target.project, &target.job)?;
        let listed = crate::routes::pages::listed(&ask.state, &metadata)?;
        tree::answer(&listed, &wanted, &url, &query, &target.project)
    })
    .await
}
