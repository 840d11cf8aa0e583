//! When a large deflated entry may be inflated on several cores: only for a client that
//! keeps up (it read the first segment fast: `EntryCheckpoints::parallel_reader_when`),
//! only while no other stream does, and only on a machine with more than one core. A server
//! under load from many downloads inflates each on one core (the total work is the same
//! either way, and threads per stream would multiply); a slow client never gets threads or
//! segment buffers; a single fast download on an otherwise quiet server gets every core.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use artifact_core::checkpoints::Gate;

/// Streams inflating on several cores now (0 or 1).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Threads for a stream that goes parallel: one per core.
pub(crate) fn threads() -> usize {
    cores()
}

/// Whether a stream starting now could go parallel (the slot is free on a machine with more
/// than one core); streams that could not read the usual way.
pub(crate) fn available() -> bool {
    cores() > 1 && ACTIVE.load(Ordering::Acquire) == 0
}

/// The gate a parallel reader asks once its client proved to keep up: the slot, if no
/// other stream holds it and there is more than one core.
pub(crate) fn gate() -> Gate {
    Box::new(|| Slot::take().map(|slot| Box::new(slot) as Box<dyn Send>))
}

/// The right to inflate one stream on several cores, until dropped.
#[derive(Debug)]
struct Slot(());

impl Slot {
    fn take() -> Option<Slot> {
        if cores() < 2 {
            return None;
        }
        ACTIVE.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire).ok().map(|_| Slot(()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        ACTIVE.store(0, Ordering::Release);
    }
}
