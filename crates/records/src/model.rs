//! The records the server keeps: users, projects, pipelines and jobs, named as GitLab names
//! them. Rendering them as GitLab's JSON is the server's business.

use crate::time::Timestamp;

/// A job's status, exactly GitLab's eleven values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Created, not yet queued.
    Created,
    /// Waiting for a resource group.
    WaitingForResource,
    /// A runner is preparing the environment.
    Preparing,
    /// Queued for a runner.
    Pending,
    /// Running on a runner.
    Running,
    /// Finished successfully.
    Success,
    /// Finished with a failure.
    Failed,
    /// Canceled.
    Canceled,
    /// Skipped.
    Skipped,
    /// Waiting for someone to play it.
    Manual,
    /// A delayed job waiting for its time.
    Scheduled,
}

impl Status {
    /// All statuses, in GitLab's order.
    pub const ALL: [Status; 11] = [
        Status::Created,
        Status::WaitingForResource,
        Status::Preparing,
        Status::Pending,
        Status::Running,
        Status::Success,
        Status::Failed,
        Status::Canceled,
        Status::Skipped,
        Status::Manual,
        Status::Scheduled,
    ];

    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::WaitingForResource => "waiting_for_resource",
            Status::Preparing => "preparing",
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Success => "success",
            Status::Failed => "failed",
            Status::Canceled => "canceled",
            Status::Skipped => "skipped",
            Status::Manual => "manual",
            Status::Scheduled => "scheduled",
        }
    }

    /// Parses the API's spelling exactly (no case folding: GitLab rejects `Success`).
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether cancel applies: created, waiting_for_resource, preparing, pending, running,
    /// manual and scheduled jobs can be canceled.
    pub fn is_cancelable(self) -> bool {
        matches!(
            self,
            Status::Created
                | Status::WaitingForResource
                | Status::Preparing
                | Status::Pending
                | Status::Running
                | Status::Manual
                | Status::Scheduled
        )
    }

    /// Whether retry applies by status (success, failed, canceled); a job already retried is
    /// never retryable again (see `Job::retried`).
    pub fn is_retryable(self) -> bool {
        matches!(self, Status::Success | Status::Failed | Status::Canceled)
    }

    /// Whether the job has finished running (success, failed, canceled, skipped).
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Success | Status::Failed | Status::Canceled | Status::Skipped)
    }
}

/// A member's role in a project, ordered by power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Guest (10).
    Guest,
    /// Reporter (20): reads jobs of private projects.
    Reporter,
    /// Developer (30): cancels, retries, plays, keeps; erases the jobs they started.
    Developer,
    /// Maintainer (40): erases any job, deletes artifacts.
    Maintainer,
    /// Owner (50).
    Owner,
}

impl Role {
    /// Parses `guest` ... `owner`.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "guest" => Role::Guest,
            "reporter" => Role::Reporter,
            "developer" => Role::Developer,
            "maintainer" => Role::Maintainer,
            "owner" => Role::Owner,
            _ => return None,
        })
    }

    /// GitLab's access level number.
    pub fn access_level(self) -> i64 {
        match self {
            Role::Guest => 10,
            Role::Reporter => 20,
            Role::Developer => 30,
            Role::Maintainer => 40,
            Role::Owner => 50,
        }
    }

    /// The inverse of [`Role::access_level`].
    pub fn from_access_level(level: i64) -> Option<Role> {
        [Role::Guest, Role::Reporter, Role::Developer, Role::Maintainer, Role::Owner]
            .into_iter()
            .find(|r| r.access_level() == level)
    }
}

/// When a job runs, as `.gitlab-ci.yml`'s `when` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Runs when earlier stages succeed.
    OnSuccess,
    /// Runs when someone plays it.
    Manual,
    /// Runs after a delay (or when played).
    Delayed,
}

impl When {
    /// The `.gitlab-ci.yml` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            When::OnSuccess => "on_success",
            When::Manual => "manual",
            When::Delayed => "delayed",
        }
    }

    /// Parses the `.gitlab-ci.yml` spelling.
    pub fn parse(s: &str) -> Option<When> {
        [When::OnSuccess, When::Manual, When::Delayed].into_iter().find(|w| w.as_str() == s)
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Numeric id.
    pub id: i64,
    /// Login name (unique).
    pub username: String,
    /// Display name.
    pub name: String,
    /// Administrators read and act on every project.
    pub admin: bool,
    /// When the user was made.
    pub created_at: Timestamp,
}

