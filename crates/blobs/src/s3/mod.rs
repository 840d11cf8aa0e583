//! Blobs in an S3-compatible bucket, through `object_store`, for many replicas.
//!
//! Keys are the local layer's (`<kind>/<32 hex>`) under an optional prefix. A put streams
//! its reader to the bucket: one `PUT` when it is small, else a multipart upload of 5 MiB
//! parts with at most two in flight (so memory stays near 25 MiB however large the
//! archive), aborted on any error, so an object exists whole or not at all. An opened
//! blob is a [`Source`](artifact_core::Source) of ranged `GET`s; a key never changes meaning, so nothing is
//! validated per read.
//!
//! `object_store` is async: the layer owns a small runtime of its own and hands work to it,
//! waiting on a channel, so it may be called from any thread, like the local layer. Set
//! explicit keys: without them `object_store` would ask a cloud metadata address, and a
//! storage outage must be a prompt error, so retries are few and short.

use std::io::{self, Read};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use artifact_core::{ReadCounter, ReadStats};
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, PutPayload, RetryConfig, WriteMultipart};

use crate::blobs::{BlobKind, Blobs, Listed, OpenBlob, beside};
use artifact_records::BlobRef;

mod source;

use source::S3Source;

/// Multipart part size: S3's minimum (except for the last part).
const PART: usize = 5 << 20;
/// Parts uploading at once.
const PARTS_IN_FLIGHT: usize = 2;
/// The first read of a blob: its last bytes (a suffix range), which also tell its size and
/// time. As long as the engine's own first read of an archive (the end records with the
/// longest comment), so that read is served from them; they usually hold the whole central
/// directory too.
const TAIL: u64 = artifact_core::MAX_TAIL as u64;
/// Blobs whose size and time are remembered at most (keys never change meaning).
const KNOWN: usize = 65_536;

/// Blobs in an S3-compatible bucket, through `object_store`, for many replicas.
///
/// Keys are the local layer's (`<kind>/<32 hex>`) under an optional prefix. A put streams
/// its reader to the bucket: one `PUT` when it is small, else a multipart upload of 5 MiB
/// parts with at most two in flight (memory stays near 25 MiB however large the archive),
/// aborted on any error, so an object exists whole or not at all. An opened blob is a
/// byte source of ranged `GET`s. `object_store` is async: the layer owns a small runtime of
/// its own and blocks the calling thread on it, so it may be called from any thread that
/// may block (not from inside an async task). Give explicit keys: without them
/// `object_store` would ask a cloud metadata address; retries are few and short, so that a
/// storage outage is a prompt error.
#[derive(Debug)]
pub struct S3Blobs {
    store: Arc<AmazonS3>,
    prefix: String,
    /// `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    counter: Arc<ReadCounter>,
    /// Size and time of blobs opened before: opening them again costs no request.
    known: quick_cache::sync::Cache<String, (u64, std::time::SystemTime)>,
}

impl Drop for S3Blobs {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async thread may not do.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn to_io(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e.to_string()),
        e => io::Error::other(e.to_string()),
    }
}

/// The object client for `bucket`, configured as `object_store`'s AWS builder reads the
/// environment with `config` over it: keys required unless `AWS_SKIP_SIGNATURE=true` (never
/// a cloud metadata address), few and short retries, each request given `timeout`.
pub(crate) fn amazon_s3(bucket: &str, config: &[(&str, &str)], timeout: Duration) -> io::Result<AmazonS3> {
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
    let given = |key: &str, env: &str| {
        config.iter().find(|(k, _)| *k == key).map(|(_, v)| (*v).to_owned()).or_else(|| std::env::var(env).ok())
    };
    let skip_signature = given("aws_skip_signature", "AWS_SKIP_SIGNATURE").is_some_and(|v| v == "true");
    if !skip_signature && given("aws_access_key_id", "AWS_ACCESS_KEY_ID").is_none() {
        return Err(invalid("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_SKIP_SIGNATURE=true)".into()));
    }
    let retry = RetryConfig { max_retries: 2, retry_timeout: Duration::from_secs(10), ..RetryConfig::default() };
    let client = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_timeout(timeout)
        .with_allow_http(given("aws_allow_http", "AWS_ALLOW_HTTP").is_some_and(|v| v == "true"));
    let mut builder = AmazonS3Builder::from_env();
    for (key, value) in config {
        let key = key.parse().map_err(|e: object_store::Error| invalid(e.to_string()))?;
        builder = builder.with_config(key, *value);
    }
    builder.with_bucket_name(bucket).with_retry(retry).with_client_options(client).build().map_err(to_io)
}

/// Runs `fut` on `handle`'s runtime and waits for it on this thread (any thread).
fn run<T: Send + 'static>(handle: &tokio::runtime::Handle, fut: impl Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().expect("the storage runtime runs until the blobs are dropped")
}

