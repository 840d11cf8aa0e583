//! `artifact admin` and `artifact import`: putting data in.

use super::*;

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
