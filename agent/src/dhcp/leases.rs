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

use std::collections::HashMap;
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
    /// Per pool (keyed by its first address): the next address never looked
    /// at by [`Self::allocate`], so handing out a fresh address is O(1)
    /// amortised instead of a walk from the pool's start.
    fresh: HashMap<u32, u64>,
    /// Per pool: where the last search for a reusable address stopped, so
    /// repeated searches in a full pool take turns instead of rescanning.
    reuse: HashMap<u32, u64>,
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
    ///
    /// Fresh addresses come from a cursor per pool; only once a pool has
    /// none left does the search look for reusable ones, round-robin from
    /// where it last stopped. Either way each address is looked at at most
    /// once per call.
    pub fn allocate(
        &mut self,
        pools: &[Pool],
        reserved: impl Fn(Ipv4Addr) -> bool,
        key: &ClientKey,
        now: OffsetDateTime,
    ) -> Option<Ipv4Addr> {
        for pool in pools {
            let (start, end) = (u32::from(pool.start), u32::from(pool.end));
            let cursor = self.fresh.entry(start).or_insert(u64::from(start));
            while *cursor <= u64::from(end) {
                let ip = Ipv4Addr::from(*cursor as u32);
                *cursor += 1;
                if !reserved(ip) && !self.by_ip.contains_key(&ip) {
                    return Some(ip);
                }
            }
        }
        for pool in pools {
            let (start, end) = (
                u64::from(u32::from(pool.start)),
                u64::from(u32::from(pool.end)),
            );
            let size = end - start + 1;
            let from = self
                .reuse
                .get(&(start as u32))
                .copied()
                .filter(|n| (start..=end).contains(n))
                .unwrap_or(start);
            for step in 0..size {
                let n = start + (from - start + step) % size;
                let ip = Ipv4Addr::from(n as u32);
                if !reserved(ip) && self.available_to(ip, key, now) {
                    self.reuse.insert(start as u32, n + 1);
                    return Some(ip);
                }
            }
        }
        None
    }

    /// Marks up to `limit` bindings that ran out by `now` as expired and
    /// forgets offers that ran out, returning the expirations as changes to
    /// commit (the previous entry kept for [`Self::restore`]). Released and
    /// declined entries stay as they are: their rows already say so, and a
    /// quarantine that ends simply stops holding the address.
    pub fn expire(&mut self, now: OffsetDateTime, limit: usize) -> Vec<(Entry, Entry)> {
        let mut stale_offers = Vec::new();
        let mut bound = Vec::new();
        for e in self.by_ip.values() {
            if now < e.expires {
                continue;
            }
            match e.state {
                LeaseState::Offered => stale_offers.push((e.ip, e.key.clone())),
                LeaseState::Bound if bound.len() < limit => bound.push(e.ip),
                _ => {}
            }
        }
        for (ip, key) in stale_offers {
            self.withdraw_offer(ip, &key);
        }
        let mut changes = Vec::with_capacity(bound.len());
        for ip in bound {
            if let Some(previous) = self.by_ip.get(&ip).cloned() {
                let expired = Entry {
                    state: LeaseState::Expired,
                    ..previous.clone()
                };
                self.insert(expired.clone());
                changes.push((expired, previous));
            }
        }
        changes
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.by_ip.values()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn key(n: u8) -> ClientKey {
        ClientKey::Mac(MacAddr([2, 0, 0, 0, 0, n]))
    }

    fn pool(a: u8, b: u8) -> Pool {
        Pool {
            start: Ipv4Addr::new(10, 0, 0, a),
            end: Ipv4Addr::new(10, 0, 0, b),
        }
    }

    fn held(ip: Ipv4Addr, k: ClientKey, state: LeaseState, expires: OffsetDateTime) -> Entry {
        Entry {
            id: LeaseId::new(),
            ip,
            prefix: "10.0.0.0/24".parse().unwrap(),
            mac: MacAddr([2, 0, 0, 0, 0, 0]),
            key: k,
            client_id: None,
            hostname: None,
            state,
            starts: OffsetDateTime::UNIX_EPOCH,
            expires,
            relay_info: None,
        }
    }

    /// The reference answer: is any address of `pools` free for `k`?
    fn any_free(
        index: &LeaseIndex,
        pools: &[Pool],
        reserved: &HashSet<Ipv4Addr>,
        k: &ClientKey,
        now: OffsetDateTime,
    ) -> bool {
        pools.iter().any(|p| {
            (u32::from(p.start)..=u32::from(p.end)).any(|n| {
                let ip = Ipv4Addr::from(n);
                !reserved.contains(&ip) && index.available_to(ip, k, now)
            })
        })
    }

    #[test]
    fn fresh_addresses_come_in_order_skipping_reserved_then_expired_ones_are_reused() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        let later = now + time::Duration::hours(1);
        let pools = [pool(10, 13)];
        let reserved: HashSet<_> = [Ipv4Addr::new(10, 0, 0, 11)].into();
        let mut index = LeaseIndex::new();
        let mut got = Vec::new();
        for n in 0..3 {
            let ip = index
                .allocate(&pools, |ip| reserved.contains(&ip), &key(n), now)
                .unwrap();
            index.insert(held(ip, key(n), LeaseState::Bound, later));
            got.push(ip.octets()[3]);
        }
        assert_eq!(got, [10, 12, 13]);
        assert_eq!(
            index.allocate(&pools, |ip| reserved.contains(&ip), &key(9), now),
            None
        );
        // .12's lease runs out: it is the only address left to give.
        index.insert(held(
            Ipv4Addr::new(10, 0, 0, 12),
            key(1),
            LeaseState::Bound,
            now,
        ));
        assert_eq!(
            index.allocate(&pools, |ip| reserved.contains(&ip), &key(9), now),
            Some(Ipv4Addr::new(10, 0, 0, 12))
        );
    }

    #[test]
    fn expiry_marks_run_out_bindings_and_forgets_run_out_offers() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        let mut index = LeaseIndex::new();
        let ip = |n| Ipv4Addr::new(10, 0, 0, n);
        index.insert(held(ip(1), key(1), LeaseState::Bound, now));
        index.insert(held(
            ip(2),
            key(2),
            LeaseState::Bound,
            now + time::Duration::SECOND,
        ));
        index.insert(held(ip(3), key(3), LeaseState::Offered, now));
        index.insert(held(ip(4), key(4), LeaseState::Declined, now));
        index.insert(held(ip(5), key(5), LeaseState::Bound, now));
        let changes = index.expire(now, 1);
        assert_eq!(changes.len(), 1, "bounded by the limit");
        let (expired, previous) = &changes[0];
        assert_eq!(expired.state, LeaseState::Expired);
        assert_eq!(previous.state, LeaseState::Bound);
        assert_eq!(expired.id, previous.id, "the same lease, now expired");
        assert_eq!(index.get(ip(3)), None, "a run-out offer is forgotten");
        assert_eq!(index.get(ip(4)).unwrap().state, LeaseState::Declined);
        assert_eq!(index.get(ip(2)).unwrap().state, LeaseState::Bound);
        // The next sweep takes the one the limit left.
        assert_eq!(index.expire(now, 10).len(), 1);
        assert!(index.expire(now, 10).is_empty());
        assert_eq!(index.of_client(&key(1)).unwrap().state, LeaseState::Expired);
    }

    proptest! {
        /// Whatever happened before, `allocate` gives an address nobody
        /// else holds, and says "full" only when the pools truly are.
        #[test]
        fn allocate_never_hands_out_a_held_address(
            ops in proptest::collection::vec((0u8..12, 0u8..4, any::<bool>()), 1..200),
        ) {
            let base = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
            let pools = [pool(1, 6), pool(20, 23)];
            let reserved: HashSet<_> = [Ipv4Addr::new(10, 0, 0, 3)].into();
            let mut index = LeaseIndex::new();
            for (step, (client, action, flag)) in ops.into_iter().enumerate() {
                let now = base + time::Duration::seconds(step as i64);
                let k = key(client);
                match action {
                    // Allocate and hold (bind or offer) for a while.
                    0 | 1 => match index.allocate(&pools, |ip| reserved.contains(&ip), &k, now) {
                        Some(ip) => {
                            prop_assert!(!reserved.contains(&ip));
                            prop_assert!(index.available_to(ip, &k, now), "{ip} is held");
                            prop_assert!(pools.iter().any(|p| p.contains(ip)));
                            let until = now + time::Duration::seconds(if flag { 3 } else { 30 });
                            let state = if action == 0 { LeaseState::Bound } else { LeaseState::Offered };
                            index.insert(held(ip, k, state, until));
                        }
                        None => prop_assert!(!any_free(&index, &pools, &reserved, &k, now)),
                    },
                    // Release the client's address.
                    2 => if let Some(e) = index.of_client(&k).cloned() {
                        index.insert(held(e.ip, k, LeaseState::Released, now));
                    },
                    // Withdraw an offer (the client went elsewhere).
                    _ => if let Some(e) = index.of_client(&k).cloned() {
                        index.withdraw_offer(e.ip, &k);
                    },
                }
            }
        }
    }
}
