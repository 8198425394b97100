//! Nett on the agent: the site's network intent and IPAM, tied to its DNS.
//!
//! This module owns the operations the API calls (create, delete, allocate,
//! release) and the rule that makes them atomic: each runs as one
//! [`Records::change`], so the IPAM rows ([`crate::store::ipam`]: the
//! network or allocation, its DHCP reservation), its DNS records (A and PTR
//! in the site zone and the prefix's reverse zone, with a new zone serial)
//! and its outbox events, which are the audit trail, commit together or not
//! at all. A refusal anywhere, including a host name that clashes with a
//! DNS name found only after the address was picked, rolls everything back.
//!
//! [`switch`] holds the switch drivers (plan, apply with rollback, drift;
//! Open vSwitch over OVSDB, a Linux VLAN-aware bridge over netlink).
//! [`render`] writes one switch's port configuration for a vendor NOS
//! (SONiC, Arista EOS, Cumulus NVUE) from the intent.
//!
//! The DHCP server serves the reservations live: after an allocate or
//! release commits, [`Reservations::refresh`] swaps in the DHCP server's
//! in-memory index (see [`crate::dhcp::reservations`]). agent.toml's DHCP
//! reservations win: [`allocate`] refuses their MACs and addresses (409).
//!
//! [`switches`] runs the drivers from the stored port intent
//! ([`crate::store::intent`]): plan, apply, drift, with their events; the
//! API renders vendor configurations from the same intent.

pub mod render;
pub mod switch;
pub mod switches;

use std::net::IpAddr;

use dv_protocol::{
    Actor, DnsName, DnsRecord, DnsRecordData, DnsRecordId, EventBody, NetworkSpec, SiteName,
};
use rusqlite::Connection;

use crate::dhcp::Reservations;
use crate::dns::{DnsError, Records};
use crate::store::StoreError;
use crate::store::ipam::{self, AllocateRequest, AllocationRow, IpamError, NetworkRow};
use crate::store::outbox::record_event as event;

/// Why a Nett operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NettError {
    /// IPAM refused it; nothing changed.
    #[error(transparent)]
    Refused(IpamError),
    /// The store or DNS failed; nothing changed.
    #[error("network change failed")]
    Failed(#[source] DnsError),
}

impl From<DnsError> for NettError {
    fn from(e: DnsError) -> Self {
        match e {
            DnsError::Store(StoreError::Ipam(e)) => NettError::Refused(e),
            other => NettError::Failed(other),
        }
    }
}

/// Creates a network and, for an IPv4 prefix, its reverse zone.
pub async fn network_create(
    records: &Records,
    site: &SiteName,
    actor: Actor,
    spec: NetworkSpec,
) -> Result<NetworkRow, NettError> {
    let site = site.clone();
    Ok(records
        .change(move |c, inputs| {
            let row = ipam::network_create(c, &site, &actor, &spec)?;
            if let ipnet::IpNet::V4(v4) = row.spec.prefix {
                inputs.ipam_prefixes.push(v4);
            }
            Ok(row)
        })
        .await?)
}

/// Deletes a network that holds no allocations, and its reverse zone.
pub async fn network_delete(
    records: &Records,
    site: &SiteName,
    actor: Actor,
    name: String,
) -> Result<NetworkRow, NettError> {
    let site = site.clone();
    Ok(records
        .change(move |c, inputs| {
            refuse_if_carried(c, &name)?;
            let row = ipam::network_delete(c, &site, &actor, &name)?;
            if let ipnet::IpNet::V4(v4) = row.spec.prefix
                && let Some(i) = inputs.ipam_prefixes.iter().position(|p| *p == v4)
            {
                inputs.ipam_prefixes.remove(i);
            }
            Ok(row)
        })
        .await?)
}

/// A network whose VLAN a port profile carries stays: deleting it would
/// leave the intent naming a VLAN no network has.
fn refuse_if_carried(c: &Connection, name: &str) -> Result<(), StoreError> {
    let site = crate::store::intent::load(c)?;
    let Some(net) = site.networks.iter().find(|n| n.name.as_str() == name) else {
        return Ok(());
    };
    let by: Vec<String> = site
        .profiles
        .iter()
        .filter(|p| match &p.mode {
            dv_protocol::PortMode::Access { vlan } => *vlan == net.vlan,
            dv_protocol::PortMode::Trunk { allowed, .. } => allowed.contains(&net.vlan),
        })
        .map(|p| p.name.to_string())
        .collect();
    if by.is_empty() {
        return Ok(());
    }
    Err(IpamError::Conflict(dv_protocol::IntentError {
        problems: vec![dv_protocol::Problem {
            field: "name".into(),
            message: format!(
                "network {name} (VLAN {}) is carried by port profile(s) {}; change or delete \
                 them first",
                net.vlan,
                by.join(", ")
            ),
        }],
    })
    .into())
}

