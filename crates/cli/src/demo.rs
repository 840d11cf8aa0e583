//! `artifact serve --demo`: a project with something of everything, so that a first `curl`
//! has a job to read.

use std::path::Path;

use artifact_server::{Admin, Error, ImportJob, ProjectRef, Status, Timestamp, When};

/// Real Info-ZIP and Python archives (copies of two of the test fixtures, `tests/data`,
/// which `scripts/make-fixtures.sh` refreshes too), inside this package so that it builds
/// from its own files alone.
const BASIC_ZIP: &[u8] = include_bytes!("../demo/infozip-basic.zip");
const DEFLATE_ZIP: &[u8] = include_bytes!("../demo/python-deflate.zip");

/// The demo project's full path.
pub(crate) const DEMO_PROJECT: &str = "demo/app";

/// What the demo seeded: a token and a job to try.
#[derive(Debug, Clone)]
pub(crate) struct Demo {
    /// A personal access token of the demo user (an administrator).
    pub(crate) token: String,
    /// The project's full path.
    pub(crate) project: String,
    /// A successful job with artifacts.
    pub(crate) job_id: i64,
}

impl Demo {
    /// A curl command that fetches one file of the demo job's artifacts from `base`.
    pub(crate) fn curl(&self, base: &str) -> String {
        format!(
            "curl -H 'PRIVATE-TOKEN: {}' '{}/api/v4/projects/{}/jobs/{}/artifacts/docs/readme.txt'",
            self.token,
            base.trim_end_matches('/'),
            self.project.replace('/', "%2F"),
            self.job_id
        )
    }
}

fn id_of(v: &serde_json::Value) -> Result<i64, Error> {
    v["id"].as_i64().ok_or_else(|| Error::Invalid("import returned no id".into()))
}

fn pipeline_of(v: &serde_json::Value) -> Result<i64, Error> {
    v["pipeline"]["id"].as_i64().ok_or_else(|| Error::Invalid("import returned no pipeline".into()))
}

/// Seeds the demo into the store behind `admin` (once; later calls only mint a new token),
/// using `scratch` for temporary files.
pub(crate) fn seed_demo(admin: &Admin, scratch: &Path) -> Result<Demo, Error> {
    if admin.store().user_by_username("demo")?.is_none() {
        admin.add_user("demo", true)?;
    }
    let token = admin.add_token("demo")?;
    if let Some(project) = admin.store().project(&ProjectRef::Path(DEMO_PROJECT.into()))? {
        let job = admin
            .store()
            .latest_job_with_artifacts(project.id, "main", "build", Some(Timestamp::now().0))?
            .ok_or_else(|| Error::Invalid("the demo project has no build job with artifacts".into()))?;
        return Ok(Demo { token, project: DEMO_PROJECT.into(), job_id: job.id });
    }
    admin.add_project(DEMO_PROJECT, false)?;
    admin.add_member(DEMO_PROJECT, "demo", "owner")?;
    std::fs::create_dir_all(scratch)
        .map_err(|source| Error::Io { what: "creating a scratch folder".into(), source })?;
    let write = |name: &str, bytes: &[u8]| -> Result<std::path::PathBuf, Error> {
        let path = scratch.join(name);
        std::fs::write(&path, bytes)
            .map_err(|source| Error::Io { what: format!("writing {}", path.display()), source })?;
        Ok(path)
    };
    let basic = write("demo-basic.zip", BASIC_ZIP)?;
    let deflate = write("demo-deflate.zip", DEFLATE_ZIP)?;
    let log = write("demo-job.log", b"$ make\ncompiling...\nok\nJob succeeded\n")?;
    let fail_log = write("demo-fail.log", b"$ make test\n1 test failed\nERROR: Job failed: exit code 1\n")?;

    let job = |name: &str, stage: &str, status: Status| {
        let mut j = ImportJob::new(DEMO_PROJECT, "main", name);
        j.stage = stage.into();
        j.status = status;
        j.user = Some("demo".into());
        j
    };

    let import = |job: &ImportJob| admin.import(job).map(|imported| imported.job);
    // An older pipeline on main, then the newest one (what ref resolution finds).
    let old = import(&ImportJob {
        artifacts: Some(deflate.clone()),
        trace: Some(log.clone()),
        ..job("build", "build", Status::Success)
    })?;
    let old_pipeline = pipeline_of(&old)?;
    import(&ImportJob {
        pipeline: Some(old_pipeline),
        trace: Some(fail_log.clone()),
        ..job("test", "test", Status::Failed)
    })?;

    let build = import(&ImportJob {
        artifacts: Some(basic.clone()),
        trace: Some(log.clone()),
        expire_in: Some("30 days".into()),
        ..job("build", "build", Status::Success)
    })?;
    let main = pipeline_of(&build)?;
    import(&ImportJob { pipeline: Some(main), trace: Some(log.clone()), ..job("test", "test", Status::Success) })?;
    import(&ImportJob { pipeline: Some(main), allow_failure: true, ..job("lint", "test", Status::Failed) })?;
    import(&ImportJob {
        pipeline: Some(main),
        when: When::Manual,
        allow_failure: true,
        ..job("deploy", "deploy", Status::Manual)
    })?;
    // A bridge and its child pipeline, whose job also has artifacts.
    let child = import(&ImportJob {
        parent_pipeline: Some(main),
        artifacts: Some(deflate.clone()),
        ..job("child-build", "build", Status::Success)
    })?;
    import(&ImportJob {
        pipeline: Some(main),
        bridge: true,
        downstream: Some(pipeline_of(&child)?),
        ..job("trigger-child", "deploy", Status::Success)
    })?;

    // A feature branch with a slash, and a job in every other status.
    let feature =
        |name: &str, status: Status| ImportJob { ref_name: "feature/login".into(), ..job(name, "test", status) };
    let first = import(&ImportJob { artifacts: Some(basic), trace: Some(log), ..feature("build", Status::Success) })?;
    let fp = pipeline_of(&first)?;
    for (name, status, when) in [
        ("running", Status::Running, When::OnSuccess),
        ("pending", Status::Pending, When::OnSuccess),
        ("created", Status::Created, When::OnSuccess),
        ("preparing", Status::Preparing, When::OnSuccess),
        ("waiting", Status::WaitingForResource, When::OnSuccess),
        ("canceled", Status::Canceled, When::OnSuccess),
        ("skipped", Status::Skipped, When::OnSuccess),
        ("scheduled", Status::Scheduled, When::Delayed),
        ("manual", Status::Manual, When::Manual),
    ] {
        import(&ImportJob { pipeline: Some(fp), when, ..feature(name, status) })?;
    }
    for f in ["demo-basic.zip", "demo-deflate.zip", "demo-job.log", "demo-fail.log"] {
        let _ = std::fs::remove_file(scratch.join(f));
    }
    Ok(Demo { token, project: DEMO_PROJECT.into(), job_id: id_of(&build)? })
}
