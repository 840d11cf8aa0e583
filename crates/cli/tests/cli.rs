//! End-to-end tests of the `artifact` binary: real processes, archives written with the
//! `zip` crate into temporary directories, and the committed fixtures in `tests/data`.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

// ---------------------------------------------------------------------------------------
// helpers

fn artifact<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_artifact")).args(args).output().expect("run artifact")
}

/// A committed fixture.
fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data").join(name)
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit code, and that stderr is exactly one `artifact: ` line.
#[track_caller]
fn assert_fails(out: &Output, code: i32) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line on stderr, got: {err:?}");
    assert!(err.starts_with("artifact: ") && err.ends_with('\n'), "{err:?}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err:?}");
    err.trim_end().to_owned()
}

#[track_caller]
fn assert_ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(out));
}

/// One entry of a test archive.
enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Link(&'a str, &'a str),
}

fn options(mode: u32) -> SimpleFileOptions {
    let time = DateTime::from_date_and_time(2024, 1, 2, 3, 4, 6).unwrap();
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(time)
        .unix_permissions(mode)
}

/// Writes an archive of `entries`, in that order, to `dir/name`.
fn make_zip(dir: &Path, name: &str, entries: &[E<'_>]) -> PathBuf {
    let path = dir.join(name);
    let mut zip = ZipWriter::new(fs::File::create(&path).unwrap());
    for entry in entries {
        match entry {
            E::File(name, bytes, mode) => {
                zip.start_file(*name, options(*mode)).unwrap();
                zip.write_all(bytes).unwrap();
            }
            E::Dir(name) => zip.add_directory(*name, options(0o755)).unwrap(),
            E::Link(name, target) => zip.add_symlink(*name, *target, options(0o777)).unwrap(),
        }
    }
    zip.finish().unwrap();
    path
}

/// The usual small archive: no directory entries, so `a/` and `a/b/` are implied.
fn sample(dir: &Path) -> PathBuf {
    make_zip(
        dir,
        "sample.zip",
        &[
            E::File("top.txt", b"top\n", 0o644),
            E::File("a/b/c.txt", b"deep\n", 0o644),
            E::File("a/d.txt", b"d\n", 0o600),
            E::File("bin/run.sh", b"#!/bin/sh\n", 0o755),
        ],
    )
}

fn lines(out: &Output) -> Vec<String> {
    stdout(out).lines().map(str::to_owned).collect()
}

/// Every path under `root`, relative, sorted; directories end in `/`, links in `@`.
fn tree_of(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for item in fs::read_dir(dir).unwrap() {
            let path = item.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                out.push(format!("{rel}@"));
            } else if meta.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------
// cat

#[test]
fn cat_writes_the_entry_to_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = sample(tmp.path());
    let out = artifact(["cat".as_ref(), zip.as_os_str(), "a/b/c.txt".as_ref()]);
    assert_ok(&out);
    assert_eq!(out.stdout, b"deep\n");
    assert!(out.stderr.is_empty());
}

#[test]
fn cat_reads_the_fixtures() {
    let out = artifact(["cat".as_ref(), data("infozip-basic.zip").as_os_str(), "big.txt".as_ref()]);
    assert_ok(&out);
    assert_eq!(out.stdout.len(), 20_900);
    // The link entry's bytes are its target; cat does not follow it.
    let out = artifact(["cat".as_ref(), data("infozip-symlink.zip").as_os_str(), "link".as_ref()]);
    assert_ok(&out);
    assert_eq!(out.stdout, b"target.txt");
}

#[test]
fn cat_output_file_appears_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = sample(tmp.path());
    let dest = tmp.path().join("out").join("run.sh");
    fs::create_dir(tmp.path().join("out")).unwrap();
    fs::write(&dest, "old contents, replaced").unwrap();
    let out = artifact(["cat".as_ref(), zip.as_os_str(), "bin/run.sh".as_ref(), "-o".as_ref(), dest.as_os_str()]);
    assert_ok(&out);
    assert!(out.stdout.is_empty());
    assert_eq!(fs::read(&dest).unwrap(), b"#!/bin/sh\n");
    assert_eq!(tree_of(&tmp.path().join("out")), ["run.sh"], "no temporary file left");
}

