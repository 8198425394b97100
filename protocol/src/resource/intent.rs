//! A site's network intent as a whole ([`SiteIntent`]) and the rules that
//! make it consistent. Every rule that needs more than one value (VLANs
//! unique per site, prefixes that do not overlap, a port in one profile)
//! lives here, so the agent's API, a future `dvnet plan` and the hub check
//! the same thing.
//!
//! Validation reports every problem at once, each with the field it is
//! about (`networks[1].vlan`) and what to do, so an operator fixes a file in
//! one pass.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::VlanId;
use super::fabric::{Lag, PortAssignment, PortMode, PortName, PortProfile};
use super::network::NetworkSpec;
use crate::token::{LagName, PortProfileName, SwitchName};

/// One thing wrong with an intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// The field, as a path into the value checked (`networks[0].gateway`).
    pub field: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// An intent that breaks at least one rule; nothing of it was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{}", render(.problems))]
pub struct IntentError {
    /// Every problem found, in field order.
    pub problems: Vec<Problem>,
}

fn render(problems: &[Problem]) -> String {
    let all: Vec<String> = problems.iter().map(Problem::to_string).collect();
    all.join("; ")
}

impl IntentError {
    /// `Ok` when `problems` is empty.
    pub fn check(problems: Vec<Problem>) -> Result<(), IntentError> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(IntentError { problems })
        }
    }
}

/// Everything a site declares about its networks and switch ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SiteIntent {
    /// The networks (VLANs with their prefixes).
    #[serde(default)]
    pub networks: Vec<NetworkSpec>,
    /// The port profiles.
    #[serde(default)]
    pub profiles: Vec<PortProfile>,
    /// Switch ports and the profile each gets.
    #[serde(default)]
    pub assignments: Vec<PortAssignment>,
    /// Link aggregation groups.
    #[serde(default)]
    pub lags: Vec<Lag>,
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        message: message.into(),
    }
}

impl NetworkSpec {
    /// The problems of this network on its own and next to `others` (the
    /// networks already in the site). Fields are relative to the network
    /// (`vlan`, `reserved[0]`).
    pub fn check(&self, others: &[NetworkSpec]) -> Vec<Problem> {
        let mut out = Vec::new();
        let prefix = self.prefix;
        if prefix.trunc() != prefix {
            out.push(problem(
                "prefix",
                format!(
                    "prefix {prefix} has host bits set; write it as {}",
                    prefix.trunc()
                ),
            ));
        }
        let net = prefix.trunc();
        if let Some(gateway) = self.gateway {
            if !net.contains(&gateway) {
                out.push(problem(
                    "gateway",
                    format!("gateway {gateway} is not inside prefix {net}; pick an address in it"),
                ));
            } else if is_network_or_broadcast(net, gateway) {
                out.push(problem(
                    "gateway",
                    format!(
                        "gateway {gateway} is the network or broadcast address of {net}; \
                         pick a host address"
                    ),
                ));
            }
        }
        for (i, r) in self.reserved.iter().enumerate() {
            let field = format!("reserved[{i}]");
            if !net.contains(&r.first) || !net.contains(&r.last) {
                out.push(problem(
                    field,
                    format!("reserved range {r} is not inside prefix {net}"),
                ));
            } else if !ordered(r.first, r.last) {
                out.push(problem(
                    field,
                    format!("reserved range {r} ends before it starts; write first <= last"),
                ));
            }
        }
        for other in others {
            if other.name == self.name {
                out.push(problem(
                    "name",
                    format!(
                        "a network named {} already exists; names are unique per site",
                        self.name
                    ),
                ));
            }
            if other.vlan == self.vlan {
                out.push(problem(
                    "vlan",
                    format!(
                        "VLAN {} is already used by network {}; each VLAN carries one network \
                         per site",
                        self.vlan, other.name
                    ),
                ));
            }
            let theirs = other.prefix.trunc();
            if overlaps(net, theirs) {
                out.push(problem(
                    "prefix",
                    format!(
                        "prefix {net} overlaps {theirs} of network {}; prefixes in a site must \
                         not overlap",
                        other.name
                    ),
                ));
            }
        }
        out
    }
}

/// Whether two prefixes share an address.
pub fn overlaps(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn ordered(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
        (IpAddr::V6(a), IpAddr::V6(b)) => a <= b,
        _ => false,
    }
}

/// IPv4 network and broadcast addresses of prefixes that have them (RFC 3021
/// /31s and /32s do not).
fn is_network_or_broadcast(net: IpNet, ip: IpAddr) -> bool {
    match net {
        IpNet::V4(v4) if v4.prefix_len() <= 30 => {
            ip == IpAddr::V4(v4.network()) || ip == IpAddr::V4(v4.broadcast())
        }
        _ => false,
    }
}

