//! Tenants, projects, environments and quotas: the `/v1/tenants` tree,
//! stored in the `dv_tenancy` KV bucket ([`crate::kv`]).
//!
//! Optimistic concurrency, as HTTP spells it: every read of one record
//! answers `ETag: "<kv revision>"`; `PUT` and `DELETE` need `If-Match`
//! with that ETag (428 without it, 412 naming the current ETag when
//! someone else wrote first) and answer the new ETag. `POST` creates and
//! answers 409 if the name is taken. The KV store checks the revision, not
//! this code, so two replicas cannot both accept writes from the same read.
//!
//! A parent must exist before its children (404 naming the missing parent)
//! and outlive them (409 while children remain). Because a parent check
//! and a child's create are two KV operations, a create re-reads the parent
//! afterwards and takes the child back if the parent was deleted meanwhile.
//!
//! A body is parsed completely, then validated, before anything is
//! written: bad JSON is 400, well-formed JSON of the wrong shape or with a
//! bad value 422, and neither changes anything.
//!
//! Authorization (ADR 0013), checked before anything is read or written:
//!
//! | resource | read | create | replace | delete |
//! | --- | --- | --- | --- | --- |
//! | tenant | sees it (lists filter) | platform | platform | platform |
//! | project | sees it (lists filter) | manage on the tenant | manage | manage |
//! | environment | read on the project | write on the project | write | write |
//! | quota | read on the project | | platform | |
//!
//! What the caller cannot see answers the same 404 as what does not exist.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dv_protocol::auth::{Action, Principal, Scope};
use dv_protocol::{
    Environment, EnvironmentName, Project, ProjectName, Quota, Tenant, TenantName, TokenError,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::require;
use super::{ApiError, AppState, ErrorBody};
use crate::kv::{self, KvError, Versioned, keys};

/// The OpenAPI tag of these endpoints.
const TAG: &str = "tenancy";

/// The tenancy routes (the caller adds auth and audit).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant, replace_tenant, delete_tenant))
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, replace_project, delete_project))
        .routes(routes!(list_environments, create_environment))
        .routes(routes!(
            get_environment,
            replace_environment,
            delete_environment
        ))
        .routes(routes!(get_quota, replace_quota))
}

// ---------------------------------------------------------------- helpers

pub(super) fn parse_name<T: std::str::FromStr<Err = TokenError>>(
    text: &str,
) -> Result<T, ApiError> {
    text.parse()
        .map_err(|e: TokenError| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))
}

/// Parses a request body: syntax errors are the client's transport (400),
/// a wrong shape or value is the content (422).
pub(super) fn parse_body<T: DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let status = match e.classify() {
            serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, format!("the body is not a valid {what}: {e}"))
    })
}

/// What `If-Match` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precondition {
    /// `*`: whatever is current, as long as something is.
    Any,
    /// `"<revision>"`; `"0"` means "does not exist yet" (quotas only).
    Revision(u64),
}

fn if_match(headers: &HeaderMap, label: &str) -> Result<Precondition, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            format!(
                "changing {label} needs If-Match: GET it, then send its ETag \
                 (If-Match: \"<revision>\") so a concurrent change is not overwritten"
            ),
        ));
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(Precondition::Any);
    }
    // Strong ETags only (RFC 9110 If-Match uses strong comparison); the
    // quotes are optional here because people type them by hand.
    let bare = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    bare.parse::<u64>()
        .map(Precondition::Revision)
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "If-Match {text:?} is not an ETag of this API: send exactly one, \
                 as the GET returned it (\"<revision>\"), or *"
                ),
            )
        })
}

