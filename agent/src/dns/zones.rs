//! The record set of every zone the agent serves, built from the config and
//! the store (service placements, DHCP leases). Pure: no sockets, no I/O, so
//! every naming rule is testable on its own.
//!
//! Zones (shared/seeds/management-plane.md, sections 3, 5 and 6):
//! - `mgmt.<domain>`: hosts (A/AAAA, replaceable), their interface identities
//!   `<host>-<segment>` (A, the address on that segment) and services (CNAME to
//!   a host or identity, stable);
//! - `<site>.<domain>`: site-scoped service aliases (CNAME to the management
//!   service), DHCP reservations and leases (A);
//! - one `in-addr.arpa` zone per managed prefix (PTR for every address above).
//!
//! Each zone carries its SOA and NS at the apex (RFC 1035 section 3.3.13,
//! RFC 1034 section 4.2.1). The NS is the agent's own interface identity on
//! the management segment, which the config validation guarantees exists.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::config::Config;

/// RFC 2308 section 5: the negative-caching TTL is the SOA MINIMUM field.
/// Short, because a lease can create a name at any moment.
const NEGATIVE_TTL: u32 = 60;
/// SOA refresh/retry/expire (RFC 1035 section 3.3.13) for secondaries. NOTIFY
/// makes refresh a fallback only; expire is long so a secondary keeps serving
/// through a long agent outage (the site must survive its provisioner).
pub(crate) const REFRESH: i32 = 3600;
pub(crate) const RETRY: i32 = 300;
pub(crate) const EXPIRE: i32 = 14 * 86400;
/// At most this many reverse zones per managed prefix; a shorter prefix is
/// served as the enclosing octet-aligned zone instead.
const MAX_REVERSE_SPLIT: u32 = 64;

/// What one record says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "UPPERCASE")]
pub enum RecordData {
    /// The zone's start of authority.
    Soa {
        /// Primary server name.
        mname: String,
        /// Responsible mailbox as a name.
        rname: String,
        /// Zone serial.
        serial: u32,
        /// Negative-caching TTL (RFC 2308).
        minimum: u32,
    },
    /// A name server of the zone.
    Ns {
        /// The server's name.
        target: String,
    },
    /// An IPv4 address.
    A {
        /// The address.
        #[schema(value_type = String, format = Ipv4)]
        address: Ipv4Addr,
    },
    /// An IPv6 address.
    Aaaa {
        /// The address.
        #[schema(value_type = String, format = Ipv6)]
        address: Ipv6Addr,
    },
    /// An alias.
    Cname {
        /// The canonical name.
        target: String,
    },
    /// A reverse mapping.
    Ptr {
        /// The name the address belongs to.
        target: String,
    },
}

/// One resource record. Names are lowercase, fully qualified, without the
/// trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub struct Entry {
    /// Owner name.
    pub name: String,
    /// Time to live, seconds.
    pub ttl: u32,
    /// The data.
    #[serde(flatten)]
    pub data: RecordData,
}

/// One zone: its origin and records, SOA first, then sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ZoneData {
    /// The zone apex, e.g. `mgmt.dataverket.test`.
    pub origin: String,
    /// Its serial.
    pub serial: u32,
    /// Every record, SOA first.
    pub entries: Vec<Entry>,
}

/// Every zone the agent serves, at one serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneSet {
    /// The serial every zone carries.
    pub serial: u32,
    /// The zones: management, site, then reverse zones.
    pub zones: Vec<ZoneData>,
}

impl ZoneSet {
    /// The zone with this origin (case-insensitive, trailing dot optional).
    pub fn zone(&self, origin: &str) -> Option<&ZoneData> {
        let origin = normalize(origin);
        self.zones.iter().find(|z| z.origin == origin)
    }

