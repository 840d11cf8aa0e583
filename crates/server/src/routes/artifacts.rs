//! Artifact downloads: the archive by job id (5) or ref + job (6), one entry by job id (7)
//! or ref + job (8). Job tokens and anonymous reads of public projects are allowed here.

use std::io::Read;
use std::sync::Arc;

use artifact_core::{Archive, ArtifactPath, Entry, EntryReader, Index, JobRef, Resolve, Source};
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use percent_encoding::percent_decode_str;

use super::{Ctx, blocking, id_param};
use crate::auth::{Credential, Need, Routes};
use crate::blobs::OpenBlob;
use crate::delivery::{Plan, Representation, body_of};
use crate::error::{ApiError, ApiResult};
use crate::lookups::LookupKey;
use crate::model::BlobRef;
use crate::resolve::StoreResolver;
use crate::time::Timestamp;
use crate::verdicts::{Verdict, Verdicts};

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

/// The `:id` segment of a raw path, decoded once (the router's decoding).
fn project_param(raw: Option<&str>) -> String {
    percent_decode_str(raw.unwrap_or("")).decode_utf8_lossy().into_owned()
}

/// Resolves `job` in project `id` to its live archive, for the caller of `ctx`.
fn archive_of(ctx: &Ctx, id: &str, job: &JobRef) -> ApiResult<BlobRef> {
    let access = ctx.access(Routes::Artifacts, id)?;
    access.require(Need::Read)?;
    let resolver = StoreResolver { store: &*ctx.state.inner.store, now: Timestamp::now() };
    let resolved = resolver.resolve(&access.project, job)?.ok_or(ApiError::NotFound("Not found"))?;
    resolved.archive.ok_or(ApiError::NotFound("Not found"))
}

async fn archive(ctx: Ctx, id: String, job: JobRef) -> ApiResult<Response> {
    let (head, req) = (ctx.head, ctx.headers.clone());
    let (blob, key) = blocking(move || {
        let archive = archive_of(&ctx, &id, &job)?;
        let blob = ctx.state.inner.blobs.open(&archive.key).map_err(ApiError::internal)?;
        Ok((blob, archive.key))
    })
    .await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip"),
    );
    let rep = Representation {
        len: blob.source.len(),
        etag: etag_of(&key),
        last_modified: Some(blob.modified),
        headers,
        ranges: true,
    };
    deliver_blob(&rep, &req, head, blob.source)
}

/// 5: `GET /projects/:id/jobs/:job_id/artifacts`.
pub(crate) async fn archive_by_id(ctx: Ctx, Path((id, job_id)): Path<(String, String)>) -> ApiResult<Response> {
    let job_id = id_param(&job_id, "job_id")?;
    archive(ctx, id, JobRef::Id(job_id as u64)).await
}

/// 7: `GET /projects/:id/jobs/:job_id/artifacts/*artifact_path`. The path is taken from the
/// raw URL and decoded once here, so that bytes that are not UTF-8 get the path rule's 400.
pub(crate) async fn entry_by_id(ctx: Ctx) -> ApiResult<Response> {
    // /api/v4/projects/:id/jobs/:job_id/artifacts/<path...>
    let raw: Vec<&str> = ctx.raw_path.split('/').collect();
    let id = project_param(raw.get(4).copied());
    let job_id = id_param(raw.get(6).copied().unwrap_or(""), "job_id")?;
    let path = raw.get(8..).map(|s| s.join("/")).unwrap_or_default();
    entry(ctx, id, JobRef::Id(job_id as u64), &path).await
}

/// 6 and 8: `GET /projects/:id/jobs/artifacts/:ref_name/download?job=NAME` and
/// `.../:ref_name/raw/*artifact_path?job=NAME`. `ref_name` may hold raw `/`s, so the raw
/// path is split here: a last segment `download` is the archive (GitLab's route order);
/// otherwise the first `raw` segment ends the ref.
pub(crate) async fn by_ref(ctx: Ctx) -> ApiResult<Response> {
    let id = project_param(ctx.raw_path.split('/').nth(4));
    // /api/v4/projects/:id/jobs/artifacts/<ref...>/(download | raw/<path...>)
    let raw: Vec<String> = ctx.raw_path.split('/').skip(7).map(str::to_owned).collect();
    let decode = |segs: &[String]| percent_decode_str(&segs.join("/")).decode_utf8_lossy().into_owned();
    let job = || -> ApiResult<String> {
        match ctx.query.get("job") {
            Some(j) if !j.is_empty() => Ok(j.to_owned()),
            _ => Err(ApiError::InvalidParam("job is missing".into())),
        }
    };
    if raw.len() >= 2 && raw.last().map(String::as_str) == Some("download") {
        let ref_name = decode(&raw[..raw.len() - 1]);
        let job = JobRef::Latest { ref_name, job: job()? };
        return archive(ctx, id, job).await;
    }
    if let Some(at) = raw.iter().skip(1).position(|s| s == "raw").map(|p| p + 1) {
        let ref_name = decode(&raw[..at]);
        let path = raw[at + 1..].join("/");
        let job = JobRef::Latest { ref_name, job: job()? };
        return entry(ctx, id, job, &path).await;
    }
    Err(ApiError::NotFound("Not Found"))
}

