//! Faults: a disk that fills up. The data directory is a small tmpfs this test mounts (it
//! runs as root, as CI does; elsewhere a file-size limit stands in for the full disk). An
//! import that runs out of space fails with one line naming the cause and exit 1, leaves
//! nothing visible and nothing behind, and the next one works once there is room. A server
//! whose disk is full keeps serving reads, answers writes with a clean 5xx, and writes again
//! once space returns.

#[path = "common/server_process.rs"]
mod server_process;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use server_process::{ServerProcess, artifact_bin, http_get, http_send};

/// A tmpfs of `mib` MiB mounted at `at`, unmounted when dropped; `None` if mounting is not
/// allowed here.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, mib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Tmpfs(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// An archive of one stored entry of `mib` MiB that does not compress.
fn archive(path: &Path, mib: usize) {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    w.start_file("blob.bin", SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)).unwrap();
    let (mut state, mut block) = (0x9E37_79B9_7F4A_7C15u64, vec![0u8; 1 << 20]);
    for _ in 0..mib {
        server_process::noise(&mut state, &mut block);
        w.write_all(&block).unwrap();
    }
    w.finish().unwrap();
}

/// `artifact ARGS --data DATA`, under a file-size limit of `limit_kib` when given (the
/// stand-in for a full disk where no tmpfs can be mounted).
fn artifact(data: &Path, args: &[&str], limit_kib: Option<u64>) -> Output {
    let mut cmd = match limit_kib {
        Some(kib) => {
            let mut sh = Command::new("sh");
            // Ignored SIGXFSZ: a write past the limit fails with EFBIG instead.
            sh.arg("-c").arg(format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" \"$@\"")).arg(artifact_bin());
            sh
        }
        None => Command::new(artifact_bin()),
    };
    cmd.args(args).arg("--data").arg(data).output().unwrap()
}

fn import_args<'a>(job: &'a str, zip: &'a str) -> Vec<&'a str> {
    vec!["import", "--project", "g/p", "--ref", "main", "--job", job, "--artifacts", zip]
}

/// The files under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else { return Vec::new() };
    read.flatten().flat_map(|e| if e.path().is_dir() { files(&e.path()) } else { vec![e.path()] }).collect()
}

#[test]
fn an_import_onto_a_full_disk_fails_cleanly_and_the_server_keeps_reading_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mounted = Tmpfs::mount(&data, 40);
    // Without a mount, blobs over 24 MiB cannot be written: the big import fails the same way.
    let limit = mounted.is_none().then_some(24 << 10);
    println!("full disk: {}", if mounted.is_some() { "a 40 MiB tmpfs" } else { "a 24 MiB file-size limit" });
    let (small, big) = (dir.path().join("small.zip"), dir.path().join("big.zip"));
    archive(&small, 4);
    archive(&big, 48);
    let (small, big) = (small.to_str().unwrap(), big.to_str().unwrap());
    assert!(artifact(&data, &["admin", "project", "add", "g/p", "--public"], None).status.success());
    let first = artifact(&data, &import_args("first", small), limit);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let before = files(&data);

    // The big import runs out of space: exit 1, one line naming the cause.
    let full = artifact(&data, &import_args("big", big), limit);
    let stderr = String::from_utf8_lossy(&full.stderr);
    println!("the import that ran out of space: exit {:?}, {}", full.status.code(), stderr.trim());
    assert_eq!(full.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("No space left on device") || stderr.contains("File too large"),
        "the cause is named: {stderr}"
    );
    // Nothing half-visible, nothing left behind: the same files as before (the database's
    // own files aside, whose sizes may change), no job, no temporary file.
    let is_db = |p: &PathBuf| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("artifact.db"));
    let blobs = |list: &[PathBuf]| list.iter().filter(|p| !is_db(p)).cloned().collect::<Vec<_>>();
    let (mut after, mut expected) = (blobs(&files(&data)), blobs(&before));
    after.sort();
    expected.sort();
    assert_eq!(after, expected);

    // The server's caller, made while there is room.
    assert!(artifact(&data, &["admin", "user", "add", "root", "--admin"], None).status.success());
    let token = String::from_utf8(artifact(&data, &["admin", "token", "add", "root"], None).stdout).unwrap();
    let token = token.trim();
    let mut server = ServerProcess::start(&data, &[]);
    let file = "/api/v4/projects/g%2Fp/jobs/1/artifacts/blob.bin";
    let listed = |server: &ServerProcess| {
        let (status, _, body) =
            http_get(&server.url, "/api/v4/projects/g%2Fp/jobs?per_page=100", &[("PRIVATE-TOKEN", token)]);
        assert_eq!(status, 200);
        serde_json::from_slice::<serde_json::Value>(&body).unwrap().as_array().unwrap().len()
    };
    assert_eq!(listed(&server), 1, "only the first job");
    if mounted.is_some() {
        // Fill the disk to the last byte.
        let filler = data.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 1 << 20];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&[0u8]).is_ok() {}
        drop(f);
        // Reads go on.
        let (status, _, body) = http_get(&server.url, file, &[("PRIVATE-TOKEN", token)]);
        assert_eq!((status, body.len()), (200, 4 << 20));
        // Writes (retrying the newest job, each a new row) go on while the database's
        // files have room, then are a clean 5xx: JSON, and no job half-made.
        let (mut newest, mut retried, mut refused) = (1i64, 0, None);
        for _ in 0..5_000 {
            let (status, body) =
                http_send(&server.url, "POST", &format!("/api/v4/projects/g%2Fp/jobs/{newest}/retry"), token).unwrap();
            match status {
                201 => {
                    newest = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"].as_i64().unwrap();
                    retried += 1;
                }
                500..=599 => {
                    let json: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error");
                    refused = Some((status, json));
                    break;
                }
                other => panic!("retry: {other} {}", String::from_utf8_lossy(&body)),
            }
        }
        let (status, json) = refused.expect("a write fails on a full disk");
        println!("on the full disk: reads 200, {retried} retries stored, then {status} {json}");
        assert_eq!(listed(&server), 1 + retried, "every job stored whole, the refused one not at all");
        // Space returns: writes work again.
        std::fs::remove_file(&filler).unwrap();
        let (status, body) =
            http_send(&server.url, "POST", &format!("/api/v4/projects/g%2Fp/jobs/{newest}/retry"), token).unwrap();
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        assert_eq!(listed(&server), 2 + retried);
    }
    assert!(server.stop());
    // With room again, the next import works.
    let next = artifact(&data, &import_args("next", small), limit);
    assert!(next.status.success(), "{}", String::from_utf8_lossy(&next.stderr));
}