    /// A digest of the records without serials, to tell whether anything
    /// changed since the serial was last stored (FNV-1a, stable across builds).
    pub fn content_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for zone in &self.zones {
            for e in &zone.entries {
                let mut e = e.clone();
                if let RecordData::Soa { serial, .. } = &mut e.data {
                    *serial = 0;
                }
                for b in format!("{e:?}\n").bytes() {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        h
    }
}

/// Lowercase, without the trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A management host as the zones need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRecord {
    /// Its label.
    pub name: String,
    /// The plain name's IPv4 address.
    pub address: Option<Ipv4Addr>,
    /// The plain name's IPv6 addresses.
    pub ipv6: Vec<Ipv6Addr>,
    /// `(identity label, address)` per segment.
    pub identities: Vec<(String, Ipv4Addr)>,
}

/// Everything the zones are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// `mgmt.<domain>`.
    pub mgmt_zone: String,
    /// `<site>.<domain>`.
    pub site_zone: String,
    /// The NS (and SOA MNAME) label in the management zone.
    pub ns_label: String,
    /// TTL of every positive record.
    pub ttl: u32,
    /// Management hosts, file order.
    pub hosts: Vec<HostRecord>,
    /// Services and their targets as configured, file order.
    pub services: Vec<(String, String)>,
    /// Placement overrides from the store (service -> target label).
    pub placements: BTreeMap<String, String>,
    /// Services aliased into the site zone.
    pub site_services: Vec<String>,
    /// DHCP reservations with a hostname: (fqdn, address).
    pub reservations: Vec<(String, Ipv4Addr)>,
    /// Bound DHCP leases: address -> hostname label.
    pub leases: BTreeMap<Ipv4Addr, String>,
    /// Managed prefixes that get reverse zones.
    pub prefixes: Vec<Ipv4Net>,
    /// Named IPAM allocations: address -> hostname label (site zone).
    pub allocations: BTreeMap<Ipv4Addr, String>,
    /// IPv4 prefixes of IPAM networks; they get reverse zones too.
    pub ipam_prefixes: Vec<Ipv4Net>,
}

impl Inputs {
    /// The config's part of the inputs; placements and leases start empty.
    pub fn from_config(config: &Config) -> Inputs {
        let dns = &config.dns;
        let hosts = (dns.hosts.iter())
            .map(|h| HostRecord {
                name: h.name.to_ascii_lowercase(),
                address: h.address,
                ipv6: h.ipv6.clone(),
                identities: (h.interfaces.iter())
                    .map(|i| (h.identity(&i.segment).to_ascii_lowercase(), i.address))
                    .collect(),
            })
            .collect();
        let mut prefixes = vec![config.management.prefix];
        for s in &config.dhcp.subnets {
            if !prefixes.contains(&s.prefix) {
                prefixes.push(s.prefix);
            }
        }
        let reservations = (config.dhcp.subnets.iter())
            .flat_map(|s| {
                s.reservations.iter().filter_map(move |r| {
                    let host = r.hostname.as_ref()?;
                    Some((normalize(&format!("{host}.{}", s.domain_name)), r.ip))
                })
            })
            .collect();
        let m = &config.management;
        Inputs {
            mgmt_zone: normalize(&config.mgmt_zone()),
            site_zone: normalize(&config.site_zone()),
            ns_label: format!("{}-{}", m.host, m.segment).to_ascii_lowercase(),
            ttl: u32::try_from(dns.ttl.as_secs()).unwrap_or(u32::MAX),
            hosts,
            services: (dns.services.iter())
                .map(|s| (s.name.to_ascii_lowercase(), s.host.to_ascii_lowercase()))
                .collect(),
            placements: BTreeMap::new(),
            site_services: dns
                .site_services
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            reservations,
            leases: BTreeMap::new(),
            prefixes,
            allocations: BTreeMap::new(),
            ipam_prefixes: Vec::new(),
        }
    }

    /// Whether an IPAM allocation may publish `label` as
    /// `<label>.<site zone>`: the name must be free in the site zone, and
    /// must not be a management host, identity or service, because the site
    /// zone must not define management-plane records (seed section 3.3).
    pub fn allocation_name(&self, label: &str) -> Result<String, String> {
        let label = label.to_ascii_lowercase();
        let fqdn = format!("{label}.{}", self.site_zone);
        let mgmt = &self.mgmt_zone;
        if self.site_services.contains(&label) {
            return Err(format!(
                "{fqdn} is the site alias of service {label}.{mgmt}"
            ));
        }
        if self.services.iter().any(|(s, _)| *s == label)
            || self
                .hosts
                .iter()
                .any(|h| h.name == label || h.identities.iter().any(|(i, _)| *i == label))
        {
            return Err(format!(
                "{label} is a management-plane name ({label}.{mgmt}); the site zone must not \
                 define management-plane records"
            ));
        }
        if self.reservations.iter().any(|(f, _)| *f == fqdn) {
            return Err(format!("{fqdn} is a DHCP reservation in agent.toml"));
        }
        if let Some((ip, _)) = self.allocations.iter().find(|(_, l)| **l == label) {
            return Err(format!("{fqdn} is allocated to {ip}"));
        }
        Ok(fqdn)
    }