/// `Content-Type` by extension, from Go's built-in table as Workhorse uses it.
fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "avif" => "image/avif",
        "css" => "text/css; charset=utf-8",
        "gif" => "image/gif",
        "htm" | "html" => "text/html; charset=utf-8",
        "jpeg" | "jpg" => "image/jpeg",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        "webp" => "image/webp",
        "xml" => "text/xml; charset=utf-8",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

/// `attachment; filename="<basename>"` with quotes and backslashes escaped, and RFC 5987's
/// `filename*` for names that are not ASCII.
fn disposition(basename: &str) -> ApiResult<HeaderValue> {
    let escaped: String = basename
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let mut value = format!("attachment; filename=\"{escaped}\"");
    if !basename.is_ascii() {
        let enc = percent_encoding::utf8_percent_encode(basename, percent_encoding::NON_ALPHANUMERIC);
        value.push_str(&format!("; filename*=UTF-8''{enc}"));
    }
    HeaderValue::from_bytes(value.as_bytes()).map_err(ApiError::internal)
}

fn accepts_gzip(req: &HeaderMap) -> bool {
    req.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q_zero = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
        });
        (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")) && !q_zero
    })
}

/// What one entry request turned into, decided in one trip to the blocking pool.
enum EntryAnswer {
    NotModified(Representation),
    /// A small body, read (and verified) before the headers go out.
    Inline(Representation, Option<(u64, u64)>, Bytes),
    Head(Representation, Option<(u64, u64)>),
    Full(Representation, EntryReader),
    Gzip(Representation, EntryReader),
    Window(Representation, (u64, u64), Box<dyn Read + Send>),
    /// A range of a deflated entry: inflate and drop up to the start (in steps that stop
    /// when the client goes away), then the range.
    Skip(Representation, (u64, u64), EntryReader),
}

async fn entry(ctx: Ctx, id: String, job: JobRef, raw_path: &str) -> ApiResult<Response> {
    let decoded: Vec<u8> = percent_decode_str(raw_path).collect();
    let path =
        ArtifactPath::new(&decoded).map_err(|e| ApiError::InvalidParam(format!("artifact_path is invalid: {e}")))?;
    let key = LookupKey::new(Credential::digest(ctx.credential.as_ref()), &id, &job);
    let shared = ctx.state.inner.clone();
    // The hot path: a look-up remembered, its archive open and indexed. No query and no
    // trip to the blocking pool; the entry's few bytes come from the page cache.
    if let Some(key) = &key
        && let Some(archive_ref) = shared.lookups.archive(key)
        && let Some(blob) = shared.lookups.file(&archive_ref.key)
        && let Some((index, verdicts)) = shared.indexes.get(&archive_ref.key)
        && let Some(answer) = answer_entry(&ctx, &archive_ref, blob, index, &verdicts, &path, false)?
    {
        return Ok(respond(answer));
    }
    let answer = blocking(move || {
        let generation = shared.lookups.generation();
        let archive_ref = archive_of(&ctx, &id, &job)?;
        if let Some(key) = key {
            shared.lookups.remember(key, archive_ref.clone(), generation);
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
                let verdicts = Verdicts::load(&*shared.blobs, &archive_ref.key)?;
                Ok((archive.index()?, Arc::new(verdicts)))
            })
            .map_err(ApiError::internal)?;
        answer_entry(&ctx, &archive_ref, blob, index, &verdicts, &path, true)
    })
    .await?;
    // Always an answer when blocking was allowed.
    answer.map(respond).ok_or_else(|| ApiError::internal("an entry was left unverified"))
}

/// Finds the entry and decides the answer: verdict, validators, encoding, range, and the
/// body (read here when small). An entry that did not verify is a 500 before anything else
/// is looked at, so no face of it (`HEAD`, 304, a range, gzip) answers 2xx. `None`: the
/// entry is not verified yet and `may_block` is false; ask again from the blocking pool.
fn answer_entry(
    ctx: &Ctx,
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
    answer_verified(ctx, archive_ref, &blob, &archive, entry, path).map(Some)
}

