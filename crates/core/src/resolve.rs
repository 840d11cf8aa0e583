//! Job resolution: from a job reference (a job id, or a ref and a job name) to where that
//! job's artifacts are. The server implements it on its store; the client against a remote
//! GitLab. The engine itself only needs the answer: a location it can open as a [`Source`]
//! (a blob key, a path, a URL).
//!
//! [`Source`]: crate::Source
#![forbid(unsafe_code)]

/// Which job's artifacts: GitLab's two ways of naming them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobRef {
    /// A job by id (`/jobs/:job_id/artifacts`).
    Id(u64),
    /// The latest successful pipeline's job for a branch or tag
    /// (`/jobs/artifacts/:ref_name/download?job=NAME`).
    Latest {
        /// Branch or tag name, exactly (no SHA).
        ref_name: String,
        /// Job name.
        job: String,
    },
}

/// What resolution found: the job and its artifacts' locations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<L> {
    /// The job's id, when the resolver knows it (a remote GitLab resolves refs itself).
    pub job_id: Option<u64>,
    /// The archive, if the job has an unexpired one.
    pub archive: Option<L>,
    /// GitLab's `metadata.gz` for the archive, if there is one.
    pub metadata: Option<L>,
}

/// Turns a [`JobRef`] within a project into the job's artifact locations.
pub trait Resolve {
    /// How the implementation names a project (an id, a path, a loaded record).
    type Project: ?Sized;
    /// Where a blob is (a blob key, a URL).
    type Location;
    /// What can go wrong.
    type Error;

    /// The job `job` names in `project`, or `None` when there is no such job (for
    /// [`JobRef::Latest`]: no successful pipeline for the ref, or no job of that name with
    /// artifacts in it).
    fn resolve(&self, project: &Self::Project, job: &JobRef) -> Result<Option<Resolved<Self::Location>>, Self::Error>;
}