fn etag(revision: u64) -> HeaderValue {
    // Digits and quotes only: always a valid header value.
    HeaderValue::from_str(&format!("\"{revision}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

fn with_etag(status: StatusCode, body: &impl Serialize, revision: u64) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::ETAG, etag(revision));
    response
}

pub(super) fn store_failed(e: KvError) -> ApiError {
    match e {
        KvError::Exists { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        KvError::Corrupt { .. } => {
            tracing::error!(error = %e, "tenancy record does not decode");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        KvError::Stale { .. } | KvError::Unavailable { .. } => {
            tracing::warn!(error = %e, "tenancy store failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the tenancy store did not complete the call; retry: {e}"),
            )
        }
    }
}

/// The 412 for a write that lost the race (or came with an old ETag):
/// names the current ETag, or 404 when the record is gone.
async fn stale<T: DeserializeOwned>(
    state: &AppState,
    key: &str,
    label: &str,
    sent: Precondition,
    missing_etag: Option<u64>,
) -> ApiError {
    let current = match kv::get::<T>(&state.tenancy, key).await {
        Ok(v) => v.map(|v| v.revision).or(missing_etag),
        Err(e) => return store_failed(e),
    };
    let sent = match sent {
        Precondition::Any => "*".to_owned(),
        Precondition::Revision(r) => format!("\"{r}\""),
    };
    match current {
        Some(revision) => ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            format!(
                "{label} changed since ETag {sent}: its current ETag is \"{revision}\"; \
                 GET it, re-apply your change and send that ETag"
            ),
        )
        .with_etag(revision),
        None => ApiError::new(StatusCode::NOT_FOUND, format!("{label} does not exist")),
    }
}

/// A record kind stored in the tenancy bucket.
trait Record: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Its name, as in keys and paths.
    fn name(&self) -> &str;
    /// Checks what parsing cannot (text lengths, known sites).
    fn check(&self, state: &AppState) -> Result<(), String>;
}

impl Record for Tenant {
    fn name(&self) -> &str {
        self.name.as_str()
    }
    fn check(&self, _: &AppState) -> Result<(), String> {
        self.validate().map_err(|e| e.to_string())
    }
}

impl Record for Project {
    fn name(&self) -> &str {
        self.name.as_str()
    }
    fn check(&self, state: &AppState) -> Result<(), String> {
        self.validate().map_err(|e| e.to_string())?;
        if let Some(site) = self
            .allowed_sites
            .iter()
            .find(|s| !state.config.sites.contains(s))
        {
            let known: Vec<&str> = state.config.sites.iter().map(|s| s.as_str()).collect();
            return Err(format!(
                "allowed_sites: {site} is not a site this hub federates (it federates: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        }
        Ok(())
    }
}

impl Record for Environment {
    fn name(&self) -> &str {
        self.name.as_str()
    }
    fn check(&self, _: &AppState) -> Result<(), String> {
        self.validate().map_err(|e| e.to_string())
    }
}

/// A record's place: its key and how to name it in messages (also used
/// for the parents that must exist).
pub(super) struct Parent {
    key: String,
    label: String,
}

pub(super) fn tenant_parent(t: &TenantName) -> Parent {
    Parent {
        key: keys::tenant(t),
        label: format!("tenant {:?}", t.as_str()),
    }
}

pub(super) fn project_parent(t: &TenantName, p: &ProjectName) -> Parent {
    Parent {
        key: keys::project(t, p),
        label: format!("project \"{t}/{p}\""),
    }
}

/// 404 naming the first parent (outermost first) that does not exist.
pub(super) async fn require_parents(state: &AppState, parents: &[Parent]) -> Result<(), ApiError> {
    for parent in parents {
        if kv::get::<serde_json::Value>(&state.tenancy, &parent.key)
            .await
            .map_err(store_failed)?
            .is_none()
        {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("{} does not exist", parent.label),
            ));
        }
    }
    Ok(())
}

/// The records under `prefix` that `keep` lets through (what the caller
/// sees).
async fn list_records<T: Record>(
    state: &AppState,
    parents: &[Parent],
    prefix: &str,
    keep: impl Fn(&T) -> bool,
) -> Result<Response, ApiError> {
    require_parents(state, parents).await?;
    let records: Vec<T> = kv::list::<T>(&state.tenancy, prefix)
        .await
        .map_err(store_failed)?
        .into_iter()
        .map(|v| v.value)
        .filter(|v| keep(v))
        .collect();
    Ok(axum::Json(records).into_response())
}

async fn get_record<T: Record>(
    state: &AppState,
    parents: &[Parent],
    key: &str,
    label: &str,
) -> Result<Response, ApiError> {
    match kv::get::<T>(&state.tenancy, key)
        .await
        .map_err(store_failed)?
    {
        Some(Versioned { value, revision }) => Ok(with_etag(StatusCode::OK, &value, revision)),
        None => {
            // Name the missing parent if that is why.
            require_parents(state, parents).await?;
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("{label} does not exist"),
            ))
        }
    }
}

