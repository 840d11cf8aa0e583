//! What the pages list: who asks, a directory's rows, the listing kept per archive, a
//! folder's children, the job list's rows.

use axum::http::HeaderMap;

use crate::credentials::{CREDENTIAL_HEADERS, Credential};
use crate::error::{ApiError, ApiResult};
use crate::query::Query;

/// Rows of a directory page.
pub const PER_PAGE: usize = 500;

/// Jobs a page of the job list shows.
pub const JOBS_PER_PAGE: u64 = 50;

/// The most text a file's page shows; a longer file shows its start.
pub const SHOW_MAX: usize = 1 << 20;

/// The largest text file a page shows (the start of): it is read whole first, so that
/// what is shown is verified.
pub const VERIFY_MAX: u64 = 32 << 20;

/// How much of a file of unknown type is looked at to tell text from binary.
pub(super) const SNIFF: usize = 8 << 10;

/// Whose request a page reads with: the request's own headers (a credential it presents)
/// and query (tokens in it), or the credential of its session or grant; and whether it is
/// a `HEAD`.
#[derive(Clone)]
pub struct Who {
    /// The request's headers (its credentials, conditions, ranges and encodings; never its
    /// cookie).
    pub headers: HeaderMap,
    /// The request's query (a token in it is a credential, as for the API).
    pub query: Query,
    /// The session's or the grant's credential, which the request itself does not carry.
    pub credential: Option<Credential>,
    /// Whether the request is a `HEAD`.
    pub head: bool,
}

/// Without the credential or the headers' values (they may carry tokens).
impl std::fmt::Debug for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Who")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("credential", &self.credential.as_ref().map(|_| ".."))
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl Who {
    /// Only the credentials: for reading a file a page shows, without the request's own
    /// conditions, ranges or encodings.
    pub(super) fn bare(&self) -> Who {
        let mut headers = HeaderMap::new();
        for name in CREDENTIAL_HEADERS {
            if let Some(value) = self.headers.get(name) {
                headers.insert(name, value.clone());
            }
        }
        Who { headers, query: self.query.clone(), credential: self.credential.clone(), head: false }
    }

    /// The request's headers with `credential` as its only credential (a grant's).
    pub(super) fn with_credential(&self, credential: Credential) -> Who {
        let mut headers = self.headers.clone();
        for name in CREDENTIAL_HEADERS {
            headers.remove(name);
        }
        Who { headers, query: Query::parse(None), credential: Some(credential), head: self.head }
    }
}

/// One row of a directory: a name within it, whether a folder, size and time.
#[derive(Debug, Clone)]
pub struct Row {
    /// The name within the directory (a folder's without its `/`).
    pub name: String,
    /// Whether it is a folder.
    pub folder: bool,
    /// A file's size in bytes.
    pub size: Option<u64>,
    /// When it was last changed (Unix seconds).
    pub modified: Option<i64>,
}

/// What a page of a job's artifacts says of the job at its head, as GitLab's own
/// artifacts page does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobHead {
    /// The job's name.
    pub name: String,
    /// Its id.
    pub id: i64,
    /// Its status, as the API writes it (`success`, `failed`, ...).
    pub status: String,
    /// Its pipeline's branch or tag.
    pub ref_name: String,
    /// Its pipeline's id.
    pub pipeline: i64,
    /// When its artifacts go.
    pub expiry: Expiry,
}

/// When a job's artifacts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    /// At this time (for people, to the minute, UTC: [`minutes`](super::minutes)).
    At(String),
    /// Their expiry passed, but they are kept: the latest successful artifacts of their
    /// ref, until newer ones replace them.
    Kept,
    /// Never: no expiry was set.
    Never,
}

/// One page of a directory.
#[derive(Debug)]
pub struct Directory {
    /// `""` or ending in `/`.
    pub dir: String,
    /// This page's rows: folders first, then files, by name.
    pub rows: Vec<Row>,
    /// This page's number, from 1.
    pub page: usize,
    /// The number of pages.
    pub pages: usize,
    /// The archive's size in bytes, when known.
    pub archive_size: Option<u64>,
}

/// The paths of an archive as the pages and the tree API list them (a folder ends in `/`),
/// each with its size, time and permission bits; the paths in one buffer (one allocation,
/// not one per path).
#[derive(Debug, Default)]
pub struct Listed {
    text: String,
    rows: Vec<ListedRow>,
}

/// One path of a [`Listed`]: where in its text, and what is known of it.
#[derive(Debug, Clone, Copy)]
struct ListedRow {
    start: usize,
    end: usize,
    size: Option<u64>,
    modified: Option<i64>,
    mode: Option<u32>,
}

impl Listed {
    /// Adds a path (a folder's ending in `/`), with what is known of it: a file's size and
    /// when it was changed (Unix seconds).
    pub fn push(&mut self, path: &str, size: Option<u64>, modified: Option<i64>) {
        self.push_with_mode(path, size, modified, None);
    }

