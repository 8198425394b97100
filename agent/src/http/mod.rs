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
mod talos;
#[cfg(test)]
mod talos_tests;
mod tasks;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use dv_protocol::SiteName;
use metrics_exporter_prometheus::PrometheusHandle;

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
    /// `dns.upstreams`, for the router exports.
    pub dns_upstreams: Vec<std::net::SocketAddr>,
    /// Boot scripts, artifacts and callbacks.
    pub boot: std::sync::Arc<boot::BootHttp>,
    /// Seals and opens the secrets the store keeps (BMC passwords).
    pub site_key: crate::inventory::SiteKey,
    /// Starts and drives provisioning tasks.
    pub provisioner: std::sync::Arc<crate::provision::runner::Provisioner>,
}

/// The agent's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(health::health))
        .route("/metrics", get(metrics_text))
        .route("/v1/leases", get(leases::list))
        .route(
            "/v1/inventory",
            get(inventory::export)
                .post(inventory::import)
                .layer(axum::extract::DefaultBodyLimit::max(inventory::MAX_FILE)),
        )
        .route("/v1/machines", get(inventory::list))
        .route("/v1/machines/{key}", get(inventory::show))
        .route("/v1/machines/{key}/approve", post(inventory::approve))
        .route(
            "/v1/machines/{key}/power",
            get(bmc::power_state).post(bmc::set_power),
        )
        .route("/v1/machines/{key}/boot", post(bmc::boot_once))
        .route("/v1/machines/{key}/bmc/repin", post(bmc::repin))
        .route("/v1/machines/{key}/provision", post(tasks::provision))
        .route("/v1/machines/{key}/deprovision", post(tasks::deprovision))
        .route("/v1/tasks", get(tasks::list))
        .route("/v1/tasks/{id}", get(tasks::show))
        .route("/v1/tasks/{id}/retry", post(tasks::retry))
        .route("/v1/dns/services", get(dns::list_services))
        .route("/v1/dns/services/{name}", put(dns::move_service))
        .route("/v1/dns/zones/{zone}", get(dns::zone))
        .route("/v1/dns/export/{format}", get(dns::export))
        .route("/v1/networks", get(networks::list).post(networks::create))
        .route(
            "/v1/networks/{name}",
            get(networks::show).delete(networks::delete),
        )
        .route(
            "/v1/networks/{name}/addresses",
            get(networks::addresses).post(networks::allocate),
        )
        .route(
            "/v1/networks/{name}/addresses/{ip}",
            axum::routing::delete(networks::release),
        )
        .merge(boot::routes())
        .layer(middleware::from_fn(count_requests))
        .with_state(state)
}

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
pub(crate) fn problem(status: axum::http::StatusCode, detail: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": detail }))).into_response()
}
