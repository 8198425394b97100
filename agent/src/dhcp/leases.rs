//! The in-memory lease index that every packet reads.
//!
//! The store is the system of record; this index is its working copy,
//! loaded from it at start ([`super::store::load`]) and updated by the
//! handler before each commit, so two clients racing for one address see
//! each other at once. Offers (RFC 2131 §4.3.1) live only here, with a short
//! expiry: nobody depends on an offer surviving a restart.
//!
//! One entry per address: the address's current holder and state. A
//! client's entries are found through `by_key` (its most recent address).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use dv_protocol::{Lease, LeaseId, LeaseState, MacAddr, PrefixId};
use ipnet::Ipv4Net;
use time::OffsetDateTime;

use super::classify::ClientKey;
use crate::config::Pool;

/// One address's current holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The lease id: kept across renewals of the same client and address.
    pub id: LeaseId,
    /// The address.
    pub ip: Ipv4Addr,
    /// The subnet it belongs to.
    pub prefix: Ipv4Net,
    /// Who holds it.
    pub key: ClientKey,
    /// The holder's chaddr.
    pub mac: MacAddr,
    /// Option 61 as sent.
    pub client_id: Option<Vec<u8>>,
    /// Option 12 as sent, or the reservation's name.
    pub hostname: Option<String>,
    /// Offered, bound, released, declined or expired.
    pub state: LeaseState,
    /// When the lease (or offer) began.
    pub starts: OffsetDateTime,
    /// When it runs out (for a decline: when the quarantine ends).
    pub expires: OffsetDateTime,
    /// Option 82 as the relay sent it.
    pub relay_info: Option<Vec<u8>>,
}

impl Entry {
    /// True while the address may not go to anyone but `key`'s holder:
    /// an unexpired offer or binding, or an unexpired quarantine (which
    /// binds even its own client: it said the address is in use).
    pub fn holds(&self, now: OffsetDateTime) -> bool {
        match self.state {
            LeaseState::Offered | LeaseState::Bound | LeaseState::Declined => now < self.expires,
            LeaseState::Released | LeaseState::Expired => false,
        }
    }

    /// The protocol form of this lease, as stored and published.
    pub fn to_lease(&self) -> Lease {
        Lease {
            id: self.id,
            prefix: prefix_id(self.prefix),
            ip: IpAddr::V4(self.ip),
            mac: self.mac,
            client_id: self.client_id.clone(),
            hostname: self.hostname.clone(),
            starts: self.starts,
            expires: self.expires,
            state: self.state,
            relay_agent_info: self.relay_info.clone(),
        }
    }
}

/// A stable id for a config subnet: a UUIDv8 of its prefix, so every run
/// (and the hub) names the same subnet the same way until prefixes get
/// their own records.
pub fn prefix_id(prefix: Ipv4Net) -> PrefixId {
    let mut bytes = *b"dv-dhcp-subnet\0\0";
    bytes[8..12].copy_from_slice(&prefix.network().octets());
    bytes[12] = prefix.prefix_len();
    PrefixId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

/// All leases by address, plus each client's latest address.
#[derive(Debug, Default, Clone)]
pub struct LeaseIndex {
    by_ip: HashMap<Ipv4Addr, Entry>,
    by_key: HashMap<ClientKey, Ipv4Addr>,
}

impl LeaseIndex {
    /// An empty index.
    pub fn new() -> LeaseIndex {
        LeaseIndex::default()
    }

    /// Number of addresses with an entry.
    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    /// True when no address has an entry.
    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    /// The entry for `ip`.
    pub fn get(&self, ip: Ipv4Addr) -> Option<&Entry> {
        self.by_ip.get(&ip)
    }

    /// The entry of `key`'s latest address, if it still names `key`.
    pub fn of_client(&self, key: &ClientKey) -> Option<&Entry> {
        let ip = self.by_key.get(key)?;
        self.by_ip.get(ip).filter(|e| &e.key == key)
    }

    /// True if `key` may have `ip` now: nobody else holds it.
    pub fn available_to(&self, ip: Ipv4Addr, key: &ClientKey, now: OffsetDateTime) -> bool {
        match self.by_ip.get(&ip) {
            None => true,
            Some(e) if e.state == LeaseState::Declined => !e.holds(now),
            Some(e) => &e.key == key || !e.holds(now),
        }
    }

    /// Stores `entry`, returning what it replaced (for [`Self::restore`]).
    pub fn insert(&mut self, entry: Entry) -> Option<Entry> {
        self.by_key.insert(entry.key.clone(), entry.ip);
        let previous = self.by_ip.insert(entry.ip, entry);
        if let Some(prev) = &previous {
            self.unlink(prev);
        }
        previous
    }

    /// Puts back what [`Self::insert`] replaced at `ip` (a commit failed).
    pub fn restore(&mut self, ip: Ipv4Addr, previous: Option<Entry>) {
        if let Some(current) = self.by_ip.remove(&ip)
            && self.by_key.get(&current.key) == Some(&ip)
        {
            self.by_key.remove(&current.key);
        }
        if let Some(prev) = previous {
            self.by_key.insert(prev.key.clone(), prev.ip);
            self.by_ip.insert(prev.ip, prev);
        }
    }

    /// Removes an offer for `ip` made to `key` (the client chose another
    /// server). Bindings are left alone.
    pub fn withdraw_offer(&mut self, ip: Ipv4Addr, key: &ClientKey) {
        if self
            .by_ip
            .get(&ip)
            .is_some_and(|e| &e.key == key && e.state == LeaseState::Offered)
        {
            self.restore(ip, None);
        }
    }

    /// Drops the `by_key` link of a replaced entry unless it points elsewhere.
    fn unlink(&mut self, prev: &Entry) {
        let still = self.by_ip.get(&prev.ip).is_some_and(|e| e.key == prev.key);
        if !still && self.by_key.get(&prev.key) == Some(&prev.ip) {
            self.by_key.remove(&prev.key);
        }
    }

    /// A free address for `key` from `pools`, skipping `reserved`: first one
    /// never used, else one whose lease ran out (so past clients tend to find
    /// their old address still unused). `None` when the pools are full.
    pub fn allocate(
        &self,
        pools: &[Pool],
        reserved: &HashSet<Ipv4Addr>,
        key: &ClientKey,
        now: OffsetDateTime,
    ) -> Option<Ipv4Addr> {
        let mut reusable = None;
        for pool in pools {
            let (start, end) = (u32::from(pool.start), u32::from(pool.end));
            for n in start..=end {
                let ip = Ipv4Addr::from(n);
                if reserved.contains(&ip) {
                    continue;
                }
                match self.by_ip.get(&ip) {
                    None => return Some(ip),
                    Some(_) if reusable.is_none() && self.available_to(ip, key, now) => {
                        reusable = Some(ip);
                    }
                    Some(_) => {}
                }
            }
        }
        reusable
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.by_ip.values()
    }
}
