//! Artifact downloads: the archive by job id (5) or ref + job (6), one entry by job id (7)
//! or ref + job (8). Job tokens and anonymous reads of public projects are allowed here.
//!
//! [`target`] parses what a request names; [`answer`] turns a verified entry into a
//! response (type, disposition, gzip framing, the body read now or streamed).

pub(crate) mod answer;
mod remote;
pub(crate) mod target;
mod tree;

pub(crate) use self::tree::tree_by_id;

use self::answer::{EntryAnswer, INLINE_MAX, artifact_path, entry_headers, gzip_member, gzip_representation, respond};
use self::target::{ByRef, FileById, Target};

use std::io::Read;
use std::sync::Arc;

use crate::routes::Path;
use artifact_core::checkpoints::MIN_ENTRY;
use artifact_core::{Archive, ArtifactPath, Entry, Index, JobRef, Resolve, Source};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;

use super::{Asker, Ctx, blocking, id_param};
use crate::auth::{Need, Routes};
use crate::blobs::OpenBlob;
use crate::delivery::{Plan, Representation, body_of};
use crate::error::StoreAnswer;
use crate::error::{ApiError, ApiResult};
use crate::hot::Hot;
use crate::lookups::LookupKey;
use crate::model::BlobRef;
use crate::resolve::StoreResolver;
use crate::time::Timestamp;
use crate::verdicts::{Verdict, Verdicts};

/// The strong entity tag of `entry`'s bytes in the archive `archive_ref` (its key, the
/// entry's CRC-32 and size).
fn entry_tag(archive_ref: &BlobRef, entry: &Entry) -> String {
    format!("\"{}-{:08x}-{}\"", etag_of(&archive_ref.key).trim_matches('"'), entry.crc32(), entry.size())
}

/// A strong entity tag from a blob key (keys never change meaning).
pub(crate) fn etag_of(key: &str) -> String {
    format!("\"{}\"", key.rsplit('/').next().unwrap_or(key))
}

/// Answers `rep` from `source` (the blob's whole bytes): 304, 200, 206 or multipart 206.
pub(crate) fn deliver_blob(
    rep: &Representation,
    req: &HeaderMap,
    head: bool,
    source: Arc<dyn Source>,
) -> ApiResult<Response> {
    let open = move |start: u64, len: u64| -> std::io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(source.read_stream(start, len)?))
    };
    Ok(match rep.plan(req)? {
        Plan::NotModified => rep.not_modified(),
        Plan::Full => {
            let body = if head { None } else { Some(body_of(open(0, rep.len).map_err(ApiError::internal)?, rep.len)) };
            rep.full(body)
        }
        Plan::Partial(ranges) if ranges.len() == 1 => {
            let (s, e) = ranges[0];
            let body = if head { None } else { Some(body_of(open(s, e - s).map_err(ApiError::internal)?, e - s)) };
            rep.partial((s, e), body)
        }
        Plan::Partial(ranges) => rep.multipart(ranges, head, open)?,
    })
}

/// Resolves `job` in project `id` to its live archive, for `ask`.
fn archive_of(ask: &Asker, id: &str, job: &JobRef) -> ApiResult<BlobRef> {
    resolved_of(ask, id, job)?.archive.ok_or(ApiError::NotFound("Not found"))
}

/// Resolves `job` in project `id` to its live archive's `metadata.gz`, for `ask`.
fn metadata_of(ask: &Asker, id: &str, job: &JobRef) -> ApiResult<BlobRef> {
    resolved_of(ask, id, job)?.metadata.ok_or(ApiError::NotFound("Not found"))
}

/// Resolves `job` in project `id`, for `ask`: the routes and role of artifacts.
fn resolved_of(ask: &Asker, id: &str, job: &JobRef) -> ApiResult<artifact_core::Resolved<BlobRef>> {
    let access = ask.access(Routes::Artifacts, id)?;
    access.require(Need::Read)?;
    let resolver = StoreResolver { store: &*ask.state.inner.store, now: Timestamp::now() };
    resolver.resolve(&access.project, job).api()?.ok_or(ApiError::NotFound("Not found"))
}

