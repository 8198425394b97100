//! The API token: every protected endpoint requires
//! `Authorization: Bearer <token>`. The replica keeps only the token's
//! SHA-256 and compares digests in constant time, so neither the token nor
//! its length leaks through timing. A request without a valid token gets
//! 401 with `WWW-Authenticate: Bearer` and changes nothing.
//!
//! The caller becomes the request's [`Caller`] (`user:operator` for the
//! hub token), which the audit record and commands carry as the actor.
//! Per-user identity (OIDC, roles) replaces the single token later.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use dv_protocol::Actor;
use sha2::{Digest, Sha256};

use super::{AppState, problem};

/// Who is calling, as established by [`require`].
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

/// The actor of the hub's operator token.
pub const OPERATOR: &str = "user:operator";

/// The token file's content, trimmed, hashed; an empty file is refused.
pub fn token_digest(text: &str) -> Option<[u8; 32]> {
    let token = text.trim();
    (!token.is_empty()).then(|| Sha256::digest(token.as_bytes()).into())
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: 401 unless the bearer token matches.
pub async fn require(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Some(expected) = &state.token_sha256 {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(token_digest);
        let ok = presented.is_some_and(|p| constant_time_eq(&p, expected));
        if !ok {
            metrics::counter!("dv_hub_api_unauthorized_total").increment(1);
            let mut response = problem(
                StatusCode::UNAUTHORIZED,
                "this endpoint needs the hub token: send Authorization: Bearer <token> \
                 (the token is in the file hub.toml names as token_file)",
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    if let Ok(actor) = Actor::new(OPERATOR) {
        req.extensions_mut().insert(Caller(actor));
    }
    next.run(req).await
}

#[cfg(test)]
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
}
