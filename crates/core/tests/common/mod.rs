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

/// A stored entry whose local header carries `extra_len` bytes of extra field that the
/// central directory does not.
pub fn with_local_extra(extra_len: usize, data: &[u8]) -> Vec<u8> {
    let name = b"x.txt";
    let crc = crc32fast::hash(data);
    let mut extra = 0xcafeu16.to_le_bytes().to_vec();
    extra.extend_from_slice(&((extra_len - 4) as u16).to_le_bytes());
    extra.resize(extra_len, 0xee);
    let mut out = 0x0403_4b50u32.to_le_bytes().to_vec();
    out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&extra);
    out.extend_from_slice(data);
    let cd_at = out.len() as u32;
    let mut cd = 0x0201_4b50u32.to_le_bytes().to_vec();
    cd.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
    cd.extend_from_slice(&crc.to_le_bytes());
    cd.extend_from_slice(&(data.len() as u32).to_le_bytes());
    cd.extend_from_slice(&(data.len() as u32).to_le_bytes());
    cd.extend_from_slice(&(name.len() as u16).to_le_bytes());
    cd.extend_from_slice(&[0; 8]);
    cd.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
    cd.extend_from_slice(&0u32.to_le_bytes());
    cd.extend_from_slice(name);
    out.extend_from_slice(&cd);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_at.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

/// Headers carrying `PRIVATE-TOKEN: value`: one caller's credential.
#[cfg(feature = "http")]
pub fn private_token(value: &'static str) -> artifact_core::http::HeaderMap {
    use artifact_core::http::{HeaderName, HeaderValue};
    artifact_core::http::HeaderMap::from_iter([(
        HeaderName::from_static("private-token"),
        HeaderValue::from_static(value),
    )])
}

/// An archive of one deflated entry `c.txt` of `data`, its CRC-32 said to be `crc`, whose
/// deflate stream has 100 KB of empty blocks after the data, then the final block: an
/// inflater makes the entry's last byte well before the stream's end arrives.
pub fn trailing_blocks(data: &[u8], crc: u32) -> Vec<u8> {
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut deflate, data).unwrap();
    // A sync flush: every byte of `data` is out, and the stream is at a byte boundary.
    std::io::Write::flush(&mut deflate).unwrap();
    let mut raw = deflate.get_ref().clone();
    for _ in 0..20_000 {
        raw.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]); // an empty stored block
    }
    raw.extend_from_slice(&[0x03, 0x00]); // the final block: fixed codes, end of block only
    // Written stored (the raw stream as its bytes), then told it is deflated.
    let mut zip = build(&[stored("c.txt", raw.clone())]);
    let patch = |zip: &mut Vec<u8>, at: usize| {
        zip[at..at + 2].copy_from_slice(&8u16.to_le_bytes());
        zip[at + 6..at + 10].copy_from_slice(&crc.to_le_bytes());
        zip[at + 14..at + 18].copy_from_slice(&(data.len() as u32).to_le_bytes());
    };
    patch(&mut zip, 8);
    let central = zip.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    patch(&mut zip, central + 10);
    zip
}
