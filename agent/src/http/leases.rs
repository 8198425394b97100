//! `GET /v1/leases`: the DHCP leases as the store holds them.
//!
//! Query `state=bound|released|declined|expired` filters; without it every
//! stored lease is listed (one row per address, the latest holder). Times
//! are RFC 3339; client id and option 82 are hex, as operators compare them
//! with packet captures.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dv_protocol::api::ErrorBody;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

use super::{AppState, problem};
use crate::dhcp::leases::Entry;

/// One lease.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeaseView {
    /// The address.
    pub ip: String,
    /// The client's hardware address.
    pub mac: String,
    /// Option 61 as sent, hex.
    pub client_id: Option<String>,
    /// Option 12 as sent, or the reservation's name.
    pub hostname: Option<String>,
    /// bound, released, declined or expired.
    pub state: String,
    /// The subnet.
    pub subnet: String,
    /// When it began.
    pub starts: String,
    /// When it runs out (a declined address: when its quarantine ends).
    pub expires: String,
    /// Option 82 as the relay sent it, hex.
    pub relay_agent_info: Option<String>,
}

impl From<Entry> for LeaseView {
    fn from(e: Entry) -> Self {
        LeaseView {
            ip: e.ip.to_string(),
            mac: e.mac.to_string(),
            client_id: e.client_id.as_deref().map(hex::encode),
            hostname: e.hostname,
            state: e.state.to_string(),
            subnet: e.prefix.to_string(),
            starts: e.starts.format(&Rfc3339).unwrap_or_default(),
            expires: e.expires.format(&Rfc3339).unwrap_or_default(),
            relay_agent_info: e.relay_info.as_deref().map(hex::encode),
        }
    }
}

/// The query string.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeaseQuery {
    /// Only leases in this state.
    #[param(schema_with = state_schema)]
    pub state: Option<String>,
}

fn state_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(STATES))
        .build()
}

const STATES: [&str; 4] = ["bound", "released", "declined", "expired"];

/// The DHCP leases, one per address, sorted by address.
#[utoipa::path(
    get, path = "/v1/leases", operation_id = "leases_list", tag = "dhcp", params(LeaseQuery),
    responses(
        (status = 200, description = "The leases", body = [LeaseView]),
        (status = 400, description = "A bad query", body = ErrorBody),
        (status = 503, description = "The store cannot be read", body = ErrorBody),
    ),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    q: Result<Query<LeaseQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if let Some(s) = &q.state
        && !STATES.contains(&s.as_str())
    {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("state must be one of {}; got {s:?}", STATES.join(", ")),
        );
    }
    match state.store.read(crate::dhcp::store::load).await {
        Ok(entries) => {
            let mut leases: Vec<LeaseView> = entries
                .into_iter()
                .map(LeaseView::from)
                .filter(|l| q.state.as_ref().is_none_or(|s| *s == l.state))
                .collect();
            leases.sort_by(|a, b| a.ip.cmp(&b.ip));
            Json(leases).into_response()
        }
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::telemetry::error_chain(&e),
        ),
    }
}
