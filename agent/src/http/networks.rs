//! `/v1/networks`: network intent and IPAM (issue 8).
//!
//! - `POST /v1/networks` with a [`NetworkSpec`]: 201 with the network; 422
//!   when the body or the network itself is wrong (each problem names its
//!   field), 409 when it clashes with another network (VLAN, name, prefix).
//! - `GET /v1/networks`, `GET /v1/networks/{name}`.
//! - `DELETE /v1/networks/{name}`: 409 while it holds allocations.
//! - `POST /v1/networks/{name}/addresses` with optional `owner`,
//!   `hostname`, `mac`, `address`: 201 with the allocation, its DHCP
//!   reservation and DNS record id; 409 when the prefix is full or a name,
//!   MAC or address is taken (also by a DHCP reservation in agent.toml,
//!   which wins, or by another client's active DHCP lease); 422 for a bad
//!   field. The DHCP server serves the
//!   reservation from the moment this returns.
//! - `GET /v1/networks/{name}/addresses`.
//! - `DELETE /v1/networks/{name}/addresses/{ip}`.
//!
//! Every refusal changes nothing (see [`crate::nett`]).

use std::net::IpAddr;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dv_protocol::api::ErrorBody;
use dv_protocol::{NetworkSpec, Problem};
use serde::Serialize;

use super::{AppState, problem};
use crate::nett::{self, NettError};
use crate::store::StoreError;
use crate::store::ipam::{self, AllocateRequest, AllocationRow, IpamError, NetworkRow};

/// A refusal that names each field it is about.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Refusal {
    /// What went wrong.
    pub(super) error: String,
    /// Each problem, with the field it is about.
    pub(super) problems: Vec<Problem>,
}

/// `GET /v1/networks`'s body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct NetworkList {
    /// Every network of the site.
    networks: Vec<NetworkRow>,
}

/// `GET /v1/networks/{name}/addresses`' body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct AddressList {
    /// The network's name.
    network: String,
    /// Its allocations.
    addresses: Vec<AllocationRow>,
}

fn refused(e: NettError) -> Response {
    match e {
        NettError::Refused(e) => {
            let status = match &e {
                IpamError::Invalid(_)
                | IpamError::BadRequest { .. }
                | IpamError::BadAddress { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                IpamError::UnknownNetwork { .. } | IpamError::NotAllocated { .. } => {
                    StatusCode::NOT_FOUND
                }
                _ => StatusCode::CONFLICT,
            };
            match &e {
                IpamError::Invalid(i) | IpamError::Conflict(i) => {
                    let body = Refusal {
                        error: e.to_string(),
                        problems: i.problems.clone(),
                    };
                    (status, Json(body)).into_response()
                }
                _ => problem(status, e.to_string()),
            }
        }
        NettError::Failed(e) => {
            tracing::error!(error = %crate::telemetry::error_chain(&e), "network change failed");
            problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

fn failed(e: &StoreError) -> Response {
    tracing::error!(error = %crate::telemetry::error_chain(e), "network read failed");
    problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn bad_body(e: &JsonRejection) -> Response {
    // A syntax error is 400; a well-formed body with a wrong value (VLAN
    // 5000, an unknown field) is 422.
    problem(e.status(), e.body_text())
}

#[utoipa::path(
    post, path = "/v1/networks", operation_id = "networks_create", tag = "networks",
    request_body = NetworkSpec,
    responses(
        (status = 201, description = "Created", body = NetworkRow),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 409, description = "It clashes with another network", body = Refusal),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "The body or the network is wrong (a wrong network: with \
                                      `problems`, each naming its field, as in a 409)", body = ErrorBody),
    ),
)]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: super::Caller,
    body: Result<Json<NetworkSpec>, JsonRejection>,
) -> Response {
    let Json(spec) = match body {
        Ok(b) => b,
        Err(e) => return bad_body(&e),
    };
    match nett::network_create(&state.dns, &state.site, super::actor(&state, &caller), spec).await {
        Ok(row) => {
            tracing::info!(network = %row.spec.name, vlan = %row.spec.vlan, prefix = %row.spec.prefix, "network created");
            (StatusCode::CREATED, Json(row)).into_response()
        }
        Err(e) => refused(e),
    }
}

#[utoipa::path(
    get, path = "/v1/networks", operation_id = "networks_list", tag = "networks",
    responses((status = 200, description = "Every network", body = NetworkList)),
)]
pub(super) async fn list(State(state): State<AppState>) -> Response {
    match state.store.read(ipam::networks).await {
        Ok(networks) => Json(NetworkList { networks }).into_response(),
        Err(e) => failed(&e),
    }
}

