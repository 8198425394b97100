//! A project's offerings and their prerequisites
//! (`/v1/tenants/{t}/projects/{p}/offerings`), and the facts both this and
//! the project's machine requests ([`super::project_machines`]) decide on.

use std::collections::BTreeSet;

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dv_protocol::api::{MachineClaim, OfferingStatus, OfferingToggle};
use dv_protocol::auth::{Action, Principal, Scope};
use dv_protocol::{MachineState, Project, ProjectName, Quota, TenantName};

use super::auth::require;
use super::tenancy::{parse_body, parse_name, project_parent, store_failed, tenant_parent};
use super::{ApiError, AppState, ErrorBody};
use crate::kv::{self, KvError, keys};
use crate::offerings::{self, ProjectFacts};

/// The claims of every project (one key per machine).
pub(super) async fn all_claims(state: &AppState) -> Result<Vec<MachineClaim>, ApiError> {
    Ok(kv::list::<MachineClaim>(&state.tenancy, keys::CLAIMS)
        .await
        .map_err(store_failed)?
        .into_iter()
        .map(|v| v.value)
        .collect())
}

/// What the hub knows about `t/p` now; 404 naming the missing parent.
pub(super) async fn facts(
    state: &AppState,
    t: &TenantName,
    p: &ProjectName,
) -> Result<ProjectFacts, ApiError> {
    super::tenancy::require_parents(state, &[tenant_parent(t), project_parent(t, p)]).await?;
    let project = kv::get::<Project>(&state.tenancy, &keys::project(t, p))
        .await
        .map_err(store_failed)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("project \"{t}/{p}\" does not exist"),
            )
        })?
        .value;
    let enabled = kv::get::<BTreeSet<String>>(&state.tenancy, &keys::offerings(t, p))
        .await
        .map_err(store_failed)?
        .map(|v| v.value)
        .unwrap_or_default();
    let environments = kv::keys_under(&state.tenancy, &keys::environments(t, p))
        .await
        .map_err(store_failed)?
        .len();
    let quota = kv::get::<Quota>(&state.tenancy, &keys::quota(t, p))
        .await
        .map_err(store_failed)?
        .map(|v| v.value)
        .unwrap_or_default();
    let claims = all_claims(state).await?;
    let machines_held = claims
        .iter()
        .filter(|c| &c.tenant == t && &c.project == p)
        .count();
    let sites: Vec<_> = state
        .config
        .sites
        .iter()
        .filter(|s| project.allowed_sites.is_empty() || project.allowed_sites.contains(s))
        .cloned()
        .collect();
    let machines = state
        .model
        .with(|c| crate::readmodel::machines(c, None))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let claimed: BTreeSet<_> = claims.iter().map(|c| c.machine).collect();
    let machines_free = machines
        .iter()
        .filter(|m| {
            m.state == MachineState::Available
                && sites.contains(&m.site)
                && !claimed.contains(&m.id)
        })
        .count();
    Ok(ProjectFacts {
        tenant: t.clone(),
        project: p.clone(),
        enabled,
        environments,
        quota,
        machines_held: u32::try_from(machines_held).unwrap_or(u32::MAX),
        sites,
        machines_free,
    })
}

/// `GET /v1/tenants/{tenant}/projects/{project}/offerings`
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/projects/{project}/offerings", tag = "tenancy", operation_id = "list_offerings",
    params(
        ("tenant" = String, Path, description = "Tenant name"),
        ("project" = String, Path, description = "Project name"),
    ),
    responses(
        (status = 200, description = "Every offering, whether it is enabled for the project and what must hold before a request succeeds", body = Vec<OfferingStatus>),
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
    let facts = facts(&state, &t, &p).await?;
    Ok(Json(offerings::evaluate(&facts)).into_response())
}

/// `PUT /v1/tenants/{tenant}/projects/{project}/offerings/{offering}`
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/projects/{project}/offerings/{offering}", tag = "tenancy", operation_id = "set_offering",
    params(
        ("tenant" = String, Path, description = "Tenant name"),
        ("project" = String, Path, description = "Project name"),
        ("offering" = String, Path, description = "Offering name (bare-metal, network, ...)"),
    ),
    request_body = OfferingToggle,
    responses(
        (status = 200, description = "The offering as the project now sees it", body = OfferingStatus),
        (status = 400, description = "Not a name, or not JSON", body = ErrorBody),
        (status = 403, description = "The caller sees the project but lacks the role", body = ErrorBody),
        (status = 404, description = "No such tenant, project or offering", body = ErrorBody),
        (status = 422, description = "The body is not an OfferingToggle, or the offering is not available", body = ErrorBody),
    ),
)]
pub(super) async fn toggle(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path((t, p, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (t, p): (TenantName, ProjectName) = (parse_name(&t)?, parse_name(&p)?);
    require(&who, Action::Platform, &Scope::project(&t, &p))?;
    let toggle: OfferingToggle = parse_body(&body, "OfferingToggle")?;
    let Some(offering) = offerings::find(&name) else {
        let names: Vec<&str> = offerings::CATALOG.iter().map(|o| o.name).collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no offering {name:?}; the catalog has: {}",
                names.join(", ")
            ),
        ));
    };
    if toggle.enabled && !offering.available {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{name} is not offered by this platform yet, so it cannot be enabled"),
        ));
    }
    super::tenancy::require_parents(&state, &[tenant_parent(&t), project_parent(&t, &p)]).await?;
    let key = keys::offerings(&t, &p);
    // Read-modify-write under the KV revision: a concurrent toggle of
    // another offering retries instead of being overwritten.
    for _ in 0..8 {
        let current = kv::get::<BTreeSet<String>>(&state.tenancy, &key)
            .await
            .map_err(store_failed)?;
        let (mut set, revision) = match current {
            Some(v) => (v.value, Some(v.revision)),
            None => (BTreeSet::new(), None),
        };
        if toggle.enabled {
            set.insert(name.clone());
        } else {
            set.remove(&name);
        }
        let written = match revision {
            Some(r) => kv::update(&state.tenancy, &key, &set, r).await.map(|_| ()),
            None => kv::create(&state.tenancy, &key, &set).await.map(|_| ()),
        };
        match written {
            Ok(()) => {
                let facts = facts(&state, &t, &p).await?;
                let status = offerings::evaluate(&facts)
                    .into_iter()
                    .find(|o| o.name == name)
                    .ok_or_else(|| {
                        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "offering vanished")
                    })?;
                return Ok(Json(status).into_response());
            }
            Err(KvError::Stale { .. } | KvError::Exists { .. }) => continue,
            Err(e) => return Err(store_failed(e)),
        }
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the project's offerings kept changing under this call; retry",
    ))
}
