//! Vendor renderers: the switch-port configuration of one switch, written
//! from the validated site intent in the form its network OS loads.
//!
//! This module owns what every renderer shares: checking the intent
//! ([`dv_protocol::SiteIntent::validate`] first, so a renderer never sees a
//! dangling profile or a port in two places), picking one switch's part of
//! it ([`SwitchView`]: the VLANs its ports use, its ports, its LAGs), the
//! port order (natural: `Ethernet2` before `Ethernet10`) and the rule that
//! turns a LAG name into a port-channel number. Each vendor file owns its
//! port-name rule and its format:
//!
//! | file | NOS | output |
//! | --- | --- | --- |
//! | `sonic.rs` | SONiC | a `config_db.json` fragment (VLAN, VLAN_MEMBER, PORTCHANNEL, PORTCHANNEL_MEMBER, PORT) |
//! | `eos.rs` | Arista EOS | running-config text (`vlan`, `interface`) |
//! | `nvue.rs` | NVIDIA Cumulus Linux | NVUE YAML as `nv config apply` takes it |
//!
//! Output is a pure function of the intent: the same intent gives the same
//! bytes, so golden files pin it and an operator can diff two renders.
//!
//! **Port-channel numbers.** SONiC (`PortChannel<N>`) and EOS
//! (`Port-Channel<N>`) name a LAG by number only. The number is the decimal
//! digits that end the LAG's name (`po10` is 10, `bond-r01u12` is 12); a
//! name without such digits, a number outside the vendor's range, or two
//! LAGs of one switch with the same number are refused rather than
//! numbered by position, because a number that moved when a LAG was added
//! would re-bundle live links. NVUE takes the LAG name itself as the bond
//! name.

pub mod eos;
pub mod nvue;
pub mod sonic;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use dv_protocol::{
    IntentError, LagName, NetworkName, PortMode, PortName, PortProfile, PortProfileName,
    SiteIntent, SwitchName, VlanId,
};
use serde::{Deserialize, Serialize, Serializer};

/// The network operating systems a switch configuration is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vendor {
    /// SONiC: a `config_db.json` fragment.
    Sonic,
    /// Arista EOS: configuration text.
    Eos,
    /// NVIDIA Cumulus Linux: NVUE YAML.
    Nvue,
}

impl Vendor {
    /// Every vendor, in a fixed order.
    pub const ALL: [Vendor; 3] = [Vendor::Sonic, Vendor::Eos, Vendor::Nvue];

    /// The vendor's name as configuration and the CLI spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Sonic => "sonic",
            Vendor::Eos => "eos",
            Vendor::Nvue => "nvue",
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Vendor {
    type Err = RenderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Vendor::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| RenderError::UnknownVendor {
                value: s.to_owned(),
            })
    }
}

/// Why a switch configuration could not be rendered; nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The vendor name is not one of ours.
    #[error("unknown vendor {value:?}; use one of: sonic, eos, nvue")]
    UnknownVendor {
        /// What was given.
        value: String,
    },
    /// The intent breaks its own rules; its problems are the source.
    #[error("the site intent is not valid, so no switch configuration was rendered; fix it first")]
    Invalid(#[source] IntentError),
    /// No assignment and no LAG names the switch.
    #[error(
        "switch {switch} has no ports in the intent (no assignment or LAG names it); \
         check the switch name (switches with ports: {known})"
    )]
    NoPorts {
        /// The switch asked for.
        switch: SwitchName,
        /// The switches that have ports, comma-separated, or `none`.
        known: String,
    },
    /// A port name the vendor does not use.
    #[error(
        "{vendor} has no port named {port} (switch {switch}): {vendor} names its front-panel \
         ports {expected}; assign the port by the name the switch uses"
    )]
    PortName {
        /// The vendor.
        vendor: Vendor,
        /// The switch.
        switch: SwitchName,
        /// The port.
        port: PortName,
        /// The vendor's rule, for the operator.
        expected: &'static str,
    },
    /// A LAG the vendor cannot name.
    #[error("{vendor} cannot name LAG {lag} of switch {switch}: {reason}")]
    LagName {
        /// The vendor.
        vendor: Vendor,
        /// The switch.
        switch: SwitchName,
        /// The LAG.
        lag: LagName,
        /// Why, and what to do.
        reason: String,
    },
    /// Two LAGs of one switch would get the same port-channel.
    #[error(
        "LAGs {first} and {second} of switch {switch} both become {vendor} port-channel \
         {number}; rename one so the numbers that end their names differ"
    )]
    LagClash {
        /// The vendor.
        vendor: Vendor,
        /// The switch.
        switch: SwitchName,
        /// The port-channel number.
        number: u32,
        /// One LAG.
        first: LagName,
        /// The other.
        second: LagName,
    },
    /// A VLAN the vendor reserves.
    #[error("{vendor} cannot carry VLAN {vlan} on switch {switch}: {reason}")]
    Vlan {
        /// The vendor.
        vendor: Vendor,
        /// The switch.
        switch: SwitchName,
        /// The VLAN.
        vlan: VlanId,
        /// Why, and what to do.
        reason: &'static str,
    },
    /// A profile named by an assignment or LAG is missing. `validate`
    /// refuses that first, so this is a bug if it shows.
    #[error("profile {profile} is not defined (the intent passed validation; this is a bug)")]
    UnknownProfile {
        /// The profile.
        profile: String,
    },
    /// The configuration could not be serialized.
    #[error("could not write the {vendor} configuration")]
    Serialize {
        /// The vendor.
        vendor: Vendor,
        /// The serializer's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What a port or LAG carries, with its VLANs sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Untagged on one VLAN.
    Access(VlanId),
    /// Tagged on `allowed`; untagged frames to `native`, or dropped.
    Trunk {
        /// The VLANs allowed tagged.
        allowed: BTreeSet<VlanId>,
        /// The native VLAN.
        native: Option<VlanId>,
    },
}

