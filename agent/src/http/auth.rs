//! Who may call the agent's `/v1` API, and what they may do there
//! (`[api]` in the config; ADR 0013).
//!
//! Everything an agent serves is site infrastructure, so every `/v1`
//! resource is in the platform scope: reading needs a platform binding
//! (any role), changing needs `platform`. The decision is
//! `dv_protocol::auth::Principal::can`, the same function the hub calls.
//!
//! - With `[api] token_file`: `Authorization: Bearer <token>` on every
//!   `/v1` call but `/v1/health`; the token's holder is `user:operator`,
//!   platform-operator. Digests are compared in constant time.
//! - Without it: callers on this host only (loopback or the listener's own
//!   address), as `user:operator`; anyone else gets 401 telling the
//!   operator to set a token.
//!
//! `/metrics`, `/boot/...` and `/artifacts/...` are outside `/v1` and stay
//! open: firmware cannot send a token. Refused calls change nothing and
//! are counted (`dv_agent_api_refused_total{reason}`); every mutating call
//! is logged under the `audit` target with its actor and outcome.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dv_protocol::auth::{Action, Credential, Principal, Role, RoleBinding, Scope};
use sha2::{Digest, Sha256};

/// What the middleware decides with.
#[derive(Debug, Clone)]
pub struct ApiAuth {
    /// The bearer token's SHA-256, when `[api] token_file` is set.
    pub token_sha256: Option<[u8; 32]>,
    /// The listener's address: a caller from it is on this host.
    pub listen: IpAddr,
}

/// The actor of the site's token (and of local callers without one).
pub const OPERATOR: &str = "user:operator";

fn operator(credential: Credential) -> Principal {
    Principal {
        subject: OPERATOR.to_owned(),
        credential,
        bindings: vec![RoleBinding {
            subject: OPERATOR.to_owned(),
            role: Role::PlatformOperator,
            scope: Scope::Platform,
        }],
    }
}

/// Wraps `router` so every `/v1` call is authenticated and authorized.
pub fn protect(router: Router, auth: ApiAuth) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        Arc::new(auth),
        require,
    ))
}

fn guarded(path: &str) -> bool {
    path.starts_with("/v1/") && path != "/v1/health"
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn refuse(status: StatusCode, reason: &'static str, detail: String) -> Response {
    metrics::counter!("dv_agent_api_refused_total", "reason" => reason).increment(1);
    let mut response = (status, axum::Json(serde_json::json!({ "error": detail }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// Who the request is from, or (reason label, what to tell the caller).
fn authenticate(auth: &ApiAuth, req: &Request) -> Result<Principal, (&'static str, String)> {
    match &auth.token_sha256 {
        Some(expected) => {
            let presented = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(|t| -> [u8; 32] { Sha256::digest(t.trim().as_bytes()).into() });
            match presented {
                Some(p) if constant_time_eq(&p, expected) => Ok(operator(Credential::Bootstrap)),
                _ => Err((
                    "token",
                    "this agent's API needs its token: send Authorization: Bearer <token> \
                     (the file [api] token_file names; dv context add --token-file)"
                        .to_owned(),
                )),
            }
        }
        None => {
            let peer = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.ip().to_canonical());
            match peer {
                Some(ip) if ip.is_loopback() || ip == auth.listen.to_canonical() => {
                    Ok(operator(Credential::Anonymous))
                }
                // No peer address: an in-process call (tests), on this host.
                None => Ok(operator(Credential::Anonymous)),
                Some(ip) => Err((
                    "remote",
                    format!(
                        "this agent's API has no token configured, so it answers only on its \
                         own host (you are {ip}); set [api] token_file in the agent's config \
                         and call with Authorization: Bearer <token>"
                    ),
                )),
            }
        }
    }
}

async fn require(State(auth): State<Arc<ApiAuth>>, mut req: Request, next: Next) -> Response {
    if !guarded(req.uri().path()) {
        return next.run(req).await;
    }
    let principal = match authenticate(&auth, &req) {
        Ok(p) => p,
        Err((reason, detail)) => return refuse(StatusCode::UNAUTHORIZED, reason, detail),
    };
    let reading = matches!(*req.method(), Method::GET | Method::HEAD);
    let action = if reading {
        Action::Read
    } else {
        Action::Platform
    };
    if !principal.can(action, &Scope::Platform) {
        return refuse(
            StatusCode::FORBIDDEN,
            "role",
            format!(
                "{} may not {} here: an agent's API needs a platform binding \
                 (platform-operator to change anything, viewer to read)",
                principal.subject,
                if reading { "read" } else { "change anything" }
            ),
        );
    }
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let subject = principal.subject.clone();
    req.extensions_mut().insert(principal);
    let response = next.run(req).await;
    if !reading {
        tracing::info!(target: "audit", actor = %subject, %method, path, status = response.status().as_u16(), "api call");
    }
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    fn app(auth: ApiAuth) -> Router {
        protect(
            Router::new()
                .route("/v1/health", get(|| async { "ok" }))
                .route(
                    "/v1/machines",
                    get(|| async { "[]" }).post(|| async { "made" }),
                )
                .route("/boot/x", post(|| async { "boot" })),
            auth,
        )
    }

    async fn call(app: &Router, method: &str, path: &str, peer: &str, token: Option<&str>) -> u16 {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        app.clone().oneshot(req).await.unwrap().status().as_u16()
    }

    #[tokio::test]
    async fn without_a_token_only_this_host_is_served() {
        let app = app(ApiAuth {
            token_sha256: None,
            listen: "10.0.0.2".parse().unwrap(),
        });
        assert_eq!(
            call(&app, "GET", "/v1/machines", "127.0.0.1:5000", None).await,
            200
        );
        assert_eq!(
            call(&app, "POST", "/v1/machines", "10.0.0.2:5000", None).await,
            200
        );
        assert_eq!(
            call(&app, "GET", "/v1/machines", "10.0.0.9:5000", None).await,
            401
        );
        assert_eq!(
            call(&app, "GET", "/v1/health", "10.0.0.9:5000", None).await,
            200
        );
        assert_eq!(
            call(&app, "POST", "/boot/x", "10.0.0.9:5000", None).await,
            200
        );
    }

    #[tokio::test]
    async fn with_a_token_everyone_needs_it() {
        let app = app(ApiAuth {
            token_sha256: crate::config::token_digest("s3cret\n"),
            listen: "127.0.0.1".parse().unwrap(),
        });
        assert_eq!(
            call(&app, "GET", "/v1/machines", "127.0.0.1:5000", None).await,
            401
        );
        assert_eq!(
            call(&app, "GET", "/v1/machines", "127.0.0.1:5000", Some("nope")).await,
            401
        );
        assert_eq!(
            call(
                &app,
                "POST",
                "/v1/machines",
                "10.0.0.9:5000",
                Some("s3cret")
            )
            .await,
            200
        );
        assert_eq!(
            call(&app, "GET", "/v1/health", "10.0.0.9:5000", None).await,
            200
        );
    }
}
