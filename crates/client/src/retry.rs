//! When a request is tried again, and how long to wait.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};

/// The retry policy.
///
/// - Only GET, HEAD and DELETE are retried: they are idempotent. POSTs (cancel, retry, play,
///   erase, keep) are sent once, whatever happens: a retried `retry` would start two jobs.
/// - Retried on 429, 502, 503, 504 and connection errors (refused, reset, timed out before
///   a response).
/// - The wait is `Retry-After` when the server sends one (seconds or an HTTP date),
///   otherwise exponential backoff from `base_delay`, doubled per attempt up to
///   `max_delay`, with full jitter (a random wait between half and all of it).
/// - At most `max_attempts` attempts in all, and never more than `budget` of waiting in
///   total: a `Retry-After` longer than what is left ends the retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included: 5.
    pub max_attempts: u32,
    /// First backoff: 250 ms.
    pub base_delay: Duration,
    /// Largest backoff: 8 s.
    pub max_delay: Duration,
    /// Total waiting allowed across the retries of one request: 60 s.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            budget: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn never() -> RetryPolicy {
        RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }
    }

    /// Whether `method` may be retried at all.
    pub fn retries(&self, method: &Method) -> bool {
        matches!(*method, Method::GET | Method::HEAD | Method::DELETE)
    }

    /// Whether a response status calls for a retry.
    pub fn retryable_status(status: StatusCode) -> bool {
        matches!(status.as_u16(), 429 | 502 | 503 | 504)
    }

    /// The wait before attempt `attempt` (1 for the first retry), honouring `Retry-After`.
    pub fn delay(&self, attempt: u32, headers: Option<&HeaderMap>) -> Duration {
        if let Some(d) = headers.and_then(retry_after) {
            return d;
        }
        let exp = self.base_delay.saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16));
        let cap = exp.min(self.max_delay);
        // Full jitter in [cap/2, cap].
        let half = cap / 2;
        half + half.mul_f64(random_unit())
    }
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 10.2.3).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_in_both_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let later = SystemTime::now() + Duration::from_secs(5);
        h.insert(RETRY_AFTER, HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d <= Duration::from_secs(5) && d >= Duration::from_secs(3), "{d:?}");
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let p = RetryPolicy::default();
        for attempt in 1..10 {
            let d = p.delay(attempt, None);
            let cap = p.base_delay.saturating_mul(1 << (attempt - 1)).min(p.max_delay);
            assert!(d >= cap / 2 && d <= cap, "attempt {attempt}: {d:?} vs {cap:?}");
        }
    }

    #[test]
    fn only_idempotent_methods_are_retried() {
        let p = RetryPolicy::default();
        assert!(p.retries(&Method::GET) && p.retries(&Method::HEAD) && p.retries(&Method::DELETE));
        assert!(!p.retries(&Method::POST) && !p.retries(&Method::PUT));
    }
}
