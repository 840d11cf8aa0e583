//! Request paths and upstream URLs, for servers and proxies in front of GitLab: a caller's
//! path parsed once into decoded segments under the request-path rule (no dot segment, in
//! any encoding), and every URL to an upstream built from typed parts, each part
//! percent-encoded as exactly one segment, below the upstream's own path prefix.
//!
//! A proxy that joins what a caller sent onto its upstream's URL hands the caller the
//! upstream's URL parser: `/%2e%2e/admin` or `x/../../releases/...` is collapsed by the
//! HTTP client into another endpoint, or out of the upstream's prefix. Built from these
//! types, the URL the upstream receives names exactly the segments the caller's path named,
//! and nothing above the prefix.
//!
//! ```
//! use artifact_core::JobRef;
//! use artifact_core::request::{ArchiveRequest, RequestPath, Upstream};
//!
//! let upstream = Upstream::new("https://example.com", "/gitlab")?;
//! let path = RequestPath::parse("/api/v4/projects/group%2Fapp/jobs")?;
//! assert_eq!(upstream.below(&path, Some("page=2")), "https://example.com/gitlab/api/v4/projects/group%2Fapp/jobs?page=2");
//! assert!(RequestPath::parse("/%2e%2e/admin").is_err());
//!
//! let latest = JobRef::Latest { ref_name: "feature/x".into(), job: "build docs".into() };
//! let archive = ArchiveRequest::new("group/app", latest)?;
//! assert_eq!(
//!     upstream.archive(&archive),
//!     "https://example.com/gitlab/api/v4/projects/group%2Fapp/jobs/artifacts/feature%2Fx/download?job=build%20docs"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, utf8_percent_encode};

use crate::resolve::JobRef;

/// What a forwarded path segment keeps as it is: RFC 3986's `pchar` (unreserved
/// characters, sub-delimiters, `:` and `@`). Everything else, `%`, `/`, `\`, `?` and `#`
/// among it, is percent-encoded.
const PCHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// What a typed part (a project's full path, a ref, a job name) keeps as it is when it is
/// written as one segment or one query value: RFC 3986's unreserved characters only.
const PART: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What a forwarded query keeps as it is: visible ASCII but `#` (and `%`, kept only as the
/// start of an escape, which the caller wrote).
const QUERY: &AsciiSet = &percent_encoding::CONTROLS.add(b' ').add(b'"').add(b'#').add(b'<').add(b'>');

/// Decodings tried when looking for a hidden dot segment (`%2e`, `%252e`, `%25252e`, ...).
const MAX_DECODINGS: usize = 8;

/// Which part of the request-path rule a path broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestPathRule {
    /// The path does not start with `/` (an asterisk-form or empty target).
    NotAbsolute,
    /// A segment is `.` or `..`, in some encoding (`%2e`, `%252E`, overlong UTF-8, behind
    /// a `%2F` or `\`, or before a `;` parameter).
    DotSegment,
    /// A typed part (a project, a ref, a job name) is empty.
    EmptyPart,
    /// An upstream's origin is not `scheme://authority` alone.
    NotAnOrigin,
}

/// A path that broke the request-path rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path is invalid: {}", match .rule {
    RequestPathRule::NotAbsolute => "it is not absolute",
    RequestPathRule::DotSegment => "it has a '.' or '..' segment",
    RequestPathRule::EmptyPart => "a part of it is empty",
    RequestPathRule::NotAnOrigin => "the upstream's origin is not scheme://authority alone",
})]
pub struct InvalidRequestPath {
    /// The rule it broke.
    pub rule: RequestPathRule,
}

/// A request's path as decoded segments, none of them a dot segment in any encoding.
///
/// Invariant: every segment, decoded as often as it still decodes, split at `/` and `\`,
/// and cut at a `;`, has no piece that is `.` or `..` (overlong UTF-8 forms of `.`, `/`
/// and `\` count as those characters). Segments are bytes: a segment that is not UTF-8 is
/// passed on encoded, for the upstream to refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    segments: Vec<Vec<u8>>,
}

impl RequestPath {
    /// Parses a raw (still percent-encoded) path, as it came in the request line, without
    /// its query (a `?` here is a character of a segment).
    ///
    /// # Errors
    ///
    /// [`InvalidRequestPath`] when the path does not start with `/`
    /// ([`RequestPathRule::NotAbsolute`]) or a segment is or hides a dot segment
    /// ([`RequestPathRule::DotSegment`]).
    pub fn parse(raw: &str) -> Result<RequestPath, InvalidRequestPath> {
        RequestPath::check(raw)?;
        let segments = raw[1..].split('/').map(|s| percent_decode(s.as_bytes()).collect()).collect();
        Ok(RequestPath { segments })
    }

