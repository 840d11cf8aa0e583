//! Ranges of large deflated entries from checkpoints: built at import, beside the archive,
//! byte-identical to the full entry for any range, ignored when damaged (the range is then
//! inflated from the start, still exact), and deleted with the archive.

use std::io::Write;

use artifact_server::ImportJob;
use axum::http::Method;

use crate::support::{World, archive_file, files_under, private};

/// 10 MiB of log-like text: larger than the 8 MiB from which entries get checkpoints.
fn log_text() -> Vec<u8> {
    let mut out = Vec::with_capacity(10 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut line = 0u64;
    while out.len() < 10 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        line += 1;
        let level = ["INFO", "WARN", "DEBUG"][(x % 3) as usize];
        out.extend_from_slice(format!("{line:08} {level} step {} took {} ms\n", x % 977, x % 10_007).as_bytes());
    }
    out.truncate(10 << 20);
    out
}

/// Imports a job whose archive holds the text as a deflated `logs/big.log`.
fn import_big(w: &World) -> (i64, Vec<u8>) {
    let data = log_text();
    let zip = w.dir.path().join("big-log.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    z.start_file("logs/big.log", opts).unwrap();
    z.write_all(&data).unwrap();
    z.finish().unwrap();
    let job = w.import(ImportJob { artifacts: Some(zip), ..w.job("logs") });
    (job["id"].as_i64().unwrap(), data)
}

async fn assert_ranges_exact(w: &World, id: i64, data: &[u8]) {
    let uri = private(&format!("/jobs/{id}/artifacts/logs/big.log"));
    let len = data.len() as u64;
    let mib = 1u64 << 20;
    let ranges: Vec<(String, u64, u64)> = vec![
        ("bytes=0-99".into(), 0, 100),
        (format!("bytes=-{mib}"), len - mib, len),
        (format!("bytes={}-{}", 4 * mib - 10, 4 * mib + 10), 4 * mib - 10, 4 * mib + 11),
        (format!("bytes={}-", 9 * mib + 12_345), 9 * mib + 12_345, len),
        (format!("bytes={}-{}", 5 * mib + 1, 7 * mib), 5 * mib + 1, 7 * mib + 1),
        (format!("bytes={}-{}", len - 1, len - 1), len - 1, len),
    ];
    for (range, start, end) in ranges {
        let r = w.send(Method::GET, &uri, Some("reporter"), &[("range", &range)]).await;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.header("content-range"), format!("bytes {start}-{}/{len}", end - 1), "{range}");
        assert!(r.body == data[start as usize..end as usize], "{range}: not the entry's bytes");
    }
}

#[tokio::test]
async fn ranges_of_a_large_deflated_entry_start_at_checkpoints_and_are_exact() {
    let w = World::new();
    let (id, data) = import_big(&w);
    let beside = files_under(&w.dir.path().join("data/blobs/checkpoints"));
    assert_eq!(beside.len(), 1, "one checkpoint index beside the archive");
    let index_len = std::fs::metadata(&beside[0]).unwrap().len();
    assert!(index_len * 100 <= data.len() as u64, "index {index_len} bytes: over 1% of the entry");
    assert_ranges_exact(&w, id, &data).await;
    // The whole entry still verifies and serves.
    let r = w.get(&private(&format!("/jobs/{id}/artifacts/logs/big.log")), "reporter").await;
    assert!(r.status == 200 && r.body == data);
    // Erase takes the checkpoints with the archive.
    assert_eq!(w.post(&private(&format!("/jobs/{id}/erase")), "developer").await.status, 201);
    assert!(files_under(&w.dir.path().join("data/blobs/checkpoints")).is_empty());
}

#[tokio::test]
async fn a_damaged_checkpoint_index_is_ignored_and_ranges_stay_exact() {
    let w = World::new();
    let (id, data) = import_big(&w);
    let beside = files_under(&w.dir.path().join("data/blobs/checkpoints"));
    // One byte of the index changed (its checksum no longer matches), before first use.
    let mut bytes = std::fs::read(&beside[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&beside[0], bytes).unwrap();
    assert_ranges_exact(&w, id, &data).await;
    // And a missing one.
    let w = World::new();
    let (id, data) = import_big(&w);
    std::fs::remove_file(&files_under(&w.dir.path().join("data/blobs/checkpoints"))[0]).unwrap();
    assert_ranges_exact(&w, id, &data).await;
}

#[tokio::test]
async fn a_whole_large_entry_is_served_exact_and_damage_aborts_it() {
    let w = World::new();
    let (id, data) = import_big(&w);
    let uri = private(&format!("/jobs/{id}/artifacts/logs/big.log"));
    // Whole, several times (inflated on every core when no other such stream runs).
    for _ in 0..3 {
        let (status, body) = w.send_raw(&uri, "reporter").await;
        assert_eq!(status, 200);
        assert!(body.unwrap() == data, "not the entry's bytes");
    }
    // Damage in the compressed data after import: the body never completes as a 200.
    let file = archive_file(&w, id);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 256] {
        *b ^= 0x5a;
    }
    std::fs::write(&file, bytes).unwrap();
    for _ in 0..2 {
        let (status, body) = w.send_raw(&uri, "reporter").await;
        assert_eq!(status, 200, "headers went out before the damage was reached");
        assert!(body.is_err(), "a damaged entry's body ended as if complete");
    }
}
