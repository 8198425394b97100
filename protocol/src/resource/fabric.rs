//! Switch-port intent, vendor-neutral: port profiles (access or trunk), the
//! assignment of a switch port to a profile (with the machine NIC cabled to
//! it, from inventory topology), and link aggregation groups.
//!
//! These say what a port should be, never how a given NOS spells it: the
//! renderers and drivers that turn them into switch configuration are a
//! later slice. Cross-references (a profile naming a VLAN no network has, a
//! port in two places) are checked by [`super::SiteIntent::validate`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::MachineId;
use crate::mac::MacAddr;
use crate::resource::VlanId;
use crate::token::{LagName, PortProfileName, SwitchName};

/// The longest port name accepted (vendor names such as
/// `Ethernet1/1/1.100` are far shorter).
pub const MAX_PORT_NAME: usize = 64;

/// Why a port name is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "port name {value:?} is not valid: use 1 to {MAX_PORT_NAME} printable ASCII characters \
     without spaces, as the switch names it (`swp1`, `Ethernet1/1`)"
)]
pub struct PortNameError {
    /// The rejected text.
    pub value: String,
}

/// A switch port as its switch names it (`swp12`, `Ethernet1/1`, `xe-0/0/1`).
/// Vendors differ, so the rule is loose: printable ASCII, no spaces.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortName(String);

impl PortName {
    /// Validates `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, PortNameError> {
        let value = value.into();
        let ok = !value.is_empty()
            && value.len() <= MAX_PORT_NAME
            && value.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(value))
        } else {
            Err(PortNameError { value })
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PortName {
    type Err = PortNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for PortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PortName({:?})", self.0)
    }
}

impl Serialize for PortName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

crate::schema::string_schema!(
    PortName,
    "A switch port as its switch names it: 1 to 64 printable ASCII characters without spaces.",
    Some("^[!-~]{1,64}$"),
    None,
    "swp1"
);

// Deserializing validates, like the name tokens.
impl<'de> Deserialize<'de> for PortName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

/// What a port carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PortMode {
    /// Untagged traffic on one VLAN.
    Access {
        /// The VLAN.
        vlan: VlanId,
    },
    /// Tagged traffic on the allowed VLANs, untagged on the native one.
    Trunk {
        /// The VLANs allowed tagged.
        allowed: Vec<VlanId>,
        /// The VLAN untagged frames belong to; must be one of `allowed`.
        native: Option<VlanId>,
    },
}

/// A named port configuration that assignments and LAGs refer to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PortProfile {
    /// The profile's name, unique in the site.
    pub name: PortProfileName,
    /// Access or trunk.
    pub mode: PortMode,
}

/// One switch port given a profile; `machine` and `nic` say what is cabled
/// to it (inventory topology), when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PortAssignment {
    /// The switch.
    pub switch: SwitchName,
    /// The port on it.
    pub port: PortName,
    /// The profile it gets.
    pub profile: PortProfileName,
    /// The machine cabled to it.
    #[serde(default)]
    pub machine: Option<MachineId>,
    /// The machine's NIC cabled to it.
    #[serde(default)]
    pub nic: Option<MacAddr>,
}

/// A link aggregation group: member ports on one switch bundled into one
/// logical port that carries `profile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lag {
    /// The LAG's name, unique on its switch.
    pub name: LagName,
    /// The switch.
    pub switch: SwitchName,
    /// Its member ports; each is in no other LAG and has no assignment of
    /// its own.
    pub members: Vec<PortName>,
    /// The profile the bundle gets.
    pub profile: PortProfileName,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn port_names() {
        assert!(PortName::new("Ethernet1/1").is_ok());
        assert!(PortName::new("swp1").is_ok());
        assert!(PortName::new("").is_err());
        assert!(PortName::new("eth 1").is_err());
        assert!(PortName::new("x".repeat(65)).is_err());
        assert!(serde_json::from_str::<PortName>("\"a b\"").is_err());
    }
}
