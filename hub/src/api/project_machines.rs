//! A project's bare-metal machines (`/v1/tenants/{t}/projects/{p}/machines`):
//! a request is placed by the hub on an available machine at a site the
//! project may use, claimed, and provisioned by the machine's site.
//!
//! The claim is the reservation: one KV key per machine, written with
//! `create`, so two requests racing for the same machine cannot both win.
//! The quota is checked before the claim and again after it (counting
//! every claim of the project, the new one included): of two requests
//! racing for the last unit, at least the later one backs out, so the
//! quota is never exceeded (both may back out; the caller retries).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dv_protocol::api::{MachineClaim, MachineRequest, ProjectMachine};
use dv_protocol::auth::{Action, Principal, Scope};
use dv_protocol::{Command, EnvironmentName, MachineState, Message, ProjectName, TenantName};

use super::audit::Correlation;
use super::auth::Caller;
use super::auth::require;
use super::inventory::publish_command;
use super::offerings::{all_claims, facts};
use super::tenancy::{parse_body, parse_name, store_failed};
use super::{ApiError, AppState, ErrorBody};
use crate::kv::{self, KvError, keys};
use crate::offerings::{self as catalog, find};

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn refused(status: StatusCode, detail: String) -> ApiError {
    ApiError::new(status, detail)
}

/// `GET /v1/tenants/{tenant}/projects/{project}/machines`
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/projects/{project}/machines", tag = "tenancy", operation_id = "list_project_machines",
    params(
        ("tenant" = String, Path, description = "Tenant name"),
        ("project" = String, Path, description = "Project name"),
    ),
    responses(
        (status = 200, description = "The machines the project holds, with their current state", body = Vec<ProjectMachine>),
        (status = 400, description = "Not a name", body = ErrorBody),
        (status = 403, description = "The caller sees the project but lacks the role", body = ErrorBody),
        (status = 404, description = "No such tenant or project (or one the caller may not see)", body = ErrorBody),
    ),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path((t, p)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (t, p): (TenantName, ProjectName) = (parse_name(&t)?, parse_name(&p)?);
    require(&who, Action::Read, &Scope::project(&t, &p))?;
    super::tenancy::require_parents(
        &state,
        &[
            super::tenancy::tenant_parent(&t),
            super::tenancy::project_parent(&t, &p),
        ],
    )
    .await?;
    let claims: Vec<MachineClaim> = all_claims(&state)
        .await?
        .into_iter()
        .filter(|c| c.tenant == t && c.project == p)
        .collect();
    let machines = state
        .model
        .with(|c| crate::readmodel::machines(c, None))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let out: Vec<ProjectMachine> = claims
        .into_iter()
        .map(|claim| {
            let m = machines.iter().find(|m| m.id == claim.machine);
            ProjectMachine {
                state: m.map_or(MachineState::Allocated, |m| m.state),
                serial: m.map(|m| m.serial.clone()).unwrap_or_default(),
                claim,
            }
        })
        .collect();
    Ok(Json(out).into_response())
}

