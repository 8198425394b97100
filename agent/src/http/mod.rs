//! The agent's HTTP listener.
//!
//! The operational endpoints, network boot, and the site-scoped `/v1` API.
//! - `GET /v1/health`: 200 with a JSON body when the agent can read its
//!   store, 503 otherwise (load balancers and `dv` use it).
//! - `GET /metrics`: Prometheus text exposition.
//! - `GET /v1/leases`: the DHCP leases (see `leases`).
//! - `/v1/dns/...`: services, zones and router exports (see `dns`).
//! - `/v1/networks/...`: network intent and IPAM (see `networks`).
//! - `/boot/...`: iPXE scripts, the boot callback (see `boot`) and Talos
//!   machine configs (see `talos`).
//! - `/artifacts/...`: boot artifacts with Range, ETag and sha256 (see
//!   `artifacts`).
//!
//! The `/v1` routes (and `/metrics`) are declared with their OpenAPI
//! description (utoipa-axum's `routes!`), so none can exist undocumented;
//! [`openapi`] is the document `dv-agent openapi` prints and
//! `docs/api/agent-openapi.json` holds. `/boot` and `/artifacts` are for
//! firmware, not API clients, and stay out of it.

mod artifacts;
pub mod auth;
mod bmc;
pub mod boot;
#[cfg(test)]
mod boot_tests;
mod dns;
mod health;
mod inventory;
mod leases;
mod networks;
mod switches;
mod talos;
#[cfg(test)]
mod talos_tests;
mod tasks;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use dv_protocol::SiteName;
use metrics_exporter_prometheus::PrometheusHandle;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::store::Store;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The agent store.
    pub store: Store,
    /// The site this agent serves.
    pub site: SiteName,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// When the agent started serving.
    pub started: Instant,
    /// The live DNS records (served, moved, exported).
    pub dns: crate::dns::Records,
    /// IPAM's DHCP reservations as the DHCP server serves them; refreshed
    /// after every allocate and release.
    pub reservations: crate::dhcp::Reservations,
    /// `dns.upstreams`, for the router exports.
    pub dns_upstreams: Vec<std::net::SocketAddr>,
    /// Boot scripts, artifacts and callbacks.
    pub boot: std::sync::Arc<boot::BootHttp>,
    /// Seals and opens the secrets the store keeps (BMC passwords).
    pub site_key: crate::inventory::SiteKey,
    /// Starts and drives provisioning tasks.
    pub provisioner: std::sync::Arc<crate::provision::runner::Provisioner>,
    /// The switches configured from the port intent.
    pub switches: std::sync::Arc<crate::nett::switches::Switches>,
}

/// The OpenAPI document's frame: title and tags. The paths and schemas
/// come from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Dataverket agent API",
        version = "1",
        description = "One site's agent: leases, inventory, machines and their BMCs, \
                       provisioning tasks, DNS, networks and IPAM. See docs/api.md."
    ),
    components(schemas(dv_protocol::api::ErrorBody)),
    tags(
        (name = "agent", description = "Health and metrics"),
        (name = "dhcp", description = "DHCP leases"),
        (name = "inventory", description = "The inventory file and the machines"),
        (name = "bmc", description = "Power and next boot through each machine's BMC"),
        (name = "tasks", description = "Provisioning tasks"),
        (name = "dns", description = "DNS services, zones and router exports"),
        (name = "networks", description = "Network intent and IPAM"),
        (name = "switches", description = "Switch-port intent, and plan, apply and drift of the switches"),
    )
)]
struct ApiDoc;

