//! Authentication (ADR 0013): every protected endpoint requires
//! `Authorization: Bearer <token>`, one of
//!
//! 1. a service token `dvs_<id>_<secret>` minted by the hub: its subject is
//!    `svc:<name>` ([`crate::identity`]); unknown, revoked or expired → 401;
//! 2. the bootstrap token (`token_file`, break-glass): `user:operator`,
//!    platform-operator. The replica keeps only its SHA-256 and compares
//!    digests in constant time;
//! 3. a JWT from the `[identity]` issuer ([`dv_identity::OidcVerifier`]):
//!    `user:<claim>`.
//!
//! With `insecure_no_token` (lab only) a call without a token is an
//! anonymous platform-operator; tokens sent anyway still count.
//!
//! The caller becomes the request's [`Principal`] (config bindings, KV
//! grants and a token's own binding); the audit record and commands carry
//! its subject as the actor ([`Caller`]). A call that fails authentication
//! answers 401 with `WWW-Authenticate: Bearer`, changes nothing and is
//! rate-limited by client address ([`super::limits`]), so guessing tokens
//! is slow.
//!
//! [`require`] is the authorization check every handler makes.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use dv_protocol::Actor;
use dv_protocol::auth::{Action, Credential, Principal, Role, RoleBinding, Scope};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState, problem};

/// Who is calling, as an actor for audit records and commands.
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

/// The subject of the bootstrap token.
pub const OPERATOR: &str = "user:operator";
/// The subject of an unauthenticated call with `insecure_no_token`.
pub const ANONYMOUS: &str = "user:anonymous";

