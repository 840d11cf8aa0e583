//! One entry of a remote artifacts archive to stdout, reading only the central directory
//! and the entry by range, with the archive's index kept on disk so that the next run costs
//! one request: `cargo run -p artifact-core --features http --example remote_cat --
//! https://gitlab.example.com/api/v4/projects/1/jobs/7/artifacts dist/app.js /tmp/index`
//! (with the token in `PRIVATE_TOKEN`, if set, sent as GitLab's `PRIVATE-TOKEN` header).

use std::io::Write;

use artifact_core::ArtifactPath;
use artifact_core::http::{HeaderValue, HttpOptions, RemoteArchives};

/// Writes the entry `path` of the archive at `url` to `out`, with the index kept in
/// `index_dir`; the requests made.
pub(crate) fn run(
    url: &str,
    path: &str,
    index_dir: &str,
    out: &mut impl Write,
) -> Result<u64, Box<dyn std::error::Error>> {
    let path = ArtifactPath::new(path)?;
    let mut options = HttpOptions::default();
    if let Ok(token) = std::env::var("PRIVATE_TOKEN") {
        // Sent to the URL's own origin only: never after a redirect to another.
        let mut value = HeaderValue::from_str(&token)?;
        value.set_sensitive(true); // never printed by `{:?}`
        options.headers.insert("private-token", value);
    }
    let remote = RemoteArchives::new(options)?.with_disk_cache(index_dir);
    // Cold: a suffix read (and the rest of the directory, if it is larger), then the
    // entry. Warm (the index on disk): the entry alone, checked against the indexed version.
    std::io::copy(&mut remote.open_entry(url, &path)?, out)?;
    Ok(remote.stats().reads)
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, path, index_dir] = args.as_slice() else {
        return Err("usage: remote_cat URL PATH INDEX_DIR".into());
    };
    let requests = run(url, path, index_dir, &mut std::io::stdout().lock())?;
    eprintln!("{requests} requests");
    Ok(())
}
