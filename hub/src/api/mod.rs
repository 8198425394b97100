//! The hub's public REST API under `/v1`: the same shapes as each agent's
//! API (a `Machine` is a `Machine`, a `Task` a `Task`), over every site.
//!
//! - `GET /v1/health` (no token): the replica, its NATS link and how far
//!   its read model is.
//! - `GET /metrics` (no token): Prometheus text.
//! - `GET /v1/sites`: the configured sites, their last heartbeat and events.
//! - `GET /v1/machines[?site=]`, `GET /v1/machines/{key}` (id, serial, MAC).
//! - `POST /v1/machines/{key}/provision|deprovision`: a command to the
//!   machine's site, stored in `DV_HUB_CMD`; 202 with the command id.
//! - `GET /v1/commands/{id}`: the command and the task it started.
//! - `GET /v1/tasks[?site=]`, `GET /v1/tasks/{id}`.
//! - `GET /v1/events[?site=&after=&limit=]`.
//!
//! Every other endpoint requires `Authorization: Bearer <token>` ([`auth`]);
//! every mutating call is recorded in the audit stream ([`audit`]).

pub mod audit;
pub mod auth;
mod inventory;

use std::sync::Arc;
use std::time::Instant;

use async_nats::jetstream;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::HubConfig;
use crate::ingest::Progress;
use crate::readmodel::ReadModel;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The hub's configuration.
    pub config: Arc<HubConfig>,
    /// This replica's name.
    pub replica: String,
    /// The read model.
    pub model: ReadModel,
    /// Ingestion progress and heartbeats.
    pub progress: Arc<Progress>,
    /// The hub's JetStream (commands, audit).
    pub js: jetstream::Context,
    /// The NATS client.
    pub client: async_nats::Client,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// When the replica started.
    pub started: Instant,
    /// The API token's SHA-256; `None` = no token required (lab only).
    pub token_sha256: Option<[u8; 32]>,
}

/// The hub's router.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/v1/sites", get(inventory::sites))
        .route("/v1/machines", get(inventory::machines))
        .route("/v1/machines/{key}", get(inventory::machine))
        .route("/v1/machines/{key}/provision", post(inventory::provision))
        .route(
            "/v1/machines/{key}/deprovision",
            post(inventory::deprovision),
        )
        .route("/v1/commands/{id}", get(inventory::command))
        .route("/v1/tasks", get(inventory::tasks))
        .route("/v1/tasks/{id}", get(inventory::task))
        .route("/v1/events", get(inventory::events))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ));
    Router::new()
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics_text))
        .merge(protected)
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> Response {
    let connected = matches!(
        state.client.connection_state(),
        async_nats::connection::State::Connected
    );
    let positions = state
        .model
        .with(|c| crate::readmodel::positions(c))
        .await
        .unwrap_or_default();
    let body = serde_json::json!({
        "status": if connected { "ok" } else { "degraded" },
        "replica": state.replica,
        "nats": if connected { "connected" } else { "disconnected" },
        "read_model": positions,
        "uptime_seconds": state.started.elapsed().as_secs(),
    });
    let status = if connected {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// A refused or failed call: its status and what to tell the caller.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    detail: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem(self.status, self.detail)
    }
}

/// An error answer as every `/v1` endpoint gives it: `{"error": detail}`.
pub(crate) fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": detail.into() })),
    )
        .into_response()
}
