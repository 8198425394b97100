//! The outbox publisher: drains unsent outbox rows, oldest first, into the
//! site's event stream and marks them sent only after the stream's ack.
//!
//! Exactly once in the stream: each row is published with `Nats-Msg-Id` =
//! its event id. A row acked but not yet marked (the agent died in between,
//! or the ack was lost) is published again on the next pass and the stream,
//! remembering ids for [`super::streams::DUPLICATE_WINDOW`], drops it and
//! acks it as a duplicate. A row is never marked without an ack, so nothing
//! is lost either. See `docs/adr/0010-agent-federation.md`.

use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::{self, message::PublishMessage};
use async_nats::{Client, HeaderMap};
use dv_protocol::{Event, SiteName, codec, envelope::header};
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::{FederationError, streams};
use crate::store::Store;
use crate::store::outbox::{self, OutboxRow};

/// Rows published per pass: publishes are pipelined, then the acks awaited.
pub const BATCH: usize = 256;
/// How often an idle publisher looks for new rows.
pub const POLL: Duration = Duration::from_millis(200);

/// Metric names (listed in docs/config.md, `[nats]`).
pub mod metric {
    /// Gauge: outbox rows not yet acknowledged by the site stream.
    pub const PENDING: &str = "dv_agent_outbox_pending";
    /// Counter: rows acknowledged by the stream (duplicates included).
    pub const PUBLISHED: &str = "dv_agent_outbox_published_total";
    /// Counter: acks the stream marked as duplicates (re-publishes).
    pub const DUPLICATES: &str = "dv_agent_outbox_duplicates_total";
    /// Counter: failed publishes or acks.
    pub const ERRORS: &str = "dv_agent_outbox_publish_errors_total";
    /// Gauge: Unix time of the last pass that published everything it read.
    pub const LAST_SUCCESS: &str = "dv_agent_outbox_last_success_timestamp_seconds";
}

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Pass {
    /// Rows read.
    pub read: usize,
    /// Rows acked and marked sent.
    pub sent: usize,
    /// Of those, acks marked duplicate.
    pub duplicates: usize,
}

/// Publishes until `cancel` fires; backs off (bounded, jittered) while the
/// server does not ack. Never returns an error: the agent keeps serving.
///
/// No pass starts while the client is disconnected: the client would queue
/// the publishes in memory, and a long outage would fill its queue. A pass
/// in flight is abandoned on shutdown; its unmarked rows are published again
/// (and deduplicated) by the next agent.
pub(crate) async fn run(
    js: jetstream::Context,
    client: Client,
    store: Store,
    site: SiteName,
    federated: bool,
    cancel: CancellationToken,
) {
    let stream = streams::event_stream(&site);
    let mut backoff = Backoff::default();
    loop {
        let attempt = async {
            if client.connection_state() != State::Connected {
                return Err(FederationError::NotConnected);
            }
            pass(&js, &store, &stream).await
        };
        let outcome = tokio::select! {
            () = cancel.cancelled() => return,
            outcome = attempt => outcome,
        };
        let wait = match outcome {
            Ok(p) => {
                if backoff.failures() > 0 {
                    tracing::info!(
                        after_failures = backoff.failures(),
                        "outbox publishing resumed"
                    );
                }
                backoff.reset();
                if p.read == BATCH {
                    Duration::ZERO
                } else {
                    POLL
                }
            }
            Err(e) => {
                metrics::counter!(metric::ERRORS).increment(1);
                update_pending(&store).await;
                let delay = backoff.next_delay();
                // The first failure is news; the rest of an outage is noise.
                if backoff.failures() == 1 {
                    tracing::warn!(error = %crate::telemetry::error_chain(&e), retry_in_ms = delay.as_millis(), "outbox publishing failed; events stay in the outbox");
                } else {
                    tracing::debug!(error = %crate::telemetry::error_chain(&e), failures = backoff.failures(), retry_in_ms = delay.as_millis(), "outbox publishing still failing");
                }
                // A server that lost its store (or a deleted stream) answers
                // publishes with "no responders": re-create the streams.
                if !matches!(e, FederationError::NotConnected) {
                    let ensured = tokio::select! {
                        () = cancel.cancelled() => return,
                        ensured = streams::ensure(&js, &site, federated) => ensured,
                    };
                    if let Err(e) = ensured {
                        tracing::debug!(error = %crate::telemetry::error_chain(&e), "site streams not ensured");
                    }
                }
                delay
            }
        };
        // Idle: the next commit (which may hold new events) wakes the
        // publisher at once; the poll stays as a backstop.
        let idle = wait == POLL;
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            () = store.committed(), if idle => {}
        }
    }
}

