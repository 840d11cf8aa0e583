//! The blobs of a GitLab-compatible artifacts server: artifacts archives, GitLab's
//! `metadata.gz` files, job logs and the inflate checkpoints beside an archive, each under
//! a key (`<kind>/<32 hex digits>`). An archive, its metadata and a log are immutable: a put
//! writes a whole new blob under a fresh key (a temporary file synced and renamed on disk;
//! one `PUT` or a completed multipart upload in a bucket), so a reader never sees half a
//! blob, a crash loses nothing committed, and a key is an archive's identity for index
//! caches and entity tags; only the blobs kept beside an archive are replaced, whole. An
//! opened blob is an `artifact_core` byte [`Source`](artifact_core::Source), read by
//! ranges. [`Blobs`] is the trait; [`LocalBlobs`] (a folder, the embedded default) and
//! `S3Blobs` (feature `s3`, on by default: an S3-compatible bucket for many replicas)
//! implement it.
//!
//! The feature `conformance` adds `conformance::run`: the contract of [`Blobs`] as checks
//! that any layer must pass, which this crate's own tests run on both layers.
//!
//! This crate depends on the engine (`artifact-core`, for sources) and the records (for
//! [`BlobRef`](artifact_records::BlobRef)) only, never on the server or a database.

#![deny(missing_docs)]

mod blobs;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "s3")]
mod shared_cache;

pub use crate::blobs::{BlobFuture, BlobKind, Blobs, Listed, LocalBlobs, OpenBlob, beside, new_key, parse_key};
#[cfg(feature = "s3")]
pub use crate::s3::S3Blobs;
#[cfg(feature = "s3")]
pub use crate::shared_cache::ObjectStoreCache;
