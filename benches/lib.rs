//! Archives the benchmarks read, built the same way by the criterion benches and by the
//! `make-bench-data` binary behind the scripted whole-process benchmarks.

use std::io::{Cursor, Seek, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// The name of the 2 KiB file the look-up benchmarks pull out.
pub const SMALL_ENTRY: &str = "reports/summary.txt";

/// Deterministic text that compresses about as well as build logs and bundles (3 to 4:1).
pub fn text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&[u8]; 16] = [
        b"build ",
        b"test ",
        b"artifact ",
        b"ok\n",
        b"error ",
        b"warning: ",
        b"src/lib.rs:",
        b"=> ",
        b"function ",
        b"return ",
        b"const ",
        b"0x7f3a ",
        b"{ ",
        b"}\n",
        b"pipeline ",
        b"job ",
    ];
    let mut out = Vec::with_capacity(len + 16);
    let mut x = seed | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x & 15) as usize]);
        let digits = (x >> 8) % 100_000;
        out.extend_from_slice(itoa(digits).as_bytes());
        out.push(b' ');
    }
    out.truncate(len);
    out
}

fn itoa(mut v: u64) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'0' + (v % 10) as u8);
        v /= 10;
        if v == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// Writes an archive of `entries` small files (about 900 bytes each, stored, like the
/// object files and reports of a big build) with [`SMALL_ENTRY`] (2 KiB, deflated) last.
pub fn many_entries<W: Write + Seek>(out: W, entries: usize) -> zip::result::ZipResult<W> {
    let mut w = ZipWriter::new(out);
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    let body = text(900, 3);
    for i in 0..entries {
        w.start_file(format!("build/objects/file-{i:06}.o"), stored)?;
        w.write_all(&body)?;
    }
    w.start_file(SMALL_ENTRY, SimpleFileOptions::default())?;
    w.write_all(&text(2048, 5))?;
    w.finish()
}

/// An in-memory archive of `entries` small files and [`SMALL_ENTRY`].
pub fn many_entries_in_memory(entries: usize) -> Vec<u8> {
    many_entries(Cursor::new(Vec::new()), entries).map(Cursor::into_inner).unwrap_or_default()
}

/// Writes an archive holding one entry `name` of `len` bytes of [`text`], with `method`.
pub fn one_big_entry<W: Write + Seek>(
    out: W,
    name: &str,
    len: u64,
    method: CompressionMethod,
) -> zip::result::ZipResult<W> {
    let mut w = ZipWriter::new(out);
    let opts = SimpleFileOptions::default().compression_method(method).large_file(len >= 1 << 32);
    w.start_file(name, opts)?;
    let chunk = text(8 << 20, 11);
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    w.finish()
}

/// The baseline of the streaming benchmarks: raw-deflate `data` with flate2 (whichever
/// backend this build uses) into a 256 KiB buffer, CRC-32 the output, discard it.
pub fn inflate_crc(data: &[u8]) -> u32 {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut inflate = Decompress::new(false);
    let mut out = vec![0u8; 256 * 1024];
    let mut crc = crc32fast::Hasher::new();
    let mut input = data;
    loop {
        let before = (inflate.total_in(), inflate.total_out());
        let Ok(status) = inflate.decompress(input, &mut out, FlushDecompress::None) else {
            return 0;
        };
        input = &input[(inflate.total_in() - before.0) as usize..];
        crc.update(&out[..(inflate.total_out() - before.1) as usize]);
        if status == Status::StreamEnd || input.is_empty() {
            return crc.finalize();
        }
    }
}
