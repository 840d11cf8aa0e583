//! Credentials as GitLab reads them from a request: which token (personal or job, from which
//! header or parameter, in GitLab's order), in which form to pass it on unchanged, whom it
//! acts as (`Sudo`), and the digests that tell callers apart in caches (never the token).

use artifact_core::JobRef;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use sha2::Digest as _;

use crate::query::Query;

fn sha256(text: &str) -> [u8; 32] {
    sha2::Sha256::digest(text.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The request headers that carry a credential, or whom it acts as (`Sudo`).
pub const CREDENTIAL_HEADERS: [&str; 4] = ["private-token", "job-token", "authorization", "sudo"];

/// A token as presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `PRIVATE-TOKEN`, `Authorization: Bearer` or `private_token`.
    Personal(String),
    /// `JOB-TOKEN` or `job_token`.
    Job(String),
    /// A personal access token known by its SHA-256 digest only: what a browser session of
    /// the pages signs in with. Never read from a request.
    Digest([u8; 32]),
}

impl Credential {
    /// A digest that tells credentials apart (kind and token), for caches.
    pub fn digest(cred: Option<&Credential>) -> [u8; 32] {
        match cred {
            None => [0; 32],
            Some(Credential::Personal(t)) => sha256(&format!("p:{t}")),
            Some(Credential::Job(t)) => sha256(&format!("j:{t}")),
            Some(Credential::Digest(d)) => sha256(&format!("d:{}", hex(d))),
        }
    }

    /// The request's credential, read as GitLab reads them: a personal token from
    /// `private_token=`, `PRIVATE-TOKEN`, `access_token=`, `Authorization: Bearer` or
    /// `bearer_token=`; else a job token from `job_token=`, `token=` or `JOB-TOKEN`, in that
    /// order. Each is [`present`] or absent: an empty one is no token, and the next is
    /// looked at.
    pub fn from_request(headers: &HeaderMap, query: &Query) -> Option<Credential> {
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
pub enum Form {
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
    pub fn read<'a>(headers: &'a HeaderMap, query: &'a Query) -> Option<(Form, &'a str)> {
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
    pub fn header(self, token: &str) -> Option<(HeaderName, HeaderValue)> {
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
pub fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

/// What a request presents to authenticate: its credential, whether it changes anything
/// (a token's scopes decide whether it may), and whom it asks to act as (`Sudo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presented {
    /// The credential, if any (GitLab's order, [`Credential::from_request`]).
    pub credential: Option<Credential>,
    /// Not `GET` or `HEAD`: a `read_api` token may not.
    pub write: bool,
    /// A user id or username from the `sudo` parameter or the `Sudo` header.
    pub sudo: Option<String>,
}

impl Presented {
    /// Reads the credential ([`Credential::from_request`]) and `sudo=` or `Sudo:`, the
    /// parameter first. Unlike a token, an empty `Sudo` is not absent: GitLab reads it as
    /// given, and so names no user.
    pub fn from_request(method: &Method, headers: &HeaderMap, query: &Query) -> Presented {
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
    pub fn digest(&self) -> [u8; 32] {
        let credential = Credential::digest(self.credential.as_ref());
        match &self.sudo {
            None => credential,
            Some(who) => sha256(&format!("{} as {who}", hex(&credential))),
        }
    }
}

/// Project names longer than this are not remembered (the memory stays small).
const MAX_PROJECT_LEN: usize = 512;

/// The caller's credential as one request header, exactly the one
/// [`Presented::from_request`] reads (and grants are remembered under), in its form
/// ([`Form`]: a token from the query becomes its header), and whom it acts as (`Sudo`, the
/// parameter first). Nothing else the caller sent goes: the upstream judges the credential
/// the grant's key names.
pub fn credential_headers(headers: &HeaderMap, query: &Query) -> HeaderMap {
    let mut out = HeaderMap::new();
    if let Some((name, value)) = Form::read(headers, query).and_then(|(form, token)| form.header(token)) {
        out.insert(name, value);
    }
    let presented = Presented::from_request(&axum::http::Method::GET, headers, query);
    if let Some(who) = presented.sudo {
        out.insert("sudo", HeaderValue::from_str(&who).unwrap_or_else(|_| HeaderValue::from_static("")));
    }
    out
}

/// What a caller's look-up of an archive is remembered under: who asks (the digest of
/// [`Presented::digest`]), the project as named (numbers in canonical form) and the job.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LookupKey {
    /// The credential as presented (hashed), or zeros for anonymous.
    credential: [u8; 32],
    /// `:id` as given, numbers in canonical form (`007` and `7` are one key).
    project: String,
    job: JobRef,
}

impl LookupKey {
    /// The key of a request, if it is worth remembering.
    pub fn new(credential: [u8; 32], project: &str, job: &JobRef) -> Option<LookupKey> {
        let project = match project.parse::<u64>() {
            Ok(n) => n.to_string(),
            Err(_) if project.len() <= MAX_PROJECT_LEN => project.to_owned(),
            Err(_) => return None,
        };
        if let JobRef::Latest { ref_name, job } = job
            && ref_name.len() + job.len() > MAX_PROJECT_LEN
        {
            return None;
        }
        Some(LookupKey { credential, project, job: job.clone() })
    }
}
