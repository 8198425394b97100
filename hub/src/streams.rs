//! The hub's JetStream state, in the `hub` domain, replicated over the
//! cluster's nodes (R3 with three nodes). Created, or updated to this
//! build's settings, by every replica at start; the updates are idempotent.
//!
//! | name | what | how |
//! | --- | --- | --- |
//! | `DV_HUB_EVT` | every site's events | no subjects of its own: it *sources* each site's `DV_EVT_<SITE>` through `$JS.<site>.API` across the leaf link, so a cut link only delays events |
//! | `DV_HUB_CMD` | commands to sites | subjects `dv.*.*.cmd.>`; each site's agent reads its own with the durable consumer `dv-agent-<site>` (filtered to `dv.<site>.*.cmd.>`), now or when it reconnects |
//! | `DV_HUB_AUDIT` | every mutating API call | subjects `dv.hub.audit.evt.>`, append-only (deny delete and purge) |
//!
//! Each source delivers under the site's own subjects
//! (`dv.<site>.hub.src.S.<id>`, [`site_delivery_prefix`]) rather than the
//! server's default `$JS.S.<id>`, which every site would share: this way a
//! site's least-privilege NATS user (ADR 0012: `dv.<site>.>`) covers its
//! deliveries, and no site can read or forge another's.
//!
//! Having no subjects on `DV_HUB_EVT` matters: a site's plain publishes
//! cross the leaf link while it is up, and a stream listening on
//! `dv.*.*.evt.>` would store them a second time, outside the site stream's
//! deduplication.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use dv_protocol::SiteName;

use crate::config::HubConfig;

/// The aggregated event stream.
pub const EVENTS: &str = dv_protocol::jetstream::HUB_EVENTS;
/// The command stream sites source from.
pub const COMMANDS: &str = dv_protocol::jetstream::HUB_COMMANDS;
/// The audit stream.
pub const AUDIT: &str = dv_protocol::jetstream::HUB_AUDIT;
/// The subjects of every command to any site.
pub const COMMAND_SUBJECTS: &str = "dv.*.*.cmd.>";
/// The audit stream's subjects.
/// (`evt`, not `>`: `dv.hub.audit.cmd.x` would overlap [`COMMAND_SUBJECTS`],
/// and JetStream refuses overlapping streams.)
pub const AUDIT_SUBJECTS: &str = "dv.hub.audit.evt.>";
/// How long the hub keeps events (the read model is rebuilt from them).
pub const EVENT_MAX_AGE: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long a command waits for its site.
pub const COMMAND_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// A re-sent API write (same command id) within this window is stored once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(3600);

/// Why the hub's streams could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot create or update stream {stream}: {detail}")]
pub struct StreamError {
    /// The stream.
    pub stream: String,
    /// What the server said.
    pub detail: String,
}

/// A site's event stream, in its own domain (the agent creates it).
pub fn site_event_stream(site: &SiteName) -> String {
    dv_protocol::jetstream::site_events(site)
}

/// Where the hub's source of `site`'s events is delivered: under the
/// site's own subjects, so its leaf user may publish there and no other
/// site may. The fourth token `src` is neither `evt` nor `cmd`, so no
/// stream captures the deliveries.
pub fn site_delivery_prefix(site: &SiteName) -> String {
    format!("dv.{site}.hub.src")
}

/// The aggregated event stream's configuration: one source per site.
pub fn events_config(config: &HubConfig) -> stream::Config {
    stream::Config {
        name: EVENTS.to_owned(),
        description: Some("Every site's events, sourced across the leaf links".to_owned()),
        sources: Some(
            config
                .sites
                .iter()
                .map(|site| stream::Source {
                    name: site_event_stream(site),
                    external: Some(stream::External {
                        api_prefix: format!("$JS.{site}.API"),
                        delivery_prefix: Some(site_delivery_prefix(site)),
                    }),
                    ..Default::default()
                })
                .collect(),
        ),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age: EVENT_MAX_AGE,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: config.stream_replicas(),
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    }
}

/// The command stream's configuration.
pub fn commands_config(config: &HubConfig) -> stream::Config {
    stream::Config {
        name: COMMANDS.to_owned(),
        description: Some("Commands to sites; each site sources its own".to_owned()),
        subjects: vec![COMMAND_SUBJECTS.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age: COMMAND_MAX_AGE,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: config.stream_replicas(),
        ..Default::default()
    }
}

/// The audit stream's configuration.
pub fn audit_config(config: &HubConfig) -> stream::Config {
    stream::Config {
        name: AUDIT.to_owned(),
        description: Some("Every mutating API call: actor, correlation id, outcome".to_owned()),
        subjects: vec![AUDIT_SUBJECTS.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: config.stream_replicas(),
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    }
}

/// Creates the streams, or updates them to this build's settings.
pub async fn ensure(js: &jetstream::Context, config: &HubConfig) -> Result<(), StreamError> {
    for c in [
        events_config(config),
        commands_config(config),
        audit_config(config),
    ] {
        let name = c.name.clone();
        js.create_or_update_stream(c)
            .await
            .map_err(|e| StreamError {
                stream: name,
                detail: e.to_string(),
            })?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_event_stream_sources_each_site_and_listens_to_nothing() {
        let c = HubConfig::parse(crate::config::tests_support::THREE, Path::new("h.toml")).unwrap();
        let events = events_config(&c);
        assert!(events.subjects.is_empty());
        let sources = events.sources.unwrap();
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].name, "DV_EVT_OSL-1");
        assert_eq!(
            sources[1].external.as_ref().unwrap().api_prefix,
            "$JS.bgo-1.API"
        );
        assert_eq!(
            sources[1]
                .external
                .as_ref()
                .unwrap()
                .delivery_prefix
                .as_deref(),
            Some("dv.bgo-1.hub.src")
        );
        assert_eq!(events.num_replicas, 3);
        assert_eq!(commands_config(&c).subjects, [COMMAND_SUBJECTS]);
    }
}
