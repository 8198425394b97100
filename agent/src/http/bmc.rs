//! `/v1/machines/{key}/power` and `/v1/machines/{key}/boot`: a machine's
//! power and next boot device, through its BMC with the credentials the
//! inventory keeps sealed. `/v1/machines/{key}/bmc/repin`: trust the TLS
//! certificate the machine's BMC presents now (after it was replaced).
//!
//! Each call returns once the BMC reads back as changed (see
//! [`crate::bmc`]), so a power action can take as long as
//! [`Limits::power_settle`]. BMC failures are `502` with the driver's
//! message, which names the BMC and what it reported.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dv_protocol::api::ErrorBody;
use dv_protocol::{Machine, MachineId};
use serde::{Deserialize, Serialize};

use super::{AppState, problem};
use crate::bmc::machine::{Driver, DriverError, driver_for};
use crate::bmc::{Bmc, BmcError, BootTarget, Fingerprint, Limits, PowerAction};

/// Body of `POST .../power`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PowerRequest {
    action: Action,
}

/// A power action.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Action {
    On,
    ForceOff,
    GracefulShutdown,
    ForceRestart,
}

/// Body of `POST .../boot`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BootRequest {
    target: Target,
}

/// A boot device.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Target {
    Pxe,
    Disk,
    UefiHttp,
}

/// Body of `POST .../bmc/repin` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RepinRequest {
    /// Pin only if the BMC presents this certificate (SHA-256, hex, colons
    /// allowed): the fingerprint the refusal named, checked out of band.
    sha256: Option<String>,
}

/// The power state of a machine (`GET`), or the state a power action
/// settles in (`POST`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct PowerState {
    /// The machine.
    machine: MachineId,
    /// `on` or `off`.
    power: String,
}

/// The next boot device, as set.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct NextBoot {
    /// The machine.
    machine: MachineId,
    /// The device the next boot uses.
    next_boot: String,
}

/// The certificate pinned now and the one it replaced.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Repinned {
    /// The machine.
    machine: MachineId,
    /// The pinned certificate's SHA-256, hex.
    sha256: String,
    /// The former pin, if there was one.
    previous: Option<String>,
}

fn driver_problem(e: &DriverError) -> Response {
    let status = match e {
        DriverError::NotFound(_) => StatusCode::NOT_FOUND,
        DriverError::NoBmc(_) | DriverError::NotTls(_) | DriverError::RepinRefused { .. } => {
            StatusCode::CONFLICT
        }
        DriverError::Bmc(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %crate::telemetry::error_chain(e), "machine lookup failed");
    }
    problem(status, crate::telemetry::error_chain(e))
}

/// The machine's BMC driver, or the response that says why there is none.
async fn driver(state: &AppState, key: &str) -> Result<(Machine, Driver), Response> {
    driver_for(&state.store, &state.site_key, key, Limits::default())
        .await
        .map_err(|e| driver_problem(&e))
}

