//! The baseline of the streaming benchmark: the entry's compressed bytes already in memory,
//! inflated by flate2 (the backend this build uses) with a CRC-32, output discarded. No zip
//! parsing, no I/O while timing. Prints the in-memory time on stderr.
//!
//! Usage: `inflate-baseline ARCHIVE ENTRY`

use std::time::Instant;

use artifact_core::{Archive, ArtifactPath};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (archive, name) = (args.next().ok_or("ARCHIVE")?, args.next().ok_or("ENTRY")?);
    // Locate the data with the engine; then copy the compressed bytes into memory.
    let bytes = std::fs::read(&archive)?;
    let opened = Archive::open(artifact_core::MemorySource::new(bytes.clone()))?;
    let entry = opened.find(&ArtifactPath::new(&name)?)?;
    let header = first_data_offset(&bytes)?;
    let data = &bytes[header..header + entry.compressed_size() as usize];

    let start = Instant::now();
    let crc = artifact_benches::inflate_crc(data);
    assert_eq!(crc, entry.crc32(), "baseline CRC");
    eprintln!("inflate+crc in memory: {:.3} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// Where the first entry's data starts (the benchmark archives hold one entry).
fn first_data_offset(bytes: &[u8]) -> Result<usize, Box<dyn std::error::Error>> {
    let at = bytes.windows(4).position(|w| w == b"PK\x03\x04").ok_or("no local header")?;
    let name_len = u16::from_le_bytes([bytes[at + 26], bytes[at + 27]]) as usize;
    let extra_len = u16::from_le_bytes([bytes[at + 28], bytes[at + 29]]) as usize;
    Ok(at + 30 + name_len + extra_len)
}