    /// Whether `raw` follows the rule, without keeping its segments: what a server checks
    /// on every request. It allocates nothing unless a segment could hide a dot behind an
    /// escape (`%2e`, `%25`, an overlong UTF-8 lead).
    pub fn check(raw: &str) -> Result<(), InvalidRequestPath> {
        let rest = raw.strip_prefix('/').ok_or(InvalidRequestPath { rule: RequestPathRule::NotAbsolute })?;
        for segment in rest.split('/') {
            if hides_dot_segment(segment.as_bytes()) {
                return Err(InvalidRequestPath { rule: RequestPathRule::DotSegment });
            }
        }
        Ok(())
    }

    /// The decoded segments (the first is after the leading `/`).
    pub fn segments(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.segments.iter().map(Vec::as_slice)
    }

    /// The path in canonical form: `/` and each segment encoded as one segment.
    pub fn encoded(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            out.push('/');
            out.extend(percent_encoding::percent_encode(segment, PCHAR));
        }
        out
    }
}

/// Whether a raw segment is, or hides, a dot segment (see [`RequestPath`]).
fn hides_dot_segment(raw: &[u8]) -> bool {
    let mut current: std::borrow::Cow<'_, [u8]> = raw.into();
    for _ in 0..MAX_DECODINGS {
        if has_dot_piece(&current) {
            return true;
        }
        if !may_decode_to_a_dot(&current) {
            return false;
        }
        let decoded: Vec<u8> = percent_decode(&current).collect();
        if decoded == *current {
            return false;
        }
        current = decoded.into();
    }
    // Still decoding after that many rounds: no legitimate name is built that way.
    true
}

/// Whether decoding `bytes` could make a dot piece that is not there yet: an escape of `.`
/// (`%2e`) or of an overlong UTF-8 lead (`%c0`, `%c1`, `%e0`, `%f0`); a `%` that could start
/// a new escape once decoded (`%25`, or a `%` that is no escape, as in `%%32%65`); or,
/// beside a `.`, an escape of what cuts pieces (`%2f`, `%5c`, `%3b`). Plain names, and
/// escapes such as a project's `%2F`, are answered without decoding.
fn may_decode_to_a_dot(bytes: &[u8]) -> bool {
    let hex = |b: u8| b.is_ascii_hexdigit();
    let stray_percent = bytes.iter().enumerate().any(|(i, b)| {
        *b == b'%' && !(bytes.get(i + 1).is_some_and(|b| hex(*b)) && bytes.get(i + 2).is_some_and(|b| hex(*b)))
    });
    let escapes = |wanted: &[&[u8; 2]]| {
        bytes
            .windows(3)
            .any(|w| w[0] == b'%' && wanted.contains(&&[w[1].to_ascii_lowercase(), w[2].to_ascii_lowercase()]))
    };
    stray_percent
        || escapes(&[b"2e", b"25", b"c0", b"c1", b"e0", b"f0"])
        || (bytes.contains(&b'.') && escapes(&[b"2f", b"5c", b"3b"]))
}

/// Whether `bytes`, split at `/` and `\` (or their overlong forms) and each piece cut at
/// `;`, has a piece that is `.` or `..` (or overlong forms of them).
fn has_dot_piece(bytes: &[u8]) -> bool {
    let overlong = bytes.iter().any(|b| matches!(b, 0xC0 | 0xC1 | 0xE0 | 0xF0));
    let plain: std::borrow::Cow<'_, [u8]> = if overlong { without_overlong(bytes).into() } else { bytes.into() };
    plain.split(|b| *b == b'/' || *b == b'\\').any(|piece| {
        let piece = piece.split(|b| *b == b';').next().unwrap_or(piece);
        piece == b"." || piece == b".."
    })
}

