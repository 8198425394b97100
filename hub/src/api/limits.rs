//! Rate limits (ADR 0013, `[limits]`): a token bucket per principal
//! subject, and per client address for calls that fail authentication.
//! An empty bucket answers 429 with `Retry-After` in whole seconds (at
//! least 1) and counts `dv_hub_api_rate_limited_total`. `/v1/health` and
//! `/metrics` are public routes outside this layer, so they are never
//! limited.
//!
//! The buckets are per replica: a client spread over three replicas gets
//! up to three times the rate, which is fine for a limit meant to stop a
//! runaway script, not to meter.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use dv_protocol::auth::Principal;

use super::{AppState, problem};

/// The client's address, as the listener saw it (see
/// [`crate::serve`]); absent when the router is driven without one.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// The 429: `key_kind` labels the metric, `whom` names the bucket in the
/// message (the subject, or the address for failed authentications).
fn too_many(key_kind: &'static str, whom: &str, wait: Duration) -> Response {
    metrics::counter!("dv_hub_api_rate_limited_total", "key" => key_kind).increment(1);
    // Whole seconds, rounded up, at least 1: a client that waits as told
    // finds a token.
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut response = problem(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "too many requests from {whom}: retry in {seconds} s \
             (the hub's [limits] allow a burst, then a steady rate)"
        ),
    );
    if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// For a call that failed authentication: takes a token from the client
/// address's bucket; the 429 to answer when there was none.
pub(crate) fn limit_unauthenticated(state: &AppState, req: &Request) -> Option<Response> {
    let address = match req.extensions().get::<ConnectInfo<ClientAddr>>() {
        Some(ConnectInfo(ClientAddr(addr))) => addr.ip().to_string(),
        None => "an unknown address".to_owned(),
    };
    // Subjects are user:... or svc:..., so ip:... never meets one.
    state
        .limiter
        .check(&format!("ip:{address}"))
        .err()
        .map(|wait| {
            too_many(
                "address",
                &format!("{address} (failed authentications)"),
                wait,
            )
        })
}

/// Middleware (after authentication): one token from the principal's
/// bucket per call.
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(principal) = req.extensions().get::<Arc<Principal>>()
        && let Err(wait) = state.limiter.check(&principal.subject)
    {
        tracing::debug!(subject = %principal.subject, path = %req.uri().path(), "API call rate-limited");
        return too_many("principal", &principal.subject, wait);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_at_least_one() {
        let r = too_many("principal", "svc:ci", Duration::from_millis(10));
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let r = too_many("principal", "svc:ci", Duration::from_millis(2100));
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
    }
}
