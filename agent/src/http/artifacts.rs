//! `GET|HEAD /artifacts/<path>`: kernels, initrds and images from
//! `boot.artifacts_dir`.
//!
//! Paths go through [`FileRoot`](crate::boot::FileRoot) (no `..`, no
//! symlink out; a violation is 403, a missing file 404). Every file answer
//! carries its sha256 as `X-Checksum-Sha256` and as a strong `ETag`, so
//! `If-None-Match` gets 304 and a client can verify what it fetched; Range
//! requests get 206 (or 416 outside the file) from tower-http's `ServeFile`.
//! `GET /artifacts/<path>.sha256` answers the digest in `sha256sum` format.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;
use tower_http::services::ServeFile;

use super::boot::BootCtx;
use crate::boot::root::Resolved;
use crate::boot::{FileRoot, PathError};

/// The digest header.
pub const CHECKSUM_HEADER: &str = "x-checksum-sha256";

fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{body}\n"),
    )
        .into_response()
}

async fn resolve(root: &FileRoot, name: &str) -> Result<Resolved, Response> {
    let root = root.clone();
    let owned = name.to_owned();
    let resolved = tokio::task::spawn_blocking(move || root.resolve(&owned)).await;
    match resolved {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(e)) if e.is_violation() => {
            metrics::counter!("dv_artifact_refusals_total").increment(1);
            tracing::warn!(path = %name, reason = %e, "artifacts: request refused");
            Err(text(StatusCode::FORBIDDEN, &format!("refused: {e}")))
        }
        Ok(Err(PathError::Root { root, source })) => {
            tracing::error!(root = %root.display(), error = %source, "artifacts: directory unavailable");
            Err(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the artifacts directory is not available",
            ))
        }
        Ok(Err(e)) => Err(text(StatusCode::NOT_FOUND, &format!("{name}: {e}"))),
        Err(_) => Err(text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")),
    }
}

pub(super) async fn artifact(
    State(state): State<BootCtx>,
    Path(path): Path<String>,
    request: Request,
) -> Response {
    if let Some(stem) = path.strip_suffix(".sha256") {
        return digest_file(&state, stem).await;
    }
    serve_from(&state.boot.artifacts, &state, &path, request).await
}

/// Serves `path` from `root` with Range, ETag and the sha256 header.
pub(super) async fn serve_from(
    root: &FileRoot,
    state: &BootCtx,
    path: &str,
    request: Request,
) -> Response {
    let found = match resolve(root, path).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let sha = match state.boot.digests.sha256(&found.path).await {
        Ok(sha) => sha,
        Err(e) => {
            tracing::error!(path = %found.path.display(), error = %e, "artifacts: cannot hash");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the artifact",
            );
        }
    };
    let etag = format!("\"{sha}\"");
    let matches = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match ServeFile::new(&found.path).oneshot(request).await {
            Ok(r) => r.map(axum::body::Body::new),
            Err(never) => match never {},
        }
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&sha) {
        headers.insert(CHECKSUM_HEADER, v);
    }
    metrics::counter!("dv_artifact_requests_total", "status" => response.status().as_u16().to_string())
        .increment(1);
    response
}

async fn digest_file(state: &BootCtx, stem: &str) -> Response {
    let found = match resolve(&state.boot.artifacts, stem).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match state.boot.digests.sha256(&found.path).await {
        Ok(sha) => {
            let name = stem.rsplit('/').next().unwrap_or(stem);
            text(StatusCode::OK, &format!("{sha}  {name}"))
        }
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot read the artifact",
        ),
    }
}
