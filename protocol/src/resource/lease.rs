//! DHCP leases as the agent's DHCP server records them.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{LeaseId, PrefixId};
use crate::mac::MacAddr;

/// Where a lease is in its life (RFC 2131 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// Offered in a DHCPOFFER, held briefly for the client's DHCPREQUEST.
    Offered,
    /// Acknowledged (DHCPACK): the client uses the address.
    Bound,
    /// The client gave it back (DHCPRELEASE).
    Released,
    /// The client reported the address in use (DHCPDECLINE); the address is
    /// quarantined until the lease expires.
    Declined,
    /// Ran out without renewal.
    Expired,
}

impl fmt::Display for LeaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Offered => "offered",
            Self::Bound => "bound",
            Self::Released => "released",
            Self::Declined => "declined",
            Self::Expired => "expired",
        })
    }
}

/// A DHCP lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The lease's id.
    pub id: LeaseId,
    /// The prefix (pool) the address comes from.
    pub prefix: PrefixId,
    /// The leased address.
    pub ip: IpAddr,
    /// The client's hardware address (chaddr).
    pub mac: MacAddr,
    /// The client identifier (option 61), as sent, if sent.
    pub client_id: Option<Vec<u8>>,
    /// The host name the client asked for (option 12), as sent, if sent.
    pub hostname: Option<String>,
    /// When the lease began.
    #[serde(with = "crate::timestamp")]
    pub starts: OffsetDateTime,
    /// When it runs out unless renewed.
    #[serde(with = "crate::timestamp")]
    pub expires: OffsetDateTime,
    /// Where it is in its life.
    pub state: LeaseState,
    /// The relay agent information (option 82, RFC 3046) the relay added,
    /// raw sub-options as received; tells which switch port the client is on.
    pub relay_agent_info: Option<Vec<u8>>,
}

impl Lease {
    /// True if the lease is bound and has not run out at `now`.
    pub fn is_active_at(&self, now: OffsetDateTime) -> bool {
        self.state == LeaseState::Bound && now < self.expires
    }

    /// The short reference events carry.
    pub fn to_ref(&self) -> LeaseRef {
        LeaseRef {
            id: self.id,
            ip: self.ip,
            mac: self.mac,
        }
    }
}

/// Enough of a lease to say which one an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseRef {
    /// The lease's id.
    pub id: LeaseId,
    /// Its address.
    pub ip: IpAddr,
    /// Its client's MAC.
    pub mac: MacAddr,
}

impl fmt::Display for LeaseRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lease {} ({} for {})", self.id, self.ip, self.mac)
    }
}