#[utoipa::path(
    get, path = "/v1/networks/{name}", operation_id = "networks_show", tag = "networks",
    params(("name" = String, Path, description = "The network's name")),
    responses(
        (status = 200, description = "The network", body = NetworkRow),
        (status = 404, description = "No such network", body = ErrorBody),
    ),
)]
pub(super) async fn show(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let n = name.clone();
    match state.store.read(move |c| ipam::network(c, &n)).await {
        Ok(Some(row)) => Json(row).into_response(),
        Ok(None) => refused(NettError::Refused(IpamError::UnknownNetwork { name })),
        Err(e) => failed(&e),
    }
}

#[utoipa::path(
    delete, path = "/v1/networks/{name}", operation_id = "networks_delete", tag = "networks",
    params(("name" = String, Path, description = "The network's name")),
    responses(
        (status = 200, description = "Deleted; the network as it was", body = NetworkRow),
        (status = 404, description = "No such network", body = ErrorBody),
        (status = 409, description = "It still holds allocations", body = ErrorBody),
    ),
)]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: super::Caller,
    Path(name): Path<String>,
) -> Response {
    match nett::network_delete(&state.dns, &state.site, super::actor(&state, &caller), name).await {
        Ok(row) => {
            tracing::info!(network = %row.spec.name, "network deleted");
            Json(row).into_response()
        }
        Err(e) => refused(e),
    }
}

#[utoipa::path(
    post, path = "/v1/networks/{name}/addresses", operation_id = "networks_allocate", tag = "networks",
    params(("name" = String, Path, description = "The network's name")),
    request_body = AllocateRequest,
    responses(
        (status = 201, description = "Allocated, with its DHCP reservation and DNS record", body = AllocationRow),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 404, description = "No such network", body = ErrorBody),
        (status = 409, description = "The prefix is full, or a name, MAC or address is taken (allocated, reserved in agent.toml, or leased by DHCP to another client: the message names the lease holder's MAC and when its lease ends)", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A bad field", body = ErrorBody),
    ),
)]
pub(super) async fn allocate(
    State(state): State<AppState>,
    caller: super::Caller,
    Path(name): Path<String>,
    body: Result<Json<AllocateRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return bad_body(&e),
    };
    match nett::allocate(
        &state.dns,
        &state.reservations,
        &state.site,
        super::actor(&state, &caller),
        name,
        req,
    )
    .await
    {
        Ok(row) => {
            tracing::info!(address = %row.allocation.address, hostname = ?row.allocation.hostname, "address allocated");
            (StatusCode::CREATED, Json(row)).into_response()
        }
        Err(e) => refused(e),
    }
}

#[utoipa::path(
    get, path = "/v1/networks/{name}/addresses", operation_id = "networks_list_addresses", tag = "networks",
    params(("name" = String, Path, description = "The network's name")),
    responses(
        (status = 200, description = "The network's allocations", body = AddressList),
        (status = 404, description = "No such network", body = ErrorBody),
    ),
)]
pub(super) async fn addresses(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let n = name.clone();
    let read = state
        .store
        .read(move |c| {
            ipam::network(c, &n)?
                .map(|row| ipam::allocations(c, &row))
                .transpose()
        })
        .await;
    match read {
        Ok(Some(addresses)) => Json(AddressList {
            network: name,
            addresses,
        })
        .into_response(),
        Ok(None) => refused(NettError::Refused(IpamError::UnknownNetwork { name })),
        Err(e) => failed(&e),
    }
}

#[utoipa::path(
    delete, path = "/v1/networks/{name}/addresses/{ip}", operation_id = "networks_release", tag = "networks",
    params(
        ("name" = String, Path, description = "The network's name"),
        ("ip" = String, Path, description = "The allocated address"),
    ),
    responses(
        (status = 200, description = "Released; the allocation as it was", body = AllocationRow),
        (status = 400, description = "Not an IP address", body = ErrorBody),
        (status = 404, description = "No such network or allocation", body = ErrorBody),
    ),
)]
pub(super) async fn release(
    State(state): State<AppState>,
    caller: super::Caller,
    Path((name, ip)): Path<(String, String)>,
) -> Response {
    let Ok(address) = ip.parse::<IpAddr>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("{ip:?} is not an IP address; write it as 10.20.0.7 or fd00::7"),
        );
    };
    match nett::release(
        &state.dns,
        &state.reservations,
        &state.site,
        super::actor(&state, &caller),
        name,
        address,
    )
    .await
    {
        Ok(row) => {
            tracing::info!(address = %address, "address released");
            Json(row).into_response()
        }
        Err(e) => refused(e),
    }
}
