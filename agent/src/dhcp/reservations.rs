//! The DHCP reservations IPAM makes, served live beside agent.toml's.
//!
//! An IPAM allocation with a MAC stores a `dhcp_reservation` row (see
//! [`crate::store::ipam`]). The DHCP server answers from an in-memory
//! [`Index`] of those rows, never from SQLite per packet: each packet takes
//! the current `Arc<Index>` (a read lock held for one `Arc` clone), and
//! [`Reservations::refresh`] rebuilds and swaps the index after every
//! committed IPAM allocate or release (see [`crate::nett`]). Refreshes run
//! one at a time and each reads the store after the commit that asked for
//! it, so the last one always leaves the index matching the database, even
//! when allocations and releases race.
//!
//! What is served: a reservation whose network has DHCP on and whose prefix
//! is a served subnet's prefix or lies inside one (a /25 network in a
//! served /24), in that subnet only: the client gets it on the subnet its
//! packets arrive on, with that subnet's options. A network wider than a
//! served subnet, or only partly inside one, is not served (the subnet's
//! options would not fit every address of it); its rows are left out with
//! a warning naming the network and the subnet.
//!
//! Conflicts: agent.toml wins. [`Reservations::fixed`] lists the config
//! reservations so the IPAM allocate call refuses their MACs and addresses
//! (409, nothing stored); a row that clashes anyway (agent.toml was edited
//! after the allocation) is left out of the index with a warning naming it,
//! and the client gets the config reservation.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, RwLock};

use dv_protocol::MacAddr;
use dv_protocol::resource::overlaps;
use ipnet::{IpNet, Ipv4Net};

use crate::config::{self, Reservation, Subnet};
use crate::store::ipam::{self, FixedReservation, ServedReservation};
use crate::store::{Store, StoreError};

/// The IPAM reservations of one served subnet.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SubnetReservations {
    by_mac: HashMap<MacAddr, Reservation>,
    ips: HashSet<Ipv4Addr>,
}

impl SubnetReservations {
    /// The reservation for `mac`, if IPAM made one in this subnet.
    pub fn get(&self, mac: MacAddr) -> Option<&Reservation> {
        self.by_mac.get(&mac)
    }

    /// Whether IPAM reserves `ip` for some client in this subnet.
    pub fn holds(&self, ip: Ipv4Addr) -> bool {
        self.ips.contains(&ip)
    }

    /// How many reservations.
    pub fn len(&self) -> usize {
        self.by_mac.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_mac.is_empty()
    }
}

/// Every served IPAM reservation, by subnet prefix.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Index {
    by_subnet: HashMap<Ipv4Net, SubnetReservations>,
}

impl Index {
    /// The reservations served in the subnet `prefix`.
    pub fn subnet(&self, prefix: Ipv4Net) -> Option<&SubnetReservations> {
        self.by_subnet.get(&prefix)
    }

    /// How many reservations are served.
    pub fn len(&self) -> usize {
        self.by_subnet.values().map(SubnetReservations::len).sum()
    }

