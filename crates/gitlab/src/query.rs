//! Query strings as Grape reads them: repeated keys, `key[]` arrays, `+` as space.

use percent_encoding::percent_decode_str;

/// A parameter that Grape would not read as a boolean (see [`Query::bool`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotABoolean;

/// The decoded `key=value` pairs of a query string, in order.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
    raw: String,
}

impl Query {
    /// Parses a raw query string (`None`: no query).
    pub fn parse(raw: Option<&str>) -> Query {
        let raw = raw.unwrap_or("");
        let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
        let pairs = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Query { pairs, raw: raw.to_owned() }
    }

    /// The last value of `key` (Rack keeps the last of repeated scalars).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every decoded pair, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every value of `key` and `key[]`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        let array = format!("{key}[]");
        self.pairs.iter().filter(|(k, _)| *k == key || *k == array).map(|(_, v)| v.as_str()).collect()
    }

    /// The raw query with `page` set to `page`: every other parameter kept as sent.
    pub fn with_page(&self, page: u64) -> String {
        let mut parts: Vec<String> = self
            .raw
            .split('&')
            .filter(|p| !p.is_empty() && p.split('=').next() != Some("page"))
            .map(str::to_owned)
            .collect();
        parts.push(format!("page={page}"));
        parts.join("&")
    }

    /// A boolean parameter the way Grape coerces it: `true`/`false` in any case, `1`/`0`.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, NotABoolean> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(Some(false)),
            Some(_) => Err(NotABoolean),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_arrays_repeats_and_escapes() {
        let q = Query::parse(Some("scope[]=failed&scope=success&job=build+it&ref=a%2Fb&page=3&x"));
        assert_eq!(q.all("scope"), ["failed", "success"]);
        assert_eq!(q.get("job"), Some("build it"));
        assert_eq!(q.get("ref"), Some("a/b"));
        assert_eq!(q.get("x"), Some(""));
        assert_eq!(q.with_page(4), "scope[]=failed&scope=success&job=build+it&ref=a%2Fb&x&page=4");
    }

    #[test]
    fn booleans_like_grape() {
        let q = Query::parse(Some("a=True&b=false&c=1&d=yes"));
        assert_eq!(q.bool("a"), Ok(Some(true)));
        assert_eq!(q.bool("b"), Ok(Some(false)));
        assert_eq!(q.bool("c"), Ok(Some(true)));
        assert_eq!(q.bool("d"), Err(NotABoolean));
        assert_eq!(q.bool("e"), Ok(None));
    }
}
