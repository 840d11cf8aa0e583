//! GitLab's HTTP surface for artifacts, as every server and proxy of its Jobs API answers it:
//! what a request names ([`Target`], parsed from the raw path so that an artifact path is
//! decoded once, by the path rule), who presents which credential ([`Presented`], read in
//! GitLab's order, and passed on in the one form that says the same), what a failure looks
//! like ([`ApiError`], GitLab's bodies), and how an entry is delivered: conditional
//! requests, ranges and `multipart/byteranges` ([`delivery`]), the headers and the gzip
//! passthrough of an entry ([`entry`]), and the memory of small verified entries
//! ([`HotEntries`]). [`guard`] is the middleware in front of it all (request ids, the
//! request-path rule, a caught panic answered `500`). [`pages`] are the pages for people at
//! GitLab's web URLs (folders of an archive, a file, the job lists, signing in), over a
//! [`PageSource`](pages::PageSource) that a server implements on its records and a proxy
//! on its upstream. [`tree`] lists a folder of an archive as the artifacts tree API does (an
//! addition beyond GitLab), with GitLab's offset and keyset [`pagination`].
//!
//! This crate reads no database and no blob storage: the server builds on it with its
//! records and blobs, the proxy with an upstream GitLab (a test in `tests/` checks this
//! against `cargo tree`).

#![deny(missing_docs)]

pub mod credentials;
pub mod delivery;
pub mod entry;
pub mod error;
pub mod guard;
pub mod hot;
pub mod pages;
pub mod pagination;
pub mod query;
pub mod target;
pub mod tree;

pub use crate::credentials::{Credential, Form, LookupKey, Presented, credential_headers};
pub use crate::delivery::{Plan, Representation};
pub use crate::error::{ApiError, ApiResult};
pub use crate::hot::{DEFAULT_ENTRY_CACHE_BYTES, Hot, HotEntries};
pub use crate::query::Query;
pub use crate::target::Target;

/// The name of the pages' session cookie (`__Host-` before it over `https`): it opens a
/// browser session of this server or proxy, so a proxy never sends it upstream.
pub const SESSION_COOKIE: &str = "_artifact_session";

/// The external base URL for a request with `headers`: `configured` when there is one, else
/// `http://` and the request's `Host` (when it is a plausible host name; else `localhost`).
pub fn base_url(configured: Option<&str>, headers: &axum::http::HeaderMap) -> String {
    if let Some(base) = configured {
        return base.to_owned();
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.len() <= 255)
        .filter(|h| h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b)))
        .unwrap_or("localhost");
    format!("http://{host}")
}