impl Mode {
    fn from_profile(mode: &PortMode) -> Mode {
        match mode {
            PortMode::Access { vlan } => Mode::Access(*vlan),
            PortMode::Trunk { allowed, native } => Mode::Trunk {
                allowed: allowed.iter().copied().collect(),
                native: *native,
            },
        }
    }

    /// Every VLAN the mode carries.
    pub fn vlans(&self) -> BTreeSet<VlanId> {
        match self {
            Mode::Access(v) => BTreeSet::from([*v]),
            Mode::Trunk { allowed, .. } => allowed.clone(),
        }
    }

    /// The VLAN untagged frames belong to, if any.
    pub fn untagged(&self) -> Option<VlanId> {
        match self {
            Mode::Access(v) => Some(*v),
            Mode::Trunk { native, .. } => *native,
        }
    }
}

/// A LAG of the switch: its members in port order and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The LAG's name in the intent.
    pub name: LagName,
    /// Its member ports, in port order.
    pub members: Vec<PortName>,
    /// What the bundle carries.
    pub mode: Mode,
}

/// One switch's part of the intent, in render order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchView {
    /// The switch.
    pub switch: SwitchName,
    /// The VLANs its ports and LAGs carry, with the network of each.
    pub vlans: BTreeMap<VlanId, NetworkName>,
    /// Its assigned ports (LAG members are not here), in port order.
    pub ports: Vec<(PortName, Mode)>,
    /// Its LAGs, in name order.
    pub lags: Vec<Bundle>,
}

impl SwitchView {
    /// Validates `intent` and picks `switch`'s part of it.
    pub fn new(intent: &SiteIntent, switch: &SwitchName) -> Result<SwitchView, RenderError> {
        intent.validate().map_err(RenderError::Invalid)?;
        let mode = |profile: &PortProfileName| {
            intent
                .profiles
                .iter()
                .find(|p: &&PortProfile| &p.name == profile)
                .map(|p| Mode::from_profile(&p.mode))
                .ok_or_else(|| RenderError::UnknownProfile {
                    profile: profile.to_string(),
                })
        };
        let mut ports = Vec::new();
        for a in intent.assignments.iter().filter(|a| &a.switch == switch) {
            ports.push((a.port.clone(), mode(&a.profile)?));
        }
        ports.sort_by(|a, b| port_order(&a.0, &b.0));
        let mut lags = Vec::new();
        for l in intent.lags.iter().filter(|l| &l.switch == switch) {
            let mut members = l.members.clone();
            members.sort_by(port_order);
            lags.push(Bundle {
                name: l.name.clone(),
                members,
                mode: mode(&l.profile)?,
            });
        }
        lags.sort_by(|a, b| natural_cmp(a.name.as_str(), b.name.as_str()));
        if ports.is_empty() && lags.is_empty() {
            let known: BTreeSet<&str> = intent
                .assignments
                .iter()
                .map(|a| a.switch.as_str())
                .chain(intent.lags.iter().map(|l| l.switch.as_str()))
                .collect();
            let known = if known.is_empty() {
                "none".to_owned()
            } else {
                known.into_iter().collect::<Vec<_>>().join(", ")
            };
            return Err(RenderError::NoPorts {
                switch: switch.clone(),
                known,
            });
        }
        let used: BTreeSet<VlanId> = ports
            .iter()
            .map(|(_, m)| m)
            .chain(lags.iter().map(|l| &l.mode))
            .flat_map(Mode::vlans)
            .collect();
        // Validation guarantees every used VLAN has its network.
        let vlans = intent
            .networks
            .iter()
            .filter(|n| used.contains(&n.vlan))
            .map(|n| (n.vlan, n.name.clone()))
            .collect();
        Ok(SwitchView {
            switch: switch.clone(),
            vlans,
            ports,
            lags,
        })
    }