/// Creates `record` under `key_of(name)`; re-reads the direct parent
/// afterwards (see the module docs).
async fn create_record<T: Record>(
    state: &AppState,
    parents: &[Parent],
    body: &Bytes,
    what: &str,
    key_of: impl Fn(&T) -> Result<(String, String, String), ApiError>,
) -> Result<Response, ApiError> {
    let record: T = parse_body(body, what)?;
    record
        .check(state)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("{what}: {e}")))?;
    let (key, label, location) = key_of(&record)?;
    require_parents(state, parents).await?;
    let revision = match kv::create(&state.tenancy, &key, &record).await {
        Ok(r) => r,
        Err(KvError::Exists { .. }) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("{label} already exists; PUT it (with If-Match) to change it"),
            ));
        }
        Err(e) => return Err(store_failed(e)),
    };
    if let Some(parent) = parents.last() {
        let still = kv::get::<serde_json::Value>(&state.tenancy, &parent.key).await;
        if matches!(still, Ok(None)) {
            if let Err(e) = kv::delete(&state.tenancy, &key, revision).await {
                tracing::warn!(error = %e, key, "could not take back a record whose parent was deleted");
            }
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "{} was deleted while {label} was being created",
                    parent.label
                ),
            ));
        }
    }
    let mut response = with_etag(StatusCode::CREATED, &record, revision);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

async fn replace_record<T: Record>(
    state: &AppState,
    headers: &HeaderMap,
    parents: &[Parent],
    target: &Parent,
    path_name: &str,
    body: &Bytes,
    what: &str,
) -> Result<Response, ApiError> {
    let (key, label) = (target.key.as_str(), target.label.as_str());
    let precondition = if_match(headers, label)?;
    let record: T = parse_body(body, what)?;
    record
        .check(state)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("{what}: {e}")))?;
    if record.name() != path_name {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the body names {what} {:?} but the path names {path_name:?}; \
                 names cannot be changed (create a new one instead)",
                record.name()
            ),
        ));
    }
    let Some(current) = kv::get::<T>(&state.tenancy, key)
        .await
        .map_err(store_failed)?
    else {
        require_parents(state, parents).await?;
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{label} does not exist; POST creates it"),
        ));
    };
    let expected = match precondition {
        Precondition::Any => current.revision,
        Precondition::Revision(r) => r,
    };
    match kv::update(&state.tenancy, key, &record, expected).await {
        Ok(revision) => Ok(with_etag(StatusCode::OK, &record, revision)),
        Err(KvError::Stale { .. }) => Err(stale::<T>(state, key, label, precondition, None).await),
        Err(e) => Err(store_failed(e)),
    }
}

/// Deletes `key` unless a child prefix still has keys; then the
/// `dependents` (records that live and die with it).
async fn delete_record<T: Record>(
    state: &AppState,
    headers: &HeaderMap,
    key: &str,
    label: &str,
    children: &[(String, &str)],
    dependents: &[String],
) -> Result<Response, ApiError> {
    let precondition = if_match(headers, label)?;
    let Some(current) = kv::get::<T>(&state.tenancy, key)
        .await
        .map_err(store_failed)?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{label} does not exist"),
        ));
    };
    for (prefix, what) in children {
        let left = kv::keys_under(&state.tenancy, prefix)
            .await
            .map_err(store_failed)?;
        if !left.is_empty() {
            let names: Vec<&str> = left
                .iter()
                .filter_map(|k| k.strip_prefix(prefix.as_str()))
                .collect();
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "{label} still has {what} ({}); delete them first",
                    names.join(", ")
                ),
            ));
        }
    }
    let expected = match precondition {
        Precondition::Any => current.revision,
        Precondition::Revision(r) => r,
    };
    match kv::delete(&state.tenancy, key, expected).await {
        Ok(()) => {}
        Err(KvError::Stale { .. }) => {
            return Err(stale::<T>(state, key, label, precondition, None).await);
        }
        Err(e) => return Err(store_failed(e)),
    }
    for dependent in dependents {
        // The record itself is gone; a leftover dependent is invisible
        // (nothing reads it without its parent) and a re-create resets it.
        if let Err(e) = kv::delete_any(&state.tenancy, dependent).await {
            tracing::warn!(error = %e, key = dependent, "dependent record not deleted");
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

// ---------------------------------------------------------------- tenants

/// List tenants.
#[utoipa::path(
    get, path = "/v1/tenants", tag = TAG,
    responses(
        (status = 200, description = "Every tenant, by name", body = Vec<Tenant>),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 401, description = "No or a wrong token", body = ErrorBody),
    ),
)]
pub(super) async fn list_tenants(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
) -> Response {
    respond(
        list_records::<Tenant>(&state, &[], keys::TENANTS, |t| {
            who.sees(&Scope::tenant(&t.name))
        })
        .await,
    )
}

