//! Who may call the agent's `/v1` API, and what they may do there
//! (`[api]` in the config; ADR 0013).
//!
//! Everything an agent serves is site infrastructure, so every `/v1`
//! resource is in the platform scope: reading needs a platform binding
//! (any role), changing needs `platform`. The decision is
//! `dv_protocol::auth::Principal::can`, the same function the hub calls.
//!
//! - With `[api] token_file` or `issuer`: `Authorization: Bearer <token>`
//!   on every `/v1` call but `/v1/health`. The site token's holder is
//!   `user:operator`, platform-operator (digests compared in constant
//!   time); an OIDC token from the issuer is `user:<claim>`, holding what
//!   `[api] platform_operators` and `viewers` grant it (possibly nothing:
//!   then 403).
//! - Without either: callers on this host only (loopback or the listener's
//!   own address), as `user:operator`; anyone else gets 401 telling the
//!   operator to set a token.
//!
//! Each authenticated caller (subject; client address for failed
//! authentications) has a token bucket (`[api] requests_per_second`,
//! `burst`); an empty one answers 429 with `Retry-After`. The host-local
//! mode is not limited: it has no credential to meter.
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
    /// Verifies OIDC tokens, when `[api] issuer` is set.
    pub oidc: Option<Arc<dv_identity::OidcVerifier>>,
    /// What OIDC users hold here.
    pub bindings: Vec<RoleBinding>,
    /// Per-caller request buckets.
    pub limiter: Arc<dv_identity::RateLimiter>,
    /// The listener's address: a caller from it is on this host.
    pub listen: IpAddr,
}