/// The token file's content, trimmed, hashed; an empty file is refused.
pub fn token_digest(text: &str) -> Option<[u8; 32]> {
    let token = text.trim();
    (!token.is_empty()).then(|| Sha256::digest(token.as_bytes()).into())
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn platform_operator(subject: &str, credential: Credential) -> Principal {
    Principal {
        subject: subject.to_owned(),
        credential,
        bindings: vec![RoleBinding {
            subject: subject.to_owned(),
            role: Role::PlatformOperator,
            scope: Scope::Platform,
        }],
    }
}

/// Why a bearer was refused (logged; the caller gets one message).
async fn authenticate(state: &AppState, bearer: Option<&str>) -> Result<Principal, String> {
    let Some(bearer) = bearer else {
        return match state.token_sha256 {
            None => Ok(platform_operator(ANONYMOUS, Credential::Anonymous)),
            Some(_) => Err("no bearer token".to_owned()),
        };
    };
    if bearer.starts_with(dv_identity::service_token::PREFIX) {
        return state
            .identities
            .authenticate_token(bearer)
            .map_err(|why| format!("service token {why}"));
    }
    // The bootstrap token first: whatever shape it has (even a JWT's), it
    // must keep working while the issuer is down.
    if let Some(expected) = &state.token_sha256
        && token_digest(bearer).is_some_and(|p| constant_time_eq(&p, expected))
    {
        return Ok(platform_operator(OPERATOR, Credential::Bootstrap));
    }
    if let Some(oidc) = &state.oidc
        && dv_identity::looks_like_jwt(bearer)
    {
        let subject = oidc.verify(bearer).await.map_err(|e| e.to_string())?;
        dv_protocol::auth::validate_subject(&subject).map_err(|e| e.to_string())?;
        let bindings = state.identities.bindings_for(&subject);
        return Ok(Principal {
            subject,
            credential: Credential::Oidc,
            bindings,
        });
    }
    match &state.token_sha256 {
        Some(_) => Err("not a known token".to_owned()),
        None => Ok(platform_operator(ANONYMOUS, Credential::Anonymous)),
    }
}

/// Middleware: establishes the [`Principal`] or answers 401.
pub async fn authenticate_request(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    match authenticate(&state, bearer.as_deref()).await {
        Ok(principal) => {
            if let Ok(actor) = Actor::new(principal.subject.as_str()) {
                req.extensions_mut().insert(Caller(actor));
            }
            req.extensions_mut().insert(Arc::new(principal));
            next.run(req).await
        }
        Err(why) => {
            // Limited per client address: brute force gets 429s.
            if let Some(limited) = super::limits::limit_unauthenticated(&state, &req) {
                return limited;
            }
            metrics::counter!("dv_hub_api_unauthorized_total").increment(1);
            tracing::debug!(reason = %why, path = %req.uri().path(), "API call refused: not authenticated");
            let oidc = if state.oidc.is_some() {
                "log in with `dvid login` and send its token, or "
            } else {
                ""
            };
            let mut response = problem(
                StatusCode::UNAUTHORIZED,
                format!(
                    "this endpoint needs a valid bearer token ({why}): {oidc}send \
                     Authorization: Bearer <token> with a service token (dvs_...) or the \
                     hub token (the file hub.toml names as token_file)"
                ),
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// The role that grants `action` on `scope`, for a 403's message.
fn needed(action: Action, scope: &Scope) -> String {
    match action {
        Action::Read => format!("a role on {scope} (viewer at least)"),
        Action::Write => format!("project-member or tenant-admin on {scope}"),
        Action::Manage => match scope.tenant_name() {
            Some(t) => format!("tenant-admin on tenant {t}"),
            None => "platform-operator".to_owned(),
        },
        Action::Platform => "platform-operator on the platform".to_owned(),
    }
}

/// Authorization: `Ok` when `who` may perform `action` in `scope`.
///
/// When `who` cannot even see the scope, the answer is the same 404 a
/// missing resource gets ([`not_found`]), so another tenant's names do not
/// leak; platform resources are not secret, so for them it is a 403 like
/// any other missing right.
pub(crate) fn require(who: &Principal, action: Action, scope: &Scope) -> Result<(), ApiError> {
    if !matches!(scope, Scope::Platform) && !who.sees(scope) {
        return Err(not_found(who, scope));
    }
    if who.can(action, scope) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{} may not do this: it needs {}",
                who.subject,
                needed(action, scope)
            ),
        ))
    }
}

/// The 404 for a scope `who` cannot see, worded as when it does not exist:
/// the outermost invisible level is named.
pub(crate) fn not_found(who: &Principal, scope: &Scope) -> ApiError {
    let detail = match scope {
        Scope::Platform => "not found".to_owned(),
        Scope::Tenant { tenant } => format!("tenant {:?} does not exist", tenant.as_str()),
        Scope::Project { tenant, project } => {
            if who.sees(&Scope::tenant(tenant)) {
                format!("project \"{tenant}/{project}\" does not exist")
            } else {
                format!("tenant {:?} does not exist", tenant.as_str())
            }
        }
    };
    ApiError::new(StatusCode::NOT_FOUND, detail)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_by_content() {
        let a = token_digest(" secret\n");
        assert!(a.is_some());
        assert_eq!(a, token_digest("secret"));
        assert!(token_digest("  \n").is_none());
        if let (Some(a), Some(b)) = (a, token_digest("other")) {
            assert!(!constant_time_eq(&a, &b));
            assert!(constant_time_eq(&a, &a));
        }
    }

    #[test]
    fn invisible_is_404_and_visible_without_the_right_is_403() {
        let acme = "acme".parse().unwrap();
        let globex = "globex".parse().unwrap();
        let web = "web".parse().unwrap();
        let db = "db".parse().unwrap();
        let member = Principal {
            subject: "svc:m".into(),
            credential: Credential::ServiceToken,
            bindings: vec![RoleBinding {
                subject: "svc:m".into(),
                role: Role::ProjectMember,
                scope: Scope::project(&acme, &web),
            }],
        };
        let e = require(&member, Action::Read, &Scope::project(&globex, &web)).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert!(e.detail.contains("tenant \"globex\""), "{}", e.detail);
        let e = require(&member, Action::Read, &Scope::project(&acme, &db)).unwrap_err();
        assert!(e.detail.contains("acme/db"), "{}", e.detail);
        let e = require(&member, Action::Manage, &Scope::project(&acme, &web)).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(e.detail.contains("tenant-admin"), "{}", e.detail);
        let e = require(&member, Action::Read, &Scope::Platform).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(require(&member, Action::Write, &Scope::project(&acme, &web)).is_ok());
    }
}
