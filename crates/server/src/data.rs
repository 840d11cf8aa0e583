//! The data directory of the embedded defaults: `artifact.db` (SQLite) and `blobs/`; or,
//! with a database URL, the records in PostgreSQL and the blobs still in `blobs/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::blobs::S3Blobs;
use crate::blobs::{Blobs, LocalBlobs};
use crate::error::Error;
use crate::state::{AppConfig, AppState};
use crate::store::{PostgresStore, SqliteStore, Store};

/// An opened data directory: the store and the blobs, created on first use.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
}

impl DataDir {
    /// Opens `root`, creating the folder, the database (running its migrations) and the
    /// blob folder as needed.
    pub fn open(root: &Path) -> Result<DataDir, Error> {
        DataDir::open_with(root, None, None)
    }

    /// Like [`open`](Self::open), with the records in the PostgreSQL database at `database`
    /// (`postgres://user:pass@host:port/db`, migrated on open) and the blobs in the bucket
    /// at `blobs` (`s3://bucket[/prefix]`, configured from the environment as `object_store`
    /// reads it) when they are given. Call it outside an async runtime: the PostgreSQL
    /// client blocks.
    pub fn open_with(root: &Path, database: Option<&str>, blobs: Option<&str>) -> Result<DataDir, Error> {
        std::fs::create_dir_all(root).map_err(Error::io(format!("creating {}", root.display())))?;
        let store: Arc<dyn Store> = match database {
            None => Arc::new(SqliteStore::open(&root.join("artifact.db"))?),
            Some(url) => Arc::new(PostgresStore::open(url)?),
        };
        let blobs: Arc<dyn Blobs> = match blobs {
            None => Arc::new(
                LocalBlobs::open(&root.join("blobs"))
                    .map_err(Error::io(format!("opening {}/blobs", root.display())))?,
            ),
            Some(url) => Arc::new(S3Blobs::open(url).map_err(Error::io(format!("opening {url}")))?),
        };
        Ok(DataDir { root: root.to_owned(), store, blobs })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The blobs.
    pub fn blobs(&self) -> Arc<dyn Blobs> {
        self.blobs.clone()
    }

    /// Router state over this directory.
    pub fn state(&self, config: AppConfig) -> AppState {
        AppState::new(self.store(), self.blobs(), config)
    }
}
