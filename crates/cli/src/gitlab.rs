//! The commands that talk to a GitLab (or to `artifact serve`): `artifact job ...`,
//! `download`, `get` and `trace`. Configuration comes from flags or from the GitLab CI
//! environment; failures map onto the exit codes of docs/cli.md.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use artifact_client::{Client, Error, Job, JobFilter, JobRef, JobStatus};
use clap::{Args, Subcommand};
use futures_util::{StreamExt, TryStreamExt};

use crate::error::{CliError, Exit};

/// Where GitLab is and who we are. Flags win over the environment.
#[derive(Args)]
pub(crate) struct GitlabArgs {
    /// GitLab's URL [env: CI_SERVER_URL, GITLAB_URL].
    #[arg(long, value_name = "URL", global = true)]
    url: Option<String>,
    /// A personal access token [env: GITLAB_TOKEN, PRIVATE_TOKEN].
    #[arg(long, value_name = "TOKEN", global = true)]
    token: Option<String>,
    /// A CI job token [env: CI_JOB_TOKEN].
    #[arg(long, value_name = "TOKEN", global = true)]
    job_token: Option<String>,
    /// The project: numeric id or full path [env: CI_PROJECT_ID].
    #[arg(long, short = 'p', value_name = "PROJECT", global = true)]
    project: Option<String>,
    /// Sync downloaded files to disk before they take their name (survives a power cut).
    #[arg(long, global = true)]
    sync: bool,
    /// Also trust the certificate authorities in FILE (PEM), e.g. a self-managed GitLab's
    /// internal one (repeatable).
    #[arg(long, value_name = "FILE", global = true)]
    ca_cert: Vec<std::path::PathBuf>,
}

/// Which job: by id, or the latest successful pipeline's job for a ref.
#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub(crate) struct JobSelect {
    /// The job id.
    #[arg(long = "job", value_name = "ID", conflicts_with_all = ["ref_name", "job_name"])]
    job: Option<u64>,
    /// The branch or tag (with --job-name).
    #[arg(long = "ref", value_name = "REF", requires = "job_name")]
    ref_name: Option<String>,
    /// The job name (with --ref).
    #[arg(long = "job-name", value_name = "NAME", requires = "ref_name")]
    job_name: Option<String>,
}

