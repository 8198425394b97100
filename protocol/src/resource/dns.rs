//! DNS records the agent serves from its site zone.
//!
//! Two shapes, after the management-plane naming model: a *host* is a
//! replaceable implementation with addresses (A/AAAA); a *service* is a stable
//! contract that points at whichever host implements it now (CNAME).

use serde::{Deserialize, Serialize};

use crate::dns_name::DnsName;
use crate::id::DnsRecordId;
use crate::token::SiteName;
use std::net::IpAddr;

/// One DNS record set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    /// The record's id.
    pub id: DnsRecordId,
    /// The site whose zone holds it.
    pub site: SiteName,
    /// What it says.
    pub data: DnsRecordData,
}

/// What a DNS record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsRecordData {
    /// A host name with its addresses, served as A and AAAA records.
    Host {
        /// The host's name (`provisioner-01.lab.deevnet.net`).
        name: DnsName,
        /// Its addresses; IPv4 become A, IPv6 become AAAA records.
        addresses: Vec<IpAddr>,
        /// Time to live, in seconds.
        ttl: u32,
    },
    /// A service name that points at the host implementing it, served as a
    /// CNAME (`pxe.lab.deevnet.net -> provisioner-01.lab.deevnet.net`).
    Service {
        /// The service's name.
        name: DnsName,
        /// The host it points at.
        target: DnsName,
        /// Time to live, in seconds.
        ttl: u32,
    },
}

impl DnsRecordData {
    /// The owner name of the record.
    pub fn name(&self) -> &DnsName {
        match self {
            Self::Host { name, .. } | Self::Service { name, .. } => name,
        }
    }

    /// The time to live, in seconds.
    pub fn ttl(&self) -> u32 {
        match self {
            Self::Host { ttl, .. } | Self::Service { ttl, .. } => *ttl,
        }
    }
}
