//! Reading many entries of one archive with few ranges: entries close together (gaps up to
//! a bound) share one range, so extracting a remote archive costs one request per run of
//! nearby entries instead of one per entry.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use crate::archive::Archive;
use crate::entry::Entry;
use crate::error::Result;
use crate::reader::{EntryReader, span_of};
use crate::source::{RangeReader, Source};

/// The gap up to which two entries share a range: 1 MiB.
pub const DEFAULT_MAX_GAP: u64 = 1 << 20;

/// Bytes of a shared range read at once.
const RUN_BUFFER: usize = 256 * 1024;

/// Readers for a planned sequence of entries (see [`Archive::batch`]).
#[derive(Debug)]
pub struct Batch<'a, S> {
    archive: &'a Archive<S>,
    /// Header offset of each planned entry: its run and the end of its window.
    plan: HashMap<u64, Slot>,
    runs: Vec<(u64, u64)>,
    current: Option<(usize, Arc<Mutex<Shared>>)>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    run: usize,
    window_end: u64,
}

struct Shared {
    reader: RangeReader,
    pos: u64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("pos", &self.pos).finish()
    }
}

impl<S: Source> Archive<S> {
    /// Plans to read `entries` in this order; nearby ones (no more than `max_gap` bytes
    /// apart, in ascending offsets) share one range of the source. Ask the returned batch for
    /// each reader in the same order and drain each before the next; an entry asked for out
    /// of order, or not planned, gets a range of its own.
    pub fn batch<'e>(&self, entries: impl IntoIterator<Item = &'e Entry>, max_gap: u64) -> Batch<'_, S> {
        let limit = self.central_directory().location().offset;
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut members: Vec<(u64, usize)> = Vec::new();
        for entry in entries {
            let start = entry.header_offset;
            if start >= limit {
                continue; // not in the data region: its own reader reports it
            }
            let end = start.saturating_add(span_of(entry)).min(limit);
            let ascending = members.last().is_none_or(|&(previous, _)| start > previous);
            match runs.last_mut() {
                Some((_, run_end)) if ascending && start <= run_end.saturating_add(max_gap) => {
                    *run_end = (*run_end).max(end);
                }
                _ => runs.push((start, end)),
            }
            members.push((start, runs.len() - 1));
        }
        let mut plan = HashMap::with_capacity(members.len());
        for (i, &(start, run)) in members.iter().enumerate() {
            let next = members.get(i + 1).filter(|(_, r)| *r == run).map(|(s, _)| *s);
            let window_end = next.filter(|&n| n > start).unwrap_or(runs[run].1);
            plan.insert(start, Slot { run, window_end });
        }
        Batch { archive: self, plan, runs, current: None }
    }
}

impl<S: Source> Batch<'_, S> {
    /// The number of ranges the plan reads.
    pub fn ranges(&self) -> usize {
        self.runs.len()
    }

    /// A reader for `entry`.
    pub fn reader(&mut self, entry: &Entry) -> Result<EntryReader> {
        let start = entry.header_offset;
        let Some(slot) = self.plan.get(&start).copied() else {
            return self.archive.reader(entry);
        };
        let shared = match &self.current {
            Some((run, shared)) if *run == slot.run => shared.clone(),
            _ => {
                let (run_start, run_end) = self.runs[slot.run];
                let reader = self.archive.source().read_stream(run_start, run_end - run_start)?;
                // Many small entries share a run: read it in large pieces, not one read
                // (one system call, for a file) per entry.
                let len = (run_end - run_start).min(RUN_BUFFER as u64) as usize;
                let reader: RangeReader = Box::new(io::BufReader::with_capacity(len, reader));
                let shared = Arc::new(Mutex::new(Shared { reader, pos: run_start }));
                self.current = Some((slot.run, shared.clone()));
                shared
            }
        };
        let behind = shared.lock().map_or(true, |s| s.pos > start);
        if behind || slot.window_end <= start {
            return self.archive.reader(entry);
        }
        let window = Window { shared, start, end: slot.window_end, started: false };
        let limit = self.archive.central_directory().location().offset;
        EntryReader::with_stream(self.archive.source(), entry.clone(), limit, Box::new(window), slot.window_end - start)
    }
}

/// One entry's part of a shared range: skips to its start, stops at its end.
struct Window {
    shared: Arc<Mutex<Shared>>,
    start: u64,
    end: u64,
    started: bool,
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut shared = self.shared.lock().map_err(|_| io::Error::other("a shared range failed earlier"))?;
        if !self.started {
            if shared.pos > self.start {
                return Err(io::Error::other("entries of a batch were read out of order"));
            }
            let skip = self.start - shared.pos;
            let skipped = io::copy(&mut (&mut shared.reader).take(skip), &mut io::sink())?;
            shared.pos += skipped;
            if skipped < skip {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.started = true;
        }
        if shared.pos < self.start || shared.pos >= self.end {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.end - shared.pos) as usize;
        let n = shared.reader.read(&mut buf[..want])?;
        shared.pos += n as u64;
        Ok(n)
    }
}
