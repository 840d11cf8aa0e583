//! Browser sessions for the browsing pages: a personal access token given once on the
//! sign-in page, kept on the server (never in the browser), and an opaque random id in an
//! `HttpOnly`, `SameSite=Strict` cookie that names it, for [`SESSION_TTL`]. And grants: a
//! report opened in its sandbox has an opaque origin, to which the browser sends no
//! `SameSite` cookie, so a signed-in browser opens files through a grant in their URL, an
//! unguessable id that reads one job's files with the session's token for [`GRANT_TTL`].
//!
//! The server keeps both in its store, so that every replica knows them and a restart signs
//! nobody out; the store holds digests only (of the session's id, of a grant's id, of the
//! token), so that a copy of the database opens no session and reads no file. (The proxy,
//! which must send the token itself upstream, keeps them in its memory.)

use crate::auth::Credential;
use crate::error::ApiResult;
use crate::error::StoreAnswer;
use crate::store::{BrowserSession, Keep, PageGrant, Store, TokenDigest};
use crate::time::Timestamp;

use artifact_gitlab::pages::{GRANT_TTL, GRANTS_PER_TOKEN, MAX_SESSIONS, SESSION_TTL, SESSIONS_PER_TOKEN, new_id};

/// A new session in the store for `token` (which signed in); its id (64 hex digits). The
/// store keeps at most [`SESSIONS_PER_TOKEN`] of a token and [`MAX_SESSIONS`] in all.
pub(crate) fn open_stored(store: &dyn Store, token: &str) -> ApiResult<String> {
    let id = new_id().map_err(crate::error::ApiError::internal)?;
    let now = Timestamp::now().0;
    let expires_at = now + SESSION_TTL.as_millis() as i64;
    let session = BrowserSession { id: TokenDigest::of(&id), token: TokenDigest::of(token), expires_at };
    store.open_session(&session, Keep { per_token: SESSIONS_PER_TOKEN, total: MAX_SESSIONS }, now).api()?;
    Ok(id)
}

/// The credential of the live session `id` in the store: its token, by digest.
pub(crate) fn stored_session(store: &dyn Store, id: &str) -> ApiResult<Option<Credential>> {
    Ok(store.browser_session(&TokenDigest::of(id), Timestamp::now().0).api()?.map(|d| Credential::Digest(d.0)))
}

/// Ends the session `id` in the store.
pub(crate) fn close_stored(store: &dyn Store, id: &str) -> ApiResult<()> {
    store.close_session(&TokenDigest::of(id)).api()
}

/// A grant in the store for session `session` (whose token has digest `token`) to read
/// job `job`'s files. Its id is derived from the session's id, the job and the half of
/// [`GRANT_TTL`] it is asked in: the same job's grant is given again within that half (by
/// any replica), and it lasts until the end of the next half, between half and all of
/// [`GRANT_TTL`]. A token keeps at most [`GRANTS_PER_TOKEN`], and the store
/// [`MAX_SESSIONS`] in all.
pub(crate) fn grant_stored(
    store: &dyn Store,
    session: &str,
    token: TokenDigest,
    project: &str,
    job: i64,
) -> ApiResult<String> {
    let half = (GRANT_TTL / 2).as_millis() as i64;
    let now = Timestamp::now().0;
    let bucket = now / half;
    let id = crate::ids::hex(&TokenDigest::of(&format!("grant\0{session}\0{project}\0{job}\0{bucket}")).0);
    // Given already (every page of the job asks for it): a read, not a write.
    if store.page_grant(&TokenDigest::of(&id), now).api()?.is_some() {
        return Ok(id);
    }
    let grant = PageGrant {
        id: TokenDigest::of(&id),
        token,
        project: project.to_owned(),
        job,
        expires_at: (bucket + 2) * half,
    };
    store.put_grant(&grant, Keep { per_token: GRANTS_PER_TOKEN, total: MAX_SESSIONS }, now).api()?;
    Ok(id)
}

/// The live grant `id` in the store: its credential (the token, by digest), project and
/// job.
pub(crate) fn stored_grant(store: &dyn Store, id: &str) -> ApiResult<Option<(Credential, String, i64)>> {
    let grant = store.page_grant(&TokenDigest::of(id), Timestamp::now().0).api()?;
    Ok(grant.map(|g| (Credential::Digest(g.token.0), g.project, g.job)))
}
