//! Faults: `artifact import` killed with `SIGKILL` at random moments. After every kill the
//! store shows only whole jobs (archive, `metadata.gz` and log complete and byte-identical),
//! every pipeline has its job, and nothing committed is lost; the next import works; after
//! the grace period `artifact admin gc` leaves exactly the blobs that jobs refer to. A third
//! of the kills come at random moments, the others when the import takes its first lease
//! (about to write the archive) or its third (writing the log, the last blob before the
//! job's record), seen in the store.
//!
//! A second test kills `artifact serve` (`FAULT_SERVER_KILLS`, 5 here) while clients erase,
//! retry, cancel, keep and delete artifacts: every action the server answered with a
//! success holds after the restart, every job is whole or emptied, and gc leaves no orphan.
//!
//! `FAULT_KILLS` sets the number of kills (12 here; `benches/soak.sh kills` runs 50 with a larger
//! archive, `FAULT_ARCHIVE_MIB`), `FAULT_SEED` the moments (printed, to replay a run).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use artifact_server::{DataDir, JobKind, JobQuery, MIN_GC_GRACE, ProjectRef};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

const PROJECT: &str = "group/app";

fn artifact(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_artifact")).args(args).output().expect("run artifact")
}

fn import_args<'a>(data: &'a str, job: &'a str, zip: &'a str, log: &'a str) -> Vec<&'a str> {
    vec![
        "import",
        "--data",
        data,
        "--project",
        PROJECT,
        "--ref",
        "main",
        "--job",
        job,
        "--artifacts",
        zip,
        "--trace",
        log,
    ]
}

/// xorshift64*: the kill moments, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An archive like a big build's: `small` stored files, one large stored file of bytes that
/// do not compress, and one deflated text file (which gets checkpoints).
fn write_archive(path: &Path, small: usize, large_mib: usize) -> usize {
    let mut w = ZipWriter::new(std::fs::File::create(path).unwrap());
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    for i in 0..small {
        w.start_file(format!("build/objects/file-{i:05}.o"), stored).unwrap();
        w.write_all(format!("object {i}\n").repeat(20).as_bytes()).unwrap();
    }
    w.start_file("build/app.bin", stored.large_file(false)).unwrap();
    let (mut state, mut block) = (0x9E37_79B9_7F4A_7C15u64, vec![0u8; 1 << 20]);
    for _ in 0..large_mib {
        server_process::noise(&mut state, &mut block);
        w.write_all(&block).unwrap();
    }
    w.start_file("reports/log.txt", SimpleFileOptions::default()).unwrap();
    for i in 0..400_000 {
        writeln!(w, "line {i}: compiling module {} of the build", i % 977).unwrap();
    }
    w.finish().unwrap();
    small + 2
}

/// The files in `dir` (none if it is not there).
fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// What the store and the blob folder hold now.
struct Seen {
    jobs: BTreeMap<String, artifact_server::Job>,
    pipelines: usize,
    blobs: BTreeSet<String>,
    leases: BTreeSet<String>,
    parts: BTreeSet<String>,
}

fn look(data: &Path) -> Seen {
    let dir = DataDir::open(data).unwrap();
    let store = dir.store();
    let project = store.project(&ProjectRef::Path(PROJECT.into())).unwrap().unwrap();
    let query = JobQuery {
        project_id: project.id,
        pipeline_id: None,
        kind: JobKind::Build,
        scope: Vec::new(),
        include_retried: true,
        newest_first: true,
        before_id: None,
        count: false,
        offset: 0,
        limit: 1000,
    };
    let jobs: BTreeMap<String, artifact_server::Job> =
        store.list_jobs(&query).unwrap().rows.into_iter().map(|j| (j.name.clone(), j)).collect();
    // Pipelines are numbered from 1 and never deleted here: count the ones that exist.
    let pipelines = (1..=jobs.len() as i64 + 200).filter(|&id| store.pipeline(id).unwrap().is_some()).count();
    Seen {
        jobs,
        pipelines,
        blobs: dir.blobs().list().unwrap().into_iter().map(|b| b.key).collect(),
        leases: store.blob_leases().unwrap().into_iter().map(|(k, _)| k).collect(),
        parts: names_in(&data.join("blobs/tmp")),
    }
}

