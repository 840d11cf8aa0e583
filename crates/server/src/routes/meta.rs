//! What clients call before the Jobs API: `/version`, `/user`, `/job` (the job of a job
//! token) and `/projects/:id`.

use super::Path;
use axum::Json;
use serde_json::{Value, json};

use super::jobs::render_job;
use super::{Ctx, blocking};
use crate::auth::{Caller, Need, Routes, authenticate};
use crate::error::StoreAnswer;
use crate::error::{ApiError, ApiResult};
use crate::store::ProjectRef;

/// The GitLab version this server answers like.
pub const GITLAB_VERSION: &str = "17.6.0";

/// `GET /-/health`: `200 GitLab OK` (GitLab's own answer) once the store answers a query
/// and the blobs are reachable; `503` with what failed otherwise. No credentials: for load
/// balancers.
pub(crate) async fn health(ctx: Ctx) -> axum::response::Response {
    use axum::response::IntoResponse;
    let checked = blocking(move || {
        let store = ctx.state.inner.store.check().err().map(|e| e.to_string());
        let blobs = ctx.state.inner.blobs.check().err().map(|e| e.to_string());
        Ok((store, blobs))
    })
    .await;
    match checked {
        Ok((None, None)) => "GitLab OK".into_response(),
        Ok((store, blobs)) => {
            tracing::warn!(?store, ?blobs, "health check failed");
            let body =
                json!({"message": "503 Service Unavailable", "store": store.is_none(), "blobs": blobs.is_none()});
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /version`.
pub(crate) async fn version(ctx: Ctx) -> ApiResult<Json<Value>> {
    blocking(move || {
        authenticate(&*ctx.state.inner.store, &ctx.presented, Routes::Api)?;
        Ok(Json(json!({
            "version": GITLAB_VERSION,
            "revision": option_env!("ARTIFACT_GIT_REVISION").unwrap_or("0000000"),
            "kas": {"enabled": false, "externalUrl": null, "version": null},
            "enterprise": false,
            "server": {"name": "artifact", "version": env!("CARGO_PKG_VERSION")},
        })))
    })
    .await
}

/// `GET /user`.
pub(crate) async fn user(ctx: Ctx) -> ApiResult<Json<Value>> {
    blocking(move || match authenticate(&*ctx.state.inner.store, &ctx.presented, Routes::Api)? {
        Caller::User(u) => Ok(Json(ctx.render().current_user(&u))),
        _ => Err(ApiError::Unauthorized),
    })
    .await
}

/// `GET /job`: the job a `JOB-TOKEN` belongs to, while it runs.
pub(crate) async fn job(ctx: Ctx) -> ApiResult<Json<Value>> {
    blocking(move || match authenticate(&*ctx.state.inner.store, &ctx.presented, Routes::Artifacts)? {
        Caller::Job { job, .. } => {
            let project = ctx
                .state
                .inner
                .store
                .project(&ProjectRef::Id(job.project_id))
                .api()?
                .ok_or_else(|| ApiError::internal("job without its project"))?;
            Ok(Json(render_job(&ctx, &job, &project)?))
        }
        // A valid token that is not a job's: there is no current job (`jobs_spec.rb`,
        // "when token is valid but not CI_JOB_TOKEN").
        Caller::User(_) => Err(ApiError::NotFound("Not Found")),
        _ => Err(ApiError::Unauthorized),
    })
    .await
}

/// `GET /projects/:id`.
pub(crate) async fn project(ctx: Ctx, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let access = ctx.access(Routes::Api, &id)?;
        Ok(Json(ctx.render().project(&access.project, access.require(Need::Maintain).is_ok())))
    })
    .await
}
