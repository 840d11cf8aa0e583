//! Go's `path.Dir` and `path.Clean` on bytes: Workhorse adds every parent directory of an
//! entry with them, so the generator must compute parents exactly the same way.
#![forbid(unsafe_code)]

/// Go's `path.Clean`: the shortest equivalent path by purely lexical processing.
pub(crate) fn clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let n = path.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0, 0);
    if rooted {
        out.push(b'/');
        (r, dotdot) = (1, 1);
    }
    while r < n {
        let at_end_or_slash = |i: usize| i == n || path[i] == b'/';
        if path[r] == b'/' || (path[r] == b'.' && at_end_or_slash(r + 1)) {
            // An empty or `.` element.
            r += 1;
        } else if path[r] == b'.' && path.get(r + 1) == Some(&b'.') && at_end_or_slash(r + 2) {
            r += 2;
            if out.len() > dotdot {
                // Back up to the previous separator (or to the `..` floor) and drop from it.
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && path[r] != b'/' {
                out.push(path[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return b".".to_vec();
    }
    out
}

/// Go's `path.Dir`: everything before the last `/`, cleaned.
pub(crate) fn dir(path: &[u8]) -> Vec<u8> {
    let split = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    clean(&path[..split])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(p: &str) -> String {
        String::from_utf8(dir(p.as_bytes())).unwrap()
    }

    #[test]
    fn dir_matches_go() {
        // Expected values from Go's path.Dir documentation and its tests.
        for (input, expected) in [
            ("", "."),
            (".", "."),
            ("/.", "/"),
            ("/", "/"),
            ("////", "/"),
            ("/foo", "/"),
            ("x/", "x"),
            ("abc", "."),
            ("abc/def", "abc"),
            ("a/b/.x", "a/b"),
            ("a/b/c.", "a/b"),
            ("a/b/c.x", "a/b"),
            ("/a/b/c", "/a/b"),
            ("a//b", "a"),
            ("./f/asd", "f"),
            ("a/../b", "."),
            ("../../t/x", "../../t"),
            ("../..", ".."),
        ] {
            assert_eq!(d(input), expected, "Dir({input:?})");
        }
    }

    #[test]
    fn clean_matches_go() {
        for (input, expected) in [
            ("a/c/..", "a"),
            ("/../a", "/a"),
            ("a/../..", ".."),
            ("../../a/b/../c", "../../a/c"),
            ("abc/./../def", "def"),
            ("//abc", "/abc"),
        ] {
            assert_eq!(String::from_utf8(clean(input.as_bytes())).unwrap(), expected, "{input:?}");
        }
    }
}
