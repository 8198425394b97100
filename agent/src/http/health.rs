//! `GET /v1/health`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::AppState;
use crate::store::{migrate, outbox};

/// The health document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// "ok" or "degraded".
    #[schema(value_type = String)]
    pub status: &'static str,
    /// The site served.
    pub site: String,
    /// The agent's version.
    #[schema(value_type = String)]
    pub version: &'static str,
    /// The store's schema version.
    pub schema_version: i64,
    /// Seconds since the agent started serving.
    pub uptime_seconds: u64,
    /// Events not yet acknowledged upstream; None if the store could not be read.
    pub outbox_pending: Option<i64>,
    /// Why the agent is degraded, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The agent's health: whether it can read its store.
#[utoipa::path(
    get, path = "/v1/health", operation_id = "health", tag = "agent",
    responses(
        (status = 200, description = "The store is readable", body = Health),
        (status = 503, description = "The store cannot be read", body = Health),
    ),
)]
pub(super) async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let pending = state.store.read(outbox::pending_count).await;
    let (code, status, outbox_pending, problem) = match pending {
        Ok(n) => (StatusCode::OK, "ok", Some(n), None),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "degraded",
            None,
            Some(crate::telemetry::error_chain(&e)),
        ),
    };
    let body = Health {
        status,
        site: state.site.to_string(),
        version: env!("CARGO_PKG_VERSION"),
        schema_version: migrate::latest_version(),
        uptime_seconds: state.started.elapsed().as_secs(),
        outbox_pending,
        problem,
    };
    (code, Json(body))
}
