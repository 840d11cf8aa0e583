//! The cache a fleet of proxies shares (`artifact serve --upstream --shared-cache`): archives'
//! indexes and entries' verdicts, written once by the proxy that read them and read by every
//! other, in a directory (one that all the proxies mount) or an S3-compatible bucket, through
//! `object_store` (here, with the blob layer's other object storage, so that the proxy
//! crate reaches none). What goes there is the engine's
//! ([`SharedCache`](artifact_core::http::SharedCache)): keyed by archive identity, no URL,
//! credential or signature.

use std::sync::Arc;
use std::time::Duration;

use artifact_core::http::{SharedCache, SharedFuture};
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};

/// A [`SharedCache`] over an `object_store` store, below a prefix.
#[derive(Debug, Clone)]
pub struct ObjectStoreCache {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl ObjectStoreCache {
    /// The shared cache at `url`: `s3://bucket[/prefix]` (the endpoint, region and keys
    /// from the `AWS_*` variables, as `artifact serve --s3` takes them: keys are required
    /// unless `AWS_SKIP_SIGNATURE=true`), `file:///dir`, or a directory's path (made if it
    /// is not there). Nothing is asked of the store here: one that does not answer shows in
    /// the reads and writes that fail (counted, never an error for a caller).
    pub fn open(url: &str) -> std::io::Result<ObjectStoreCache> {
        ObjectStoreCache::open_with(url, &[])
    }

    /// Like [`open`](Self::open), with `object_store` configuration keys for S3
    /// (`aws_endpoint`, `aws_access_key_id`, `aws_allow_http`, ...) set here over the
    /// environment's.
    pub fn open_with(url: &str, config: &[(&str, &str)]) -> std::io::Result<ObjectStoreCache> {
        let bad = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{url}: {why}"));
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket".into()));
            }
            let store =
                crate::s3::amazon_s3(bucket, config, Duration::from_secs(30)).map_err(|e| bad(e.to_string()))?;
            return Ok(ObjectStoreCache { store: Arc::new(store), prefix: prefix.trim_matches('/').to_owned() });
        }
        let dir = match url.strip_prefix("file://") {
            Some(path) => std::path::PathBuf::from(path),
            None if url.contains("://") => return Err(bad("not an s3:// or file:// URL, or a directory".into())),
            None => std::path::PathBuf::from(url),
        };
        // Made private when made here (it holds archives' listings and bits of their files).
        let mut made = std::fs::DirBuilder::new();
        made.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut made, 0o700);
        made.create(&dir).map_err(|e| bad(e.to_string()))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(|e| bad(e.to_string()))?;
        Ok(ObjectStoreCache { store: Arc::new(store), prefix: String::new() })
    }

    fn path(&self, name: &str) -> Path {
        if self.prefix.is_empty() { Path::from(name) } else { Path::from(format!("{}/{name}", self.prefix)) }
    }
}

impl SharedCache for ObjectStoreCache {
    fn get(&self, name: &str, max_len: u64) -> SharedFuture<'_, Option<Bytes>> {
        let path = self.path(name);
        Box::pin(async move {
            let found = match self.store.get(&path).await {
                Ok(found) => found,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(std::io::Error::other(e)),
            };
            // The object's size is known before its body is read.
            if found.meta.size > max_len {
                return Ok(None);
            }
            found.bytes().await.map(Some).map_err(std::io::Error::other)
        })
    }

    fn put(&self, name: &str, bytes: Bytes) -> SharedFuture<'_, ()> {
        let path = self.path(name);
        Box::pin(async move {
            self.store.put(&path, PutPayload::from(bytes)).await.map(|_| ()).map_err(std::io::Error::other)
        })
    }
}