    /// True when none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds the index from IPAM's rows, keeping what `subnets` serve and
    /// leaving out rows that clash with `fixed` (config wins).
    pub fn build(
        subnets: &[Subnet],
        fixed: &[FixedReservation],
        rows: Vec<ServedReservation>,
    ) -> Index {
        let mut by_subnet: HashMap<Ipv4Net, SubnetReservations> = HashMap::new();
        for row in rows {
            let r = row.reservation;
            let (IpNet::V4(prefix), IpAddr::V4(ip)) = (row.prefix, r.ip) else {
                continue; // DHCPv4 only
            };
            if !row.dhcp {
                tracing::debug!(mac = %r.mac, %ip, "IPAM reservation on a network with DHCP off; not served");
                continue;
            }
            // Served subnets do not overlap each other, but take the most
            // specific one that holds the whole network to be sure.
            let Some(subnet) = subnets
                .iter()
                .filter(|s| s.prefix.contains(&prefix) && s.prefix.contains(&ip))
                .max_by_key(|s| s.prefix.prefix_len())
                .map(|s| s.prefix)
            else {
                match subnets
                    .iter()
                    .find(|s| overlaps(IpNet::V4(s.prefix), IpNet::V4(prefix)))
                {
                    Some(s) => tracing::warn!(
                        mac = %r.mac, %ip, network_prefix = %prefix, subnet = %s.prefix,
                        "IPAM reservation on a network wider than or only partly inside a served DHCP subnet; not served (make the network's prefix the subnet's or one inside it)"
                    ),
                    None => tracing::debug!(
                        mac = %r.mac, %ip, %prefix,
                        "IPAM reservation on a network outside every served DHCP subnet; not served"
                    ),
                }
                continue;
            };
            if let Some(f) = fixed.iter().find(|f| f.mac == Some(r.mac) || f.ip == r.ip) {
                tracing::warn!(
                    mac = %r.mac, %ip, config_client = %f.client, config_ip = %f.ip,
                    "IPAM reservation clashes with an agent.toml reservation, which wins; not served"
                );
                continue;
            }
            let entry = by_subnet.entry(subnet).or_default();
            entry.ips.insert(ip);
            entry.by_mac.insert(
                r.mac,
                Reservation {
                    client: config::ClientKey::Mac(r.mac),
                    ip,
                    hostname: r.hostname,
                },
            );
        }
        Index { by_subnet }
    }
}

/// A handle to the live index; cheap to clone.
#[derive(Debug, Clone)]
pub struct Reservations {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    subnets: Vec<Subnet>,
    fixed: Vec<FixedReservation>,
    current: RwLock<Arc<Index>>,
    /// Orders refreshes: each reads after the commit that asked for it.
    refreshing: tokio::sync::Mutex<()>,
}

/// agent.toml's reservations as IPAM sees them.
fn fixed(subnets: &[Subnet]) -> Vec<FixedReservation> {
    let mut out = Vec::new();
    for r in subnets.iter().flat_map(|s| &s.reservations) {
        let (mac, client) = match &r.client {
            config::ClientKey::Mac(m) => (Some(*m), format!("MAC {m}")),
            config::ClientKey::ClientId(id) => {
                let hex: Vec<String> = id.iter().map(|b| format!("{b:02x}")).collect();
                (None, format!("client id {}", hex.join(":")))
            }
        };
        out.push(FixedReservation {
            ip: IpAddr::V4(r.ip),
            mac,
            client,
        });
    }
    out
}

impl Reservations {
    /// Reads IPAM's reservations for the DHCP `subnets` from `store`.
    pub async fn load(subnets: &[Subnet], store: &Store) -> Result<Reservations, StoreError> {
        let r = Reservations {
            inner: Arc::new(Inner {
                store: store.clone(),
                subnets: subnets.to_vec(),
                fixed: fixed(subnets),
                current: RwLock::new(Arc::default()),
                refreshing: tokio::sync::Mutex::new(()),
            }),
        };
        r.refresh().await?;
        Ok(r)
    }

    /// The index to answer from now.
    pub fn current(&self) -> Arc<Index> {
        match self.inner.current.read() {
            Ok(c) => c.clone(),
            // A writer panicked mid-swap; the Arc inside is still whole.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// agent.toml's reservations, which IPAM must not clash with.
    pub fn fixed(&self) -> &[FixedReservation] {
        &self.inner.fixed
    }

    /// Re-reads IPAM's reservations and swaps the index in. Call after
    /// every committed change to them. Returns how many are served.
    pub async fn refresh(&self) -> Result<usize, StoreError> {
        let _one_at_a_time = self.inner.refreshing.lock().await;
        let rows = self.inner.store.read(ipam::served_reservations).await?;
        let index = Arc::new(Index::build(&self.inner.subnets, &self.inner.fixed, rows));
        let served = index.len();
        match self.inner.current.write() {
            Ok(mut c) => *c = index,
            Err(poisoned) => *poisoned.into_inner() = index,
        }
        metrics::gauge!("dv_dhcp_ipam_reservations").set(served as f64);
        tracing::debug!(served, "DHCP reservations from IPAM refreshed");
        Ok(served)
    }
}