/// Create a tenant.
#[utoipa::path(
    post, path = "/v1/tenants", tag = TAG,
    request_body = Tenant,
    responses(
        (status = 201, description = "Created", body = Tenant,
            headers(("ETag" = String, description = "The new revision"), ("Location" = String))),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody),
    ),
)]
pub(super) async fn create_tenant(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    body: Bytes,
) -> Response {
    respond(
        async {
            require(&who, Action::Platform, &Scope::Platform)?;
            create_record::<Tenant>(&state, &[], &body, "tenant", |t| {
                Ok((
                    keys::tenant(&t.name),
                    format!("tenant {:?}", t.name.as_str()),
                    format!("/v1/tenants/{}", t.name),
                ))
            })
            .await
        }
        .await,
    )
}

/// Read a tenant.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}", tag = TAG,
    params(("tenant" = TenantName, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "The tenant", body = Tenant,
            headers(("ETag" = String, description = "Its revision, for If-Match"))),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "A name in the path is not a valid name, or If-Match is not an ETag of this API", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
)]
pub(super) async fn get_tenant(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path(tenant): Path<String>,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            // A project member sees its tenant's record without a read
            // right on the tenant.
            if !who.sees(&Scope::tenant(&t)) {
                return Err(super::auth::not_found(&who, &Scope::tenant(&t)));
            }
            get_record::<Tenant>(
                &state,
                &[],
                &keys::tenant(&t),
                &format!("tenant {:?}", t.as_str()),
            )
            .await
        }
        .await,
    )
}

/// Replace a tenant.
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}", tag = TAG,
    params(
        ("tenant" = TenantName, Path, description = "Tenant name"),
        ("If-Match" = String, Header, description = "The ETag the change is based on (or *)"),
    ),
    request_body = Tenant,
    responses(
        (status = 200, description = "Replaced", body = Tenant,
            headers(("ETag" = String, description = "The new revision"))),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "A name in the path is not a valid name, or If-Match is not an ETag of this API, or the body is not JSON", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 412, description = "Changed since that ETag; the current one is in ETag",
            body = ErrorBody, headers(("ETag" = String))),
        (status = 422, description = "A field is invalid, or the name differs from the path", body = ErrorBody),
        (status = 428, description = "If-Match missing", body = ErrorBody),
    ),
)]
pub(super) async fn replace_tenant(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            require(&who, Action::Platform, &Scope::tenant(&t))?;
            replace_record::<Tenant>(
                &state,
                &headers,
                &[],
                &tenant_parent(&t),
                t.as_str(),
                &body,
                "tenant",
            )
            .await
        }
        .await,
    )
}

/// Delete a tenant (it must have no projects).
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant}", tag = TAG,
    params(
        ("tenant" = TenantName, Path, description = "Tenant name"),
        ("If-Match" = String, Header, description = "The ETag the deletion is based on (or *)"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "A name in the path is not a valid name, or If-Match is not an ETag of this API", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The tenant still has projects", body = ErrorBody),
        (status = 412, description = "Changed since that ETag", body = ErrorBody, headers(("ETag" = String))),
        (status = 428, description = "If-Match missing", body = ErrorBody),
    ),
)]
pub(super) async fn delete_tenant(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            require(&who, Action::Platform, &Scope::tenant(&t))?;
            delete_record::<Tenant>(
                &state,
                &headers,
                &keys::tenant(&t),
                &format!("tenant {:?}", t.as_str()),
                &[(keys::projects(&t), "projects")],
                &[],
            )
            .await
        }
        .await,
    )
}

// ---------------------------------------------------------------- projects

