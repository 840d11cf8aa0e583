//! The extractors of an artifact download's [`Target`] (see `artifact_gitlab::target`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

pub(crate) use artifact_gitlab::target::Target;

use crate::error::ApiError;
use crate::query::Query;
use crate::state::AppState;

/// Extracts the [`Target`] of endpoint 7.
#[derive(Debug)]
pub(crate) struct FileById(pub(crate) Target);

impl FromRequestParts<AppState> for FileById {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<FileById, ApiError> {
        Target::by_id(parts.uri.path()).map(FileById)
    }
}

/// Extracts the [`Target`] of endpoints 6 and 8, or of a tree listing by ref (then `true`:
/// `artifact_gitlab::tree`).
#[derive(Debug)]
pub(crate) struct ByRef(pub(crate) Target, pub(crate) bool);

impl FromRequestParts<AppState> for ByRef {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<ByRef, ApiError> {
        let query = Query::parse(parts.uri.query());
        if let Some(tree) = Target::tree(parts.uri.path(), query.get("job")) {
            return tree.map(|target| ByRef(target, true));
        }
        Target::by_ref(parts.uri.path(), query.get("job")).map(|target| ByRef(target, false))
    }
}

/// Extracts the [`Target`] of a tree listing by job id.
#[derive(Debug)]
pub(crate) struct TreeById(pub(crate) Target);

impl FromRequestParts<AppState> for TreeById {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<TreeById, ApiError> {
        match Target::tree(parts.uri.path(), None) {
            Some(tree) => tree.map(TreeById),
            None => Err(ApiError::NotFound("Not Found")),
        }
    }
}