/// [`answer_entry`] for an entry whose bytes verified.
fn answer_verified(
    ctx: &Ctx,
    archive_ref: &BlobRef,
    blob: &OpenBlob,
    archive: &Archive<Arc<dyn Source>>,
    entry: Entry,
    path: &ArtifactPath,
) -> ApiResult<EntryAnswer> {
    let deflated = entry.method() == 8;
    let identity_tag =
        format!("\"{}-{:08x}-{}\"", etag_of(&archive_ref.key).trim_matches('"'), entry.crc32(), entry.size());
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path.file_name())));
    headers.insert(header::CONTENT_DISPOSITION, disposition(path.file_name())?);
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
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
    // Which representation: gzip passthrough for a client that takes it and asks for the
    // whole entry, unless it names the identity tag in If-Match. The preconditions are then
    // evaluated against the one chosen.
    let selection = identity.plan_after_preconditions(&ctx.headers);
    let wants_identity = ctx
        .headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|list| list.split(',').any(|t| t.trim() == identity.etag));
    let gzip = deflated && matches!(selection, Ok(Plan::Full)) && !wants_identity && accepts_gzip(&ctx.headers);
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let rep = Representation {
            len: GZIP_HEADER.len() as u64 + entry.compressed_size() + 8,
            etag: format!("{}-gz\"", identity_tag.trim_end_matches('"')),
            last_modified: Some(blob.modified),
            headers,
            ranges: false,
        };
        if rep.plan(&ctx.headers)? == Plan::NotModified {
            return Ok(EntryAnswer::NotModified(rep));
        }
        if ctx.head {
            return Ok(EntryAnswer::Head(rep, None));
        }
        let reader = archive.reader(&entry).map_err(ApiError::internal)?;
        if rep.len <= INLINE_MAX {
            let body = gzip_member(reader).map_err(ApiError::internal)?;
            return Ok(EntryAnswer::Inline(rep, None, body));
        }
        return Ok(EntryAnswer::Gzip(rep, reader));
    }
    identity.preconditions(&ctx.headers)?;
    let window = match selection? {
        Plan::NotModified => return Ok(EntryAnswer::NotModified(identity)),
        Plan::Partial(r) if r.len() == 1 && r[0] != (0, entry.size()) => Some(r[0]),
        // Several ranges of one entry: the whole entry (RFC 9110 allows ignoring Range).
        Plan::Partial(_) | Plan::Full => None,
    };
    if ctx.head {
        return Ok(EntryAnswer::Head(identity, window));
    }
    let mut reader = archive.reader(&entry).map_err(ApiError::internal)?;
    if window.is_none() && entry.size() <= INLINE_MAX {
        // Small entries are read and their CRC checked before the headers go out.
        let mut body = Vec::with_capacity(entry.size() as usize);
        reader.read_to_end(&mut body).map_err(ApiError::internal)?;
        return Ok(EntryAnswer::Inline(identity, None, Bytes::from(body)));
    }
    Ok(match window {
        None => EntryAnswer::Full(identity, reader),
        Some((s, e)) if !deflated => {
            let data = archive.source().read_stream(reader.data_offset() + s, e - s).map_err(ApiError::internal)?;
            EntryAnswer::Window(identity, (s, e), Box::new(data))
        }
        Some((s, e)) => EntryAnswer::Skip(identity, (s, e), reader),
    })
}

fn respond(answer: EntryAnswer) -> Response {
    match answer {
        EntryAnswer::NotModified(rep) => rep.not_modified(),
        EntryAnswer::Inline(rep, None, body) => rep.full(Some(Body::from(body))),
        EntryAnswer::Inline(rep, Some(w), body) => rep.partial(w, Some(Body::from(body))),
        EntryAnswer::Head(rep, None) => rep.full(None),
        EntryAnswer::Head(rep, Some(w)) => rep.partial(w, None),
        EntryAnswer::Full(rep, reader) => rep.full(Some(Body::from_stream(artifact_core::stream_entry(reader)))),
        EntryAnswer::Gzip(rep, reader) => {
            let (crc, size) = (reader.entry().crc32(), reader.entry().size());
            let csize = reader.entry().compressed_size();
            let trailer = gzip_trailer(crc, size).to_vec();
            let head = futures_util::stream::once(std::future::ready(Ok(Bytes::from_static(&GZIP_HEADER))));
            let data = artifact_core::stream_window(reader.into_compressed(), 0, csize);
            let tail = futures_util::stream::once(std::future::ready(Ok(Bytes::from(trailer))));
            rep.full(Some(Body::from_stream(head.chain(data).chain(tail))))
        }
        EntryAnswer::Window(rep, (s, e), reader) => rep.partial((s, e), Some(body_of(reader, e - s))),
        EntryAnswer::Skip(rep, (s, e), reader) => {
            rep.partial((s, e), Some(Body::from_stream(artifact_core::stream_window(reader, s, e - s))))
        }
    }
}

/// A gzip member header (RFC 1952): deflate, no flags, no time, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Bodies up to this size are read before the headers are sent: one trip to the blocking
/// pool per request, and a bad entry is a 500 instead of an aborted body.
const INLINE_MAX: u64 = 64 * 1024;

/// The gzip trailer (RFC 1952): CRC-32 and size modulo 2^32, little-endian.
fn gzip_trailer(crc: u32, size: u64) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&crc.to_le_bytes());
    t[4..].copy_from_slice(&(size as u32).to_le_bytes());
    t
}

/// A whole gzip member around the entry's raw deflate bytes, in memory.
fn gzip_member(reader: EntryReader) -> std::io::Result<Bytes> {
    let (crc, size, csize) = (reader.entry().crc32(), reader.entry().size(), reader.entry().compressed_size());
    let mut out = Vec::with_capacity(GZIP_HEADER.len() + csize as usize + 8);
    out.extend_from_slice(&GZIP_HEADER);
    // The compressed reader ends with an error, never early, and never runs past the entry.
    reader.into_compressed().read_to_end(&mut out)?;
    out.extend_from_slice(&gzip_trailer(crc, size));
    Ok(Bytes::from(out))
}
