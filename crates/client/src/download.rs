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
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let what = path.display().to_string();

        let mut written: u64 = 0;
        let mut total: Option<u64> = None;
        let mut resume_with: Option<HeaderValue> = None;
        let mut resumes = 0;
        // The last break that made the transfer resume.
        let mut broke: Option<Error> = None;
        'transfer: loop {
            let mut headers = HeaderMap::new();
            if written > 0 {
                let range =
                    HeaderValue::from_str(&format!("bytes={written}-")).map_err(|e| Error::Invalid(e.to_string()))?;
                headers.insert(RANGE, range);
                if let Some(v) = &resume_with {
                    headers.insert(IF_RANGE, v.clone());
                }
            }
            let (status, head, mut body) = self.stream(url.clone(), &headers).await?;
            if written > 0 {
                // A 206 continues the file only if it is the same file: same validator. A
                // server or proxy that ignores If-Range must not splice two versions.
                let same = validator(&head).is_some() && validator(&head) == resume_with;
                match (status, content_range(&head)) {
                    (StatusCode::PARTIAL_CONTENT, Some((start, _, t)))
                        if same && start == written && (t.is_none() || t == total) => {}
                    (StatusCode::OK, _) | (StatusCode::PARTIAL_CONTENT, _) if status == StatusCode::OK || !same => {
                        if status == StatusCode::PARTIAL_CONTENT {
                            // Another version: ask again from the start.
                            out.flush().await.map_err(io(&temp.path))?;
                            out.get_mut().set_len(0).await.map_err(io(&temp.path))?;
                            out.get_mut().rewind_to_start().await.map_err(io(&temp.path))?;
                            written = 0;
                            total = None;
                            resume_with = None;
                            resumes += 1;
                            if resumes > MAX_RESUMES {
                                return Err(Error::KeptChanging { what });
                            }
                            continue 'transfer;
                        }
                        // The file changed (If-Range failed) or Range is not supported:
                        // start over rather than splice two versions together.
                        out.flush().await.map_err(io(&temp.path))?;
                        out.get_mut().set_len(0).await.map_err(io(&temp.path))?;
                        out.get_mut().rewind_to_start().await.map_err(io(&temp.path))?;
                        written = 0;
                        total = None;
                    }
                    _ => {
                        return Err(Error::BadResume { what, status, source: broke.take().map(Box::new) });
                    }
                }
            }
            if total.is_none() {
                total = match status {
                    StatusCode::PARTIAL_CONTENT => content_range(&head).and_then(|(_, _, t)| t),
                    _ => head.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()),
                };
            }
            resume_with = validator(&head);
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(bytes) => {
                        out.write_all(&bytes).await.map_err(io(&temp.path))?;
                        written += bytes.len() as u64;
                        if let Some(p) = progress {
                            p(written, total);
                        }
                    }
                    Err(e) if resumes < MAX_RESUMES && resume_with.is_some() && total.is_some_and(|t| written < t) => {
                        resumes += 1;
                        tokio::time::sleep(Duration::from_millis(100 << resumes.min(5))).await;
                        // Kept: if the resume is refused, this is why it was tried.
                        broke = Some(e);
                        continue 'transfer;
                    }
                    Err(e) => return Err(e),
                }
            }
            if let Some(t) = total
                && written < t
                && resumes < MAX_RESUMES
                && resume_with.is_some()
            {
                // The body ended early without an error: resume as for a broken one.
                resumes += 1;
                continue 'transfer;
            }
            break;
        }
        out.flush().await.map_err(io(&temp.path))?;
        if let Some(t) = total
            && t != written
        {
            return Err(Error::SizeMismatch { what, received: written, expected: t, from_job: false });
        }
        if let Some(e) = expected
            && e != written
        {
            return Err(Error::SizeMismatch { what, received: written, expected: e, from_job: true });
        }
        let file = out.into_inner();
        if self.sync_downloads {
            file.sync_all().await.map_err(io(&temp.path))?;
        }
        drop(file);
        tokio::fs::rename(&temp.path, path).await.map_err(io(path))?;
        let mut temp = temp;
        temp.keep = true;
        Ok(Downloaded { bytes: written, resumes })
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
