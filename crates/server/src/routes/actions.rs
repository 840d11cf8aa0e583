//! Changing jobs: cancel (10), retry (11), erase (12), keep artifacts (13), delete
//! artifacts (14) and play (15), with GitLab's state rules. Each change is a compare-and-set
//! on the job's status, so two concurrent actions never both apply to the same state.

use super::Path;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::jobs::{find, render_job};
use super::{Ctx, blocking, id_param};
use crate::auth::{Access, Need, Routes};
use crate::blobs::BlobKind;
use crate::error::StoreAnswer;
use crate::error::{ApiError, ApiResult};
use crate::model::{Job, Status, When};
use crate::time::Timestamp;

/// How many times an action re-reads a job that changed under it before giving up.
const ATTEMPTS: usize = 5;

/// Runs `change` on the job until its compare-and-set lands. `change` returns the new job
/// (`None`: nothing to write) or the error to answer. Blobs the change dropped are deleted
/// once the store no longer points at them.
fn apply(ctx: &Ctx, access: &Access, job_id: i64, change: impl Fn(&Job) -> ApiResult<Option<Job>>) -> ApiResult<Job> {
    apply_to(ctx, access, (job_id, Acts::Builds), change)
}

/// What an action acts on: builds only, or bridges too (retry and play, as GitLab's
/// `processables`: `jobs_spec.rb`, "when the job is a bridge", "that is a bridge").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acts {
    Builds,
    Processables,
}

/// [`apply`] to a job that may be a bridge too when `acts` says so.
fn apply_to(
    ctx: &Ctx,
    access: &Access,
    (job_id, acts): (i64, Acts),
    change: impl Fn(&Job) -> ApiResult<Option<Job>>,
) -> ApiResult<Job> {
    let store = &*ctx.state.inner.store;
    for _ in 0..ATTEMPTS {
        let job = find(store, &access.project, job_id, acts == Acts::Processables)?;
        let Some(new) = change(&job)? else {
            return Ok(job);
        };
        if store.update_job(&new).api()? {
            ctx.state.inner.lookups.forget();
            let dropped = [(&job.archive, &new.archive), (&job.metadata, &new.metadata), (&job.trace, &new.trace)];
            for (old, now) in dropped {
                let Some(old) = old.as_ref().filter(|old| now.as_ref() != Some(*old)) else {
                    continue;
                };
                // An archive takes with it its verification outcome (kept by the store, or
                // beside the archive when an earlier version imported it) and its
                // checkpoints.
                let beside: Vec<String> = [BlobKind::Verification, BlobKind::Checkpoints]
                    .into_iter()
                    .filter_map(|kind| crate::blobs::beside(&old.key, kind))
                    .collect();
                if !beside.is_empty()
                    && let Err(e) = store.delete_verification(&old.key)
                {
                    tracing::warn!(key = %old.key, error = %e, "could not forget a dropped archive's verification");
                }
                for key in std::iter::once(old.key.clone()).chain(beside) {
                    if let Err(e) = ctx.state.inner.blobs.delete(&key) {
                        // The store no longer refers to it; a leftover file is only wasted space.
                        tracing::warn!(key = %key, error = %e, "could not delete a dropped blob");
                    }
                }
            }
            return Ok(new);
        }
    }
    Err(ApiError::internal("the job kept changing under an action"))
}

fn caller_id(access: &Access) -> Option<i64> {
    access.caller.user().map(|u| u.id)
}

/// GitLab's order for an action: 401 (credentials), 400 (`job_id`), 404 (project, then
/// job), and only then 403 (role).
fn authorize(ctx: &Ctx, id: &str, job_id: &str, need: Need, acts: Acts) -> ApiResult<(Access, i64)> {
    let caller = ctx.caller(Routes::Api)?;
    let job_id = id_param(job_id, "job_id")?;
    let access = Access::load(&*ctx.state.inner.store, caller, id)?;
    access.require(Need::Read)?;
    find(&*ctx.state.inner.store, &access.project, job_id, acts == Acts::Processables)?;
    access.require(need)?;
    Ok((access, job_id))
}

async fn act(
    ctx: Ctx,
    (id, job_id, acts): (String, String, Acts),
    need: Need,
    status: StatusCode,
    run: impl FnOnce(&Ctx, &Access, i64) -> ApiResult<Job> + Send + 'static,
) -> ApiResult<Response> {
    blocking(move || {
        let (access, job_id) = authorize(&ctx, &id, &job_id, need, acts)?;
        let job = run(&ctx, &access, job_id)?;
        Ok((status, Json(render_job(&ctx, &job, &access.project)?)).into_response())
    })
    .await
}

/// 10: `POST /projects/:id/jobs/:job_id/cancel`: cancelable states go to canceled; a
/// finished job is answered unchanged.
pub(crate) async fn cancel(ctx: Ctx, Path((id, job_id)): Path<(String, String)>) -> ApiResult<Response> {
    act(ctx, (id, job_id, Acts::Builds), Need::Develop, StatusCode::CREATED, |ctx, access, job_id| {
        apply(ctx, access, job_id, |job| {
            if !job.status.is_cancelable() {
                return Ok(None);
            }
            Ok(Some(Job { status: Status::Canceled, finished_at: Some(Timestamp::now()), ..job.clone() }))
        })
    })
    .await
}

/// A fresh copy of `job` to run again: new id, pending, no artifacts, no log.
fn rerun(job: &Job, user: Option<i64>) -> Job {
    let now = Timestamp::now();
    Job {
        id: 0,
        status: Status::Pending,
        retried: false,
        coverage: None,
        failure_reason: None,
        user_id: user.or(job.user_id),
        created_at: now,
        queued_at: Some(now),
        started_at: None,
        finished_at: None,
        erased_at: None,
        erased_by: None,
        archive: None,
        metadata: None,
        trace: None,
        artifacts_expire_at: None,
        // A bridge run again triggers its downstream pipeline anew.
        downstream_pipeline_id: None,
        ..job.clone()
    }
}

