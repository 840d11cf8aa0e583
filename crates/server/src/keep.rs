//! GitLab's "Keep artifacts from most recent successful jobs": a project that keeps its
//! latest artifacts (the default, [`Project::keep_latest_artifact`]) serves the artifacts
//! of the newest pipeline of each ref that has succeeded (see
//! [`Jobs::is_latest_successful`](crate::Jobs::is_latest_successful)), and of that pipeline's child pipelines, after they
//! expire, so that links by ref (`.../jobs/artifacts/main/raw/...`) keep working until a
//! newer pipeline of the ref succeeds. Nothing is ever removed for expiring (`admin
//! gc` collects only blobs no job refers to), so keeping is a rule of reading alone: turning
//! the setting off lets every expired archive go at once.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::model::{BlobRef, Job, Project};
use crate::store::{Store, StoreResult};
use crate::time::Timestamp;

/// Which archives a reader may have at one moment, asking the store at most once per
/// pipeline (and only for archives that expired).
pub(crate) struct Keeping<'a> {
    store: &'a dyn Store,
    now: Timestamp,
    latest: RefCell<HashMap<i64, bool>>,
}

impl<'a> Keeping<'a> {
    /// Reads at `now`.
    pub(crate) fn new(store: &'a dyn Store, now: Timestamp) -> Keeping<'a> {
        Keeping { store, now, latest: RefCell::new(HashMap::new()) }
    }

    /// The job's archive if a reader may have it: it has not expired, or `project` (the
    /// job's) keeps its latest artifacts and the job's pipeline is the latest successful.
    pub(crate) fn archive<'j>(&self, project: &Project, job: &'j Job) -> StoreResult<Option<&'j BlobRef>> {
        let Some(archive) = &job.archive else { return Ok(None) };
        if job.live_archive(self.now).is_some() || self.kept(project, job)? {
            return Ok(Some(archive));
        }
        Ok(None)
    }

    /// Whether the job's artifacts are kept past their expiry.
    fn kept(&self, project: &Project, job: &Job) -> StoreResult<bool> {
        if !project.keep_latest_artifact || job.project_id != project.id {
            return Ok(false);
        }
        if let Some(&kept) = self.latest.borrow().get(&job.pipeline_id) {
            return Ok(kept);
        }
        let kept = self.store.is_latest_successful(job.pipeline_id)?;
        self.latest.borrow_mut().insert(job.pipeline_id, kept);
        Ok(kept)
    }
}
