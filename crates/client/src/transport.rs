//! Sending one request: authentication headers, redirects followed by hand (credentials
//! dropped when the origin changes), the retry policy, and GitLab's error bodies.

use std::time::Duration;

use artifact_core::http::{RedirectEnd, Redirects};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, Response, StatusCode, Url};

use crate::error::{Error, Result, shown};
use crate::retry::RetryPolicy;

/// How the client authenticates.
#[derive(Clone, Default)]
pub enum Auth {
    /// No credentials (public projects' artifacts).
    #[default]
    None,
    /// A personal, project or group access token (`PRIVATE-TOKEN`).
    Private(String),
    /// A CI job token (`JOB-TOKEN`).
    Job(String),
    /// An OAuth 2 token (`Authorization: Bearer`).
    OAuth(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "Auth::None",
            Auth::Private(_) => "Auth::Private(..)",
            Auth::Job(_) => "Auth::Job(..)",
            Auth::OAuth(_) => "Auth::OAuth(..)",
        })
    }
}

impl Auth {
    /// Whether the token can travel in a header (no line breaks or control characters).
    pub(crate) fn is_valid(&self) -> bool {
        match self {
            Auth::None => true,
            Auth::Private(t) | Auth::Job(t) | Auth::OAuth(t) => HeaderValue::from_str(t).is_ok() && !t.is_empty(),
        }
    }

    /// The headers that carry the credential.
    pub(crate) fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        let put = |h: &mut HeaderMap, name: HeaderName, value: String| {
            if let Ok(mut v) = HeaderValue::from_str(&value) {
                v.set_sensitive(true);
                h.insert(name, v);
            }
        };
        match self {
            Auth::None => {}
            Auth::Private(t) => put(&mut h, HeaderName::from_static("private-token"), t.clone()),
            Auth::Job(t) => put(&mut h, HeaderName::from_static("job-token"), t.clone()),
            Auth::OAuth(t) => put(&mut h, AUTHORIZATION, format!("Bearer {t}")),
        }
        h
    }
}

/// Redirects followed at most, by default.
pub(crate) const MAX_REDIRECTS: usize = 10;

/// The HTTP side of a client.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) auth: Auth,
    /// GitLab's `Sudo`, sent with the credential (and dropped with it off the origin).
    pub(crate) sudo: Option<HeaderValue>,
    /// Redirects followed at most (0: a redirect is the answer).
    pub(crate) max_redirects: usize,
    /// JSON documents read up to this many bytes.
    pub(crate) json_max: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) connect_timeout: Duration,
    pub(crate) stall_timeout: Duration,
    /// Certificate authorities trusted besides the Mozilla roots.
    pub(crate) extra_roots: Vec<artifact_core::http::CertificateDer<'static>>,
}

impl Transport {
    /// Sends `method url` with `extra` headers; follows redirects for GET and HEAD; retries
    /// by the policy; answers GitLab's error statuses as [`Error::Api`]. `accept` lists
    /// statuses besides 2xx that the caller handles itself (304, 416).
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        extra: &HeaderMap,
        accept: &[StatusCode],
    ) -> Result<Response> {
        let mut attempt = 1;
        let mut waited = Duration::ZERO;
        loop {
            let outcome = self.send_once(&method, &url, extra).await;
            let retry_headers = match &outcome {
                Ok(resp) if RetryPolicy::retryable_status(resp.status()) => Some(Some(resp.headers().clone())),
                Err(Error::Transport { .. }) => Some(None),
                _ => None,
            };
            if let Some(headers) = retry_headers
                && self.retry.retries(&method)
                && attempt < self.retry.max_attempts
            {
                let delay = self.retry.delay(attempt, headers.as_ref());
                if waited.saturating_add(delay) <= self.retry.budget {
                    tokio::time::sleep(delay).await;
                    waited += delay;
                    attempt += 1;
                    continue;
                }
            }
            let resp = outcome?;
            let status = resp.status();
            if status.is_success() || accept.contains(&status) {
                return Ok(resp);
            }
            return Err(api_error(&method, resp).await);
        }
    }

    /// One attempt: the request and its redirects.
    async fn send_once(&self, method: &Method, url: &Url, extra: &HeaderMap) -> Result<Response> {
        let mut headers = self.auth.headers();
        if let Some(sudo) = &self.sudo {
            headers.insert(HeaderName::from_static("sudo"), sudo.clone());
        }
        headers.extend(extra.clone());
        let mut chain = Redirects::new(url, &headers, self.max_redirects);
        let mut url = url.clone();
        let mut method = method.clone();
        loop {
            let resp = self
                .http
                .request(method.clone(), url.clone())
                .headers(chain.headers().clone())
                .send()
                .await
                .map_err(|source| Error::Transport { url: shown(&url), source })?;
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED || self.max_redirects == 0 {
                return Ok(resp);
            }
            let location = resp.headers().get(LOCATION).and_then(|l| l.to_str().ok());
            url = match chain.follow(&url, location) {
                Ok(next) => next,
                // A redirect without a usable Location is the answer itself.
                Err(RedirectEnd::NoLocation) => return Ok(resp),
                Err(RedirectEnd::TooMany(max)) => return Err(Error::TooManyRedirects { url: shown(&url), max }),
            };
            if resp.status() == StatusCode::SEE_OTHER && method != Method::HEAD {
                method = Method::GET;
            }
        }
    }
}

/// GitLab's error body (`message` or `error`), read up to 64 KiB.
async fn api_error(method: &Method, resp: Response) -> Error {
    let status = resp.status();
    let url = shown(resp.url());
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    use futures_util::StreamExt;
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() > 64 * 1024 {
            break;
        }
    }
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let m = v.get("message").or_else(|| v.get("error"))?;
            Some(m.as_str().map(str::to_owned).unwrap_or_else(|| m.to_string()))
        })
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    Error::Api { method: method.to_string(), url, status, message }
}
