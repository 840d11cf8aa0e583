//! Pull one file out of a GitLab CI job artifacts archive, reading only what it takes.
//!
//! A zip archive of many gigabytes and a hundred thousand entries, on a local disk or in
//! memory, is opened by reading its last bytes and its central directory once; an entry is
//! found by exact name and streamed (stored, or inflated as it goes) with its CRC-32 and size
//! checked before the stream reports its end. Paths are checked against the path rule first,
//! and hostile archives are errors, never panics or unbounded memory.
//!
//! ```no_run
//! use artifact_core::{Archive, ArtifactPath};
//!
//! let archive = Archive::open_file("artifacts.zip")?;
//! let entry = archive.find(&ArtifactPath::new("coverage/index.html")?)?;
//! std::io::copy(&mut archive.reader(&entry)?, &mut std::io::stdout())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`metadata`] reads and writes GitLab's `metadata.gz`; with the `tokio` feature,
//! [`stream_entry`] gives the async face; with the `http` feature, [`http`] reads archives
//! behind URLs by range (`http::RemoteArchives`: the index of each archive cached in memory
//! and optionally on disk, entries read blocking or on async I/O, every request made by one
//! client, `http::HttpClient`). [`DirectoryRead`] reads a central directory and
//! [`EntryDecoder`] one entry with no I/O inside, for bytes that come from anywhere: the
//! engine's blocking and async readers are drivers of these two.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `tokio` | yes | the async face: [`stream_entry`], [`stream_window`], [`EntryStream`], `AsyncRead` readers |
//! | `http` | no | [`http`]: remote archives by range (`RemoteArchives`, `HttpSource`, `HttpClient`: hyper's pooled client over rustls, blocking or async); with `tokio`, `AsyncEntry` and async index loads |
//! | `zlib-ng` | no | inflate with zlib-ng (C, needs cmake) instead of the pure-Rust zlib-rs: about 20% faster |
//!
//! ```toml
//! [dependencies]
//! artifact-core = { path = "/path/to/artifact/crates/core", features = ["http"] }
//! ```
//!
//! # Speed in debug builds
//!
//! Inflate and CRC-32 are about five times slower unoptimised. A program that reads large
//! entries in its debug builds (its tests, say) keeps them fast with this in its own
//! `Cargo.toml`:
//!
//! ```toml
//! [profile.dev.package.zlib-rs]
//! opt-level = 3
//! [profile.dev.package.crc32fast]
//! opt-level = 3
//! [profile.dev.package.artifact-core]
//! opt-level = 1
//! ```
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod archive;
#[cfg(feature = "tokio")]
mod async_io;
mod batch;
mod cache;
pub mod checkpoints;
mod directory;
mod entry;
mod error;
pub mod gzip;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod index;
pub mod metadata;
mod path;
mod ranges;
mod reader;
pub mod request;
mod resolve;
mod source;
mod verify;
mod zip;

pub use crate::archive::{Archive, open_entry};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use crate::async_io::{EntryStream, entry_async_reader, stream_entry, stream_reader, stream_window};
pub use crate::batch::{Batch, DEFAULT_MAX_GAP};
pub use crate::cache::{CacheCounts, DEFAULT_CACHE_BYTES, IndexCache, file_key};
pub use crate::directory::{CentralDirectory, DirectoryRead, DirectoryStep, Entries};
pub use crate::entry::Entry;
pub use crate::error::{
    CheckpointProblem, Corruption, Error, HttpProblem, MetadataProblem, Result, Unsupported, method_name,
};
pub use crate::index::{Damage, Index};
pub use crate::path::{ArtifactPath, InvalidPath, MAX_PATH_LEN, PathRule};
pub use crate::ranges::{MAX_RANGES, RangeRequest, parse_range};
pub use crate::reader::{CompressedReader, Decoded, EntryDecoder, EntryReader};
pub use crate::resolve::{JobRef, Resolve, Resolved};
pub use crate::source::{FileSource, MemorySource, RangeReader, ReadCounter, ReadStats, Source};
pub use crate::verify::{Refusal, Verification, VerifyOptions, verify, verify_entry, verify_with_checkpoints};
pub use crate::zip::eocd::{CentralDirectoryLocation, MAX_TAIL};

/// The README's Rust snippets, compiled (and run where they may) as doctests of this crate.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
