//! Reading jobs: the project and pipeline lists (1, 2, 3), one job (4) and its trace (9).

use std::collections::{HashMap, HashSet};

use super::Path;
use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{Ctx, blocking, id_param};
use crate::auth::{Access, Need, Routes};
use crate::delivery::Representation;
use crate::entities::Render;
use crate::error::StoreAnswer;
use crate::error::{ApiError, ApiResult};
use crate::keep::Keeping;
use crate::model::{Job, JobKind, Pipeline, Project, Status, User};
use crate::query::Query;
use crate::store::{JobQuery, Store, StoreResult};
use crate::time::Timestamp;
use artifact_gitlab::pagination::{KEYSET_UNSUPPORTED, Keyset, Page};

/// `scope`, `scope[]` or repeated `scope=`: only GitLab's exact status names. A hash
/// (`scope[hello]=pending`) is no string or array: `400`, as Grape's type check answers
/// (`spec/requests/api/ci/jobs_spec.rb` and `pipelines_spec.rb`, "filter jobs with hash").
fn scope(q: &Query) -> ApiResult<Vec<Status>> {
    if q.pairs().any(|(k, _)| k.starts_with("scope[") && k != "scope[]") {
        return Err(ApiError::InvalidParam("scope is invalid".into()));
    }
    q.all("scope")
        .into_iter()
        .map(|s| Status::parse(s).ok_or_else(|| ApiError::InvalidParam("scope does not have a valid value".into())))
        .collect()
}

/// Loads what rendering a set of jobs needs: their pipelines (and bridges' downstream
/// pipelines) and users, each once.
pub(crate) struct Related {
    pipelines: HashMap<i64, Pipeline>,
    users: HashMap<i64, User>,
    /// The jobs whose expired archives their project keeps.
    kept: HashSet<i64>,
}

impl Related {
    pub(crate) fn load(store: &dyn Store, jobs: &[Job], project: &Project) -> StoreResult<Related> {
        let mut related = Related { pipelines: HashMap::new(), users: HashMap::new(), kept: HashSet::new() };
        let now = Timestamp::now();
        let keeping = Keeping::new(store, now);
        for job in jobs {
            if job.live_archive(now).is_none() && keeping.archive(project, job)?.is_some() {
                related.kept.insert(job.id);
            }
            for id in [Some(job.pipeline_id), job.downstream_pipeline_id].into_iter().flatten() {
                if !related.pipelines.contains_key(&id)
                    && let Some(p) = store.pipeline(id)?
                {
                    related.pipelines.insert(id, p);
                }
            }
            if let Some(uid) = job.user_id
                && !related.users.contains_key(&uid)
                && let Some(u) = store.user(uid)?
            {
                related.users.insert(uid, u);
            }
        }
        Ok(related)
    }

    pub(crate) fn render(&self, r: &Render<'_>, job: &Job, project: &Project) -> ApiResult<Value> {
        let pipeline =
            self.pipelines.get(&job.pipeline_id).ok_or_else(|| ApiError::internal("job without its pipeline"))?;
        let user = job.user_id.and_then(|u| self.users.get(&u));
        Ok(match job.kind {
            JobKind::Build => r.job(job, pipeline, project, user, self.kept.contains(&job.id)),
            JobKind::Bridge => {
                let downstream = job.downstream_pipeline_id.and_then(|d| self.pipelines.get(&d));
                r.bridge(job, pipeline, project, user, downstream)
            }
        })
    }
}

/// Renders one job as its JSON.
pub(crate) fn render_job(ctx: &Ctx, job: &Job, project: &Project) -> ApiResult<Value> {
    let related = Related::load(&*ctx.state.inner.store, std::slice::from_ref(job), project).api()?;
    related.render(&ctx.render(), job, project)
}

/// A job of the project by id (builds only, as GitLab's `/jobs/:job_id`); 404 otherwise.
pub(crate) fn find_job(store: &dyn Store, project: &Project, job_id: i64) -> ApiResult<Job> {
    find(store, project, job_id, false)
}

/// A job of `project` by id: a build, or with `bridges` a bridge too (GitLab's
/// "processables", which retry and play act on); anything else is `404 Not found`.
pub(crate) fn find(store: &dyn Store, project: &Project, job_id: i64, bridges: bool) -> ApiResult<Job> {
    match store.job(job_id).api()? {
        Some(job) if job.project_id == project.id && (job.kind == JobKind::Build || bridges) => Ok(job),
        _ => Err(ApiError::NotFound("Not found")),
    }
}

