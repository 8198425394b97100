//! `/v1/identity`: where to log in, who the caller is, role bindings and
//! service tokens (ADR 0013), stored through [`crate::identity`].
//!
//! The grant rule, for bindings and tokens alike: a caller may only give
//! what it could do itself, which is manage on the binding's scope
//! (platform for a platform-scope binding). Listings show only what the
//! caller sees. Bindings from `hub.toml` are listed but cannot be revoked
//! (409).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dv_protocol::api::{Grant, NewServiceToken, OidcConfig, ServiceToken, ServiceTokenCreated};
use dv_protocol::auth::{Action, Principal, RoleBinding, Scope};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState, ErrorBody};
use crate::identity::{StoredToken, grant_id};

const TAG: &str = "identity";
/// A service token's lifetime when the request names none.
const DEFAULT_DAYS: u32 = 90;
/// The longest lifetime a service token may have.
const MAX_DAYS: u32 = 365;

/// The protected identity routes (the public `oidc` is in `super`).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(whoami))
        .routes(routes!(list_bindings, create_binding))
        .routes(routes!(delete_binding))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(delete_token))
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn parse_body<T: DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let status = match e.classify() {
            serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, format!("the body is not a valid {what}: {e}"))
    })
}

fn store_failed(e: crate::kv::KvError) -> ApiError {
    tracing::warn!(error = %e, "identity store failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the identity store did not complete the call; retry: {e}"),
    )
}

/// The grant rule: manage on the scope, platform for platform bindings.
fn may_grant(who: &Principal, scope: &Scope) -> Result<(), ApiError> {
    let action = if matches!(scope, Scope::Platform) {
        Action::Platform
    } else {
        Action::Manage
    };
    if who.can(action, scope) {
        Ok(())
    } else {
        let what = match scope {
            Scope::Platform => "platform-operator on the platform".to_owned(),
            _ => format!("manage rights (tenant-admin) over {scope}"),
        };
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{} may not grant on {scope}: granting needs {what} (you can only give what you hold)",
                who.subject
            ),
        ))
    }
}

/// Where `dvid login` authenticates.
#[utoipa::path(
    get, path = "/v1/identity/oidc", tag = TAG, security(()),
    responses(
        (status = 200, description = "The OIDC issuer, client and scopes", body = OidcConfig),
        (status = 404, description = "This hub has no [identity] issuer", body = ErrorBody),
    ),
)]
pub(super) async fn oidc(State(state): State<AppState>) -> Response {
    match &state.config.identity {
        Some(i) => Json(OidcConfig {
            issuer: i.issuer.clone(),
            client_id: i.client_id.clone(),
            audience: i.audience.clone(),
            scopes: i.scopes.clone(),
        })
        .into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "this hub has no OIDC issuer ([identity] in hub.toml); use a service token",
        )
        .into_response(),
    }
}

/// The caller: subject, credential and bindings.
#[utoipa::path(
    get, path = "/v1/identity/whoami", tag = TAG,
    responses((status = 200, description = "The authenticated caller", body = Principal)),
)]
pub(super) async fn whoami(Extension(who): Extension<Arc<Principal>>) -> Response {
    Json(who.as_ref().clone()).into_response()
}

/// `?subject=&tenant=`
#[derive(Debug, Deserialize)]
pub(super) struct BindingQuery {
    subject: Option<String>,
    tenant: Option<String>,
}

/// List the role bindings the caller sees.
#[utoipa::path(
    get, path = "/v1/identity/bindings", tag = TAG,
    params(
        ("subject" = Option<String>, Query, description = "Only this subject's"),
        ("tenant" = Option<String>, Query, description = "Only bindings inside this tenant"),
    ),
    responses((status = 200, description = "Bindings (from hub.toml and granted)", body = Vec<Grant>)),
)]
pub(super) async fn list_bindings(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Query(q): Query<BindingQuery>,
) -> Response {
    let grants: Vec<Grant> = state
        .identities
        .grants()
        .into_iter()
        .filter(|g| who.sees(&g.binding.scope))
        .filter(|g| q.subject.as_ref().is_none_or(|s| &g.binding.subject == s))
        .filter(|g| {
            q.tenant.as_ref().is_none_or(|t| {
                g.binding
                    .scope
                    .tenant_name()
                    .is_some_and(|n| n.as_str() == t)
            })
        })
        .collect();
    Json(grants).into_response()
}

/// Grant a role (idempotent: the same binding keeps its id).
#[utoipa::path(
    post, path = "/v1/identity/bindings", tag = TAG,
    request_body = RoleBinding,
    responses(
        (status = 201, description = "Granted", body = Grant),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 403, description = "The caller may not grant on that scope", body = ErrorBody),
        (status = 422, description = "Not a valid binding (role and scope do not fit)", body = ErrorBody),
    ),
)]
pub(super) async fn create_binding(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    body: Bytes,
) -> Response {
    respond(
        async {
            let binding: RoleBinding = parse_body(&body, "role binding")?;
            binding
                .validate()
                .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
            may_grant(&who, &binding.scope)?;
            let id = grant_id(&binding);
            if let Some(existing) = state.identities.grant(&id) {
                return Ok((StatusCode::CREATED, Json(existing)).into_response());
            }
            let grant = Grant {
                id,
                binding,
                granted_by: who.subject.clone(),
                granted_at: Some(rfc3339(now())),
            };
            state
                .identities
                .put_grant(&grant)
                .await
                .map_err(store_failed)?;
            tracing::info!(id = %grant.id, subject = %grant.binding.subject, role = %grant.binding.role, scope = %grant.binding.scope, by = %who.subject, "role granted");
            Ok((StatusCode::CREATED, Json(grant)).into_response())
        }
        .await,
    )
}