impl ApiAuth {
    /// From `[api]`; fails when the OIDC client or the limiter cannot be
    /// built (a bad CA file, a zero rate).
    pub fn from_config(
        api: &crate::config::Api,
        listen: IpAddr,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let oidc = match &api.oidc {
            None => None,
            Some(o) => Some(Arc::new(dv_identity::OidcVerifier::new(
                dv_identity::OidcSettings {
                    issuer: o.issuer.clone(),
                    audience: o.audience.clone(),
                    user_claim: o.user_claim.clone(),
                    ca_pem: o.ca_pem.clone(),
                },
            )?)),
        };
        Ok(Self {
            token_sha256: api.token_sha256,
            oidc,
            bindings: api.bindings.clone(),
            limiter: Arc::new(dv_identity::RateLimiter::new(
                api.requests_per_second,
                api.burst,
            )?),
            listen,
        })
    }
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
async fn authenticate(
    auth: &ApiAuth,
    bearer: Option<&str>,
    peer: Option<IpAddr>,
) -> Result<Principal, (&'static str, String)> {
    let configured = auth.token_sha256.is_some() || auth.oidc.is_some();
    if !configured {
        return local_only(auth, peer);
    }
    let Some(bearer) = bearer else {
        return Err(("token", NEEDS_TOKEN.to_owned()));
    };
    // The site token first: it must keep working while the issuer is down.
    if let Some(expected) = &auth.token_sha256 {
        let presented: [u8; 32] = Sha256::digest(bearer.as_bytes()).into();
        if constant_time_eq(&presented, expected) {
            return Ok(operator(Credential::Bootstrap));
        }
    }
    if let Some(oidc) = &auth.oidc
        && dv_identity::looks_like_jwt(bearer)
    {
        return match oidc.verify(bearer).await {
            Ok(subject) => Ok(Principal {
                bindings: auth
                    .bindings
                    .iter()
                    .filter(|b| b.subject == subject)
                    .cloned()
                    .collect(),
                subject,
                credential: Credential::Oidc,
            }),
            Err(e) => Err((
                "oidc",
                format!("the OIDC token was refused: {e}; log in again (dvid login)"),
            )),
        };
    }
    Err(("token", NEEDS_TOKEN.to_owned()))
}

const NEEDS_TOKEN: &str = "this agent's API needs a token: send Authorization: Bearer <token> \
     (the site token in the file [api] token_file names, or an OIDC login: dvid login)";

/// No credential configured: callers on this host only.
fn local_only(auth: &ApiAuth, peer: Option<IpAddr>) -> Result<Principal, (&'static str, String)> {
    match peer.map(|ip| ip.to_canonical()) {
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

/// 429 with `Retry-After` in whole seconds (at least 1).
fn too_many(whom: &str, wait: std::time::Duration) -> Response {
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut response = refuse(
        StatusCode::TOO_MANY_REQUESTS,
        "rate",
        format!(
            "too many requests from {whom}: retry in {seconds} s ([api] requests_per_second, burst)"
        ),
    );
    if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

async fn require(State(auth): State<Arc<ApiAuth>>, mut req: Request, next: Next) -> Response {
    if !guarded(req.uri().path()) {
        return next.run(req).await;
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let principal = match authenticate(&auth, bearer.as_deref(), peer).await {
        Ok(p) => p,
        Err((reason, detail)) => {
            // Failed attempts are limited by address, so guessing is slow.
            let peer = peer.map(|p| p.to_string()).unwrap_or_default();
            if let Err(wait) = auth.limiter.check(&format!("addr:{peer}")) {
                return too_many(&peer, wait);
            }
            return refuse(StatusCode::UNAUTHORIZED, reason, detail);
        }
    };
    // Limits are per credential: the host-local mode (no credential
    // configured) has none to meter, and its callers are the operator's
    // own shell and scripts.
    if principal.credential != Credential::Anonymous
        && let Err(wait) = auth.limiter.check(&principal.subject)
    {
        return too_many(&principal.subject, wait);
    }
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

/// Describes this layer in the OpenAPI document: the `bearer` scheme on
/// every guarded path, and the 401, 403 and 429 it answers there. Done
/// once on the whole document, like the layer itself, rather than in each
/// handler's annotation.
pub fn document(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{
        HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The site token ([api] token_file) or an OIDC login (dvid login); \
                         without either configured, only callers on the agent's host, without a token",
                    ))
                    .build(),
            ),
        );
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    let answers = [
        (
            "401",
            error("No valid token (or, without one configured, a caller not on the agent's host)"),
        ),
        (
            "403",
            error("The caller's role does not allow this (viewer: read only)"),
        ),
        (
            "429",
            error("The caller is over its request rate; retry after Retry-After seconds"),
        ),
    ];
    for (path, item) in doc.paths.paths.iter_mut() {
        if !guarded(path) {
            continue;
        }
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            op.security = Some(vec![SecurityRequirement::new(
                "bearer",
                Vec::<String>::new(),
            )]);
            for (status, response) in &answers {
                op.responses
                    .responses
                    .entry((*status).to_owned())
                    .or_insert_with(|| response.clone().into());
            }
        }
    }
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

    fn auth(token: Option<[u8; 32]>, listen: &str, burst: u32) -> ApiAuth {
        ApiAuth {
            token_sha256: token,
            oidc: None,
            bindings: Vec::new(),
            limiter: Arc::new(dv_identity::RateLimiter::new(1, burst).unwrap()),
            listen: listen.parse().unwrap(),
        }
    }

    #[tokio::test]
    async fn a_caller_over_its_burst_gets_429_with_retry_after() {
        let app = app(auth(crate::config::token_digest("s3cret"), "127.0.0.1", 3));
        for _ in 0..3 {
            assert_eq!(
                call(
                    &app,
                    "GET",
                    "/v1/machines",
                    "127.0.0.1:5000",
                    Some("s3cret")
                )
                .await,
                200
            );
        }
        assert_eq!(
            call(
                &app,
                "GET",
                "/v1/machines",
                "127.0.0.1:5000",
                Some("s3cret")
            )
            .await,
            429
        );
        // Health is outside the limit.
        assert_eq!(
            call(&app, "GET", "/v1/health", "127.0.0.1:5000", None).await,
            200
        );
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
        let app = app(auth(None, "10.0.0.2", 100));
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
        let app = app(auth(
            crate::config::token_digest("s3cret\n"),
            "127.0.0.1",
            100,
        ));
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
