//! Heartbeats: every `nats.heartbeat_interval`, a [`Heartbeat`] on
//! `dv.<site>.site.hb` over core NATS (not stored; a watcher on the hub sees
//! it across the leaf link while the link is up). A failed beat is counted
//! and otherwise ignored: the next one is due soon.

use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, HeaderMap};
use dv_protocol::{Actor, Heartbeat, Message, SiteName, codec, subject};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::FederationError;
use crate::store::{Store, outbox};

/// Counter: heartbeats handed to the client.
pub const SENT: &str = "dv_agent_heartbeats_total";
/// Counter: heartbeats that could not be sent.
pub const ERRORS: &str = "dv_agent_heartbeat_errors_total";

/// Beats every `interval` until `cancel` fires.
pub(crate) async fn run(
    client: Client,
    store: Store,
    site: SiteName,
    interval: Duration,
    cancel: CancellationToken,
) {
    let started_at = OffsetDateTime::now_utc();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        // Not queued while disconnected (a long outage would fill the
        // client's queue), and never in the way of shutdown.
        let sent = async {
            if client.connection_state() != State::Connected {
                return Err(FederationError::NotConnected);
            }
            beat(&client, &store, &site, started_at, seq).await
        };
        let sent = tokio::select! {
            () = cancel.cancelled() => return,
            sent = sent => sent,
        };
        match sent {
            Ok(()) => metrics::counter!(SENT).increment(1),
            Err(e) => {
                metrics::counter!(ERRORS).increment(1);
                tracing::debug!(error = %crate::telemetry::error_chain(&e), "heartbeat not sent");
            }
        }
        seq += 1;
    }
}

async fn beat(
    client: &Client,
    store: &Store,
    site: &SiteName,
    started_at: OffsetDateTime,
    seq: u64,
) -> Result<(), FederationError> {
    let pending = store.read(outbox::pending_count).await?;
    let body = Heartbeat {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at,
        outbox_pending: u64::try_from(pending).unwrap_or(0),
        seq,
    };
    let message = Message::new(site.clone(), Actor::agent(site), body);
    let payload = codec::encode(&message).map_err(FederationError::Encode)?;
    let subject = subject::heartbeat(site, subject::service::SITE)
        .map_err(|e| FederationError::Subject(e.to_string()))?;
    let mut headers = HeaderMap::new();
    for (name, value) in message.envelope.headers() {
        headers.insert(name, value.as_str());
    }
    client
        .publish_with_headers(subject.into_string(), headers, payload.into())
        .await
        .map_err(|e| FederationError::Heartbeat(e.to_string()))
}