/// What a personal access token may do: GitLab's scopes that this API knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Everything the token's user may do.
    Api,
    /// Reads only: `GET` and `HEAD`.
    ReadApi,
    /// An administrator's token acting as another user (`Sudo`); grants no access itself.
    Sudo,
}

impl Scope {
    /// Every scope, in GitLab's order.
    pub const ALL: [Scope; 3] = [Scope::Api, Scope::ReadApi, Scope::Sudo];

    /// The name GitLab uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Api => "api",
            Scope::ReadApi => "read_api",
            Scope::Sudo => "sudo",
        }
    }

    /// A scope by its GitLab name.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A personal access token's record. The token itself is never stored, only its digest.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonalToken {
    /// Numeric id (what `admin token revoke --id` takes).
    pub id: i64,
    /// Whose token it is.
    pub user_id: i64,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// The day it stops working (`YYYY-MM-DD`, UTC): valid through the day before, as in
    /// GitLab.
    pub expires_at: Option<String>,
    /// Revoked tokens never work again.
    pub revoked: bool,
    /// When it was made.
    pub created_at: Timestamp,
}

impl PersonalToken {
    /// Whether it carries `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether it has expired on `today` (`YYYY-MM-DD`, UTC).
    pub fn expired(&self, today: &str) -> bool {
        self.expires_at.as_deref().is_some_and(|day| day <= today)
    }
}

/// A project.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// Numeric id.
    pub id: i64,
    /// `group/subgroup/name`, unique.
    pub full_path: String,
    /// Anyone may read a public project's jobs and artifacts.
    pub public: bool,
    /// GitLab's "Keep artifacts from most recent successful jobs" (`keep_latest_artifact`,
    /// on unless turned off): the artifacts of the newest successful pipeline of each ref,
    /// and of its child pipelines, stay readable after they expire.
    pub keep_latest_artifact: bool,
    /// When the project was made.
    pub created_at: Timestamp,
}

impl Project {
    /// The last path segment.
    pub fn path(&self) -> &str {
        self.full_path.rsplit('/').next().unwrap_or(&self.full_path)
    }
}

/// A pipeline and the commit it ran for.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Numeric id (unique across projects, like GitLab's).
    pub id: i64,
    /// Per-project number.
    pub iid: i64,
    /// The project.
    pub project_id: i64,
    /// Branch or tag.
    pub ref_name: String,
    /// Whether `ref_name` is a tag.
    pub tag: bool,
    /// The commit.
    pub sha: String,
    /// Follows its jobs (see [`composite_status`]).
    pub status: Status,
    /// `push`, `parent_pipeline`, `web`, ...
    pub source: String,
    /// The pipeline whose bridge started this one.
    pub parent_id: Option<i64>,
    /// The user who started it.
    pub user_id: Option<i64>,
    /// Created.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// Whether a job is a build (runs a script) or a bridge (triggers another pipeline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// A build job.
    Build,
    /// A trigger job.
    Bridge,
}

/// A stored blob: its key in the blob store and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// The key in the blob store (the server's `Blobs`).
    pub key: String,
    /// Bytes.
    pub size: u64,
}