fn retry_job(ctx: &Ctx, access: &Access, job_id: i64) -> ApiResult<Job> {
    let store = &*ctx.state.inner.store;
    for _ in 0..ATTEMPTS {
        let job = find(store, &access.project, job_id, true)?;
        if !job.status.is_retryable() || job.retried {
            return Err(ApiError::Forbidden(Some("Job is not retryable")));
        }
        if let Some(new) = store.retry_job(&job, &rerun(&job, caller_id(access))).api()? {
            ctx.state.inner.lookups.forget();
            return Ok(new);
        }
    }
    Err(ApiError::internal("the job kept changing under a retry"))
}

/// 11: `POST /projects/:id/jobs/:job_id/retry`: success, failed and canceled jobs run again
/// as a new job; the old ones of that name become retried.
pub(crate) async fn retry(ctx: Ctx, Path((id, job_id)): Path<(String, String)>) -> ApiResult<Response> {
    act(ctx, (id, job_id, Acts::Processables), Need::Develop, StatusCode::CREATED, retry_job).await
}

/// GitLab's `erase_build`: maintainers, owners and administrators erase any job; a developer
/// only a job they started (`owner_of_job`: the job's user is the caller; a job without a
/// user is nobody's). GitLab also asks for an unprotected ref there; this server has no
/// protected refs, so every ref is one.
fn may_erase(access: &Access, job: &Job) -> bool {
    access.require(Need::Maintain).is_ok() || job.user_id.is_some_and(|user| caller_id(access) == Some(user))
}

/// 12: `POST /projects/:id/jobs/:job_id/erase`: a finished job with artifacts or a log
/// loses both. Who may erase it (`403 Forbidden`) is asked before whether it can be
/// (`403 Job is not erasable!`), as GitLab does, and of the very version the erase writes.
pub(crate) async fn erase(ctx: Ctx, Path((id, job_id)): Path<(String, String)>) -> ApiResult<Response> {
    act(ctx, (id, job_id, Acts::Builds), Need::Develop, StatusCode::CREATED, |ctx, access, job_id| {
        let by = caller_id(access);
        apply(ctx, access, job_id, |job| {
            if !may_erase(access, job) {
                return Err(ApiError::Forbidden(None));
            }
            let has_something = job.archive.is_some() || job.trace.is_some();
            if !job.status.is_finished() || !has_something {
                return Err(ApiError::Forbidden(Some("Job is not erasable!")));
            }
            let now = Timestamp::now();
            Ok(Some(Job {
                archive: None,
                metadata: None,
                trace: None,
                artifacts_expire_at: None,
                erased_at: Some(now),
                erased_by: by,
                ..job.clone()
            }))
        })
    })
    .await
}

/// 13: `POST /projects/:id/jobs/:job_id/artifacts/keep`: the archive never expires; 404
/// without an unexpired archive.
pub(crate) async fn keep(ctx: Ctx, Path((id, job_id)): Path<(String, String)>) -> ApiResult<Response> {
    act(ctx, (id, job_id, Acts::Builds), Need::Develop, StatusCode::OK, |ctx, access, job_id| {
        apply(ctx, access, job_id, |job| {
            if job.live_archive(Timestamp::now()).is_none() {
                return Err(ApiError::NotFound("Not found"));
            }
            Ok(Some(Job { artifacts_expire_at: None, ..job.clone() }))
        })
    })
    .await
}

/// 15: `POST /projects/:id/jobs/:job_id/play`: a manual or delayed job that waits (manual,
/// scheduled) goes to pending as the caller; a finished one runs again as a new job.
pub(crate) async fn play(ctx: Ctx, Path((id, job_id)): Path<(String, String)>) -> ApiResult<Response> {
    act(ctx, (id, job_id, Acts::Processables), Need::Develop, StatusCode::OK, |ctx, access, job_id| {
        let store = &*ctx.state.inner.store;
        let job = find(store, &access.project, job_id, true)?;
        let action = matches!(job.when, When::Manual | When::Delayed);
        if action && job.status.is_retryable() && !job.retried {
            return retry_job(ctx, access, job_id);
        }
        let user = caller_id(access);
        apply_to(ctx, access, (job_id, Acts::Processables), |job| {
            let waiting = matches!(job.status, Status::Manual | Status::Scheduled);
            if !action || !waiting {
                return Err(ApiError::BadRequest("Unplayable Job".into()));
            }
            let now = Timestamp::now();
            Ok(Some(Job {
                status: Status::Pending,
                user_id: user.or(job.user_id),
                queued_at: Some(now),
                ..job.clone()
            }))
        })
    })
    .await
}

/// 14: `DELETE /projects/:id/jobs/:job_id/artifacts`: maintainers remove the archive and
/// its metadata (the log stays); 204 even when there was nothing.
pub(crate) async fn delete_artifacts(ctx: Ctx, Path((id, job_id)): Path<(String, String)>) -> ApiResult<Response> {
    blocking(move || {
        let (access, job_id) = authorize(&ctx, &id, &job_id, Need::Maintain, Acts::Builds)?;
        apply(&ctx, &access, job_id, |job| {
            if job.archive.is_none() && job.metadata.is_none() {
                return Ok(None);
            }
            Ok(Some(Job { archive: None, metadata: None, artifacts_expire_at: None, ..job.clone() }))
        })?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}
