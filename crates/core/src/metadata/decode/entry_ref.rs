//! [`MetadataRef`]: an entry borrowed from the reader's buffer, its fields read where the
//! flat parser found them or from what `serde_json` made.
#![forbid(unsafe_code)]

use super::*;

/// An entry borrowed from a [`MetadataReader`]'s buffer ([`MetadataReader::next_ref`]).
#[derive(Debug)]
pub struct MetadataRef<'a> {
    /// The entry path; ends in `/` for a directory.
    pub path: &'a str,
    /// The reader's buffer (where the flat parser's strings lie).
    pub(super) buf: &'a Buffer,
    pub(super) fields: Fields<'a>,
}

/// Metadata as the flat parser read it, or as `serde_json` did (the reader's slots).
#[derive(Debug, Clone, Copy)]
pub(super) enum Fields<'a> {
    Flat(&'a Flat),
    Owned(&'a EntryMetadata),
}

impl<'a> MetadataRef<'a> {
    /// Modification time, Unix seconds.
    pub fn modified(&self) -> Option<i64> {
        match self.fields {
            Fields::Flat(f) => f.modified,
            Fields::Owned(m) => m.modified,
        }
    }

    /// Octal permission bits, like `"644"`.
    pub fn mode(&self) -> Option<&str> {
        match self.fields {
            Fields::Flat(f) => f.mode.as_ref().map(|s| self.buf.text(s)),
            Fields::Owned(m) => m.mode.as_deref(),
        }
    }

    /// CRC-32 of the content.
    pub fn crc(&self) -> Option<u32> {
        match self.fields {
            Fields::Flat(f) => f.crc,
            Fields::Owned(m) => m.crc,
        }
    }

    /// Uncompressed size.
    pub fn size(&self) -> Option<u64> {
        match self.fields {
            Fields::Flat(f) => f.size,
            Fields::Owned(m) => m.size,
        }
    }

    /// Compressed size.
    pub fn zipped(&self) -> Option<u64> {
        match self.fields {
            Fields::Flat(f) => f.zipped,
            Fields::Owned(m) => m.zipped,
        }
    }

    /// The entry's comment.
    pub fn comment(&self) -> Option<&str> {
        match self.fields {
            Fields::Flat(f) => f.comment.as_ref().map(|s| self.buf.text(s)),
            Fields::Owned(m) => m.comment.as_deref(),
        }
    }

    /// Whether the path names a directory.
    pub fn is_dir(&self) -> bool {
        self.path.is_empty() || self.path.ends_with('/')
    }

    /// The metadata, owned.
    pub fn to_metadata(&self) -> EntryMetadata {
        match self.fields {
            Fields::Flat(f) => f.to_owned(self.buf),
            Fields::Owned(m) => m.clone(),
        }
    }

    /// The path and the metadata, owned.
    pub fn to_entry(&self) -> MetadataEntry {
        MetadataEntry { path: self.path.to_owned(), metadata: self.to_metadata() }
    }
}
