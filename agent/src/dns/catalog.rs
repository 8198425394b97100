//! The zones compiled for answering: hickory records indexed by lowercase
//! name, built once per change and swapped in whole (readers hold an `Arc`
//! to the catalog they started with, so an answer never mixes two serials).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::zones::{Entry, RecordData, ZoneSet};

/// One compiled zone.
#[derive(Debug)]
pub struct Zone {
    /// The apex.
    pub origin: LowerName,
    /// The apex SOA record.
    pub soa: Record,
    /// Records by owner name, in zone order.
    pub names: HashMap<LowerName, Vec<Record>>,
    /// Every record in transfer order (SOA first), for AXFR.
    pub all: Vec<Record>,
    /// Names that own nothing but have names below them (inside the zone),
    /// computed once so NXDOMAIN is a hash lookup, not a scan of the zone.
    pub empty_non_terminals: HashSet<LowerName>,
}

/// What a name is inside a zone.
#[derive(Debug)]
pub enum Found<'a> {
    /// The name owns these records.
    Records(&'a [Record]),
    /// The name owns nothing but has names below it (RFC 8020 empty
    /// non-terminal): NODATA, not NXDOMAIN.
    EmptyNonTerminal,
    /// No such name.
    NxDomain,
}

impl Zone {
    /// Looks `name` up in this zone (the caller checked `zone_of`).
    pub fn find(&self, name: &LowerName) -> Found<'_> {
        if let Some(records) = self.names.get(name) {
            return Found::Records(records);
        }
        if self.empty_non_terminals.contains(name) {
            Found::EmptyNonTerminal
        } else {
            Found::NxDomain
        }
    }
}

/// Every served zone at one serial.
#[derive(Debug)]
pub struct Catalog {
    /// The serial of every zone.
    pub serial: u32,
    /// Zones, most specific first so the first match is the closest enclosure.
    pub zones: Vec<Zone>,
    /// The source the catalog was compiled from (the JSON API and exports).
    pub source: Arc<ZoneSet>,
}

impl Catalog {
    /// Compiles `set`. Names that hickory cannot parse are impossible here
    /// (config validation checked every label), but are skipped rather than
    /// trusted, with the reason logged.
    pub fn compile(set: Arc<ZoneSet>) -> Catalog {
        let mut zones: Vec<Zone> = Vec::new();
        for z in &set.zones {
            let Ok(origin) = fqdn(&z.origin) else {
                tracing::error!(zone = %z.origin, "zone origin is not a DNS name; not served");
                continue;
            };
            let mut names: HashMap<LowerName, Vec<Record>> = HashMap::new();
            let mut all = Vec::with_capacity(z.entries.len());
            let mut soa = None;
            for e in &z.entries {
                match record(e) {
                    Ok(r) => {
                        if r.record_type() == RecordType::SOA && soa.is_none() {
                            soa = Some(r.clone());
                        }
                        names
                            .entry(LowerName::new(&r.name))
                            .or_default()
                            .push(r.clone());
                        all.push(r);
                    }
                    Err(err) => tracing::error!(name = %e.name, error = %err, "record skipped"),
                }
            }
            let Some(soa) = soa else {
                tracing::error!(zone = %z.origin, "zone has no SOA; not served");
                continue;
            };
            let origin = LowerName::new(&origin);
            let empty_non_terminals = empty_non_terminals(&origin, &names);
            zones.push(Zone {
                origin,
                soa,
                names,
                all,
                empty_non_terminals,
            });
        }
        zones.sort_by_key(|z| std::cmp::Reverse(z.origin.num_labels()));
        Catalog {
            serial: set.serial,
            zones,
            source: set,
        }
    }

    /// The most specific zone holding `name`.
    pub fn zone_for(&self, name: &LowerName) -> Option<&Zone> {
        self.zones.iter().find(|z| z.origin.zone_of(name))
    }

    /// The zone whose apex is exactly `name`.
    pub fn zone_at(&self, name: &LowerName) -> Option<&Zone> {
        self.zones.iter().find(|z| &z.origin == name)
    }
}

/// Every ancestor of an owner name, below the apex, that owns no records.
fn empty_non_terminals(
    origin: &LowerName,
    names: &HashMap<LowerName, Vec<Record>>,
) -> HashSet<LowerName> {
    let mut out = HashSet::new();
    for name in names.keys() {
        let mut n = name.base_name();
        // Bounded by the name's label count (at most 127).
        while n.num_labels() > origin.num_labels() && origin.zone_of(&n) {
            if !names.contains_key(&n) {
                out.insert(n.clone());
            }
            n = n.base_name();
        }
    }
    out
}

/// A fully qualified hickory name from our dotless form.
pub fn fqdn(name: &str) -> Result<Name, hickory_proto::ProtoError> {
    let mut n = Name::from_ascii(name)?;
    n.set_fqdn(true);
    Ok(n)
}

fn record(e: &Entry) -> Result<Record, hickory_proto::ProtoError> {
    let rdata = match &e.data {
        RecordData::Soa {
            mname,
            rname,
            serial,
            minimum,
        } => RData::SOA(SOA::new(
            fqdn(mname)?,
            fqdn(rname)?,
            *serial,
            super::zones::REFRESH,
            super::zones::RETRY,
            super::zones::EXPIRE,
            *minimum,
        )),
        RecordData::Ns { target } => RData::NS(NS(fqdn(target)?)),
        RecordData::A { address } => RData::A(A(*address)),
        RecordData::Aaaa { address } => RData::AAAA(AAAA(*address)),
        RecordData::Cname { target } => RData::CNAME(CNAME(fqdn(target)?)),
        RecordData::Ptr { target } => RData::PTR(PTR(fqdn(target)?)),
    };
    Ok(Record::from_rdata(fqdn(&e.name)?, e.ttl, rdata))
}
