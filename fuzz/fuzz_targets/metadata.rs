//! See `artifact_core::fuzzing::metadata` for the property this target checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| artifact_core::fuzzing::metadata(data));