/// `POST /v1/machines/{key}/bmc/repin`, optionally with `{"sha256":
/// "<fingerprint>"}`: pins the certificate the BMC presents now (only if
/// it is that one, when given). Answers the new and the former pin.
#[utoipa::path(
    post, path = "/v1/machines/{key}/bmc/repin", operation_id = "bmc_repin", tag = "bmc",
    params(("key" = String, Path, description = "The machine's id, serial or MAC")),
    request_body(content = Option<RepinRequest>, description = "Optional: the certificate to expect"),
    responses(
        (status = 200, description = "Pinned", body = Repinned),
        (status = 400, description = "A bad fingerprint", body = ErrorBody),
        (status = 404, description = "No such machine", body = ErrorBody),
        (status = 409, description = "The machine has no BMC (or, for repin, no TLS BMC or another certificate)", body = ErrorBody),
        (status = 422, description = "The BMC does not support this", body = ErrorBody),
        (status = 502, description = "The BMC failed or did not answer", body = ErrorBody),
    ),
)]
pub(super) async fn repin(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: Result<Option<Json<RepinRequest>>, JsonRejection>,
) -> Response {
    let req = match body {
        Ok(b) => b.map(|Json(b)| b).unwrap_or_default(),
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let expect = match req.sha256.as_deref().map(str::parse::<Fingerprint>) {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => return problem(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match crate::bmc::machine::repin(
        &state.store,
        &state.site_key,
        &key,
        expect,
        Limits::default(),
    )
    .await
    {
        Ok(r) => Json(Repinned {
            machine: r.machine.id,
            sha256: r.pinned.to_string(),
            previous: r.previous.map(|p| p.to_string()),
        })
        .into_response(),
        Err(e) => driver_problem(&e),
    }
}

/// `GET /v1/machines/{key}/power`.
#[utoipa::path(
    get, path = "/v1/machines/{key}/power", operation_id = "bmc_power_state", tag = "bmc",
    params(("key" = String, Path, description = "The machine's id, serial or MAC")),
    responses(
        (status = 200, description = "The power state as the BMC reports it", body = PowerState),
        (status = 404, description = "No such machine", body = ErrorBody),
        (status = 409, description = "The machine has no BMC (or, for repin, no TLS BMC or another certificate)", body = ErrorBody),
        (status = 422, description = "The BMC does not support this", body = ErrorBody),
        (status = 502, description = "The BMC failed or did not answer", body = ErrorBody),
    ),
)]
pub(super) async fn power_state(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Response {
    let (machine, bmc) = match driver(&state, &key).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match bmc.power_state().await {
        Ok(p) => Json(PowerState {
            machine: machine.id,
            power: p.to_string(),
        })
        .into_response(),
        Err(e) => bmc_failed(&machine, &e),
    }
}

/// `POST /v1/machines/{key}/power` with `{"action": "on" | "force_off" |
/// "graceful_shutdown" | "force_restart"}`.
#[utoipa::path(
    post, path = "/v1/machines/{key}/power", operation_id = "bmc_set_power", tag = "bmc",
    params(("key" = String, Path, description = "The machine's id, serial or MAC")),
    request_body = PowerRequest,
    responses(
        (status = 200, description = "Done: the state it settled in", body = PowerState),
        (status = 400, description = "A bad body", body = ErrorBody),
        (status = 404, description = "No such machine", body = ErrorBody),
        (status = 409, description = "The machine has no BMC (or, for repin, no TLS BMC or another certificate)", body = ErrorBody),
        (status = 422, description = "The BMC does not support this", body = ErrorBody),
        (status = 502, description = "The BMC failed or did not answer", body = ErrorBody),
    ),
)]
pub(super) async fn set_power(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: Result<Json<PowerRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let action = match req.action {
        Action::On => PowerAction::On,
        Action::ForceOff => PowerAction::ForceOff,
        Action::GracefulShutdown => PowerAction::GracefulShutdown,
        Action::ForceRestart => PowerAction::ForceRestart,
    };
    let (machine, bmc) = match driver(&state, &key).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match bmc.set_power(action).await {
        Ok(()) => {
            tracing::info!(machine = %machine.id, serial = %machine.serial, %action, "machine power changed");
            Json(PowerState {
                machine: machine.id,
                power: action.settles_in().to_string(),
            })
            .into_response()
        }
        Err(e) => bmc_failed(&machine, &e),
    }
}

/// `POST /v1/machines/{key}/boot` with `{"target": "pxe" | "disk" |
/// "uefi_http"}`: the next boot only.
#[utoipa::path(
    post, path = "/v1/machines/{key}/boot", operation_id = "bmc_boot_once", tag = "bmc",
    params(("key" = String, Path, description = "The machine's id, serial or MAC")),
    request_body = BootRequest,
    responses(
        (status = 200, description = "The next boot is set", body = NextBoot),
        (status = 400, description = "A bad body", body = ErrorBody),
        (status = 404, description = "No such machine", body = ErrorBody),
        (status = 409, description = "The machine has no BMC (or, for repin, no TLS BMC or another certificate)", body = ErrorBody),
        (status = 422, description = "The BMC does not support this", body = ErrorBody),
        (status = 502, description = "The BMC failed or did not answer", body = ErrorBody),
    ),
)]
pub(super) async fn boot_once(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: Result<Json<BootRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let target = match req.target {
        Target::Pxe => BootTarget::Pxe,
        Target::Disk => BootTarget::Hdd,
        Target::UefiHttp => BootTarget::UefiHttp,
    };
    let (machine, bmc) = match driver(&state, &key).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match bmc.boot_once(target).await {
        Ok(()) => {
            tracing::info!(machine = %machine.id, serial = %machine.serial, %target, "machine next boot set");
            Json(NextBoot {
                machine: machine.id,
                next_boot: target.to_string(),
            })
            .into_response()
        }
        Err(e) => bmc_failed(&machine, &e),
    }
}

fn bmc_failed(machine: &Machine, e: &BmcError) -> Response {
    tracing::warn!(machine = %machine.id, serial = %machine.serial, error = %crate::telemetry::error_chain(e), "BMC call failed");
    let status = match e {
        BmcError::Unsupported { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_GATEWAY,
    };
    problem(
        status,
        format!(
            "machine {}: {}",
            machine.serial,
            crate::telemetry::error_chain(e)
        ),
    )
}
