//! The proxy's metrics, in Prometheus' text format (`--metrics-listen`): upstream requests
//! by kind and status, range reads and bytes read upstream, grants remembered and asked
//! for, ranges of verified entries read as windows, bodies streaming, the time to each answer's head, and the disk cache's files, bytes
//! and evictions.

use std::sync::atomic::Ordering;
use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels: pairs of name and value.
type Labels = Vec<(&'static str, String)>;

/// Every metric the proxy keeps.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Requests the proxy made upstream itself (forwarded, authorization), by status.
    upstream: Family<Labels, Counter>,
    /// Range reads the engine made, and their body bytes (set from its counters at scrape).
    range_reads: Counter,
    range_bytes: Counter,
    /// The shared index cache's hits, misses and evictions (set at scrape).
    index_cache: Family<Labels, Counter>,
    /// Single-file requests whose grant was remembered (`[0]`), or asked for (`[1]`).
    grants: [Counter; 2],
    /// Single-file requests whose first read of the archive was the authorization.
    by_read: Counter,
    /// Single-file requests answered from the hot-entry memory (`[0]`), or read (`[1]`).
    hot: [Counter; 2],
    /// Ranges of verified entries answered as windows: from a checkpoint (`[0]`), or from
    /// the entry's data start (`[1]`: stored entries, deflated ones without checkpoints).
    windows: [Counter; 2],
    /// Bodies being streamed to clients now.
    streaming: Gauge,
    /// Seconds from a request to its answer's head.
    latency: Histogram,
    /// The disk cache's index files, bytes and bound (set at scrape).
    disk: Family<Labels, Gauge>,
    /// Index files the disk cache removed to keep under its bound (set at scrape).
    disk_evictions: Counter,
    shared: Family<Labels, Counter>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("artifact_proxy");
        let upstream = Family::<Labels, Counter>::default();
        registry.register("upstream_requests", "Requests made upstream, by kind and status", upstream.clone());
        let range_reads = Counter::default();
        registry.register(
            "upstream_range_reads",
            "Range reads of archives (object storage or upstream)",
            range_reads.clone(),
        );
        let range_bytes = Counter::default();
        registry.register("upstream_range_bytes", "Body bytes received by range reads", range_bytes.clone());
        let index_cache = Family::<Labels, Counter>::default();
        registry.register("index_cache", "Central-directory index cache: hits, misses, evictions", index_cache.clone());
        let grants = Family::<Labels, Counter>::default();
        registry.register(
            "grants",
            "Single-file authorizations: remembered (hit), asked upstream (miss), or the archive read itself (read)",
            grants.clone(),
        );
        let hot = Family::<Labels, Counter>::default();
        registry.register(
            "hot_entries",
            "Single files answered from memory (hit) or read from the archive (miss)",
            hot.clone(),
        );
        let windows = Family::<Labels, Counter>::default();
        registry.register(
            "verified_windows",
            "Ranges of verified entries read as windows: from a checkpoint, or from the entry's data start",
            windows.clone(),
        );
        let windows =
            ["checkpoint", "data"].map(|from| windows.get_or_create(&vec![("from", from.to_owned())]).clone());
        let streaming = Gauge::default();
        registry.register("streams_in_flight", "Bodies being streamed to clients", streaming.clone());
        let latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register("request_seconds", "Time from a request to its answer's head", latency.clone());
        let disk = Family::<Labels, Gauge>::default();
        registry.register(
            "disk_cache",
            "The disk cache of indexes: files, bytes, and its bound (max_bytes)",
            disk.clone(),
        );
        let disk_evictions = Counter::default();
        registry.register(
            "disk_cache_evictions",
            "Index files removed from the disk cache to keep under its bound",
            disk_evictions.clone(),
        );
        let shared = Family::<Labels, Counter>::default();
        registry.register(
            "shared_cache",
            "The shared cache (--shared-cache): objects found (hit) or not (miss), written (write), failed reads or writes (error)",
            shared.clone(),
        );
        let pair = |family: &Family<Labels, Counter>| {
            ["hit", "miss"].map(|r| family.get_or_create(&vec![("result", r.to_owned())]).clone())
        };
        let by_read = grants.get_or_create(&vec![("result", "read".to_owned())]).clone();
        let (grants, hot) = (pair(&grants), pair(&hot));
        Metrics {
            registry,
            upstream,
            range_reads,
            range_bytes,
            index_cache,
            grants,
            by_read,
            hot,
            windows,
            streaming,
            latency,
            disk,
            disk_evictions,
            shared,
        }
    }

    pub(crate) fn upstream(&self, kind: &'static str, status: u16) {
        self.upstream.get_or_create(&vec![("kind", kind.to_owned()), ("status", status.to_string())]).inc();
    }

    pub(crate) fn grant(&self, hit: bool) {
        self.grants[usize::from(!hit)].inc();
    }

    /// A caller's first read of an archive was its authorization.
    pub(crate) fn grant_by_read(&self) {
        self.by_read.inc();
    }

    pub(crate) fn hot(&self, hit: bool) {
        self.hot[usize::from(!hit)].inc();
    }

    /// A range of a verified entry answered as a window, from a checkpoint or not.
    pub(crate) fn window(&self, from_checkpoint: bool) {
        self.windows[usize::from(!from_checkpoint)].inc();
    }

    pub(crate) fn answered(&self, since: Instant) {
        self.latency.observe(since.elapsed().as_secs_f64());
    }

    /// A guard counting one body in flight until it is dropped.
    pub(crate) fn stream(&self) -> Streaming {
        self.streaming.inc();
        Streaming(self.streaming.clone())
    }

    /// The text exposition, with the engine's counters brought up to date.
    pub(crate) fn render(
        &self,
        reads: artifact_core::ReadStats,
        cache: artifact_core::CacheCounts,
        disk: Option<artifact_core::http::DiskCacheStats>,
        shared: Option<artifact_core::http::SharedCacheStats>,
    ) -> String {
        if let Some(s) = shared {
            for (result, n) in [("hit", s.hits), ("miss", s.misses), ("write", s.writes), ("error", s.errors)] {
                self.shared.get_or_create(&vec![("result", result.to_owned())]).inner().store(n, Ordering::Relaxed);
            }
        }
        if let Some(disk) = disk {
            for (what, n) in [("files", disk.files), ("bytes", disk.bytes), ("max_bytes", disk.max_bytes)] {
                let gauge = self.disk.get_or_create(&vec![("what", what.to_owned())]);
                gauge.set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            self.disk_evictions.inner().store(disk.evictions, Ordering::Relaxed);
        }
        self.range_reads.inner().store(reads.reads, Ordering::Relaxed);
        self.range_bytes.inner().store(reads.bytes, Ordering::Relaxed);
        for (event, n) in [("hit", cache.hits), ("miss", cache.misses), ("eviction", cache.evictions)] {
            self.index_cache.get_or_create(&vec![("event", event.to_owned())]).inner().store(n, Ordering::Relaxed);
        }
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// One body in flight; see [`Metrics::stream`].
#[derive(Debug)]
pub(crate) struct Streaming(Gauge);

impl Drop for Streaming {
    fn drop(&mut self) {
        self.0.dec();
    }
}
