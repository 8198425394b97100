//! OPNsense Unbound host overrides: the `<unboundplus>` fragment of
//! config.xml (Services > Unbound DNS > Overrides).
//!
//! Unbound overrides hold A/AAAA hosts; a service becomes an *alias* of the
//! host override its CNAME points at, which OPNsense answers with the host's
//! address. The name-to-host relation is kept; the CNAME itself is not (an
//! Unbound override cannot express one), which is why this export says so in
//! each alias's description. Ids are derived from the names so re-exporting
//! an unchanged zone yields identical XML.

use std::fmt::Write;

use super::super::zones::{RecordData, ZoneSet};

/// Renders the XML fragment.
pub fn render(zones: &ZoneSet) -> String {
    let mut hosts = String::new();
    let mut aliases = String::new();
    let all: Vec<_> = zones
        .zones
        .iter()
        .flat_map(|z| z.entries.iter().map(move |e| (z, e)))
        .collect();
    for (zone, e) in &all {
        let (rr, server) = match &e.data {
            RecordData::A { address } => ("A", address.to_string()),
            RecordData::Aaaa { address } => ("AAAA", address.to_string()),
            _ => continue,
        };
        let Some((host, domain)) = split(&e.name, &zone.origin) else {
            continue;
        };
        let _ = write!(
            hosts,
            "      <host uuid=\"{}\">\n        <enabled>1</enabled>\n        <hostname>{host}</hostname>\n        <domain>{domain}</domain>\n        <rr>{rr}</rr>\n        <server>{server}</server>\n        <description>dataverket</description>\n      </host>\n",
            uuid(&format!("{}/{rr}/{server}", e.name)),
        );
    }
    for (zone, e) in &all {
        let RecordData::Cname { target } = &e.data else {
            continue;
        };
        // Follow the chain to the host override it ends at.
        let Some(end) = resolve(zones, target) else {
            continue;
        };
        let Some((host, domain)) = split(&e.name, &zone.origin) else {
            continue;
        };
        for (rr, server) in end {
            let _ = write!(
                aliases,
                "      <alias uuid=\"{}\">\n        <enabled>1</enabled>\n        <host>{}</host>\n        <hostname>{host}</hostname>\n        <domain>{domain}</domain>\n        <description>CNAME {target}</description>\n      </alias>\n",
                uuid(&format!("{}/alias/{rr}", e.name)),
                uuid(&format!("{}/{rr}/{server}", end_name(zones, target))),
            );
        }
    }
    format!(
        "<!-- Dataverket DNS export for OPNsense Unbound, serial {} -->\n<unboundplus>\n  <hosts>\n{hosts}  </hosts>\n  <aliases>\n{aliases}  </aliases>\n</unboundplus>\n",
        zones.serial
    )
}

/// `(hostname, domain)`: the first label and the rest, as OPNsense wants.
fn split<'a>(name: &'a str, origin: &'a str) -> Option<(&'a str, &'a str)> {
    if name == origin {
        return None;
    }
    name.split_once('.')
}

/// The final name of a CNAME chain within the zones.
fn end_name(zones: &ZoneSet, start: &str) -> String {
    let mut name = start.to_owned();
    for _ in 0..crate::dns::answer::MAX_CHAIN {
        let next = zones
            .zones
            .iter()
            .flat_map(|z| &z.entries)
            .find_map(|e| match &e.data {
                RecordData::Cname { target } if e.name == name => Some(target.clone()),
                _ => None,
            });
        match next {
            Some(n) => name = n,
            None => break,
        }
    }
    name
}

/// The address records at the end of a chain.
fn resolve(zones: &ZoneSet, start: &str) -> Option<Vec<(&'static str, String)>> {
    let end = end_name(zones, start);
    let found: Vec<_> = (zones.zones.iter().flat_map(|z| &z.entries))
        .filter(|e| e.name == end)
        .filter_map(|e| match &e.data {
            RecordData::A { address } => Some(("A", address.to_string())),
            RecordData::Aaaa { address } => Some(("AAAA", address.to_string())),
            _ => None,
        })
        .collect();
    (!found.is_empty()).then_some(found)
}

/// A stable UUID-shaped id from a key (FNV-1a, twice with different seeds).
fn uuid(key: &str) -> String {
    let h = |seed: u64| {
        key.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let (a, b) = (h(0xcbf2_9ce4_8422_2325), h(0x8422_2325_cbf2_9ce4));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}
