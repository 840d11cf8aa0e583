//! `artifact serve`, `artifact admin` and `artifact import`: the server and putting data in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use artifact_server::{Admin, AppConfig, DataDir, Error, ImportJob, Status, When};
use clap::{Args, Subcommand};

use crate::error::{CliError, Exit};

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

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Most connections open at once; past it a new connection is answered 503 with
    /// Retry-After and closed (keep the file-descriptor limit above it).
    #[arg(long, value_name = "N", default_value_t = artifact_server::DEFAULT_MAX_CONNECTIONS as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// The server's external URL, for absolute links (default: from each request's Host).
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// Seed a demo project first, and print a token and a curl line to try.
    #[arg(long, conflicts_with = "upstream")]
    demo: bool,
    /// A separate origin (e.g. `https://artifacts.example.com`, pointing at this server) from
    /// which the browsing pages open files, outside the CSP sandbox they get otherwise.
    #[arg(long, value_name = "URL")]
    artifacts_origin: Option<String>,
    /// Start even though --artifacts-origin is the same site (registrable domain) as the
    /// server (--base-url, else the --listen address), where browsers send the server's
    /// SameSite cookies along with a report's requests.
    #[arg(long, requires = "artifacts_origin")]
    allow_same_site_artifacts_origin: bool,
    /// With --blobs: stream archive downloads through this server instead of answering
    /// `302` to a presigned URL of the bucket.
    #[arg(long, conflicts_with = "upstream")]
    proxy_download: bool,
    /// Run as a proxy in front of this GitLab (e.g. `https://gitlab.example.com`): requests
    /// are forwarded with the caller's credentials; no data directory is used.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// With --upstream: how long the upstream's "this caller may read this archive" is
    /// remembered (0: ask every time).
    #[arg(long, value_name = "SECONDS", default_value_t = 10, requires = "upstream")]
    auth_ttl: u64,
    /// With --upstream: keep central-directory indexes in DIR too (they survive restarts).
    #[arg(long, value_name = "DIR", requires = "upstream")]
    cache: Option<PathBuf>,
    /// With --upstream and --cache: bytes of index files kept in DIR at most; past it the
    /// least recently used are removed.
    #[arg(long, value_name = "N", default_value_t = artifact_core::http::DEFAULT_DISK_CACHE_BYTES, requires = "cache")]
    cache_disk_bytes: u64,
    /// With --upstream: an origin (e.g. `https://bucket.s3.example.com`) the upstream's
    /// archive redirects may lead to; repeatable. Without it, any origin but link-local and
    /// cloud metadata addresses, which are refused either way.
    #[arg(long, value_name = "URL", requires = "upstream")]
    object_storage_origin: Vec<String>,
    /// With --upstream: serve Prometheus metrics at http://ADDR/metrics (off by default).
    #[arg(long, value_name = "ADDR", requires = "upstream")]
    metrics_listen: Option<SocketAddr>,
    /// With --upstream: bytes of indexes kept in memory.
    #[arg(long, value_name = "N", default_value_t = artifact_core::DEFAULT_CACHE_BYTES, requires = "upstream")]
    cache_bytes: usize,
    /// Bytes of small files (64 KiB at most each) kept in memory, verified: a hot file is
    /// answered without reading its archive (with --upstream: without asking the upstream,
    /// while the caller's authorization is remembered). 0 keeps none.
    #[arg(long, value_name = "N", default_value_t = artifact_server::DEFAULT_ENTRY_CACHE_BYTES)]
    entry_cache_bytes: usize,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Users.
    #[command(subcommand)]
    User(UserCommand),
    /// Personal access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Project members.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Removes what no job refers to and nothing is writing (blobs and temporary files left
    /// by a killed import, outcomes of archives no job has, stale leases), and prints what
    /// it removed as JSON. Never anything a job refers to or a running import is writing.
    Gc {
        /// Leave alone what is younger than this, and the leases of imports that renewed
        /// them within it (at least 10 s: imports renew theirs every 2 s).
        #[arg(long, value_name = "DURATION", default_value = "1 hour")]
        older_than: String,
        /// Only print what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user; prints it as JSON.
    Add {
        /// Login name.
        name: String,
        /// Make an administrator (reads and acts on every project).
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Add a personal access token; prints only the token.
    Add {
        /// The user's login name.
        user: String,
        /// What the token may do (repeatable): api (everything, the default), read_api (reads
        /// only), sudo (an administrator acting as another user, with api or read_api).
        #[arg(long = "scope", value_name = "SCOPE", value_parser = parse_scope)]
        scopes: Vec<artifact_server::Scope>,
        /// The day the token stops working (UTC); it works through the day before.
        #[arg(long, value_name = "YYYY-MM-DD")]
        expires: Option<String>,
    },
    /// Revoke a personal access token for good, named by the token or by --id; prints its
    /// record as JSON.
    Revoke {
        /// The token.
        #[arg(required_unless_present = "id", conflicts_with = "id")]
        token: Option<String>,
        /// The token's numeric id.
        #[arg(long)]
        id: Option<i64>,
    },
}

fn parse_scope(name: &str) -> Result<artifact_server::Scope, String> {
    artifact_server::Scope::parse(name).ok_or_else(|| format!("unknown scope {name:?}: use api, read_api or sudo"))
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectCommand {
    /// Add a project; prints it as JSON.
    Add {
        /// group/name
        full_path: String,
        /// Anyone may read its jobs and artifacts.
        #[arg(long)]
        public: bool,
    },
    /// Change a project's settings; prints it as JSON.
    Set {
        /// group/name
        full_path: String,
        /// GitLab's "Keep artifacts from most recent successful jobs" (on for a new
        /// project): the artifacts of the newest successful pipeline of each ref, and of its
        /// child pipelines, stay readable after they expire.
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, required = true)]
        keep_latest_artifacts: Option<bool>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum MemberCommand {
    /// Give a user a role in a project.
    Add {
        /// group/name
        full_path: String,
        /// The user's login name.
        user: String,
        /// guest, reporter, developer, maintainer or owner.
        role: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The project (group/name).
    #[arg(long, value_name = "FULL_PATH")]
    project: String,
    /// Branch or tag.
    #[arg(long = "ref", value_name = "REF")]
    ref_name: String,
    /// Job name.
    #[arg(long, value_name = "NAME")]
    job: String,
    /// Stage.
    #[arg(long, value_name = "S", default_value = "test")]
    stage: String,
    /// Status: created, waiting_for_resource, preparing, pending, running, success, failed,
    /// canceled, skipped, manual or scheduled.
    #[arg(long, value_name = "S", default_value = "success")]
    status: String,
    /// on_success, manual or delayed.
    #[arg(long, value_name = "WHEN", default_value = "on_success")]
    when: String,
    /// Add the job to this pipeline (default: a new pipeline).
    #[arg(long, value_name = "ID")]
    pipeline: Option<i64>,
    /// Make the new pipeline a child of this one.
    #[arg(long, value_name = "ID", conflicts_with = "pipeline")]
    parent_pipeline: Option<i64>,
    /// The commit.
    #[arg(long, value_name = "SHA")]
    sha: Option<String>,
    /// REF is a tag.
    #[arg(long)]
    tag: bool,
    /// The artifacts archive (checked, and metadata.gz generated).
    #[arg(long, value_name = "ZIP")]
    artifacts: Option<PathBuf>,
    /// The job log.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// When the artifacts expire, e.g. "1 week".
    #[arg(long, value_name = "DURATION")]
    expire_in: Option<String>,
    /// The user the job runs as.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// The job may fail without failing the pipeline.
    #[arg(long)]
    allow_failure: bool,
    /// Make a bridge (trigger job) instead of a build job.
    #[arg(long)]
    bridge: bool,
    /// The bridge's downstream (child) pipeline.
    #[arg(long, value_name = "PIPELINE_ID", requires = "bridge")]
    downstream: Option<i64>,
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

fn admin_for(data: &DataDir) -> Admin {
    // Printed JSON links use the default listen address; the API itself builds links from
    // each request.
    Admin::new(data.store(), data.blobs(), "http://127.0.0.1:8080")
}

fn print_json(v: &serde_json::Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| CliError::new(Exit::Failure, "json", e))?;
    println!("{text}");
    Ok(())
}

/// A token's record as `token revoke` prints it (GitLab's personal access token fields).
fn token_json(t: &artifact_server::PersonalToken) -> serde_json::Value {
    serde_json::json!({
        "id": t.id,
        "user_id": t.user_id,
        "scopes": t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "expires_at": t.expires_at,
        "revoked": t.revoked,
        "created_at": t.created_at.to_string(),
    })
}

pub(crate) fn admin(args: AdminArgs) -> Result<(), CliError> {
    let data = open(&args.data)?;
    let admin = admin_for(&data);
    match args.command {
        AdminCommand::User(UserCommand::Add { name, admin: is_admin }) => {
            print_json(&admin.add_user(&name, is_admin).map_err(|e| server_error(&"user add", e))?)
        }
        AdminCommand::Token(TokenCommand::Add { user, scopes, expires }) => {
            let scopes = if scopes.is_empty() { vec![artifact_server::Scope::Api] } else { scopes };
            let (token, _) =
                admin.add_token_with(&user, &scopes, expires.as_deref()).map_err(|e| server_error(&"token add", e))?;
            println!("{token}");
            Ok(())
        }
        AdminCommand::Token(TokenCommand::Revoke { token, id }) => {
            let which = match (&token, id) {
                (_, Some(id)) => artifact_server::TokenRef::Id(id),
                (Some(token), None) => artifact_server::TokenRef::Token(token),
                (None, None) => return Err(CliError::new(Exit::Usage, "token revoke", "name a token or --id")),
            };
            let record = admin.revoke_token(which).map_err(|e| server_error(&"token revoke", e))?;
            print_json(&token_json(&record))
        }
        AdminCommand::Project(ProjectCommand::Add { full_path, public }) => {
            print_json(&admin.add_project(&full_path, public).map_err(|e| server_error(&"project add", e))?)
        }
        AdminCommand::Project(ProjectCommand::Set { full_path, keep_latest_artifacts }) => print_json(
            &admin.set_project(&full_path, keep_latest_artifacts).map_err(|e| server_error(&"project set", e))?,
        ),
        AdminCommand::Member(MemberCommand::Add { full_path, user, role }) => {
            admin.add_member(&full_path, &user, &role).map_err(|e| server_error(&"member add", e))
        }
        AdminCommand::Gc { older_than, dry_run } => {
            let grace = artifact_server::parse_duration(&older_than).ok_or_else(|| {
                CliError::new(
                    Exit::Usage,
                    "--older-than",
                    format!("cannot read {older_than:?}: use e.g. \"1 hour\" or 30m"),
                )
            })?;
            let collected = admin.gc(grace, dry_run).map_err(|e| server_error(&"gc", e))?;
            let value = serde_json::to_value(&collected).map_err(|e| CliError::new(Exit::Failure, "json", e))?;
            print_json(&value)
        }
    }
}

pub(crate) fn import(args: ImportArgs) -> Result<(), CliError> {
    let status = Status::parse(&args.status)
        .ok_or_else(|| CliError::new(Exit::Usage, "--status", format!("unknown status {:?}", args.status)))?;
    let when = When::parse(&args.when)
        .ok_or_else(|| CliError::new(Exit::Usage, "--when", format!("unknown value {:?}", args.when)))?;
    if let Some(zip) = &args.artifacts
        && !zip.is_file()
    {
        return Err(CliError::new(Exit::NotFound, zip.display(), "no such file"));
    }
    let data = open(&args.data)?;
    let job = ImportJob {
        project: args.project,
        ref_name: args.ref_name,
        name: args.job,
        stage: args.stage,
        status,
        when,
        pipeline: args.pipeline,
        parent_pipeline: args.parent_pipeline,
        sha: args.sha,
        tag: args.tag,
        artifacts: args.artifacts,
        trace: args.trace,
        expire_in: args.expire_in,
        user: args.user,
        allow_failure: args.allow_failure,
        bridge: args.bridge,
        downstream: args.downstream,
        progress: None,
    };
    let total = job.artifacts.as_deref().and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len());
    let imported = crate::verify::with_progress(total, |progress| {
        admin_for(&data).import(&ImportJob { progress: Some(progress), ..job })
    })
    .map_err(|e| server_error(&"import", e))?;
    if let Some(verification) = &imported.verification {
        eprintln!("artifact: {}", crate::verify::summary(verification));
    }
    print_json(&imported.job)
}

pub(crate) fn serve(args: ServeArgs) -> Result<(), CliError> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false).init();
    // An artifacts origin on the server's own site would be sent its session cookie.
    let site_base = args.base_url.clone().unwrap_or_else(|| format!("http://{}", args.listen));
    let origin = args.artifacts_origin.as_deref();
    artifact_server::check_artifacts_origin(&site_base, origin, args.allow_same_site_artifacts_origin)
        .map_err(|e| server_error(&"--artifacts-origin", e))?;
    // A proxy keeps no data: only its caches.
    let data = match &args.upstream {
        Some(upstream) => Err(upstream.clone()),
        None => Ok(open(&args.data)?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Blocking work is short reads and queries; bursts queue instead of growing
        // hundreds of threads (and their allocator arenas).
        .max_blocking_threads(64)
        .build()
        .map_err(|e| CliError::new(Exit::Failure, "runtime", e))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| CliError::new(Exit::Failure, format!("listening on {}", args.listen), e))?;
        let local = listener.local_addr().map_err(|e| CliError::new(Exit::Failure, "listening", e))?;
        let base = args.base_url.clone().unwrap_or_else(|| format!("http://{local}"));
        let (router, what) = match &data {
            Err(upstream) => {
                let mut config =
                    artifact_server::ProxyConfig::new(upstream).map_err(|e| server_error(&"--upstream", e.into()))?;
                config.base_url = args.base_url.clone();
                config.auth_ttl = std::time::Duration::from_secs(args.auth_ttl);
                config.cache_dir = args.cache.clone();
                config.cache_disk_bytes = args.cache_disk_bytes;
                config.object_storage_origins = args.object_storage_origin.clone();
                config.cache_bytes = args.cache_bytes;
                config.hot_bytes = args.entry_cache_bytes;
                config.artifacts_origin = args.artifacts_origin.clone();
                let (router, metrics) =
                    artifact_server::proxy_routers(config).map_err(|e| server_error(&"--upstream", e))?;
                if let Some(addr) = args.metrics_listen {
                    let listener = tokio::net::TcpListener::bind(addr)
                        .await
                        .map_err(|e| CliError::new(Exit::Failure, format!("listening on {addr}"), e))?;
                    let bound = listener.local_addr().map_err(|e| CliError::new(Exit::Failure, "listening", e))?;
                    eprintln!("artifact: metrics on http://{bound}/metrics");
                    tokio::spawn(async move {
                        if let Err(e) = artifact_server::serve(listener, metrics, shutdown()).await {
                            tracing::warn!(error = %e, "the metrics listener stopped");
                        }
                    });
                }
                (router, format!("a proxy of {upstream}"))
            }
            Ok(data) => {
                if args.demo {
                    let demo = artifact_server::seed_demo(&admin_for(data), &data.root().join("blobs").join("tmp"))
                        .map_err(|e| server_error(&"demo", e))?;
                    println!("demo project: {}", demo.project);
                    println!("token: {}", demo.token);
                    println!("try: {}", demo.curl(&base));
                }
                let config = AppConfig {
                    base_url: args.base_url.clone(),
                    proxy_download: args.proxy_download,
                    entry_cache_bytes: args.entry_cache_bytes,
                    artifacts_origin: args.artifacts_origin.clone(),
                    ..AppConfig::default()
                };
                (artifact_server::app(data.state(config)), data_path(&args.data.data))
            }
        };
        let stop = shutdown();
        tracing::info!(address = %local, serving = %what, "serving");
        eprintln!("artifact: serving {what} on http://{local}");
        let options = artifact_server::ServeOptions { max_connections: args.max_connections as usize };
        artifact_server::serve_with(listener, router, options, stop)
            .await
            .map_err(|e| CliError::new(Exit::Failure, "serving", e))
    })?;
    eprintln!("artifact: stopped");
    Ok(())
}

fn data_path(p: &Path) -> String {
    p.display().to_string()
}

/// Listens for SIGINT and SIGTERM from the call on (made before the address is printed, so
/// that a signal sent as soon as it appears stops the server cleanly instead of killing it);
/// the future resolves on either: in-flight requests finish, new connections are refused.
fn shutdown() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let (term, int) = (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok());
        let wait = |signal: Option<Signal>| async move {
            match signal {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        async move {
            tokio::select! {
                () = wait(term) => {},
                () = wait(int) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