/// A job (build or bridge).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Numeric id.
    pub id: i64,
    /// The project.
    pub project_id: i64,
    /// The pipeline.
    pub pipeline_id: i64,
    /// Build or bridge.
    pub kind: JobKind,
    /// Job name.
    pub name: String,
    /// Stage.
    pub stage: String,
    /// Status.
    pub status: Status,
    /// `when`.
    pub when: When,
    /// Whether failure is allowed.
    pub allow_failure: bool,
    /// Replaced by a retry: hidden from ref resolution and, by default, from pipeline lists.
    pub retried: bool,
    /// Coverage percentage.
    pub coverage: Option<f64>,
    /// Why it failed (only meaningful when failed).
    pub failure_reason: Option<String>,
    /// The user who started it (GitLab's `user`): it runs as them, and of the developers
    /// only they may erase it.
    pub user_id: Option<i64>,
    /// Created.
    pub created_at: Timestamp,
    /// Queued (pending) since.
    pub queued_at: Option<Timestamp>,
    /// Started running.
    pub started_at: Option<Timestamp>,
    /// Finished.
    pub finished_at: Option<Timestamp>,
    /// Erased.
    pub erased_at: Option<Timestamp>,
    /// Who erased it.
    pub erased_by: Option<i64>,
    /// The artifacts archive.
    pub archive: Option<BlobRef>,
    /// GitLab's `metadata.gz` for the archive.
    pub metadata: Option<BlobRef>,
    /// The log.
    pub trace: Option<BlobRef>,
    /// When the artifacts expire (None: never).
    pub artifacts_expire_at: Option<Timestamp>,
    /// Runner tags.
    pub tag_list: Vec<String>,
    /// The bridge's child pipeline.
    pub downstream_pipeline_id: Option<i64>,
    /// Bumped by every write; a write names the version it read and fails if another
    /// write came first (optimistic locking, as GitLab's `lock_version`).
    pub lock_version: i64,
}

impl Job {
    /// The archive, if it exists and has not expired at `now` (a project that keeps its
    /// latest artifacts may still serve an expired one: see [`Project::keep_latest_artifact`]).
    pub fn live_archive(&self, now: Timestamp) -> Option<&BlobRef> {
        match self.artifacts_expire_at {
            Some(at) if at <= now => None,
            _ => self.archive.as_ref(),
        }
    }
}

/// A pipeline's status from its jobs' (retried jobs excluded), by GitLab's composite rule
/// (`Gitlab::Ci::Status::Composite`): allowed failures count as warnings, manual jobs that
/// may fail are ignored.
pub fn composite_status(jobs: impl IntoIterator<Item = (Status, bool)>) -> Status {
    use Status::*;
    let mut seen: Vec<Status> = Vec::new();
    let mut ignored_only = true;
    for (status, allow_failure) in jobs {
        // Ignored: a failed job allowed to fail (success with warnings) and a manual job
        // allowed to fail; both stop counting as themselves.
        let ignored = allow_failure && matches!(status, Failed | Canceled | Manual);
        if ignored {
            continue;
        }
        ignored_only = false;
        if !seen.contains(&status) {
            seen.push(status);
        }
    }
    let only = |set: &[Status]| seen.iter().all(|s| set.contains(s));
    let any = |s: Status| seen.contains(&s);
    if seen.is_empty() {
        if ignored_only { Skipped } else { Success }
    } else if only(&[Skipped]) {
        Skipped
    } else if only(&[Success, Skipped]) {
        Success
    } else if only(&[Created]) {
        Created
    } else if only(&[Preparing]) {
        Preparing
    } else if only(&[Canceled, Success, Skipped]) {
        Canceled
    } else if only(&[Pending, Created, Skipped]) {
        Pending
    } else if any(Running) || any(Pending) {
        Running
    } else if any(WaitingForResource) {
        WaitingForResource
    } else if any(Manual) {
        Manual
    } else if any(Scheduled) {
        Scheduled
    } else if any(Preparing) {
        Preparing
    } else if any(Created) {
        Running
    } else {
        Failed
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    #[test]
    fn pipeline_status_follows_jobs_like_gitlab() {
        assert_eq!(composite_status([(Success, false), (Skipped, false)]), Success);
        assert_eq!(composite_status([(Success, false), (Failed, true)]), Success);
        assert_eq!(composite_status([(Success, false), (Failed, false)]), Failed);
        assert_eq!(composite_status([(Success, false), (Running, false)]), Running);
        assert_eq!(composite_status([(Success, false), (Manual, false)]), Manual);
        assert_eq!(composite_status([(Success, false), (Manual, true)]), Success);
        assert_eq!(composite_status([(Success, false), (Canceled, false)]), Canceled);
        assert_eq!(composite_status([(Pending, false), (Created, false)]), Pending);
        assert_eq!(composite_status([(Success, false), (Created, false)]), Running);
        assert_eq!(composite_status([(Failed, false), (Scheduled, false)]), Scheduled);
        assert_eq!(composite_status([]), Skipped);
    }

    #[test]
    fn statuses_parse_exactly() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("Success"), None);
        assert_eq!(Status::parse("success "), None);
    }
}
