//! The site's JetStream streams, in its own domain, created (or updated to
//! this build's settings) when federation starts.
//!
//! - `DV_EVT_<SITE>`: every event of the site (`dv.<site>.*.evt.>`, task
//!   events included), file storage, deduplicated on `Nats-Msg-Id` over
//!   [`DUPLICATE_WINDOW`]. The hub's streams source it across the leaf link.
//! - `DV_CMD_<SITE>`: commands to the site (`dv.<site>.*.cmd.>`), read by the
//!   agent's durable consumer [`COMMAND_CONSUMER`]; work-queue retention,
//!   so an acknowledged (or terminated) command leaves the stream. A
//!   federated site (`nats.hub` set) gives it no subjects of its own: it
//!   *sources* this site's commands from the hub's `DV_HUB_CMD` through
//!   `$JS.hub.API`, so a command issued while the leaf link is down arrives
//!   when it comes back. A standalone site listens on the subjects.
//!   The source delivers to `dv.<site>.site.src.S.<id>`
//!   ([`command_delivery_prefix`]), under the site's own subjects, which is
//!   what the site's least-privilege user on the hub may receive (ADR 0012).
//!
//! Stream names are upper case (NATS convention); a site name is a
//! lower-case DNS label, so `-` is the only other character and both names
//! are valid stream names.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
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
pub const COMMAND_CONSUMER: &str = "dv-agent";
/// How often a command is delivered before the server gives up on it.
pub const COMMAND_MAX_DELIVER: i64 = 20;
/// How long a delivered command may stay unacknowledged before redelivery.
pub const COMMAND_ACK_WAIT: Duration = Duration::from_secs(30);

/// `DV_EVT_<SITE>`
pub fn event_stream(site: &SiteName) -> String {
    format!("DV_EVT_{}", site.as_str().to_ascii_uppercase())
}

/// `DV_CMD_<SITE>`
pub fn command_stream(site: &SiteName) -> String {
    format!("DV_CMD_{}", site.as_str().to_ascii_uppercase())
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
pub const HUB_COMMAND_STREAM: &str = "DV_HUB_CMD";
/// The hub's JetStream domain.
pub const HUB_DOMAIN: &str = "hub";

/// Where the hub delivers this site's commands: under the site's own
/// subjects rather than the shared default `$JS.S.<id>`, so the site's hub
/// user needs no right to anything other sites receive. `src` in the kind
/// position keeps the deliveries out of every stream's subjects.
pub fn command_delivery_prefix(site: &SiteName) -> String {
    format!("dv.{site}.site.src")
}

/// The command stream's configuration: sourced from the hub when
/// `federated`, listening on the site's command subjects otherwise.
pub fn command_stream_config(site: &SiteName, federated: bool) -> stream::Config {
    let own = subject::site_commands(site).into_string();
    let (subjects, sources) = if federated {
        let source = stream::Source {
            name: HUB_COMMAND_STREAM.to_owned(),
            filter_subject: Some(own),
            external: Some(stream::External {
                api_prefix: format!("$JS.{HUB_DOMAIN}.API"),
                delivery_prefix: Some(command_delivery_prefix(site)),
            }),
            ..Default::default()
        };
        (Vec::new(), Some(vec![source]))
    } else {
        (vec![own], None)
    };
    stream::Config {
        name: command_stream(site),
        description: Some(format!("Commands to site {site}")),
        subjects,
        sources,
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

/// Creates both streams, or updates them to this build's settings.
pub(crate) async fn ensure(
    js: &jetstream::Context,
    site: &SiteName,
    federated: bool,
) -> Result<(), FederationError> {
    for config in [
        event_stream_config(site),
        command_stream_config(site, federated),
    ] {
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
        assert_eq!(
            command_stream_config(&site, false).subjects,
            ["dv.osl-1.*.cmd.>"]
        );
        let federated = command_stream_config(&site, true);
        assert!(federated.subjects.is_empty());
        let source = &federated.sources.unwrap()[0];
        assert_eq!(source.name, "DV_HUB_CMD");
        assert_eq!(source.filter_subject.as_deref(), Some("dv.osl-1.*.cmd.>"));
        assert_eq!(source.external.as_ref().unwrap().api_prefix, "$JS.hub.API");
        assert_eq!(
            source.external.as_ref().unwrap().delivery_prefix.as_deref(),
            Some("dv.osl-1.site.src")
        );
    }
}
