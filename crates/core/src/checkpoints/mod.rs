//! Random access into large deflated entries: checkpoints.
//!
//! Deflate has no random access: byte `n` of an entry depends on everything before it. A
//! checkpoint is what an inflater needs to start in the middle: the position in the
//! compressed stream where a deflate block starts (a byte offset and how many bits of the
//! byte before it are still unread), and the 32 KiB of output before that point (the window
//! the next blocks may copy from). [`EntryCheckpoints::build`] inflates an entry once, block
//! by block, records a checkpoint every `spacing` bytes of output, and checks the entry's
//! size and CRC-32 as it goes (so building them is verifying the entry).
//! [`EntryCheckpoints::reader_at`] then starts inflating at the checkpoint nearest below
//! the offset asked for: reading the last MiB of a 1 GiB entry inflates at most
//! `spacing` + 1 MiB, not the whole entry.
//!
//! Windows are kept deflated (text windows shrink several times), so an index stays well
//! under 1% of its entry. [`Checkpoints`] holds the indexes of an archive's entries; its
//! encoding ends in a CRC-32 of everything before it, so a damaged index is detected and
//! ignored (the caller inflates from the start), never followed.
//!
//! This is the technique of zlib's own example `examples/zran.c` (Mark Adler's random access
//! into a deflate stream), in the module's parts: `raw` (the inflater, the only `unsafe`),
//! `reader` (building: [`CheckpointingReader`] records checkpoints while it verifies),
//! `index` (one entry's checkpoints and where a read starts), `inflate` (inflating from a
//! checkpoint), `parallel` ([`ParallelReader`]: segments between checkpoints inflated on
//! several threads), `record` (checkpoints recorded by the entry decoder's own pass, for
//! [`EntryDecoder::keep_checkpoints`](crate::EntryDecoder::keep_checkpoints)) and `encoding` (how indexes are kept).
//!
//! Inflating from the middle of a byte needs two calls stock inflate APIs lack (`Z_BLOCK`
//! with its `data_type` report, and `inflatePrime`): they come from zlib-rs's zlib-compatible
//! interface (`libz-rs-sys`, pure Rust), wrapped here in `RawInflate`, the one place in
//! this crate that calls it.

mod encoding;
mod index;
mod inflate;
mod parallel;
mod raw;
mod reader;
mod record;

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};

use crate::entry::Entry;
use crate::error::{CheckpointProblem, Corruption, Error, Result};
use crate::source::Source;

pub use self::encoding::Checkpoints;
use self::encoding::{pack, unpack};
pub use self::index::{Checkpoint, EntryCheckpoints};
use self::inflate::Inflating;
#[cfg(all(feature = "http", feature = "tokio"))]
pub(crate) use self::inflate::Resume;
pub use self::parallel::{Gate, InflatePool, InflateWork, KEEPING_UP, ParallelReader, SharedThreads};
use self::raw::RawInflate;
pub use self::reader::CheckpointingReader;
pub(crate) use self::record::Recorder;

/// Entries larger than this (uncompressed) get checkpoints at import.
pub const MIN_ENTRY: u64 = 8 << 20;
/// Output between two checkpoints, by default.
pub const DEFAULT_SPACING: u64 = 4 << 20;
/// The deflate window: how far back a block may copy from.
const WINDOW: usize = 32 * 1024;
/// Compressed input read at a time.
const INPUT_CHUNK: usize = 64 * 1024;
/// Output inflated at a time while building checkpoints.
const RING: usize = 256 * 1024;

/// The entry's name as checkpoint errors carry it.
fn name_of(entry: &Entry) -> String {
    entry.display_name().into_owned()
}
