//! `artifact job ls`: a job's artifacts listed through the API's tree (an addition of this
//! project's server and proxy beyond GitLab), printed as `artifact ls` prints a local
//! archive's: the same order, lines, long lines and JSON, and the same exit codes.

use artifact_client::{Client, JobRef, TreeEntry, TreeFilter};
use clap::Args;
use futures_util::TryStreamExt;

use crate::error::{CliError, Exit};
use crate::listing::{Format, Row, dir_prefix, print};

/// `artifact job ls JOB [PATH]`, or `artifact job ls --ref REF --job NAME [PATH]`.
#[derive(Debug, Args)]
pub(crate) struct JobLs {
    /// The job id, then the folder to list (default: the root); with --ref, the folder
    /// alone.
    #[arg(value_name = "JOB] [PATH", num_args = 0..=2)]
    args: Vec<String>,
    /// The branch or tag whose latest successful pipeline's job is listed (with --job).
    #[arg(long = "ref", value_name = "REF", requires = "job_name")]
    ref_name: Option<String>,
    /// The job's name (with --ref).
    #[arg(long = "job", visible_alias = "job-name", value_name = "NAME", requires = "ref_name")]
    job_name: Option<String>,
    /// List everything under PATH, not just its direct children.
    #[arg(short, long)]
    recursive: bool,
    /// Show mode and size too (the API has no times: `-`).
    #[arg(short, long, conflicts_with = "json")]
    long: bool,
    /// Print a JSON array of objects instead of lines (`artifact ls --json`'s; what the API
    /// does not say is `null`).
    #[arg(long)]
    json: bool,
}

impl JobLs {
    /// The job and the folder the arguments name.
    fn target(&self) -> Result<(JobRef, String), CliError> {
        let usage = |why: &str| CliError::new(Exit::Usage, "job ls", why);
        match (&self.ref_name, &self.job_name, self.args.as_slice()) {
            (Some(ref_name), Some(job), args) => match args {
                [] => Ok((JobRef::Latest { ref_name: ref_name.clone(), job: job.clone() }, String::new())),
                [path] => Ok((JobRef::Latest { ref_name: ref_name.clone(), job: job.clone() }, path.clone())),
                _ => Err(usage("with --ref and --job, give at most a PATH")),
            },
            (_, _, [job, rest @ ..]) => {
                let id = job.parse::<u64>().map_err(|_| usage(&format!("{job:?} is not a job id")))?;
                Ok((JobRef::Id(id), rest.first().cloned().unwrap_or_default()))
            }
            _ => Err(usage("give a JOB id, or --ref REF --job NAME")),
        }
    }
}

/// Lists the folder `ls` names of its job's artifacts, every page.
pub(crate) async fn run(client: &Client, project: &str, ls: JobLs) -> Result<(), CliError> {
    let (job, path) = ls.target()?;
    let dir = dir_prefix(&path);
    let filter = TreeFilter { path: dir.clone(), recursive: ls.recursive, per_page: Some(100), keyset: true };
    let what = match &job {
        JobRef::Id(id) => format!("job {id}"),
        JobRef::Latest { ref_name, job } => format!("job {job} of {ref_name}"),
    };
    let listed: Result<Vec<TreeEntry>, _> = client.artifacts_tree(project, &job, &filter).try_collect().await;
    let entries = match listed {
        Ok(entries) => entries,
        // The tree's own 404, `404 Not Found` (GitLab's other misses say `Not found`):
        // a folder the archive lacks, or a server without the tree (GitLab itself, whose
        // unknown routes answer the same). The root always exists where there is a tree.
        Err(artifact_client::Error::Api { status, message, .. })
            if status.as_u16() == 404 && message == "404 Not Found" =>
        {
            let root = TreeFilter { path: String::new(), recursive: false, per_page: Some(1), keyset: false };
            let has_tree = client.artifacts_tree_page(project, &job, &root, 1).await.is_ok();
            return Err(match (dir.is_empty(), has_tree) {
                (false, true) => CliError::new(
                    Exit::NotFound,
                    &dir,
                    format_args!("no directory named {dir:?} in the artifacts of {what}"),
                ),
                _ => CliError::new(
                    Exit::NotFound,
                    &what,
                    "the server has no artifacts tree (GitLab itself has none; `artifact serve` and its proxy do)",
                ),
            });
        }
        Err(e) => return Err(crate::gitlab::failed(&what, e)),
    };
    let mut rows: Vec<Row> = entries.iter().map(row).collect();
    // `artifact ls`'s order: by path, a folder's with its `/`.
    rows.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    print(rows, Format::from_flags(ls.long, ls.json))
}

/// An entry as `artifact ls` prints one: a folder's path ends in `/`.
fn row(entry: &TreeEntry) -> Row {
    let dir = entry.is_folder();
    // Git's spelling: `100644`; a folder's (`040000`) says nothing of its permissions.
    let mode = (!dir)
        .then(|| entry.mode.get(entry.mode.len().saturating_sub(3)..).and_then(|m| u32::from_str_radix(m, 8).ok()))
        .flatten();
    Row {
        path: if dir { format!("{}/", entry.path) } else { entry.path.clone() },
        dir,
        size: entry.size,
        compressed_size: None,
        crc32: None,
        method: None,
        mode,
        modified: None,
        symlink: None,
    }
}
