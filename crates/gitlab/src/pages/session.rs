//! Signing in and out: the return address, the session cookie, the forms.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use percent_encoding::percent_decode_str;

use super::PageSource;
use super::render::{error_page, redirect, sign_in_page};
use crate::error::ApiError;
use crate::query::Query;

/// How long a browser session lasts after sign-in.
pub const SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(8 * 3600);

/// How long a grant to read one job's files lasts (see [`PageSource::grant`]).
pub const GRANT_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// The most sessions (and, apart, grants) a source keeps; past it the oldest go.
pub const MAX_SESSIONS: usize = 100_000;

/// The most live grants one token holds; past it its oldest goes, so that one user's
/// clicks never push out another's grants.
pub const GRANTS_PER_TOKEN: usize = 256;

/// The most sessions one token keeps; past it its oldest ends.
pub const SESSIONS_PER_TOKEN: usize = 64;

/// A new random id for a session or a grant: 64 hex digits (256 bits from the operating
/// system's generator).
pub fn new_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The session cookie's name over `https` (`__Host-`: the browser keeps it only if it
/// was set `Secure`, for `Path=/`, without `Domain`, by this very host).
pub const SECURE_COOKIE: &str = "__Host-_artifact_session";

/// The session cookie's name for a server whose base URL is `base`: [`SECURE_COOKIE`]
/// over `https`, else [`SESSION_COOKIE`](crate::SESSION_COOKIE).
fn cookie_name(base: &str) -> &'static str {
    if base.starts_with("https://") { SECURE_COOKIE } else { crate::SESSION_COOKIE }
}

/// The session id (64 hex digits) in a request's `Cookie` headers under the session
/// cookie of a server whose base URL is `base`, if any.
pub fn session_id(headers: &HeaderMap, base: &str) -> Option<String> {
    let name = cookie_name(base);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Where to go after signing in: a path of this server, else the root of nothing (`/`).
/// A path is `/` alone, or one `/` followed by a character that is neither `/` nor `\`,
/// without control characters, whitespace, bidirectional controls or zero-width characters,
/// as it is given and as every decoding of it reads (a browser reads `/\t/host` or
/// `/%2F/host` as another host's URL).
pub(super) fn return_to(given: Option<&str>) -> String {
    // Characters that reorder or hide what the address shows (bidirectional controls,
    // zero-width characters): a `Location` that reads other than it goes.
    let invisible = |c: char| matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}');
    let local = |path: &str| {
        let bytes = path.as_bytes();
        bytes.first() == Some(&b'/')
            && !matches!(bytes.get(1), Some(b'/' | b'\\'))
            && !path.chars().any(|c| c.is_control() || c.is_whitespace() || invisible(c))
    };
    let Some(given) = given else { return "/".to_owned() };
    let mut form = std::borrow::Cow::Borrowed(given);
    loop {
        if !local(&form) {
            return "/".to_owned();
        }
        let Ok(decoded) = percent_decode_str(&form).decode_utf8() else { return "/".to_owned() };
        if decoded == form {
            return given.to_owned();
        }
        form = std::borrow::Cow::Owned(decoded.into_owned());
    }
}

/// Whether a form was posted from another site's page (its `Origin` is not this server's).
pub(super) fn foreign(headers: &HeaderMap, base: &str) -> bool {
    headers.get(header::ORIGIN).is_some_and(|origin| origin.to_str().map_or(true, |origin| origin != base))
}

