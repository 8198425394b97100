//! The hub's event feed (`GET /v1/events?site=&after=&limit=`) and how far
//! it is (`GET /v1/health`), so a follower can pick up what happened
//! between two reads of a record (a task's every state change, not only
//! the one it is in when read). Hub only.
//!
//! The hub's event row and health body are not protocol types yet; the
//! fields used here are declared as `hub/src/readmodel.rs` serializes
//! them. An event's body is the protocol's own [`EventBody`], decoded per
//! event by [`EventRecord::decoded`] so one event of a kind this SDK does
//! not know never hides the others.

use dv_protocol::{EventBody, SiteName};
use serde::{Deserialize, Serialize};

use crate::{Client, Error};

/// One event as the hub's read model holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Its position in the hub's event stream (the next `after`).
    pub stream_seq: u64,
    /// The site it happened at.
    pub site: String,
    /// Its kind (`task_state_changed`, ...).
    pub kind: String,
    /// When the site recorded it (RFC 3339).
    pub occurred_at: String,
    /// Its body, as JSON.
    pub body: serde_json::Value,
}

impl EventRecord {
    /// The body as the protocol's type; `None` for a kind this SDK does
    /// not know.
    pub fn decoded(&self) -> Option<EventBody> {
        serde_json::from_value(self.body.clone()).ok()
    }
}

#[derive(Deserialize)]
struct Health {
    read_model: Positions,
}

#[derive(Deserialize)]
struct Positions {
    events: u64,
}

impl Client {
    /// The last event-stream sequence the hub applied: events after it
    /// are what happens from now on (hub).
    pub async fn event_position(&self) -> Result<u64, Error> {
        let health: Health = self.get_json(self.url(&["v1", "health"])).await?;
        Ok(health.read_model.events)
    }

    /// Up to `limit` events after stream sequence `after`, of `site` only
    /// if given, in stream order (hub).
    pub async fn event_list(
        &self,
        site: Option<&SiteName>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<EventRecord>, Error> {
        let mut url = self.url(&["v1", "events"]);
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = site {
                q.append_pair("site", s.as_str());
            }
            q.append_pair("after", &after.to_string());
            q.append_pair("limit", &limit.to_string());
        }
        self.get_json(url).await
    }
}
