//! The `Range` header parser the server uses (`artifact_core::parse_range`); see
//! `artifact_testkit::fuzz::http_range` for the property this target checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| artifact_testkit::fuzz::http_range(data));
