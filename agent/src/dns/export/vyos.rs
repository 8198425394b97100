//! VyOS (1.4+) configuration commands: one authoritative domain per zone
//! under `service dns forwarding`, records by type.

use std::fmt::Write;
use std::net::SocketAddr;

use super::super::zones::{RecordData, ZoneSet};
use super::relative;

/// Renders `set` commands.
pub fn render(zones: &ZoneSet, upstreams: &[SocketAddr]) -> String {
    let mut out = format!(
        "# Dataverket DNS export for VyOS, serial {}\n",
        zones.serial
    );
    for up in upstreams {
        let _ = writeln!(
            out,
            "set service dns forwarding name-server {} port {}",
            up.ip(),
            up.port()
        );
    }
    for zone in &zones.zones {
        let base = format!(
            "set service dns forwarding authoritative-domain {}",
            zone.origin
        );
        for e in &zone.entries {
            let name = relative(e, &zone.origin);
            let line = match &e.data {
                // VyOS generates the SOA and NS of an authoritative domain.
                RecordData::Soa { .. } | RecordData::Ns { .. } => continue,
                RecordData::A { address } => format!("records a {name} address {address}"),
                RecordData::Aaaa { address } => format!("records aaaa {name} address {address}"),
                RecordData::Cname { target } => format!("records cname {name} cname {target}"),
                RecordData::Ptr { target } => format!("records ptr {name} target {target}"),
            };
            let _ = writeln!(out, "{base} {line}");
            let _ = writeln!(
                out,
                "{base} {} ttl {}",
                line.rsplitn(3, ' ').nth(2).unwrap_or(&line),
                e.ttl
            );
        }
    }
    out
}
