//! Switch-port intent and the switches (issue 8).
//!
//! Intent (stored, validated as a whole on every change, 422 with
//! `problems` when a rule breaks; nothing reaches a switch until an apply):
//! - `GET /v1/intent`: networks, profiles, assignments and LAGs together.
//! - `GET /v1/port-profiles`, `PUT|DELETE /v1/port-profiles/{name}`.
//! - `GET /v1/switches/{switch}/ports`: the switch's assignments and LAGs.
//! - `PUT|DELETE /v1/switches/{switch}/ports/{port}` (a `/` in a port name
//!   is written `%2F`).
//! - `PUT|DELETE /v1/switches/{switch}/lags/{name}`.
//!
//! Switches (agent.toml's `[[switches]]`, see [`crate::nett::switches`]):
//! - `GET /v1/switches`: each with its last apply, realized ports, drift.
//! - `GET /v1/switches/{switch}/plan`: the changes an apply would make.
//! - `POST /v1/switches/{switch}/apply`: 200 with what was applied and
//!   read back; 502 when the switch cannot be reached or a step failed
//!   (rolled back: the body says which step and what was undone).
//! - `GET /v1/switches/{switch}/drift`: the switch read back against the
//!   intent; new drift is recorded as an event.
//! - `GET /v1/switches/{switch}/config/{vendor}`: the switch's port
//!   configuration rendered from the intent for SONiC (`config_db.json`),
//!   Arista EOS (configuration text) or Cumulus NVUE (YAML); for switches
//!   the agent does not drive itself.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dv_protocol::api::{
    ErrorBody, LagRequest, PortAssignRequest, ProfileRequest, SwitchApplied, SwitchApplyFailed,
    SwitchList, SwitchPlan,
};
use dv_protocol::{
    Actor, Lag, LagName, PortAssignment, PortName, PortProfile, PortProfileName, SiteIntent,
    SiteName, SwitchName,
};
use serde::Serialize;

use super::networks::Refusal;
use super::{AppState, Caller, actor, problem};
use crate::nett::switches::SwitchesError;
use crate::store::StoreError;
use crate::store::intent::{self, IntentRefusal};

/// `GET /v1/port-profiles`' body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ProfileList {
    /// Every port profile, by name.
    profiles: Vec<PortProfile>,
}

/// `GET /v1/switches/{switch}/ports`' body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct SwitchPorts {
    /// The switch.
    switch: String,
    /// Its ports with a profile of their own.
    assignments: Vec<PortAssignment>,
    /// Its LAGs.
    lags: Vec<Lag>,
}

fn store_failed(e: StoreError) -> Response {
    match e {
        StoreError::Intent(r) => {
            let status = match &r {
                IntentRefusal::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                IntentRefusal::ProfileInUse { .. } => StatusCode::CONFLICT,
                _ => StatusCode::NOT_FOUND,
            };
            match &r {
                IntentRefusal::Invalid(i) => (
                    status,
                    Json(Refusal {
                        error: r.to_string(),
                        problems: i.problems.clone(),
                    }),
                )
                    .into_response(),
                _ => problem(status, r.to_string()),
            }
        }
        other => {
            tracing::error!(error = %crate::telemetry::error_chain(&other), "switch intent store failed");
            problem(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
        }
    }
}

fn switches_failed(e: SwitchesError) -> Response {
    match e {
        SwitchesError::Unknown { .. } => problem(StatusCode::NOT_FOUND, e.to_string()),
        SwitchesError::Switch { .. } => problem(StatusCode::BAD_GATEWAY, e.to_string()),
        SwitchesError::ApplyFailed(f) => (StatusCode::BAD_GATEWAY, Json(*f)).into_response(),
        SwitchesError::Store(e) => store_failed(e),
    }
}

fn bad_body(e: &JsonRejection) -> Response {
    problem(e.status(), e.body_text())
}

/// A path segment that is not a valid name: 400.
pub(super) struct BadPath(String);

impl IntoResponse for BadPath {
    fn into_response(self) -> Response {
        problem(StatusCode::BAD_REQUEST, self.0)
    }
}

fn name<T>(
    what: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, BadPath> {
    parse(text).map_err(|e| BadPath(format!("bad {what} in the path: {e}")))
}

fn switch_name(text: &str) -> Result<SwitchName, BadPath> {
    name("switch name", text, |t| {
        SwitchName::new(t).map_err(|e| e.to_string())
    })
}

fn port_name(text: &str) -> Result<PortName, BadPath> {
    name("port name", text, |t| {
        PortName::new(t).map_err(|e| e.to_string())
    })
}

fn profile_name(text: &str) -> Result<PortProfileName, BadPath> {
    name("profile name", text, |t| {
        PortProfileName::new(t).map_err(|e| e.to_string())
    })
}

fn both<A, B>(a: Result<A, BadPath>, b: Result<B, BadPath>) -> Result<(A, B), BadPath> {
    Ok((a?, b?))
}

/// A change that answers 200 with what it changed.
fn ok<T>(done: Result<T, StoreError>) -> Result<(StatusCode, T), StoreError> {
    done.map(|v| (StatusCode::OK, v))
}

/// Runs one intent change in one store transaction as the caller (whose
/// subject is its event's actor) and answers with what changed, or the
/// refusal. The `audit` log line comes from the auth layer.
async fn change<T, F>(state: &AppState, caller: &Caller, f: F) -> Response
where
    T: Serialize + Send + 'static,
    F: FnOnce(&rusqlite::Connection, &SiteName, &Actor) -> Result<(StatusCode, T), StoreError>
        + Send
        + 'static,
{
    let (site, actor) = (state.site.clone(), actor(state, caller));
    match state.store.write(move |c| f(c, &site, &actor)).await {
        Ok((status, v)) => (status, Json(v)).into_response(),
        Err(e) => store_failed(e),
    }
}

#[utoipa::path(
    get, path = "/v1/intent", operation_id = "intent_show", tag = "switches",
    responses((status = 200, description = "The site's whole network intent", body = SiteIntent)),
)]
pub(super) async fn show_intent(State(state): State<AppState>) -> Response {
    match state.store.read(intent::load).await {
        Ok(i) => Json(i).into_response(),
        Err(e) => store_failed(e),
    }
}

