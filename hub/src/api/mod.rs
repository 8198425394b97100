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
//! - `/v1/tenants[/{t}[/projects[/{p}[/environments[/{e}]|/quota]]]]`:
//!   tenancy, with ETags and `If-Match` ([`tenancy`]).
//! - `/v1/tenants/{t}/projects/{p}/offerings[/{name}]`: what the project
//!   may request and what must hold first ([`offerings`]).
//! - `/v1/tenants/{t}/projects/{p}/machines[/{id}]`: the project's
//!   bare-metal machines, placed and claimed by the hub
//!   ([`project_machines`]).
//!
//! - `/v1/identity/...`: the OIDC settings (no token), the caller
//!   (`whoami`), role bindings and service tokens ([`identity`]).
//!
//! Every other endpoint requires `Authorization: Bearer <token>` ([`auth`]),
//! is rate-limited per caller ([`limits`]) and checks the caller's roles
//! (`dv_protocol::auth`, [`auth::require`]); every mutating call is
//! recorded in the audit stream with the caller as actor ([`audit`]).
//!
//! Routes and their OpenAPI description are declared together
//! (utoipa-axum's `routes!`), so a route cannot exist undocumented;
//! [`openapi`] is the document `dv-hub openapi` prints and
//! `docs/api/hub-openapi.json` holds. Its schemas are the protocol types'
//! own (`dv_protocol::Machine`, `Task`, `Tenant`, ...): each agent's
//! `/v1/machines` and `/v1/tasks` serialize the same types, so the hub's
//! document describes their bodies too.

pub mod audit;
pub mod auth;
mod identity;
mod inventory;
pub mod limits;
mod offerings;
mod project_machines;
mod tenancy;

use std::sync::Arc;
use std::time::Instant;

use async_nats::jetstream;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    /// The tenancy KV bucket ([`crate::kv::TENANCY`]).
    pub tenancy: jetstream::kv::Store,
    /// The NATS client.
    pub client: async_nats::Client,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// When the replica started.
    pub started: Instant,
    /// The API token's SHA-256; `None` = no token required (lab only).
    pub token_sha256: Option<[u8; 32]>,
    /// Role bindings and service tokens ([`crate::identity`]).
    pub identities: crate::identity::Identities,
    /// The OIDC verifier, with `[identity]`.
    pub oidc: Option<Arc<dv_identity::OidcVerifier>>,
    /// Per-principal rate limits (`[limits]`).
    pub limiter: Arc<dv_identity::RateLimiter>,
}

/// The OpenAPI document's frame: title, security scheme, tags. The paths
/// and schemas come from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Dataverket hub API",
        version = "1",
        description = "The hub's public REST API: every site's inventory, tasks and commands; \
                       tenants, projects, environments and quotas. See docs/api.md."
    ),
    modifiers(&BearerToken),
    security(("bearer" = [])),
    components(schemas(ErrorBody)),
    tags(
        (name = "hub", description = "Health and metrics (no token)"),
        (name = "inventory", description = "Sites, machines, tasks, commands and events of every site"),
        (name = "tenancy", description = "Tenants, projects, environments and quotas (ETag / If-Match)"),
        (name = "identity", description = "The caller, role bindings and service tokens (ADR 0013)"),
    )
)]
struct ApiDoc;

/// Adds the `bearer` security scheme every protected path refers to.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An OIDC token from the [identity] issuer (dvid login), a service \
                         token (dvs_...), or the hub's bootstrap token (token_file)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds the 401 that [`auth::require`] and the 429 that [`limits`] answer to
/// every operation behind
/// the token, in one place rather than in each handler's annotation. Runs
/// on the whole document ([`openapi`]): `ApiDoc`'s own modifiers run
/// before the routes bring their paths.
struct Unauthorized;

impl Modify for Unauthorized {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let open = utoipa::openapi::security::SecurityRequirement::default();
        let unauthorized = utoipa::openapi::ResponseBuilder::new()
            .description("No valid bearer token")
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        let limited = utoipa::openapi::ResponseBuilder::new()
            .description(
                "The caller's request rate is over its limit; retry after Retry-After seconds",
            )
            .header(
                "Retry-After",
                utoipa::openapi::HeaderBuilder::new()
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::Type::Integer),
                    ))
                    .description(Some("Whole seconds to wait"))
                    .build(),
            )
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let is_open = op.security.as_ref().is_some_and(|s| s.contains(&open));
                if !is_open {
                    op.responses
                        .responses
                        .entry("401".to_owned())
                        .or_insert_with(|| unauthorized.clone().into());
                    op.responses
                        .responses
                        .entry("429".to_owned())
                        .or_insert_with(|| limited.clone().into());
                }
            }
        }
    }
}

/// The error body of every `/v1` endpoint ([`problem`]); shared with the
/// SDK through dv-protocol.
pub(crate) use dv_protocol::api::ErrorBody;

/// Routes without a token.
fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(metrics_text))
        .routes(routes!(identity::oidc))
}

/// Routes behind the token and the audit trail.
fn protected_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inventory::sites))
        .routes(routes!(inventory::machines))
        .routes(routes!(inventory::machine))
        .routes(routes!(inventory::provision))
        .routes(routes!(inventory::deprovision))
        .routes(routes!(inventory::command))
        .routes(routes!(inventory::tasks))
        .routes(routes!(inventory::task))
        .routes(routes!(inventory::events))
        .merge(tenancy::routes())
        .routes(routes!(offerings::list))
        .routes(routes!(offerings::toggle))
        .routes(routes!(project_machines::list, project_machines::request))
        .routes(routes!(project_machines::release_one))
        .merge(identity::routes())
}

/// The hub's OpenAPI document (`dv-hub openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(public_routes())
        .merge(protected_routes())
        .into_openapi();
    Unauthorized.modify(&mut doc);
    doc
}

/// The hub's router.
pub fn router(state: AppState) -> Router {
    let (protected, _) = protected_routes().split_for_parts();
    let protected = protected
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate_request,
        ));
    let (public, _) = public_routes().split_for_parts();
    public.merge(protected).with_state(state)
}

/// The replica's health: its NATS link and how far its read model is.
#[utoipa::path(
    get, path = "/v1/health", tag = "hub", security(()),
    responses(
        (status = 200, description = "Connected to NATS", body = Health),
        (status = 503, description = "Not connected to NATS", body = Health),
    ),
)]
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

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", tag = "hub", security(()),
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")),
)]
async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// `GET /v1/health`'s body (built with `json!` in [`health`]; this type
/// describes it for the OpenAPI document).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    /// The replica's name.
    pub replica: String,
    /// `connected` or `disconnected`.
    pub nats: String,
    /// How far the read model is.
    pub read_model: crate::readmodel::Positions,
    /// Seconds since the replica started.
    pub uptime_seconds: u64,
}

// `GET /v1/sites` and the 202 of provision/deprovision answer these
// shared bodies, which the SDK decodes.
pub(crate) use dv_protocol::api::{CommandAccepted, SiteStatus};

/// A refused or failed call: its status and what to tell the caller.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    detail: String,
    /// The current ETag, for a 412.
    etag: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            etag: None,
        }
    }

    /// Names the record's current revision in an `ETag` header.
    pub(crate) fn with_etag(mut self, revision: u64) -> Self {
        self.etag = Some(revision);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = problem(self.status, self.detail);
        if let Some(revision) = self.etag
            && let Ok(v) = axum::http::HeaderValue::from_str(&format!("\"{revision}\""))
        {
            response.headers_mut().insert(axum::http::header::ETAG, v);
        }
        response
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