#[test]
fn cat_with_a_bad_crc_leaves_no_output_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("bad.txt");
    let out = artifact([
        "cat".as_ref(),
        data("python-crc-bad.zip").as_os_str(),
        "bad.txt".as_ref(),
        "--output".as_ref(),
        dest.as_os_str(),
    ]);
    let err = assert_fails(&out, 5);
    assert!(err.starts_with("artifact: bad.txt: ") && err.contains("CRC-32 mismatch"), "{err}");
    assert!(tree_of(tmp.path()).is_empty(), "{:?}", tree_of(tmp.path()));
    // The good entry beside it reads fine.
    let out = artifact(["cat".as_ref(), data("python-crc-bad.zip").as_os_str(), "good.txt".as_ref()]);
    assert_ok(&out);
}

#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let big = vec![b'x'; 16 << 20];
    let zip = make_zip(tmp.path(), "big.zip", &[E::File("big.bin", &big, 0o644)]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_artifact"))
        .args(["cat".as_ref(), zip.as_os_str(), "big.bin".as_ref()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then dropped: closed
    let out = child.wait_with_output().unwrap();
    assert_eq!(first, *b"x");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------
// exit codes and messages

#[test]
fn usage_errors_exit_2() {
    for args in [&["frob"][..], &["cat"], &["ls"], &["cat", "a.zip"], &["ls", "a.zip", "--bogus"], &[]] {
        let out = artifact(args);
        let err = assert_fails(&out, 2);
        assert!(err.starts_with("artifact: usage: "), "{err}");
    }
    let out = artifact(["--help"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("extract"));
}

#[test]
fn invalid_paths_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = sample(tmp.path());
    for path in ["../x", "/etc/passwd", "a//b", "a/./b", "%2e%2e/x", ""] {
        let out = artifact(["cat".as_ref(), zip.as_os_str(), path.as_ref()]);
        let err = assert_fails(&out, 3);
        assert!(err.contains("invalid artifact path"), "{err}");
    }
    // The path is checked before the archive is opened.
    let out = artifact(["cat", "no-such.zip", "../x"]);
    assert_fails(&out, 3);
}

#[test]
fn missing_entries_and_archives_exit_4() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = sample(tmp.path());
    let out = artifact(["cat".as_ref(), zip.as_os_str(), "dist/app.js".as_ref()]);
    let err = assert_fails(&out, 4);
    assert_eq!(err, r#"artifact: dist/app.js: no entry named "dist/app.js" in the archive"#);
    // A directory is not an entry to cat, even an implied one.
    let out = artifact(["cat".as_ref(), zip.as_os_str(), "a/b".as_ref()]);
    assert_fails(&out, 4);
    let out = artifact(["cat".as_ref(), data("infozip-basic.zip").as_os_str(), "docs/".as_ref()]);
    assert_fails(&out, 3); // a trailing slash breaks the path rule first
    let missing = tmp.path().join("missing.zip");
    for args in [
        vec!["cat".as_ref(), missing.as_os_str(), "x".as_ref()],
        vec!["ls".as_ref(), missing.as_os_str()],
        vec!["extract".as_ref(), missing.as_os_str(), tmp.path().join("d").as_os_str()],
        vec!["metadata".as_ref(), "generate".as_ref(), missing.as_os_str()],
        vec!["metadata".as_ref(), "ls".as_ref(), missing.as_os_str()],
    ] {
        let out = artifact(&args);
        let err = assert_fails(&out, 4);
        assert!(err.starts_with(&format!("artifact: {}: ", missing.display())), "{err}");
    }
    assert!(!tmp.path().join("d").exists(), "nothing is created for a missing archive");
}

#[test]
fn corrupt_and_unsupported_exit_5() {
    for (fixture, entry, why) in [
        ("python-crc-bad.zip", "bad.txt", "CRC-32 mismatch"),
        ("python-encrypted.zip", "secret.txt", "encrypted"),
        ("python-bzip2.zip", "bzip2.txt", "bzip2"),
        ("python-lzma.zip", "lzma.txt", "lzma"),
        ("truncated-data-cd.zip", "big.txt", "corrupt"),
        ("truncated-eocd.zip", "big.txt", "corrupt archive"),
        ("truncated-cd.zip", "big.txt", "corrupt archive"),
    ] {
        let out = artifact(["cat".as_ref(), data(fixture).as_os_str(), entry.as_ref()]);
        let err = assert_fails(&out, 5);
        assert!(err.contains(why), "{fixture}: {err}");
    }
    let out = artifact(["ls".as_ref(), data("truncated-cd.zip").as_os_str()]);
    assert_fails(&out, 5);
}

#[test]
fn other_failures_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = sample(tmp.path());
    // The output's directory does not exist: an output problem, not a missing entry.
    let dest = tmp.path().join("no-such-dir").join("x");
    let out = artifact(["cat".as_ref(), zip.as_os_str(), "top.txt".as_ref(), "-o".as_ref(), dest.as_os_str()]);
    assert_fails(&out, 1);
    // A directory is not an archive.
    let out = artifact(["ls".as_ref(), tmp.path().as_os_str()]);
    let code = out.status.code();
    assert!(code == Some(1) || code == Some(5), "{code:?}");
    assert_fails(&out, code.unwrap());
}

// ---------------------------------------------------------------------------------------
// ls

#[test]
fn ls_lists_direct_children_with_implied_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = sample(tmp.path());
    let ls = |extra: &[&str]| {
        let mut args = vec!["ls".as_ref(), zip.as_os_str()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let out = artifact(args);
        assert_ok(&out);
        lines(&out)
    };
    assert_eq!(ls(&[]), ["a/", "bin/", "top.txt"]);
    assert_eq!(ls(&[""]), ["a/", "bin/", "top.txt"]);
    assert_eq!(ls(&["a"]), ["a/b/", "a/d.txt"]);
    assert_eq!(ls(&["a/"]), ["a/b/", "a/d.txt"]);
    assert_eq!(ls(&["a/b"]), ["a/b/c.txt"]);
    assert_eq!(ls(&["--recursive"]), ["a/", "a/b/", "a/b/c.txt", "a/d.txt", "bin/", "bin/run.sh", "top.txt"]);
    assert_eq!(ls(&["a", "-r"]), ["a/b/", "a/b/c.txt", "a/d.txt"]);
}

#[test]
fn ls_of_a_missing_directory_exits_4() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = sample(tmp.path());
    let out = artifact(["ls".as_ref(), zip.as_os_str(), "nope".as_ref()]);
    let err = assert_fails(&out, 4);
    assert_eq!(err, r#"artifact: nope/: no directory named "nope/" in the archive"#);
    // A file is not a directory.
    let out = artifact(["ls".as_ref(), zip.as_os_str(), "top.txt".as_ref()]);
    assert_fails(&out, 4);
}

#[test]
fn ls_long_shows_mode_size_and_utc_time() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = sample(tmp.path());
    let out = artifact(["ls".as_ref(), zip.as_os_str(), "--long".as_ref(), "-r".as_ref()]);
    assert_ok(&out);
    let expected = [
        "d?????????          - -                a/",
        "d?????????          - -                a/b/",
        "-rw-r--r--          5 2024-01-02 03:04 a/b/c.txt",
        "-rw-------          2 2024-01-02 03:04 a/d.txt",
        "d?????????          - -                bin/",
        "-rwxr-xr-x         10 2024-01-02 03:04 bin/run.sh",
        "-rw-r--r--          4 2024-01-02 03:04 top.txt",
    ];
    assert_eq!(lines(&out), expected);

    let out = artifact(["ls".as_ref(), data("infozip-symlink.zip").as_os_str(), "-l".as_ref()]);
    assert_ok(&out);
    let lines = lines(&out);
    assert!(lines[0].starts_with("lrwxrwxrwx ") && lines[0].ends_with(" link"), "{lines:?}");
    let out = artifact(["ls".as_ref(), data("infozip-basic.zip").as_os_str(), "-l".as_ref()]);
    assert!(stdout(&out).contains("drwxr-xr-x          0 2024-01-02 03:04 docs/\n"), "{}", stdout(&out));
}

#[test]
fn ls_json_describes_every_path() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = sample(tmp.path());
    let out = artifact(["ls".as_ref(), zip.as_os_str(), "a".as_ref(), "--json".as_ref()]);
    assert_ok(&out);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0],
        serde_json::json!({
            "path": "a/b/", "dir": true, "size": null, "compressed_size": null, "crc32": null,
            "method": null, "mode": null, "modified": null, "symlink": false
        })
    );
    let file = &rows[1];
    assert_eq!(file["path"], "a/d.txt");
    assert_eq!(file["dir"], false);
    assert_eq!(file["size"], 2);
    assert_eq!(file["method"], 8);
    assert_eq!(file["mode"], "600");
    assert_eq!(file["modified"], 1_704_164_646);
    assert_eq!(file["crc32"], crc32("d\n"));
    assert_eq!(file["symlink"], false);
    assert!(file["compressed_size"].is_u64());
}

