//! The audit trail: every mutating call (POST, PUT, PATCH, DELETE) is
//! recorded in the append-only stream `DV_HUB_AUDIT` *before* it runs: if
//! the record cannot be stored, the call is refused with 503 and changes
//! nothing. A second record with the outcome (status) follows the call.
//!
//! Each call has a correlation id: the caller's `X-Correlation-Id` when it
//! is a UUID, a new one otherwise. It is echoed in the response, carried by
//! the commands the call sends (their envelope's correlation id), and so
//! links the call to the site's task events.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use dv_protocol::CorrelationId;
use serde::Serialize;

use super::auth::Caller;
use super::{AppState, problem};

/// The header carrying the correlation id.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// One audit record.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct AuditRecord {
    /// The record's id (its `Nats-Msg-Id`).
    pub id: String,
    /// `attempt` (before the call) or `outcome` (after).
    pub phase: String,
    /// When (RFC 3339).
    pub at: String,
    /// Who called.
    pub actor: String,
    /// The HTTP method.
    pub method: String,
    /// The path (no query string).
    pub path: String,
    /// The call's correlation id.
    pub correlation_id: String,
    /// The replica that served it.
    pub replica: String,
    /// The response status (outcome records).
    pub status: Option<u16>,
}

/// The correlation id of the call being served.
#[derive(Debug, Clone, Copy)]
pub struct Correlation(pub CorrelationId);

fn mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Stores one record and waits for the stream's ack.
pub async fn publish(state: &AppState, record: &AuditRecord) -> Result<(), String> {
    let payload = serde_json::to_vec(record).map_err(|e| e.to_string())?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", record.id.as_str());
    headers.insert(
        dv_protocol::envelope::header::CORRELATION_ID,
        record.correlation_id.as_str(),
    );
    headers.insert(dv_protocol::envelope::header::ACTOR, record.actor.as_str());
    let verb = if record.phase == "attempt" {
        "attempted"
    } else {
        "completed"
    };
    let subject = format!("dv.hub.audit.evt.call.{verb}");
    crate::publish::acked(
        &state.js,
        &subject,
        &headers,
        payload.into(),
        crate::streams::AUDIT,
    )
    .await?;
    Ok(())
}

/// Middleware: correlation id on every call; audit records around
/// mutating ones.
pub async fn record(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let correlation = req
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<CorrelationId>().ok())
        .unwrap_or_else(CorrelationId::new);
    req.extensions_mut().insert(Correlation(correlation));
    let method = req.method().clone();
    let header = HeaderValue::from_str(&correlation.to_string()).ok();
    if !mutating(&method) {
        let mut response = next.run(req).await;
        if let Some(h) = header {
            response.headers_mut().insert(CORRELATION_HEADER, h);
        }
        return response;
    }
    let actor = req
        .extensions()
        .get::<Caller>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "anonymous:unknown".to_owned());
    let mut record = AuditRecord {
        id: uuid::Uuid::now_v7().to_string(),
        phase: "attempt".to_owned(),
        at: now(),
        actor,
        method: method.to_string(),
        path: req.uri().path().to_owned(),
        correlation_id: correlation.to_string(),
        replica: state.replica.clone(),
        status: None,
    };
    if let Err(e) = publish(&state, &record).await {
        tracing::warn!(error = %e, path = %record.path, "audit record not stored; call refused");
        metrics::counter!("dv_hub_audit_failures_total").increment(1);
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the audit stream did not store this call's record, so nothing was done; retry: {e}"
            ),
        );
    }
    let mut response = next.run(req).await;
    record.id = uuid::Uuid::now_v7().to_string();
    record.phase = "outcome".to_owned();
    record.at = now();
    record.status = Some(response.status().as_u16());
    if let Err(e) = publish(&state, &record).await {
        // The call happened and its attempt is on record; the outcome is
        // what is missing, which the operator can see from the resource.
        tracing::warn!(error = %e, path = %record.path, "audit outcome not stored");
        metrics::counter!("dv_hub_audit_failures_total").increment(1);
    }
    if let Some(h) = header {
        response.headers_mut().insert(CORRELATION_HEADER, h);
    }
    response
}
