//! The gzip framing (RFC 1952) around an entry's raw deflate bytes: what a server sends to a
//! client that takes `Content-Encoding: gzip`, without inflating and deflating again.
#![forbid(unsafe_code)]

/// A gzip member header: deflate, no flags, no time, unknown OS.
pub const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The gzip trailer: the CRC-32 and the size modulo 2^32, little-endian.
pub fn trailer(crc: u32, size: u64) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&crc.to_le_bytes());
    t[4..].copy_from_slice(&(size as u32).to_le_bytes());
    t
}
