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

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::Credential;
use crate::error::ApiResult;
use crate::error::StoreAnswer;
use crate::store::{BrowserSession, Keep, PageGrant, Store, TokenDigest};
use crate::time::Timestamp;

/// How long a session lasts after sign-in.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// The most sessions (and, apart, grants) kept; past it the oldest is dropped.
pub(crate) const MAX_SESSIONS: usize = 100_000;

/// The most live grants one token holds; past it its oldest goes.
pub(crate) const GRANTS_PER_TOKEN: usize = 256;

/// The session cookie's name over `http` (see [`cookie_name`]).
pub(crate) const COOKIE: &str = artifact_gitlab::SESSION_COOKIE;

/// How long a grant to read one job's files lasts.
pub(crate) const GRANT_TTL: Duration = Duration::from_secs(3600);

/// The most sessions one token keeps in the store; past it its oldest ends.
pub(crate) const SESSIONS_PER_TOKEN: usize = 64;

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

/// A new random id: 64 hex digits.
fn new_id() -> std::io::Result<String> {
    Ok(format!("{}{}", crate::ids::random_hex()?, crate::ids::random_hex()?))
}

/// What a grant allows: the token it reads with, and the one job (project and id) whose
/// archive it may read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Grant {
    pub(crate) token: String,
    pub(crate) project: String,
    pub(crate) job: i64,
}

/// The sessions of one proxy process, and the grants made for them, in its memory (a
/// restart signs everyone out). Both bounded per token and in total, each insert and
/// eviction O(1) ([`Table`]).
#[derive(Debug)]
pub(crate) struct Sessions {
    by_id: Mutex<Table<String>>,
    grants: Mutex<Table<Grant>>,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions::with_bounds(MAX_SESSIONS, SESSIONS_PER_TOKEN, GRANTS_PER_TOKEN)
    }
}

impl Sessions {
    /// Sessions and grants bounded by `total` each, and by `sessions_per_token` and
    /// `grants_per_token` for one token.
    fn with_bounds(total: usize, sessions_per_token: usize, grants_per_token: usize) -> Sessions {
        Sessions {
            by_id: Mutex::new(Table::new(total, sessions_per_token, SESSION_TTL)),
            grants: Mutex::new(Table::new(total, grants_per_token, GRANT_TTL)),
        }
    }

    /// A new session for `token`; its id (64 hex digits).
    pub(crate) fn open(&self, token: &str) -> std::io::Result<String> {
        let id = new_id()?;
        let mut table = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        table.insert(id.clone(), token.to_owned(), token.to_owned(), Instant::now());
        Ok(id)
    }

