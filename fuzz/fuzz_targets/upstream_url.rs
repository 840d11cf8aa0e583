//! The upstream URLs a proxy builds from a request (`artifact_core::request`); see
//! `artifact_testkit::fuzz::upstream_url` for the property this target checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| artifact_testkit::fuzz::upstream_url(data));