    /// The service's current target label: the stored placement, else the
    /// config's.
    pub fn service_target(&self, service: &str) -> Option<&str> {
        let configured = self.services.iter().find(|(s, _)| s == service)?;
        Some(
            self.placements
                .get(service)
                .map_or(configured.1.as_str(), String::as_str),
        )
    }

    /// Whether `label` may be a service target: a host with a plain address
    /// or an interface identity (the rule config validation enforces too).
    pub fn valid_target(&self, label: &str) -> Result<(), String> {
        let label = label.to_ascii_lowercase();
        if self.services.iter().any(|(s, _)| *s == label) {
            return Err(format!(
                "{label} is a service, not a host: a service must point at a host or interface \
                 identity, because a service pointing at a service is a CNAME chain"
            ));
        }
        for h in &self.hosts {
            if h.name == label {
                return if h.address.is_some() || !h.ipv6.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "host {label} has no plain address; point at one of its interface \
                         identities ({})",
                        h.identities
                            .iter()
                            .map(|(i, _)| i.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                };
            }
            if h.identities.iter().any(|(i, _)| *i == label) {
                return Ok(());
            }
        }
        let known: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        Err(format!(
            "no host or interface identity is named {label:?} (hosts: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
    }

    /// The reverse zones of the managed prefixes.
    pub fn reverse_zones(&self) -> Vec<Ipv4Net> {
        let mut out: Vec<Ipv4Net> = Vec::new();
        for p in self.prefixes.iter().chain(&self.ipam_prefixes) {
            let aligned = p.prefix_len().div_ceil(8) * 8;
            let split = 1u32 << (aligned - p.prefix_len());
            let nets: Vec<Ipv4Net> = if p.prefix_len() % 8 == 0 {
                vec![*p]
            } else if split <= MAX_REVERSE_SPLIT {
                p.subnets(aligned.min(24))
                    .map(|s| s.collect())
                    .unwrap_or_default()
            } else {
                let down = p.prefix_len() / 8 * 8;
                Ipv4Net::new(p.network(), down)
                    .map(|n| vec![n.trunc()])
                    .unwrap_or_default()
            };
            for n in nets {
                // A zone already covered by a shorter one adds nothing.
                if !out.iter().any(|o| o.contains(&n)) {
                    out.retain(|o| !n.contains(o));
                    out.push(n);
                }
            }
        }
        out
    }
}

/// The `in-addr.arpa` name of an octet-aligned network (RFC 1035 section 3.5).
pub fn reverse_origin(net: Ipv4Net) -> String {
    let octets = net.network().octets();
    let n = usize::from(net.prefix_len() / 8).min(4);
    let mut labels: Vec<String> = octets[..n].iter().rev().map(u8::to_string).collect();
    labels.push("in-addr.arpa".to_owned());
    labels.join(".")
}

/// The PTR owner name of an address.
pub fn reverse_name(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
}

/// Builds every zone at `serial`.
pub fn build(inputs: &Inputs, serial: u32) -> ZoneSet {
    let ttl = inputs.ttl;
    let mgmt = &inputs.mgmt_zone;
    let ns = format!("{}.{mgmt}", inputs.ns_label);
    let apex = |origin: &str| -> Vec<Entry> {
        vec![
            Entry {
                name: origin.to_owned(),
                ttl,
                data: RecordData::Soa {
                    mname: ns.clone(),
                    rname: format!("hostmaster.{mgmt}"),
                    serial,
                    minimum: NEGATIVE_TTL.min(ttl),
                },
            },
            Entry {
                name: origin.to_owned(),
                ttl,
                data: RecordData::Ns { target: ns.clone() },
            },
        ]
    };
    let entry = |name: String, data: RecordData| Entry { name, ttl, data };

    // PTR targets, first claim wins: plain hosts, identities, reservations,
    // IPAM allocations, leases. One PTR per address keeps reverse lookups unambiguous.
    let mut ptr: BTreeMap<Ipv4Addr, String> = BTreeMap::new();

    let mut m = apex(mgmt);
    for h in &inputs.hosts {
        let name = format!("{}.{mgmt}", h.name);
        if let Some(a) = h.address {
            m.push(entry(name.clone(), RecordData::A { address: a }));
            ptr.entry(a).or_insert_with(|| name.clone());
        }
        for a in &h.ipv6 {
            m.push(entry(name.clone(), RecordData::Aaaa { address: *a }));
        }
    }
    for h in &inputs.hosts {
        for (label, a) in &h.identities {
            let name = format!("{label}.{mgmt}");
            m.push(entry(name.clone(), RecordData::A { address: *a }));
            ptr.entry(*a).or_insert(name);
        }
    }
    for (service, _) in &inputs.services {
        if let Some(target) = inputs.service_target(service) {
            m.push(entry(
                format!("{service}.{mgmt}"),
                RecordData::Cname {
                    target: format!("{target}.{mgmt}"),
                },
            ));
        }
    }

    let site = &inputs.site_zone;
    let mut s = apex(site);
    let mut site_names: BTreeSet<String> = BTreeSet::new();
    for svc in &inputs.site_services {
        let name = format!("{svc}.{site}");
        site_names.insert(name.clone());
        s.push(entry(
            name,
            RecordData::Cname {
                target: format!("{svc}.{mgmt}"),
            },
        ));
    }
    for (fqdn, ip) in &inputs.reservations {
        // Reservations in a domain the agent does not serve are DHCP-only.
        if fqdn
            .strip_suffix(site.as_str())
            .is_some_and(|l| l.ends_with('.'))
        {
            site_names.insert(fqdn.clone());
            s.push(entry(fqdn.clone(), RecordData::A { address: *ip }));
            ptr.entry(*ip).or_insert_with(|| fqdn.clone());
        }
    }
    for (ip, host) in &inputs.allocations {
        // Operator intent, checked against every configured name when it was
        // made ([`Inputs::allocation_name`]); it outranks leases.
        let name = format!("{host}.{site}");
        if site_names.insert(name.clone()) {
            s.push(entry(name.clone(), RecordData::A { address: *ip }));
            ptr.entry(*ip).or_insert(name);
        }
    }
    for (ip, host) in &inputs.leases {
        let name = format!("{host}.{site}");
        // A lease never takes over a configured name (its hostname is chosen by
        // the client, so it is the least trusted source).
        if site_names.insert(name.clone()) {
            s.push(entry(name.clone(), RecordData::A { address: *ip }));
            ptr.entry(*ip).or_insert(name);
        }
    }

    let mut zones = vec![finish(mgmt, serial, m), finish(site, serial, s)];
    for net in inputs.reverse_zones() {
        let origin = reverse_origin(net);
        let mut r = apex(&origin);
        for (ip, target) in &ptr {
            if net.contains(ip) {
                r.push(entry(
                    reverse_name(*ip),
                    RecordData::Ptr {
                        target: target.clone(),
                    },
                ));
            }
        }
        zones.push(finish(&origin, serial, r));
    }
    ZoneSet { serial, zones }
}

fn finish(origin: &str, serial: u32, mut entries: Vec<Entry>) -> ZoneData {
    // SOA first (AXFR and humans expect it), then canonical-ish order.
    entries.sort_by(|a, b| {
        let soa = |e: &Entry| !matches!(e.data, RecordData::Soa { .. });
        (soa(a), a.name != origin, &a.name, &a.data).cmp(&(
            soa(b),
            b.name != origin,
            &b.name,
            &b.data,
        ))
    });
    entries.dedup();
    ZoneData {
        origin: origin.to_owned(),
        serial,
        entries,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lab() -> Config {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../site-kits/examples/lab/agent.toml");
        Config::from_file(&path).unwrap()
    }

    fn find<'a>(z: &'a ZoneSet, name: &str) -> Vec<&'a RecordData> {
        z.zones
            .iter()
            .flat_map(|z| &z.entries)
            .filter(|e| e.name == name)
            .map(|e| &e.data)
            .collect()
    }

    #[test]
    fn lab_zones_hold_hosts_identities_services_aliases_and_reservations() {
        let zones = build(&Inputs::from_config(&lab()), 7);
        let origins: Vec<&str> = zones.zones.iter().map(|z| z.origin.as_str()).collect();
        assert_eq!(
            origins,
            [
                "mgmt.dataverket.test",
                "lab.dataverket.test",
                "0.77.10.in-addr.arpa"
            ]
        );
        assert_eq!(
            find(&zones, "provisioner-01-lab.mgmt.dataverket.test"),
            [&RecordData::A {
                address: Ipv4Addr::new(10, 77, 0, 1)
            }]
        );
        assert_eq!(
            find(&zones, "artifacts.lab.dataverket.test"),
            [&RecordData::Cname {
                target: "artifacts.mgmt.dataverket.test".into()
            }]
        );
        assert_eq!(
            find(&zones, "node-01.lab.dataverket.test"),
            [&RecordData::A {
                address: Ipv4Addr::new(10, 77, 0, 11)
            }]
        );
        assert_eq!(
            find(&zones, "11.0.77.10.in-addr.arpa"),
            [&RecordData::Ptr {
                target: "node-01.lab.dataverket.test".into()
            }]
        );
        for z in &zones.zones {
            assert!(
                matches!(z.entries[0].data, RecordData::Soa { serial: 7, .. }),
                "{}",
                z.origin
            );
        }
    }

    #[test]
    fn a_placement_changes_only_that_cname() {
        let mut inputs = Inputs::from_config(&lab());
        let before = build(&inputs, 1);
        inputs
            .placements
            .insert("pxe".into(), "provisioner-01-lab".into());
        let after = build(&inputs, 1);
        let diff: Vec<_> = after.zones[0]
            .entries
            .iter()
            .filter(|e| !before.zones[0].entries.contains(e))
            .collect();
        assert_eq!(diff.len(), 1);
        assert_eq!(diff[0].name, "pxe.mgmt.dataverket.test");
        assert_eq!(before.zones[1..], after.zones[1..]);
        assert_ne!(before.content_hash(), after.content_hash());
        assert_eq!(
            build(&inputs, 1).content_hash(),
            build(&inputs, 9).content_hash()
        );
    }

    #[test]
    fn leases_add_a_and_ptr_but_never_shadow_configured_names() {
        let mut inputs = Inputs::from_config(&lab());
        inputs
            .leases
            .insert(Ipv4Addr::new(10, 77, 0, 150), "worker-7".into());
        inputs
            .leases
            .insert(Ipv4Addr::new(10, 77, 0, 151), "node-01".into());
        let zones = build(&inputs, 1);
        assert_eq!(
            find(&zones, "worker-7.lab.dataverket.test"),
            [&RecordData::A {
                address: Ipv4Addr::new(10, 77, 0, 150)
            }]
        );
        assert_eq!(find(&zones, "node-01.lab.dataverket.test").len(), 1);
        assert!(find(&zones, "151.0.77.10.in-addr.arpa").is_empty());
    }

    #[test]
    fn targets_must_be_hosts_or_identities() {
        let inputs = Inputs::from_config(&lab());
        assert!(inputs.valid_target("provisioner-01-lab").is_ok());
        assert!(
            inputs
                .valid_target("pxe")
                .unwrap_err()
                .contains("is a service")
        );
        assert!(inputs.valid_target("nope").unwrap_err().contains("no host"));
    }

    #[test]
    fn reverse_zones_follow_octet_boundaries() {
        let mut inputs = Inputs::from_config(&lab());
        inputs.prefixes = vec![
            "10.1.0.0/23".parse().unwrap(),
            "10.1.0.0/24".parse().unwrap(),
            "172.0.0.0/9".parse().unwrap(),
        ];
        let origins: Vec<String> = inputs
            .reverse_zones()
            .into_iter()
            .map(reverse_origin)
            .collect();
        assert_eq!(
            origins,
            [
                "0.1.10.in-addr.arpa",
                "1.1.10.in-addr.arpa",
                "172.in-addr.arpa"
            ]
        );
    }
}
