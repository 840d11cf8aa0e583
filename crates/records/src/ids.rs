//! Random ids and hex: the names of blobs, sessions, grants and multipart boundaries, and
//! how digests are written.

use std::io;

/// A new random name: 128 bits from the operating system's generator, as 32 hex digits.
pub fn random_hex() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(hex(&bytes))
}

/// `bytes` as lowercase hex, two digits each.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
