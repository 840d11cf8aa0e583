//! A small GitLab Jobs API client that streams, retries safely and reads artifact archives
//! remotely.
//!
//! - All 15 Jobs API operations as async methods; lists are `Stream`s that follow
//!   `Link rel="next"`.
//! - Archives, single files and logs are byte streams; `download_*_to` writes a file under a
//!   temporary name, checks its size and resumes a broken transfer with `Range` + `If-Range`.
//! - Only GET, HEAD and DELETE are retried ([`RetryPolicy`]); tokens never follow a
//!   redirect to another origin.
//! - [`Client::remote_archive`] reads a job's archive with the engine: the central
//!   directory once, then any entry by range.
//!
//! ```no_run
//! # async fn run() -> Result<(), artifact_client::Error> {
//! use artifact_client::{Client, JobRef};
//! use futures_util::StreamExt;
//!
//! let gitlab = Client::builder("https://gitlab.example.com").private_token("glpat-...").build()?;
//! let job = gitlab.job("group/app", 42).await?;
//! let mut file = gitlab.artifact("group/app", &JobRef::Id(job.id), "dist/app.js").await?;
//! while let Some(chunk) = file.next().await {
//!     let _bytes = chunk?;
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod client;
mod download;
mod error;
mod models;
mod pages;
mod remote;
mod retry;
mod transport;
mod tree;

pub use artifact_core::{JobRef, Resolve, Resolved};

pub use crate::client::{ByteStream, Client, ClientBuilder, JSON_MAX, JobFilter};
pub use crate::download::{Downloaded, MAX_RESUMES, Progress};
pub use crate::error::{Error, Result};
pub use crate::models::{
    Artifact, ArtifactsFile, Bridge, Commit, Job, JobStatus, PipelineBasic, Project, TreeEntry, TreeKind, User, Version,
};
pub use crate::pages::Page;
pub use crate::remote::{RemoteArchive, RemoteResolver};
pub use crate::retry::{RetryPolicy, retry_after};
pub use crate::transport::Auth;
pub use crate::tree::TreeFilter;