    /// Like [`push`](Self::push), with the path's permission bits (`0o644`; the rest are
    /// ignored): the tree API tells executable files by them.
    pub fn push_with_mode(&mut self, path: &str, size: Option<u64>, modified: Option<i64>, mode: Option<u32>) {
        let start = self.text.len();
        self.text.push_str(path);
        self.rows.push(ListedRow { start, end: self.text.len(), size, modified, mode: mode.map(|m| m & 0o777) });
    }

    /// The number of paths.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is no path.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, Option<u64>, Option<i64>)> {
        self.rows.iter().map(|r| (&self.text[r.start..r.end], r.size, r.modified))
    }

    /// Path `at` (in the order pushed), its size and its permission bits.
    pub(crate) fn at(&self, at: usize) -> (&str, Option<u64>, Option<u32>) {
        let r = &self.rows[at];
        (&self.text[r.start..r.end], r.size, r.mode)
    }

    /// Every path with its index (for [`at`](Self::at)).
    pub(crate) fn paths(&self) -> impl Iterator<Item = (usize, &str)> {
        self.rows.iter().enumerate().map(|(i, r)| (i, &self.text[r.start..r.end]))
    }
}

/// Archives whose listed paths are kept.
pub(super) const TREES_KEPT: usize = 4;

/// The listed paths of the archives whose folders were shown last, by a key that names one
/// version of one archive: a page then costs a pass over them, not the reading (or
/// building) of the whole list again.
#[derive(Debug)]
pub struct Trees<K>(std::sync::Mutex<std::collections::VecDeque<(K, std::sync::Arc<Listed>)>>);

impl<K> Default for Trees<K> {
    fn default() -> Trees<K> {
        Trees(Default::default())
    }
}

impl<K: PartialEq> Trees<K> {
    /// The paths kept for `key`, else made by `make` (and kept, dropping the least recently
    /// shown past the last four).
    pub fn of(&self, key: K, make: impl FnOnce() -> ApiResult<Listed>) -> ApiResult<std::sync::Arc<Listed>> {
        {
            let mut trees = self.0.lock().unwrap_or_else(|p| p.into_inner());
            // The most recently shown first.
            if let Some(at) = trees.iter().position(|(k, _)| *k == key)
                && let Some(kept) = trees.remove(at)
            {
                let tree = kept.1.clone();
                trees.push_front(kept);
                return Ok(tree);
            }
        }
        let tree = std::sync::Arc::new(make()?);
        let mut trees = self.0.lock().unwrap_or_else(|p| p.into_inner());
        trees.push_front((key, tree.clone()));
        trees.truncate(TREES_KEPT);
        Ok(tree)
    }
}

/// Gathers a directory's rows from every path of an archive (in any order).
#[derive(Debug)]
pub struct Children {
    pub(super) dir: String,
    pub(super) exists: bool,
    pub(super) rows: Vec<Row>,
}

impl Children {
    /// The children of `dir` (`""` or ending in `/`).
    pub fn of(dir: &str) -> Children {
        Children { dir: dir.to_owned(), exists: dir.is_empty(), rows: Vec::new() }
    }

    /// One path of the archive (a folder ends in `/`).
    pub fn offer(&mut self, path: &str, size: Option<u64>, modified: Option<i64>) {
        self.exists |= path == self.dir;
        if artifact_core::metadata::is_child_of(path, &self.dir) {
            let folder = path.ends_with('/');
            let name = path[self.dir.len()..].trim_end_matches('/').to_owned();
            self.rows.push(Row { name, folder, size, modified });
        }
    }

    /// Every path of `listed`.
    pub fn with(mut self, listed: &Listed) -> Children {
        for (path, size, modified) in listed.iter() {
            self.offer(path, size, modified);
        }
        self
    }

    /// Page `page` (from 1; past the last is the last): folders first, then by name.
    /// `NotFound` if the directory is not in the archive.
    pub fn page(mut self, page: usize, archive_size: Option<u64>) -> ApiResult<Directory> {
        if !self.exists {
            return Err(ApiError::NotFound("Not found"));
        }
        self.rows.sort_by(|a, b| b.folder.cmp(&a.folder).then_with(|| a.name.cmp(&b.name)));
        let pages = self.rows.len().div_ceil(PER_PAGE).max(1);
        let page = page.clamp(1, pages);
        let rows = self.rows.into_iter().skip((page - 1) * PER_PAGE).take(PER_PAGE).collect();
        Ok(Directory { dir: self.dir, rows, page, pages, archive_size })
    }
}

/// One job of a job list.
#[derive(Debug, Clone)]
pub struct JobRow {
    /// The job's id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its stage.
    pub stage: String,
    /// Its pipeline's branch or tag.
    pub ref_name: String,
    /// Its pipeline's id.
    pub pipeline: i64,
    /// Its status, as the API writes it (`success`, `failed`, ...).
    pub status: String,
    /// When it finished, for people (`minutes`).
    pub finished: Option<String>,
    /// Whether it has an archive to browse.
    pub browsable: bool,
}

/// One page of a job list.
#[derive(Debug)]
pub struct JobList {
    /// The project's full path, as shown.
    pub project: String,
    /// This page's jobs.
    pub rows: Vec<JobRow>,
    /// The number of pages.
    pub pages: u64,
}
