//! `artifact`: read GitLab CI job artifacts archives at a terminal or in CI scripts.
//!
//! Each subcommand lives in its own module; this file holds the command-line grammar, the
//! dispatch, and the rule that every failure is one line on stderr and an exit code from
//! [`error::Exit`].
#![forbid(unsafe_code)]

mod cat;
mod demo;
mod error;
mod extract;
mod gitlab;
mod input;
mod job_ls;
mod listing;
mod ls;
mod metadata;
mod output;
mod server;
mod verify;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use artifact_core::Entry;
use clap::{Parser, Subcommand};

use crate::error::{CliError, Exit};

/// Read GitLab CI job artifacts archives: print one file, list, extract safely, verify, and
/// generate or browse GitLab's metadata.gz; talk to a GitLab's Jobs API; serve that API, or
/// a caching proxy in front of a GitLab.
#[derive(Debug, Parser)]
#[command(name = "artifact", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write one entry's bytes to stdout or to a file (checked against its CRC-32).
    Cat {
        /// The zip archive: a path, or an http(s) URL read with range requests.
        archive: PathBuf,
        /// The entry, exactly as named in the archive (e.g. dist/app.js).
        artifact_path: OsString,
        /// Write to FILE instead of stdout; FILE appears only once the entry checked out.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        remote: input::RemoteArgs,
    },
    /// List entries and implied directories, the way GitLab's artifacts browser sees them.
    Ls {
        /// The zip archive: a path, or an http(s) URL read with range requests.
        archive: PathBuf,
        /// The directory to list (default: the root).
        #[arg(default_value = "")]
        prefix: String,
        /// List everything under PREFIX, not just its direct children.
        #[arg(short, long)]
        recursive: bool,
        /// Show mode, size and modification time (UTC) too.
        #[arg(short, long, conflicts_with = "json")]
        long: bool,
        /// Print a JSON array of objects instead of lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: input::RemoteArgs,
    },
    /// Extract entries under DEST_DIR, never writing outside it.
    Extract {
        /// The zip archive: a path, or an http(s) URL read with range requests.
        archive: PathBuf,
        /// Where to write; created if missing.
        dest_dir: PathBuf,
        /// Extract only entries at or under these paths.
        prefixes: Vec<String>,
        /// Create symbolic links (only relative ones that stay inside DEST_DIR).
        #[arg(long)]
        symlinks: bool,
        #[command(flatten)]
        remote: input::RemoteArgs,
    },
    /// Read every entry once (size and CRC-32, inflating deflated ones) on all cores; say
    /// which are refused and why. Exit 0 if all verified, 5 if some were refused.
    Verify {
        /// The zip archive.
        archive: PathBuf,
        /// Threads to use (default: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Say on stderr when the central directory was read by count (its declared size
        /// was wrong).
        #[arg(long)]
        stats: bool,
    },
    /// Generate or read GitLab's artifacts metadata.gz.
    #[command(subcommand)]
    Metadata(MetadataCommand),
    /// Serve GitLab's Jobs API from a data directory (SQLite or PostgreSQL, local blobs or a
    /// bucket), or as a caching proxy in front of a GitLab (--upstream).
    Serve(server::ServeArgs),
    /// Users, tokens, projects and members of a data directory, and its garbage collection.
    Admin(server::AdminArgs),
    /// Import a job (with its artifacts and log) into a data directory.
    Import(Box<server::ImportArgs>),
    /// Jobs on a GitLab (or `artifact serve`): list, get, trace, cancel, retry, erase,
    /// keep, play, delete-artifacts.
    Job {
        #[command(subcommand)]
        command: gitlab::JobCommand,
        #[command(flatten)]
        gitlab: gitlab::GitlabArgs,
    },
    /// Download a job's artifacts archive (resumed if the transfer breaks).
    Download {
        #[command(flatten)]
        job: gitlab::JobSelect,
        /// Where to write (default: artifacts.zip).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        gitlab: gitlab::GitlabArgs,
    },
    /// Print (or save) one file of a job's artifacts.
    Get {
        /// The file's path in the archive (e.g. dist/app.js).
        artifact_path: String,
        #[command(flatten)]
        job: gitlab::JobSelect,
        /// Write to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Read the file out of the archive here (one central-directory read, then the
        /// entry by range) instead of asking the server to extract it.
        #[arg(long)]
        via_archive: bool,
        #[command(flatten)]
        gitlab: gitlab::GitlabArgs,
    },
    /// Print a job's log; with --follow, keep printing new output until the job finishes.
    Trace {
        /// The job id.
        job: u64,
        /// Keep polling for new output (by Range) until the job reaches a final status.
        #[arg(short, long)]
        follow: bool,
        /// Seconds between polls with --follow.
        #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = positive_seconds)]
        interval: f64,
        #[command(flatten)]
        gitlab: gitlab::GitlabArgs,
    },
}