async fn list(ctx: Ctx, id: String, pipeline_id: Option<String>, kind: JobKind) -> ApiResult<Response> {
    blocking(move || {
        // GitLab's order: authentication (401), parameters (400), then the project (404).
        // A pipeline's lists are the pipelines API's, which reads anonymously (a public
        // project's; a private one is then `404 Project Not Found`): `pipelines_spec.rb`,
        // "when user is not logged in".
        let anonymous = ctx.presented.credential.is_none() && ctx.presented.sudo.is_none();
        let caller =
            if pipeline_id.is_some() && anonymous { crate::auth::Caller::Anonymous } else { ctx.caller(Routes::Api)? };
        let page = Page::from_query(&ctx.query)?;
        // Keyset pagination is for project lists (GitLab pages no other job list so).
        let keyset = match pipeline_id {
            None => Keyset::from_query(&ctx.query),
            Some(_) => Ok(None),
        };
        let keyset = match keyset {
            Ok(k) => Ok(k),
            Err(Some(bad)) => return Err(bad),
            Err(None) => Err(()),
        };
        let scope = scope(&ctx.query)?;
        let include_retried = match pipeline_id {
            // Project lists show retried jobs; pipeline lists hide them unless asked.
            None => true,
            Some(_) => ctx
                .query
                .bool("include_retried")
                .map_err(|_| ApiError::InvalidParam("include_retried is invalid".into()))?
                .unwrap_or(false),
        };
        let pipeline_id = pipeline_id.map(|p| id_param(&p, "pipeline_id")).transpose()?;
        let access = Access::load(&*ctx.state.inner.store, caller, &id)?;
        access.require(Need::Read)?;
        let store = &*ctx.state.inner.store;
        if let Some(pid) = pipeline_id {
            match store.pipeline(pid).api()? {
                Some(p) if p.project_id == access.project.id => {}
                _ => return Err(ApiError::NotFound("Not found")),
            }
        }
        // After the project: an order keyset cannot page is GitLab's 405.
        let keyset = keyset.map_err(|()| ApiError::NotAllowed(KEYSET_UNSUPPORTED))?;
        let (offset, limit) = match &keyset {
            // One row more than the page tells whether a next page exists.
            Some(k) => (0, k.per_page + 1),
            None => (page.offset(), page.per_page()),
        };
        let mut listing = store
            .list_jobs(&JobQuery {
                project_id: access.project.id,
                pipeline_id,
                kind,
                scope,
                include_retried,
                newest_first: pipeline_id.is_none(),
                before_id: keyset.as_ref().and_then(|k| k.before_id),
                count: keyset.is_none(),
                offset,
                limit,
            })
            .api()?;
        let more = keyset.as_ref().is_some_and(|k| listing.rows.len() as u64 > k.per_page);
        if let Some(k) = &keyset {
            listing.rows.truncate(k.per_page as usize);
        }
        let related = Related::load(store, &listing.rows, &access.project).api()?;
        let render = ctx.render();
        let body = listing
            .rows
            .iter()
            .map(|job| related.render(&render, job, &access.project))
            .collect::<ApiResult<Vec<_>>>()?;
        let headers = match &keyset {
            Some(k) => {
                let last = listing.rows.last().map(|j| j.id).filter(|_| more);
                k.headers(last, &ctx.url, &id, &ctx.query)
            }
            None => page.headers(listing.total, &ctx.url, &ctx.query),
        };
        Ok((headers, Json(body)).into_response())
    })
    .await
}

/// 1: `GET /projects/:id/jobs`, newest first.
pub(crate) async fn list_project_jobs(ctx: Ctx, Path(id): Path<String>) -> ApiResult<Response> {
    list(ctx, id, None, JobKind::Build).await
}

/// 2: `GET /projects/:id/pipelines/:pipeline_id/jobs`, oldest first.
pub(crate) async fn list_pipeline_jobs(ctx: Ctx, Path((id, pid)): Path<(String, String)>) -> ApiResult<Response> {
    list(ctx, id, Some(pid), JobKind::Build).await
}

/// 3: `GET /projects/:id/pipelines/:pipeline_id/bridges`.
pub(crate) async fn list_pipeline_bridges(ctx: Ctx, Path((id, pid)): Path<(String, String)>) -> ApiResult<Response> {
    list(ctx, id, Some(pid), JobKind::Bridge).await
}

/// 4: `GET /projects/:id/jobs/:job_id`.
pub(crate) async fn get_job(ctx: Ctx, Path((id, job_id)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let caller = ctx.caller(Routes::Api)?;
        let job_id = id_param(&job_id, "job_id")?;
        let access = Access::load(&*ctx.state.inner.store, caller, &id)?;
        access.require(Need::Read)?;
        let job = find_job(&*ctx.state.inner.store, &access.project, job_id)?;
        Ok(Json(render_job(&ctx, &job, &access.project)?))
    })
    .await
}

/// 9: `GET /projects/:id/jobs/:job_id/trace`: the log as `text/plain`, empty when there is
/// none. Beyond GitLab: `Range`, so that a follower fetches only new bytes.
pub(crate) async fn trace(ctx: Ctx, Path((id, job_id)): Path<(String, String)>) -> ApiResult<Response> {
    let (head, req_headers) = (ctx.head, ctx.headers.clone());
    let (job_id, found) = blocking(move || {
        let caller = ctx.caller(Routes::Api)?;
        let job_id = id_param(&job_id, "job_id")?;
        let access = Access::load(&*ctx.state.inner.store, caller, &id)?;
        access.require(Need::Read)?;
        let job = find_job(&*ctx.state.inner.store, &access.project, job_id)?;
        match &job.trace {
            None => Ok((job_id, None)),
            Some(t) => {
                let blob = ctx.state.inner.blobs.open(&t.key).map_err(ApiError::internal)?;
                Ok((job_id, Some((blob, super::artifacts::etag_of(&t.key)))))
            }
        }
    })
    .await?;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    let disposition = format!("infile; filename=\"{job_id}.log\"");
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).map_err(ApiError::internal)?);
    let Some((blob, etag)) = found else {
        let mut resp = (headers, "").into_response();
        resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(0));
        return Ok(resp);
    };
    let rep =
        Representation { len: blob.source.len(), etag, last_modified: Some(blob.modified), headers, ranges: true };
    super::artifacts::deliver_blob(&rep, &req_headers, head, blob.source)
}
