//! See `artifact_testkit::fuzz::entry_decode` for the property this target checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| artifact_testkit::fuzz::entry_decode(data));
