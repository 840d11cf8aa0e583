//! Downloads to a file: streamed (memory stays at about a megabyte), written under a
//! temporary name and renamed only when complete, sizes checked, and a broken transfer
//! resumed with `Range` + `If-Range` so that the bytes before the break are not fetched
//! again, and a changed file is never spliced onto an old one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use artifact_core::JobRef;
use futures_util::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, HeaderMap, HeaderValue, IF_RANGE, LAST_MODIFIED, RANGE};
use reqwest::{StatusCode, Url};
use tokio::io::AsyncWriteExt;

use crate::client::Client;
use crate::error::{Error, Result};

/// Broken transfers resumed at most, per download.
pub const MAX_RESUMES: u32 = 5;

/// What a download did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// Bytes in the file.
    pub bytes: u64,
    /// Times a broken transfer was resumed.
    pub resumes: u32,
}

/// Called with (bytes so far, total if known) as a download goes.
pub type Progress<'a> = &'a (dyn Fn(u64, Option<u64>) + Send + Sync);

/// Removes the temporary file unless the download completed.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.display().to_string(), source }
}

/// `bytes START-END/TOTAL` of a 206.
fn content_range(h: &HeaderMap) -> Option<(u64, u64, Option<u64>)> {
    let v = h.get(CONTENT_RANGE)?.to_str().ok()?.strip_prefix("bytes ")?;
    let (range, total) = v.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    Some((start.parse().ok()?, end.parse().ok()?, total.parse().ok()))
}

/// The validator to resume with: a strong ETag, else Last-Modified.
fn validator(h: &HeaderMap) -> Option<HeaderValue> {
    match h.get(ETAG) {
        Some(tag) if !tag.as_bytes().starts_with(b"W/") => Some(tag.clone()),
        _ => h.get(LAST_MODIFIED).cloned(),
    }
}

impl Client {
    /// Downloads a job's archive to `path`. For a job id, the size is also checked against
    /// the job's `artifacts_file.size`.
    pub async fn download_archive_to(
        &self,
        project: &str,
        job: &JobRef,
        path: &Path,
        progress: Option<Progress<'_>>,
    ) -> Result<Downloaded> {
        let expected = match job {
            // A job token or no token may download artifacts but not read the job: then the
            // size is checked against Content-Length only.
            JobRef::Id(id) => match self.job(project, *id).await {
                Ok(job) => job.artifacts_file.map(|f| f.size),
                Err(e) if matches!(e.status().map(|s| s.as_u16()), Some(401 | 403)) => None,
                Err(e) => return Err(e),
            },
            JobRef::Latest { .. } => None,
        };
        self.download(self.job_ref_url(project, job, None)?, path, expected, progress).await
    }

    /// Downloads one file of a job's archive (extracted by the server) to `path`.
    pub async fn download_artifact_to(
        &self,
        project: &str,
        job: &JobRef,
        artifact_path: &str,
        path: &Path,
        progress: Option<Progress<'_>>,
    ) -> Result<Downloaded> {
        self.download(self.job_ref_url(project, job, Some(artifact_path))?, path, None, progress).await
    }

    pub(crate) async fn download(
        &self,
        url: Url,
        path: &Path,
        expected: Option<u64>,
        progress: Option<Progress<'_>>,
    ) -> Result<Downloaded> {
        let mut t = Transfer::start(path).await?;
        loop {
            let (status, head, body) = self.stream(url.clone(), &t.resume_headers()?).await?;
            if !t.accept(status, &head).await? {
                continue;
            }
            if t.pump(body, progress).await? == Pumped::Complete {
                break;
            }
        }
        t.finish(path, expected, self.sync_downloads).await
    }
}

/// One download's state across its requests: the temporary file, what is in it, and what
/// a resume must match.
struct Transfer {
    temp: TempFile,
    out: tokio::io::BufWriter<tokio::fs::File>,
    what: String,
    written: u64,
    /// The size the server announced, once known.
    total: Option<u64>,
    /// The validator a resume sends in `If-Range` (and must get back).
    resume_with: Option<HeaderValue>,
    resumes: u32,
    /// The last break that made the transfer resume.
    broke: Option<Error>,
}

/// How a body ended.
#[derive(Debug, PartialEq, Eq)]
enum Pumped {
    /// Done: the size is checked at the finish.
    Complete,
    /// Broken or cut short with a validator to resume with: ask again.
    Resume,
}