/// CRC-32 (IEEE), bit by bit: the tests' own oracle.
fn crc32(data: &str) -> u32 {
    let mut crc = !0u32;
    for &b in data.as_bytes() {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn ls_prints_names_that_are_not_utf8_lossily() {
    let out = artifact(["ls".as_ref(), data("python-cp437.zip").as_os_str()]);
    assert_ok(&out);
    assert_eq!(lines(&out), ["caf\u{FFFD}.txt", "plain.txt"]);
    let out = artifact(["ls".as_ref(), data("python-cp437.zip").as_os_str(), "--json".as_ref()]);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["path"], "caf\u{FFFD}.txt");
}

// ---------------------------------------------------------------------------------------
// extract

fn extract(zip: &Path, dest: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["extract".as_ref(), zip.as_os_str(), dest.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    artifact(args)
}

#[test]
fn extract_writes_the_tree_with_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = make_zip(
        tmp.path(),
        "t.zip",
        &[
            E::Dir("empty/"),
            E::File("top.txt", b"top\n", 0o644),
            E::File("a/b/c.txt", b"deep\n", 0o4644),
            E::File("bin/run.sh", b"#!/bin/sh\n", 0o755),
        ],
    );
    let dest = tmp.path().join("new").join("dest");
    let out = extract(&zip, &dest, &[]);
    assert_ok(&out);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    assert_eq!(tree_of(&dest), ["a/", "a/b/", "a/b/c.txt", "bin/", "bin/run.sh", "empty/", "top.txt"]);
    assert_eq!(fs::read(dest.join("a/b/c.txt")).unwrap(), b"deep\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| fs::metadata(dest.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("bin/run.sh"), 0o755);
        assert_eq!(mode("a/b/c.txt"), 0o644, "never setuid");
    }
    let modified = fs::metadata(dest.join("top.txt")).unwrap().modified().unwrap();
    let secs = modified.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(secs, 1_704_164_646);

    // Extracting again over the same tree replaces the files.
    let out = extract(&zip, &dest, &[]);
    assert_ok(&out);
    assert_eq!(tree_of(&dest).len(), 7);
}

#[test]
fn extract_only_under_the_prefixes() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = sample(tmp.path());
    let dest = tmp.path().join("d");
    let out = extract(&zip, &dest, &["a/b", "top.txt"]);
    assert_ok(&out);
    assert_eq!(tree_of(&dest), ["a/", "a/b/", "a/b/c.txt", "top.txt"]);
    // A prefix matches whole segments only.
    let dest = tmp.path().join("e");
    let out = extract(&zip, &dest, &["bi"]);
    assert_ok(&out);
    assert!(tree_of(&dest).is_empty());
}

