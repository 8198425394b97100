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
//!   MAC or address is taken; 422 for a bad field.
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
use dv_protocol::{Actor, NetworkSpec};
use serde_json::json;

use super::{AppState, problem};
use crate::nett::{self, NettError};
use crate::store::StoreError;
use crate::store::ipam::{self, AllocateRequest, IpamError};

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
                IpamError::Invalid(i) | IpamError::Conflict(i) => (
                    status,
                    Json(json!({ "error": e.to_string(), "problems": i.problems })),
                )
                    .into_response(),
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

pub(super) async fn create(
    State(state): State<AppState>,
    body: Result<Json<NetworkSpec>, JsonRejection>,
) -> Response {
    let Json(spec) = match body {
        Ok(b) => b,
        Err(e) => return bad_body(&e),
    };
    match nett::network_create(&state.dns, &state.site, Actor::agent(&state.site), spec).await {
        Ok(row) => {
            tracing::info!(network = %row.spec.name, vlan = %row.spec.vlan, prefix = %row.spec.prefix, "network created");
            (StatusCode::CREATED, Json(row)).into_response()
        }
        Err(e) => refused(e),
    }
}

pub(super) async fn list(State(state): State<AppState>) -> Response {
    match state.store.read(ipam::networks).await {
        Ok(n) => Json(json!({ "networks": n })).into_response(),
        Err(e) => failed(&e),
    }
}

pub(super) async fn show(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let n = name.clone();
    match state.store.read(move |c| ipam::network(c, &n)).await {
        Ok(Some(row)) => Json(row).into_response(),
        Ok(None) => refused(NettError::Refused(IpamError::UnknownNetwork { name })),
        Err(e) => failed(&e),
    }
}

pub(super) async fn delete(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match nett::network_delete(&state.dns, &state.site, Actor::agent(&state.site), name).await {
        Ok(row) => {
            tracing::info!(network = %row.spec.name, "network deleted");
            Json(row).into_response()
        }
        Err(e) => refused(e),
    }
}

pub(super) async fn allocate(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<AllocateRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return bad_body(&e),
    };
    match nett::allocate(
        &state.dns,
        &state.site,
        Actor::agent(&state.site),
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
        Ok(Some(a)) => Json(json!({ "network": name, "addresses": a })).into_response(),
        Ok(None) => refused(NettError::Refused(IpamError::UnknownNetwork { name })),
        Err(e) => failed(&e),
    }
}

pub(super) async fn release(
    State(state): State<AppState>,
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
        &state.site,
        Actor::agent(&state.site),
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
