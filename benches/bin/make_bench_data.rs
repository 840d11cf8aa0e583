//! Writes the archives of the scripted benchmarks into a directory (default `bench-data`):
//! `many.zip` (100,000 entries and a 2 KiB report), `big-deflate.zip` (one 1 GiB deflated
//! entry), `big-stored.zip` (one 256 MiB stored entry) and `blob.raw` (that entry's bytes,
//! the `cat` baseline). Existing files are kept.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use artifact_benches::{many_entries, one_big_entry, text};
use zip::CompressionMethod;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "bench-data".into());
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    let make = |name: &str, f: &dyn Fn(File) -> Result<(), Box<dyn std::error::Error>>| {
        let path = dir.join(name);
        if path.exists() {
            return Ok::<_, Box<dyn std::error::Error>>(());
        }
        eprintln!("writing {}", path.display());
        let tmp = dir.join(format!(".{name}.tmp"));
        f(File::create(&tmp)?)?;
        std::fs::rename(tmp, path)?;
        Ok(())
    };
    make("many.zip", &|f| {
        many_entries(f, 100_000)?;
        Ok(())
    })?;
    make("big-deflate.zip", &|f| {
        one_big_entry(f, "big.txt", 1 << 30, CompressionMethod::Deflated)?;
        Ok(())
    })?;
    make("big-stored.zip", &|f| {
        one_big_entry(f, "blob.bin", 256 << 20, CompressionMethod::Stored)?;
        Ok(())
    })?;
    make("blob.raw", &|f| {
        let mut w = BufWriter::new(f);
        let chunk = text(8 << 20, 11);
        for _ in 0..32 {
            std::io::Write::write_all(&mut w, &chunk)?;
        }
        std::io::Write::flush(&mut w)?;
        Ok(())
    })?;
    Ok(())
}
