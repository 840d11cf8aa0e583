//! Where an archive comes from: a local path, or an `http(s)://` URL read with range
//! requests; and the options that only matter for remote archives.

use std::path::{Path, PathBuf};

use artifact_core::http::{HttpOptions, RemoteArchives, parse_header};
use artifact_core::{Archive, CentralDirectoryLocation, ReadStats, Source};

use crate::error::{CliError, Exit};

/// The HTTP read buffer of the command line's one stream (the engine's default, 64 KiB,
/// is for many streams at once): about 10% faster on a 1 GiB entry.
const READ_BUFFER_CLI: usize = 1 << 20;

/// An archive on any source.
pub(crate) type AnyArchive = Archive<Box<dyn Source>>;

/// Options for `http://` and `https://` archives.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct RemoteArgs {
    /// Add a request header, e.g. -H 'PRIVATE-TOKEN: glpat-...' (repeatable). Credentials
    /// are not sent on when a redirect leads to another origin.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Print the reads (requests) made and the bytes received to stderr, and say when the
    /// central directory was read by count because its declared size is wrong.
    #[arg(long)]
    stats: bool,
    /// Keep remote archives' indexes in DIR, so that the next run of the same archive
    /// makes one request; and (`cat` of a local archive) the checkpoints of deflated
    /// entries over 8 MiB, so that the next `cat` of one inflates it on all cores.
    #[arg(long, value_name = "DIR")]
    index_cache: Option<PathBuf>,
    /// If the server ignores Range, download the whole archive to a temporary file instead
    /// of failing.
    #[arg(long)]
    download_if_no_range: bool,
    /// Also trust the certificate authorities in FILE (PEM), e.g. a self-managed GitLab's
    /// internal one (repeatable). Forward proxies come from HTTPS_PROXY, HTTP_PROXY,
    /// ALL_PROXY and NO_PROXY, as curl reads them.
    #[arg(long, value_name = "FILE")]
    ca_cert: Vec<PathBuf>,
}

/// The certificates of `--ca-cert FILE...` (PEM): an unreadable file, or one without a
/// certificate, is a usage error.
pub(crate) fn read_roots(files: &[PathBuf]) -> Result<Vec<artifact_core::http::CertificateDer<'static>>, CliError> {
    let mut roots = Vec::new();
    for file in files {
        let unusable =
            |why: String| CliError::new(Exit::Usage, "usage", format_args!("--ca-cert {}: {why}", file.display()));
        let pem = std::fs::read(file).map_err(|e| unusable(e.to_string()))?;
        roots.extend(artifact_core::http::certificates_from_pem(&pem).map_err(|e| unusable(e.to_string()))?);
    }
    Ok(roots)
}

/// The URL, if the archive argument is one.
pub(crate) fn url_of(arg: &Path) -> Option<&str> {
    let text = arg.to_str()?;
    (text.starts_with("http://") || text.starts_with("https://")).then_some(text)
}

impl RemoteArgs {
    /// The remote-archive opener these options describe.
    pub(crate) fn remote(&self) -> Result<RemoteArchives, CliError> {
        let mut options = HttpOptions {
            spool_without_range: self.download_if_no_range,
            // One stream at a time, as fast as it comes: a large read buffer.
            read_buffer: READ_BUFFER_CLI,
            ..HttpOptions::default()
        };
        for line in &self.headers {
            let (name, value) = parse_header(line)
                .ok_or_else(|| CliError::new(Exit::Usage, "usage", format_args!("-H {line:?} is not 'Name: value'")))?;
            options.headers.append(name, value);
        }
        options.extra_roots = read_roots(&self.ca_cert)?;
        let remote = RemoteArchives::new(options).map_err(|e| CliError::engine("http", e))?;
        Ok(match &self.index_cache {
            Some(dir) => remote.with_disk_cache(dir),
            None => remote,
        })
    }

    /// `--index-cache DIR`, if given.
    pub(crate) fn index_cache(&self) -> Option<&Path> {
        self.index_cache.as_deref()
    }

    /// With `--stats`, says on stderr when the central directory was read by count because
    /// the end record's size was wrong.
    pub(crate) fn report_directory(&self, location: CentralDirectoryLocation) {
        if self.stats && location.size_was_wrong() {
            eprintln!("{}", crate::verify::size_note(location.declared_size, location.size));
        }
    }

    /// Prints `stats` to stderr when `--stats` was given.
    pub(crate) fn report(&self, stats: ReadStats) {
        if self.stats {
            eprintln!("artifact: stats: {} reads, {} bytes received", stats.reads, stats.bytes);
        }
    }
}

/// Opens the archive at `arg` (a path or a URL) with its central directory read.
pub(crate) fn open_archive(arg: &Path, remote: &RemoteArgs) -> Result<AnyArchive, CliError> {
    let shown = arg.display();
    match url_of(arg) {
        Some(url) => {
            let archive = remote.remote()?.open(url).map_err(|e| CliError::engine(url, e))?;
            let index = archive.index().map_err(|e| CliError::engine(url, e))?;
            let source: Box<dyn Source> = Box::new(archive.source().clone());
            Ok(Archive::with_index(source, index))
        }
        None => {
            let source = artifact_core::FileSource::open(arg).map_err(|e| CliError::engine(&shown, e.into()))?;
            let source: Box<dyn Source> = Box::new(source);
            Archive::open(source).map_err(|e| CliError::engine(&shown, e))
        }
    }
}
