//! One entry of a local artifacts archive to stdout, verified:
//! `cargo run -p artifact-core --example cat -- artifacts.zip coverage/index.html`.

use std::io::Write;

use artifact_core::{Archive, ArtifactPath};

/// Writes the entry `path` of the archive `archive` to `out`; its size.
pub(crate) fn run(archive: &str, path: &str, out: &mut impl Write) -> Result<u64, Box<dyn std::error::Error>> {
    // The path rule first: `..`, absolute paths and the like are refused here.
    let path = ArtifactPath::new(path)?;
    // The last bytes and the central directory are read once; nothing else.
    let archive = Archive::open_file(archive)?;
    let entry = archive.find(&path)?;
    // Inflated as it is read; the size and CRC-32 are checked before the end is reported.
    Ok(std::io::copy(&mut archive.reader(&entry)?, out)?)
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [archive, path] = args.as_slice() else {
        return Err("usage: cat ARCHIVE PATH".into());
    };
    run(archive, path, &mut std::io::stdout().lock())?;
    Ok(())
}
