//! What the pages read from ([`PageSource`]): a server's records and blobs, or a proxy's
//! upstream.

use axum::http::HeaderMap;
use axum::response::Response;

use artifact_core::ArtifactPath;

use super::{Directory, JobHead, JobList, Who};
use crate::credentials::Credential;
use crate::error::ApiResult;

/// Where the pages read from: a server's records and blobs, or a proxy's upstream. Every
/// call is asked as the visitor ([`Who`]) and answers GitLab's errors ([`ApiError`](crate::ApiError)): a
/// project the visitor may not see is [`ApiError::ProjectNotFound`](crate::ApiError::ProjectNotFound) or
/// [`ApiError::Unauthorized`](crate::ApiError::Unauthorized) (an anonymous visitor is then sent to sign in).
pub trait PageSource: Send + Sync {
    /// Opens a browser session for `token` (which [`signs_in`](Self::signs_in)); its id.
    fn open_session(&self, token: &str) -> impl Future<Output = ApiResult<String>> + Send;
    /// The credential of the live session `id`.
    fn session(&self, id: &str) -> impl Future<Output = ApiResult<Option<Credential>>> + Send;
    /// Ends the session `id` (its grants stay until they expire: they name one job's
    /// files only).
    fn close_session(&self, id: &str) -> impl Future<Output = ApiResult<()>> + Send;
    /// A grant to read job `job`'s files with `credential`, the one of session `session`
    /// (a report opened in its sandbox has an opaque origin, to which the browser sends
    /// no `SameSite` cookie: its files are opened through the grant's unguessable id in
    /// their URL instead, for at most [`GRANT_TTL`](super::GRANT_TTL)).
    fn grant(
        &self,
        session: &str,
        credential: &Credential,
        project: &str,
        job: i64,
    ) -> impl Future<Output = ApiResult<String>> + Send;
    /// Whether `who` may read job `job`'s archive (`Ok`), else why not: a grant is given
    /// only after this said yes.
    fn readable(&self, who: &Who, project: &str, job: i64) -> impl Future<Output = ApiResult<()>> + Send;
    /// The live grant `id`: its credential, project and job.
    fn granted(&self, id: &str) -> impl Future<Output = ApiResult<Option<(Credential, String, i64)>>> + Send;
    /// The artifacts origin, without a trailing slash.
    fn artifacts_origin(&self) -> Option<&str>;
    /// The external base URL for a request with `headers`, without a trailing slash: the
    /// pages' links, and the session cookie's scheme (`https://`: `Secure` and `__Host-`)
    /// and the origin a sign-in form must come from. Behind a proxy that terminates TLS,
    /// the `https://` URL.
    fn base(&self, headers: &HeaderMap) -> String;
    /// Whether `token` is a user's token that works here (`Ok(false)`: it does not).
    fn signs_in(&self, token: &str) -> impl Future<Output = ApiResult<bool>> + Send;
    /// Page `page` of directory `dir` (`""` or ending in `/`) of job `job`'s archive.
    fn directory(
        &self,
        who: &Who,
        project: &str,
        job: i64,
        dir: &str,
        page: usize,
    ) -> impl Future<Output = ApiResult<Directory>> + Send;
    /// What the pages of job `job`'s artifacts say of it at their head: its name, status,
    /// ref, pipeline, and when its artifacts go; `None` (the default) leaves the head out.
    /// Asked beside [`directory`](Self::directory) and [`entry`](Self::entry), which decide
    /// whether the visitor may read the job's archive: a source that cannot say (an
    /// upstream that failed) answers `None`, and the page is shown without its head.
    fn heading(&self, who: &Who, project: &str, job: i64) -> impl Future<Output = Option<JobHead>> + Send {
        let _ = (who, project, job);
        async { None }
    }
    /// Page `page` of the project's recent jobs, or of one pipeline's.
    fn jobs(
        &self,
        who: &Who,
        project: &str,
        pipeline: Option<i64>,
        page: u64,
    ) -> impl Future<Output = ApiResult<JobList>> + Send;
    /// The id of the newest successful job `job` on `ref_name` (whose archive the API's
    /// by-ref endpoints serve).
    fn latest(
        &self,
        who: &Who,
        project: &str,
        ref_name: &str,
        job: &str,
    ) -> impl Future<Output = ApiResult<i64>> + Send;
    /// One entry of job `job`'s archive as the single-file API answers it (endpoint 7:
    /// access checked, verified, the visitor's conditions and ranges honoured): the one
    /// domain-level call a source's own API also answers single files with.
    fn entry(
        &self,
        who: &Who,
        project: &str,
        job: i64,
        path: &ArtifactPath,
    ) -> impl Future<Output = ApiResult<Response>> + Send;
}
