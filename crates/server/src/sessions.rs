//! Browser sessions for the browsing pages: a personal access token given once on the
//! sign-in page, kept here (never in the browser), and an opaque random id in an
//! `HttpOnly`, `SameSite=Strict` cookie that names it. Sessions live in this process's
//! memory for [`SESSION_TTL`]; a restart signs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a session lasts after sign-in.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// The most sessions kept; past it the one closest to expiring is dropped.
const MAX_SESSIONS: usize = 100_000;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "_artifact_session";

/// The sessions of one server process.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: Mutex<HashMap<String, (String, Instant)>>,
}

impl Sessions {
    /// A new session for `token`; its id (64 hex digits).
    pub(crate) fn open(&self, token: &str) -> std::io::Result<String> {
        let id = format!("{}{}", crate::blobs::random_hex()?, crate::blobs::random_hex()?);
        let now = Instant::now();
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, expires)| *expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, (_, expires))| *expires).map(|(id, _)| id.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), (token.to_owned(), now + SESSION_TTL));
        Ok(id)
    }

    /// The token of the live session `id`.
    pub(crate) fn token(&self, id: &str) -> Option<String> {
        let map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).filter(|(_, expires)| *expires > Instant::now()).map(|(token, _)| token.clone())
    }

    /// Ends the session `id`.
    pub(crate) fn close(&self, id: &str) {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
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
