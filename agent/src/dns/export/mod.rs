//! The served records rendered as router configuration, for production
//! authority: the core router then answers with the same truth (seed 4.3,
//! intentional duplication with exclusive activation).
//!
//! Every renderer takes the [`ZoneSet`] the DNS server answers from, so what
//! the router is told is by construction what the agent served. Output is
//! deterministic (zone order, then record order) so golden tests can pin it.

pub mod dnsmasq;
pub mod opnsense;
pub mod vyos;

use super::zones::{Entry, ZoneSet};

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// VyOS `set service dns forwarding authoritative-domain ...` commands.
    Vyos,
    /// OPNsense Unbound host overrides (config.xml `unboundplus` fragment).
    Opnsense,
    /// dnsmasq configuration lines.
    Dnsmasq,
}

impl Format {
    /// Parses the URL path segment.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "vyos" => Some(Format::Vyos),
            "opnsense" => Some(Format::Opnsense),
            "dnsmasq" => Some(Format::Dnsmasq),
            _ => None,
        }
    }

    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Opnsense => "application/xml; charset=utf-8",
            Format::Vyos | Format::Dnsmasq => "text/plain; charset=utf-8",
        }
    }
}

/// Renders `zones` in `format`; `upstreams` are the forwarders the router
/// should use for everything else.
pub fn render(format: Format, zones: &ZoneSet, upstreams: &[std::net::SocketAddr]) -> String {
    match format {
        Format::Vyos => vyos::render(zones, upstreams),
        Format::Opnsense => opnsense::render(zones),
        Format::Dnsmasq => dnsmasq::render(zones, upstreams),
    }
}

/// The owner's label relative to `origin` (`@` for the apex).
fn relative<'a>(entry: &'a Entry, origin: &str) -> &'a str {
    if entry.name == origin {
        "@"
    } else {
        entry
            .name
            .strip_suffix(origin)
            .and_then(|l| l.strip_suffix('.'))
            .unwrap_or(&entry.name)
    }
}