#[utoipa::path(
    get, path = "/v1/port-profiles", operation_id = "port_profiles_list", tag = "switches",
    responses((status = 200, description = "Every port profile", body = ProfileList)),
)]
pub(super) async fn list_profiles(State(state): State<AppState>) -> Response {
    match state.store.read(intent::load).await {
        Ok(i) => Json(ProfileList {
            profiles: i.profiles,
        })
        .into_response(),
        Err(e) => store_failed(e),
    }
}

#[utoipa::path(
    put, path = "/v1/port-profiles/{name}", operation_id = "port_profiles_set", tag = "switches",
    params(("name" = String, Path, description = "The profile's name")),
    request_body = ProfileRequest,
    responses(
        (status = 200, description = "Changed", body = PortProfile),
        (status = 201, description = "Defined", body = PortProfile),
        (status = 400, description = "Not JSON, or a bad name", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A bad value, or the intent with it breaks a rule (with `problems`)", body = ErrorBody),
    ),
)]
pub(super) async fn set_profile(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Json<ProfileRequest>, JsonRejection>,
) -> Response {
    let name = match profile_name(&name) {
        Ok(n) => n,
        Err(r) => return r.into_response(),
    };
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return bad_body(&e),
    };
    change(&state, &caller, move |c, site, actor| {
        let (p, created) = intent::profile_set(c, site, actor, &name, req.mode)?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok((status, p))
    })
    .await
}

#[utoipa::path(
    delete, path = "/v1/port-profiles/{name}", operation_id = "port_profiles_delete", tag = "switches",
    params(("name" = String, Path, description = "The profile's name")),
    responses(
        (status = 200, description = "Deleted; the profile as it was", body = PortProfile),
        (status = 400, description = "A bad name", body = ErrorBody),
        (status = 404, description = "No such profile", body = ErrorBody),
        (status = 409, description = "Ports or LAGs still use it", body = ErrorBody),
    ),
)]
pub(super) async fn delete_profile(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    let name = match profile_name(&name) {
        Ok(n) => n,
        Err(r) => return r.into_response(),
    };
    change(&state, &caller, move |c, site, actor| {
        ok(intent::profile_delete(c, site, actor, &name))
    })
    .await
}

#[utoipa::path(
    get, path = "/v1/switches/{switch}/ports", operation_id = "switch_ports_list", tag = "switches",
    params(("switch" = String, Path, description = "The switch's name")),
    responses(
        (status = 200, description = "The switch's assignments and LAGs", body = SwitchPorts),
        (status = 400, description = "A bad name", body = ErrorBody),
    ),
)]
pub(super) async fn ports(State(state): State<AppState>, Path(switch): Path<String>) -> Response {
    let switch = match switch_name(&switch) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    match state.store.read(intent::load).await {
        Ok(i) => Json(SwitchPorts {
            switch: switch.to_string(),
            assignments: i
                .assignments
                .into_iter()
                .filter(|a| a.switch == switch)
                .collect(),
            lags: i.lags.into_iter().filter(|l| l.switch == switch).collect(),
        })
        .into_response(),
        Err(e) => store_failed(e),
    }
}