impl S3Blobs {
    /// The bucket at `url` (`s3://bucket[/prefix]`), configured as `object_store`'s AWS
    /// builder reads the environment (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`, ...). Keys are required unless
    /// `AWS_SKIP_SIGNATURE=true`.
    pub fn open(url: &str) -> io::Result<S3Blobs> {
        S3Blobs::open_with(url, &[])
    }

    /// Like [`open`](Self::open), with `object_store` configuration keys (`aws_endpoint`,
    /// `aws_access_key_id`, `aws_allow_http`, ...) set here over the environment's.
    pub fn open_with(url: &str, config: &[(&str, &str)]) -> io::Result<S3Blobs> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        let rest = url.strip_prefix("s3://").ok_or_else(|| invalid(format!("{url}: not an s3:// URL")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid(format!("{url}: no bucket")));
        }
        let store = amazon_s3(bucket, config, Duration::from_secs(60))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("artifact-s3")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(S3Blobs {
            store: Arc::new(store),
            prefix: prefix.trim_matches('/').to_owned(),
            runtime: Some(runtime),
            handle,
            counter: Arc::default(),
            known: quick_cache::sync::Cache::new(KNOWN),
        })
    }

    /// Ranged reads made and bytes received by every blob opened here.
    pub fn stats(&self) -> ReadStats {
        self.counter.snapshot()
    }

    fn path(&self, key: &str) -> io::Result<Path> {
        crate::blobs::parse_key(key).ok_or_else(|| bad_key(key))?;
        Ok(if self.prefix.is_empty() { Path::from(key) } else { Path::from(format!("{}/{key}", self.prefix)) })
    }

    /// Streams `from` to `key`: one `PUT` for a small blob, a multipart upload otherwise.
    fn upload(&self, key: String, from: &mut dyn Read) -> io::Result<BlobRef> {
        let path = self.path(&key)?;
        // `put_beside` replaces a blob: what was known of it is not any more.
        self.known.remove(&key);
        let first = read_part(from)?;
        let store = self.store.clone();
        if first.len() < PART {
            let size = first.len() as u64;
            run(&self.handle, async move { store.put(&path, PutPayload::from(first)).await }).map_err(to_io)?;
            return Ok(BlobRef { key, size });
        }
        // The parts go to an uploading task over a bounded channel: the reader is read here,
        // at most a few parts ahead of the upload.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(1);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<io::Result<()>>(1);
        self.handle.spawn(async move {
            let result = async {
                let upload = store.put_multipart(&path).await.map_err(to_io)?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
                let rx = Arc::new(std::sync::Mutex::new(rx));
                loop {
                    let rx = rx.clone();
                    let next = tokio::task::spawn_blocking(move || rx.lock().map(|r| r.recv().ok()).ok().flatten())
                        .await
                        .ok()
                        .flatten();
                    let Some(part) = next else { break };
                    if part.is_empty() {
                        // The reader failed: give the parts up.
                        let _ = writer.abort().await;
                        return Err(io::Error::other("the upload was abandoned"));
                    }
                    if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                        return Err(to_io(e));
                    }
                    writer.write(&part);
                }
                writer.finish().await.map(drop).map_err(to_io)
            }
            .await;
            let _ = done_tx.send(result);
        });
        let mut size = first.len() as u64;
        let send = |part: Bytes| tx.send(part).is_ok();
        let mut failure = None;
        if send(first) {
            loop {
                match read_part(from) {
                    Ok(part) if part.is_empty() => break,
                    Ok(part) => {
                        size += part.len() as u64;
                        if !send(part) {
                            break;
                        }
                    }
                    Err(e) => {
                        // An empty part tells the task to abort.
                        let _ = send(Bytes::new());
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        drop(tx);
        let uploaded = done_rx.recv().unwrap_or_else(|_| Err(io::Error::other("the upload task ended")));
        if let Some(e) = failure {
            return Err(e);
        }
        uploaded?;
        Ok(BlobRef { key, size })
    }
}

fn bad_key(key: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("malformed blob key {key:?}"))
}

/// Up to one part from `from` (shorter only at its end).
fn read_part(from: &mut dyn Read) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(PART);
    from.take(PART as u64).read_to_end(&mut buf)?;
    Ok(Bytes::from(buf))
}

impl Blobs for S3Blobs {
    fn read_stats(&self) -> Option<artifact_core::ReadStats> {
        Some(self.stats())
    }

    /// The bucket answers: a `HEAD` of a key that is never written comes back "not found".
    fn check(&self) -> io::Result<()> {
        let store = self.store.clone();
        let path =
            Path::from(if self.prefix.is_empty() { ".health".into() } else { format!("{}/.health", self.prefix) });
        match run(&self.handle, async move { store.head(&path).await }) {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(to_io(e)),
        }
    }

    fn put_at(&self, key: &str, from: &mut dyn Read) -> io::Result<BlobRef> {
        self.upload(key.to_owned(), from)
    }