/// How long a presigned archive URL is valid.
const PRESIGNED_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// An archive download, or where to get it.
enum ArchiveAnswer {
    Open(OpenBlob, String),
    /// `302` to object storage, or `304`/`412` decided without opening the blob.
    Done(Response),
}

async fn archive(ask: Asker, id: String, job: JobRef) -> ApiResult<Response> {
    let (head, req) = (ask.head, ask.headers.clone());
    let answer = blocking(move || {
        let archive = archive_of(&ask, &id, &job)?;
        let shared = &ask.state.inner;
        // Like GitLab with object storage: a GET goes to a presigned URL (no caller token in
        // it), unless the server streams downloads itself. HEAD is answered here.
        if !head && !shared.proxy_download {
            // A layer that cannot sign now (no keys, say) streams instead.
            let signed = match shared.blobs.presigned_url(&archive.key, PRESIGNED_FOR) {
                Some(Ok(url)) => Some(url),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "no presigned URL: streaming the archive instead");
                    None
                }
                None => None,
            };
            if let Some(url) = signed {
                let rep = archive_representation(archive.size, &archive.key, None);
                if rep.plan(&ask.headers)? == crate::delivery::Plan::NotModified {
                    return Ok(ArchiveAnswer::Done(rep.not_modified()));
                }
                let location = HeaderValue::from_str(&url).map_err(ApiError::internal)?;
                let mut resp = Response::new(axum::body::Body::empty());
                *resp.status_mut() = axum::http::StatusCode::FOUND;
                resp.headers_mut().insert(header::LOCATION, location);
                resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return Ok(ArchiveAnswer::Done(resp));
            }
        }
        let blob = shared.blobs.open(&archive.key).map_err(ApiError::internal)?;
        Ok(ArchiveAnswer::Open(blob, archive.key))
    })
    .await?;
    let (blob, key) = match answer {
        ArchiveAnswer::Done(resp) => return Ok(resp),
        ArchiveAnswer::Open(blob, key) => (blob, key),
    };
    let rep = archive_representation(blob.source.len(), &key, Some(blob.modified));
    deliver_blob(&rep, &req, head, blob.source)
}

/// The archive as a representation: type, disposition, validators.
fn archive_representation(len: u64, key: &str, modified: Option<std::time::SystemTime>) -> Representation {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip"),
    );
    // GitLab's download headers for a file it sends itself (`jobs_spec.rb`, "downloads
    // artifact").
    headers.insert("content-transfer-encoding", HeaderValue::from_static("binary"));
    Representation { len, etag: etag_of(key), last_modified: modified, headers, ranges: true }
}

/// 5: `GET /projects/:id/jobs/:job_id/artifacts`.
pub(crate) async fn archive_by_id(ctx: Ctx, Path((id, job_id)): Path<(String, String)>) -> ApiResult<Response> {
    let job_id = id_param(&job_id, "job_id")?;
    archive(ctx.into_asker(), id, JobRef::Id(job_id as u64)).await
}

/// 7: `GET /projects/:id/jobs/:job_id/artifacts/*artifact_path`.
pub(crate) async fn entry_by_id(ctx: Ctx, FileById(target): FileById) -> ApiResult<Response> {
    download(ctx, target).await
}

/// 6 and 8: `GET /projects/:id/jobs/artifacts/:ref_name/download?job=NAME` and
/// `.../:ref_name/raw/*artifact_path?job=NAME`; and the tree by ref,
/// `.../:ref_name/tree?job=NAME`.
pub(crate) async fn by_ref(ctx: Ctx, ByRef(target, tree): ByRef) -> ApiResult<Response> {
    match tree {
        true => self::tree::tree(ctx, target).await,
        false => download(ctx, target).await,
    }
}

async fn download(ctx: Ctx, target: Target) -> ApiResult<Response> {
    let ask = ctx.into_asker();
    match target.file {
        None => archive(ask, target.project, target.job).await,
        Some(file) => entry(ask, target.project, target.job, artifact_path(&file)?).await,
    }
}