#[utoipa::path(
    put, path = "/v1/switches/{switch}/ports/{port}", operation_id = "switch_ports_assign", tag = "switches",
    params(
        ("switch" = String, Path, description = "The switch's name"),
        ("port" = String, Path, description = "The port as the switch names it (`/` as `%2F`)"),
    ),
    request_body = PortAssignRequest,
    responses(
        (status = 200, description = "Assigned", body = PortAssignment),
        (status = 400, description = "Not JSON, or a bad name", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A bad value, or the intent with it breaks a rule (with `problems`)", body = ErrorBody),
    ),
)]
pub(super) async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path((switch, port)): Path<(String, String)>,
    body: Result<Json<PortAssignRequest>, JsonRejection>,
) -> Response {
    let (switch, port) = match both(switch_name(&switch), port_name(&port)) {
        Ok(sp) => sp,
        Err(r) => return r.into_response(),
    };
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return bad_body(&e),
    };
    change(&state, &caller, move |c, site, actor| {
        ok(intent::port_assign(c, site, actor, &switch, &port, &req))
    })
    .await
}

#[utoipa::path(
    delete, path = "/v1/switches/{switch}/ports/{port}", operation_id = "switch_ports_unassign", tag = "switches",
    params(
        ("switch" = String, Path, description = "The switch's name"),
        ("port" = String, Path, description = "The port (`/` as `%2F`)"),
    ),
    responses(
        (status = 200, description = "Unassigned; the assignment as it was", body = PortAssignment),
        (status = 400, description = "A bad name", body = ErrorBody),
        (status = 404, description = "The port has no assignment", body = ErrorBody),
    ),
)]
pub(super) async fn unassign(
    State(state): State<AppState>,
    caller: Caller,
    Path((switch, port)): Path<(String, String)>,
) -> Response {
    let (switch, port) = match both(switch_name(&switch), port_name(&port)) {
        Ok(sp) => sp,
        Err(r) => return r.into_response(),
    };
    change(&state, &caller, move |c, site, actor| {
        ok(intent::port_unassign(c, site, actor, &switch, &port))
    })
    .await
}

fn lag_name(text: &str) -> Result<LagName, BadPath> {
    name("LAG name", text, |t| {
        LagName::new(t).map_err(|e| e.to_string())
    })
}

#[utoipa::path(
    put, path = "/v1/switches/{switch}/lags/{name}", operation_id = "switch_lags_set", tag = "switches",
    params(
        ("switch" = String, Path, description = "The switch's name"),
        ("name" = String, Path, description = "The LAG's name"),
    ),
    request_body = LagRequest,
    responses(
        (status = 200, description = "Set", body = Lag),
        (status = 400, description = "Not JSON, or a bad name", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "A bad value, or the intent with it breaks a rule (with `problems`)", body = ErrorBody),
    ),
)]
pub(super) async fn set_lag(
    State(state): State<AppState>,
    caller: Caller,
    Path((switch, lag)): Path<(String, String)>,
    body: Result<Json<LagRequest>, JsonRejection>,
) -> Response {
    let (switch, lag) = match both(switch_name(&switch), lag_name(&lag)) {
        Ok(sl) => sl,
        Err(r) => return r.into_response(),
    };
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return bad_body(&e),
    };
    change(&state, &caller, move |c, site, actor| {
        ok(intent::lag_set(
            c,
            site,
            actor,
            &switch,
            &lag,
            req.members,
            &req.profile,
        ))
    })
    .await
}

#[utoipa::path(
    delete, path = "/v1/switches/{switch}/lags/{name}", operation_id = "switch_lags_delete", tag = "switches",
    params(
        ("switch" = String, Path, description = "The switch's name"),
        ("name" = String, Path, description = "The LAG's name"),
    ),
    responses(
        (status = 200, description = "Deleted; the LAG as it was", body = Lag),
        (status = 400, description = "A bad name", body = ErrorBody),
        (status = 404, description = "No such LAG", body = ErrorBody),
    ),
)]
pub(super) async fn delete_lag(
    State(state): State<AppState>,
    caller: Caller,
    Path((switch, lag)): Path<(String, String)>,
) -> Response {
    let (switch, lag) = match both(switch_name(&switch), lag_name(&lag)) {
        Ok(sl) => sl,
        Err(r) => return r.into_response(),
    };
    change(&state, &caller, move |c, site, actor| {
        ok(intent::lag_delete(c, site, actor, &switch, &lag))
    })
    .await
}

