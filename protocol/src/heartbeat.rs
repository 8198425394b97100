//! Heartbeats: a small periodic "still here" from a site's agent.
//!
//! Sent as a [`Message<Heartbeat>`] on `dv.<site>.site.hb`
//! ([`crate::subject::heartbeat`]) over core NATS: nothing stores it. A
//! watcher that misses a few beats knows the site (or its link) is down;
//! the body says how far behind the site's event publishing is.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One beat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Heartbeat {
    /// The agent's version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// When this agent process started.
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    /// Events in the outbox not yet acknowledged by the site's stream.
    pub outbox_pending: u64,
    /// Beats sent by this process before this one (a restart resets it).
    pub seq: u64,
}
