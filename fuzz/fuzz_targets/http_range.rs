//! The server's `Range` header parser; see `fuzz_property` in `crates/server/src/ranges.rs`.
//! The file is included by path: it depends on nothing, so the fuzz build stays free of the
//! server's dependencies (SQLite, axum).
#![no_main]

#[path = "../../crates/server/src/ranges.rs"]
#[allow(dead_code, unreachable_pub)]
mod ranges;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ranges::fuzz_property(data));
