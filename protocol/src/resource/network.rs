//! Layer-2 networks (VLANs), the IP prefixes on them, and the addresses
//! IPAM hands out from those prefixes.
//!
//! [`Network`] and [`Prefix`] are the facts events carry (their layout is
//! frozen by codec version 1). [`NetworkSpec`] is the operator's intent for
//! one network (VLAN, purpose, prefix, gateway, DHCP on/off, reserved
//! ranges) and is what the agent stores and the API takes; its checks live
//! in [`super::intent`] so they can see the other networks of the site.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::id::{AllocationId, NetworkId, PrefixId};
use crate::mac::MacAddr;
use crate::token::{NetworkName, SiteName};

/// Why a network value is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// A VLAN id outside 1..=4094 (0 and 4095 are reserved by 802.1Q).
    #[error("VLAN id {value} is out of range; 802.1Q allows 1..=4094")]
    VlanOutOfRange {
        /// The rejected number.
        value: u16,
    },
    /// A prefix written with host bits set (`10.0.0.5/24`).
    #[error("prefix {cidr} has host bits set; write it as {network}")]
    HostBitsSet {
        /// The rejected prefix.
        cidr: IpNet,
        /// The same prefix with host bits cleared.
        network: IpNet,
    },
    /// A gateway outside its prefix (or of the other address family).
    #[error("gateway {gateway} is not inside prefix {cidr}")]
    GatewayOutside {
        /// The prefix.
        cidr: IpNet,
        /// The rejected gateway.
        gateway: IpAddr,
    },
}

/// An IEEE 802.1Q VLAN id, 1..=4094.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct VlanId(u16);

impl VlanId {
    /// Validates `value`.
    pub fn new(value: u16) -> Result<Self, NetworkError> {
        if (1..=4094).contains(&value) {
            Ok(Self(value))
        } else {
            Err(NetworkError::VlanOutOfRange { value })
        }
    }

    /// The number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for VlanId {
    type Error = NetworkError;
    fn try_from(value: u16) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<VlanId> for u16 {
    fn from(vlan: VlanId) -> Self {
        vlan.0
    }
}

// The JSON is a bare integer (`try_from`/`into` u16), limited to what
// [`VlanId::new`] accepts.
impl utoipa::PartialSchema for VlanId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .description(Some("An 802.1Q VLAN id, 1..=4094."))
            .minimum(Some(1))
            .maximum(Some(4094))
            .examples([20])
            .into()
    }
}
impl utoipa::ToSchema for VlanId {}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a network carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetworkPurpose {
    /// PXE / iPXE boot and installs; the agent serves DHCP here.
    Provisioning,
    /// Out-of-band management: BMCs and switch management ports.
    Management,
    /// Node-to-node underlay.
    Underlay,
    /// Tenant workloads.
    Tenant,
    /// Storage replication traffic.
    Storage,
}

/// A layer-2 network (one VLAN) in a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The network's id.
    pub id: NetworkId,
    /// The site it is in.
    pub site: SiteName,
    /// Its short name (`prov`, `oob`).
    pub name: NetworkName,
    /// Its VLAN.
    pub vlan: VlanId,
    /// What it carries.
    pub purpose: NetworkPurpose,
    /// The prefixes on it.
    pub prefixes: Vec<PrefixId>,
}

/// An IP prefix on a network. The CIDR has no host bits set and the gateway,
/// if any, lies inside it; both are checked by [`Prefix::new`] and on
/// deserialization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PrefixFields")]
pub struct Prefix {
    /// The prefix's id.
    pub id: PrefixId,
    /// The network it is on.
    pub network: NetworkId,
    /// The subnet (`10.20.0.0/24`).
    pub cidr: IpNet,
    /// The default gateway handed out by DHCP, if any.
    pub gateway: Option<IpAddr>,
}

/// The wire shape of [`Prefix`], checked before it becomes one. Field order
/// must match `Prefix` (postcard encodes by position).
#[derive(Deserialize)]
struct PrefixFields {
    id: PrefixId,
    network: NetworkId,
    cidr: IpNet,
    gateway: Option<IpAddr>,
}

impl TryFrom<PrefixFields> for Prefix {
    type Error = NetworkError;
    fn try_from(f: PrefixFields) -> Result<Self, Self::Error> {
        Prefix::new(f.id, f.network, f.cidr, f.gateway)
    }
}

impl Prefix {
    /// Validates and builds a prefix.
    pub fn new(
        id: PrefixId,
        network: NetworkId,
        cidr: IpNet,
        gateway: Option<IpAddr>,
    ) -> Result<Self, NetworkError> {
        if cidr.trunc() != cidr {
            return Err(NetworkError::HostBitsSet {
                cidr,
                network: cidr.trunc(),
            });
        }
        if let Some(gateway) = gateway
            && !cidr.contains(&gateway)
        {
            return Err(NetworkError::GatewayOutside { cidr, gateway });
        }
        Ok(Self {
            id,
            network,
            cidr,
            gateway,
        })
    }
}

