//! The DNS part of the site API.
//!
//! - `GET /v1/dns/services`: every service and the host it points at.
//! - `PUT /v1/dns/services/{name}` with `{"host": "..."}`: moves a service
//!   (seed 5.1: the provisioner is a role). 200 with the service and the new
//!   serial; 404 for an unknown service; 422 when the host is not a host or
//!   interface identity with an address.
//! - `GET /v1/dns/zones/{zone}`: a zone's records as JSON.
//! - `GET /v1/dns/export/{vyos|opnsense|dnsmasq}`: router configuration.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dv_protocol::api::ErrorBody;
use serde::{Deserialize, Serialize};

use super::{AppState, problem};
use crate::dns::DnsError;
use crate::dns::export::{self, Format};
use crate::dns::records::{Moved, ServiceView};
use crate::dns::zones::ZoneData;

/// The body of a move.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    /// The new target: a host or interface identity label.
    pub host: String,
}

/// The formats of `GET /v1/dns/export/{format}` ([`Format::parse`]), for
/// the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // a schema only: the handler parses the path itself
pub(super) enum ExportFormat {
    /// VyOS `set service dns forwarding authoritative-domain ...` commands.
    Vyos,
    /// OPNsense Unbound host overrides (config.xml `unboundplus` fragment).
    Opnsense,
    /// dnsmasq configuration lines.
    Dnsmasq,
}

/// `GET /v1/dns/services`'s body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServiceList {
    /// Every service and where it points.
    pub services: Vec<ServiceView>,
}

#[utoipa::path(
    get, path = "/v1/dns/services", operation_id = "dns_list_services", tag = "dns",
    responses((status = 200, description = "Every service and the host it points at", body = ServiceList)),
)]
pub(super) async fn list_services(State(state): State<AppState>) -> Response {
    Json(ServiceList {
        services: state.dns.services().await,
    })
    .into_response()
}

#[utoipa::path(
    put, path = "/v1/dns/services/{name}", operation_id = "dns_move_service", tag = "dns",
    params(("name" = String, Path, description = "The service label")),
    request_body = MoveBody,
    responses(
        (status = 200, description = "Moved (or already there)", body = Moved),
        (status = 400, description = "A bad body", body = ErrorBody),
        (status = 404, description = "No such service", body = ErrorBody),
        (status = 422, description = "The host is not a host or interface identity with an address", body = ErrorBody),
    ),
)]
pub(super) async fn move_service(
    State(state): State<AppState>,
    caller: super::Caller,
    Path(name): Path<String>,
    body: Result<Json<MoveBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match state
        .dns
        .move_service(&name, &body.host, super::actor(&state, &caller))
        .await
    {
        Ok(moved) => Json(moved).into_response(),
        Err(e @ DnsError::UnknownService { .. }) => problem(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ DnsError::BadTarget { .. }) => {
            problem(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %crate::telemetry::error_chain(&e), "service move failed");
            problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

#[utoipa::path(
    get, path = "/v1/dns/zones/{zone}", operation_id = "dns_zone", tag = "dns",
    params(("zone" = String, Path, description = "The zone's origin, e.g. `lab.dataverket.test`")),
    responses(
        (status = 200, description = "The zone's records", body = ZoneData),
        (status = 404, description = "The agent serves no such zone", body = ErrorBody),
    ),
)]
pub(super) async fn zone(State(state): State<AppState>, Path(zone): Path<String>) -> Response {
    let zones = state.dns.zones();
    match zones.zone(&zone) {
        Some(z) => Json(z).into_response(),
        None => {
            let served: Vec<&str> = zones.zones.iter().map(|z| z.origin.as_str()).collect();
            problem(
                StatusCode::NOT_FOUND,
                format!(
                    "this agent serves no zone {zone:?} (zones: {})",
                    served.join(", ")
                ),
            )
        }
    }
}

#[utoipa::path(
    get, path = "/v1/dns/export/{format}", operation_id = "dns_export", tag = "dns",
    params(("format" = inline(ExportFormat), Path, description = "The router's configuration format")),
    responses(
        (status = 200, description = "The router configuration (OPNsense: XML; the others: text)",
         content((String = "text/plain"), (String = "application/xml"))),
        (status = 404, description = "No such format", body = ErrorBody),
    ),
)]
pub(super) async fn export(State(state): State<AppState>, Path(format): Path<String>) -> Response {
    let Some(f) = Format::parse(&format) else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("unknown export format {format:?} (formats: vyos, opnsense, dnsmasq)"),
        );
    };
    let text = export::render(f, &state.dns.zones(), &state.dns_upstreams);
    ([(header::CONTENT_TYPE, f.content_type())], text).into_response()
}
