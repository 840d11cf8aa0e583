//! The pages for people (`artifact_gitlab::pages`) from the server's own records and blobs:
//! a directory from the job's `metadata.gz`, an entry through endpoint 7's own call
//! (`super::artifacts::entry`), sessions and grants in the store (`crate::sessions`).

use artifact_core::JobRef;
use artifact_core::metadata::MetadataReader;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

use artifact_core::ArtifactPath;
use artifact_gitlab::pages::{
    Children, Directory, Expiry, JOBS_PER_PAGE, JobHead, JobList, JobRow, Listed, PageSource, Who, minutes,
};

use super::jobs::find_job;
use super::{Asker, base_url, blocking};
use crate::auth::{Caller, Credential, Need, Presented, Routes, authenticate};
use crate::error::StoreAnswer;
use crate::error::{ApiError, ApiResult};
use crate::keep::Keeping;
use crate::sessions;
use crate::state::AppState;
use crate::time::Timestamp;

/// The router's fallback: the pages, or the API's `404` for any other path.
pub(crate) async fn pages(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    artifact_gitlab::pages::visit(&Local(state), &method, &uri, &headers, &body).await
}

/// The server's own store and blobs.
struct Local(AppState);

impl Local {
    /// The visitor `who` as the caller of the domain-level calls.
    fn asker(&self, who: &Who) -> Asker {
        Asker {
            state: self.0.clone(),
            presented: match &who.credential {
                Some(credential) => Presented { credential: Some(credential.clone()), write: false, sudo: None },
                None => Presented::from_request(&Method::GET, &who.headers, &who.query),
            },
            headers: who.headers.clone(),
            head: who.head,
        }
    }
}

/// Job `job` of `project` and its archive, when `ask` may read them (else why not: the
/// archive gone or never there is `404`). On the blocking pool.
fn readable_job(ask: &Asker, project: &str, job: i64) -> ApiResult<(crate::model::Job, crate::model::BlobRef)> {
    let access = ask.access(Routes::Artifacts, project)?;
    access.require(Need::Read)?;
    let store = &*ask.state.inner.store;
    let found = find_job(store, &access.project, job)?;
    let archive = Keeping::new(store, Timestamp::now()).archive(&access.project, &found).api()?.cloned();
    let archive = archive.ok_or(ApiError::NotFound("Not found"))?;
    Ok((found, archive))
}

impl PageSource for Local {
    async fn open_session(&self, token: &str) -> ApiResult<String> {
        let (store, token) = (self.0.inner.store.clone(), token.to_owned());
        blocking(move || sessions::open_stored(&*store, &token)).await
    }

    async fn session(&self, id: &str) -> ApiResult<Option<Credential>> {
        let (store, id) = (self.0.inner.store.clone(), id.to_owned());
        blocking(move || sessions::stored_session(&*store, &id)).await
    }

    async fn close_session(&self, id: &str) -> ApiResult<()> {
        let (store, id) = (self.0.inner.store.clone(), id.to_owned());
        blocking(move || sessions::close_stored(&*store, &id)).await
    }

    async fn grant(&self, session: &str, credential: &Credential, project: &str, job: i64) -> ApiResult<String> {
        let Credential::Digest(token) = *credential else {
            return Err(ApiError::Unauthorized);
        };
        let (store, session, project) = (self.0.inner.store.clone(), session.to_owned(), project.to_owned());
        blocking(move || sessions::grant_stored(&*store, &session, crate::store::TokenDigest(token), &project, job))
            .await
    }

    async fn readable(&self, who: &Who, project: &str, job: i64) -> ApiResult<()> {
        let ask = self.asker(who);
        let project = project.to_owned();
        blocking(move || readable_job(&ask, &project, job).map(drop)).await
    }

    async fn granted(&self, id: &str) -> ApiResult<Option<(Credential, String, i64)>> {
        let (store, id) = (self.0.inner.store.clone(), id.to_owned());
        blocking(move || sessions::stored_grant(&*store, &id)).await
    }

    fn artifacts_origin(&self) -> Option<&str> {
        self.0.inner.artifacts_origin.as_deref()
    }

    fn base(&self, headers: &HeaderMap) -> String {
        base_url(self.0.inner.base_url.as_deref(), headers)
    }

    async fn signs_in(&self, token: &str) -> ApiResult<bool> {
        let presented =
            Presented { credential: Some(Credential::Personal(token.to_owned())), write: false, sudo: None };
        let store = self.0.inner.store.clone();
        blocking(move || match authenticate(&*store, &presented, Routes::Api) {
            Ok(Caller::User(_)) => Ok(true),
            Err(e @ ApiError::Unavailable(_)) => Err(e),
            _ => Ok(false),
        })
        .await
    }

    async fn directory(&self, who: &Who, project: &str, job: i64, dir: &str, page: usize) -> ApiResult<Directory> {
        let ask = self.asker(who);
        let (project, dir) = (project.to_owned(), dir.to_owned());
        blocking(move || {
            let (found, archive) = readable_job(&ask, &project, job)?;
            let Some(metadata) = &found.metadata else {
                return Err(ApiError::NotFound("Not found"));
            };
            let tree = listed(&ask.state, metadata)?;
            Children::of(&dir).with(&tree).page(page, Some(archive.size))
        })
        .await
    }

