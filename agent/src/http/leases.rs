//! `GET /v1/leases`: the DHCP leases as the store holds them.
//!
//! Query `state=bound|released|declined|expired` filters; without it every
//! stored lease is listed (one row per address, the latest holder). Times
//! are RFC 3339; client id and option 82 are hex, as operators compare them
//! with packet captures.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

use super::AppState;
use crate::dhcp::leases::Entry;

/// One lease.
#[derive(Debug, Serialize)]
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
#[derive(Debug, Deserialize)]
pub struct LeaseQuery {
    /// Only leases in this state.
    pub state: Option<String>,
}

const STATES: [&str; 4] = ["bound", "released", "declined", "expired"];

pub(super) async fn list(State(state): State<AppState>, Query(q): Query<LeaseQuery>) -> Response {
    if let Some(s) = &q.state
        && !STATES.contains(&s.as_str())
    {
        return (
            StatusCode::BAD_REQUEST,
            format!("state must be one of {}; got {s:?}", STATES.join(", ")),
        )
            .into_response();
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
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            crate::telemetry::error_chain(&e),
        )
            .into_response(),
    }
}
