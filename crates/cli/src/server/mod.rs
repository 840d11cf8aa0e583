//! `artifact serve`, `artifact admin` and `artifact import`: the server and putting data in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use artifact_server::{Admin, AppConfig, DataDir, Error, ImportJob, Status, When};
use clap::{Args, Subcommand};

use crate::error::{CliError, Exit};

mod admin;
mod serve;

pub(crate) use self::admin::{AdminArgs, ImportArgs, admin, import};
pub(crate) use self::serve::{ServeArgs, serve};

/// Where the data lives.
#[derive(Debug, Args)]
pub(crate) struct DataArgs {
    /// The data directory (SQLite database and blobs); created on first use.
    #[arg(long, value_name = "DIR", default_value = "./artifact-data", global = true)]
    data: PathBuf,
    /// Keep the records in this PostgreSQL database instead of SQLite
    /// (postgres://user:pass@host:port/db).
    #[arg(long, value_name = "URL", env = "ARTIFACT_DATABASE", global = true, hide_env_values = true)]
    database: Option<String>,
    /// Keep the blobs (archives, metadata, logs) in this S3-compatible bucket instead of
    /// DIR/blobs (s3://bucket[/prefix]; endpoint, region and keys from the AWS_* variables).
    #[arg(long, value_name = "URL", env = "ARTIFACT_BLOBS", global = true)]
    blobs: Option<String>,
}

fn open(data: &DataArgs) -> Result<DataDir, CliError> {
    let what = match &data.database {
        // The URL may hold a password: name the database by its host only.
        Some(url) => format!("--database {}", url.rsplit('@').next().unwrap_or("")),
        None => data.data.display().to_string(),
    };
    DataDir::open_with(&data.data, data.database.as_deref(), data.blobs.as_deref()).map_err(|e| server_error(&what, e))
}

fn server_error(what: &dyn std::fmt::Display, e: Error) -> CliError {
    let code = match &e {
        Error::BadArchive { .. } => Exit::Corrupt,
        Error::Invalid(_) => Exit::Usage,
        _ => Exit::Failure,
    };
    CliError::new(code, what, e)
}

fn print_json(v: &serde_json::Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| CliError::new(Exit::Failure, "json", e))?;
    println!("{text}");
    Ok(())
}

fn admin_for(data: &DataDir) -> Admin {
    // Printed JSON links use the default listen address; the API itself builds links from
    // each request.
    Admin::new(data.store(), data.blobs(), "http://127.0.0.1:8080")
}