/// List a tenant's projects.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/projects", tag = TAG,
    params(("tenant" = TenantName, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "The tenant's projects, by name", body = Vec<Project>),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "A name in the path is not a valid name", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
)]
pub(super) async fn list_projects(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path(tenant): Path<String>,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            if !who.sees(&Scope::tenant(&t)) {
                return Err(super::auth::not_found(&who, &Scope::tenant(&t)));
            }
            list_records::<Project>(&state, &[tenant_parent(&t)], &keys::projects(&t), |p| {
                who.sees(&Scope::project(&t, &p.name))
            })
            .await
        }
        .await,
    )
}

/// Create a project in a tenant.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/projects", tag = TAG,
    params(("tenant" = TenantName, Path, description = "Tenant name")),
    request_body = Project,
    responses(
        (status = 201, description = "Created (its quota is all zero until set)", body = Project,
            headers(("ETag" = String, description = "The new revision"), ("Location" = String))),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody),
    ),
)]
pub(super) async fn create_project(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            require(&who, Action::Manage, &Scope::tenant(&t))?;
            let tenant_for_key = t.clone();
            create_record::<Project>(&state, &[tenant_parent(&t)], &body, "project", move |p| {
                let t = &tenant_for_key;
                Ok((
                    keys::project(t, &p.name),
                    format!("project \"{t}/{}\"", p.name),
                    format!("/v1/tenants/{t}/projects/{}", p.name),
                ))
            })
            .await
        }
        .await,
    )
}

/// Read a project.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/projects/{project}", tag = TAG,
    params(
        ("tenant" = TenantName, Path, description = "Tenant name"),
        ("project" = ProjectName, Path, description = "Project name"),
    ),
    responses(
        (status = 200, description = "The project", body = Project,
            headers(("ETag" = String, description = "Its revision, for If-Match"))),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "A name in the path is not a valid name, or If-Match is not an ETag of this API", body = ErrorBody),
        (status = 404, description = "No such tenant or project", body = ErrorBody),
    ),
)]
pub(super) async fn get_project(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path((tenant, project)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            let p: ProjectName = parse_name(&project)?;
            require(&who, Action::Read, &Scope::project(&t, &p))?;
            let target = project_parent(&t, &p);
            get_record::<Project>(&state, &[tenant_parent(&t)], &target.key, &target.label).await
        }
        .await,
    )
}

/// Replace a project.
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/projects/{project}", tag = TAG,
    params(
        ("tenant" = TenantName, Path, description = "Tenant name"),
        ("project" = ProjectName, Path, description = "Project name"),
        ("If-Match" = String, Header, description = "The ETag the change is based on (or *)"),
    ),
    request_body = Project,
    responses(
        (status = 200, description = "Replaced", body = Project,
            headers(("ETag" = String, description = "The new revision"))),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "A name in the path is not a valid name, or If-Match is not an ETag of this API, or the body is not JSON", body = ErrorBody),
        (status = 404, description = "No such tenant or project", body = ErrorBody),
        (status = 412, description = "Changed since that ETag; the current one is in ETag",
            body = ErrorBody, headers(("ETag" = String))),
        (status = 422, description = "A field is invalid, or the name differs from the path", body = ErrorBody),
        (status = 428, description = "If-Match missing", body = ErrorBody),
    ),
)]
pub(super) async fn replace_project(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path((tenant, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            let p: ProjectName = parse_name(&project)?;
            require(&who, Action::Manage, &Scope::project(&t, &p))?;
            let target = project_parent(&t, &p);
            replace_record::<Project>(
                &state,
                &headers,
                &[tenant_parent(&t)],
                &target,
                p.as_str(),
                &body,
                "project",
            )
            .await
        }
        .await,
    )
}