    /// Every physical port of the switch (assigned and LAG members), in
    /// port order.
    pub fn physical_ports(&self) -> Vec<&PortName> {
        let mut all: Vec<&PortName> = self
            .ports
            .iter()
            .map(|(p, _)| p)
            .chain(self.lags.iter().flat_map(|l| l.members.iter()))
            .collect();
        all.sort_by(|a, b| port_order(a, b));
        all
    }

    /// Refuses the first physical port `ok` rejects.
    fn check_ports(
        &self,
        vendor: Vendor,
        ok: fn(&str) -> bool,
        expected: &'static str,
    ) -> Result<(), RenderError> {
        match self.physical_ports().into_iter().find(|p| !ok(p.as_str())) {
            Some(port) => Err(RenderError::PortName {
                vendor,
                switch: self.switch.clone(),
                port: port.clone(),
                expected,
            }),
            None => Ok(()),
        }
    }

    /// The LAGs with their port-channel numbers (see the module docs), in
    /// number order; numbers run 1..=`max`.
    fn numbered_lags(&self, vendor: Vendor, max: u32) -> Result<Vec<(u32, &Bundle)>, RenderError> {
        let mut by_number: BTreeMap<u32, &Bundle> = BTreeMap::new();
        for lag in &self.lags {
            let refuse = |reason: String| RenderError::LagName {
                vendor,
                switch: self.switch.clone(),
                lag: lag.name.clone(),
                reason,
            };
            let number = lag_number(lag.name.as_str()).ok_or_else(|| {
                refuse(format!(
                    "{vendor} numbers its port-channels, and the number is taken from the digits \
                     that end the LAG's name; rename it like po{n} (1 to {max})",
                    n = by_number.len() + 1
                ))
            })?;
            if !(1..=max).contains(&number) {
                return Err(refuse(format!(
                    "port-channel {number} is outside {vendor}'s range 1 to {max}; rename the LAG \
                     so the number that ends its name is in range"
                )));
            }
            if let Some(first) = by_number.insert(number, lag) {
                return Err(RenderError::LagClash {
                    vendor,
                    switch: self.switch.clone(),
                    number,
                    first: first.name.clone(),
                    second: lag.name.clone(),
                });
            }
        }
        Ok(by_number.into_iter().collect())
    }
}

/// Renders the switch-port configuration of `switch` from `intent` for
/// `vendor`: its VLANs, access and trunk ports, and LAGs.
pub fn render(
    vendor: Vendor,
    intent: &SiteIntent,
    switch: &SwitchName,
) -> Result<String, RenderError> {
    let view = SwitchView::new(intent, switch)?;
    match vendor {
        Vendor::Sonic => sonic::render(&view),
        Vendor::Eos => eos::render(&view),
        Vendor::Nvue => nvue::render(&view),
    }
}

/// The port-channel number of a LAG name: the decimal digits that end it
/// (`po10` → 10). `None` when it ends otherwise or the number is too big.
pub fn lag_number(name: &str) -> Option<u32> {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    name[name.len() - digits..].parse().ok()
}

/// Whether `s` is `prefix` followed by one or more decimal digits.
pub(crate) fn prefix_number(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Natural order of names: runs of digits compare as numbers, so
/// `Ethernet2` < `Ethernet10`; equal-looking names (`po01`, `po1`) fall
/// back to byte order, so the order stays total.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for ((da, ta), (db, tb)) in ca.iter().zip(cb.iter()) {
        let ord = if *da && *db {
            let (na, nb) = (ta.trim_start_matches('0'), tb.trim_start_matches('0'));
            na.len().cmp(&nb.len()).then_with(|| na.cmp(nb))
        } else {
            ta.cmp(tb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    ca.len().cmp(&cb.len()).then_with(|| a.cmp(b))
}

fn port_order(a: &PortName, b: &PortName) -> Ordering {
    natural_cmp(a.as_str(), b.as_str())
}

/// A map key kept in [`natural_cmp`] order and written as its text, so a
/// `BTreeMap` of them serializes ports as an operator reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NaturalKey(pub(crate) String);

impl Ord for NaturalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        natural_cmp(&self.0, &other.0)
    }
}

impl PartialOrd for NaturalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for NaturalKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
