//! Router tests: the whole app on a real SQLite file and real blobs in a temporary folder,
//! called with `oneshot` (no socket). One module per concern.

mod actions;
mod artifacts;
mod auth;
mod browse;
mod checkpoints;
mod compat;
mod gc;
mod hostile;
mod hot;
mod integrity;
mod jobs;
mod keep_latest;
mod metrics;
mod proxy;
mod proxy_cache;
mod proxy_hostile;
mod proxy_shared;
mod proxy_tree;
mod robustness;
mod spec_artifacts;
mod spec_jobs;
mod spec_parity;
mod support;
mod tree;

/// This binary runs the suite on the embedded default.
const STORE: support::Backend = support::Backend::Sqlite;
