//! The command line's one error type: a one-line message and the exit code it ends with.

use std::fmt::Display;
use std::io::{self, Write};
use std::process::ExitCode;

use artifact_core::Error;

/// The exit codes scripts may rely on (the contract in docs/cli.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Anything not covered below: I/O on the output side, permissions, internal errors.
    Failure = 1,
    /// Bad command-line usage (clap's own code).
    Usage = 2,
    /// An artifact path that breaks the path rule.
    InvalidPath = 3,
    /// The archive, an entry or a directory does not exist.
    NotFound = 4,
    /// A corrupt archive, a CRC or size mismatch, an unsupported method or encryption.
    Corrupt = 5,
}

/// Why a command failed: `artifact: <what>: <why>` on stderr, then `code`.
///
/// A `message` of `None` ends quietly (a closed stdout pipe is not worth a word).
#[derive(Debug)]
pub(crate) struct CliError {
    code: Exit,
    message: Option<String>,
}

impl CliError {
    /// A failure about `what` (a path, an entry name), because of `why`.
    pub(crate) fn new(code: Exit, what: impl Display, why: impl Display) -> CliError {
        CliError { code, message: Some(format!("{what}: {why}")) }
    }

    /// An engine error about `what`, with the exit code its variant calls for.
    pub(crate) fn engine(what: impl Display, err: Error) -> CliError {
        let code = match &err {
            Error::InvalidPath(_) => Exit::InvalidPath,
            Error::NotFound { .. } | Error::ArchiveNotFound { .. } => Exit::NotFound,
            Error::Corrupt(_) | Error::Unsupported(_) => Exit::Corrupt,
            // Only opening a file reports NotFound through Io: the archive is missing.
            Error::Io(e) if e.kind() == io::ErrorKind::NotFound => Exit::NotFound,
            _ => Exit::Failure,
        };
        CliError::new(code, what, err)
    }

    /// Ends with `code` and no message (the command already said why).
    pub(crate) fn quiet(code: Exit) -> CliError {
        CliError { code, message: None }
    }

    /// A failure to write `what` (an output file, a directory, stdout). A closed pipe ends
    /// quietly with status 1: the reader had what it wanted.
    pub(crate) fn output(what: impl Display, err: io::Error) -> CliError {
        if err.kind() == io::ErrorKind::BrokenPipe {
            return CliError { code: Exit::Failure, message: None };
        }
        CliError::new(Exit::Failure, what, err)
    }

    /// A failure to read a local input file (not an archive): missing is `NotFound`.
    pub(crate) fn input(what: impl Display, err: io::Error) -> CliError {
        let code = if err.kind() == io::ErrorKind::NotFound { Exit::NotFound } else { Exit::Failure };
        CliError::new(code, what, err)
    }

    /// Writes the one line to stderr (if there is one) and returns the exit code.
    pub(crate) fn report(self) -> ExitCode {
        if let Some(message) = &self.message {
            // Nothing sensible is left to do if stderr is gone too.
            let _ = writeln!(io::stderr().lock(), "artifact: {message}");
        }
        ExitCode::from(self.code as u8)
    }
}

/// The usage error clap found, folded into one line.
///
/// clap prints several lines (the error, tips, a usage block); scripts get one line here,
/// like every other failure, and `--help` still has the full story.
pub(crate) fn usage_line(err: &clap::Error) -> String {
    if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        return "a subcommand is required (see 'artifact --help')".to_owned();
    }
    let text = err.render().to_string();
    let mut joined = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.push_str(if joined.ends_with(':') { " " } else { "; " });
        }
        joined.push_str(line.strip_prefix("error: ").unwrap_or(line));
    }
    format!("{joined} (see 'artifact --help')")
}