#[derive(Debug, Subcommand)]
enum MetadataCommand {
    /// Write the metadata.gz GitLab would generate for ARCHIVE.
    Generate {
        /// The zip archive (a path, or an http:// or https:// URL read by range).
        archive: PathBuf,
        /// Write to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        remote: input::RemoteArgs,
    },
    /// List the paths in a metadata.gz.
    Ls {
        /// The metadata.gz file.
        metadata: PathBuf,
        /// The directory to list (default: the root).
        #[arg(default_value = "")]
        prefix: String,
        /// List everything under PREFIX, not just its direct children.
        #[arg(short, long)]
        recursive: bool,
        /// Print a JSON array of objects instead of lines.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return CliError::new(Exit::Usage, "usage", error::usage_line(&e)).report(),
    };
    // A bug must still end in one line and a status, and let temporary files clean up.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let why =
            payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        let _ = writeln!(std::io::stderr(), "artifact: internal error: {}", why.unwrap_or("a bug"));
    }));
    match std::panic::catch_unwind(move || run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => e.report(),
        Err(_) => ExitCode::from(Exit::Failure as u8),
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Cat { archive, artifact_path, output, remote } => {
            cat::run(&archive, artifact_path.as_encoded_bytes(), output.as_deref(), &remote)
        }
        Command::Ls { archive, prefix, recursive, long, json, remote } => {
            let format = listing::Format::from_flags(long, json);
            ls::run(&archive, &prefix, recursive, format, &remote)
        }
        Command::Extract { archive, dest_dir, prefixes, symlinks, remote } => {
            extract::run(&archive, &dest_dir, &prefixes, symlinks, &remote)
        }
        Command::Verify { archive, threads, stats } => verify::run(&archive, threads, stats),
        Command::Metadata(MetadataCommand::Generate { archive, output, remote }) => {
            metadata::generate(&archive, output.as_deref(), &remote)
        }
        Command::Metadata(MetadataCommand::Ls { metadata, prefix, recursive, json }) => {
            let format = listing::Format::from_flags(false, json);
            metadata::ls(&metadata, &prefix, recursive, format)
        }
        Command::Serve(args) => server::serve(args),
        Command::Admin(args) => server::admin(args),
        Command::Import(args) => server::import(*args),
        Command::Job { command, gitlab } => gitlab::job(&gitlab, command),
        Command::Download { job, output, gitlab } => gitlab::download(&gitlab, &job, output.as_deref()),
        Command::Get { artifact_path, job, output, via_archive, gitlab } => {
            gitlab::get(&gitlab, &job, &artifact_path, output.as_deref(), via_archive)
        }
        Command::Trace { job, follow, interval, gitlab } => {
            let interval = std::time::Duration::from_secs_f64(interval);
            gitlab::trace_command(&gitlab, job, follow, interval)
        }
    }
}

/// A finite number of seconds between 0.05 and an hour.
fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.05..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds between 0.05 and 3600")),
    }
}

/// Every entry of the central directory, in its order.
fn read_entries(path: &Path, archive: &input::AnyArchive) -> Result<Vec<Entry>, CliError> {
    archive.entries().collect::<Result<_, _>>().map_err(|e| CliError::engine(path.display(), e))
}
