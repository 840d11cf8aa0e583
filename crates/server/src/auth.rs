//! Who is calling and what they may do, by GitLab's rules: personal tokens everywhere, job
//! tokens only on the artifact download routes and only while their job runs, anonymous
//! reads of public projects' artifacts, and 404 (never 403) for a project the caller may not
//! see.

use axum::http::HeaderMap;

use crate::error::{ApiError, ApiResult};
use crate::model::{Job, Project, Role, Status, User};
use crate::query::Query;
use crate::store::{ProjectRef, Store, TokenDigest};

/// A token as presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// `PRIVATE-TOKEN`, `Authorization: Bearer` or `private_token`.
    Personal(String),
    /// `JOB-TOKEN` or `job_token`.
    Job(String),
}

impl Credential {
    /// A digest that tells credentials apart (kind and token), for caches.
    pub(crate) fn digest(cred: Option<&Credential>) -> [u8; 32] {
        match cred {
            None => [0; 32],
            Some(Credential::Personal(t)) => TokenDigest::of(&format!("p:{t}")).0,
            Some(Credential::Job(t)) => TokenDigest::of(&format!("j:{t}")).0,
        }
    }

    /// The request's credential, read as GitLab reads them: a personal token from
    /// `private_token=`, then `PRIVATE-TOKEN`, then `Authorization: Bearer` or
    /// `access_token=`; else a job token from `job_token=`, then `JOB-TOKEN`. Each is
    /// [`present`] or absent: an empty one is no token, and the next is looked at.
    pub(crate) fn from_request(headers: &HeaderMap, query: &Query) -> Option<Credential> {
        let header = |name: &str| present(headers.get(name).and_then(|v| v.to_str().ok()));
        let param = |name: &str| present(query.get(name));
        let personal = param("private_token").or_else(|| header("private-token")).or_else(|| {
            let auth = header("authorization")?;
            let (scheme, token) = auth.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token).and_then(|t| present(Some(t.trim())))
        });
        if let Some(t) = personal.or_else(|| param("access_token")) {
            return Some(Credential::Personal(t.to_owned()));
        }
        param("job_token").or_else(|| header("job-token")).map(|t| Credential::Job(t.to_owned()))
    }
}

/// GitLab's "present or absent" reading of a token (Ruby's `presence`): a missing value,
/// an empty one and one of only spaces are all no token. The one rule for every place a
/// token is read, here and in the proxy.
pub(crate) fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// No credentials (allowed only where anonymous reads are).
    Anonymous,
    /// A personal token's user.
    User(User),
    /// A running job's token: acts as the job's user, within the job's project.
    Job {
        /// The job (boxed: it is much larger than the other variants).
        job: Box<Job>,
        /// Its user, if it has one.
        user: Option<User>,
    },
}

impl Caller {
    pub(crate) fn user(&self) -> Option<&User> {
        match self {
            Caller::Anonymous => None,
            Caller::User(u) => Some(u),
            Caller::Job { user, .. } => user.as_ref(),
        }
    }
}

/// Where a route accepts credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routes {
    /// Jobs endpoints: a personal token is required.
    Api,
    /// Artifact downloads: personal or job token, or anonymous for public projects.
    Artifacts,
}

/// Checks the credential. Unknown tokens are 401 everywhere.
pub(crate) fn authenticate(store: &dyn Store, cred: Option<&Credential>, routes: Routes) -> ApiResult<Caller> {
    match cred {
        None if routes == Routes::Artifacts => Ok(Caller::Anonymous),
        None => Err(ApiError::Unauthorized),
        Some(Credential::Personal(token)) => {
            store.user_by_token(&TokenDigest::of(token))?.map(Caller::User).ok_or(ApiError::Unauthorized)
        }
        Some(Credential::Job(_)) if routes == Routes::Api => Err(ApiError::Unauthorized),
        Some(Credential::Job(token)) => {
            let job = store.job_by_token(&TokenDigest::of(token))?.ok_or(ApiError::Unauthorized)?;
            if job.status != Status::Running {
                return Err(ApiError::Unauthorized);
            }
            let user = match job.user_id {
                Some(id) => store.user(id)?,
                None => None,
            };
            Ok(Caller::Job { job: Box::new(job), user })
        }
    }
}

/// What a caller may do in one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Need {
    /// Read jobs, traces and artifacts.
    Read,
    /// Cancel, retry, erase, play, keep.
    Develop,
    /// Delete artifacts.
    Maintain,
}

/// The project a request names, once the caller is known to see it.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub(crate) caller: Caller,
    pub(crate) project: Project,
    role: Option<Role>,
}

impl Access {
    /// Loads the project; 404 `Project Not Found` when it is missing or hidden from the
    /// caller.
    pub(crate) fn load(store: &dyn Store, caller: Caller, project: &str) -> ApiResult<Access> {
        let project = store.project(&ProjectRef::parse(project))?.ok_or(ApiError::ProjectNotFound)?;
        let role = match caller.user() {
            Some(u) => store.role(project.id, u.id)?,
            None => None,
        };
        let access = Access { caller, project, role };
        if !access.sees_project() {
            return Err(ApiError::ProjectNotFound);
        }
        Ok(access)
    }

    fn admin(&self) -> bool {
        self.caller.user().is_some_and(|u| u.admin)
    }

    fn own_job_token(&self) -> bool {
        matches!(&self.caller, Caller::Job { job, .. } if job.project_id == self.project.id)
    }

    fn sees_project(&self) -> bool {
        self.project.public || self.admin() || self.role.is_some() || self.own_job_token()
    }

    /// 403 unless the caller may do `need`.
    pub(crate) fn require(&self, need: Need) -> ApiResult<()> {
        let allowed = self.admin()
            || match need {
                Need::Read => self.project.public || self.own_job_token() || self.role >= Some(Role::Reporter),
                Need::Develop => self.role >= Some(Role::Developer),
                Need::Maintain => self.role >= Some(Role::Maintainer),
            };
        if allowed { Ok(()) } else { Err(ApiError::Forbidden(None)) }
    }
}