/// The documented routes: `/v1` and `/metrics`.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::health))
        .routes(routes!(metrics_text))
        .routes(routes!(leases::list))
        .routes(
            routes!(inventory::export, inventory::import)
                .layer(axum::extract::DefaultBodyLimit::max(inventory::MAX_FILE)),
        )
        .routes(routes!(inventory::list))
        .routes(routes!(inventory::show))
        .routes(routes!(inventory::approve))
        .routes(routes!(bmc::power_state, bmc::set_power))
        .routes(routes!(bmc::boot_once))
        .routes(routes!(bmc::repin))
        .routes(routes!(tasks::provision))
        .routes(routes!(tasks::deprovision))
        .routes(routes!(tasks::list))
        .routes(routes!(tasks::show))
        .routes(routes!(tasks::retry))
        .routes(routes!(dns::list_services))
        .routes(routes!(dns::move_service))
        .routes(routes!(dns::zone))
        .routes(routes!(dns::export))
        .routes(routes!(networks::list, networks::create))
        .routes(routes!(networks::show, networks::delete))
        .routes(routes!(networks::addresses, networks::allocate))
        .routes(routes!(networks::release))
        .routes(routes!(switches::show_intent))
        .routes(routes!(switches::list_profiles))
        .routes(routes!(switches::set_profile, switches::delete_profile))
        .routes(routes!(switches::list))
        .routes(routes!(switches::ports))
        .routes(routes!(switches::assign, switches::unassign))
        .routes(routes!(switches::set_lag, switches::delete_lag))
        .routes(routes!(switches::plan))
        .routes(routes!(switches::apply))
        .routes(routes!(switches::drift))
        .routes(routes!(switches::render))
}

/// The agent's OpenAPI document (`dv-agent openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(api_routes())
        .into_openapi();
    auth::document(&mut doc);
    doc
}

/// The agent's router.
pub fn router(state: AppState) -> Router {
    let (api, _) = api_routes().split_for_parts();
    api.layer(middleware::from_fn(json_errors))
        .merge(boot::routes())
        .layer(middleware::from_fn(count_requests))
        .with_state(state)
}

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", operation_id = "metrics_text", tag = "agent",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")),
)]
async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    // The outbox depth is read at scrape time, so the gauge is never stale.
    if let Ok(n) = state.store.read(crate::store::outbox::pending_count).await {
        metrics::gauge!("dv_outbox_pending").set(n as f64);
    }
    if let Ok(counts) = state.store.read(crate::dhcp::store::holding_counts).await {
        for (subnet, lease_state, n) in counts {
            metrics::gauge!("dv_dhcp_leases", "subnet" => subnet, "state" => lease_state)
                .set(n as f64);
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Largest plain-text error body [`json_errors`] rewraps (axum's
/// rejection messages are one line).
const MAX_PLAIN_ERROR: usize = 16 << 10;

/// axum's own rejections (a path segment that is not UTF-8, say) answer in
/// plain text before a handler runs; every `/v1` error is
/// `{"error": ...}`, so they are rewrapped here with the same status.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let plain = (response.headers().get(axum::http::header::CONTENT_TYPE))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !plain || !response.status().is_client_error() {
        return response;
    }
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), MAX_PLAIN_ERROR)
        .await
        .unwrap_or_default();
    problem(status, String::from_utf8_lossy(&body).into_owned())
}

async fn count_requests(req: Request, next: Next) -> Response {
    // The route template, not the raw path, so labels stay bounded.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    metrics::counter!(
        "dv_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    response
}

/// An error answer as every `/v1` endpoint gives it: `{"error": detail}`.
/// Who made the call, as its events' actor (the audit trail): the
/// authenticated principal, or the agent itself when the caller has none
/// that makes a valid actor.
pub(crate) type Caller = Option<axum::Extension<dv_protocol::auth::Principal>>;

pub(crate) fn actor(state: &AppState, caller: &Caller) -> dv_protocol::Actor {
    caller
        .as_ref()
        .and_then(|axum::Extension(p)| dv_protocol::Actor::new(p.subject.clone()).ok())
        .unwrap_or_else(|| dv_protocol::Actor::agent(&state.site))
}

pub(crate) fn problem(status: axum::http::StatusCode, detail: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": detail }))).into_response()
}
