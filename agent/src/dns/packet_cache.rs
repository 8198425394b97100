//! A packet cache for authoritative UDP answers, as PowerDNS's
//! authoritative server keeps one: a query whose bytes after the 16-bit id
//! are identical to an earlier one gets the earlier response with its id
//! replaced, without parsing or encoding anything.
//!
//! Why this is exact, not an approximation: an authoritative answer is a
//! function of the query's bytes (flags, question with its letter case,
//! EDNS record) and the catalog alone. Transfers and errors are not cached,
//! and neither is anything forwarded. The cache is emptied whenever the
//! catalog is replaced (every change compiles a new one), so it never
//! serves an answer from an older catalog.
//!
//! Each UDP receive thread owns its cache, so lookups take no lock. Memory
//! is bounded by [`MAX_BYTES`]: when an insert would pass it, the cache is
//! emptied and refills with what is asked now.

use std::collections::HashMap;
use std::sync::Arc;

use super::catalog::Catalog;

/// Bytes of keys and responses held before the cache starts over.
pub const MAX_BYTES: usize = 16 << 20;

/// Queries (and responses) longer than this are not cached: real queries
/// are well under it, and it bounds one entry's share of [`MAX_BYTES`].
const MAX_ENTRY: usize = 1232;

/// One thread's cache of encoded responses.
#[derive(Debug, Default)]
pub struct PacketCache {
    /// The catalog the entries were answered from (held, so that its
    /// address cannot be reused by a newer one while it is compared).
    catalog: Option<Arc<Catalog>>,
    entries: HashMap<Box<[u8]>, Box<[u8]>>,
    bytes: usize,
}

impl PacketCache {
    /// An empty cache.
    pub fn new() -> PacketCache {
        PacketCache::default()
    }

    /// Number of cached responses.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached response to `query` from `catalog`, with `query`'s id.
    pub fn get(&mut self, catalog: &Arc<Catalog>, query: &[u8]) -> Option<Vec<u8>> {
        self.follow(catalog);
        let (id, key) = split(query)?;
        let cached = self.entries.get(key)?;
        let mut response = cached.to_vec();
        response[..2].copy_from_slice(id);
        Some(response)
    }

    /// Remembers `response` as the answer to `query` from `catalog`.
    pub fn put(&mut self, catalog: &Arc<Catalog>, query: &[u8], response: &[u8]) {
        self.follow(catalog);
        let Some((_, key)) = split(query) else {
            return;
        };
        if response.len() < 12 || response.len() > MAX_ENTRY {
            return;
        }
        let size = key.len() + response.len();
        if self.bytes + size > MAX_BYTES {
            self.clear();
        }
        if self.entries.insert(key.into(), response.into()).is_none() {
            self.bytes += size;
        }
    }

    /// Empties the cache if `catalog` is not the one its entries came from.
    fn follow(&mut self, catalog: &Arc<Catalog>) {
        if !self
            .catalog
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, catalog))
        {
            self.clear();
            self.catalog = Some(catalog.clone());
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

/// The id and the rest of a query that is worth caching.
fn split(query: &[u8]) -> Option<(&[u8], &[u8])> {
    if query.len() < 12 || query.len() > MAX_ENTRY {
        return None;
    }
    Some(query.split_at(2))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::net::{IpAddr, Ipv4Addr};

    use hickory_proto::op::{Edns, Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    use proptest::prelude::*;

    use super::*;
    use crate::config::Config;
    use crate::dns::answer::{self, Client, Kind, Outcome, Transport};
    use crate::dns::zones::{Inputs, build};

    fn catalog(serial: u32, move_pxe: bool) -> Arc<Catalog> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../site-kits/examples/lab/agent.toml");
        let mut inputs = Inputs::from_config(&Config::from_file(&path).unwrap());
        if move_pxe {
            inputs
                .placements
                .insert("pxe".into(), "provisioner-01-lab".into());
        }
        Arc::new(Catalog::compile(Arc::new(build(&inputs, serial))))
    }

    fn client() -> Client {
        Client {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            transport: Transport::Udp,
            may_transfer: false,
            forwarding: false,
        }
    }

    fn query(id: u16, name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = id;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if edns {
            m.set_edns(Edns::new());
        }
        m.to_vec().unwrap()
    }

    /// The uncached path, as the server runs it, caching what it may.
    fn answer(cache: &mut PacketCache, catalog: &Arc<Catalog>, q: &[u8]) -> Vec<u8> {
        if let Some(hit) = cache.get(catalog, q) {
            return hit;
        }
        match answer::handle(catalog, q, &client()) {
            Outcome::Reply(bytes, kind) => {
                if kind == Kind::Authoritative {
                    cache.put(catalog, q, &bytes);
                }
                bytes
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn uncached(catalog: &Arc<Catalog>, q: &[u8]) -> Vec<u8> {
        match answer::handle(catalog, q, &client()) {
            Outcome::Reply(bytes, _) => bytes,
            other => panic!("unexpected {other:?}"),
        }
    }

    const NAMES: &[&str] = &[
        "provisioner-01.mgmt.dataverket.test.",
        "PXE.mgmt.dataverket.test.",
        "pxe.mgmt.dataverket.test.",
        "artifacts.lab.dataverket.test.",
        "nothing-here.mgmt.dataverket.test.",
        "mgmt.dataverket.test.",
        "1.77.10.in-addr.arpa.",
    ];
    const TYPES: &[RecordType] = &[
        RecordType::A,
        RecordType::AAAA,
        RecordType::SOA,
        RecordType::PTR,
        RecordType::IXFR,
    ];

    #[test]
    fn a_catalog_change_empties_the_cache() {
        let mut cache = PacketCache::new();
        let before = catalog(1, false);
        let q = query(7, "pxe.mgmt.dataverket.test.", RecordType::A, true);
        answer(&mut cache, &before, &q);
        assert_eq!(cache.len(), 1);
        let after = catalog(2, true);
        assert_eq!(cache.get(&after, &q), None);
        assert!(cache.is_empty());
        assert_ne!(uncached(&before, &q), uncached(&after, &q));
    }

    #[test]
    fn memory_stays_within_the_budget() {
        let mut cache = PacketCache::new();
        let c = catalog(1, false);
        let response = vec![0u8; MAX_ENTRY];
        for n in 0..(2 * MAX_BYTES / MAX_ENTRY) as u32 {
            let mut q = query(0, "pxe.mgmt.dataverket.test.", RecordType::A, false);
            q.extend_from_slice(&n.to_be_bytes());
            cache.put(&c, &q, &response);
            assert!(cache.bytes <= MAX_BYTES);
        }
        assert!(!cache.is_empty());
    }

    proptest! {
        /// Any sequence of queries, with catalog changes between them, gets
        /// exactly the bytes the uncached path gives.
        #[test]
        fn cached_answers_are_the_uncached_answers(
            steps in proptest::collection::vec(
                (any::<u16>(), 0..NAMES.len(), 0..TYPES.len(), any::<bool>(), 0u8..8),
                1..60,
            ),
        ) {
            let catalogs = [catalog(1, false), catalog(2, true)];
            let mut current = 0;
            let mut cache = PacketCache::new();
            for (id, name, qtype, edns, change) in steps {
                if change == 0 {
                    current = 1 - current;
                }
                let c = &catalogs[current];
                let q = query(id, NAMES[name], TYPES[qtype], edns);
                prop_assert_eq!(answer(&mut cache, c, &q), uncached(c, &q));
            }
        }
    }
}