#[test]
fn extract_skips_names_that_break_the_path_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("inner").join("dest");
    let out = extract(&data("python-bad-names.zip"), &dest, &[]);
    assert_ok(&out);
    assert_eq!(tree_of(&dest), ["good.txt"]);
    assert_eq!(tree_of(tmp.path()), ["inner/", "inner/dest/", "inner/dest/good.txt"]);
    let err = stderr(&out);
    let skipped: Vec<&str> = err.lines().filter(|l| l.starts_with("artifact: skipped \"")).collect();
    assert_eq!(skipped.len(), 6, "{err}");
    assert!(err.contains(r#"artifact: skipped "../evil.txt": "#), "{err}");
    assert!(err.contains(r#"artifact: skipped "/abs.txt": "#), "{err}");
    assert!(err.ends_with("artifact: skipped 6 of 7 entries\n"), "{err}");
}

#[test]
fn extract_keeps_the_first_of_duplicate_names() {
    let tmp = tempfile::tempdir().unwrap();
    let out = extract(&data("python-dupes.zip"), tmp.path(), &[]);
    assert_ok(&out);
    assert_eq!(fs::read(tmp.path().join("dup.txt")).unwrap(), b"first\n");
    assert!(stderr(&out).contains(r#"artifact: skipped "dup.txt": "#));
}

#[test]
fn extract_stops_at_a_corrupt_entry_and_leaves_no_partial_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = extract(&data("python-crc-bad.zip"), tmp.path(), &[]);
    let err = assert_fails(&out, 5);
    assert!(err.starts_with("artifact: bad.txt: "), "{err}");
    assert_eq!(tree_of(tmp.path()), ["good.txt"]);
}

#[test]
fn symlinks_need_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let without = tmp.path().join("without");
    let out = extract(&data("infozip-symlink.zip"), &without, &[]);
    assert_ok(&out);
    assert_eq!(tree_of(&without), ["target.txt"]);
    assert!(stderr(&out).contains(r#"artifact: skipped "link": "#), "{}", stderr(&out));

    let with = tmp.path().join("with");
    let out = extract(&data("infozip-symlink.zip"), &with, &["--symlinks"]);
    assert_ok(&out);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    assert_eq!(tree_of(&with), ["link@", "target.txt"]);
    assert_eq!(fs::read_link(with.join("link")).unwrap(), Path::new("target.txt"));
    assert_eq!(fs::read(with.join("link")).unwrap(), fs::read(with.join("target.txt")).unwrap());
}

/// A hostile archive: a link out of the destination, then an entry through it.
#[test]
fn extract_never_writes_through_a_link_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let outside_str = outside.to_str().unwrap();
    for (i, target) in [outside_str, "..", "../outside", "./../outside"].into_iter().enumerate() {
        let zip = make_zip(
            tmp.path(),
            &format!("hostile{i}.zip"),
            &[E::Link("a", target), E::File("a/x", b"pwned\n", 0o644), E::Link("b", target)],
        );
        for flags in [&[][..], &["--symlinks"]] {
            let dest = tmp.path().join(format!("dest{i}{}", flags.len()));
            let out = extract(&zip, &dest, flags);
            assert_ok(&out);
            assert!(tree_of(&outside).is_empty(), "{target} {flags:?}: wrote outside");
            // a/x went into a real directory; neither link was made.
            assert_eq!(tree_of(&dest), ["a/", "a/x"], "{target} {flags:?}");
            let err = stderr(&out);
            assert_eq!(err.matches("artifact: skipped \"").count(), 2, "{err}");
            assert!(err.ends_with("artifact: skipped 2 of 3 entries\n"), "{err}");
        }
    }
}

#[test]
fn extract_refuses_link_targets_that_climb_through_other_links() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("deep").join("dest");
    let zip = make_zip(
        tmp.path(),
        "climb.zip",
        &[
            E::File("d/file.txt", b"f\n", 0o644),
            E::Link("d/s", ".."),       // fine: the destination itself
            E::Link("t", "d/s/../.."),  // lexically inside, really its parent
            E::Link("u", "d/file.txt"), // fine
            E::Link("d/v", "../../x"),  // climbs out
            E::Link("d", "elsewhere"),  // d is already a directory
        ],
    );
    let out = extract(&zip, &dest, &["--symlinks"]);
    assert_ok(&out);
    assert_eq!(tree_of(&dest), ["d/", "d/file.txt", "d/s@", "u@"]);
    let err = stderr(&out);
    for name in ["t", "d/v", "d"] {
        assert!(err.contains(&format!("artifact: skipped \"{name}\": ")), "{name}: {err}");
    }
    assert!(err.contains("something already exists"), "{err}");
}

#[cfg(unix)]
#[test]
fn extract_never_follows_links_already_in_the_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("a")).unwrap();
    std::os::unix::fs::symlink(outside.join("f"), dest.join("f")).unwrap();
    let zip = make_zip(tmp.path(), "z.zip", &[E::File("a/x", b"pwned\n", 0o644), E::File("f", b"mine\n", 0o644)]);
    let out = extract(&zip, &dest, &[]);
    assert_ok(&out);
    assert!(tree_of(&outside).is_empty(), "wrote outside");
    assert!(stderr(&out).contains(r#"artifact: skipped "a/x": a is a symbolic link"#), "{}", stderr(&out));
    // The planted link at a file's name is replaced, not followed.
    assert!(!fs::symlink_metadata(dest.join("f")).unwrap().file_type().is_symlink());
    assert_eq!(fs::read(dest.join("f")).unwrap(), b"mine\n");
}

// ---------------------------------------------------------------------------------------
// metadata

#[test]
fn metadata_generate_then_ls_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    for zip in [sample(tmp.path()), data("infozip-basic.zip"), data("python-deflate.zip")] {
        let gz = tmp.path().join("metadata.gz");
        let out = artifact(["metadata".as_ref(), "generate".as_ref(), zip.as_os_str(), "-o".as_ref(), gz.as_os_str()]);
        assert_ok(&out);
        let to_stdout = artifact(["metadata".as_ref(), "generate".as_ref(), zip.as_os_str()]);
        assert_ok(&to_stdout);
        assert_eq!(to_stdout.stdout, fs::read(&gz).unwrap(), "stdout and -o agree");
        assert_eq!(&to_stdout.stdout[..2], b"\x1f\x8b", "gzip");

        for flags in [&[][..], &["-r"], &["--json"], &["-r", "--json"]] {
            let run = |cmd: &[&str], file: &Path| {
                let mut args: Vec<&std::ffi::OsStr> = cmd.iter().map(std::ffi::OsStr::new).collect();
                args.push(file.as_os_str());
                args.extend(flags.iter().map(std::ffi::OsStr::new));
                let out = artifact(args);
                assert_ok(&out);
                out
            };
            let from_zip = run(&["ls"], &zip);
            let from_gz = run(&["metadata", "ls"], &gz);
            if flags.contains(&"--json") {
                let paths = |out: &Output| -> Vec<Value> {
                    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
                    rows.as_array().unwrap().iter().map(|r| r["path"].clone()).collect()
                };
                assert_eq!(paths(&from_zip), paths(&from_gz));
                let rows: Value = serde_json::from_slice(&from_gz.stdout).unwrap();
                let zip_rows: Value = serde_json::from_slice(&from_zip.stdout).unwrap();
                for (m, z) in rows.as_array().unwrap().iter().zip(zip_rows.as_array().unwrap()) {
                    if z["size"].is_null() {
                        continue; // implied directory: the metadata says 0
                    }
                    for key in ["dir", "size", "compressed_size", "crc32", "mode"] {
                        assert_eq!(m[key], z[key], "{key} of {}", z["path"]);
                    }
                }
            } else {
                assert_eq!(lines(&from_zip), lines(&from_gz), "{flags:?}");
            }
        }
    }
}

#[test]
fn metadata_ls_lists_children_under_a_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let gz = tmp.path().join("metadata.gz");
    let zip = sample(tmp.path());
    let out =
        artifact(["metadata".as_ref(), "generate".as_ref(), zip.as_os_str(), "--output".as_ref(), gz.as_os_str()]);
    assert_ok(&out);
    let out = artifact(["metadata".as_ref(), "ls".as_ref(), gz.as_os_str(), "a".as_ref()]);
    assert_ok(&out);
    assert_eq!(lines(&out), ["a/b/", "a/d.txt"]);
    let out = artifact(["metadata".as_ref(), "ls".as_ref(), gz.as_os_str(), "nope/".as_ref()]);
    assert_fails(&out, 4);
    // Not a metadata file at all.
    let out = artifact(["metadata".as_ref(), "ls".as_ref(), zip.as_os_str()]);
    assert_fails(&out, 5);
}

fn hostile(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/hostile").join(name)
}

#[test]
fn verify_reads_every_entry_and_names_the_refused() {
    let out = artifact(["verify".as_ref(), data("infozip-basic.zip").as_os_str()]);
    assert_ok(&out);
    assert!(stderr(&out).ends_with(" entries verified\n"), "{}", stderr(&out));
    for threads in ["1", "2", "0"] {
        let out = artifact([
            "verify".as_ref(),
            hostile("crc-mismatch.zip").as_os_str(),
            "--threads".as_ref(),
            threads.as_ref(),
        ]);
        let err = assert_fails(&out, 5);
        assert!(err.starts_with("artifact: 4 of 5 entries refused: \"small-stored.txt\": corrupt archive: "), "{err}");
        assert!(err.contains("CRC-32"), "{err}");
    }
    // An archive whose directory cannot be read at all is the usual corrupt-archive error.
    assert_fails(&artifact(["verify".as_ref(), hostile("truncated-in-eocd.zip").as_os_str()]), 5);
}

#[test]
fn a_directory_read_by_count_is_said_with_stats() {
    for file in ["cd-size-overstated.zip", "cd-size-understated.zip"] {
        let archive = hostile(file);
        let out = artifact(["cat".as_ref(), archive.as_os_str(), "b.bin".as_ref(), "--stats".as_ref()]);
        assert_ok(&out);
        assert_eq!(out.stdout, (0..=255u8).collect::<Vec<_>>().repeat(4));
        assert!(stderr(&out).contains("read by count from its offset"), "{file}: {}", stderr(&out));
        let out = artifact(["ls".as_ref(), archive.as_os_str(), "--stats".as_ref()]);
        assert_eq!(stdout(&out), "a.txt\nb.bin\n");
        assert!(stderr(&out).contains("read by count"), "{}", stderr(&out));
        // Without --stats, nothing is said.
        let out = artifact(["cat".as_ref(), archive.as_os_str(), "b.bin".as_ref()]);
        assert_eq!(stderr(&out), "");
    }
}

/// A zip of one deflated 10 MiB entry `logs/big.log` of log-like text (over the 8 MiB from
/// which entries get checkpoints); its bytes.
fn big_log_zip(dir: &Path) -> (PathBuf, Vec<u8>) {
    let mut data = Vec::with_capacity(10 << 20);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    while data.len() < 10 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(format!("{:06} step {} took {} ms\n", x % 999_983, x % 977, x % 10_007).as_bytes());
    }
    data.truncate(10 << 20);
    let path = dir.join("big-log.zip");
    let mut z = ZipWriter::new(fs::File::create(&path).unwrap());
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    z.start_file("logs/big.log", opts).unwrap();
    z.write_all(&data).unwrap();
    z.finish().unwrap();
    (path, data)
}