/// Revoke a role binding.
#[utoipa::path(
    delete, path = "/v1/identity/bindings/{id}", tag = TAG,
    params(("id" = String, Path, description = "The binding's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "The caller may not revoke on that scope", body = ErrorBody),
        (status = 404, description = "No such binding", body = ErrorBody),
        (status = 409, description = "A binding from hub.toml", body = ErrorBody),
    ),
)]
pub(super) async fn delete_binding(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path(id): Path<String>,
) -> Response {
    respond(
        async {
            let missing =
                || ApiError::new(StatusCode::NOT_FOUND, format!("no role binding {id:?}"));
            if state.identities.is_config_grant(&id) {
                if !who.is_platform() {
                    return Err(missing());
                }
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "role binding {id:?} comes from hub.toml ([identity] platform_operators): \
                         remove it there and restart the replicas"
                    ),
                ));
            }
            let grant = state.identities.grant(&id).ok_or_else(missing)?;
            if !who.sees(&grant.binding.scope) {
                return Err(missing());
            }
            may_grant(&who, &grant.binding.scope)?;
            state
                .identities
                .delete_grant(&id)
                .await
                .map_err(store_failed)?;
            tracing::info!(id, subject = %grant.binding.subject, by = %who.subject, "role revoked");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// List the service tokens the caller sees (never their secrets).
#[utoipa::path(
    get, path = "/v1/identity/tokens", tag = TAG,
    responses((status = 200, description = "Service tokens", body = Vec<ServiceToken>)),
)]
pub(super) async fn list_tokens(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
) -> Response {
    let tokens: Vec<ServiceToken> = state
        .identities
        .tokens()
        .into_iter()
        .map(|t| t.record)
        .filter(|t| who.sees(&t.scope))
        .collect();
    Json(tokens).into_response()
}

/// Mint a service token; its secret is in this answer only.
#[utoipa::path(
    post, path = "/v1/identity/tokens", tag = TAG,
    request_body = NewServiceToken,
    responses(
        (status = 201, description = "Minted: the token is shown this once", body = ServiceTokenCreated),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 403, description = "The caller may not grant that role there", body = ErrorBody),
        (status = 409, description = "A token of that name exists", body = ErrorBody),
        (status = 422, description = "A bad name, lifetime, or role for the scope", body = ErrorBody),
    ),
)]
pub(super) async fn create_token(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    body: Bytes,
) -> Response {
    respond(
        async {
            let unprocessable = |detail: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail);
            let new: NewServiceToken = parse_body(&body, "service token request")?;
            dv_protocol::validate_token("service token name", &new.name)
                .map_err(|e| unprocessable(e.to_string()))?;
            let days = new.expires_in_days.unwrap_or(DEFAULT_DAYS);
            if days == 0 || days > MAX_DAYS {
                return Err(unprocessable(format!(
                    "expires_in_days: {days}: a service token lives 1 to {MAX_DAYS} days"
                )));
            }
            let subject = format!("svc:{}", new.name);
            let binding = RoleBinding {
                subject: subject.clone(),
                role: new.role,
                scope: new.scope.clone(),
            };
            binding.validate().map_err(|e| unprocessable(e.to_string()))?;
            may_grant(&who, &binding.scope)?;
            let taken = || {
                ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "a service token named {:?} exists; revoke it first or pick another name",
                        new.name
                    ),
                )
            };
            if state.identities.token_named(&new.name).is_some() {
                return Err(taken());
            }
            let token = dv_identity::ServiceToken::mint()
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            // The index is this replica's view; the name key decides races
            // with other replicas.
            if !state
                .identities
                .reserve_name(&new.name, token.id().as_str())
                .await
                .map_err(store_failed)?
            {
                return Err(taken());
            }
            let created = now();
            let record = ServiceToken {
                id: token.id().to_string(),
                name: new.name.clone(),
                subject,
                role: new.role,
                scope: new.scope,
                created_by: who.subject.clone(),
                created_at: rfc3339(created),
                expires_at: rfc3339(created + time::Duration::days(i64::from(days))),
            };
            let stored = StoredToken {
                record: record.clone(),
                secret_sha256: token.digest().to_hex(),
            };
            if let Err(e) = state.identities.put_token(&stored).await {
                if let Err(e) = state.identities.release_name(&new.name).await {
                    tracing::warn!(error = %e, name = %new.name, "token name not released");
                }
                return Err(store_failed(e));
            }
            tracing::info!(id = %record.id, name = %record.name, role = %record.role, scope = %record.scope, by = %who.subject, "service token minted");
            Ok((
                StatusCode::CREATED,
                Json(ServiceTokenCreated {
                    record,
                    token: token.expose(),
                }),
            )
                .into_response())
        }
        .await,
    )
}

/// Revoke a service token.
#[utoipa::path(
    delete, path = "/v1/identity/tokens/{id}", tag = TAG,
    params(("id" = String, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "The caller may not revoke on that scope", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
    ),
)]
pub(super) async fn delete_token(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path(id): Path<String>,
) -> Response {
    respond(
        async {
            let stored = state
                .identities
                .token(&id)
                .filter(|t| who.sees(&t.record.scope))
                .ok_or_else(|| {
                    ApiError::new(StatusCode::NOT_FOUND, format!("no service token {id:?}"))
                })?;
            may_grant(&who, &stored.record.scope)?;
            state
                .identities
                .delete_token(&id)
                .await
                .map_err(store_failed)?;
            // The token is gone; a name left reserved only blocks reuse,
            // so a failure here is logged, not returned.
            if let Err(e) = state.identities.release_name(&stored.record.name).await {
                tracing::warn!(error = %e, name = %stored.record.name, "token name not released");
            }
            tracing::info!(id, name = %stored.record.name, by = %who.subject, "service token revoked");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}
