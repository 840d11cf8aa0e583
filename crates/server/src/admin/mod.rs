//! Putting data in: users, tokens, projects, members, and jobs with their artifacts and
//! logs (`artifact admin` and `artifact import`). Everything goes through the [`Store`] and
//! [`Blobs`] traits, so it works while a server runs on the same data directory.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime};

use artifact_core::{Archive, FileSource, Verification, VerifyOptions};
use serde_json::Value;

use crate::blobs::{BlobKind, Blobs, new_key, parse_key};
use crate::entities::Render;
use crate::error::Error;
use crate::ids::random_hex;
use crate::model::{BlobRef, Job, JobKind, PersonalToken, Pipeline, Project, Role, Scope, Status, User, When};
use crate::routes::jobs::Related;
use crate::store::{NewPipeline, ProjectRef, Store, TokenDigest};
use crate::time::{Timestamp, parse_duration};

/// Administration over a store and blobs. `base` is the external URL used in the JSON it
/// prints (e.g. `http://127.0.0.1:8080`).
#[derive(Debug, Clone)]
pub struct Admin {
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
    base: String,
}

/// A job to import (`artifact import`).
#[derive(Debug, Clone)]
pub struct ImportJob {
    /// Project full path.
    pub project: String,
    /// Branch or tag.
    pub ref_name: String,
    /// Job name.
    pub name: String,
    /// Stage (default `test`).
    pub stage: String,
    /// Status (default success).
    pub status: Status,
    /// `when` (default on_success).
    pub when: When,
    /// Add to this pipeline instead of making a new one.
    pub pipeline: Option<i64>,
    /// A new pipeline is a child of this one.
    pub parent_pipeline: Option<i64>,
    /// Commit (default: random).
    pub sha: Option<String>,
    /// `ref_name` is a tag.
    pub tag: bool,
    /// The artifacts zip.
    pub artifacts: Option<PathBuf>,
    /// The log.
    pub trace: Option<PathBuf>,
    /// `expire_in`, e.g. `1 week`.
    pub expire_in: Option<String>,
    /// Runs as this user.
    pub user: Option<String>,
    /// May fail without failing the pipeline.
    pub allow_failure: bool,
    /// A bridge (trigger job) instead of a build.
    pub bridge: bool,
    /// The bridge's downstream pipeline.
    pub downstream: Option<i64>,
    /// Counts the archive's compressed bytes as they are verified (for a progress bar; the
    /// total is the sum of the entries' compressed sizes).
    pub progress: Option<Arc<AtomicU64>>,
}

/// What [`Admin::import`] made.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The job as the API shows it, plus `token` when it is running.
    pub job: Value,
    /// The outcome of verifying the archive, if there was one: the entries refused will
    /// answer 500, the others serve.
    pub verification: Option<Verification>,
}

impl ImportJob {
    /// A successful `test` job named `name` on `ref_name`, nothing attached.
    pub fn new(project: &str, ref_name: &str, name: &str) -> ImportJob {
        ImportJob {
            project: project.into(),
            ref_name: ref_name.into(),
            name: name.into(),
            stage: "test".into(),
            status: Status::Success,
            when: When::OnSuccess,
            pipeline: None,
            parent_pipeline: None,
            sha: None,
            tag: false,
            artifacts: None,
            trace: None,
            expire_in: None,
            user: None,
            allow_failure: false,
            bridge: false,
            downstream: None,
            progress: None,
        }
    }
}

/// How often an import renews the leases on the blobs it is writing.
pub const LEASE_RENEWAL: Duration = Duration::from_secs(2);

/// The shortest grace period [`Admin::gc`] accepts: five lease renewals, so that the lease
/// of an import that is running is never taken for stale.
pub const MIN_GC_GRACE: Duration = Duration::from_secs(10);

