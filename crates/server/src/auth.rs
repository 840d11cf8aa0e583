//! Who is calling and what they may do, by GitLab's rules: personal tokens everywhere, job
//! tokens only on the artifact download routes and only while their job runs, anonymous
//! reads of public projects' artifacts, and 404 (never 403) for a project the caller may not
//! see.

use crate::error::StoreAnswer;
use crate::error::{ApiError, ApiResult};
use crate::model::{Job, Project, Role, Scope, Status, User};
use crate::store::{ProjectRef, Store, TokenDigest};

use crate::time::Timestamp;
pub(crate) use artifact_gitlab::credentials::{Credential, Presented};

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

/// Checks what the request presents, in GitLab's order: the token (unknown: 401; expired or
/// revoked: 401 `invalid_token`), its scopes for this request (403 `insufficient_scope`),
/// then `Sudo` (403 unless an administrator's token with the `sudo` scope; 404 for an
/// unknown user), which makes the caller that user.
pub(crate) fn authenticate(store: &dyn Store, presented: &Presented, routes: Routes) -> ApiResult<Caller> {
    let caller = match &presented.credential {
        None if presented.sudo.is_some() => return Err(ApiError::Unauthorized),
        None if routes == Routes::Artifacts => return Ok(Caller::Anonymous),
        None => return Err(ApiError::Unauthorized),
        Some(personal @ (Credential::Personal(_) | Credential::Digest(_))) => {
            let digest = match personal {
                Credential::Digest(digest) => TokenDigest(*digest),
                Credential::Personal(token) | Credential::Job(token) => TokenDigest::of(token),
            };
            let (record, user) = store.personal_token(&digest).api()?.ok_or(ApiError::Unauthorized)?;
            if record.expired(&Timestamp::now().day()) {
                return Err(ApiError::InvalidToken(
                    "Token is expired. You can either do re-authorization or token refresh.",
                ));
            }
            if record.revoked {
                return Err(ApiError::InvalidToken("Token was revoked. You have to re-authorize from the user."));
            }
            if let Some(who) = &presented.sudo {
                if !user.admin {
                    return Err(ApiError::Forbidden(Some("Must be admin to use sudo")));
                }
                if !record.has(Scope::Sudo) {
                    return Err(ApiError::InsufficientScope("sudo"));
                }
                let target = find_user(store, who)?
                    .ok_or_else(|| ApiError::NotFoundText(format!("User with ID or username '{who}' Not Found")))?;
                // Acting as someone else needs only `sudo`; acting as oneself, the
                // request's own scope as always.
                if target.id != user.id {
                    return Ok(Caller::User(target));
                }
            }
            let allowed = record.has(Scope::Api) || (record.has(Scope::ReadApi) && !presented.write);
            if !allowed {
                // GitLab names every scope registered for the endpoint, whatever the method.
                return Err(ApiError::InsufficientScope("api read_api"));
            }
            return Ok(Caller::User(user));
        }
        Some(Credential::Job(_)) if routes == Routes::Api => return Err(ApiError::Unauthorized),
        Some(Credential::Job(token)) => {
            let job = store.job_by_token(&TokenDigest::of(token)).api()?.ok_or(ApiError::Unauthorized)?;
            if job.status != Status::Running {
                return Err(ApiError::Unauthorized);
            }
            let user = match job.user_id {
                Some(id) => store.user(id).api()?,
                None => None,
            };
            Caller::Job { job: Box::new(job), user }
        }
    };
    if presented.sudo.is_some() {
        // Only a personal token may act as someone else.
        return Err(match caller.user() {
            Some(u) if u.admin => {
                ApiError::Forbidden(Some("Must be authenticated using an OAuth or personal access token to use sudo"))
            }
            _ => ApiError::Forbidden(Some("Must be admin to use sudo")),
        });
    }
    Ok(caller)
}

/// A user by numeric id or by username, as `Sudo` names them.
fn find_user(store: &dyn Store, who: &str) -> ApiResult<Option<User>> {
    if !who.is_empty() && who.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(match who.parse::<i64>() {
            Ok(id) => store.user(id).api()?,
            Err(_) => None,
        });
    }
    store.user_by_username(who).api()
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
        let project = store.project(&ProjectRef::parse(project)).api()?.ok_or(ApiError::ProjectNotFound)?;
        let role = match caller.user() {
            Some(u) => store.role(project.id, u.id).api()?,
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
