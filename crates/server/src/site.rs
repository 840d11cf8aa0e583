//! Whether the artifacts origin is another site than the server's: a browser sends a
//! `SameSite` cookie to every host of the same site (the same registrable domain, by the
//! public suffix list), so an artifacts origin beside the server on one domain
//! (`files.example.com` beside `gitlab.example.com`) would receive the server's session
//! cookie with the requests a report's script makes. `serve` refuses that unless told.

use crate::error::Error;

/// The site of `url` (an `http(s)` URL): its host's registrable domain by the public
/// suffix list (`example.com` for `files.example.com`; `x.github.io` itself, `github.io`
/// being a public suffix); for an IP address, `localhost` or a name that is itself a public
/// suffix, the host itself. Ports and schemes are not part of it.
fn site(url: &str) -> Result<String, Error> {
    let parsed = url::Url::parse(url).map_err(|e| Error::Invalid(format!("{url:?}: {e}")))?;
    let host = parsed.host_str().ok_or_else(|| Error::Invalid(format!("{url:?}: no host")))?;
    // An address as the URL parser wrote it (IPv6 in brackets).
    if host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(host.to_owned());
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    Ok(psl::domain_str(&name).unwrap_or(&name).to_owned())
}

/// Checks `--artifacts-origin` against the server's base URL `base_url` (the one its
/// links use): an error saying why and what to do when the two are the same site, unless
/// `allow_same_site` (`--allow-same-site-artifacts-origin`: the operator accepts it).
/// No artifacts origin: nothing to check.
pub fn check_artifacts_origin(
    base_url: &str,
    artifacts_origin: Option<&str>,
    allow_same_site: bool,
) -> Result<(), Error> {
    let Some(origin) = artifacts_origin else { return Ok(()) };
    let (ours, theirs) = (site(base_url)?, site(origin)?);
    if ours != theirs || allow_same_site {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{origin} is the same site ({ours}) as the server ({base_url}), so browsers would send \
         the server's session cookie along with a report's requests there: serve it from a separate registrable \
         domain (e.g. example-artifacts.com beside gitlab.example.com, as GitLab Pages and githubusercontent.com \
         are), or pass --allow-same-site-artifacts-origin to accept that"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_artifacts_origin_is_refused_on_the_servers_own_site() {
        let same = |base: &str, origin: &str| check_artifacts_origin(base, Some(origin), false).is_err();
        assert!(same("https://gitlab.example.com", "https://files.example.com"));
        assert!(same("https://gitlab.example.com", "https://example.com:8443"));
        assert!(same("https://GitLab.Example.COM.", "http://a.b.example.com"));
        assert!(same("http://gitlab.example.co.uk", "http://files.example.co.uk"));
        assert!(same("http://127.0.0.1:8080", "http://127.0.0.1:8081"), "an address: the host, port aside");
        assert!(same("http://localhost:8080", "http://localhost:9000"));
        assert!(same("http://[::1]:8080", "http://[::1]:8081"));
        assert!(!same("https://gitlab.example.com", "https://example-artifacts.com"));
        assert!(!same("https://x.github.io", "https://y.github.io"), "github.io is a public suffix");
        assert!(!same("https://gitlab.example.co.uk", "https://files.other.co.uk"));
        assert!(!same("http://127.0.0.1:8080", "http://localhost:8080"));
        assert!(!same("http://127.0.0.1:8080", "http://127.0.0.2:8080"));
        assert!(check_artifacts_origin("https://gitlab.example.com", None, false).is_ok(), "none: nothing to check");
        assert!(check_artifacts_origin("https://gitlab.example.com", Some("https://files.example.com"), true).is_ok());
        assert!(check_artifacts_origin("https://gitlab.example.com", Some("not a url"), true).is_err());
        let said = check_artifacts_origin("https://gitlab.example.com", Some("https://files.example.com"), false)
            .unwrap_err()
            .to_string();
        assert!(!said.contains('\n') && said.contains("(example.com)") && said.contains("registrable domain"));
        assert!(said.contains("--allow-same-site-artifacts-origin"), "{said}");
    }
}