/// `artifact cat ZIP ENTRY --index-cache CACHE -o DEST`.
fn cat_cached(zip: &Path, entry: &str, cache: &Path, dest: &Path) -> Output {
    let args = ["cat".as_ref(), zip.as_os_str(), entry.as_ref(), "--index-cache".as_ref(), cache.as_os_str()];
    artifact(args.into_iter().chain(["-o".as_ref(), dest.as_os_str()]))
}

#[test]
fn cat_with_an_index_cache_keeps_checkpoints_and_reads_them_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (zip, want) = big_log_zip(tmp.path());
    let cache = tmp.path().join("cache");
    let cat = |dest: &Path| cat_cached(&zip, "logs/big.log", &cache, dest);
    // The first time: read once while the checkpoints are made, which are then kept.
    let first = tmp.path().join("first.log");
    assert_ok(&cat(&first));
    assert!(fs::read(&first).unwrap() == want);
    let kept: Vec<_> = fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].extension().is_some_and(|e| e == "ckpt"));
    // The next time: from the checkpoints, on all cores; the same bytes.
    let second = tmp.path().join("second.log");
    assert_ok(&cat(&second));
    assert!(fs::read(&second).unwrap() == want);
    // Damaged checkpoints are not used (and are made again): the same bytes.
    let mut bytes = fs::read(&kept[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs::write(&kept[0], bytes).unwrap();
    let third = tmp.path().join("third.log");
    assert_ok(&cat(&third));
    assert!(fs::read(&third).unwrap() == want);
    // Small entries and stored ones never get checkpoints.
    let small = tmp.path().join("small.txt");
    assert_ok(&cat_cached(&data("infozip-basic.zip"), "big.txt", &cache, &small));
    assert_eq!(fs::read_dir(&cache).unwrap().count(), 1);
}

#[test]
fn cat_with_an_index_cache_refuses_a_bad_crc_and_keeps_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (zip, _) = big_log_zip(tmp.path());
    // The CRC-32 changed in both headers: the data inflates, to bytes that do not have it.
    let mut bytes = fs::read(&zip).unwrap();
    bytes[14] ^= 0xff;
    let cd = bytes.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
    bytes[cd + 16] ^= 0xff;
    fs::write(&zip, bytes).unwrap();
    let cache = tmp.path().join("cache");
    let dest = tmp.path().join("out.log");
    let err = assert_fails(&cat_cached(&zip, "logs/big.log", &cache, &dest), 5);
    assert!(err.starts_with("artifact: logs/big.log: ") && err.contains("CRC-32 mismatch"), "{err}");
    assert!(!dest.exists());
    assert!(!cache.exists() || fs::read_dir(&cache).unwrap().count() == 0, "no checkpoints kept");
}

/// Without `scripts/test.sh` (the `external-tests` features), the tests that need programs
/// from outside the Rust toolchain are left out: this says so, once per `cargo test`, in one
/// line on the terminal (past the harness's capture), naming the command that runs them.
#[cfg(not(feature = "external-tests"))]
#[test]
fn the_tests_that_need_outside_programs_are_left_out_and_named() {
    use std::io::Write;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/test.sh");
    assert!(script.is_file(), "the command it names is there: {}", script.display());
    let _ = writeln!(
        std::io::stderr(),
        "left out: the tests that need PostgreSQL, Chromium, or python-gitlab, selenium and an S3 server from PyPI \
         (router suite and store conformance on PostgreSQL, blobs on a bucket, replicas, python-gitlab, the browser); \
         scripts/test.sh installs them and runs everything"
    );
}
