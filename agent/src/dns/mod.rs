//! The site's DNS: authoritative for `mgmt.<domain>`, `<site>.<domain>` and
//! the managed reverse zones, forwarding for everything else.
//!
//! What it does (shared/seeds/management-plane.md sections 3 to 6; issue 4):
//! - [`zones`] builds every zone's records from agent.toml and the store:
//!   hosts (A/AAAA), interface identities, services (CNAME), site aliases,
//!   DHCP reservations and leases (A + PTR). Pure and unit-tested.
//! - [`records`] holds the live set. A change (a service move through the
//!   API, a lease from DHCP) rebuilds the zones, commits the new serial
//!   ([`serial`]) with the change and its outbox event, then swaps the
//!   compiled [`catalog`] in whole. Answers change without a restart.
//! - [`answer`] turns query bytes into a reply with no sockets: RFC 1034
//!   section 4.3.2 lookup, CNAME chains across our zones, NXDOMAIN versus
//!   NODATA with the SOA (RFC 2308), EDNS (RFC 6891), truncation, AXFR
//!   (RFC 5936) and IXFR answered in full (RFC 1995). The fuzz target
//!   `dns_query` drives it.
//! - [`server`] owns the UDP and TCP sockets (RFC 1035 section 4.2, RFC 7766).
//! - [`forward`] resolves other names upstream through hickory-resolver's
//!   cache, which honours TTLs and caches negative answers (RFC 2308).
//! - [`notify`] sends NOTIFY (RFC 1996) to secondaries on every new serial.
//! - [`export`] renders the same records as VyOS, OPNsense (Unbound) and
//!   dnsmasq configuration for production authority, where the core router
//!   answers instead of the agent (seed 4.3: intentional duplication,
//!   exclusive activation).
//!
//! The server runs only in bootstrap authority; the records, the API and the
//! exports exist in both modes.
//!
//! Why hickory-proto and not hickory-server's `Catalog` (ADR 0007): the
//! catalog answers each zone in isolation (no CNAME chains across our zones),
//! leaves zone swapping and serial policy to the caller, and offers no
//! bytes-in/bytes-out entry for fuzzing. The wire codec is the hard,
//! security-relevant part, and that is hickory's; the lookup rules are a page
//! of code here.

pub mod answer;
pub mod catalog;
pub mod export;
pub mod forward;
pub mod notify;
pub mod packet_cache;
pub mod records;
pub mod serial;
pub mod server;
pub mod zones;

use std::net::SocketAddr;

pub use records::Records;

use crate::store::StoreError;

/// What can go wrong in the DNS service. RCODE mapping of query failures
/// happens in [`answer`]; these are the service's own failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// A listen address could not be bound.
    #[error("cannot listen for DNS on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A UDP socket failed while serving.
    #[error("DNS on {addr} stopped: the UDP socket failed")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error("DNS store access failed")]
    Store(#[from] StoreError),
    /// The forwarder could not be built.
    #[error("cannot set up the forwarding resolver: {0}")]
    Resolver(String),
    /// No service has this name.
    #[error("no service is named {service:?}")]
    UnknownService {
        /// The name asked for.
        service: String,
    },
    /// The new target is not a host or interface identity with an address.
    #[error("cannot point service {service} at {host:?}: {reason}")]
    BadTarget {
        /// The service.
        service: String,
        /// The rejected target.
        host: String,
        /// Why.
        reason: String,
    },
}

/// Applies DHCP lease changes to the records until the DHCP server stops
/// (its sender is dropped). A failed update is logged; the records re-read
/// every bound lease at the next start.
pub async fn mirror_leases(
    records: Records,
    mut notices: tokio::sync::mpsc::Receiver<crate::dhcp::LeaseNotice>,
) {
    use crate::dhcp::LeaseNotice;
    while let Some(notice) = notices.recv().await {
        let result = match &notice {
            LeaseNotice::Bound { ip, hostname } => records.lease_bound(hostname, *ip).await,
            LeaseNotice::Gone { ip } => records.lease_gone(*ip).await,
        };
        if let Err(e) = result {
            tracing::warn!(?notice, error = %crate::telemetry::error_chain(&e), "lease not mirrored into DNS");
        }
    }
}