/// `bytes` with overlong UTF-8 forms of ASCII (`C0 AE`, `E0 80 AE`, ...) replaced by the
/// ASCII byte, as lenient decoders read them.
fn without_overlong(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i..] {
            [lead @ (0xC0 | 0xC1), cont, ..] if cont & 0xC0 == 0x80 => {
                out.push(((lead & 0x01) << 6) | (cont & 0x3F));
                i += 2;
            }
            [0xE0, mid, cont, ..] if mid & 0xE0 == 0x80 && cont & 0xC0 == 0x80 => {
                out.push(((mid & 0x01) << 6) | (cont & 0x3F));
                i += 3;
            }
            [0xF0, 0x80, mid, cont, ..] if mid & 0xE0 == 0x80 && cont & 0xC0 == 0x80 => {
                out.push(((mid & 0x01) << 6) | (cont & 0x3F));
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// A typed part that is empty, or is or hides a dot segment once written as one segment:
/// refused.
fn check_part(part: &str) -> Result<(), InvalidRequestPath> {
    if part.is_empty() {
        return Err(InvalidRequestPath { rule: RequestPathRule::EmptyPart });
    }
    let encoded = utf8_percent_encode(part, PART).to_string();
    if hides_dot_segment(encoded.as_bytes()) {
        return Err(InvalidRequestPath { rule: RequestPathRule::DotSegment });
    }
    Ok(())
}

/// An artifacts archive as the API names it: a project (a numeric id or a full path, as
/// decoded) and a job (by id, or the newest successful job of a name on a ref).
///
/// Invariant: neither the project, nor the ref, nor the job name is empty, or is or hides
/// a dot segment once written as one segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArchiveRequest {
    project: String,
    job: JobRef,
}

impl ArchiveRequest {
    /// The archive of `job` in `project` (`group/app` or `42`).
    pub fn new(project: &str, job: JobRef) -> Result<ArchiveRequest, InvalidRequestPath> {
        check_part(project)?;
        if let JobRef::Latest { ref_name, job } = &job {
            check_part(ref_name)?;
            check_part(job)?;
        }
        Ok(ArchiveRequest { project: project.to_owned(), job })
    }

    /// The project, as given.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The job.
    pub fn job(&self) -> &JobRef {
        &self.job
    }

    /// The path and query of the archive's download (the Jobs API's endpoints 5 and 6):
    /// `/api/v4/projects/<project>/jobs/<id>/artifacts`, or
    /// `/api/v4/projects/<project>/jobs/artifacts/<ref>/download?job=<name>`, each part one
    /// segment (a `/` in it as `%2F`).
    pub fn path_and_query(&self) -> String {
        let project = utf8_percent_encode(&self.project, PART);
        match &self.job {
            JobRef::Id(id) => format!("/api/v4/projects/{project}/jobs/{id}/artifacts"),
            JobRef::Latest { ref_name, job } => {
                let (ref_name, job) = (utf8_percent_encode(ref_name, PART), utf8_percent_encode(job, PART));
                format!("/api/v4/projects/{project}/jobs/artifacts/{ref_name}/download?job={job}")
            }
        }
    }
}

/// An upstream: an origin (`scheme://authority`) and a path prefix, every URL to it built
/// below the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    origin: String,
    /// `""`, or `/` and segments in canonical form, without a trailing `/`.
    prefix: String,
}

