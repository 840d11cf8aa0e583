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

/// Extracts the [`Target`] of endpoints 6 and 8.
#[derive(Debug)]
pub(crate) struct ByRef(pub(crate) Target);

impl FromRequestParts<AppState> for ByRef {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<ByRef, ApiError> {
        let query = Query::parse(parts.uri.query());
        Target::by_ref(parts.uri.path(), query.get("job")).map(ByRef)
    }
}