    /// The token of the live session `id`.
    pub(crate) fn token(&self, id: &str) -> Option<String> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner()).get(id, Instant::now()).cloned()
    }

    /// A grant to read the files of one job's archive with `token`, for [`GRANT_TTL`]: an
    /// unguessable id that a file's URL carries instead of a cookie, since a report opened
    /// in its sandbox has an opaque origin, to which the browser sends no `SameSite` cookie.
    /// A live grant for the same token and job (with more than half its time left) is given
    /// again; a token holds at most [`GRANTS_PER_TOKEN`], so that one user's clicks never
    /// push out another's grants.
    pub(crate) fn grant(&self, grant: Grant) -> std::io::Result<String> {
        let now = Instant::now();
        let mut table = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = table.given(&grant, now + GRANT_TTL / 2) {
            return Ok(id.to_owned());
        }
        let id = new_id()?;
        let token = grant.token.clone();
        table.insert(id.clone(), token, grant, now);
        Ok(id)
    }

    /// The live grant `id`.
    pub(crate) fn granted(&self, id: &str) -> Option<Grant> {
        self.grants.lock().unwrap_or_else(|p| p.into_inner()).get(id, Instant::now()).cloned()
    }

    /// Ends the session `id` (the grants made with its token stay until they expire: they
    /// name one job's files only).
    pub(crate) fn close(&self, id: &str) {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

/// One kept value: the token it belongs to and when it expires.
#[derive(Debug)]
struct Kept<V> {
    value: V,
    expires: Instant,
}

/// Values by random id, each for the same `ttl` from its insertion, so that the order of
/// insertion is the order of expiry: a queue of ids in that order drops what expired from
/// its front, and so does a queue per token. At most `total` ids are queued and
/// `per_token` for one token; past either, the oldest goes. An id removed early stays
/// queued until it reaches the front (it counts against the bounds until then). Every
/// insert and removal is O(1) (amortized): nothing scans the table.
#[derive(Debug)]
struct Table<V> {
    live: HashMap<String, Kept<V>>,
    /// Each value's id once, for giving the same value's id again.
    ids: HashMap<V, String>,
    /// Ids (and their tokens) in the order of insertion.
    order: VecDeque<(String, String)>,
    /// Each token's ids in the order of insertion.
    per_token: HashMap<String, VecDeque<String>>,
    total: usize,
    keep_per_token: usize,
    ttl: Duration,
}

impl<V: Clone + Eq + std::hash::Hash> Table<V> {
    fn new(total: usize, keep_per_token: usize, ttl: Duration) -> Table<V> {
        Table {
            live: HashMap::new(),
            ids: HashMap::new(),
            order: VecDeque::new(),
            per_token: HashMap::new(),
            total: total.max(1),
            keep_per_token: keep_per_token.max(1),
            ttl,
        }
    }

    /// Keeps `value` of `token` under `id` from `now`.
    fn insert(&mut self, id: String, token: String, value: V, now: Instant) {
        self.expire(now);
        while self.order.len() >= self.total {
            self.pop_oldest();
        }
        let queued = self.per_token.entry(token.clone()).or_default();
        queued.push_back(id.clone());
        let dropped = if queued.len() > self.keep_per_token { queued.pop_front() } else { None };
        if let Some(dropped) = dropped {
            self.remove(&dropped);
        }
        self.order.push_back((id.clone(), token));
        self.ids.insert(value.clone(), id.clone());
        self.live.insert(id, Kept { value, expires: now + self.ttl });
    }

    /// The live value of `id` at `now`.
    fn get(&self, id: &str, now: Instant) -> Option<&V> {
        self.live.get(id).filter(|kept| kept.expires > now).map(|kept| &kept.value)
    }

    /// The id `value` is kept under, if it lives past `until`.
    fn given(&self, value: &V, until: Instant) -> Option<&str> {
        let id = self.ids.get(value)?;
        self.live.get(id).filter(|kept| kept.expires > until).map(|_| id.as_str())
    }

    /// Forgets `id` (its queued places go when they reach the front).
    fn remove(&mut self, id: &str) {
        if let Some(kept) = self.live.remove(id)
            && self.ids.get(&kept.value).is_some_and(|given| given == id)
        {
            self.ids.remove(&kept.value);
        }
    }

    /// Drops the expired ids, and the forgotten ones before them, from the front.
    fn expire(&mut self, now: Instant) {
        while let Some((id, _)) = self.order.front() {
            match self.live.get(id) {
                Some(kept) if kept.expires > now => break,
                _ => self.pop_oldest(),
            }
        }
    }

    /// Drops the oldest queued id, from both its queues.
    fn pop_oldest(&mut self) {
        let Some((id, token)) = self.order.pop_front() else { return };
        // A token's queue is in the same order, so its oldest is this one or was dropped.
        if let Some(queued) = self.per_token.get_mut(&token) {
            if queued.front() == Some(&id) {
                queued.pop_front();
            }
            if queued.is_empty() {
                self.per_token.remove(&token);
            }
        }
        self.remove(&id);
    }
}

/// The session cookie's name over `https` (`__Host-`: the browser keeps it only if it
/// was set `Secure`, for `Path=/`, without `Domain`, by this very host).
pub(crate) const SECURE_COOKIE: &str = "__Host-_artifact_session";

/// The session cookie's name for a server whose base URL is `base`: [`SECURE_COOKIE`]
/// over `https`, else [`COOKIE`].
pub(crate) fn cookie_name(base: &str) -> &'static str {
    if base.starts_with("https://") { SECURE_COOKIE } else { COOKIE }
}

