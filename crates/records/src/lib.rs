//! The records of a GitLab-compatible artifacts server: users and their personal access
//! tokens, projects and their members, pipelines and jobs (with the keys of their blobs),
//! browser sessions and grants of the pages, and the leases and verification outcomes of
//! imports. [`Store`] is what every backend implements: four synchronous traits by concern
//! ([`Identities`], [`Jobs`], [`Imports`], [`Sessions`]), so that a request makes one trip
//! to a blocking pool for all its queries and every write that must stay consistent is one
//! method (one transaction); the queries are written once for both databases; `SqliteStore` (feature `sqlite`, the
//! embedded default: one file in WAL mode) and `PostgresStore` (feature `postgres`: many
//! replicas over a pool, changes announced by `NOTIFY`; connections without TLS) are the two
//! backends. Both features are on by default; a crate that needs only the types (as
//! `artifact-blobs`) turns them off. The types are
//! named as GitLab names them; rendering them as GitLab's JSON is the server's business.
//!
//! The feature `conformance` adds `conformance::run` (and `conformance::announcements`, with
//! a second handle, for a backend that tells others of changes): the contract of
//! [`Store`] as checks that any backend must pass, which this crate's own tests run on both.
//!
//! This crate depends on no HTTP stack, no blob storage and nothing of the server, the
//! client or the engine: they build on it, never the other way (a test in `tests/` checks
//! this against `cargo tree`).

#![deny(missing_docs)]

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod ids;
pub mod model;
pub mod store;
pub mod time;

pub use crate::model::{
    BlobRef, Job, JobKind, PersonalToken, Pipeline, Project, Role, Scope, Status, User, When, composite_status,
};
#[cfg(feature = "postgres")]
pub use crate::store::PostgresStore;
#[cfg(feature = "sqlite")]
pub use crate::store::SqliteStore;
pub use crate::store::{
    BrowserSession, ChangeHook, Identities, Imports, JobQuery, Jobs, Keep, Listing, NewPipeline, PageGrant, ProjectRef,
    Sessions, Store, StoreError, StoreResult, TokenDigest,
};
pub use crate::time::{Timestamp, parse_duration};