/// Every byte of a job's blobs against what was imported; the bytes that differ or are
/// missing (0 when whole).
fn bytes_lost(data: &Path, job: &artifact_server::Job, zip: &[u8], log: &[u8], entries: usize) -> u64 {
    let blobs = DataDir::open(data).unwrap().blobs();
    let read = |key: &str| -> Option<Vec<u8>> {
        let open = blobs.open(key).ok()?;
        let mut out = Vec::new();
        open.source.read_stream(0, open.source.len()).ok()?.read_to_end(&mut out).ok()?;
        Some(out)
    };
    let mut lost = 0;
    let archive = job.archive.as_ref().and_then(|a| read(&a.key)).unwrap_or_default();
    if archive != zip {
        lost += zip.len() as u64;
    }
    if job.trace.as_ref().and_then(|t| read(&t.key)).as_deref() != Some(log) {
        lost += log.len() as u64;
    }
    let metadata = job.metadata.as_ref().and_then(|m| read(&m.key)).unwrap_or_default();
    let listed = artifact_core::metadata::MetadataReader::new(&metadata[..]).map(|r| r.filter(Result::is_ok).count());
    // The entries plus their folders (build/, build/objects/, reports/).
    if listed.ok() != Some(entries + 3) {
        lost += metadata.len().max(1) as u64;
    }
    lost
}

