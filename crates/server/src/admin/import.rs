//! `artifact import`: a job with its artifacts and log, its blobs leased while they are
//! written and the job stored with them in one transaction.

use super::*;

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

impl Admin {
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
}
