//! The hostile-archive corpus (`tests/hostile`, written by `scripts/make_hostile.py`): each
//! case's expected outcome (open, whole-archive check, each entry read alone, and what
//! verification at import refuses), and that the heap never grew past the case's stated
//! bound while that happened. `crates/server/tests/api/hostile.rs` runs the same corpus
//! through the server.
// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to System.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use artifact_core::{Archive, ArtifactPath, Error, FileSource, VerifyOptions, verify};
use serde_json::Value;

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to `System` with the same layout; the counters are only
// statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn class(e: &Error) -> &'static str {
    match e {
        Error::Corrupt(_) => "corrupt",
        Error::Unsupported(_) => "unsupported",
        Error::NotFound { .. } => "not found",
        _ => "other",
    }
}

fn outcome<T>(r: &Result<T, Error>) -> &'static str {
    r.as_ref().map_or_else(class, |_| "ok")
}

fn read(archive: &Archive<FileSource>, entry: &artifact_core::Entry) -> Result<u64, Error> {
    let mut reader = archive.reader(entry)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match reader.read(&mut buf).map_err(Error::from_io)? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}

#[test]
fn every_hostile_archive_gets_its_stated_outcome_within_its_memory_bound() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/hostile");
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    assert!(cases.len() >= 20, "the corpus has {} cases", cases.len());
    let mut total_read = 0u64;
    for case in &cases {
        let file = case["file"].as_str().unwrap();
        let bound = case["max_heap_mb"].as_u64().unwrap() as usize * 1024 * 1024;
        let base = CURRENT.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);

        let opened = Archive::open(FileSource::open(dir.join(file)).unwrap());
        assert_eq!(outcome(&opened), case["open"].as_str().unwrap(), "{file}: open");
        let imported = case["imported"].as_str().unwrap();
        if opened.is_err() {
            assert_eq!(imported, "refused", "{file}: an archive that does not open is refused whole");
        }
        if let Ok(archive) = opened {
            let verification = verify(&archive, &VerifyOptions::new());
            let found = match &verification {
                Err(_) => "refused",
                Ok(v) if v.refused.is_empty() => "ok",
                Ok(_) => "partial",
            };
            assert_eq!(found, imported, "{file}: import verification");
            if let Ok(v) = &verification {
                // Entries a case does not list serve.
                let served = case["served"].as_object().cloned().unwrap_or_default();
                for entry in archive.entries().map(Result::unwrap) {
                    let name = entry.display_name().into_owned();
                    let expected = served.get(&name).or_else(|| served.get("*")).and_then(Value::as_u64).unwrap_or(200);
                    let refusal = v.refusal_of(&entry);
                    assert_eq!(refusal.is_some(), expected == 500, "{file}: {name:?} verification: {refusal:?}");
                }
            }
            if let Some(index) = case["index"].as_str() {
                assert_eq!(outcome(&archive.index().and_then(|i| i.check_whole())), index, "{file}: index");
            }
            let reads = case["read"].as_object().cloned().unwrap_or_default();
            let listed: Result<Vec<_>, _> = archive.entries().collect();
            if let Ok(entries) = listed {
                for entry in &entries {
                    let name = entry.display_name().into_owned();
                    let expected = reads.get(&name).or_else(|| reads.get("*")).and_then(Value::as_str);
                    if let Some(expected) = expected {
                        let result = read(&archive, entry);
                        total_read += result.as_ref().map_or(0, |n| *n);
                        assert_eq!(outcome(&result), expected, "{file}: read {name:?}");
                    }
                }
                for hex in case["not_servable_hex"].as_array().into_iter().flatten() {
                    let hex = hex.as_str().unwrap();
                    let name: Vec<u8> =
                        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
                    assert!(entries.iter().any(|e| e.name() == &name[..]), "{file}: the case lists a name it lacks");
                    assert!(
                        ArtifactPath::new(&name).is_err(),
                        "{file}: {:?} must never be servable",
                        String::from_utf8_lossy(&name)
                    );
                }
            }
        }
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        assert!(peak <= bound, "{file}: heap grew by {peak} bytes, the bound is {bound}");
    }
    // The overlap bomb alone inflates 40 entries of about 1 MiB each, one at a time.
    assert!(total_read > 40 << 20, "only {total_read} bytes were read");
}