/// Delete a project and its quota (it must have no environments).
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant}/projects/{project}", tag = TAG,
    params(
        ("tenant" = TenantName, Path, description = "Tenant name"),
        ("project" = ProjectName, Path, description = "Project name"),
        ("If-Match" = String, Header, description = "The ETag the deletion is based on (or *)"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "A name in the path is not a valid name, or If-Match is not an ETag of this API", body = ErrorBody),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 409, description = "The project still has environments", body = ErrorBody),
        (status = 412, description = "Changed since that ETag", body = ErrorBody, headers(("ETag" = String))),
        (status = 428, description = "If-Match missing", body = ErrorBody),
    ),
)]
pub(super) async fn delete_project(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path((tenant, project)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            let p: ProjectName = parse_name(&project)?;
            require(&who, Action::Manage, &Scope::project(&t, &p))?;
            let target = project_parent(&t, &p);
            delete_record::<Project>(
                &state,
                &headers,
                &target.key,
                &target.label,
                &[(keys::environments(&t, &p), "environments")],
                &[keys::quota(&t, &p)],
            )
            .await
        }
        .await,
    )
}

// ---------------------------------------------------------------- environments

/// List a project's environments.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/projects/{project}/environments", tag = TAG,
    params(
        ("tenant" = TenantName, Path, description = "Tenant name"),
        ("project" = ProjectName, Path, description = "Project name"),
    ),
    responses(
        (status = 200, description = "The project's environments, by name", body = Vec<Environment>),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "A name in the path is not a valid name", body = ErrorBody),
        (status = 404, description = "No such tenant or project", body = ErrorBody),
    ),
)]
pub(super) async fn list_environments(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path((tenant, project)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            let p: ProjectName = parse_name(&project)?;
            require(&who, Action::Read, &Scope::project(&t, &p))?;
            list_records::<Environment>(
                &state,
                &[tenant_parent(&t), project_parent(&t, &p)],
                &keys::environments(&t, &p),
                |_| true,
            )
            .await
        }
        .await,
    )
}

/// Create an environment in a project.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/projects/{project}/environments", tag = TAG,
    params(
        ("tenant" = TenantName, Path, description = "Tenant name"),
        ("project" = ProjectName, Path, description = "Project name"),
    ),
    request_body = Environment,
    responses(
        (status = 201, description = "Created", body = Environment,
            headers(("ETag" = String, description = "The new revision"), ("Location" = String))),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 404, description = "No such tenant or project", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody),
    ),
)]
pub(super) async fn create_environment(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path((tenant, project)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            let p: ProjectName = parse_name(&project)?;
            require(&who, Action::Write, &Scope::project(&t, &p))?;
            let (tk, pk) = (t.clone(), p.clone());
            create_record::<Environment>(
                &state,
                &[tenant_parent(&t), project_parent(&t, &p)],
                &body,
                "environment",
                move |e| {
                    Ok((
                        keys::environment(&tk, &pk, &e.name),
                        format!("environment \"{tk}/{pk}/{}\"", e.name),
                        format!("/v1/tenants/{tk}/projects/{pk}/environments/{}", e.name),
                    ))
                },
            )
            .await
        }
        .await,
    )
}

fn environment_target(t: &TenantName, p: &ProjectName, e: &EnvironmentName) -> Parent {
    Parent {
        key: keys::environment(t, p, e),
        label: format!("environment \"{t}/{p}/{e}\""),
    }
}

/// Read an environment.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/projects/{project}/environments/{environment}", tag = TAG,
    params(
        ("tenant" = TenantName, Path, description = "Tenant name"),
        ("project" = ProjectName, Path, description = "Project name"),
        ("environment" = EnvironmentName, Path, description = "Environment name"),
    ),
    responses(
        (status = 200, description = "The environment", body = Environment,
            headers(("ETag" = String, description = "Its revision, for If-Match"))),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "A name in the path is not a valid name, or If-Match is not an ETag of this API", body = ErrorBody),
        (status = 404, description = "No such tenant, project or environment", body = ErrorBody),
    ),
)]
pub(super) async fn get_environment(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path((tenant, project, environment)): Path<(String, String, String)>,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            let p: ProjectName = parse_name(&project)?;
            let e: EnvironmentName = parse_name(&environment)?;
            require(&who, Action::Read, &Scope::project(&t, &p))?;
            let target = environment_target(&t, &p, &e);
            get_record::<Environment>(
                &state,
                &[tenant_parent(&t), project_parent(&t, &p)],
                &target.key,
                &target.label,
            )
            .await
        }
        .await,
    )
}

