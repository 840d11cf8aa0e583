//! Test and fuzz support for the artifact workspace, kept out of the libraries' public API
//! (`publish = false`):
//!
//! - [`fuzz`]: the properties the fuzz targets check, as plain functions over bytes, which
//!   `crates/core/tests/fuzz_corpus.rs` also replays over every committed input;
//! - [`ChunkedSource`]: a source whose reads come back a few bytes at a time, to prove that
//!   parsing does not depend on read sizes;
//! - `range_server` (feature `range-server`): an in-process HTTP/1.1 server with byte ranges
//!   that misbehaves on request, and `cable`, a TCP link that can be cut and restored;
//! - `fronts` (feature `fronts`): TLS with a test authority of its own, and an HTTP
//!   forward proxy, in front of a server on loopback;
//! - `postgres` (feature `postgres-server`): a real PostgreSQL server in a temporary
//!   directory, stopped when the test process ends;
//! - `s3` (feature `s3-server`): a real S3-compatible server (moto), the same way;
//! - `store` (feature `store`): a store double that forwards every call to a real store
//!   except the ones a test makes fail, panic or run on a thread of its own;
//! - [`crates`]: which packages a crate reaches built by itself (`cargo tree`), for the
//!   tests that hold each crate to its rule of dependencies.
#![deny(missing_docs)]

#[cfg(feature = "range-server")]
pub mod cable;
mod chunked;
pub mod crates;
#[cfg(feature = "fronts")]
pub mod fronts;
pub mod fuzz;
#[cfg(feature = "postgres-server")]
pub mod postgres;
#[cfg(feature = "range-server")]
pub mod range_server;
#[cfg(feature = "s3-server")]
pub mod s3;
#[cfg(feature = "store")]
pub mod store;

pub use crate::chunked::ChunkedSource;