#[test]
fn imports_killed_at_random_moments_leave_nothing_half_made_and_gc_collects_the_rest() {
    let kills: usize = std::env::var("FAULT_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let large_mib: usize = std::env::var("FAULT_ARCHIVE_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let seed: u64 = std::env::var("FAULT_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    println!("FAULT_SEED={seed} FAULT_KILLS={kills} FAULT_ARCHIVE_MIB={large_mib}");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let data: PathBuf = tmp.path().join("data");
    let (data_s, zip_path, log_path) = (data.to_str().unwrap(), tmp.path().join("big.zip"), tmp.path().join("job.log"));
    let entries = write_archive(&zip_path, 5_000, large_mib);
    std::fs::write(&log_path, "a line of the job's log\n".repeat(40_000)).unwrap();
    let (zip_s, log_s) = (zip_path.to_str().unwrap(), log_path.to_str().unwrap());
    let zip = std::fs::read(&zip_path).unwrap();
    let log = std::fs::read(&log_path).unwrap();
    assert!(artifact(&["admin", "--data", data_s, "project", "add", PROJECT]).status.success());

    // One whole import: its time bounds the moments of the kills.
    let started = Instant::now();
    let whole = artifact(&import_args(data_s, "whole", zip_s, log_s));
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    let full = started.elapsed();
    let mut committed: BTreeSet<String> = BTreeSet::from(["whole".to_owned()]);
    let mut checked: BTreeSet<String> = BTreeSet::new();
    let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
    let mut lost = 0u64;
    let mut last_kill = Instant::now();
    let watch = DataDir::open(&data).unwrap().store();
    for k in 0..kills {
        let before = look(&data);
        let name = format!("killed-{k}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_artifact"))
            .args(import_args(data_s, &name, zip_s, log_s))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Every third kill at a random moment (the moment is the point of this test, not a
        // wait for something); the others as soon as the import holds its first lease
        // (about to write the archive) or its third (the log: the last blob before the
        // record), watched in the store.
        let leases_wanted = [0, 1, 3][k % 3];
        if leases_wanted == 0 {
            std::thread::sleep(full.mul_f64(rng.unit() * 1.1));
        } else {
            while child.try_wait().unwrap().is_none()
                && watch.blob_leases().unwrap().len() < before.leases.len() + leases_wanted
            {
                std::thread::yield_now();
            }
        }
        let finished = child.try_wait().unwrap().is_some_and(|s| s.success());
        child.kill().ok();
        child.wait().unwrap();
        last_kill = Instant::now();
        if finished {
            committed.insert(name.clone());
        }
        let after = look(&data);
        let phase = if after.jobs.contains_key(&name) {
            "after the job was stored"
        } else if after.parts.difference(&before.parts).next().is_some() {
            "writing a blob"
        } else if after.blobs.difference(&before.blobs).next().is_some() {
            "between the blobs and the record"
        } else if after.leases.difference(&before.leases).next().is_some() {
            "leased, nothing written yet"
        } else {
            "verifying, generating metadata.gz"
        };
        *phases.entry(phase).or_default() += 1;
        if phase == "after the job was stored" {
            committed.insert(name.clone());
        }
        // Nothing half-made, nothing committed lost.
        assert_eq!(after.pipelines, after.jobs.len(), "a pipeline without its job after kill {k} ({phase})");
        for name in &committed {
            assert!(after.jobs.contains_key(name), "job {name} lost after kill {k}");
        }
        for (name, job) in &after.jobs {
            if checked.insert(name.clone()) {
                lost += bytes_lost(&data, job, &zip, &log, entries);
            }
        }
    }
    assert_eq!(lost, 0, "bytes of stored jobs missing or different");

    // The next import works.
    let next = artifact(&import_args(data_s, "after", zip_s, log_s));
    assert!(next.status.success(), "{}", String::from_utf8_lossy(&next.stderr));
    committed.insert("after".into());

    // Once the killed imports' leases are stale, gc leaves exactly what the jobs refer to.
    let grace = MIN_GC_GRACE + Duration::from_secs(1);
    std::thread::sleep(grace.saturating_sub(last_kill.elapsed()));
    let gc = artifact(&["admin", "--data", data_s, "gc", "--older-than", &format!("{}s", grace.as_secs())]);
    assert!(gc.status.success(), "{}", String::from_utf8_lossy(&gc.stderr));
    let collected: serde_json::Value = serde_json::from_slice(&gc.stdout).unwrap();
    let end = look(&data);
    let referred: BTreeSet<String> = end
        .jobs
        .values()
        .flat_map(|j| [&j.archive, &j.metadata, &j.trace].into_iter().flatten().map(|b| b.key.clone()))
        .collect();
    let checkpoints: BTreeSet<String> = end
        .blobs
        .iter()
        .filter(|k| k.starts_with("checkpoints/"))
        .filter(|k| referred.contains(&k.replacen("checkpoints/", "archive/", 1)))
        .cloned()
        .collect();
    let orphans: Vec<&String> =
        end.blobs.iter().filter(|k| !referred.contains(*k) && !checkpoints.contains(*k)).collect();
    assert!(orphans.is_empty(), "orphans after gc: {orphans:?}");
    assert!(end.parts.is_empty() && end.leases.is_empty(), "{:?} {:?}", end.parts, end.leases);
    assert_eq!(end.jobs.keys().cloned().collect::<BTreeSet<_>>(), committed, "exactly the committed jobs");
    for job in end.jobs.values() {
        lost += bytes_lost(&data, job, &zip, &log, entries);
    }
    assert_eq!(lost, 0);
    let removed = |field: &str| collected[field].as_array().map_or(0, Vec::len);
    println!(
        "kills: {kills} (one whole import: {:.0} ms); per phase: {phases:?}; jobs committed: {}; bytes lost: {lost}; \
         gc removed {} blobs, {} temporary files, {} outcomes, {} leases ({} bytes); orphans after gc: {}",
        full.as_secs_f64() * 1000.0,
        committed.len(),
        removed("blobs"),
        removed("leftovers"),
        removed("verifications"),
        removed("leases"),
        collected["bytes"],
        orphans.len()
    );
}

#[path = "common/server_process.rs"]
mod server_process;

#[test]
fn a_server_killed_during_job_actions_loses_nothing_it_answered_and_leaves_no_job_half_made() {
    let rounds: usize = std::env::var("FAULT_SERVER_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let seed: u64 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_s = data.to_str().unwrap();
    let zip_path = tmp.path().join("a.zip");
    let entries = write_archive(&zip_path, 200, 1);
    let log_path = tmp.path().join("job.log");
    std::fs::write(&log_path, "a line of the job's log\n".repeat(1_000)).unwrap();
    let (zip, log) = (std::fs::read(&zip_path).unwrap(), std::fs::read(&log_path).unwrap());
    assert!(artifact(&["admin", "--data", data_s, "project", "add", PROJECT]).status.success());
    assert!(artifact(&["admin", "--data", data_s, "user", "add", "root", "--admin"]).status.success());
    let token = String::from_utf8(artifact(&["admin", "--data", data_s, "token", "add", "root"]).stdout).unwrap();
    let token = token.trim().to_owned();
    for i in 0..16 {
        let name = format!("job{i}");
        let mut args = import_args(data_s, &name, zip_path.to_str().unwrap(), log_path.to_str().unwrap());
        if i % 4 == 0 {
            args.extend(["--status", "running"]);
        }
        assert!(artifact(&args).status.success());
    }
    let imported = Instant::now();
    let base = "/api/v4/projects/group%2Fapp/jobs";
    // What the server answered with a success before it was killed: erased or emptied jobs
    // (their archives must stay gone), and the jobs that retries made (they must exist).
    let mut emptied: BTreeSet<i64> = BTreeSet::new();
    let mut made: BTreeSet<i64> = BTreeSet::new();
    let mut actions = 0;
    for round in 0..rounds {
        let server = server_process::ServerProcess::start(&data, &[]);
        let url = server.url.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..6u64)
            .map(|w| {
                let (url, token, stop) = (url.clone(), token.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut done = Vec::new();
                    let mut n = w + 1;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                        let job = 1 + (n >> 33) % 24;
                        let (method, path) = match (n >> 20) % 6 {
                            0 => ("POST", format!("{base}/{job}/erase")),
                            1 => ("DELETE", format!("{base}/{job}/artifacts")),
                            2 => ("POST", format!("{base}/{job}/retry")),
                            3 => ("POST", format!("{base}/{job}/cancel")),
                            4 => ("POST", format!("{base}/{job}/artifacts/keep")),
                            _ => ("GET", format!("{base}/{job}/artifacts/build/app.bin")),
                        };
                        if let Some((status, body)) = server_process::http_send(&url, method, &path, &token) {
                            let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                            done.push((job as i64, method, path, (status, body)));
                        }
                    }
                    done
                })
            })
            .collect();
        // The moment of the kill is the point of this test, not a wait for something.
        std::thread::sleep(Duration::from_millis(200 + (rng.unit() * 800.0) as u64));
        drop(server); // SIGKILL
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for worker in workers {
            for (job, method, path, (status, body)) in worker.join().unwrap() {
                actions += 1;
                assert!(status < 500, "round {round}: {method} {path}: {status} {body}");
                match (method, status) {
                    ("POST", 201) if path.ends_with("/erase") => drop(emptied.insert(job)),
                    ("DELETE", 204) => drop(emptied.insert(job)),
                    ("POST", 201) if path.ends_with("/retry") => drop(made.insert(body["id"].as_i64().unwrap())),
                    _ => {}
                }
            }
        }
        // After the kill: every job whole or emptied, nothing answered lost.
        let store = DataDir::open(&data).unwrap().store();
        let blobs = DataDir::open(&data).unwrap().blobs();
        for id in 1..=(24 + made.len() as i64 * 2) {
            let Some(job) = store.job(id).unwrap() else {
                assert!(!made.contains(&id), "round {round}: job {id}, made by an answered retry, is gone");
                continue;
            };
            if emptied.contains(&id) {
                assert!(job.archive.is_none(), "round {round}: job {id}'s archive came back");
            }
            for (blob, expected) in [(&job.archive, &zip), (&job.trace, &log)] {
                if let Some(blob) = blob {
                    let open = blobs.open(&blob.key).unwrap_or_else(|e| panic!("job {id}: {} {e}", blob.key));
                    let mut bytes = Vec::new();
                    open.source.read_stream(0, open.source.len()).unwrap().read_to_end(&mut bytes).unwrap();
                    assert!(&bytes == expected, "round {round}: job {id}: {} differs", blob.key);
                }
            }
            if let Some(m) = &job.metadata {
                let open = blobs.open(&m.key).unwrap();
                let listed = artifact_core::metadata::MetadataReader::new(
                    open.source.read_stream(0, open.source.len()).unwrap(),
                )
                .unwrap()
                .count();
                assert_eq!(listed, entries + 3, "round {round}: job {id}'s metadata.gz");
            }
            assert_eq!(job.archive.is_some(), job.metadata.is_some(), "round {round}: job {id} half-emptied");
        }
    }
    // What the kills left (blobs deleted after their records, never before) goes with gc,
    // once older than its grace period.
    let grace = MIN_GC_GRACE;
    std::thread::sleep((grace + Duration::from_secs(1)).saturating_sub(imported.elapsed()));
    let gc = artifact(&["admin", "--data", data_s, "gc", "--older-than", &format!("{}s", grace.as_secs())]);
    assert!(gc.status.success(), "{}", String::from_utf8_lossy(&gc.stderr));
    let end = look(&data);
    let referred: BTreeSet<String> = (1..=(24 + made.len() as i64 * 2))
        .filter_map(|id| DataDir::open(&data).unwrap().store().job(id).unwrap())
        .flat_map(|j| [j.archive, j.metadata, j.trace].into_iter().flatten().map(|b| b.key))
        .collect();
    let beside_referred = |k: &String| referred.contains(&k.replacen("checkpoints/", "archive/", 1));
    let orphans: Vec<&String> = end.blobs.iter().filter(|k| !referred.contains(*k) && !beside_referred(k)).collect();
    assert!(orphans.is_empty(), "orphans after gc: {orphans:?}");
    println!(
        "server kills: {rounds}; actions answered: {actions} ({} jobs emptied, {} made by retries); nothing answered lost; \
         orphans after gc: 0",
        emptied.len(),
        made.len()
    );
}