/// Replace an environment.
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/projects/{project}/environments/{environment}", tag = TAG,
    params(
        ("tenant" = TenantName, Path, description = "Tenant name"),
        ("project" = ProjectName, Path, description = "Project name"),
        ("environment" = EnvironmentName, Path, description = "Environment name"),
        ("If-Match" = String, Header, description = "The ETag the change is based on (or *)"),
    ),
    request_body = Environment,
    responses(
        (status = 200, description = "Replaced", body = Environment,
            headers(("ETag" = String, description = "The new revision"))),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "A name in the path is not a valid name, or If-Match is not an ETag of this API, or the body is not JSON", body = ErrorBody),
        (status = 404, description = "No such tenant, project or environment", body = ErrorBody),
        (status = 412, description = "Changed since that ETag; the current one is in ETag",
            body = ErrorBody, headers(("ETag" = String))),
        (status = 422, description = "A field is invalid, or the name differs from the path", body = ErrorBody),
        (status = 428, description = "If-Match missing", body = ErrorBody),
    ),
)]
pub(super) async fn replace_environment(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path((tenant, project, environment)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            let p: ProjectName = parse_name(&project)?;
            let e: EnvironmentName = parse_name(&environment)?;
            require(&who, Action::Write, &Scope::project(&t, &p))?;
            let target = environment_target(&t, &p, &e);
            replace_record::<Environment>(
                &state,
                &headers,
                &[tenant_parent(&t), project_parent(&t, &p)],
                &target,
                e.as_str(),
                &body,
                "environment",
            )
            .await
        }
        .await,
    )
}

/// Delete an environment.
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant}/projects/{project}/environments/{environment}", tag = TAG,
    params(
        ("tenant" = TenantName, Path, description = "Tenant name"),
        ("project" = ProjectName, Path, description = "Project name"),
        ("environment" = EnvironmentName, Path, description = "Environment name"),
        ("If-Match" = String, Header, description = "The ETag the deletion is based on (or *)"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "A name in the path is not a valid name, or If-Match is not an ETag of this API", body = ErrorBody),
        (status = 404, description = "No such environment", body = ErrorBody),
        (status = 412, description = "Changed since that ETag", body = ErrorBody, headers(("ETag" = String))),
        (status = 428, description = "If-Match missing", body = ErrorBody),
    ),
)]
pub(super) async fn delete_environment(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path((tenant, project, environment)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            let p: ProjectName = parse_name(&project)?;
            let e: EnvironmentName = parse_name(&environment)?;
            require(&who, Action::Write, &Scope::project(&t, &p))?;
            let target = environment_target(&t, &p, &e);
            delete_record::<Environment>(&state, &headers, &target.key, &target.label, &[], &[])
                .await
        }
        .await,
    )
}

// ---------------------------------------------------------------- quotas

/// Read a project's quota.
///
/// A project whose quota was never set has the all-zero quota, with ETag
/// `"0"` (no revision yet); a PUT with `If-Match: "0"` sets the first one.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/projects/{project}/quota", tag = TAG,
    params(
        ("tenant" = TenantName, Path, description = "Tenant name"),
        ("project" = ProjectName, Path, description = "Project name"),
    ),
    responses(
        (status = 200, description = "The quota", body = Quota,
            headers(("ETag" = String, description = "Its revision, for If-Match (\"0\": never set)"))),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "A name in the path is not a valid name, or If-Match is not an ETag of this API", body = ErrorBody),
        (status = 404, description = "No such tenant or project", body = ErrorBody),
    ),
)]
pub(super) async fn get_quota(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path((tenant, project)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            let p: ProjectName = parse_name(&project)?;
            require(&who, Action::Read, &Scope::project(&t, &p))?;
            require_parents(&state, &[tenant_parent(&t), project_parent(&t, &p)]).await?;
            let (quota, revision) = match kv::get::<Quota>(&state.tenancy, &keys::quota(&t, &p))
                .await
                .map_err(store_failed)?
            {
                Some(v) => (v.value, v.revision),
                None => (Quota::default(), 0),
            };
            Ok(with_etag(StatusCode::OK, &quota, revision))
        }
        .await,
    )
}

