//! Helpers shared by the engine's behaviour tests: archives built by the `zip` crate.
#![allow(dead_code, unreachable_pub)]

use std::io::{Cursor, Read, Write};

use artifact_core::{Archive, ArtifactPath, Error, MemorySource, Source};
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

/// One file to put in a test archive.
pub struct File<'a> {
    pub name: &'a str,
    pub data: Vec<u8>,
    pub method: CompressionMethod,
}

pub fn deflated<'a>(name: &'a str, data: impl Into<Vec<u8>>) -> File<'a> {
    File { name, data: data.into(), method: CompressionMethod::Deflated }
}

pub fn stored<'a>(name: &'a str, data: impl Into<Vec<u8>>) -> File<'a> {
    File { name, data: data.into(), method: CompressionMethod::Stored }
}

/// An archive written by the `zip` crate.
pub fn build(files: &[File<'_>]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for f in files {
        let opts = SimpleFileOptions::default().compression_method(f.method).unix_permissions(0o644);
        w.start_file(f.name, opts).unwrap();
        w.write_all(&f.data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Text that compresses like real build output.
pub fn text(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    while out.len() < len {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let word = ["build ", "test ", "artifact ", "ok\n", "error ", "warning: ", "src/lib.rs:"];
        out.extend_from_slice(word[(x >> 60) as usize % word.len()].as_bytes());
        out.extend_from_slice(format!("{} ", x >> 48).as_bytes());
    }
    out.truncate(len);
    out
}

/// Reads the entry at `path` of an in-memory archive.
pub fn cat(archive: &[u8], path: &str) -> Result<Vec<u8>, Error> {
    cat_from(MemorySource::new(archive.to_vec()), path)
}

pub fn cat_from<S: Source>(source: S, path: &str) -> Result<Vec<u8>, Error> {
    let archive = Archive::open(source)?;
    let entry = archive.find(&ArtifactPath::new(path)?)?;
    let mut out = Vec::new();
    archive.reader(&entry)?.read_to_end(&mut out).map_err(Error::from_io)?;
    Ok(out)
}