impl SiteIntent {
    /// Checks every rule; on failure, every problem with its field.
    pub fn validate(&self) -> Result<(), IntentError> {
        let mut out = Vec::new();
        for (i, n) in self.networks.iter().enumerate() {
            for p in n.check(&self.networks[..i]) {
                out.push(problem(format!("networks[{i}].{}", p.field), p.message));
            }
        }
        let vlans: BTreeSet<VlanId> = self.networks.iter().map(|n| n.vlan).collect();
        let known_vlans = || {
            let v: Vec<String> = vlans.iter().map(ToString::to_string).collect();
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        let mut profiles: HashMap<&PortProfileName, usize> = HashMap::new();
        for (i, p) in self.profiles.iter().enumerate() {
            let field = format!("profiles[{i}]");
            if let Some(first) = profiles.insert(&p.name, i) {
                profiles.insert(&p.name, first);
                out.push(problem(
                    format!("{field}.name"),
                    format!(
                        "profile {} is already defined at profiles[{first}]; names are unique",
                        p.name
                    ),
                ));
            }
            let undefined = |vlan: VlanId, at: String, out: &mut Vec<Problem>| {
                if !vlans.contains(&vlan) {
                    out.push(problem(
                        at,
                        format!(
                            "VLAN {vlan} is not the VLAN of any network; define the network \
                             first or use one of: {}",
                            known_vlans()
                        ),
                    ));
                }
            };
            match &p.mode {
                PortMode::Access { vlan } => {
                    undefined(*vlan, format!("{field}.mode.vlan"), &mut out);
                }
                PortMode::Trunk { allowed, native } => {
                    if allowed.is_empty() {
                        out.push(problem(
                            format!("{field}.mode.allowed"),
                            "a trunk allows at least one VLAN; list them, or use an access profile",
                        ));
                    }
                    let mut seen = BTreeSet::new();
                    for (k, v) in allowed.iter().enumerate() {
                        let at = format!("{field}.mode.allowed[{k}]");
                        if !seen.insert(*v) {
                            out.push(problem(at, format!("VLAN {v} is listed twice")));
                        } else {
                            undefined(*v, at, &mut out);
                        }
                    }
                    if let Some(n) = native
                        && !allowed.contains(n)
                    {
                        out.push(problem(
                            format!("{field}.mode.native"),
                            format!("native VLAN {n} is not in the allowed VLANs; add it there"),
                        ));
                    }
                }
            }
        }
        let unknown_profile = |name: &PortProfileName, at: String, out: &mut Vec<Problem>| {
            if !profiles.contains_key(name) {
                out.push(problem(
                    at,
                    format!("no port profile is named {name}; define it under profiles"),
                ));
            }
        };
        // A port carries one profile: directly, or as a member of one LAG.
        let mut ports: HashMap<(&SwitchName, &PortName), String> = HashMap::new();
        for (i, a) in self.assignments.iter().enumerate() {
            let field = format!("assignments[{i}]");
            unknown_profile(&a.profile, format!("{field}.profile"), &mut out);
            if let Some(first) = ports.get(&(&a.switch, &a.port)) {
                out.push(problem(
                    format!("{field}.port"),
                    format!(
                        "port {}/{} is already assigned at {first}; a port carries one profile",
                        a.switch, a.port
                    ),
                ));
            } else {
                ports.insert((&a.switch, &a.port), field);
            }
        }
        let mut lags: HashMap<(&SwitchName, &LagName), usize> = HashMap::new();
        for (i, l) in self.lags.iter().enumerate() {
            let field = format!("lags[{i}]");
            if let Some(first) = lags.get(&(&l.switch, &l.name)) {
                out.push(problem(
                    format!("{field}.name"),
                    format!(
                        "LAG {} on switch {} is already defined at lags[{first}]",
                        l.name, l.switch
                    ),
                ));
            } else {
                lags.insert((&l.switch, &l.name), i);
            }
            unknown_profile(&l.profile, format!("{field}.profile"), &mut out);
            if l.members.is_empty() {
                out.push(problem(
                    format!("{field}.members"),
                    "a LAG needs at least one member port",
                ));
            }
            for (k, m) in l.members.iter().enumerate() {
                let at = format!("{field}.members[{k}]");
                if let Some(first) = ports.get(&(&l.switch, m)) {
                    out.push(problem(
                        at,
                        format!(
                            "port {}/{m} is already used at {first}; a port carries one \
                             profile, so a LAG member has no assignment or other LAG",
                            l.switch
                        ),
                    ));
                } else {
                    ports.insert((&l.switch, m), at);
                }
            }
        }
        IntentError::check(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resource::{AddressRange, NetworkPurpose};
    use crate::token::NetworkName;

    fn net(name: &str, vlan: u16, prefix: &str, gateway: Option<&str>) -> NetworkSpec {
        NetworkSpec {
            name: NetworkName::new(name).unwrap(),
            vlan: VlanId::new(vlan).unwrap(),
            purpose: NetworkPurpose::Tenant,
            prefix: prefix.parse().unwrap(),
            gateway: gateway.map(|g| g.parse().unwrap()),
            dhcp: false,
            reserved: vec![],
        }
    }

    fn fields(e: &IntentError) -> Vec<&str> {
        e.problems.iter().map(|p| p.field.as_str()).collect()
    }

    fn profile(name: &str, mode: PortMode) -> PortProfile {
        PortProfile {
            name: PortProfileName::new(name).unwrap(),
            mode,
        }
    }

    fn vlan(v: u16) -> VlanId {
        VlanId::new(v).unwrap()
    }

    fn assign(switch: &str, port: &str, profile: &str) -> PortAssignment {
        PortAssignment {
            switch: SwitchName::new(switch).unwrap(),
            port: PortName::new(port).unwrap(),
            profile: PortProfileName::new(profile).unwrap(),
            machine: None,
            nic: None,
        }
    }

    #[test]
    fn a_consistent_intent_passes() {
        let intent = SiteIntent {
            networks: vec![
                net("prov", 20, "10.20.0.0/24", Some("10.20.0.1")),
                net("oob", 30, "10.30.0.0/24", None),
            ],
            profiles: vec![
                profile("server", PortMode::Access { vlan: vlan(20) }),
                profile(
                    "hv",
                    PortMode::Trunk {
                        allowed: vec![vlan(20), vlan(30)],
                        native: Some(vlan(20)),
                    },
                ),
            ],
            assignments: vec![assign("leaf-1", "swp1", "server")],
            lags: vec![Lag {
                name: LagName::new("po10").unwrap(),
                switch: SwitchName::new("leaf-1").unwrap(),
                members: vec![
                    PortName::new("swp2").unwrap(),
                    PortName::new("swp3").unwrap(),
                ],
                profile: PortProfileName::new("hv").unwrap(),
            }],
        };
        intent.validate().unwrap();
    }

    #[test]
    fn vlans_names_and_prefixes_are_unique_per_site() {
        let intent = SiteIntent {
            networks: vec![
                net("prov", 20, "10.20.0.0/23", None),
                net("prov", 20, "10.20.1.0/24", None),
            ],
            ..SiteIntent::default()
        };
        let e = intent.validate().unwrap_err();
        assert_eq!(
            fields(&e),
            ["networks[1].name", "networks[1].vlan", "networks[1].prefix"]
        );
        assert!(
            e.problems[1]
                .message
                .contains("already used by network prov")
        );
        assert!(e.problems[2].message.contains("overlaps 10.20.0.0/23"));
    }

    #[test]
    fn gateways_and_reserved_ranges_lie_inside_their_prefix() {
        let mut n = net("prov", 20, "10.20.0.5/24", Some("10.21.0.1"));
        n.reserved = vec![
            AddressRange {
                first: "10.20.0.10".parse().unwrap(),
                last: "10.20.1.10".parse().unwrap(),
            },
            AddressRange {
                first: "10.20.0.20".parse().unwrap(),
                last: "10.20.0.10".parse().unwrap(),
            },
        ];
        let e = SiteIntent {
            networks: vec![n, net("b", 21, "10.21.0.0/24", Some("10.21.0.255"))],
            ..SiteIntent::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            fields(&e),
            [
                "networks[0].prefix",
                "networks[0].gateway",
                "networks[0].reserved[0]",
                "networks[0].reserved[1]",
                "networks[1].gateway",
            ]
        );
        assert!(e.problems[0].message.contains("write it as 10.20.0.0/24"));
        assert!(e.problems[4].message.contains("broadcast"));
    }

    #[test]
    fn profiles_refer_to_defined_vlans() {
        let e = SiteIntent {
            networks: vec![net("prov", 20, "10.20.0.0/24", None)],
            profiles: vec![
                profile("a", PortMode::Access { vlan: vlan(99) }),
                profile(
                    "t",
                    PortMode::Trunk {
                        allowed: vec![vlan(20), vlan(20)],
                        native: Some(vlan(30)),
                    },
                ),
                profile(
                    "e",
                    PortMode::Trunk {
                        allowed: vec![],
                        native: None,
                    },
                ),
            ],
            ..SiteIntent::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            fields(&e),
            [
                "profiles[0].mode.vlan",
                "profiles[1].mode.allowed[1]",
                "profiles[1].mode.native",
                "profiles[2].mode.allowed",
            ]
        );
        assert!(e.problems[0].message.contains("use one of: 20"), "{e}");
    }

    #[test]
    fn a_port_carries_one_profile() {
        let e = SiteIntent {
            networks: vec![net("prov", 20, "10.20.0.0/24", None)],
            profiles: vec![profile("s", PortMode::Access { vlan: vlan(20) })],
            assignments: vec![
                assign("leaf-1", "swp1", "s"),
                assign("leaf-1", "swp1", "s"),
                assign("leaf-2", "swp1", "nope"),
            ],
            lags: vec![Lag {
                name: LagName::new("po1").unwrap(),
                switch: SwitchName::new("leaf-1").unwrap(),
                members: vec![PortName::new("swp1").unwrap()],
                profile: PortProfileName::new("s").unwrap(),
            }],
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            fields(&e),
            [
                "assignments[1].port",
                "assignments[2].profile",
                "lags[0].members[0]",
            ]
        );
        assert!(
            e.problems[0]
                .message
                .contains("already assigned at assignments[0]")
        );
    }
}
