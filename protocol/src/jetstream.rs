//! The JetStream names the agent and the hub must agree on: domains,
//! streams, durable consumers. Each side configures its own streams; only
//! the names live here, so neither side spells the other's.
//!
//! Stream names are upper case (NATS convention); a site name is a
//! lower-case DNS label, so `-` is the only other character and every name
//! here is a valid stream or consumer name.

use crate::token::{HUB, SiteName};

/// The hub's JetStream domain (sites reach it as `$JS.hub.API`).
pub const HUB_DOMAIN: &str = HUB;
/// The hub's aggregate of every site's events (sources each site stream).
pub const HUB_EVENTS: &str = "DV_HUB_EVT";
/// The hub's stream of commands to sites.
pub const HUB_COMMANDS: &str = "DV_HUB_CMD";
/// The hub's audit stream.
pub const HUB_AUDIT: &str = "DV_HUB_AUDIT";
/// The durable consumer of a standalone site's own command stream.
pub const SITE_COMMAND_CONSUMER: &str = "dv-agent";

/// A site's event stream, in the site's domain: `DV_EVT_<SITE>`.
pub fn site_events(site: &SiteName) -> String {
    format!("DV_EVT_{}", site.as_str().to_ascii_uppercase())
}

/// A standalone site's command stream: `DV_CMD_<SITE>`.
pub fn site_commands(site: &SiteName) -> String {
    format!("DV_CMD_{}", site.as_str().to_ascii_uppercase())
}

/// A federated site's durable consumer on [`HUB_COMMANDS`]: `dv-agent-<site>`.
pub fn hub_command_consumer(site: &SiteName) -> String {
    format!("{SITE_COMMAND_CONSUMER}-{site}")
}

/// A string in nats-server's configuration syntax: double-quoted, `"` and
/// `\` escaped (paths may hold anything). Both the hub's and the sites'
/// generated configurations use it.
pub fn conf_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_site() {
        let site = SiteName::new("osl-1").unwrap();
        assert_eq!(site_events(&site), "DV_EVT_OSL-1");
        assert_eq!(site_commands(&site), "DV_CMD_OSL-1");
        assert_eq!(hub_command_consumer(&site), "dv-agent-osl-1");
        assert_eq!(HUB_DOMAIN, "hub");
        assert_eq!(conf_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