/// One entry of job `job`'s archive in project `id`, for `ask`: endpoints 7 and 8 as one
/// domain-level call, which the API's handlers and the pages (`routes::pages`) both make.
/// Access is checked here; `path` has passed the path rule.
pub(crate) async fn entry(ask: Asker, id: String, job: JobRef, path: ArtifactPath) -> ApiResult<Response> {
    let key = LookupKey::new(ask.presented.digest(), &id, &job);
    let shared = ask.state.inner.clone();
    // The hot path: a look-up remembered, and the entry kept in memory (verified bytes
    // and their headers): nothing is read. Or its archive open and indexed: no query and
    // no trip to the blocking pool; the entry's few bytes come from the page cache. (An
    // archive in object storage is read on the blocking pool: its reads are requests.)
    if let Some(key) = &key
        && let Some(archive_ref) = shared.lookups.archive(key)
    {
        if let Some(hot) = shared.hot.get(&archive_ref.key, &path)
            && let Some(answer) = hot.answer(&ask.headers, ask.head)
        {
            if let Some(metrics) = &shared.metrics {
                metrics.lookup(true);
                metrics.hot(true);
            }
            return answer;
        }
        if let Some(blob) = shared.lookups.file(&archive_ref.key)
            && let Some((index, verdicts)) = shared.indexes.get(&archive_ref.key)
        {
            // A local archive's entry from the page cache; a small one in object storage by
            // its one request, awaited here.
            let answer = if blob.remote {
                remote::small_entry(&ask, &archive_ref, &blob, &index, &verdicts, &path).await
            } else {
                answer_entry(&ask, &archive_ref, blob, index, &verdicts, &path, false)?.map(|a| Ok(respond(a)))
            };
            if let Some(answer) = answer {
                if let Some(metrics) = &shared.metrics {
                    metrics.lookup(true);
                    metrics.hot(false);
                }
                return answer;
            }
        }
    }
    let answer = blocking(move || {
        let generation = shared.lookups.generation();
        // A remembered look-up spares the queries here too (an archive in object storage).
        let remembered = key.as_ref().and_then(|k| shared.lookups.archive(k));
        if let Some(metrics) = &shared.metrics {
            metrics.lookup(remembered.is_some());
        }
        let archive_ref = match remembered {
            Some(archive_ref) => archive_ref,
            None => {
                let archive_ref = archive_of(&ask, &id, &job)?;
                if let Some(key) = key {
                    shared.lookups.remember(key, archive_ref.clone(), generation);
                }
                archive_ref
            }
        };
        // Access checked and the archive live: an entry kept in memory answers any caller
        // (not only one whose look-up is remembered), without reading the archive.
        let hot = shared.hot.get(&archive_ref.key, &path).and_then(|hot| hot.answer(&ask.headers, ask.head));
        if let Some(metrics) = &shared.metrics {
            metrics.hot(hot.is_some());
        }
        if let Some(answer) = hot {
            return Ok(Err(answer));
        }
        let blob = match shared.lookups.file(&archive_ref.key) {
            Some(blob) => blob,
            None => {
                let blob = shared.blobs.open(&archive_ref.key).map_err(ApiError::internal)?;
                shared.lookups.keep_file(&archive_ref.key, &blob, generation);
                blob
            }
        };
        let (index, verdicts) = shared
            .indexes
            .get_or_load(&archive_ref.key, || {
                let archive = Archive::open(blob.source.clone())?;
                let location = archive.central_directory().location();
                if location.size_was_wrong() {
                    tracing::debug!(key = %archive_ref.key, declared = location.declared_size, found = location.size,
                        "central directory read by count: its declared size is wrong");
                }
                let verdicts = Verdicts::load(&*shared.store, &*shared.blobs, &archive_ref.key)?;
                Ok((archive.index()?, Arc::new(verdicts)))
            })
            .map_err(ApiError::internal)?;
        answer_entry(&ask, &archive_ref, blob, index, &verdicts, &path, true).map(Ok)
    })
    .await?;
    match answer {
        // Always an answer when blocking was allowed.
        Ok(entry) => entry.map(respond).ok_or_else(|| ApiError::internal("an entry was left unverified")),
        Err(hot) => hot,
    }
}

