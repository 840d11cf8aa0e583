//! Header values that point at the upstream, pointed at the proxy instead.

/// `value` with every occurrence of `upstream` (an absolute URL prefix, no trailing slash)
/// that starts a URL (after `<`, or at the very start) replaced by `base`. Other origins
/// (object storage) are left alone.
pub(crate) fn rebase(value: &str, upstream: &str, base: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut at_start = true;
    while let Some(i) = rest.find(upstream) {
        let starts_url = (at_start && i == 0) || rest[..i].ends_with('<');
        let after = &rest[i + upstream.len()..];
        // `https://gitlab.example` must not match `https://gitlab.example.evil`.
        let ends_origin = after.is_empty() || after.starts_with(['/', '?', '>', '#']);
        out.push_str(&rest[..i]);
        out.push_str(if starts_url && ends_origin { base } else { upstream });
        rest = after;
        at_start = false;
    }
    out.push_str(rest);
    out
}

/// A JSON text with every string that starts with `upstream` (then `/`, `?`, `#` or the
/// string's end) starting with `base` instead.
pub(crate) fn rebase_json(text: &str, upstream: &str, base: &str) -> String {
    let quoted = format!("\"{upstream}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&quoted) {
        let after = &rest[i + quoted.len()..];
        let ends_origin = after.starts_with(['/', '?', '#', '"']);
        out.push_str(&rest[..i]);
        out.push('"');
        out.push_str(if ends_origin { base } else { upstream });
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{rebase, rebase_json};

    #[test]
    fn urls_in_json_move_to_the_proxy() {
        let up = "http://10.0.0.1:8080";
        let text = r#"{"web_url":"http://10.0.0.1:8080/g/p/-/jobs/1","other":"http://10.0.0.1:80800/x","note":"see http://10.0.0.1:8080/x"}"#;
        assert_eq!(
            rebase_json(text, up, "https://proxy"),
            r#"{"web_url":"https://proxy/g/p/-/jobs/1","other":"http://10.0.0.1:80800/x","note":"see http://10.0.0.1:8080/x"}"#
        );
    }

    #[test]
    fn links_and_locations_on_the_upstream_move_to_the_proxy() {
        let up = "https://gitlab.example";
        let base = "http://proxy:8080";
        let link = "<https://gitlab.example/api/v4/projects/1/jobs?page=2>; rel=\"next\", <https://gitlab.example/api/v4/projects/1/jobs?page=9>; rel=\"last\"";
        assert_eq!(
            rebase(link, up, base),
            "<http://proxy:8080/api/v4/projects/1/jobs?page=2>; rel=\"next\", <http://proxy:8080/api/v4/projects/1/jobs?page=9>; rel=\"last\""
        );
        assert_eq!(rebase("https://gitlab.example/x", up, base), "http://proxy:8080/x");
        for untouched in [
            "https://bucket.example/a?X-Amz-Signature=1",
            "https://gitlab.example.evil/x",
            "see https://gitlab.example/x",
        ] {
            assert_eq!(rebase(untouched, up, base), untouched);
        }
    }
}