/// `POST /v1/tenants/{tenant}/projects/{project}/machines`
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/projects/{project}/machines", tag = "tenancy", operation_id = "request_project_machine",
    params(
        ("tenant" = String, Path, description = "Tenant name"),
        ("project" = String, Path, description = "Project name"),
    ),
    request_body = MachineRequest,
    responses(
        (status = 202, description = "A machine is claimed for the project and its provisioning command queued; follow it with GET /v1/commands/{command}", body = MachineClaim),
        (status = 400, description = "Not a name, or not JSON", body = ErrorBody),
        (status = 403, description = "The caller sees the project but lacks the role", body = ErrorBody),
        (status = 404, description = "No such tenant, project or environment", body = ErrorBody),
        (status = 409, description = "A prerequisite does not hold (offering, quota, placement, capacity); the message names it and its fix", body = ErrorBody),
        (status = 422, description = "The body is not a MachineRequest", body = ErrorBody),
        (status = 503, description = "The tenancy store or command stream did not complete the call", body = ErrorBody),
    ),
)]
pub(super) async fn request(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Extension(caller): Extension<Caller>,
    Extension(correlation): Extension<Correlation>,
    Path((t, p)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (t, p): (TenantName, ProjectName) = (parse_name(&t)?, parse_name(&p)?);
    require(&who, Action::Write, &Scope::project(&t, &p))?;
    let req: MachineRequest = parse_body(&body, "MachineRequest")?;
    let facts = facts(&state, &t, &p).await?;
    require_environment(&state, &t, &p, &req.environment).await?;
    let offering = find("bare-metal").ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "catalog lacks bare-metal",
        )
    })?;
    // Capacity is judged below against the requested site, not the
    // project's whole placement.
    if let Some(unmet) = catalog::prerequisites(offering, &facts)
        .into_iter()
        .find(|c| !c.met && c.name != "capacity")
    {
        return Err(refused(
            StatusCode::CONFLICT,
            format!(
                "{}: {}; {}",
                unmet.name,
                unmet.detail,
                unmet.fix.unwrap_or_default()
            ),
        ));
    }
    if let Some(site) = &req.site
        && !facts.sites.contains(site)
    {
        return Err(refused(
            StatusCode::CONFLICT,
            format!("placement: project {t}/{p} may not use site {site}"),
        ));
    }
    let sites = match &req.site {
        Some(s) => vec![s.clone()],
        None => facts.sites.clone(),
    };
    let machines = state
        .model
        .with(|c| crate::readmodel::machines(c, None))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let claimed: std::collections::BTreeSet<_> = all_claims(&state)
        .await?
        .iter()
        .map(|c| c.machine)
        .collect();
    let candidates = machines.iter().filter(|m| {
        m.state == MachineState::Available && sites.contains(&m.site) && !claimed.contains(&m.id)
    });
    let mut message = None;
    for m in candidates.take(16) {
        let mut msg = Message::command(
            m.site.clone(),
            caller.0.clone(),
            Command::ProvisionMachine { machine: m.id },
        )
        .with_tenant(t.clone())
        .with_project(p.clone());
        msg.envelope.correlation_id = correlation.0;
        let claim = MachineClaim {
            machine: m.id,
            site: m.site.clone(),
            tenant: t.clone(),
            project: p.clone(),
            environment: req.environment.clone(),
            claimed_by: caller.0.as_str().to_owned(),
            claimed_at: now(),
            command: msg.envelope.id.to_string(),
        };
        match kv::create(&state.tenancy, &keys::claim(&m.id), &claim).await {
            Ok(_) => {
                message = Some((msg, claim));
                break;
            }
            // Another request won this machine; try the next.
            Err(KvError::Exists { .. }) => continue,
            Err(e) => return Err(store_failed(e)),
        }
    }
    let Some((msg, claim)) = message else {
        return Err(refused(
            StatusCode::CONFLICT,
            format!(
                "capacity: no available machine at {}; ask a platform operator to add or free machines",
                sites
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    let held = all_claims(&state)
        .await?
        .iter()
        .filter(|c| c.tenant == t && c.project == p)
        .count();
    if held > facts.quota.machines as usize {
        release(&state, &claim).await;
        return Err(refused(
            StatusCode::CONFLICT,
            format!(
                "quota.machines: project {t}/{p} may hold {} machine(s) and another request took the last one; retry or raise the quota",
                facts.quota.machines
            ),
        ));
    }
    if let Err(e) = publish_command(&state, &msg).await {
        release(&state, &claim).await;
        return Err(refused(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the hub's command stream did not store the command; retry: {e}"),
        ));
    }
    metrics::counter!("dv_hub_project_machines_claimed_total").increment(1);
    tracing::info!(tenant = %t, project = %p, machine = %claim.machine, site = %claim.site, command = %claim.command, "machine claimed for project");
    Ok((StatusCode::ACCEPTED, Json(claim)).into_response())
}

async fn require_environment(
    state: &AppState,
    t: &TenantName,
    p: &ProjectName,
    e: &EnvironmentName,
) -> Result<(), ApiError> {
    let found = kv::get::<serde_json::Value>(&state.tenancy, &keys::environment(t, p, e))
        .await
        .map_err(store_failed)?;
    if found.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "environment \"{t}/{p}/{e}\" does not exist; create it: dv env create {e} --tenant {t} --project {p}"
            ),
        ));
    }
    Ok(())
}

async fn release(state: &AppState, claim: &MachineClaim) {
    if let Err(e) = kv::delete_any(&state.tenancy, &keys::claim(&claim.machine)).await {
        tracing::warn!(error = %e, machine = %claim.machine, "could not release a machine claim");
    }
}

/// `DELETE /v1/tenants/{tenant}/projects/{project}/machines/{machine}`
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant}/projects/{project}/machines/{machine}", tag = "tenancy", operation_id = "release_project_machine",
    params(
        ("tenant" = String, Path, description = "Tenant name"),
        ("project" = String, Path, description = "Project name"),
        ("machine" = String, Path, description = "Machine id"),
    ),
    responses(
        (status = 202, description = "Released: the deprovisioning command is queued", body = super::CommandAccepted),
        (status = 400, description = "Not a name or machine id", body = ErrorBody),
        (status = 403, description = "The caller sees the project but lacks the role", body = ErrorBody),
        (status = 404, description = "The project holds no such machine", body = ErrorBody),
        (status = 503, description = "The store or command stream did not complete the call", body = ErrorBody),
    ),
)]
pub(super) async fn release_one(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Extension(caller): Extension<Caller>,
    Extension(correlation): Extension<Correlation>,
    Path((t, p, machine)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (t, p): (TenantName, ProjectName) = (parse_name(&t)?, parse_name(&p)?);
    require(&who, Action::Write, &Scope::project(&t, &p))?;
    let id: dv_protocol::MachineId = machine.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{machine:?} is not a machine id (GET .../machines lists them)"),
        )
    })?;
    let claim = kv::get::<MachineClaim>(&state.tenancy, &keys::claim(&id))
        .await
        .map_err(store_failed)?
        .map(|v| v.value)
        .filter(|c| c.tenant == t && c.project == p)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("project {t}/{p} holds no machine {id}"),
            )
        })?;
    let mut msg = Message::command(
        claim.site.clone(),
        caller.0.clone(),
        Command::DeprovisionMachine { machine: id },
    )
    .with_tenant(t.clone())
    .with_project(p.clone());
    msg.envelope.correlation_id = correlation.0;
    let seq = publish_command(&state, &msg).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the hub's command stream did not store the command; retry: {e}"),
        )
    })?;
    release(&state, &claim).await;
    let accepted = super::CommandAccepted {
        command: msg.envelope.id.to_string(),
        site: claim.site.clone(),
        machine: id,
        action: msg.body.action().to_owned(),
        subject: msg.body.subject(&claim.site).as_str().to_owned(),
        correlation_id: correlation.0.to_string(),
        stream_seq: seq,
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}