/// What [`Admin::gc`] removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Collected {
    /// Blobs no job refers to, by key.
    pub blobs: Vec<String>,
    /// Temporary files of writes that never finished.
    pub leftovers: Vec<String>,
    /// Verification outcomes kept for archives no job refers to.
    pub verifications: Vec<String>,
    /// Stale leases given up whose blobs were never written (or are gone).
    pub leases: Vec<String>,
    /// Bytes the removed blobs and leftovers held.
    pub bytes: u64,
    /// Blobs no job refers to that were kept: an import holds a live lease on them, or
    /// they are younger than the grace period.
    pub kept: u64,
}

/// The key whose lease and references decide over the blob `key`: the archive's for a
/// blob kept beside an archive, else its own.
fn owner_of(key: &str) -> String {
    match parse_key(key) {
        Some((kind, name)) if kind.rewritable() => format!("{}/{name}", BlobKind::Archive.folder()),
        _ => key.to_owned(),
    }
}

/// A personal access token named for [`Admin::revoke_token`].
#[derive(Debug, Clone, Copy)]
pub enum TokenRef<'a> {
    /// By its numeric id.
    Id(i64),
    /// By the token itself.
    Token(&'a str),
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

/// A new secret token: 20 random bytes, hex, with GitLab's personal-token prefix.
fn new_token(prefix: &str) -> Result<String, Error> {
    let a = random_hex().map_err(Error::io("generating a token"))?;
    let b = random_hex().map_err(Error::io("generating a token"))?;
    Ok(format!("{prefix}{}{}", a, &b[..8]))
}

impl Admin {
    /// Administration over `store` and `blobs`.
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn Blobs>, base: &str) -> Admin {
        Admin { store, blobs, base: base.trim_end_matches('/').to_owned() }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn render(&self) -> Render<'_> {
        Render { base: &self.base, now: Timestamp::now() }
    }

    fn user_named(&self, name: &str) -> Result<User, Error> {
        self.store.user_by_username(name)?.ok_or_else(|| invalid(format!("no user named {name}")))
    }

    fn project_at(&self, path: &str) -> Result<Project, Error> {
        self.store.project(&ProjectRef::Path(path.to_owned()))?.ok_or_else(|| invalid(format!("no project {path}")))
    }

    /// Adds a user; returns it as the API shows it.
    pub fn add_user(&self, username: &str, admin: bool) -> Result<Value, Error> {
        let valid = !username.is_empty()
            && username.len() <= 255
            && username.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid {
            return Err(invalid(format!("invalid username {username:?}: use letters, digits, '_', '.' and '-'")));
        }
        let user = self.store.create_user(username, username, admin)?;
        Ok(self.render().current_user(&user))
    }

    /// Adds a personal access token with the `api` scope and no expiry for a user; returns
    /// the token (shown only once).
    pub fn add_token(&self, username: &str) -> Result<String, Error> {
        Ok(self.add_token_with(username, &[Scope::Api], None)?.0)
    }

    /// Adds a personal access token for a user with `scopes` (at least one) and the day it
    /// expires (`YYYY-MM-DD`: it works through the day before); returns the token (shown
    /// only once) and its record.
    pub fn add_token_with(
        &self,
        username: &str,
        scopes: &[Scope],
        expires_at: Option<&str>,
    ) -> Result<(String, PersonalToken), Error> {
        let user = self.user_named(username)?;
        if scopes.is_empty() {
            return Err(invalid("a token needs at least one scope: api, read_api or sudo"));
        }
        let mut unique: Vec<Scope> = Vec::new();
        for scope in scopes {
            if !unique.contains(scope) {
                unique.push(*scope);
            }
        }
        let expires_at = match expires_at {
            Some(day) => Some(
                crate::time::parse_day(day)
                    .ok_or_else(|| invalid(format!("invalid expiry date {day:?}: use YYYY-MM-DD")))?,
            ),
            None => None,
        };
        let token = new_token("glpat-")?;
        let record = self.store.create_token(user.id, &TokenDigest::of(&token), &unique, expires_at.as_deref())?;
        Ok((token, record))
    }

    /// Revokes a personal access token, named by the token itself or by its numeric id;
    /// returns its record. Revoking one that is already revoked is an error.
    pub fn revoke_token(&self, which: TokenRef<'_>) -> Result<PersonalToken, Error> {
        let record = match which {
            TokenRef::Id(id) => self.store.personal_token_by_id(id)?,
            TokenRef::Token(token) => self.store.personal_token(&TokenDigest::of(token))?.map(|(t, _)| t),
        };
        let record = record.ok_or_else(|| invalid("no such token"))?;
        if !self.store.revoke_token(record.id)? {
            return Err(invalid(format!("token {} is already revoked", record.id)));
        }
        Ok(PersonalToken { revoked: true, ..record })
    }

    /// Adds a project; returns it as the API shows it.
    pub fn add_project(&self, full_path: &str, public: bool) -> Result<Value, Error> {
        let valid = !full_path.is_empty()
            && full_path.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            });
        if !valid || full_path.parse::<i64>().is_ok() {
            return Err(invalid(format!("invalid project path {full_path:?}: use group/name")));
        }
        let project = self.store.create_project(full_path, public)?;
        Ok(self.render().project(&project, true))
    }

    /// Changes a project's settings (each one given); returns it as the API shows it.
    /// `keep_latest_artifact`: GitLab's "Keep artifacts from most recent successful jobs".
    pub fn set_project(&self, full_path: &str, keep_latest_artifact: Option<bool>) -> Result<Value, Error> {
        let mut project = self.project_at(full_path)?;
        if let Some(keep) = keep_latest_artifact {
            if !self.store.set_keep_latest_artifact(project.id, keep)? {
                return Err(invalid(format!("no project {full_path:?}")));
            }
            project.keep_latest_artifact = keep;
        }
        Ok(self.render().project(&project, true))
    }

    /// Gives a user a role in a project (or changes it).
    pub fn add_member(&self, full_path: &str, username: &str, role: &str) -> Result<(), Error> {
        let role = Role::parse(role).ok_or_else(|| {
            invalid(format!("unknown role {role:?}: guest, reporter, developer, maintainer or owner"))
        })?;
        let project = self.project_at(full_path)?;
        let user = self.user_named(username)?;
        Ok(self.store.set_member(project.id, user.id, role)?)
    }

    /// Stores a file as a blob under `key`, reading it from the start.
    fn put_file(&self, key: &str, file: &mut File) -> Result<BlobRef, Error> {
        file.rewind().map_err(Error::io("rewinding"))?;
        self.blobs.put_at(key, &mut BufReader::new(file)).map_err(Error::io("storing a blob"))
    }

    /// A fresh key for a `kind` blob, leased before anything is written under it (the
    /// lease goes in `leases`, renewed until the job is stored).
    fn leased_key(&self, kind: BlobKind, leases: &Mutex<Vec<String>>) -> Result<String, Error> {
        let key = new_key(kind).map_err(Error::io("naming a blob"))?;
        self.store.lease_blobs(std::slice::from_ref(&key), Timestamp::now().0)?;
        leases.lock().unwrap_or_else(|p| p.into_inner()).push(key.clone());
        Ok(key)
    }

    /// Verifies and stores an artifacts archive and its generated `metadata.gz`, and returns
    /// the verification's outcome (kept by the store with the job). Refused whole only when its central
    /// directory cannot be read; damaged entries are refused one by one.
    fn put_artifacts(
        &self,
        path: &std::path::Path,
        progress: Option<Arc<AtomicU64>>,
        leases: &Mutex<Vec<String>>,
        stored: &mut Vec<String>,
    ) -> Result<(BlobRef, BlobRef, Verification), Error> {
        let shown = path.display().to_string();
        let mut file = File::open(path).map_err(Error::io(format!("opening {shown}")))?;
        let source = FileSource::new(file.try_clone().map_err(Error::io(format!("opening {shown}")))?)
            .map_err(Error::io(format!("reading {shown}")))?;
        let bad = |source| Error::BadArchive { path: shown.clone(), source };
        let archive = Archive::open(source).map_err(bad)?;
        let entries = archive.entries().collect::<Result<Vec<_>, _>>().map_err(bad)?;
        let mut options = VerifyOptions::new().checkpoints(artifact_core::checkpoints::DEFAULT_SPACING);
        if let Some(progress) = progress {
            options = options.progress(progress);
        }
        let (verification, checkpoints) =
            artifact_core::verify_with_checkpoints(&archive, &options).map_err(|e| match e {
                artifact_core::Error::Io(e) => Error::io(format!("reading {shown}"))(e),
                e => bad(e),
            })?;
        let metadata =
            artifact_core::metadata::generate(&entries, Vec::new()).map_err(Error::io("generating metadata.gz"))?;
        let key = self.leased_key(BlobKind::Archive, leases)?;
        stored.push(key.clone());
        let archive_blob = self.put_file(&key, &mut file)?;
        if !checkpoints.entries.is_empty() {
            let encoded = checkpoints.encode();
            let side = self
                .blobs
                .put_beside(&archive_blob.key, BlobKind::Checkpoints, &mut encoded.as_slice())
                .map_err(Error::io("storing the checkpoints"))?;
            stored.push(side.key);
        }
        let key = self.leased_key(BlobKind::Metadata, leases)?;
        stored.push(key.clone());
        let metadata_blob =
            self.blobs.put_at(&key, &mut metadata.as_slice()).map_err(Error::io("storing metadata.gz"))?;
        Ok((archive_blob, metadata_blob, verification))
    }

    /// Imports a job: its archive verified entry by entry (see [`Imported`]), its log, and
    /// its pipeline. Nothing is stored if anything fails. The blobs are leased before they
    /// are written and the leases renewed every [`LEASE_RENEWAL`] until the job that refers
    /// to them is stored (which gives them up in the same transaction): a concurrent
    /// [`gc`](Self::gc) never takes them, and if this process is killed they are collected
    /// once their leases are stale.
    pub fn import(&self, req: &ImportJob) -> Result<Imported, Error> {
        let project = self.project_at(&req.project)?;
        let user = req.user.as_deref().map(|u| self.user_named(u)).transpose()?;
        let expire_at = match &req.expire_in {
            None => None,
            Some(text) => {
                let d = parse_duration(text).ok_or_else(|| invalid(format!("cannot read --expire-in {text:?}")))?;
                Some(Timestamp::now().plus(d))
            }
        };
        if req.bridge && req.artifacts.is_some() {
            return Err(invalid("a bridge has no artifacts"));
        }
        for p in [req.pipeline, req.parent_pipeline, req.downstream].into_iter().flatten() {
            match self.store.pipeline(p)? {
                Some(found) if found.project_id == project.id => {}
                _ => return Err(invalid(format!("no pipeline {p} in {}", req.project))),
            }
        }
        let mut stored: Vec<String> = Vec::new();
        let leases = Mutex::new(Vec::new());
        let (stop, stopped) = mpsc::channel::<()>();
        let result = std::thread::scope(|scope| {
            let leases = &leases;
            scope.spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(LEASE_RENEWAL) {
                    let keys = leases.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    if let Err(e) = self.store.lease_blobs(&keys, Timestamp::now().0) {
                        // Missed renewals are harmless while fewer than the grace period.
                        tracing::warn!(error = %e, "renewing the import's blob leases");
                    }
                }
            });
            let result = self.import_with_blobs(req, &project, user.as_ref(), expire_at, leases, &mut stored);
            drop(stop);
            result
        });
        if result.is_err() {
            for key in &stored {
                let _ = self.blobs.delete(key);
            }
            let keys = leases.into_inner().unwrap_or_else(|p| p.into_inner());
            let _ = self.store.release_blobs(&keys);
        }
        result
    }

    fn import_with_blobs(
        &self,
        req: &ImportJob,
        project: &Project,
        user: Option<&User>,
        expire_at: Option<Timestamp>,
        leases: &Mutex<Vec<String>>,
        stored: &mut Vec<String>,
    ) -> Result<Imported, Error> {
        let (archive, metadata, verification) = match &req.artifacts {
            Some(path) => {
                let (a, m, v) = self.put_artifacts(path, req.progress.clone(), leases, stored)?;
                (Some(a), Some(m), Some(v))
            }
            None => (None, None, None),
        };
        let trace = match &req.trace {
            Some(path) => {
                let mut f = File::open(path).map_err(Error::io(format!("opening {}", path.display())))?;
                let key = self.leased_key(BlobKind::Trace, leases)?;
                stored.push(key.clone());
                Some(self.put_file(&key, &mut f)?)
            }
            None => None,
        };
        // An existing pipeline, or a new one made in the transaction that stores the job.
        let (pipeline_id, new_pipeline) = match req.pipeline {
            Some(id) => {
                let pipeline: Pipeline =
                    self.store.pipeline(id)?.ok_or_else(|| invalid(format!("no pipeline {id}")))?;
                (pipeline.id, None)
            }
            None => {
                let sha = match &req.sha {
                    Some(s) => s.clone(),
                    None => format!(
                        "{}{}",
                        random_hex().map_err(Error::io("sha"))?,
                        &random_hex().map_err(Error::io("sha"))?[..8]
                    ),
                };
                let new = NewPipeline {
                    project_id: project.id,
                    ref_name: req.ref_name.clone(),
                    tag: req.tag,
                    sha,
                    source: if req.parent_pipeline.is_some() { "parent_pipeline" } else { "push" }.into(),
                    parent_id: req.parent_pipeline,
                    user_id: user.map(|u| u.id),
                };
                (0, Some(new))
            }
        };
        let now = Timestamp::now();
        let s = req.status;
        let queued = !matches!(s, Status::Created | Status::Manual | Status::Scheduled | Status::Skipped);
        let started = matches!(s, Status::Running | Status::Success | Status::Failed)
            || (s == Status::Canceled && archive.is_some());
        let job = Job {
            id: 0,
            project_id: project.id,
            pipeline_id,
            kind: if req.bridge { JobKind::Bridge } else { JobKind::Build },
            name: req.name.clone(),
            stage: req.stage.clone(),
            status: s,
            when: req.when,
            allow_failure: req.allow_failure,
            retried: false,
            coverage: None,
            failure_reason: (s == Status::Failed).then(|| "script_failure".to_owned()),
            user_id: user.map(|u| u.id),
            created_at: now,
            queued_at: queued.then_some(now),
            started_at: started.then_some(now),
            finished_at: s.is_finished().then_some(now),
            erased_at: None,
            erased_by: None,
            archive,
            metadata,
            trace,
            artifacts_expire_at: expire_at,
            tag_list: Vec::new(),
            downstream_pipeline_id: req.downstream,
            lock_version: 0,
        };
        let token = if s == Status::Running { Some(new_token("glcbt-")?) } else { None };
        // The outcome goes in first, so that the job is never seen without it.
        let kept = match (&job.archive, &verification) {
            (Some(archive), Some(verification)) => {
                let outcome = serde_json::to_string(verification).map_err(|e| Error::Invalid(e.to_string()))?;
                self.store.put_verification(&archive.key, &outcome)?;
                Some(archive.key.as_str())
            }
            _ => None,
        };
        let held = leases.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let digest = token.as_deref().map(TokenDigest::of);
        let job = match self.store.insert_imported_job(new_pipeline.as_ref(), &job, digest.as_ref(), &held) {
            Ok(job) => job,
            Err(e) => {
                if let Some(key) = kept {
                    let _ = self.store.delete_verification(key);
                }
                return Err(e.into());
            }
        };
        // The job refers to its blobs now (and its transaction gave their leases up):
        // whatever fails later must not delete them.
        stored.clear();
        leases.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let related = Related::load(&*self.store, std::slice::from_ref(&job), project)?;
        let mut value = related.render(&self.render(), &job, project).map_err(|e| invalid(format!("{e:?}")))?;
        if let (Some(token), Value::Object(m)) = (token, &mut value) {
            m.insert("token".into(), Value::String(token));
        }
        Ok(Imported { job: value, verification })
    }

    /// Removes what no job refers to and nothing is writing: blobs, temporary files of
    /// writes that never finished, verification outcomes of archives no job has, and
    /// stale leases, all older than `grace` (at least [`MIN_GC_GRACE`]). With `dry_run`,
    /// only says what it would remove.
    ///
    /// Never a blob a job refers to, nor one a running import is writing: the blobs are
    /// listed first, then the leases, then what the jobs refer to. An import leases a key
    /// before it writes it and gives the lease up in the transaction that stores the job,
    /// so every blob listed is seen leased or referred to until it is an orphan. A stale
    /// lease is taken over with a compare-and-set ([`Imports::claim_stale_lease`](crate::Imports::claim_stale_lease)) before
    /// its blob is deleted: if the import stored its job meanwhile, the claim fails and the
    /// blob stays; if the claim comes first, the import's job insert fails instead.
    pub fn gc(&self, grace: Duration, dry_run: bool) -> Result<Collected, Error> {
        if grace < MIN_GC_GRACE {
            return Err(invalid(format!(
                "--older-than must be at least {} s (imports renew their leases every {} s)",
                MIN_GC_GRACE.as_secs(),
                LEASE_RENEWAL.as_secs()
            )));
        }
        let cutoff = SystemTime::now() - grace;
        let stale_before = Timestamp::now().0 - i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let listed = self.blobs.list().map_err(Error::io("listing the blobs"))?;
        let leftovers = self.blobs.leftovers().map_err(Error::io("listing temporary files"))?;
        let leases: HashMap<String, i64> = self.store.blob_leases()?.into_iter().collect();
        let referenced = self.store.referenced_blobs()?;
        let mut collected = Collected::default();
        let mut claimed: HashSet<String> = HashSet::new();
        for blob in listed {
            let owner = owner_of(&blob.key);
            if referenced.contains(&owner) {
                continue;
            }
            let orphan = match leases.get(&owner) {
                _ if claimed.contains(&owner) => true,
                Some(&renewed) if renewed >= stale_before => false,
                Some(_) if dry_run => true,
                Some(_) => {
                    let taken = self.store.claim_stale_lease(&owner, stale_before)?;
                    if taken {
                        claimed.insert(owner.clone());
                    }
                    taken
                }
                None => blob.modified < cutoff,
            };
            if !orphan {
                collected.kept += 1;
                continue;
            }
            if !dry_run {
                self.blobs.delete(&blob.key).map_err(Error::io(format!("deleting {}", blob.key)))?;
            }
            collected.bytes += blob.size;
            collected.blobs.push(blob.key);
        }
        for leftover in leftovers.into_iter().filter(|l| l.modified < cutoff) {
            if !dry_run {
                self.blobs.remove_leftover(&leftover.key).map_err(Error::io(format!("deleting {}", leftover.key)))?;
            }
            collected.bytes += leftover.size;
            collected.leftovers.push(leftover.key);
        }
        let live =
            |key: &str| leases.get(key).is_some_and(|&renewed| renewed >= stale_before) && !claimed.contains(key);
        for key in self.store.verification_keys()? {
            if !referenced.contains(&key) && !live(&key) {
                if !dry_run {
                    self.store.delete_verification(&key)?;
                }
                collected.verifications.push(key);
            }
        }
        // Leases that went stale before their blob was written (or whose blob is gone).
        for (key, renewed) in &leases {
            if renewed < &stale_before
                && !claimed.contains(key)
                && (dry_run || self.store.claim_stale_lease(key, stale_before)?)
            {
                collected.leases.push(key.clone());
            }
        }
        for list in
            [&mut collected.blobs, &mut collected.leftovers, &mut collected.verifications, &mut collected.leases]
        {
            list.sort();
        }
        Ok(collected)
    }
}