/// The session id in a request's `Cookie` headers under the cookie of a server whose base
/// URL is `base` (see [`cookie_name`]), if any.
pub(crate) fn cookie(headers: &axum::http::HeaderMap, base: &str) -> Option<String> {
    let name = cookie_name(base);
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
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
        let held =
            |token: &str| sessions.grants.lock().unwrap().live.values().filter(|k| k.value.token == token).count();
        assert_eq!(held("a"), GRANTS_PER_TOKEN);
        assert_eq!(held("b"), 1, "one token's grants never push out another's");
        assert!(sessions.granted(&first).is_none(), "the oldest went");
        assert_ne!(sessions.grant(for_job("a", 1)).unwrap(), first, "a grant that went is given anew");
    }

    #[test]
    fn sessions_are_bounded_per_token_and_in_total_the_oldest_going_first() {
        let sessions = Sessions::with_bounds(10, 3, 3);
        let a: Vec<String> = (0..5).map(|_| sessions.open("a").unwrap()).collect();
        assert!(a[..2].iter().all(|id| sessions.token(id).is_none()), "past 3 for a token: its oldest end");
        assert!(a[2..].iter().all(|id| sessions.token(id).as_deref() == Some("a")));
        let others: Vec<String> = (0..9).map(|i| sessions.open(&format!("t{i}")).unwrap()).collect();
        let table = sessions.by_id.lock().unwrap();
        assert!(table.order.len() <= 10 && table.live.len() <= 10, "never more than the total");
        assert!(table.per_token.values().all(|q| q.len() <= 3));
        drop(table);
        assert!(others.iter().all(|id| sessions.token(id).is_some()), "the newest stay");
        assert_eq!(sessions.token(&a[2]), None, "past the total: the oldest went");
        sessions.close(&others[8]);
        assert_eq!(sessions.token(&others[8]), None, "closed");
    }

    #[test]
    fn the_table_drops_what_expired_from_its_front_and_forgets_tokens_with_nothing_left() {
        let mut table: Table<String> = Table::new(100, 10, Duration::from_secs(10));
        let start = Instant::now();
        table.insert("1".into(), "a".into(), "x".into(), start);
        table.insert("2".into(), "b".into(), "y".into(), start + Duration::from_secs(5));
        assert_eq!(table.get("1", start + Duration::from_secs(9)).map(String::as_str), Some("x"));
        assert_eq!(table.get("1", start + Duration::from_secs(10)), None, "expired, even before it is dropped");
        table.remove("2");
        table.insert("3".into(), "a".into(), "z".into(), start + Duration::from_secs(11));
        // "1" expired and "2" was removed: both gone from every queue, and token b with them.
        assert_eq!(table.order.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["3"]);
        assert_eq!(table.live.len(), 1);
        assert!(!table.per_token.contains_key("b"));
        assert_eq!(table.per_token["a"].iter().collect::<Vec<_>>(), ["3"]);
        assert_eq!(table.given(&"z".to_owned(), start), Some("3"));
        assert_eq!(table.given(&"z".to_owned(), start + Duration::from_secs(30)), None, "not for that long");
    }

    #[test]
    fn the_cookie_is_named_for_the_scheme_and_read_only_under_that_name() {
        let headers = |cookie: &str| {
            let mut h = axum::http::HeaderMap::new();
            h.insert(axum::http::header::COOKIE, cookie.parse().unwrap());
            h
        };
        let id = "ab".repeat(32);
        let plain = headers(&format!("other=1; {COOKIE}={id}"));
        let host = headers(&format!("{SECURE_COOKIE}={id}"));
        assert_eq!(cookie(&plain, "http://gitlab.test"), Some(id.clone()));
        assert_eq!(cookie(&plain, "https://gitlab.test"), None, "over https only the __Host- cookie");
        assert_eq!(cookie(&host, "https://gitlab.test"), Some(id.clone()));
        assert_eq!(cookie(&host, "http://gitlab.test"), None);
        assert_eq!(cookie(&headers(&format!("{COOKIE}=short")), "http://gitlab.test"), None);
    }
}
