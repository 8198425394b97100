//! dnsmasq configuration: the provisioner-authoritative form of the seed
//! (section 4.2), for a host that runs dnsmasq instead of the agent.

use std::fmt::Write;
use std::net::SocketAddr;

use super::super::zones::{RecordData, ZoneSet};

/// Renders dnsmasq lines.
pub fn render(zones: &ZoneSet, upstreams: &[SocketAddr]) -> String {
    let mut out = format!(
        "# Dataverket DNS export for dnsmasq, serial {}\n",
        zones.serial
    );
    out.push_str("domain-needed\nbogus-priv\nno-resolv\n");
    // ptr-record lines take no TTL: local-ttl gives every locally defined
    // answer the zones' TTL, which dnsmasq otherwise answers as 0.
    if let Some(ttl) = zones
        .zones
        .iter()
        .flat_map(|z| &z.entries)
        .map(|e| e.ttl)
        .max()
    {
        let _ = writeln!(out, "local-ttl={ttl}");
    }
    for up in upstreams {
        let _ = writeln!(out, "server={}#{}", up.ip(), up.port());
    }
    for zone in &zones.zones {
        // Answer these zones locally, never forward them.
        let _ = writeln!(out, "local=/{}/", zone.origin);
        for e in &zone.entries {
            match &e.data {
                RecordData::Soa { .. } | RecordData::Ns { .. } => {}
                // host-record also answers the matching reverse lookup; the
                // explicit ptr-record lines below carry the agent's one PTR
                // per address, which dnsmasq answers first.
                RecordData::A { address } => {
                    let _ = writeln!(out, "host-record={},{address},{}", e.name, e.ttl);
                }
                RecordData::Aaaa { address } => {
                    let _ = writeln!(out, "host-record={},{address},{}", e.name, e.ttl);
                }
                RecordData::Cname { target } => {
                    let _ = writeln!(out, "cname={},{target},{}", e.name, e.ttl);
                }
                RecordData::Ptr { target } => {
                    let _ = writeln!(out, "ptr-record={},{target}", e.name);
                }
            }
        }
    }
    out
}