/// An inclusive range of addresses IPAM never hands out (the routers'
/// HSRP/VRRP addresses, a DHCP pool, static appliances).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AddressRange {
    /// The first address held back.
    #[schema(value_type = String, format = "ip", examples("10.20.0.2"))]
    pub first: IpAddr,
    /// The last address held back (inclusive; equal to `first` for one).
    #[schema(value_type = String, format = "ip", examples("10.20.0.9"))]
    pub last: IpAddr,
}

impl AddressRange {
    /// Whether `ip` lies in the range (same family, first <= ip <= last).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.first, self.last, ip) {
            (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(x)) => a <= x && x <= b,
            (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(x)) => a <= x && x <= b,
            _ => false,
        }
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// The intent for one network: what an operator declares and the agent
/// stores. Checked by [`crate::resource::SiteIntent::validate`] (or
/// [`NetworkSpec::check`] against the networks already defined).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Its short name, unique in the site (`prov`, `oob`, `tenant-20`).
    pub name: NetworkName,
    /// Its VLAN, unique in the site.
    pub vlan: VlanId,
    /// What it carries.
    pub purpose: NetworkPurpose,
    /// Its IP prefix; must not overlap another network's.
    #[schema(value_type = String, examples("10.20.0.0/24"))]
    pub prefix: IpNet,
    /// The default gateway, inside `prefix`; IPAM never hands it out.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = "ip", examples("10.20.0.1"))]
    pub gateway: Option<IpAddr>,
    /// Whether the agent serves DHCP on it.
    #[serde(default)]
    pub dhcp: bool,
    /// Ranges inside `prefix` that IPAM never hands out.
    #[serde(default)]
    pub reserved: Vec<AddressRange>,
}

/// One address IPAM handed out: exactly one owner per address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Allocation {
    /// The allocation's id.
    pub id: AllocationId,
    /// The network it is on.
    pub network: NetworkId,
    /// The prefix it came from.
    pub prefix: PrefixId,
    /// The address.
    #[schema(value_type = String, format = "ip", examples("10.20.0.10"))]
    pub address: IpAddr,
    /// Who holds it (free text: a machine id, a service, a ticket).
    pub owner: Option<String>,
    /// Its DNS label in the site zone, if it has a name.
    pub hostname: Option<String>,
    /// The NIC a DHCP reservation ties to the address, if any.
    pub mac: Option<MacAddr>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn vlan_range() {
        assert!(VlanId::new(0).is_err());
        assert!(VlanId::new(4095).is_err());
        assert_eq!(VlanId::new(1).unwrap().get(), 1);
        assert_eq!(VlanId::new(4094).unwrap().get(), 4094);
        let err = VlanId::new(5000).unwrap_err().to_string();
        assert!(err.contains("5000") && err.contains("1..=4094"), "{err}");
    }

    #[test]
    fn vlan_deserializing_validates() {
        assert!(serde_json::from_str::<VlanId>("4095").is_err());
        assert!(postcard::from_bytes::<VlanId>(&postcard::to_allocvec(&0u16).unwrap()).is_err());
        assert_eq!(serde_json::from_str::<VlanId>("20").unwrap().get(), 20);
    }

    #[test]
    fn prefix_checks() {
        let (id, net) = (PrefixId::new(), NetworkId::new());
        let cidr: IpNet = "10.20.0.0/24".parse().unwrap();
        assert!(Prefix::new(id, net, cidr, Some("10.20.0.1".parse().unwrap())).is_ok());
        assert!(Prefix::new(id, net, cidr, None).is_ok());
        assert!(matches!(
            Prefix::new(id, net, "10.20.0.5/24".parse().unwrap(), None),
            Err(NetworkError::HostBitsSet { .. })
        ));
        assert!(matches!(
            Prefix::new(id, net, cidr, Some("10.21.0.1".parse().unwrap())),
            Err(NetworkError::GatewayOutside { .. })
        ));
        assert!(matches!(
            Prefix::new(id, net, cidr, Some("fd00::1".parse().unwrap())),
            Err(NetworkError::GatewayOutside { .. })
        ));
    }

    #[test]
    fn prefix_deserializing_validates() {
        let good = Prefix::new(
            PrefixId::new(),
            NetworkId::new(),
            "10.20.0.0/24".parse().unwrap(),
            None,
        )
        .unwrap();
        let mut bad = good.clone();
        bad.gateway = Some("192.168.0.1".parse().unwrap());
        let json = serde_json::to_string(&bad).unwrap();
        let err = serde_json::from_str::<Prefix>(&json).unwrap_err();
        assert!(err.to_string().contains("not inside"), "{err}");
        let bytes = postcard::to_allocvec(&good).unwrap();
        assert_eq!(postcard::from_bytes::<Prefix>(&bytes).unwrap(), good);
    }
}
