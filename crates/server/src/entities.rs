//! GitLab's JSON for jobs, bridges, pipelines, commits, users and projects, with the field
//! sets of `docs/jobs-api.md`.

use serde_json::{Value, json};

use crate::model::{Job, JobKind, Pipeline, Project, Status, User};
use crate::time::Timestamp;

/// Renders records for one request: links are absolute, built from `base` (the server's
/// external URL without a trailing slash).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Render<'a> {
    pub(crate) base: &'a str,
    pub(crate) now: Timestamp,
}

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_string()))
}

impl Render<'_> {
    pub(crate) fn user(&self, u: &User) -> Value {
        json!({
            "id": u.id,
            "username": u.username,
            "name": u.name,
            "state": "active",
            "locked": false,
            "avatar_url": null,
            "web_url": format!("{}/{}", self.base, u.username),
            "created_at": u.created_at,
            "bio": "",
            "location": "",
            "public_email": null,
            "skype": "",
            "linkedin": "",
            "twitter": "",
            "discord": "",
            "website_url": "",
            "organization": "",
            "job_title": "",
            "pronouns": null,
            "bot": false,
        })
    }

    /// `GET /user`: the public fields plus the caller's own (GitLab's `UserPublic`), and for
    /// an administrator `is_admin` and `note` (`UserWithAdmin`): a user who is not one gets
    /// no `is_admin` field at all, as from GitLab.
    pub(crate) fn current_user(&self, u: &User) -> Value {
        let mut v = self.user(u);
        if let Value::Object(m) = &mut v {
            if u.admin {
                m.insert("is_admin".into(), json!(true));
                m.insert("note".into(), Value::Null);
            }
            m.insert("email".into(), json!(format!("{}@example.invalid", u.username)));
            m.insert("can_create_group".into(), json!(u.admin));
            m.insert("can_create_project".into(), json!(true));
            m.insert("two_factor_enabled".into(), json!(false));
            m.insert("external".into(), json!(false));
            m.insert("private_profile".into(), json!(false));
        }
        v
    }

    /// A project; with `settings` (a maintainer's view, as GitLab's `admin_project`
    /// fields) also its CI settings.
    pub(crate) fn project(&self, p: &Project, settings: bool) -> Value {
        let namespace = p.full_path.rsplit_once('/').map_or("", |(ns, _)| ns);
        let visibility = if p.public { "public" } else { "private" };
        let mut v = json!({
            "id": p.id,
            "description": null,
            "name": p.path(),
            "name_with_namespace": p.full_path.replace('/', " / "),
            "path": p.path(),
            "path_with_namespace": p.full_path,
            "created_at": p.created_at,
            "default_branch": "main",
            "tag_list": [],
            "topics": [],
            "http_url_to_repo": format!("{}/{}.git", self.base, p.full_path),
            "web_url": format!("{}/{}", self.base, p.full_path),
            "avatar_url": null,
            "namespace": {
                "name": namespace.rsplit('/').next().unwrap_or(namespace),
                "path": namespace.rsplit('/').next().unwrap_or(namespace),
                "full_path": namespace,
                "kind": "group",
            },
            "visibility": visibility,
            "archived": false,
            "jobs_enabled": true,
            "public_jobs": true,
        });
        if let (true, Value::Object(m)) = (settings, &mut v) {
            m.insert("keep_latest_artifact".into(), json!(p.keep_latest_artifact));
        }
        v
    }

    pub(crate) fn pipeline_basic(&self, p: &Pipeline, project: &Project) -> Value {
        json!({
            "id": p.id,
            "iid": p.iid,
            "project_id": p.project_id,
            "sha": p.sha,
            "ref": p.ref_name,
            "status": p.status.as_str(),
            "source": p.source,
            "created_at": p.created_at,
            "updated_at": p.updated_at,
            "web_url": format!("{}/{}/-/pipelines/{}", self.base, project.full_path, p.id),
        })
    }

    fn commit(&self, p: &Pipeline, author: Option<&User>) -> Value {
        let (name, email) = author
            .map_or((String::new(), String::new()), |u| (u.name.clone(), format!("{}@example.invalid", u.username)));
        json!({
            "id": p.sha,
            "short_id": p.sha.get(..8).unwrap_or(&p.sha),
            "created_at": p.created_at,
            "parent_ids": [],
            "title": "",
            "message": "",
            "author_name": name,
            "author_email": email,
            "authored_date": p.created_at,
            "committer_name": name,
            "committer_email": email,
            "committed_date": p.created_at,
        })
    }

    /// The fields builds and bridges share (GitLab's `JobBasic`).
    fn job_basic(&self, job: &Job, pipeline: &Pipeline, project: &Project, user: Option<&User>) -> Value {
        let duration = job.started_at.map(|s| job.finished_at.unwrap_or(self.now).seconds_since(s));
        let queued = job.queued_at.map(|q| job.started_at.unwrap_or(self.now).seconds_since(q));
        json!({
            "id": job.id,
            "status": job.status.as_str(),
            "stage": job.stage,
            "name": job.name,
            "ref": pipeline.ref_name,
            "tag": pipeline.tag,
            "coverage": job.coverage,
            "allow_failure": job.allow_failure,
            "created_at": job.created_at,
            "started_at": time(job.started_at),
            "finished_at": time(job.finished_at),
            "erased_at": time(job.erased_at),
            "duration": duration,
            "queued_duration": queued,
            "user": user.map(|u| self.user(u)),
            "commit": self.commit(pipeline, user),
            "pipeline": self.pipeline_basic(pipeline, project),
            "web_url": format!("{}/{}/-/jobs/{}", self.base, project.full_path, job.id),
            "project": {"ci_job_token_scope_enabled": false},
        })
    }

    /// A build job (GitLab's `Job` entity). `kept`: its project keeps its expired archive
    /// (see `crate::keep`); then, as GitLab shows it, the archive is among `artifacts`
    /// while `artifacts_file` (unexpired archives only) is absent and `artifacts_expire_at`
    /// is the past moment it expired.
    pub(crate) fn job(
        &self,
        job: &Job,
        pipeline: &Pipeline,
        project: &Project,
        user: Option<&User>,
        kept: bool,
    ) -> Value {
        let mut v = self.job_basic(job, pipeline, project, user);
        let Value::Object(m) = &mut v else { return v };
        let unexpired = job.live_archive(self.now);
        if let Some(archive) = unexpired {
            m.insert("artifacts_file".into(), json!({"filename": "artifacts.zip", "size": archive.size}));
        }
        let live = unexpired.or(job.archive.as_ref().filter(|_| kept));
        let mut files = Vec::new();
        if let Some(a) = live {
            files.push(
                json!({"file_type": "archive", "size": a.size, "filename": "artifacts.zip", "file_format": "zip"}),
            );
        }
        if let (Some(meta), Some(_)) = (&job.metadata, live) {
            files.push(
                json!({"file_type": "metadata", "size": meta.size, "filename": "metadata.gz", "file_format": "gzip"}),
            );
        }
        if let Some(t) = &job.trace {
            files.push(json!({"file_type": "trace", "size": t.size, "filename": "job.log", "file_format": "raw"}));
        }
        m.insert("artifacts".into(), Value::Array(files));
        m.insert("runner".into(), Value::Null);
        m.insert("runner_manager".into(), Value::Null);
        m.insert("artifacts_expire_at".into(), time(job.artifacts_expire_at));
        m.insert("archived".into(), json!(false));
        m.insert("tag_list".into(), json!(job.tag_list));
        if job.status == Status::Failed {
            m.insert("failure_reason".into(), json!(job.failure_reason.as_deref().unwrap_or("script_failure")));
        }
        v
    }

    /// A bridge: the basic fields and its downstream pipeline.
    pub(crate) fn bridge(
        &self,
        job: &Job,
        pipeline: &Pipeline,
        project: &Project,
        user: Option<&User>,
        downstream: Option<&Pipeline>,
    ) -> Value {
        debug_assert_eq!(job.kind, JobKind::Bridge);
        let mut v = self.job_basic(job, pipeline, project, user);
        if let Value::Object(m) = &mut v {
            m.insert("downstream_pipeline".into(), downstream.map_or(Value::Null, |d| self.pipeline_basic(d, project)));
            if job.status == Status::Failed {
                m.insert("failure_reason".into(), json!(job.failure_reason.as_deref().unwrap_or("unknown_failure")));
            }
        }
        v
    }
}