#[utoipa::path(
    get, path = "/v1/switches", operation_id = "switches_list", tag = "switches",
    responses((status = 200, description = "The configured switches", body = SwitchList)),
)]
pub(super) async fn list(State(state): State<AppState>) -> Response {
    match state.switches.views().await {
        Ok(switches) => Json(SwitchList { switches }).into_response(),
        Err(e) => switches_failed(e),
    }
}

#[utoipa::path(
    get, path = "/v1/switches/{switch}/plan", operation_id = "switches_plan", tag = "switches",
    params(("switch" = String, Path, description = "The switch's name")),
    responses(
        (status = 200, description = "What an apply would change", body = SwitchPlan),
        (status = 404, description = "No such switch is configured", body = ErrorBody),
        (status = 502, description = "The switch cannot be reached or read", body = ErrorBody),
    ),
)]
pub(super) async fn plan(State(state): State<AppState>, Path(switch): Path<String>) -> Response {
    match state.switches.plan(&switch).await {
        Ok(p) => Json(p).into_response(),
        Err(e) => switches_failed(e),
    }
}

#[utoipa::path(
    post, path = "/v1/switches/{switch}/apply", operation_id = "switches_apply", tag = "switches",
    params(("switch" = String, Path, description = "The switch's name")),
    responses(
        (status = 200, description = "Applied and read back", body = SwitchApplied),
        (status = 404, description = "No such switch is configured", body = ErrorBody),
        (status = 502, description = "The switch cannot be reached, or a step failed and the \
                                      steps before it were rolled back (then with `failed` and \
                                      `rolled_back`)", body = SwitchApplyFailed),
    ),
)]
pub(super) async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    Path(switch): Path<String>,
) -> Response {
    match state.switches.apply(&switch, &actor(&state, &caller)).await {
        Ok(a) => Json(a).into_response(),
        Err(e) => switches_failed(e),
    }
}

#[utoipa::path(
    get, path = "/v1/switches/{switch}/drift", operation_id = "switches_drift", tag = "switches",
    params(("switch" = String, Path, description = "The switch's name")),
    responses(
        (status = 200, description = "What differs from the intent (empty: in sync)", body = SwitchPlan),
        (status = 404, description = "No such switch is configured", body = ErrorBody),
        (status = 502, description = "The switch cannot be reached or read", body = ErrorBody),
    ),
)]
pub(super) async fn drift(
    State(state): State<AppState>,
    caller: Caller,
    Path(switch): Path<String>,
) -> Response {
    match state.switches.drift(&switch, &actor(&state, &caller)).await {
        Ok(p) => Json(p).into_response(),
        Err(e) => switches_failed(e),
    }
}

#[utoipa::path(
    get, path = "/v1/switches/{switch}/config/{vendor}", operation_id = "switches_render", tag = "switches",
    params(
        ("switch" = String, Path, description = "The switch's name, as the intent names it"),
        ("vendor" = String, Path, description = "`sonic`, `eos` or `nvue`"),
    ),
    responses(
        (status = 200, description = "The configuration: JSON for sonic, text for eos, YAML for nvue", body = String, content_type = "text/plain"),
        (status = 400, description = "A bad switch name", body = ErrorBody),
        (status = 404, description = "An unknown vendor, or no port of the intent is on the switch", body = ErrorBody),
        (status = 422, description = "The intent cannot be written for this vendor (a port or LAG name it does not take)", body = ErrorBody),
    ),
)]
pub(super) async fn render(
    State(state): State<AppState>,
    Path((switch, vendor)): Path<(String, String)>,
) -> Response {
    use crate::nett::render::{self, RenderError, Vendor};
    let switch = match switch_name(&switch) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let vendor = match vendor.parse::<Vendor>() {
        Ok(v) => v,
        Err(e) => return problem(StatusCode::NOT_FOUND, e.to_string()),
    };
    let site = match state.store.read(intent::load).await {
        Ok(i) => i,
        Err(e) => return store_failed(e),
    };
    match render::render(vendor, &site, &switch) {
        Ok(text) => {
            let kind = match vendor {
                Vendor::Sonic => "application/json",
                Vendor::Eos => "text/plain; charset=utf-8",
                Vendor::Nvue => "application/yaml",
            };
            ([(axum::http::header::CONTENT_TYPE, kind)], text).into_response()
        }
        Err(e @ (RenderError::NoPorts { .. } | RenderError::UnknownVendor { .. })) => {
            problem(StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            crate::telemetry::error_chain(&e),
        ),
    }
}
