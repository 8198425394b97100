//! Federation over NATS, the agent's side: the site's local leaf-node
//! nats-server is the agent's only link to the hub.
//!
//! With `[nats]` configured, the agent (one service, "federation"):
//! 1. connects to the leaf node, retrying in the background: an absent
//!    server never delays or stops serving;
//! 2. ensures the site's event and command streams in the site's JetStream
//!    domain ([`streams`]);
//! 3. runs the outbox [`publisher`] (rows marked sent only after the
//!    stream's ack; `Nats-Msg-Id` = event id, so exactly once in the stream),
//!    the [`heartbeat`] and the durable [`commands`] consumer, until
//!    shutdown.
//!
//! `dv-agent nats-config` prints the leaf node's configuration
//! ([`leaf_config`]). The design and its guarantees: ADR 0010.

pub(crate) mod backoff;
pub mod commands;
pub mod heartbeat;
pub mod leaf_config;
pub mod publisher;
pub mod streams;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use dv_protocol::SiteName;
use tokio_util::sync::CancellationToken;

use crate::config::Nats;
use crate::provision::runner::Provisioner;
use crate::store::{Store, StoreError};

use backoff::Backoff;

/// How long the client waits for a JetStream API reply or a publish ack.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest pause between the client's reconnect attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// Why a federation step failed. None of these stops the agent: each is
/// logged and retried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FederationError {
    /// The client could not be set up.
    #[error("cannot connect to the leaf node at {url}: {detail}")]
    Connect {
        /// The leaf node's client URL.
        url: String,
        /// What the client said.
        detail: String,
    },
    /// A stream could not be created or updated.
    #[error("cannot create or update stream {stream}: {detail}")]
    Stream {
        /// The stream.
        stream: String,
        /// What the server or client said.
        detail: String,
    },
    /// A publish or its ack failed.
    #[error("publishing event {id} failed: {detail}")]
    Publish {
        /// The event id.
        id: String,
        /// What the server or client said.
        detail: String,
    },
    /// A stream other than the site's event stream stored an event.
    #[error("event {id} was stored by stream {stream}, not {expected}")]
    WrongStream {
        /// The event id.
        id: String,
        /// The stream that acked.
        stream: String,
        /// The site's event stream.
        expected: String,
    },
    /// The command consumer failed.
    #[error("command consumer: {detail}")]
    Consumer {
        /// What the server or client said.
        detail: String,
    },
    /// The client is not connected to the leaf node.
    #[error("not connected to the leaf node")]
    NotConnected,
    /// A heartbeat could not be sent.
    #[error("heartbeat not sent: {0}")]
    Heartbeat(String),
    /// A subject could not be built.
    #[error("invalid subject: {0}")]
    Subject(String),
    /// A message could not be encoded.
    #[error("cannot encode a message")]
    Encode(#[source] dv_protocol::CodecError),
    /// The store failed.
    #[error("the store failed")]
    Store(#[from] StoreError),
}

/// Everything the federation service needs.
#[derive(Debug)]
pub struct Federation {
    /// `[nats]`
    pub nats: Nats,
    /// The site.
    pub site: SiteName,
    /// The store (outbox and heartbeat counts).
    pub store: Store,
    /// Acts on commands.
    pub provisioner: Arc<Provisioner>,
}

/// A client of the leaf node that connects (and reconnects) in the
/// background, so it returns at once even with no server listening.
pub async fn connect(nats: &Nats, site: &SiteName) -> Result<async_nats::Client, FederationError> {
    let url = nats.url();
    async_nats::ConnectOptions::new()
        .name(format!("dv-agent {site}"))
        // Replies (pulled commands among them) under the site's own
        // subjects, which its least-privilege hub user may receive.
        .custom_inbox_prefix(format!("dv.{site}.inbox"))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(REQUEST_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .reconnect_delay_callback(|attempts| {
            // 0, then 50 ms doubling to the ceiling.
            let exp = u32::try_from(attempts.min(16)).unwrap_or(16);
            if exp <= 1 {
                Duration::ZERO
            } else {
                Duration::from_millis(25u64 << exp).min(MAX_RECONNECT_DELAY)
            }
        })
        .event_callback(|event| async move {
            tracing::info!(event = %event, "nats connection");
        })
        .connect(url.as_str())
        .await
        .map_err(|e| FederationError::Connect {
            url,
            detail: e.to_string(),
        })
}

/// The JetStream context of the site's domain.
pub fn jetstream(client: async_nats::Client, nats: &Nats) -> jetstream::Context {
    let mut js = jetstream::with_domain(client, &nats.domain);
    js.set_timeout(REQUEST_TIMEOUT);
    js
}

impl Federation {
    /// Runs until `cancel` fires: connect, ensure the streams (retried with
    /// back-off), then the publisher, heartbeat and command consumer.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), FederationError> {
        let client = connect(&self.nats, &self.site).await?;
        let js = jetstream(client.clone(), &self.nats);
        tracing::info!(url = %self.nats.url(), domain = %self.nats.domain, "federation started");
        // Heartbeats need no stream: they start at once.
        let beat = heartbeat::run(
            client.clone(),
            self.store.clone(),
            self.site.clone(),
            self.nats.heartbeat_interval,
            cancel.clone(),
        );
        // With a hub, commands come from the hub's stream (sourced).
        let federated = !self.nats.hub.is_empty();
        let rest = async {
            let mut backoff = Backoff::default();
            loop {
                let ensured = tokio::select! {
                    () = cancel.cancelled() => return,
                    ensured = streams::ensure(&js, &self.site, federated) => ensured,
                };
                match ensured {
                    Ok(()) => break,
                    Err(e) => {
                        let delay = backoff.next_delay();
                        if backoff.failures() == 1 {
                            tracing::warn!(error = %crate::telemetry::error_chain(&e), "site streams not ready; events stay in the outbox");
                        }
                        tokio::select! {
                            () = cancel.cancelled() => return,
                            () = tokio::time::sleep(delay) => {}
                        }
                    }
                }
            }
            tracing::info!(
                events = %streams::event_stream(&self.site),
                commands = %streams::command_stream(&self.site),
                "site streams ready"
            );
            tokio::join!(
                publisher::run(
                    js.clone(),
                    client.clone(),
                    self.store.clone(),
                    self.site.clone(),
                    federated,
                    cancel.clone(),
                ),
                commands::run(
                    js.clone(),
                    self.site.clone(),
                    federated,
                    self.provisioner.clone(),
                    cancel.clone(),
                ),
            );
        };
        tokio::join!(beat, rest);
        // Whatever the client still buffers (a last heartbeat) is best effort.
        let _ = tokio::time::timeout(Duration::from_secs(1), client.flush()).await;
        Ok(())
    }
}