impl Upstream {
    /// The upstream at `origin` (`https://gitlab.example.com`, trusted: the operator's)
    /// with path prefix `prefix` (`""` or `/gitlab`).
    ///
    /// # Errors
    ///
    /// [`InvalidRequestPath`] when `origin` is not `scheme://authority` alone (a path, a
    /// query or a fragment in it would be above every URL built;
    /// [`RequestPathRule::NotAnOrigin`]), or `prefix` breaks the request-path rule.
    pub fn new(origin: &str, prefix: &str) -> Result<Upstream, InvalidRequestPath> {
        let origin = origin.trim_end_matches('/');
        let is_origin = origin.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && !rest.is_empty()
                && !rest.contains(['/', '?', '#', '\\', ' '])
        });
        if !is_origin {
            return Err(InvalidRequestPath { rule: RequestPathRule::NotAnOrigin });
        }
        let prefix = prefix.trim_end_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { RequestPath::parse(prefix)?.encoded() };
        Ok(Upstream { origin: origin.trim_end_matches('/').to_owned(), prefix })
    }

    /// The origin, `scheme://authority`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The path prefix: `""`, or `/` and segments without a trailing `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The URL of `path` below the prefix, with `query` (the caller's, its characters that
    /// may not stand in a query encoded).
    pub fn below(&self, path: &RequestPath, query: Option<&str>) -> String {
        let mut url = format!("{}{}{}", self.origin, self.prefix, path.encoded());
        if let Some(query) = query {
            url.push('?');
            url.extend(utf8_percent_encode(query, QUERY));
        }
        url
    }

    /// The URL of the archive's download (see [`ArchiveRequest::path_and_query`]).
    pub fn archive(&self, archive: &ArchiveRequest) -> String {
        format!("{}{}{}", self.origin, self.prefix, archive.path_and_query())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> bool {
        RequestPath::parse(raw).is_err()
    }

    #[test]
    fn dot_segments_are_refused_in_every_encoding() {
        for raw in [
            "/..",
            "/a/../b",
            "/a/./b",
            "/%2e%2e/x",
            "/%2E%2e/x",
            "/.%2E/x",
            "/%252e%252e/x",
            "/%25252e%25252e/x",
            "/a%2F..%2Fb",
            "/a%2f%2e%2e",
            "/..%5Cx",
            "/a\\..\\b",
            "/..;jsessionid=1/x",
            "/%2e%2e;x/y",
            "/%c0%ae%c0%ae/x",
            "/%e0%80%ae%e0%80%ae/x",
            "/%c0%ae%c0%ae%c0%afx",
            "/x/%2e",
            "/%%32%65%%32%65/x",
            "/..%3b/x",
            "/%252E%252e%253Bx/y",
        ] {
            assert!(refused(raw), "{raw} passed");
        }
        assert!(refused("a/b") && refused("*") && refused(""), "not absolute");
        assert!(RequestPath::check("/a/%2e%2e/b").is_err() && RequestPath::check("/a/..;/b").is_err());
        assert!(RequestPath::check("/api/v4/projects/1/jobs/2/artifacts/a.b/..c").is_ok());
    }

    #[test]
    fn ordinary_paths_keep_their_segments() {
        for raw in
            ["/", "/api/v4/projects/group%2Fapp/jobs/1", "/a/.../b", "/a/..b/c.", "/v1.2/x.y.z", "/a//b", "/%ff/x"]
        {
            assert!(!refused(raw), "{raw} refused");
        }
        let path = RequestPath::parse("/api/v4/projects/group%2Fapp/a%20b/%5C/%ff").unwrap();
        assert_eq!(path.encoded(), "/api/v4/projects/group%2Fapp/a%20b/%5C/%FF");
        assert_eq!(path.segments().nth(3), Some(&b"group/app"[..]));
        // Canonical: parsing the encoded form gives the same segments.
        assert_eq!(RequestPath::parse(&path.encoded()).unwrap(), path);
    }

    #[test]
    fn urls_stay_below_the_prefix_and_parts_are_one_segment() {
        let up = Upstream::new("http://gitlab:8080", "/gitlab/").unwrap();
        assert_eq!(up.prefix(), "/gitlab");
        let path = RequestPath::parse("/api/v4/x").unwrap();
        assert_eq!(up.below(&path, Some("a=1&b=<x>#y")), "http://gitlab:8080/gitlab/api/v4/x?a=1&b=%3Cx%3E%23y");
        let by_id = ArchiveRequest::new("42", JobRef::Id(7)).unwrap();
        assert_eq!(up.archive(&by_id), "http://gitlab:8080/gitlab/api/v4/projects/42/jobs/7/artifacts");
        let latest = JobRef::Latest { ref_name: "x/../../releases".into(), job: "j".into() };
        assert!(ArchiveRequest::new("42", latest).is_err(), "a ref hiding dot segments");
        let latest = JobRef::Latest { ref_name: "v1.2/rc?#&".into(), job: "a&b=c".into() };
        let archive = ArchiveRequest::new("g/p", latest).unwrap();
        assert_eq!(
            archive.path_and_query(),
            "/api/v4/projects/g%2Fp/jobs/artifacts/v1.2%2Frc%3F%23%26/download?job=a%26b%3Dc"
        );
        assert!(ArchiveRequest::new("..", JobRef::Id(1)).is_err());
        assert!(ArchiveRequest::new("", JobRef::Id(1)).is_err());
        assert!(ArchiveRequest::new("7", JobRef::Latest { ref_name: "main".into(), job: String::new() }).is_err());
        assert!(Upstream::new("http://h", "/a/../b").is_err());
        for origin in ["http://h/x", "http://h?q", "h", "http://", "http://h#f"] {
            assert!(Upstream::new(origin, "").is_err(), "{origin}");
        }
    }
}