/// One pass: read up to [`BATCH`] rows, publish them all, await the acks,
/// mark the acked ones sent. An error after some acks still marks those.
pub(crate) async fn pass(
    js: &jetstream::Context,
    store: &Store,
    stream: &str,
) -> Result<Pass, FederationError> {
    let rows = store.read(|c| outbox::pending(c, BATCH)).await?;
    let mut result = Pass {
        read: rows.len(),
        ..Pass::default()
    };
    if rows.is_empty() {
        update_pending(store).await;
        metrics::gauge!(metric::LAST_SUCCESS).set(unix_now());
        return Ok(result);
    }
    // Pipelined: every publish goes out before the first ack is awaited.
    let mut acks = Vec::with_capacity(rows.len());
    let mut failure = None;
    for row in &rows {
        match js.send_publish(row.subject.clone(), publish(row)).await {
            Ok(ack) => acks.push((row.seq, row.id.as_str(), ack)),
            Err(e) => {
                failure = Some(FederationError::Publish {
                    id: row.id.clone(),
                    detail: e.to_string(),
                });
                break;
            }
        }
    }
    let mut sent = Vec::with_capacity(acks.len());
    for (seq, id, ack) in acks {
        match ack.await {
            Ok(ack) if ack.stream == stream => {
                result.duplicates += usize::from(ack.duplicate);
                sent.push(seq);
            }
            Ok(ack) => {
                // Another stream captured the subject: not ours to mark.
                failure.get_or_insert(FederationError::WrongStream {
                    id: id.to_owned(),
                    stream: ack.stream,
                    expected: stream.to_owned(),
                });
            }
            Err(e) => {
                failure.get_or_insert(FederationError::Publish {
                    id: id.to_owned(),
                    detail: e.to_string(),
                });
            }
        }
    }
    result.sent = sent.len();
    if !sent.is_empty() {
        store.write(move |c| outbox::mark_sent(c, &sent)).await?;
        metrics::counter!(metric::PUBLISHED).increment(result.sent as u64);
        metrics::counter!(metric::DUPLICATES).increment(result.duplicates as u64);
        tracing::debug!(
            sent = result.sent,
            duplicates = result.duplicates,
            "outbox rows published"
        );
    }
    update_pending(store).await;
    match failure {
        Some(e) => Err(e),
        None => {
            metrics::gauge!(metric::LAST_SUCCESS).set(unix_now());
            Ok(result)
        }
    }
}

/// The publish of one row: its payload, `Nats-Msg-Id` = event id, and the
/// envelope's routing headers when the payload decodes (it always should:
/// this agent wrote it).
fn publish(row: &OutboxRow) -> PublishMessage {
    let mut headers = HeaderMap::new();
    match codec::decode::<Event>(&row.payload) {
        Ok(message) => {
            for (name, value) in message.envelope.headers() {
                if name != header::MSG_ID {
                    headers.insert(name, value.as_str());
                }
            }
        }
        Err(e) => {
            tracing::warn!(event = %row.id, error = %e, "outbox row does not decode; publishing it with its id only");
        }
    }
    headers.insert(header::MSG_ID, row.id.as_str());
    PublishMessage::build()
        .payload(row.payload.clone().into())
        .headers(headers)
}

async fn update_pending(store: &Store) {
    if let Ok(n) = store.read(outbox::pending_count).await {
        metrics::gauge!(metric::PENDING).set(n as f64);
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