fn dns_name(name: &str) -> Result<DnsName, StoreError> {
    DnsName::new(name).map_err(|e| StoreError::Invalid {
        what: "dns name",
        key: name.to_owned(),
        detail: e.to_string(),
    })
}

/// Allocates an address on `network` with its DHCP reservation (when a MAC
/// is given) and its A and PTR records (when a hostname is given), in one
/// transaction.
pub async fn allocate(
    records: &Records,
    reservations: &Reservations,
    site: &SiteName,
    actor: Actor,
    network: String,
    req: AllocateRequest,
) -> Result<AllocationRow, NettError> {
    let site = site.clone();
    let fixed = reservations.fixed().to_vec();
    let row = records
        .change(move |c, inputs| {
            let mut row = ipam::allocate_beside(c, &site, &actor, &network, &req, &fixed)?;
            let Some(hostname) = row.allocation.hostname.clone() else {
                return Ok(row);
            };
            let IpAddr::V4(v4) = row.allocation.address else {
                return Err(IpamError::BadRequest {
                    field: "hostname",
                    reason: "names for IPv6 allocations are not published yet; allocate \
                             without a hostname"
                        .to_owned(),
                }
                .into());
            };
            // Checked here, after the address was picked and stored, because
            // only the live records know every configured name; a clash rolls
            // the allocation back with the rest.
            let fqdn =
                inputs
                    .allocation_name(&hostname)
                    .map_err(|by| IpamError::HostnameTaken {
                        hostname: hostname.clone(),
                        by,
                    })?;
            inputs.allocations.insert(v4, hostname.to_ascii_lowercase());
            let id = DnsRecordId::new();
            ipam::set_dns_record(c, &row.allocation.id, &id.to_string())?;
            event(
                c,
                &site,
                &actor,
                EventBody::DnsRecordUpserted {
                    record: DnsRecord {
                        id,
                        site: site.clone(),
                        data: DnsRecordData::Host {
                            name: dns_name(&fqdn)?,
                            addresses: vec![row.allocation.address],
                            ttl: inputs.ttl,
                        },
                    },
                },
            )?;
            row.dns_record_id = Some(id.to_string());
            Ok(row)
        })
        .await?;
    if row.dhcp_reservation.is_some() {
        served(reservations).await;
    }
    Ok(row)
}

/// Swaps the DHCP server's index after a committed IPAM change. The change
/// stands either way; a failed read leaves the index one change behind
/// until the next refresh, so say so loudly.
async fn served(reservations: &Reservations) {
    if let Err(e) = reservations.refresh().await {
        tracing::error!(
            error = %crate::telemetry::error_chain(&e),
            "DHCP reservations from IPAM not refreshed; the DHCP server serves the previous set until the next IPAM change"
        );
    }
}

/// Releases `address` on `network`: the allocation, its reservation and its
/// records go in one transaction.
pub async fn release(
    records: &Records,
    reservations: &Reservations,
    site: &SiteName,
    actor: Actor,
    network: String,
    address: IpAddr,
) -> Result<AllocationRow, NettError> {
    let site = site.clone();
    let row = records
        .change(move |c, inputs| {
            let row = ipam::release(c, &site, &actor, &network, address)?;
            if let (Some(hostname), IpAddr::V4(v4)) = (&row.allocation.hostname, address) {
                inputs.allocations.remove(&v4);
                if let Some(id) = &row.dns_record_id {
                    let record = id.parse::<DnsRecordId>().map_err(|e| StoreError::Corrupt {
                        what: "allocation",
                        key: row.allocation.id.to_string(),
                        detail: e.to_string(),
                    })?;
                    let fqdn = format!("{hostname}.{}", inputs.site_zone);
                    event(
                        c,
                        &site,
                        &actor,
                        EventBody::DnsRecordRemoved {
                            record,
                            name: dns_name(&fqdn)?,
                        },
                    )?;
                }
            }
            Ok(row)
        })
        .await?;
    if row.dhcp_reservation.is_some() {
        served(reservations).await;
    }
    Ok(row)
}
