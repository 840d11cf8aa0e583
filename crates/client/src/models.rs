//! GitLab's JSON as typed records. Every field an older GitLab may omit is optional, and
//! unknown fields are ignored, so that new GitLab versions do not break old clients.

use serde::{Deserialize, Serialize};

/// A job's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// created
    Created,
    /// waiting_for_resource
    WaitingForResource,
    /// preparing
    Preparing,
    /// pending
    Pending,
    /// running
    Running,
    /// success
    Success,
    /// failed
    Failed,
    /// canceled
    Canceled,
    /// skipped
    Skipped,
    /// manual
    Manual,
    /// scheduled
    Scheduled,
    /// A status this client does not know yet.
    #[serde(other)]
    Unknown,
}

impl JobStatus {
    /// The API's spelling (what `scope` takes).
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Created => "created",
            JobStatus::WaitingForResource => "waiting_for_resource",
            JobStatus::Preparing => "preparing",
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Success => "success",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
            JobStatus::Skipped => "skipped",
            JobStatus::Manual => "manual",
            JobStatus::Scheduled => "scheduled",
            JobStatus::Unknown => "unknown",
        }
    }

    /// Parses the API's spelling.
    pub fn parse(s: &str) -> Option<JobStatus> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok().filter(|st| *st != JobStatus::Unknown)
    }

    /// Whether the job will not change any more by itself (success, failed, canceled,
    /// skipped); manual jobs wait for someone, so they count as settled too.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Success | JobStatus::Failed | JobStatus::Canceled | JobStatus::Skipped | JobStatus::Manual
        )
    }
}

/// A user as jobs show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: u64,
    /// Login name.
    pub username: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// `active`, `blocked`, ...
    #[serde(default)]
    pub state: Option<String>,
    /// Profile URL.
    #[serde(default)]
    pub web_url: Option<String>,
}

/// A commit as jobs show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    /// The SHA.
    pub id: String,
    /// Its short form.
    #[serde(default)]
    pub short_id: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Author.
    #[serde(default)]
    pub author_name: Option<String>,
}

/// A pipeline as jobs show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineBasic {
    /// Id.
    pub id: u64,
    /// The project.
    #[serde(default)]
    pub project_id: Option<u64>,
    /// Commit.
    #[serde(default)]
    pub sha: Option<String>,
    /// Branch or tag.
    #[serde(rename = "ref", default)]
    pub ref_name: Option<String>,
    /// Status.
    #[serde(default)]
    pub status: Option<String>,
    /// Source (`push`, `parent_pipeline`, ...).
    #[serde(default)]
    pub source: Option<String>,
    /// Web page.
    #[serde(default)]
    pub web_url: Option<String>,
}

/// The archive summary of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactsFile {
    /// `artifacts.zip`.
    pub filename: String,
    /// Bytes.
    pub size: u64,
}

/// One stored artifact file of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// `archive`, `metadata`, `trace`, ...
    pub file_type: String,
    /// Bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// File name.
    #[serde(default)]
    pub filename: Option<String>,
    /// `zip`, `gzip`, `raw`, ...
    #[serde(default)]
    pub file_format: Option<String>,
}

/// A job (GitLab's `Job` entity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Status.
    pub status: JobStatus,
    /// Stage.
    #[serde(default)]
    pub stage: Option<String>,
    /// Branch or tag.
    #[serde(rename = "ref", default)]
    pub ref_name: Option<String>,
    /// Whether `ref` is a tag.
    #[serde(default)]
    pub tag: bool,
    /// Whether failure is allowed.
    #[serde(default)]
    pub allow_failure: bool,
    /// Created (ISO 8601).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Started.
    #[serde(default)]
    pub started_at: Option<String>,
    /// Finished.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Erased.
    #[serde(default)]
    pub erased_at: Option<String>,
    /// Seconds running.
    #[serde(default)]
    pub duration: Option<f64>,
    /// Seconds queued.
    #[serde(default)]
    pub queued_duration: Option<f64>,
    /// The user.
    #[serde(default)]
    pub user: Option<User>,
    /// The commit.
    #[serde(default)]
    pub commit: Option<Commit>,
    /// The pipeline.
    #[serde(default)]
    pub pipeline: Option<PipelineBasic>,
    /// Web page.
    #[serde(default)]
    pub web_url: Option<String>,
    /// The archive, when an unexpired one exists.
    #[serde(default)]
    pub artifacts_file: Option<ArtifactsFile>,
    /// Every stored artifact file.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    /// When the artifacts expire.
    #[serde(default)]
    pub artifacts_expire_at: Option<String>,
    /// Runner tags.
    #[serde(default)]
    pub tag_list: Vec<String>,
    /// Why it failed.
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// Coverage.
    #[serde(default)]
    pub coverage: Option<f64>,
}

/// A bridge (trigger job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bridge {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Status.
    pub status: JobStatus,
    /// Stage.
    #[serde(default)]
    pub stage: Option<String>,
    /// Branch or tag.
    #[serde(rename = "ref", default)]
    pub ref_name: Option<String>,
    /// The pipeline.
    #[serde(default)]
    pub pipeline: Option<PipelineBasic>,
    /// The pipeline it triggered.
    #[serde(default)]
    pub downstream_pipeline: Option<PipelineBasic>,
    /// Web page.
    #[serde(default)]
    pub web_url: Option<String>,
}

/// `GET /version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// `17.6.0`.
    pub version: String,
    /// Short SHA.
    #[serde(default)]
    pub revision: Option<String>,
}

/// A project (`GET /projects/:id`), the fields this client uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Id.
    pub id: u64,
    /// `group/name`.
    pub path_with_namespace: String,
    /// `private`, `internal`, `public`.
    #[serde(default)]
    pub visibility: Option<String>,
    /// Web page.
    #[serde(default)]
    pub web_url: Option<String>,
}

/// What an entry of an artifacts tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TreeKind {
    /// `tree`: a folder.
    Tree,
    /// `blob`: a file.
    Blob,
    /// A kind this client does not know yet.
    #[serde(other)]
    Unknown,
}

/// One entry of a job's artifacts tree (`GET .../jobs/:job_id/artifacts/tree`, an addition
/// of this project's server and proxy beyond GitLab), shaped like an entry of GitLab's
/// repository tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TreeEntry {
    /// The name within its folder.
    pub name: String,
    /// The path within the archive (a folder's without a trailing `/`).
    pub path: String,
    /// A folder or a file.
    #[serde(rename = "type")]
    pub kind: TreeKind,
    /// Git's spelling of its mode: `040000` for a folder, `100644` or `100755` for a file.
    #[serde(default)]
    pub mode: String,
    /// A file's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl TreeEntry {
    /// Whether the entry is a folder.
    pub fn is_folder(&self) -> bool {
        self.kind == TreeKind::Tree
    }
}