    async fn heading(&self, who: &Who, project: &str, job: i64) -> Option<JobHead> {
        let ask = self.asker(who);
        let project = project.to_owned();
        let head = blocking(move || {
            let (found, _) = readable_job(&ask, &project, job)?;
            let store = &*ask.state.inner.store;
            let ref_name = store.pipeline(found.pipeline_id).api()?.map(|p| p.ref_name).unwrap_or_default();
            // The archive is live (`readable_job` found it): past its expiry, it is kept.
            let expiry = match found.artifacts_expire_at {
                None => Expiry::Never,
                Some(at) if at > Timestamp::now() => Expiry::At(minutes(at.0 / 1000)),
                Some(_) => Expiry::Kept,
            };
            Ok(JobHead {
                name: found.name,
                id: found.id,
                status: found.status.as_str().to_owned(),
                ref_name,
                pipeline: found.pipeline_id,
                expiry,
            })
        })
        .await;
        head.inspect_err(|e| tracing::debug!(error = ?e, "no head for a page")).ok()
    }

    async fn jobs(&self, who: &Who, project: &str, pipeline: Option<i64>, page: u64) -> ApiResult<JobList> {
        let ask = self.asker(who);
        let project = project.to_owned();
        blocking(move || {
            let access = ask.access(Routes::Artifacts, &project)?;
            access.require(Need::Read)?;
            let store = &*ask.state.inner.store;
            let ref_of = |pipeline_id: i64| store.pipeline(pipeline_id).ok().flatten();
            if let Some(id) = pipeline {
                match ref_of(id) {
                    Some(p) if p.project_id == access.project.id => {}
                    _ => return Err(ApiError::NotFound("Not found")),
                }
            }
            let query = crate::store::JobQuery {
                project_id: access.project.id,
                pipeline_id: pipeline,
                kind: crate::model::JobKind::Build,
                scope: Vec::new(),
                include_retried: pipeline.is_some(),
                newest_first: pipeline.is_none(),
                before_id: None,
                count: true,
                offset: (page - 1).saturating_mul(JOBS_PER_PAGE),
                limit: JOBS_PER_PAGE,
            };
            let listing = store.list_jobs(&query).api()?;
            let keeping = Keeping::new(store, Timestamp::now());
            let mut refs: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
            let rows = listing
                .rows
                .iter()
                .map(|job| {
                    Ok(JobRow {
                        id: job.id,
                        name: job.name.clone(),
                        stage: job.stage.clone(),
                        ref_name: refs
                            .entry(job.pipeline_id)
                            .or_insert_with(|| ref_of(job.pipeline_id).map(|p| p.ref_name).unwrap_or_default())
                            .clone(),
                        pipeline: job.pipeline_id,
                        status: job.status.as_str().to_owned(),
                        finished: job.finished_at.map(|t| minutes(t.0.div_euclid(1000))),
                        browsable: keeping.archive(&access.project, job).api()?.is_some(),
                    })
                })
                .collect::<ApiResult<_>>()?;
            let pages = listing.total.div_ceil(JOBS_PER_PAGE).max(1);
            Ok(JobList { project: access.project.full_path.clone(), rows, pages })
        })
        .await
    }

    async fn latest(&self, who: &Who, project: &str, ref_name: &str, job: &str) -> ApiResult<i64> {
        let ask = self.asker(who);
        let project = project.to_owned();
        let job = JobRef::Latest { ref_name: ref_name.to_owned(), job: job.to_owned() };
        blocking(move || {
            use artifact_core::Resolve as _;
            let access = ask.access(Routes::Artifacts, &project)?;
            access.require(Need::Read)?;
            let resolver = crate::resolve::StoreResolver { store: &*ask.state.inner.store, now: Timestamp::now() };
            let resolved = resolver.resolve(&access.project, &job).api()?;
            resolved.and_then(|r| r.job_id).map(|id| id as i64).ok_or(ApiError::NotFound("Not found"))
        })
        .await
    }

    async fn entry(&self, who: &Who, project: &str, job: i64, path: &ArtifactPath) -> ApiResult<Response> {
        let ask = self.asker(who);
        super::artifacts::entry(ask, project.to_owned(), JobRef::Id(job as u64), path.clone()).await
    }
}

/// Every path of the archive whose `metadata.gz` is `metadata` (without those that are not
/// UTF-8 or that the path rule refuses, which no download could reach), kept for the last
/// few archives listed: a blob's key never names other bytes, so the list kept for it
/// holds. On the blocking pool.
pub(crate) fn listed(state: &AppState, metadata: &crate::model::BlobRef) -> ApiResult<std::sync::Arc<Listed>> {
    state.inner.trees.of(metadata.key.clone(), || {
        let open = state.inner.blobs.open(&metadata.key).map_err(ApiError::internal)?;
        let stream = open.source.read_stream(0, open.source.len()).map_err(ApiError::internal)?;
        let mut reader = MetadataReader::new(stream).map_err(ApiError::internal)?;
        let mut listed = Listed::default();
        while let Some(entry) = reader.next_ref().map_err(ApiError::internal)? {
            if ArtifactPath::new(entry.path.trim_end_matches('/')).is_err() {
                continue;
            }
            let mode = entry.mode().and_then(|m| u32::from_str_radix(m, 8).ok());
            listed.push_with_mode(entry.path, entry.size(), entry.modified(), mode);
        }
        Ok(listed)
    })
}
