//! Signing in and out: the return address, the session cookie, the forms.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use percent_encoding::percent_decode_str;

use super::Backend;
use super::render::{error_page, redirect, sign_in_page};
use crate::error::ApiError;
use crate::query::Query;
use crate::sessions;

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
pub(super) async fn sign_in<B: Backend>(backend: &B, headers: &HeaderMap, base: &str, body: &[u8]) -> Response {
    // A form posted from another site's page is not a sign-in (login CSRF).
    if foreign(headers, base) {
        return error_page(ApiError::Forbidden(None));
    }
    let form = Query::parse(std::str::from_utf8(body).ok());
    let token = form.get("token").unwrap_or_default().trim().to_owned();
    let target = return_to(form.get("return_to"));
    let works = !token.is_empty() && HeaderValue::from_str(&token).is_ok();
    match if works { backend.signs_in(&token).await } else { Ok(false) } {
        Ok(true) => {}
        Ok(false) => return sign_in_page(&target, Some("That token does not work here."), StatusCode::UNAUTHORIZED),
        Err(e) => return error_page(e),
    }
    let id = match backend.open_session(&token).await {
        Ok(id) => id,
        Err(e) => return error_page(e),
    };
    let cookie = session_cookie(base, &id, sessions::SESSION_TTL.as_secs());
    let mut response = redirect(StatusCode::SEE_OTHER, &target, Some(&cookie));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The `Set-Cookie` of session `id` (empty: cleared) for `max_age` seconds, on a server
/// whose base URL is `base`: over `https` a `__Host-` cookie, `Secure`.
pub(super) fn session_cookie(base: &str, id: &str, max_age: u64) -> String {
    let secure = if base.starts_with("https://") { "; Secure" } else { "" };
    let name = sessions::cookie_name(base);
    format!("{name}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// `POST /users/sign_out`: the session ends and its cookie is cleared. A form posted from
/// another site's page signs nobody out.
pub(super) async fn sign_out<B: Backend>(backend: &B, headers: &HeaderMap, base: &str) -> Response {
    if foreign(headers, base) {
        return error_page(ApiError::Forbidden(None));
    }
    if let Some(id) = sessions::cookie(headers, base)
        && let Err(e) = backend.close_session(&id).await
    {
        return error_page(e);
    }
    redirect(StatusCode::SEE_OTHER, "/users/sign_in", Some(&session_cookie(base, "", 0)))
}
