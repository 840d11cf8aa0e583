//! A job's archive read remotely by the engine: the central directory once, then any entry
//! by range, straight from where GitLab stores the archive (the download redirect is
//! followed, and credentials stay behind when it leaves GitLab's origin).

use std::sync::Arc;

use artifact_core::http::{HttpOptions, HttpSource};
use artifact_core::{Archive, ArtifactPath, Entry, JobRef, Resolve, Resolved, Unsupported};
use futures_util::StreamExt;

use crate::client::{ByteStream, Client};
use crate::error::{Error, Result};

/// A remote archive with its central directory read.
#[derive(Debug, Clone)]
pub struct RemoteArchive {
    archive: Arc<Archive<HttpSource>>,
}

impl RemoteArchive {
    /// Every entry, in central directory order.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        Ok(self.archive.entries().collect::<Result<Vec<_>, _>>()?)
    }

    /// One entry's verified bytes, streamed.
    pub async fn read(&self, artifact_path: &str) -> Result<ByteStream> {
        let path = ArtifactPath::new(artifact_path).map_err(|e| Error::Engine(e.into()))?;
        let archive = self.archive.clone();
        let reader = tokio::task::spawn_blocking(move || {
            let entry = archive.find(&path)?;
            archive.reader(&entry)
        })
        .await
        .map_err(|e| Error::Invalid(format!("reader task: {e}")))??;
        Ok(Box::pin(
            artifact_core::stream_entry(reader).map(|r| r.map_err(|e| Error::Engine(artifact_core::Error::from_io(e)))),
        ))
    }

    /// Requests and bytes the remote reads cost so far.
    pub fn stats(&self) -> artifact_core::ReadStats {
        artifact_core::Source::stats(self.archive.source())
    }
}

impl Client {
    /// The engine's options for reading this client's URLs: its credentials (dropped on a
    /// redirect to another origin), timeouts and extra roots.
    pub fn http_options(&self) -> HttpOptions {
        HttpOptions {
            headers: self.transport.auth.headers(),
            connect_timeout: self.transport.connect_timeout,
            stall_timeout: self.transport.stall_timeout,
            extra_roots: self.transport.extra_roots.clone(),
            ..HttpOptions::default()
        }
    }

    /// Opens a job's archive remotely (`/jobs/:id/artifacts` or the ref + job download).
    pub async fn remote_archive(&self, project: &str, job: &JobRef) -> Result<RemoteArchive> {
        let url = self.job_ref_url(project, job, None)?;
        let options = self.http_options();
        let archive = tokio::task::spawn_blocking(move || -> Result<Archive<HttpSource>> {
            let source = HttpSource::open(url.as_str(), &options)?;
            Ok(Archive::open(source)?)
        })
        .await
        .map_err(|e| Error::Invalid(format!("reader task: {e}")))??;
        Ok(RemoteArchive { archive: Arc::new(archive) })
    }

    /// One file of a job's artifacts, read out of the archive by this client (one
    /// central-directory read, then the entry by range). When the archive's URL does not
    /// honour `Range`, it asks the server to extract the file instead.
    pub async fn artifact_via_archive(&self, project: &str, job: &JobRef, artifact_path: &str) -> Result<ByteStream> {
        match self.remote_archive(project, job).await {
            Ok(archive) => archive.read(artifact_path).await,
            Err(Error::Engine(artifact_core::Error::Unsupported(Unsupported::ServerIgnoresRange { .. }))) => {
                self.artifact(project, job, artifact_path).await
            }
            Err(e) => Err(e),
        }
    }
}

/// The engine's [`Resolve`] against a remote GitLab: a job reference becomes the URL the
/// archive downloads from (GitLab resolves refs itself, so no request is needed; the job id
/// of a ref is not known until then).
#[derive(Debug, Clone)]
pub struct RemoteResolver {
    client: Client,
}

impl RemoteResolver {
    /// Resolves through `client`.
    pub fn new(client: Client) -> RemoteResolver {
        RemoteResolver { client }
    }
}

impl Resolve for RemoteResolver {
    type Project = str;
    type Location = String;
    type Error = Error;

    fn resolve(&self, project: &str, job: &JobRef) -> Result<Option<Resolved<String>>> {
        let archive = self.client.job_ref_url(project, job, None)?.to_string();
        let job_id = match job {
            JobRef::Id(id) => Some(*id),
            JobRef::Latest { .. } => None,
        };
        Ok(Some(Resolved { job_id, archive: Some(archive), metadata: None }))
    }
}