    /// One listing of the bucket under the prefix (paged by the client); objects whose
    /// names are not well-formed keys are not blobs. (Parts of a multipart upload that was
    /// never completed are not objects and are not listed: a bucket lifecycle rule,
    /// `AbortIncompleteMultipartUpload`, removes them; see `docs/operations.md`.)
    fn list(&self) -> io::Result<Vec<Listed>> {
        let store = self.store.clone();
        let prefix = (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()));
        let objects = run(&self.handle, async move {
            let mut listing = store.list(prefix.as_ref());
            let mut objects = Vec::new();
            while let Some(meta) = listing.next().await {
                objects.push(meta?);
            }
            Ok::<_, object_store::Error>(objects)
        })
        .map_err(to_io)?;
        let skip = if self.prefix.is_empty() { 0 } else { self.prefix.len() + 1 };
        Ok(objects
            .into_iter()
            .filter_map(|meta| {
                let key = meta.location.as_ref().get(skip..)?.to_owned();
                crate::blobs::parse_key(&key)?;
                let modified = UNIX_EPOCH + Duration::from_millis(meta.last_modified.timestamp_millis().max(0) as u64);
                Some(Listed { key, size: meta.size, modified })
            })
            .collect())
    }

    fn put_beside(&self, archive_key: &str, kind: BlobKind, from: &mut dyn Read) -> io::Result<BlobRef> {
        let key = beside(archive_key, kind).ok_or_else(|| bad_key(archive_key))?;
        self.upload(key, from)
    }

    /// A blob opened before costs no request (its size and time are remembered; its key
    /// never changes meaning). Otherwise one suffix `GET` brings its size, its time and its
    /// last 64 KiB, which the first reads (an archive's end records and central directory)
    /// are served from.
    fn open(&self, key: &str) -> io::Result<OpenBlob> {
        let path = self.path(key)?;
        let remembered = self.known.get(key);
        let source = |size, tail| S3Source {
            store: self.store.clone(),
            path: path.clone(),
            size,
            tail,
            handle: self.handle.clone(),
            counter: self.counter.clone(),
        };
        if let Some((size, modified)) = remembered {
            return Ok(OpenBlob { source: Arc::new(source(size, Bytes::new())), modified, remote: true });
        }
        let (store, suffix_path) = (self.store.clone(), path.clone());
        self.counter.record_request();
        let got = run(&self.handle, async move {
            let options = GetOptions { range: Some(GetRange::Suffix(TAIL)), ..GetOptions::default() };
            match store.get_opts(&suffix_path, options).await {
                Ok(got) => {
                    let meta = got.meta.clone();
                    got.bytes().await.map(|tail| (meta, tail))
                }
                Err(e @ object_store::Error::NotFound { .. }) => Err(e),
                // An empty object has no suffix to give: its metadata alone.
                Err(_) => store.head(&suffix_path).await.map(|meta| (meta, Bytes::new())),
            }
        })
        .map_err(to_io)?;
        let (meta, tail) = got;
        self.counter.record_bytes(tail.len());
        let millis = u64::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0);
        let modified = UNIX_EPOCH + Duration::from_millis(millis);
        // Blobs written beside an archive may be written again; the others never are.
        if !crate::blobs::parse_key(key).is_some_and(|(kind, _)| kind.rewritable()) {
            self.known.insert(key.to_owned(), (meta.size, modified));
        }
        Ok(OpenBlob { source: Arc::new(source(meta.size, tail)), modified, remote: true })
    }

    /// A presigned `GET` (the credentials' signature in the query, nothing of the caller's):
    /// signed here, no request made.
    fn presigned_url(&self, key: &str, valid_for: Duration) -> Option<io::Result<String>> {
        use object_store::signer::Signer;
        let path = match self.path(key) {
            Ok(path) => path,
            Err(e) => return Some(Err(e)),
        };
        let store = self.store.clone();
        let signed = run(&self.handle, async move { store.signed_url(http::Method::GET, &path, valid_for).await });
        Some(signed.map(|url| url.to_string()).map_err(to_io))
    }

    /// One ranged `GET` on the caller's runtime (the object client's connections serve
    /// any runtime): no hop to the layer's own runtime and no thread waiting on it.
    fn read_async(&self, key: &str, range: Range<u64>) -> Option<crate::blobs::BlobFuture<'_>> {
        let path = self.path(key);
        Some(Box::pin(async move {
            let len = range.end.checked_sub(range.start).ok_or_else(|| io::Error::other("a range that ends first"))?;
            if len == 0 {
                return Ok(Bytes::new());
            }
            self.counter.record_request();
            let bytes = self.store.get_range(&path?, range).await.map_err(to_io)?;
            self.counter.record_bytes(bytes.len());
            if bytes.len() as u64 != len {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the storage answered a short range"));
            }
            Ok(bytes)
        }))
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        let path = self.path(key)?;
        self.known.remove(key);
        let store = self.store.clone();
        match run(&self.handle, async move { store.delete(&path).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(to_io(e)),
        }
    }
}
