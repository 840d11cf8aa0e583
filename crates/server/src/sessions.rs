//! Browser sessions for the browsing pages: a personal access token given once on the
//! sign-in page, kept on the server (never in the browser), and an opaque random id in an
//! `HttpOnly`, `SameSite=Strict` cookie that names it, for [`SESSION_TTL`]. And grants: a
//! report opened in its sandbox has an opaque origin, to which the browser sends no
//! `SameSite` cookie, so a signed-in browser opens files through a grant in their URL, an
//! unguessable id that reads one job's files with the session's token for [`GRANT_TTL`].
//!
//! The server keeps both in its store ([`open_stored`] and the functions beside it), so
//! that every replica knows them and a restart signs nobody out; the store holds digests
//! only (of the session's id, of a grant's id, of the token), so that a copy of the
//! database opens no session and reads no file. The proxy, which must send the token
//! itself upstream, keeps them in its memory ([`Sessions`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::Credential;
use crate::error::ApiResult;
use crate::store::{BrowserSession, PageGrant, Store, TokenDigest};
use crate::time::Timestamp;

/// How long a session lasts after sign-in.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// The most sessions (and grants) kept; past it the one closest to expiring is dropped.
const MAX_SESSIONS: usize = 100_000;

/// The most live grants one token holds; past it its oldest goes.
pub(crate) const GRANTS_PER_TOKEN: usize = 256;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "_artifact_session";

/// How long a grant to read one job's files lasts.
pub(crate) const GRANT_TTL: Duration = Duration::from_secs(3600);

/// The most sessions one token keeps in the store; past it its oldest ends.
pub(crate) const SESSIONS_PER_TOKEN: usize = 64;

/// A new session in the store for `token` (which signed in); its id (64 hex digits).
pub(crate) fn open_stored(store: &dyn Store, token: &str) -> ApiResult<String> {
    let id = new_id().map_err(crate::error::ApiError::internal)?;
    let now = Timestamp::now().0;
    let expires_at = now + SESSION_TTL.as_millis() as i64;
    let session = BrowserSession { id: TokenDigest::of(&id), token: TokenDigest::of(token), expires_at };
    store.open_session(&session, SESSIONS_PER_TOKEN, now)?;
    Ok(id)
}

/// The credential of the live session `id` in the store: its token, by digest.
pub(crate) fn stored_session(store: &dyn Store, id: &str) -> ApiResult<Option<Credential>> {
    Ok(store.browser_session(&TokenDigest::of(id), Timestamp::now().0)?.map(Credential::Digest))
}

/// Ends the session `id` in the store.
pub(crate) fn close_stored(store: &dyn Store, id: &str) -> ApiResult<()> {
    Ok(store.close_session(&TokenDigest::of(id))?)
}

/// A grant in the store for session `session` (whose token has digest `token`) to read
/// job `job`'s files. Its id is derived from the session's id, the job and the half of
/// [`GRANT_TTL`] it is asked in: the same job's grant is given again within that half (by
/// any replica), and it lasts until the end of the next half, between half and all of
/// [`GRANT_TTL`]. A token keeps at most [`GRANTS_PER_TOKEN`].
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
    let id = crate::blobs::hex(&TokenDigest::of(&format!("grant\0{session}\0{project}\0{job}\0{bucket}")).0);
    // Given already (every page of the job asks for it): a read, not a write.
    if store.page_grant(&TokenDigest::of(&id), now)?.is_some() {
        return Ok(id);
    }
    let grant = PageGrant {
        id: TokenDigest::of(&id),
        token,
        project: project.to_owned(),
        job,
        expires_at: (bucket + 2) * half,
    };
    store.put_grant(&grant, GRANTS_PER_TOKEN, now)?;
    Ok(id)
}

/// The live grant `id` in the store: its credential (the token, by digest), project and
/// job.
pub(crate) fn stored_grant(store: &dyn Store, id: &str) -> ApiResult<Option<(Credential, String, i64)>> {
    let grant = store.page_grant(&TokenDigest::of(id), Timestamp::now().0)?;
    Ok(grant.map(|g| (Credential::Digest(g.token), g.project, g.job)))
}

/// A new random id: 64 hex digits.
fn new_id() -> std::io::Result<String> {
    Ok(format!("{}{}", crate::blobs::random_hex()?, crate::blobs::random_hex()?))
}

