//! `artifact verify`: read every entry once, on all cores, and say which would be refused;
//! also the summary line and progress bar `artifact import` shows for the same work.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use artifact_core::{Archive, FileSource, Source, Verification, VerifyOptions};

use crate::error::{CliError, Exit};

/// Archives larger than this get a progress bar at a terminal.
const PROGRESS_FROM: u64 = 64 << 20;
/// Refusals named in the summary line at most.
const NAMED: usize = 10;

/// `artifact verify ARCHIVE [--threads N]`: the summary line on stderr; exit 0 if every
/// entry verified, 5 if some were refused.
pub(crate) fn run(archive_path: &Path, threads: usize, stats: bool) -> Result<(), CliError> {
    let shown = archive_path.display();
    let source = FileSource::open(archive_path).map_err(|e| CliError::engine(&shown, e.into()))?;
    let archive = Archive::open(source).map_err(|e| CliError::engine(&shown, e))?;
    let location = archive.central_directory().location();
    if stats && location.size_was_wrong() {
        eprintln!("{}", size_note(location.declared_size, location.size));
    }
    let total = archive.source().len();
    let verification = with_progress(total, |progress| {
        artifact_core::verify(&archive, &VerifyOptions::new().threads(threads).progress(progress))
    })
    .map_err(|e| CliError::engine(&shown, e))?;
    eprintln!("artifact: {}", summary(&verification));
    if verification.refused.is_empty() { Ok(()) } else { Err(CliError::quiet(Exit::Corrupt)) }
}

/// The `--stats` line for a directory read by count because its declared size was wrong.
pub(crate) fn size_note(declared: u64, found: u64) -> String {
    format!(
        "artifact: stats: the end record declares a {declared}-byte central directory; its records take {found} bytes (read by count from its offset, as Go's archive/zip and Info-ZIP do)"
    )
}

/// Runs `work` with a progress counter, drawing a bar at a terminal for archives over
/// [`PROGRESS_FROM`] bytes of `total`.
pub(crate) fn with_progress<T>(total: u64, work: impl FnOnce(Arc<AtomicU64>) -> T) -> T {
    let progress = Arc::new(AtomicU64::new(0));
    if !(std::io::stderr().is_terminal() && total > PROGRESS_FROM) {
        return work(progress);
    }
    let bar = crate::cat::progress_bar(total);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drawer = {
        let (bar, progress, done) = (bar.clone(), progress.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                bar.set_position(progress.load(Ordering::Relaxed));
                std::thread::park_timeout(Duration::from_millis(100));
            }
        })
    };
    let result = work(progress);
    done.store(true, Ordering::Relaxed);
    drawer.thread().unpark();
    let _ = drawer.join();
    bar.finish_and_clear();
    result
}

/// One line: `1,204 entries verified`, or `2 of 1,204 entries refused: "x.bin": why; ...`.
pub(crate) fn summary(v: &Verification) -> String {
    if v.refused.is_empty() {
        return format!("{} {} verified", grouped(v.entries), if v.entries == 1 { "entry" } else { "entries" });
    }
    let named: Vec<String> = v.refused.iter().take(NAMED).map(|r| format!("{:?}: {}", r.name, r.reason)).collect();
    let more = v.refused.len().saturating_sub(NAMED);
    let more = if more > 0 { format!("; and {} more", grouped(more as u64)) } else { String::new() };
    format!("{} of {} entries refused: {}{more}", grouped(v.refused.len() as u64), grouped(v.entries), named.join("; "))
}

/// `1204` as `1,204`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use artifact_core::Refusal;

    #[test]
    fn the_summary_counts_and_names() {
        let mut v = Verification { entries: 1204, bytes: 0, refused: Vec::new() };
        assert_eq!(summary(&v), "1,204 entries verified");
        v.refused.push(Refusal { record: 0, name: "x.bin".into(), reason: "CRC-32 mismatch".into() });
        assert_eq!(summary(&v), "1 of 1,204 entries refused: \"x.bin\": CRC-32 mismatch");
        assert_eq!(grouped(1_000_000), "1,000,000");
        assert_eq!(grouped(999), "999");
    }
}
