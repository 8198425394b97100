//! Baseboard management controllers: how the agent reaches a machine's
//! out-of-band controller. Credentials are named, never carried.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::dns_name::DnsName;
use crate::id::{BmcId, MachineId};
use crate::token::{CredentialRef, SiteName};

/// The management protocol a BMC speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BmcProtocol {
    /// DMTF Redfish over HTTPS.
    Redfish,
    /// IPMI 2.0 over LAN (RMCP+).
    Ipmi,
}

impl BmcProtocol {
    /// The port the protocol listens on unless configured otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Redfish => 443,
            Self::Ipmi => 623,
        }
    }
}

impl fmt::Display for BmcProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Redfish => "redfish",
            Self::Ipmi => "ipmi",
        })
    }
}

/// Where a BMC is: an IP address or a DNS name. (Its OpenAPI schema is
/// written by hand in [`crate::schema`]: utoipa has none for `IpAddr`.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BmcHost {
    /// A literal address.
    Ip(IpAddr),
    /// A name the agent resolves.
    Name(DnsName),
}

impl fmt::Display for BmcHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Name(name) => write!(f, "{name}"),
        }
    }
}

/// A BMC's network address. Displayed as `host:port` (`[v6]:port` for IPv6).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BmcAddress {
    /// The host.
    pub host: BmcHost,
    /// The TCP (Redfish) or UDP (IPMI) port.
    pub port: u16,
}

impl fmt::Display for BmcAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Everything needed to talk to a BMC, short of the secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BmcEndpoint {
    /// Where it is.
    pub address: BmcAddress,
    /// What it speaks.
    pub protocol: BmcProtocol,
    /// Which credential in the site's secret store to log in with.
    pub credentials: CredentialRef,
}

impl BmcEndpoint {
    /// An endpoint on the protocol's default port.
    pub fn new(host: BmcHost, protocol: BmcProtocol, credentials: CredentialRef) -> Self {
        Self {
            address: BmcAddress {
                host,
                port: protocol.default_port(),
            },
            protocol,
            credentials,
        }
    }
}

/// A BMC known to a site, with the machine it manages once that is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Bmc {
    /// The BMC's id.
    pub id: BmcId,
    /// The site it belongs to.
    pub site: SiteName,
    /// The machine it manages, once matched (by serial or MAC).
    pub machine: Option<MachineId>,
    /// How to reach it.
    pub endpoint: BmcEndpoint,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn address_display() {
        let v4 = BmcEndpoint::new(
            BmcHost::Ip("10.0.0.5".parse().unwrap()),
            BmcProtocol::Redfish,
            CredentialRef::new("bmc-default").unwrap(),
        );
        assert_eq!(v4.address.to_string(), "10.0.0.5:443");
        let v6 = BmcAddress {
            host: BmcHost::Ip("fe80::1".parse().unwrap()),
            port: BmcProtocol::Ipmi.default_port(),
        };
        assert_eq!(v6.to_string(), "[fe80::1]:623");
    }
}
