//! A GitLab-compatible Jobs API server for CI job artifacts.
//!
//! The router ([`app`]) serves GitLab's 15 Jobs API operations under `/api/v4`, plus the
//! calls clients make first (`/version`, `/user`, `/job`, `/projects/:id`). Below it sit a
//! [`Store`] (SQLite by default; the records and their stores are the `artifact-records`
//! crate, re-exported here) and [`Blobs`] (local disk by default); single entries are
//! served by `artifact-core`, which reads only the central directory and the entry, with
//! one shared index cache.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let data = artifact_server::DataDir::open("./artifact-data".as_ref())?;
//! let router = artifact_server::app(data.state(Default::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! artifact_server::serve(listener, router, std::future::pending()).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod admin;
// GitLab's HTTP surface, shared with the proxy: under the names the modules had here.
use artifact_gitlab::{delivery, hot, query};
mod auth;
mod data;
mod entities;
mod error;
mod keep;
mod lookups;
mod metered;
mod metrics;
mod parallel;
mod proxy;
mod resolve;
mod routes;
mod serve;
mod sessions;
mod site;
mod state;
mod verdicts;

// The records, from their own crate, under the paths the server's modules name them by.
use artifact_blobs as blobs;
use artifact_records::{ids, model, store, time};

pub use crate::admin::{Admin, Collected, ImportJob, Imported, LEASE_RENEWAL, MIN_GC_GRACE, TokenRef};
pub use crate::blobs::{BlobKind, Blobs, Listed, LocalBlobs, OpenBlob, S3Blobs, beside, new_key};
pub use crate::data::DataDir;
pub use crate::error::Error;
pub use crate::model::{
    BlobRef, Job, JobKind, PersonalToken, Pipeline, Project, Role, Scope, Status, User, When, composite_status,
};
pub use crate::proxy::{ObjectStoreCache, ProxyConfig, proxy_app, proxy_routers};
pub use crate::resolve::StoreResolver;
pub use crate::routes::{GITLAB_VERSION, app, app_routers};
pub use crate::serve::{DEFAULT_MAX_CONNECTIONS, ServeOptions, serve, serve_with};
pub use crate::site::check_artifacts_origin;
pub use crate::state::{AppConfig, AppState};
pub use crate::store::{
    BrowserSession, ChangeHook, Identities, Imports, JobQuery, Jobs, Keep, Listing, NewPipeline, PageGrant,
    PostgresStore, ProjectRef, Sessions, SqliteStore, Store, StoreError, StoreResult, TokenDigest,
};
pub use crate::time::{Timestamp, parse_duration};
pub use artifact_core::{MAX_RANGES, RangeRequest, parse_range};
/// The router type [`app`], [`app_routers`] and [`proxy_routers`] return, and [`serve`] takes.
pub use axum::Router;
pub use hot::DEFAULT_ENTRY_CACHE_BYTES;
