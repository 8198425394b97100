//! The command consumer: a durable pull consumer on the site's command
//! stream that hands each command to the agent.
//!
//! For each delivered message:
//! - the subject must be a command subject for this site, the payload must
//!   decode as a `Message<Command>` for this site, and the body must belong
//!   on the subject; otherwise it is **terminated** (`+TERM`, never
//!   redelivered) with the reason logged;
//! - a known command is acted on through the [`Provisioner`], which creates
//!   the task and records the command id in one transaction, and only then
//!   acked. A redelivered command (its ack was lost, or the agent died
//!   before acking) finds its id recorded and is acked without a second task;
//! - a command the agent cannot carry out (no such machine) is terminated
//!   with the reason; a store failure is nak'ed with a delay and retried,
//!   at most [`super::streams::COMMAND_MAX_DELIVER`] deliveries in all.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use dv_protocol::{Command, ParsedSubject, SiteName, Subject, codec};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::FederationError;
use super::backoff::Backoff;
use super::streams;
use crate::provision::runner::{ProvisionError, Provisioner};

/// Counter: commands handled, by `outcome` (`acted`, `duplicate`,
/// `rejected`, `retry`).
pub const HANDLED: &str = "dv_agent_commands_total";
/// How long a command that failed on a store error waits before redelivery.
const RETRY_DELAY: Duration = Duration::from_secs(5);

/// What became of one delivered command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A new command: its task was created.
    Acted,
    /// Seen before: acked, nothing done.
    Duplicate,
    /// Malformed or impossible: terminated, with the reason.
    Rejected(String),
    /// A local failure: nak'ed for redelivery.
    Retry(String),
}

/// Consumes until `cancel` fires; re-creates the consumer after a failure
/// (bounded, jittered back-off).
pub(crate) async fn run(
    js: jetstream::Context,
    site: SiteName,
    federated: bool,
    provisioner: Arc<Provisioner>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::default();
    loop {
        let result = tokio::select! {
            () = cancel.cancelled() => return,
            r = consume(&js, &site, federated, &provisioner, &mut backoff) => r,
        };
        let delay = backoff.next_delay();
        if let Err(e) = result {
            if backoff.failures() == 1 {
                tracing::warn!(error = %crate::telemetry::error_chain(&e), retry_in_ms = delay.as_millis(), "command consumer failed");
            } else {
                tracing::debug!(error = %crate::telemetry::error_chain(&e), failures = backoff.failures(), "command consumer still failing");
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

async fn consume(
    js: &jetstream::Context,
    site: &SiteName,
    federated: bool,
    provisioner: &Arc<Provisioner>,
    backoff: &mut Backoff,
) -> Result<(), FederationError> {
    let fail = |e: &dyn std::fmt::Display| FederationError::Consumer {
        detail: e.to_string(),
    };
    let (name, consumer) = if federated {
        // The hub owns DV_HUB_CMD; the consumer (and its position) live
        // there. Create-or-update by name: the site's hub user may touch no
        // other consumer and read no stream info (ADR 0012).
        let hub = jetstream::with_domain(js.client(), streams::HUB_DOMAIN);
        let consumer = hub
            .create_consumer_on_stream(
                streams::hub_command_consumer_config(site),
                streams::HUB_COMMAND_STREAM,
            )
            .await
            .map_err(|e| fail(&e))?;
        (streams::HUB_COMMAND_STREAM.to_owned(), consumer)
    } else {
        // Created again if the server lost it (a fresh store).
        let stream = js
            .get_or_create_stream(streams::command_stream_config(site))
            .await
            .map_err(|e| fail(&e))?;
        let consumer = stream
            .get_or_create_consumer(
                streams::COMMAND_CONSUMER,
                streams::command_consumer_config(),
            )
            .await
            .map_err(|e| fail(&e))?;
        (streams::command_stream(site), consumer)
    };
    let mut messages = consumer.messages().await.map_err(|e| fail(&e))?;
    tracing::info!(stream = %name, federated, "command consumer ready");
    while let Some(next) = messages.next().await {
        let message = next.map_err(|e| fail(&e))?;
        backoff.reset();
        let delivered = message.info().map(|i| i.delivered).unwrap_or(0);
        let subject = message.subject.to_string();
        let outcome = handle(site, provisioner, &subject, &message.payload).await;
        let (ack, label) = match &outcome {
            Outcome::Acted => (AckKind::Ack, "acted"),
            Outcome::Duplicate => (AckKind::Ack, "duplicate"),
            Outcome::Rejected(reason) => {
                tracing::warn!(%subject, delivered, reason, "command rejected (terminated)");
                (AckKind::Term, "rejected")
            }
            Outcome::Retry(reason) => {
                tracing::warn!(%subject, delivered, reason, "command failed; redelivered later");
                (AckKind::Nak(Some(RETRY_DELAY)), "retry")
            }
        };
        metrics::counter!(HANDLED, "outcome" => label).increment(1);
        // A lost ack means a redelivery, which the command id makes harmless.
        if let Err(e) = message.ack_with(ack).await {
            tracing::warn!(%subject, error = %e, "command ack not sent; it will be redelivered");
        }
    }
    Err(FederationError::Consumer {
        detail: "the message stream ended".to_owned(),
    })
}

/// Checks and acts on one command.
pub(crate) async fn handle(
    site: &SiteName,
    provisioner: &Arc<Provisioner>,
    subject: &str,
    payload: &[u8],
) -> Outcome {
    let parsed = match Subject::parse(subject) {
        Ok(p @ ParsedSubject::Command { .. }) if p.site() == site => p,
        Ok(_) => return Outcome::Rejected(format!("{subject:?} is not a command to site {site}")),
        Err(e) => return Outcome::Rejected(e.to_string()),
    };
    let message = match codec::decode::<Command>(payload) {
        Ok(m) => m,
        Err(e) => return Outcome::Rejected(format!("payload does not decode: {e}")),
    };
    if &message.envelope.site != site {
        return Outcome::Rejected(format!(
            "the envelope is for site {}, not {site}",
            message.envelope.site
        ));
    }
    if !message.body.matches(&parsed) {
        // Malformed (a bug or tampering), not a refusal: the same id may
        // still arrive properly, so nothing is recorded against it.
        return Outcome::Rejected(format!(
            "a {} command does not belong on {subject:?}",
            message.body.action()
        ));
    }
    let id = message.envelope.id;
    match provisioner.command(&message.envelope, &message.body).await {
        Ok((task, true)) => {
            tracing::info!(command = %id, task = %task.id, actor = %message.envelope.actor, correlation = %message.envelope.correlation_id, "command accepted");
            Outcome::Acted
        }
        Ok((task, false)) => {
            tracing::info!(command = %id, task = %task.id, "command seen before; not acted on again");
            Outcome::Duplicate
        }
        Err(ProvisionError::Store(e)) => Outcome::Retry(crate::telemetry::error_chain(&e)),
        Err(e) => {
            let reason = format!("{}: {e}", message.body);
            reject(provisioner, &message, reason).await
        }
    }
}

/// Refuses a command addressed to this site, and says so to its sender: a
/// `command.rejected` event in the outbox, recorded with the command id so a
/// redelivery does not repeat it. A store failure retries the command.
async fn reject(
    provisioner: &Arc<Provisioner>,
    message: &dv_protocol::Message<Command>,
    reason: String,
) -> Outcome {
    match provisioner
        .reject(&message.envelope, message.body.action(), &reason)
        .await
    {
        Ok(_) => Outcome::Rejected(reason),
        Err(e) => Outcome::Retry(format!("recording the rejection failed: {e}")),
    }
}
