//! The proxy in front of a service of your own: your routes answer what they answer, single
//! files of job artifacts come from the engine (only the central directory and the one
//! entry are read, by range, wherever the archive is), and everything else goes to GitLab.
//!
//! ```text
//! cargo run -p artifact-proxy --example embed -- https://gitlab.example.com 127.0.0.1:8080
//! curl -H "PRIVATE-TOKEN: $TOKEN" \
//!     http://127.0.0.1:8080/api/v4/projects/group%2Fapp/jobs/42/artifacts/dist/report.json
//! ```

use std::net::SocketAddr;

use artifact_proxy::{Forward, Proxy, ProxyConfig, ProxyLayer};
use axum::Json;
use axum::routing::get;

/// A route of your own, answered before anything is forwarded.
async fn status() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "proxy": "up" }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let upstream = args.next().ok_or("usage: embed UPSTREAM [LISTEN]")?;
    let listen: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:8080").parse()?;

    let mut config = ProxyConfig::new(&upstream)?;
    // Remember a caller's "may read this archive" for 30 s; keep 128 MiB of small entries.
    config.auth_ttl = std::time::Duration::from_secs(30);
    config.hot_bytes = 128 << 20;
    let proxy = Proxy::new(config)?;

    let app = axum::Router::new()
        // Your own service: its routes, and GitLab for the rest.
        .route("/-/status", get(status))
        .fallback_service(Forward::new(proxy.clone()))
        // In front of all of it: single files from the engine.
        .layer(ProxyLayer::new(proxy));

    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("proxying {upstream} on http://{}", listener.local_addr()?);
    // The callers' addresses go upstream in `X-Forwarded-For`.
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