/// Finds the entry and decides the answer: verdict, validators, encoding, range, and the
/// body (read here when small). An entry that did not verify is a 500 before anything else
/// is looked at, so no face of it (`HEAD`, 304, a range, gzip) answers 2xx. `None`: the
/// entry is not verified yet (or a range of it needs its archive's checkpoints loaded) and
/// `may_block` is false; ask again from the blocking pool.
fn answer_entry(
    ask: &Asker,
    archive_ref: &BlobRef,
    blob: OpenBlob,
    index: Arc<Index>,
    verdicts: &Verdicts,
    path: &ArtifactPath,
    may_block: bool,
) -> ApiResult<Option<EntryAnswer>> {
    let archive = Archive::with_index(blob.source.clone(), index);
    let entry = match archive.find(path) {
        Ok(e) => e,
        Err(artifact_core::Error::NotFound { .. }) => return Err(ApiError::NotFound("Not found")),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let verdict = match verdicts.of(&entry) {
        Verdict::Unknown if !may_block => return Ok(None),
        Verdict::Unknown => verdicts.verify(&archive, &entry).map_err(ApiError::internal)?,
        known => known,
    };
    if let Verdict::Refused(why) = verdict {
        let detail = format!("entry {:?} of {} was refused: {why}", entry.display_name(), archive_ref.key);
        return Err(ApiError::Internal(detail));
    }
    answer_verified(ask, archive_ref, &blob, &archive, entry, path, (verdicts, may_block))
}

/// [`answer_entry`] for an entry whose bytes verified. `None`: a range of a large deflated
/// entry needs its archive's checkpoints loaded, and blocking is not allowed.
fn answer_verified(
    ask: &Asker,
    archive_ref: &BlobRef,
    blob: &OpenBlob,
    archive: &Archive<Arc<dyn Source>>,
    entry: Entry,
    path: &ArtifactPath,
    (verdicts, may_block): (&Verdicts, bool),
) -> ApiResult<Option<EntryAnswer>> {
    let deflated = entry.method() == 8;
    let identity_tag = entry_tag(archive_ref, &entry);
    let mut headers = entry_headers(path)?;
    if deflated {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    let identity = Representation {
        len: entry.size(),
        etag: identity_tag.clone(),
        last_modified: Some(blob.modified),
        headers: headers.clone(),
        ranges: true,
    };
    let selection = identity.plan_after_preconditions(&ask.headers);
    if let Some(rep) = deflated.then(|| gzip_representation(&identity, &ask.headers, entry.compressed_size())).flatten()
    {
        if rep.plan(&ask.headers)? == Plan::NotModified {
            return Ok(Some(EntryAnswer::NotModified(rep)));
        }
        if ask.head {
            return Ok(Some(EntryAnswer::Head(rep, None)));
        }
        let reader = archive.reader(&entry).map_err(ApiError::internal)?;
        if rep.len <= INLINE_MAX {
            let body = gzip_member(reader).map_err(ApiError::internal)?;
            if entry.size() <= INLINE_MAX && ask.state.inner.hot.enabled() {
                // Kept with its identity bytes (read again: small, and once; not at all
                // without the entry memory, where nothing is kept).
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                archive.reader(&entry).and_then(|mut r| Ok(r.read_to_end(&mut bytes)?)).map_err(ApiError::internal)?;
                keep(ask, archive_ref, path, &identity, Bytes::from(bytes), Some(entry.compressed_size()), Some(&body));
            }
            return Ok(Some(EntryAnswer::Inline(rep, None, body)));
        }
        return Ok(Some(EntryAnswer::Gzip(rep, reader)));
    }
    identity.preconditions(&ask.headers)?;
    let window = match selection? {
        Plan::NotModified => return Ok(Some(EntryAnswer::NotModified(identity))),
        Plan::Partial(r) if r.len() == 1 && r[0] != (0, entry.size()) => Some(r[0]),
        // Several ranges of one entry: the whole entry (RFC 9110 allows ignoring Range).
        Plan::Partial(_) | Plan::Full => None,
    };
    if ask.head {
        return Ok(Some(EntryAnswer::Head(identity, window)));
    }
    let mut reader = archive.reader(&entry).map_err(ApiError::internal)?;
    if window.is_none() && entry.size() <= INLINE_MAX {
        // Small entries are read and their CRC checked before the headers go out.
        let mut body = Vec::with_capacity(entry.size() as usize);
        reader.read_to_end(&mut body).map_err(ApiError::internal)?;
        let body = Bytes::from(body);
        let compressed = deflated.then_some(entry.compressed_size());
        keep(ask, archive_ref, path, &identity, body.clone(), compressed, None);
        return Ok(Some(EntryAnswer::Inline(identity, None, body)));
    }
    Ok(Some(match window {
        None if deflated && entry.size() > MIN_ENTRY => {
            // On every core when they are idle: from the checkpoints, if there are any.
            let Some(checkpoints) = checkpoints_of(ask, archive_ref, verdicts, may_block) else { return Ok(None) };
            let candidate = checkpoints.as_ref().and_then(|c| c.of(&entry)).filter(|_| crate::parallel::available());
            let parallel = candidate.and_then(|points| {
                let gate = crate::parallel::gate();
                points.parallel_reader_when(archive, &entry, crate::parallel::threads(), gate).ok()
            });
            match parallel {
                Some(reader) => EntryAnswer::Stream(identity, Box::new(reader)),
                None => EntryAnswer::Full(identity, reader),
            }
        }
        None => EntryAnswer::Full(identity, reader),
        Some((s, e)) if !deflated => {
            let data = archive.source().read_stream(reader.data_offset() + s, e - s).map_err(ApiError::internal)?;
            EntryAnswer::Window(identity, (s, e), Box::new(data))
        }
        Some((s, e)) if entry.size() > MIN_ENTRY => {
            // From the nearest checkpoint when the archive has them (built when the entry
            // was verified at import), else inflated from the start.
            let Some(checkpoints) = checkpoints_of(ask, archive_ref, verdicts, may_block) else { return Ok(None) };
            match checkpoints.as_ref().and_then(|c| c.of(&entry)) {
                Some(points) => {
                    let (skip, from) = points.resume(archive, &entry, s).map_err(ApiError::internal)?;
                    EntryAnswer::Resume(identity, (s, e), skip, from)
                }
                None => EntryAnswer::Skip(identity, (s, e), reader),
            }
        }
        Some((s, e)) => EntryAnswer::Skip(identity, (s, e), reader),
    }))
}

/// Keeps a small entry's verified bytes in the hot-entry memory, by archive key and path:
/// for a deflated one its compressed size, and its gzip member when it was read (a member
/// read later joins the kept identity bytes).
fn keep(
    ask: &Asker,
    archive_ref: &BlobRef,
    path: &ArtifactPath,
    identity: &Representation,
    bytes: Bytes,
    compressed: Option<u64>,
    gzip: Option<&Bytes>,
) {
    let hot = &ask.state.inner.hot;
    if !hot.enabled() {
        return;
    }
    // A member kept before stays (the same bytes: keys never change meaning).
    let gzip = gzip.cloned().or_else(|| hot.get(&archive_ref.key, path).and_then(|kept| kept.gzip.clone()));
    let mut entry = Hot::new(bytes, identity.etag.clone(), identity.last_modified, identity.headers.clone());
    entry.compressed = compressed;
    entry.gzip = gzip;
    hot.put(&Arc::from(archive_ref.key.as_str()), path, Arc::new(entry));
}

/// The archive's checkpoints (inner `None`: it has none), loaded on first use; `None` when
/// they are not loaded yet and blocking is not allowed.
fn checkpoints_of(
    ask: &Asker,
    archive_ref: &BlobRef,
    verdicts: &Verdicts,
    may_block: bool,
) -> Option<Option<Arc<artifact_core::checkpoints::Checkpoints>>> {
    match verdicts.loaded_checkpoints() {
        Some(loaded) => Some(loaded),
        None if may_block => Some(verdicts.checkpoints(&*ask.state.inner.blobs, &archive_ref.key)),
        None => None,
    }
}
