//! The proxy's browser sessions and grants, in its memory (a restart signs everyone out):
//! the proxy must send a session's token itself upstream, so it keeps the token, never
//! writing it anywhere. Both bounded per token and in total
//! ([`artifact_gitlab::pages::MAX_SESSIONS`] and the bounds beside it), each insert and
//! eviction O(1) ([`Table`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use artifact_gitlab::pages::{GRANT_TTL, GRANTS_PER_TOKEN, MAX_SESSIONS, SESSION_TTL, SESSIONS_PER_TOKEN, new_id};

/// What a grant allows: the token it reads with, and the one job (project and id) whose
/// archive it may read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Grant {
    pub(crate) token: String,
    pub(crate) project: String,
    pub(crate) job: i64,
}

/// The sessions of one proxy process, and the grants made for them.
pub(crate) struct Sessions {
    by_id: Mutex<Table<String>>,
    grants: Mutex<Table<Grant>>,
}

/// Counts, never a token or an id.
impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sessions = self.by_id.lock().unwrap_or_else(|p| p.into_inner()).live.len();
        let grants = self.grants.lock().unwrap_or_else(|p| p.into_inner()).live.len();
        f.debug_struct("Sessions").field("sessions", &sessions).field("grants", &grants).finish()
    }
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
}
