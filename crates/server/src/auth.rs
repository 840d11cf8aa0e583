//! Who is calling and what they may do, by GitLab's rules: personal tokens everywhere, job
//! tokens only on the artifact download routes and only while their job runs, anonymous
//! reads of public projects' artifacts, and 404 (never 403) for a project the caller may not
//! see.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::error::{ApiError, ApiResult};
use crate::model::{Job, Project, Role, Scope, Status, User};
use crate::query::Query;
use crate::store::{ProjectRef, Store, TokenDigest};
use crate::time::Timestamp;

/// The request headers that carry a credential, or whom it acts as (`Sudo`).
pub(crate) const CREDENTIAL_HEADERS: [&str; 4] = ["private-token", "job-token", "authorization", "sudo"];

/// A token as presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// `PRIVATE-TOKEN`, `Authorization: Bearer` or `private_token`.
    Personal(String),
    /// `JOB-TOKEN` or `job_token`.
    Job(String),
    /// A personal access token known by its digest only: what a browser session of the
    /// pages signs in with (`crate::routes::browse`). Never read from a request.
    Digest(TokenDigest),
}

impl Credential {
    /// A digest that tells credentials apart (kind and token), for caches.
    pub(crate) fn digest(cred: Option<&Credential>) -> [u8; 32] {
        match cred {
            None => [0; 32],
            Some(Credential::Personal(t)) => TokenDigest::of(&format!("p:{t}")).0,
            Some(Credential::Job(t)) => TokenDigest::of(&format!("j:{t}")).0,
            Some(Credential::Digest(d)) => TokenDigest::of(&format!("d:{}", crate::ids::hex(&d.0))).0,
        }
    }

    /// The request's credential, read as GitLab reads them: a personal token from
    /// `private_token=`, `PRIVATE-TOKEN`, `access_token=`, `Authorization: Bearer` or
    /// `bearer_token=`; else a job token from `job_token=`, `token=` or `JOB-TOKEN`, in that
    /// order. Each is [`present`] or absent: an empty one is no token, and the next is
    /// looked at.
    pub(crate) fn from_request(headers: &HeaderMap, query: &Query) -> Option<Credential> {
        Some(match Form::read(headers, query)? {
            (Form::PrivateToken | Form::Bearer, token) => Credential::Personal(token.to_owned()),
            (Form::JobToken, token) => Credential::Job(token.to_owned()),
        })
    }
}

/// How a request's credential is presented, in the one header form that says the same
/// upstream: what a proxy sends, so that the upstream judges exactly the credential its
/// grants are remembered under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// A personal token as `PRIVATE-TOKEN` (or `private_token=`).
    PrivateToken,
    /// A personal or OAuth token as `Authorization: Bearer` (or `access_token=`,
    /// `bearer_token=`).
    Bearer,
    /// A job token as `JOB-TOKEN` (or `job_token=`, `token=`).
    JobToken,
}

impl Form {
    /// The credential [`Credential::from_request`] reads, with its form.
    pub(crate) fn read<'a>(headers: &'a HeaderMap, query: &'a Query) -> Option<(Form, &'a str)> {
        let header = |name: &str| present(headers.get(name).and_then(|v| v.to_str().ok()));
        let param = |name: &str| present(query.get(name));
        let bearer = || {
            let auth = header("authorization")?;
            let (scheme, token) = auth.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token).and_then(|t| present(Some(t.trim())))
        };
        let private = param("private_token").or_else(|| header("private-token"));
        if let Some(t) = private {
            return Some((Form::PrivateToken, t));
        }
        if let Some(t) = param("access_token").or_else(bearer).or_else(|| param("bearer_token")) {
            return Some((Form::Bearer, t));
        }
        let job = param("job_token").or_else(|| param("token")).or_else(|| header("job-token"));
        job.map(|t| (Form::JobToken, t))
    }

    /// The header that presents `token` in this form.
    pub(crate) fn header(self, token: &str) -> Option<(HeaderName, HeaderValue)> {
        let (name, value) = match self {
            Form::PrivateToken => (HeaderName::from_static("private-token"), token.to_owned()),
            Form::Bearer => (axum::http::header::AUTHORIZATION, format!("Bearer {token}")),
            Form::JobToken => (HeaderName::from_static("job-token"), token.to_owned()),
        };
        Some((name, HeaderValue::from_str(&value).ok()?))
    }
}

/// GitLab's "present or absent" reading of a token (Ruby's `presence`): a missing value,
/// an empty one and one of only spaces are all no token. The one rule for every place a
/// token is read, here and in the proxy.
pub(crate) fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

/// What a request presents to authenticate: its credential, whether it changes anything
/// (a token's scopes decide whether it may), and whom it asks to act as (`Sudo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Presented {
    pub(crate) credential: Option<Credential>,
    /// Not `GET` or `HEAD`: a `read_api` token may not.
    pub(crate) write: bool,
    /// A user id or username from the `sudo` parameter or the `Sudo` header.
    pub(crate) sudo: Option<String>,
}

impl Presented {
    /// Reads the credential ([`Credential::from_request`]) and `sudo=` or `Sudo:`, the
    /// parameter first. Unlike a token, an empty `Sudo` is not absent: GitLab reads it as
    /// given, and so names no user.
    pub(crate) fn from_request(method: &Method, headers: &HeaderMap, query: &Query) -> Presented {
        let sudo = query
            .get("sudo")
            .or_else(|| headers.get("sudo").map(|v| v.to_str().unwrap_or("")))
            .map(|s| s.trim().to_owned());
        Presented {
            credential: Credential::from_request(headers, query),
            write: !matches!(*method, Method::GET | Method::HEAD),
            sudo,
        }
    }

    /// A digest that tells callers apart for caches: the credential and whom it acts as.
    pub(crate) fn digest(&self) -> [u8; 32] {
        let credential = Credential::digest(self.credential.as_ref());
        match &self.sudo {
            None => credential,
            Some(who) => TokenDigest::of(&format!("{} as {who}", crate::ids::hex(&credential))).0,
        }
    }
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
                Credential::Digest(digest) => *digest,
                Credential::Personal(token) | Credential::Job(token) => TokenDigest::of(token),
            };
            let (record, user) = store.personal_token(&digest)?.ok_or(ApiError::Unauthorized)?;
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
                    return Err(ApiError::InsufficientScope(&[Scope::Sudo]));
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
                return Err(ApiError::InsufficientScope(&[Scope::Api, Scope::ReadApi]));
            }
            return Ok(Caller::User(user));
        }
        Some(Credential::Job(_)) if routes == Routes::Api => return Err(ApiError::Unauthorized),
        Some(Credential::Job(token)) => {
            let job = store.job_by_token(&TokenDigest::of(token))?.ok_or(ApiError::Unauthorized)?;
            if job.status != Status::Running {
                return Err(ApiError::Unauthorized);
            }
            let user = match job.user_id {
                Some(id) => store.user(id)?,
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
            Ok(id) => store.user(id)?,
            Err(_) => None,
        });
    }
    Ok(store.user_by_username(who)?)
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