/// What a grant allows: the token it reads with, and the one job (project and id) whose
/// archive it may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) token: String,
    pub(crate) project: String,
    pub(crate) job: i64,
}

/// The sessions of one proxy process, and the grants made for them, in its memory (a
/// restart signs everyone out).
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: Mutex<HashMap<String, (String, Instant)>>,
    grants: Mutex<HashMap<String, (Grant, Instant)>>,
}

impl Sessions {
    /// A new session for `token`; its id (64 hex digits).
    pub(crate) fn open(&self, token: &str) -> std::io::Result<String> {
        insert(&self.by_id, token.to_owned(), SESSION_TTL)
    }

    /// The token of the live session `id`.
    pub(crate) fn token(&self, id: &str) -> Option<String> {
        let map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).filter(|(_, expires)| *expires > Instant::now()).map(|(token, _)| token.clone())
    }

    /// A grant to read the files of one job's archive with `token`, for [`GRANT_TTL`]: an
    /// unguessable id that a file's URL carries instead of a cookie, since a report opened
    /// in its sandbox has an opaque origin, to which the browser sends no `SameSite` cookie.
    /// A live grant for the same token and job (with more than half its time left) is given
    /// again; a token holds at most [`GRANTS_PER_TOKEN`], so that one user's clicks never
    /// push out another's grants.
    pub(crate) fn grant(&self, grant: Grant) -> std::io::Result<String> {
        {
            let mut map = self.grants.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let same = map.iter().find(|(_, (g, expires))| *g == grant && *expires > now + GRANT_TTL / 2);
            if let Some((id, _)) = same {
                return Ok(id.clone());
            }
            let mut held: Vec<(Instant, String)> =
                map.iter().filter(|(_, (g, _))| g.token == grant.token).map(|(id, (_, e))| (*e, id.clone())).collect();
            if held.len() >= GRANTS_PER_TOKEN {
                held.sort();
                for (_, id) in &held[..=held.len() - GRANTS_PER_TOKEN] {
                    map.remove(id);
                }
            }
        }
        insert(&self.grants, grant, GRANT_TTL)
    }

    /// The live grant `id`.
    pub(crate) fn granted(&self, id: &str) -> Option<Grant> {
        let map = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).filter(|(_, expires)| *expires > Instant::now()).map(|(grant, _)| grant.clone())
    }

    /// Ends the session `id` (the grants made with its token stay until they expire: they
    /// name one job's files only).
    pub(crate) fn close(&self, id: &str) {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

/// Keeps `value` under a new random id (64 hex digits) for `ttl`, dropping what expired
/// and, past [`MAX_SESSIONS`], the one closest to expiring; the id.
fn insert<V>(map: &Mutex<HashMap<String, (V, Instant)>>, value: V, ttl: Duration) -> std::io::Result<String> {
    let id = new_id()?;
    let now = Instant::now();
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.retain(|_, (_, expires)| *expires > now);
    if map.len() >= MAX_SESSIONS
        && let Some(oldest) = map.iter().min_by_key(|(_, (_, expires))| *expires).map(|(id, _)| id.clone())
    {
        map.remove(&oldest);
    }
    map.insert(id.clone(), (value, now + ttl));
    Ok(id)
}

/// The session id in a request's `Cookie` headers, if any.
pub(crate) fn cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('=').map(str::to_owned))
        .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn for_job(token: &str, job: i64) -> Grant {
        Grant { token: token.into(), project: "g/p".into(), job }
    }

    #[test]
    fn a_grant_is_given_again_for_the_same_job_and_a_token_holds_a_bounded_number() {
        let sessions = Sessions::default();
        let first = sessions.grant(for_job("a", 1)).unwrap();
        assert_eq!(sessions.grant(for_job("a", 1)).unwrap(), first, "the same job: the same grant");
        assert_ne!(sessions.grant(for_job("b", 1)).unwrap(), first, "another token: its own");
        for job in 2..=(GRANTS_PER_TOKEN as i64 + 10) {
            sessions.grant(for_job("a", job)).unwrap();
        }
        let held = |token: &str| sessions.grants.lock().unwrap().values().filter(|(g, _)| g.token == token).count();
        assert_eq!(held("a"), GRANTS_PER_TOKEN);
        assert_eq!(held("b"), 1, "one token's grants never push out another's");
        assert!(sessions.granted(&first).is_none(), "the oldest went");
    }
}
