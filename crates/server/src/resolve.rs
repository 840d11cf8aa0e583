//! The engine's [`Resolve`] trait on the store: job id, or ref + job name, to blob keys.

use artifact_core::{JobRef, Resolve, Resolved};

use crate::keep::Keeping;
use crate::model::{BlobRef, JobKind, Project};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// Resolves job references within a project through a [`Store`].
#[derive(Debug, Clone, Copy)]
pub struct StoreResolver<'a> {
    /// The store.
    pub store: &'a dyn Store,
    /// Archives that expired before this are treated as gone, unless their project keeps
    /// them (see `crate::keep`).
    pub now: Timestamp,
}

impl Resolve for StoreResolver<'_> {
    type Project = Project;
    type Location = BlobRef;
    type Error = StoreError;

    fn resolve(&self, project: &Project, job: &JobRef) -> Result<Option<Resolved<BlobRef>>, StoreError> {
        let keeping = Keeping::new(self.store, self.now);
        let job = match job {
            JobRef::Id(id) => {
                let id = i64::try_from(*id).unwrap_or(i64::MAX);
                self.store.job(id)?.filter(|j| j.project_id == project.id && j.kind == JobKind::Build)
            }
            JobRef::Latest { ref_name, job } => {
                // The resolved pipeline's jobs are usually kept (not while a retry runs the
                // kept one again): the first of the name if it is, else an unexpired one.
                let store = self.store;
                let kept = match project.keep_latest_artifact {
                    true => store.latest_job_with_artifacts(project.id, ref_name, job, None)?,
                    false => None,
                };
                match kept {
                    Some(found) if keeping.archive(project, &found)?.is_some() => Some(found),
                    _ => store.latest_job_with_artifacts(project.id, ref_name, job, Some(self.now.0))?,
                }
            }
        };
        let Some(job) = job else { return Ok(None) };
        let archive = keeping.archive(project, &job)?.cloned();
        let metadata = archive.as_ref().and(job.metadata.clone());
        Ok(Some(Resolved { job_id: Some(job.id.max(0) as u64), archive, metadata }))
    }
}
