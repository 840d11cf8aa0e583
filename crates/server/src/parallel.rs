//! When a large deflated entry may be inflated on several cores: only while no other such
//! stream does, and only on a machine with more than one core. A server under load from
//! many downloads inflates each on one core (the total work is the same either way, and
//! threads per stream would multiply); a single download on an otherwise quiet server gets
//! every core.

use std::io::{self, Read};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Streams inflating on several cores now (0 or 1).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The right to inflate one stream on several cores, until dropped.
#[derive(Debug)]
pub(crate) struct Slot(());

impl Slot {
    /// The slot, if no other stream holds it and there is more than one core.
    pub(crate) fn take() -> Option<Slot> {
        if cores() < 2 {
            return None;
        }
        ACTIVE.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire).ok().map(|_| Slot(()))
    }

    /// Threads for the stream: one per core.
    pub(crate) fn threads(&self) -> usize {
        cores()
    }

    /// `reader`, holding the slot until it is dropped.
    pub(crate) fn hold<R: Read>(self, reader: R) -> Held<R> {
        Held { reader, _slot: self }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        ACTIVE.store(0, Ordering::Release);
    }
}

/// A reader holding the slot.
#[derive(Debug)]
pub(crate) struct Held<R> {
    reader: R,
    _slot: Slot,
}

impl<R: Read> Read for Held<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}
