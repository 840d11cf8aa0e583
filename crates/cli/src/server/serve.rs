//! `artifact serve`: the server on a data directory, or the proxy in front of a GitLab.

use super::*;

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
    /// With --upstream: also trust the certificate authorities in FILE (PEM), e.g. the
    /// upstream GitLab's internal one (repeatable), for every request upstream.
    #[arg(long, value_name = "FILE", requires = "upstream")]
    ca_cert: Vec<std::path::PathBuf>,
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
    /// With --upstream: a cache shared with the other proxies of a fleet, behind memory and
    /// --cache: archives' indexes and entries' verdicts, written once by the proxy that read
    /// them and read by the others (a directory they all mount, file:///DIR, or
    /// s3://bucket[/prefix] with the endpoint, region and keys from the AWS_* variables).
    #[arg(long, value_name = "URL", requires = "upstream")]
    shared_cache: Option<String>,
    /// With --upstream: an origin (e.g. `https://bucket.s3.example.com`) the upstream's
    /// archive redirects may lead to; repeatable. Without it, any origin but link-local and
    /// cloud metadata addresses, which are refused either way.
    #[arg(long, value_name = "URL", requires = "upstream")]
    object_storage_origin: Vec<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (off by default): the proxy's with
    /// --upstream, the server's otherwise.
    #[arg(long, value_name = "ADDR")]
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
                if let Some(url) = &args.shared_cache {
                    let shared = artifact_server::ObjectStoreCache::open(url)
                        .map_err(|e| CliError::new(Exit::Usage, "--shared-cache", e))?;
                    config.shared_cache = Some(std::sync::Arc::new(shared));
                }
                config.object_storage_origins = args.object_storage_origin.clone();
                config.cache_bytes = args.cache_bytes;
                config.hot_bytes = args.entry_cache_bytes;
                config.artifacts_origin = args.artifacts_origin.clone();
                config.extra_roots = crate::input::read_roots(&args.ca_cert)?;
                let (router, metrics) =
                    artifact_server::proxy_routers(config).map_err(|e| server_error(&"--upstream", e))?;
                serve_metrics(args.metrics_listen, metrics).await?;
                (router, format!("a proxy of {upstream}"))
            }
            Ok(data) => {
                if args.demo {
                    let demo = crate::demo::seed_demo(&admin_for(data), &data.root().join("blobs").join("tmp"))
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
                    metrics: args.metrics_listen.is_some(),
                    ..AppConfig::default()
                };
                let (router, metrics) = artifact_server::app_routers(data.state(config));
                serve_metrics(args.metrics_listen, metrics).await?;
                (router, data_path(&args.data.data))
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

/// Serves `metrics` at `addr`, if given, until the process is told to stop.
async fn serve_metrics(addr: Option<SocketAddr>, metrics: artifact_server::Router) -> Result<(), CliError> {
    let Some(addr) = addr else { return Ok(()) };
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
