//! GitLab's artifacts `metadata.gz`: decode it as a stream, and generate it from a central
//! directory exactly as GitLab Workhorse does.
//!
//! The format (`docs/metadata-format.md`): one gzip stream of strings, each a
//! big-endian `u32` length and that many bytes: a version header, an errors field (`{}`),
//! then pairs of entry path and JSON metadata ending in `\n`.

mod decode;
mod generate;
mod gopath;

pub use decode::{EntryMetadata, Limits, MetadataEntry, MetadataReader, MetadataRef, is_child_of, is_under};
pub use generate::{HEADER, Tree, generate, tree};
