//! An axum service that answers `GET /files/<path>` with that entry of one remote archive,
//! streamed on async I/O and verified as it goes (a late failure aborts the response, never
//! a clean short `200`), the archive's index cached between requests. Entries are
//! untrusted bytes: they go as downloads (`Content-Disposition: attachment`, `nosniff`),
//! never as pages of this service's origin; failures upstream are logged, not shown:
//! `cargo run -p artifact-core --features http --example serve_one --
//! https://example.com/artifacts.zip 127.0.0.1:8080`.

use std::sync::Arc;

use artifact_core::ArtifactPath;
use artifact_core::http::{HeaderMap, HttpOptions, RemoteArchives};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What the handler shares: the archive's URL and the remote archives (one index cache).
pub(crate) struct Shared {
    /// The archive's URL.
    pub(crate) url: String,
    /// Safe to make and drop on the runtime; indexes load on async I/O.
    pub(crate) remote: Arc<RemoteArchives>,
}

/// The service.
pub(crate) fn app(url: String) -> Result<axum::Router, artifact_core::Error> {
    let remote = Arc::new(RemoteArchives::new(HttpOptions::default())?);
    Ok(axum::Router::new()
        .route("/files/{*path}", axum::routing::get(file))
        .with_state(Arc::new(Shared { url, remote })))
}

async fn file(State(shared): State<Arc<Shared>>, Path(path): Path<String>) -> Response {
    let Ok(path) = ArtifactPath::new(&path) else {
        return (StatusCode::BAD_REQUEST, "not an artifact path").into_response();
    };
    // This service's own credentials would go in the headers; none here.
    match shared.remote.open_entry_async(&shared.url, &path, &HeaderMap::new()).await {
        Ok(entry) => {
            let size = entry.entry().size();
            let mut response = Body::from_stream(entry).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            response
        }
        Err(artifact_core::Error::NotFound { .. } | artifact_core::Error::ArchiveNotFound { .. }) => {
            StatusCode::NOT_FOUND.into_response()
        }
        Err(e) => {
            // The upstream's address stays in the log, not in the answer.
            eprintln!("serve_one: {path}: {e}");
            StatusCode::BAD_GATEWAY.into_response()
        }
    }
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, listen] = args.as_slice() else {
        return Err("usage: serve_one ARCHIVE_URL LISTEN_ADDRESS".into());
    };
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app(url.clone())?).await?;
    Ok(())
}
