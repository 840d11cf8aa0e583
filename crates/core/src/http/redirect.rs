//! Following a redirect chain, the one policy both the engine's range reads and the
//! client's API calls use: the next hop is the `Location` resolved against the current URL;
//! credentials go only to the origin the caller asked for, and once a hop has left it they
//! stay off for the rest of the chain (A -> B -> A), so that object storage behind a
//! redirect never sees a GitLab token. A stricter chain drops them at the first redirect,
//! whatever its origin ([`Redirects::credentials_on_origin`]).
#![forbid(unsafe_code)]

use hyper::header::HeaderMap;
use url::Url;

use super::without_credentials;

/// One redirect chain (see the module docs).
#[derive(Debug, Clone)]
pub struct Redirects {
    asked: Url,
    all: HeaderMap,
    current: HeaderMap,
    /// A hop has left the asked origin (or, without `on_origin`, any hop was made).
    left: bool,
    hops: usize,
    max: usize,
    /// Credentials go on with redirects that stay on the asked origin.
    on_origin: bool,
}

/// Why a chain stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectEnd {
    /// More than the allowed hops.
    TooMany(usize),
    /// A redirect without a usable `Location`.
    NoLocation,
}

impl Redirects {
    /// A chain that starts at `asked` with `headers` and follows at most `max` hops.
    pub fn new(asked: &Url, headers: &HeaderMap, max: usize) -> Redirects {
        let (all, current) = (headers.clone(), headers.clone());
        Redirects { asked: asked.clone(), all, current, left: false, hops: 0, max, on_origin: true }
    }

    /// Whether credentials go on with a redirect that stays on the asked origin (yes, by
    /// default); `false`: the first redirect drops them, whatever its origin.
    pub fn credentials_on_origin(mut self, keep: bool) -> Redirects {
        self.on_origin = keep;
        self
    }

    /// The headers for the current hop.
    pub fn headers(&self) -> &HeaderMap {
        &self.current
    }

    /// The next hop after a redirection from `from` whose `Location` is `location`.
    pub fn follow(&mut self, from: &Url, location: Option<&str>) -> Result<Url, RedirectEnd> {
        self.hops += 1;
        if self.hops > self.max {
            return Err(RedirectEnd::TooMany(self.max));
        }
        let next = location.and_then(|l| from.join(l).ok()).ok_or(RedirectEnd::NoLocation)?;
        if !self.left && (!self.on_origin || next.origin() != self.asked.origin()) {
            self.left = true;
            self.current = without_credentials(&self.all);
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_stay_off_once_the_chain_left_the_origin() {
        let asked = Url::parse("https://gitlab.example/a").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("private-token", "glpat-x".parse().unwrap());
        headers.insert("accept", "*/*".parse().unwrap());
        let mut chain = Redirects::new(&asked, &headers, 3);
        let same = chain.follow(&asked, Some("/b")).unwrap();
        assert_eq!(same.as_str(), "https://gitlab.example/b");
        assert!(chain.headers().contains_key("private-token"));
        let away = chain.follow(&same, Some("https://bucket.example/o?X-Amz-Signature=1")).unwrap();
        assert!(!chain.headers().contains_key("private-token") && chain.headers().contains_key("accept"));
        let back = chain.follow(&away, Some("https://gitlab.example/c")).unwrap();
        assert_eq!(back.origin(), asked.origin());
        assert!(!chain.headers().contains_key("private-token"), "A -> B -> A keeps them off");
        assert_eq!(chain.follow(&back, Some("/d")), Err(RedirectEnd::TooMany(3)));
        assert_eq!(Redirects::new(&asked, &headers, 3).follow(&asked, None), Err(RedirectEnd::NoLocation));
    }

    #[test]
    fn a_strict_chain_drops_credentials_at_the_first_redirect_even_on_the_origin() {
        let asked = Url::parse("https://gitlab.example/a").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("private-token", "glpat-x".parse().unwrap());
        let mut chain = Redirects::new(&asked, &headers, 3).credentials_on_origin(false);
        assert!(chain.headers().contains_key("private-token"), "the URL asked gets them");
        chain.follow(&asked, Some("/objects/b")).unwrap();
        assert!(!chain.headers().contains_key("private-token"));
    }
}
