//! Where requests may go. A proxy reads archives wherever its upstream's redirect points;
//! these rules keep that from reaching what only the proxy's own network can reach: a list
//! of origins, and, always available, a refusal of link-local and cloud metadata addresses
//! by the URL's host and by every address its name resolves to (so that a name pointing at
//! `169.254.169.254` is refused too, at connect time).
#![forbid(unsafe_code)]

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use url::Url;

use crate::error::{Error, HttpProblem, Result};

/// Where the requests of a source may go. `Default`: anywhere (a command-line user reads
/// the URLs they give).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destinations {
    /// The origins requests may go to, as `Url::origin().ascii_serialization()` writes
    /// them: `scheme://host[:port]`, lowercase, the port only when it is not the scheme's
    /// default, no trailing `/`; empty: any.
    pub origins: Vec<String>,
    /// Refuses link-local and cloud metadata addresses ([`is_link_local`]), by the URL's
    /// host and by what a name resolves to. The name's addresses are checked by
    /// [`HttpClient`](super::HttpClient) when it connects to the host itself; through a
    /// forward proxy ([`Proxies`](super::Proxies)) the proxy resolves the name, and only
    /// the URL's host is checked here.
    pub refuse_link_local: bool,
}

/// Whether `ip` is link-local or a cloud metadata address: `169.254.0.0/16` (AWS, GCP,
/// Azure, ...), `100.100.100.200` (Alibaba), `fe80::/10`, `fd00:ec2::254` (AWS over IPv6),
/// or an IPv4 one of those inside an IPv6 address (IPv4-mapped or -compatible, NAT64's
/// `64:ff9b::/96`, 6to4's `2002::/16`).
pub fn is_link_local(ip: IpAddr) -> bool {
    let v4_refused = |v4: std::net::Ipv4Addr| v4.is_link_local() || v4.octets() == [100, 100, 100, 200];
    match ip {
        IpAddr::V4(v4) => v4_refused(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = match s {
                // IPv4-mapped (`::ffff:a.b.c.d`) and -compatible (`::a.b.c.d`).
                _ if v6.to_ipv4().is_some() => v6.to_ipv4(),
                [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
                    Some(std::net::Ipv4Addr::from(u32::from(hi) << 16 | u32::from(lo)))
                }
                [0x2002, hi, lo, ..] => Some(std::net::Ipv4Addr::from(u32::from(hi) << 16 | u32::from(lo))),
                _ => None,
            };
            embedded.is_some_and(v4_refused)
                || (s[0] & 0xffc0) == 0xfe80
                || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

impl Destinations {
    /// Whether a request may go to `url`: its origin is listed (or none are), and its host,
    /// when it is an address, is not refused.
    pub fn check(&self, url: &Url) -> Result<()> {
        let refused = |why: &str| Error::Http { url: super::shown(url), problem: HttpProblem::Refused(why.to_owned()) };
        if !self.origins.is_empty() && !self.origins.iter().any(|o| *o == url.origin().ascii_serialization()) {
            return Err(refused("its origin is not one the archives may be read from"));
        }
        if self.refuse_link_local {
            // The URL parser has made an address canonical (`0xa9fea9fe` is `169.254.169.254`).
            let host = url.host_str().unwrap_or("");
            let ip = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
            if ip.is_some_and(is_link_local) {
                return Err(refused("a link-local or cloud metadata address"));
            }
        }
        Ok(())
    }
}

/// The addresses of `host` (port 0), without the refused ones when `refuse_link_local`; an
/// error when none are left.
async fn resolve(host: String, refuse_link_local: bool) -> io::Result<Vec<SocketAddr>> {
    let found = tokio::task::spawn_blocking(move || (host.as_str(), 0).to_socket_addrs().map(Iterator::collect))
        .await
        .map_err(io::Error::other)??;
    let found: Vec<SocketAddr> = found;
    if !refuse_link_local {
        return Ok(found);
    }
    let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| !is_link_local(a.ip())).collect();
    if allowed.is_empty() {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "the name resolves to refused addresses only"));
    }
    Ok(allowed)
}

/// The name resolver of [`HttpClient`](super::HttpClient): the system's, without the
/// refused addresses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolver {
    pub(crate) refuse_link_local: bool,
}

impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let (host, refuse) = (name.as_str().to_owned(), self.refuse_link_local);
        Box::pin(async move { resolve(host, refuse).await.map(Vec::into_iter) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_and_metadata_addresses_are_refused_by_host_and_origins_by_list() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "100.100.100.200",
            "fe80::1",
            "febf::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(is_link_local(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "::1",
            "fd00:ec2::253",
            "fec0::1",
            "8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!is_link_local(ip.parse().unwrap()), "{ip}");
        }
        let refusing = Destinations { origins: vec![], refuse_link_local: true };
        let url = |u: &str| Url::parse(u).unwrap();
        assert!(refusing.check(&url("http://169.254.169.254/latest/meta-data")).is_err());
        assert!(refusing.check(&url("http://[fd00:ec2::254]/")).is_err());
        assert!(refusing.check(&url("http://[::ffff:a9fe:a9fe]/")).is_err(), "IPv4-mapped");
        assert!(refusing.check(&url("http://0xa9fea9fe/")).is_err(), "the URL parser reads hex IPv4");
        assert!(refusing.check(&url("https://bucket.s3.example/a.zip")).is_ok());
        let listed = Destinations { origins: vec!["https://bucket.example".into()], refuse_link_local: false };
        assert!(listed.check(&url("https://bucket.example/a?X-Amz-Signature=1")).is_ok());
        assert!(listed.check(&url("https://bucket.example:8443/a")).is_err());
        assert!(listed.check(&url("http://bucket.example/a")).is_err());
        let err = listed.check(&url("http://127.0.0.1:9/secret?token=x")).unwrap_err().to_string();
        assert!(!err.contains("token=x"), "{err}");
    }
}