impl Transfer {
    /// A temporary file beside `path`, removed unless the download completes.
    async fn start(path: &Path) -> Result<Transfer> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "download".into());
        let mut suffix = [0u8; 6];
        let _ = getrandom::fill(&mut suffix);
        let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let temp = TempFile { path: dir.join(format!(".{name}.{suffix}.part")), keep: false };
        let file = tokio::fs::File::create(&temp.path).await.map_err(io(&temp.path))?;
        Ok(Transfer {
            out: tokio::io::BufWriter::with_capacity(1 << 20, file),
            temp,
            what: path.display().to_string(),
            written: 0,
            total: None,
            resume_with: None,
            resumes: 0,
            broke: None,
        })
    }

    /// `Range` (and `If-Range`) to continue after what is written; none at the start.
    fn resume_headers(&self) -> Result<HeaderMap> {
        let mut headers = HeaderMap::new();
        if self.written > 0 {
            let range = HeaderValue::from_str(&format!("bytes={}-", self.written))
                .map_err(|e| Error::Invalid(e.to_string()))?;
            headers.insert(RANGE, range);
            if let Some(v) = &self.resume_with {
                headers.insert(IF_RANGE, v.clone());
            }
        }
        Ok(headers)
    }

    /// Takes a response's head: a resume continues the file only with a 206 of the same
    /// version from where it stopped; a 200 (the file changed, or `Range` is ignored) starts
    /// over; a 206 of another version starts over with a fresh request (`false`: drop this
    /// body and ask again).
    async fn accept(&mut self, status: StatusCode, head: &HeaderMap) -> Result<bool> {
        if self.written > 0 {
            // A server or proxy that ignores If-Range must not splice two versions.
            let same = validator(head).is_some() && validator(head) == self.resume_with;
            match (status, content_range(head)) {
                (StatusCode::PARTIAL_CONTENT, Some((start, _, t)))
                    if same && start == self.written && (t.is_none() || t == self.total) => {}
                (StatusCode::OK, _) => self.truncate().await?,
                (StatusCode::PARTIAL_CONTENT, _) if !same => {
                    // Another version: the rest of this body is of no use. Ask again.
                    self.truncate().await?;
                    self.resume_with = None;
                    self.resumes += 1;
                    if self.resumes > MAX_RESUMES {
                        return Err(Error::KeptChanging { what: self.what.clone() });
                    }
                    return Ok(false);
                }
                _ => {
                    let (what, source) = (self.what.clone(), self.broke.take().map(Box::new));
                    return Err(Error::BadResume { what, status, source });
                }
            }
        }
        if self.total.is_none() {
            self.total = match status {
                StatusCode::PARTIAL_CONTENT => content_range(head).and_then(|(_, _, t)| t),
                _ => head.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()),
            };
        }
        self.resume_with = validator(head);
        Ok(true)
    }

    /// Starts the file over.
    async fn truncate(&mut self) -> Result<()> {
        let path = &self.temp.path;
        self.out.flush().await.map_err(io(path))?;
        self.out.get_mut().set_len(0).await.map_err(io(path))?;
        self.out.get_mut().rewind_to_start().await.map_err(io(path))?;
        self.written = 0;
        self.total = None;
        Ok(())
    }

    /// Writes the body out; a break (or an early end) with a validator to resume with, and
    /// resumes left, is [`Pumped::Resume`].
    async fn pump(&mut self, mut body: crate::ByteStream, progress: Option<Progress<'_>>) -> Result<Pumped> {
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => {
                    self.out.write_all(&bytes).await.map_err(io(&self.temp.path))?;
                    self.written += bytes.len() as u64;
                    if let Some(p) = progress {
                        p(self.written, self.total);
                    }
                }
                Err(e) if self.may_resume() => {
                    self.resumes += 1;
                    tokio::time::sleep(Duration::from_millis(100 << self.resumes.min(5))).await;
                    // Kept: if the resume is refused, this is why it was tried.
                    self.broke = Some(e);
                    return Ok(Pumped::Resume);
                }
                Err(e) => return Err(e),
            }
        }
        if self.may_resume() {
            // The body ended early without an error: resume as for a broken one.
            self.resumes += 1;
            let (what, received, expected) = (self.what.clone(), self.written, self.total.unwrap_or(0));
            self.broke = Some(Error::SizeMismatch { what, received, expected, from_job: false });
            return Ok(Pumped::Resume);
        }
        Ok(Pumped::Complete)
    }

    /// Whether a short transfer can be resumed: resumes left, a validator, bytes missing.
    fn may_resume(&self) -> bool {
        self.resumes < MAX_RESUMES && self.resume_with.is_some() && self.total.is_some_and(|t| self.written < t)
    }

    /// Checks the size against the announced one and the job's, syncs if asked, and
    /// renames the file into place.
    async fn finish(mut self, path: &Path, expected: Option<u64>, sync: bool) -> Result<Downloaded> {
        self.out.flush().await.map_err(io(&self.temp.path))?;
        let (what, written) = (self.what.clone(), self.written);
        if let Some(t) = self.total.filter(|&t| t != written) {
            return Err(Error::SizeMismatch { what, received: written, expected: t, from_job: false });
        }
        if let Some(e) = expected.filter(|&e| e != written) {
            return Err(Error::SizeMismatch { what, received: written, expected: e, from_job: true });
        }
        let file = self.out.into_inner();
        if sync {
            file.sync_all().await.map_err(io(&self.temp.path))?;
        }
        drop(file);
        tokio::fs::rename(&self.temp.path, path).await.map_err(io(path))?;
        self.temp.keep = true;
        Ok(Downloaded { bytes: written, resumes: self.resumes })
    }
}

trait Rewind {
    async fn rewind_to_start(&mut self) -> std::io::Result<()>;
}

impl Rewind for tokio::fs::File {
    async fn rewind_to_start(&mut self) -> std::io::Result<()> {
        use tokio::io::AsyncSeekExt;
        self.seek(std::io::SeekFrom::Start(0)).await.map(drop)
    }
}