/// Set a project's quota.
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/projects/{project}/quota", tag = TAG,
    params(
        ("tenant" = TenantName, Path, description = "Tenant name"),
        ("project" = ProjectName, Path, description = "Project name"),
        ("If-Match" = String, Header, description = "The ETag the change is based on (\"0\" for the first quota, or *)"),
    ),
    request_body = Quota,
    responses(
        (status = 200, description = "Set", body = Quota,
            headers(("ETag" = String, description = "The new revision"))),
        (status = 403, description = "The caller lacks the role this needs (the message names it)", body = ErrorBody),
        (status = 400, description = "A name in the path is not a valid name, or If-Match is not an ETag of this API, or the body is not JSON", body = ErrorBody),
        (status = 404, description = "No such tenant or project", body = ErrorBody),
        (status = 412, description = "Changed since that ETag; the current one is in ETag",
            body = ErrorBody, headers(("ETag" = String))),
        (status = 422, description = "A limit is invalid", body = ErrorBody),
        (status = 428, description = "If-Match missing", body = ErrorBody),
    ),
)]
pub(super) async fn replace_quota(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path((tenant, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let t: TenantName = parse_name(&tenant)?;
            let p: ProjectName = parse_name(&project)?;
            require(&who, Action::Platform, &Scope::project(&t, &p))?;
            let label = format!("the quota of project \"{t}/{p}\"");
            let precondition = if_match(&headers, &label)?;
            let quota: Quota = parse_body(&body, "quota")?;
            require_parents(&state, &[tenant_parent(&t), project_parent(&t, &p)]).await?;
            let key = keys::quota(&t, &p);
            let expected = match precondition {
                Precondition::Revision(r) => r,
                Precondition::Any => kv::get::<Quota>(&state.tenancy, &key)
                    .await
                    .map_err(store_failed)?
                    .map_or(0, |v| v.revision),
            };
            let written = if expected == 0 {
                kv::create(&state.tenancy, &key, &quota).await
            } else {
                kv::update(&state.tenancy, &key, &quota, expected).await
            };
            match written {
                Ok(revision) => {
                    // As for a create: a project deleted meanwhile must not
                    // leave a quota behind for a later project of its name.
                    let project = project_parent(&t, &p);
                    if matches!(
                        kv::get::<serde_json::Value>(&state.tenancy, &project.key).await,
                        Ok(None)
                    ) {
                        if let Err(e) = kv::delete(&state.tenancy, &key, revision).await {
                            tracing::warn!(error = %e, key, "could not take back the quota of a deleted project");
                        }
                        return Err(ApiError::new(
                            StatusCode::NOT_FOUND,
                            format!("{} was deleted while its quota was being set", project.label),
                        ));
                    }
                    Ok(with_etag(StatusCode::OK, &quota, revision))
                }
                Err(KvError::Exists { .. } | KvError::Stale { .. }) => {
                    Err(stale::<Quota>(&state, &key, &label, precondition, Some(0)).await)
                }
                Err(e) => Err(store_failed(e)),
            }
        }
        .await,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(value: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert(header::IF_MATCH, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn if_match_forms() {
        assert_eq!(
            if_match(&headers(Some("\"7\"")), "x").unwrap(),
            Precondition::Revision(7)
        );
        assert_eq!(
            if_match(&headers(Some("7")), "x").unwrap(),
            Precondition::Revision(7)
        );
        assert_eq!(
            if_match(&headers(Some("*")), "x").unwrap(),
            Precondition::Any
        );
        let missing = if_match(&headers(None), "tenant \"a\"").unwrap_err();
        assert_eq!(missing.status, StatusCode::PRECONDITION_REQUIRED);
        let weak = if_match(&headers(Some("W/\"7\"")), "x").unwrap_err();
        assert_eq!(weak.status, StatusCode::BAD_REQUEST);
        let list = if_match(&headers(Some("\"7\", \"8\"")), "x").unwrap_err();
        assert_eq!(list.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn bodies_are_400_when_broken_and_422_when_wrong() {
        let broken = parse_body::<Tenant>(&Bytes::from_static(b"{\"name\": "), "tenant");
        assert_eq!(broken.unwrap_err().status, StatusCode::BAD_REQUEST);
        let wrong = parse_body::<Tenant>(&Bytes::from_static(b"{\"name\": \"Acme\"}"), "tenant");
        let e = wrong.unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.detail.contains("tenant name"), "{}", e.detail);
        let missing = parse_body::<Tenant>(&Bytes::from_static(b"{}"), "tenant");
        assert_eq!(
            missing.unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