impl JobSelect {
    fn job_ref(&self) -> JobRef {
        match (self.job, &self.ref_name, &self.job_name) {
            (Some(id), _, _) => JobRef::Id(id),
            (None, Some(r), Some(n)) => JobRef::Latest { ref_name: r.clone(), job: n.clone() },
            // clap's group makes this unreachable; an id of 0 gets GitLab's 404 otherwise.
            _ => JobRef::Id(0),
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobCommand {
    /// List the project's jobs (newest first), or a pipeline's (oldest first).
    List {
        /// Only this pipeline's jobs.
        #[arg(long, value_name = "ID")]
        pipeline: Option<u64>,
        /// Only these statuses (repeatable): created, pending, running, success, failed, ...
        #[arg(long, value_name = "STATUS")]
        scope: Vec<String>,
        /// With --pipeline: include jobs replaced by a retry.
        #[arg(long, requires = "pipeline")]
        include_retried: bool,
        /// With --pipeline: list the bridges (trigger jobs) instead.
        #[arg(long, requires = "pipeline")]
        bridges: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one job.
    Get {
        job: u64,
        #[arg(long)]
        json: bool,
    },
    /// Print a job's log.
    Trace { job: u64 },
    /// Cancel a job.
    Cancel {
        job: u64,
        #[arg(long)]
        json: bool,
    },
    /// Run a finished job again (prints the new job).
    Retry {
        job: u64,
        #[arg(long)]
        json: bool,
    },
    /// Erase a finished job's artifacts and log.
    Erase {
        job: u64,
        #[arg(long)]
        json: bool,
    },
    /// Keep a job's artifacts from expiring.
    Keep {
        job: u64,
        #[arg(long)]
        json: bool,
    },
    /// Start a manual job.
    Play {
        job: u64,
        #[arg(long)]
        json: bool,
    },
    /// Delete a job's artifacts (the log stays).
    DeleteArtifacts { job: u64 },
    /// List a folder of a job's artifacts, as `artifact ls` lists an archive's (through
    /// the artifacts tree of `artifact serve` and its proxy).
    Ls(crate::job_ls::JobLs),
}

impl std::fmt::Debug for GitlabArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitlabArgs")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("job_token", &self.job_token.as_ref().map(|_| "<redacted>"))
            .field("project", &self.project)
            .finish()
    }
}

fn env_first(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

impl GitlabArgs {
    fn client(&self) -> Result<Client, CliError> {
        let url = self.url.clone().or_else(|| env_first(&["CI_SERVER_URL", "GITLAB_URL"])).ok_or_else(|| {
            CliError::new(Exit::Usage, "--url", "no GitLab URL (give --url or set CI_SERVER_URL or GITLAB_URL)")
        })?;
        let roots = crate::input::read_roots(&self.ca_cert)?;
        let mut builder = Client::builder(url).sync_downloads(self.sync).extra_roots(roots);
        if let Some(t) = self
            .token
            .clone()
            .or_else(|| (self.job_token.is_none()).then(|| env_first(&["GITLAB_TOKEN", "PRIVATE_TOKEN"])).flatten())
        {
            builder = builder.private_token(t);
        } else if let Some(t) = self.job_token.clone().or_else(|| env_first(&["CI_JOB_TOKEN"])) {
            builder = builder.job_token(t);
        }
        builder.build().map_err(|e| CliError::new(Exit::Usage, "--url", e))
    }

    fn project(&self) -> Result<String, CliError> {
        self.project
            .clone()
            .or_else(|| env_first(&["CI_PROJECT_ID"]))
            .ok_or_else(|| CliError::new(Exit::Usage, "--project", "no project (give --project or set CI_PROJECT_ID)"))
    }
}

/// An API failure as a one-line error with its exit code: 401/403 are 1 with a hint, 404
/// is 4, a bad artifact path (400) is 3.
pub(crate) fn failed(what: impl std::fmt::Display, e: Error) -> CliError {
    let code = match e.status().map(|s| s.as_u16()) {
        Some(404) => Exit::NotFound,
        Some(400) if e.to_string().contains("artifact_path") => Exit::InvalidPath,
        _ => match e {
            Error::Engine(inner) => return CliError::engine(what, inner),
            Error::SizeMismatch { .. } | Error::KeptChanging { .. } | Error::BadResume { .. } => Exit::Corrupt,
            _ => Exit::Failure,
        },
    };
    let hint = match e.status().map(|s| s.as_u16()) {
        Some(401) => " (check the token: --token, GITLAB_TOKEN or CI_JOB_TOKEN)",
        Some(403) => " (the token's user lacks the role for this)",
        _ => "",
    };
    CliError::new(code, what, format!("{e}{hint}"))
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    // One worker: a command is one task, and a second worker would only compete for the
    // CPU with a local server inflating what we download.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(Exit::Failure, "runtime", e))
}

fn print_json(v: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| CliError::new(Exit::Failure, "json", e))?;
    println!("{text}");
    Ok(())
}

fn print_job(job: &Job, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(job);
    }
    println!(
        "{}",
        row(
            job.id,
            job.status.as_str(),
            job.stage.as_deref(),
            &job.name,
            job.ref_name.as_deref(),
            job.created_at.as_deref()
        )
    );
    Ok(())
}

fn row(
    id: u64,
    status: &str,
    stage: Option<&str>,
    name: &str,
    ref_name: Option<&str>,
    created: Option<&str>,
) -> String {
    format!(
        "{id:<10} {status:<20} {:<12} {name:<24} {:<20} {}",
        stage.unwrap_or("-"),
        ref_name.unwrap_or("-"),
        created.unwrap_or("-")
    )
}

pub(crate) fn job(gitlab: &GitlabArgs, command: JobCommand) -> Result<(), CliError> {
    let client = gitlab.client()?;
    let project = gitlab.project()?;
    let p = project.as_str();
    runtime()?.block_on(async move {
        let done = |job: Result<Job, Error>, json: bool, what: String| -> Result<(), CliError> {
            print_job(&job.map_err(|e| failed(what, e))?, json)
        };
        match command {
            JobCommand::List { pipeline, scope, include_retried, bridges, json } => {
                let scope = scope
                    .iter()
                    .map(|s| {
                        JobStatus::parse(s)
                            .ok_or_else(|| CliError::new(Exit::Usage, "--scope", format!("unknown status {s:?}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let filter = JobFilter { scope, include_retried, per_page: Some(100), keyset: pipeline.is_none() };
                if bridges {
                    let list: Vec<_> = client
                        .pipeline_bridges(p, pipeline.unwrap_or(0), &filter)
                        .try_collect()
                        .await
                        .map_err(|e| failed("bridges", e))?;
                    if json {
                        return print_json(&list);
                    }
                    println!("{}", row_header());
                    for b in &list {
                        println!(
                            "{}",
                            row(b.id, b.status.as_str(), b.stage.as_deref(), &b.name, b.ref_name.as_deref(), None)
                        );
                    }
                    return Ok(());
                }
                let mut stream = match pipeline {
                    Some(pl) => client.pipeline_jobs(p, pl, &filter).boxed(),
                    None => client.jobs(p, &filter).boxed(),
                };
                let mut all = Vec::new();
                let mut header = !json;
                // Rows print as pages arrive; the header once the first page did.
                while let Some(job) = stream.next().await {
                    let job = job.map_err(|e| failed("jobs", e))?;
                    if std::mem::take(&mut header) {
                        println!("{}", row_header());
                    }
                    if json {
                        all.push(job);
                    } else {
                        print_job(&job, false)?;
                    }
                }
                if header {
                    println!("{}", row_header());
                }
                if json { print_json(&all) } else { Ok(()) }
            }
            JobCommand::Get { job, json } => done(client.job(p, job).await, json, format!("job {job}")),
            JobCommand::Trace { job } => trace(&client, p, job, false, Duration::from_secs(1)).await,
            JobCommand::Cancel { job, json } => done(client.cancel(p, job).await, json, format!("job {job}")),
            JobCommand::Retry { job, json } => done(client.retry(p, job).await, json, format!("job {job}")),
            JobCommand::Erase { job, json } => done(client.erase(p, job).await, json, format!("job {job}")),
            JobCommand::Keep { job, json } => done(client.keep_artifacts(p, job).await, json, format!("job {job}")),
            JobCommand::Play { job, json } => done(client.play(p, job).await, json, format!("job {job}")),
            JobCommand::DeleteArtifacts { job } => {
                client.delete_artifacts(p, job).await.map_err(|e| failed(format!("job {job}"), e))
            }
            JobCommand::Ls(ls) => crate::job_ls::run(&client, p, ls).await,
        }
    })
}

fn row_header() -> String {
    row(0, "STATUS", Some("STAGE"), "NAME", Some("REF"), Some("CREATED")).replacen("0         ", "ID        ", 1)
}

/// `artifact trace JOB [--follow]`: the log; with `--follow`, new bytes (by `Range`) until
/// the job reaches a terminal status.
pub(crate) fn trace_command(gitlab: &GitlabArgs, job: u64, follow: bool, interval: Duration) -> Result<(), CliError> {
    let client = gitlab.client()?;
    let project = gitlab.project()?;
    runtime()?.block_on(trace(&client, &project, job, follow, interval))
}

async fn trace(client: &Client, project: &str, job: u64, follow: bool, interval: Duration) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let what = format!("job {job}");
    let mut offset = 0u64;
    loop {
        // The status first: bytes written before a terminal status are all fetched below.
        let status =
            if follow { Some(client.job(project, job).await.map_err(|e| failed(&what, e))?.status) } else { None };
        let mut new = client.trace_from(project, job, offset).await.map_err(|e| failed(&what, e))?;
        while let Some(chunk) = new.next().await {
            let chunk = chunk.map_err(|e| failed(&what, e))?;
            out.write_all(&chunk).map_err(|e| CliError::output("stdout", e))?;
            offset += chunk.len() as u64;
        }
        out.flush().map_err(|e| CliError::output("stdout", e))?;
        match status {
            // A status this client does not know counts as final: never poll forever.
            Some(s) if !s.is_terminal() && s != JobStatus::Unknown => tokio::time::sleep(interval).await,
            _ => return Ok(()),
        }
    }
}

/// `artifact download`: the archive to a file (default `artifacts.zip`), with a progress
/// bar at a terminal, resumed if the transfer breaks.
pub(crate) fn download(gitlab: &GitlabArgs, select: &JobSelect, output: Option<&Path>) -> Result<(), CliError> {
    let client = gitlab.client()?;
    let project = gitlab.project()?;
    let to = output.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("artifacts.zip"));
    let job = select.job_ref();
    runtime()?.block_on(async move {
        let bar = std::io::stderr().is_terminal().then(|| crate::cat::progress_bar(0));
        let progress = |done: u64, total: Option<u64>| {
            if let Some(bar) = &bar {
                if let Some(t) = total {
                    bar.set_length(t);
                }
                bar.set_position(done);
            }
        };
        let result = client.download_archive_to(&project, &job, &to, Some(&progress)).await;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        result.map(drop).map_err(|e| failed(to.display(), e))
    })
}

/// `artifact get`: one file of the artifacts, to stdout or a file. The server extracts it,
/// or with `--via-archive` this command reads it out of the archive by range.
pub(crate) fn get(
    gitlab: &GitlabArgs,
    select: &JobSelect,
    path: &str,
    output: Option<&Path>,
    via_archive: bool,
) -> Result<(), CliError> {
    artifact_core::ArtifactPath::new(path).map_err(|e| CliError::new(Exit::InvalidPath, path, e))?;
    let client = gitlab.client()?;
    let project = gitlab.project()?;
    let job = select.job_ref();
    runtime()?.block_on(async move {
        if let Some(to) = output
            && !via_archive
        {
            return client
                .download_artifact_to(&project, &job, path, to, None)
                .await
                .map(drop)
                .map_err(|e| failed(path, e));
        }
        let stream = if via_archive {
            client.artifact_via_archive(&project, &job, path).await
        } else {
            client.artifact(&project, &job, path).await
        };
        let mut stream = stream.map_err(|e| failed(path, e))?;
        match output {
            Some(to) => {
                let dir = to.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                let mut tmp = crate::output::TempFile::new_in(dir).map_err(|e| CliError::output(to.display(), e))?;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| failed(path, e))?;
                    tmp.file().write_all(&chunk).map_err(|e| CliError::output(to.display(), e))?;
                }
                tmp.persist(to).map_err(|e| CliError::output(to.display(), e))
            }
            None => {
                let mut out = std::io::stdout().lock();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| failed(path, e))?;
                    out.write_all(&chunk).map_err(|e| CliError::output("stdout", e))?;
                }
                out.flush().map_err(|e| CliError::output("stdout", e))
            }
        }
    })
}
