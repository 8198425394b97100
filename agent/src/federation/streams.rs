//! The site's JetStream streams, in its own domain, created (or updated to
//! this build's settings) when federation starts.
//!
//! - `DV_EVT_<SITE>`: every event of the site (`dv.<site>.*.evt.>`, task
//!   events included), file storage, deduplicated on `Nats-Msg-Id` over
//!   [`DUPLICATE_WINDOW`]. The hub's streams source it across the leaf link.
//! - `DV_CMD_<SITE>`, a standalone site's commands (`dv.<site>.*.cmd.>`),
//!   read by the agent's durable consumer [`COMMAND_CONSUMER`]; work-queue
//!   retention, so an acknowledged (or terminated) command leaves the
//!   stream.
//! - A federated site (`nats.hub` set) has no command stream: its agent
//!   reads its commands straight from the hub's `DV_HUB_CMD` (R3, in the
//!   hub's domain, through `$JS.hub.API`) with the durable consumer
//!   `dv-agent-<site>` ([`hub_command_consumer_config`]). The consumer's
//!   position lives at the hub, so a command issued while the leaf link is
//!   down is delivered when it returns, within the agent's own retry
//!   back-off (at most 5 s). Stream *sourcing* would do the same but
//!   nats-server retries a failed source 10 s x failures apart, up to
//!   2 min, so after a long cut commands would wait minutes (ADR 0011).
//!
//! Stream names are upper case (NATS convention); a site name is a
//! lower-case DNS label, so `-` is the only other character and both names
//! are valid stream names.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use dv_protocol::jetstream as names;
use dv_protocol::{SiteName, subject};

use super::FederationError;

/// How long the event stream remembers a `Nats-Msg-Id`: a row published but
/// not yet marked sent (a crash in between) is dropped as a duplicate when
/// it is published again within this window. An agent restarts in seconds;
/// an hour is a wide margin that keeps the server's id set small.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(3600);
/// How long the site keeps events: long enough for a hub partitioned for a
/// few weeks to catch up.
pub const EVENT_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// The event stream's byte budget on the site's disk.
pub const EVENT_MAX_BYTES: i64 = 1 << 30;
/// How long an unhandled command waits before it expires.
pub const COMMAND_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The agent's durable pull consumer on the command stream.
pub const COMMAND_CONSUMER: &str = names::SITE_COMMAND_CONSUMER;
/// How often a command is delivered before the server gives up on it.
pub const COMMAND_MAX_DELIVER: i64 = 20;
/// How long a delivered command may stay unacknowledged before redelivery.
pub const COMMAND_ACK_WAIT: Duration = Duration::from_secs(30);

/// `DV_EVT_<SITE>`
pub fn event_stream(site: &SiteName) -> String {
    names::site_events(site)
}

/// `DV_CMD_<SITE>`
pub fn command_stream(site: &SiteName) -> String {
    names::site_commands(site)
}

/// The event stream's configuration.
pub fn event_stream_config(site: &SiteName) -> stream::Config {
    stream::Config {
        name: event_stream(site),
        description: Some(format!(
            "Events of site {site}, published from its agent's outbox"
        )),
        subjects: vec![subject::site_events(site).into_string()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: EVENT_MAX_AGE,
        max_bytes: EVENT_MAX_BYTES,
        num_replicas: 1,
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    }
}

/// The hub's command stream, in the hub's JetStream domain.
pub const HUB_COMMAND_STREAM: &str = names::HUB_COMMANDS;
/// The hub's JetStream domain.
pub const HUB_DOMAIN: &str = names::HUB_DOMAIN;

/// The command stream's configuration (a standalone site).
pub fn command_stream_config(site: &SiteName) -> stream::Config {
    stream::Config {
        name: command_stream(site),
        description: Some(format!("Commands to site {site}")),
        subjects: vec![subject::site_commands(site).into_string()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::WorkQueue,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(120),
        max_age: COMMAND_MAX_AGE,
        num_replicas: 1,
        ..Default::default()
    }
}

/// The command consumer's configuration.
pub fn command_consumer_config() -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(COMMAND_CONSUMER.to_owned()),
        description: Some("the site agent: provisioning commands".to_owned()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: COMMAND_ACK_WAIT,
        max_deliver: COMMAND_MAX_DELIVER,
        ..Default::default()
    }
}

/// A federated site's durable consumer on the hub's `DV_HUB_CMD`, in the
/// hub's domain: `dv-agent-<site>`, filtered to this site's commands.
pub fn hub_command_consumer_config(site: &SiteName) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(names::hub_command_consumer(site)),
        description: Some(format!("site {site}'s agent: its commands")),
        filter_subject: subject::site_commands(site).into_string(),
        ..command_consumer_config()
    }
}

/// Creates the site's streams, or updates them to this build's settings: the
/// event stream, and the command stream unless the site is `federated` (then
/// commands are read from the hub's stream, see [`hub_command_consumer_config`]).
pub(crate) async fn ensure(
    js: &jetstream::Context,
    site: &SiteName,
    federated: bool,
) -> Result<(), FederationError> {
    let mut configs = vec![event_stream_config(site)];
    if !federated {
        configs.push(command_stream_config(site));
    }
    for config in configs {
        let name = config.name.clone();
        js.create_or_update_stream(config)
            .await
            .map_err(|e| FederationError::Stream {
                stream: name,
                detail: e.to_string(),
            })?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_and_subjects_follow_the_site() {
        let site = SiteName::new("osl-1").unwrap();
        assert_eq!(event_stream(&site), "DV_EVT_OSL-1");
        assert_eq!(command_stream(&site), "DV_CMD_OSL-1");
        assert_eq!(event_stream_config(&site).subjects, ["dv.osl-1.*.evt.>"]);
        assert_eq!(command_stream_config(&site).subjects, ["dv.osl-1.*.cmd.>"]);
        let hub = hub_command_consumer_config(&site);
        assert_eq!(hub.durable_name.as_deref(), Some("dv-agent-osl-1"));
        assert_eq!(hub.filter_subject, "dv.osl-1.*.cmd.>");
    }
}