/// `POST /users/sign_in`: a token that works opens a session and goes back where the
/// visitor was going; one that does not shows the form again (`401`).
pub(super) async fn sign_in<S: PageSource>(source: &S, headers: &HeaderMap, base: &str, body: &[u8]) -> Response {
    // A form posted from another site's page is not a sign-in (login CSRF).
    if foreign(headers, base) {
        return error_page(ApiError::Forbidden(None));
    }
    let form = Query::parse(std::str::from_utf8(body).ok());
    let token = form.get("token").unwrap_or_default().trim().to_owned();
    let target = return_to(form.get("return_to"));
    let works = !token.is_empty() && HeaderValue::from_str(&token).is_ok();
    match if works { source.signs_in(&token).await } else { Ok(false) } {
        Ok(true) => {}
        Ok(false) => return sign_in_page(&target, Some("That token does not work here."), StatusCode::UNAUTHORIZED),
        Err(e) => return error_page(e),
    }
    let id = match source.open_session(&token).await {
        Ok(id) => id,
        Err(e) => return error_page(e),
    };
    let cookie = session_cookie(base, &id, SESSION_TTL.as_secs());
    let mut response = redirect(StatusCode::SEE_OTHER, &target, Some(&cookie));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The `Set-Cookie` of session `id` (empty: cleared) for `max_age` seconds, on a server
/// whose base URL is `base`: over `https` a `__Host-` cookie, `Secure`.
pub fn session_cookie(base: &str, id: &str, max_age: u64) -> String {
    let max_age = time::Duration::seconds(i64::try_from(max_age).unwrap_or(i64::MAX));
    cookie::Cookie::build((cookie_name(base), id))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .max_age(max_age)
        .secure(base.starts_with("https://"))
        .build()
        .to_string()
}

/// `POST /users/sign_out`: the session ends and its cookie is cleared. A form posted from
/// another site's page signs nobody out.
pub(super) async fn sign_out<S: PageSource>(source: &S, headers: &HeaderMap, base: &str) -> Response {
    if foreign(headers, base) {
        return error_page(ApiError::Forbidden(None));
    }
    if let Some(id) = session_id(headers, base)
        && let Err(e) = source.close_session(&id).await
    {
        return error_page(e);
    }
    redirect(StatusCode::SEE_OTHER, "/users/sign_in", Some(&session_cookie(base, "", 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_named_for_the_scheme_and_read_only_under_that_name() {
        let headers = |cookie: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::COOKIE, cookie.parse().unwrap());
            h
        };
        let id = "ab".repeat(32);
        let plain = headers(&format!("other=1; {}={id}", crate::SESSION_COOKIE));
        let host = headers(&format!("{SECURE_COOKIE}={id}"));
        assert_eq!(session_id(&plain, "http://gitlab.test"), Some(id.clone()));
        assert_eq!(session_id(&plain, "https://gitlab.test"), None, "over https only the __Host- cookie");
        assert_eq!(session_id(&host, "https://gitlab.test"), Some(id.clone()));
        assert_eq!(session_id(&host, "http://gitlab.test"), None);
        assert_eq!(session_id(&headers(&format!("{}=short", crate::SESSION_COOKIE)), "http://gitlab.test"), None);
        let prefixed = headers(&format!("x{}={id}", crate::SESSION_COOKIE));
        assert_eq!(session_id(&prefixed, "http://gitlab.test"), None, "another cookie whose name ends the same");
    }

    #[test]
    fn the_cookie_is_host_only_http_only_strict_and_secure_over_https() {
        let id = "cd".repeat(32);
        let set = session_cookie("https://gitlab.test", &id, 60);
        let parsed = cookie::Cookie::parse(set.as_str()).unwrap();
        assert_eq!((parsed.name(), parsed.value()), (SECURE_COOKIE, id.as_str()));
        assert_eq!(parsed.path(), Some("/"));
        assert_eq!(parsed.domain(), None, "a __Host- cookie names no domain");
        assert_eq!(parsed.http_only(), Some(true));
        assert_eq!(parsed.secure(), Some(true));
        assert_eq!(parsed.same_site(), Some(cookie::SameSite::Strict));
        assert_eq!(parsed.max_age(), Some(time::Duration::seconds(60)));
        let cleared = cookie::Cookie::parse(session_cookie("http://gitlab.test", "", 0)).unwrap();
        assert_eq!((cleared.name(), cleared.value(), cleared.secure()), (crate::SESSION_COOKIE, "", None));
        assert_eq!(cleared.max_age(), Some(time::Duration::ZERO));
    }
}
