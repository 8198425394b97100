//! Switch drivers: the port VLAN intent of one switch, pushed to the switch
//! and read back.
//!
//! Every driver implements [`SwitchDriver`]: `observe` reads what the
//! switch really does per port, `plan` diffs the desired ports against that
//! ([`diff`], pure and deterministic), `apply` runs a plan's changes in
//! order and, when one fails, undoes the ones already applied, newest
//! first. Drift is a non-empty plan after an apply: the switch no longer
//! does what was applied.
//!
//! The desired state comes from the site intent ([`desired_ports`]): the
//! port profiles, and the assignments and LAGs of one switch. A LAG is a
//! [`Port`] named like the LAG whose `members` are its member interfaces
//! (a bond); any other port has no members and is one interface of its own
//! name.
//!
//! | file | holds |
//! | --- | --- |
//! | `mod.rs` | the model ([`Port`], [`PortConfig`], [`Change`], [`Plan`]), [`diff`], the trait and its apply/rollback loop |
//! | `ovsdb.rs` | the OVSDB (RFC 7047) JSON-RPC client |
//! | `ovs.rs` | the Open vSwitch driver over OVSDB |
//! | `netlink.rs` | the Linux VLAN-aware bridge driver over rtnetlink |

pub mod netlink;
pub mod ovs;
pub mod ovsdb;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;

use dv_protocol::{PortMode, PortName, PortProfileName, SiteIntent, SwitchName, VlanId};

use self::ovsdb::OvsdbError;

/// Why a switch operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SwitchError {
    /// Talking to the switch's database failed.
    #[error(transparent)]
    Ovsdb(#[from] OvsdbError),
    /// The bridge the driver manages does not exist on the switch.
    #[error("switch has no bridge named {bridge}; create it first")]
    NoSuchBridge {
        /// The bridge.
        bridge: String,
    },
    /// The switch has no interface by the port's name, so the port carries
    /// nothing.
    #[error(
        "switch cannot open port {port}: {reason}; is the interface in the switch's namespace?"
    )]
    NoSuchInterface {
        /// The port.
        port: PortName,
        /// What the switch reported.
        reason: String,
    },
    /// A port the change expects is gone (changed behind the driver's back
    /// since the plan was made).
    #[error("port {port} is not on the switch any more; plan again")]
    PortGone {
        /// The port.
        port: PortName,
    },
    /// The switch did not take the change within the driver's limit.
    #[error("switch did not take the change to {port} within {limit:?}")]
    NotTaken {
        /// The port.
        port: PortName,
        /// The limit.
        limit: std::time::Duration,
    },
    /// The switch reports a port configuration the model cannot express.
    #[error("port {port} has a configuration this driver does not manage: {what}")]
    Unsupported {
        /// The port, as the switch names it.
        port: String,
        /// What it is.
        what: String,
    },
    /// Two things of the intent claim one name on the switch: a LAG named
    /// like a port or another LAG, or a LAG member that is also a port.
    #[error("{switch}/{port} is claimed twice by the intent: {what}")]
    NameClash {
        /// The switch.
        switch: SwitchName,
        /// The name.
        port: PortName,
        /// Who claims it.
        what: String,
    },
    /// An assignment names a profile the intent does not define.
    #[error("assignment of {switch}/{port} names profile {profile}, which is not defined")]
    UnknownProfile {
        /// The switch.
        switch: SwitchName,
        /// The port.
        port: PortName,
        /// The profile.
        profile: String,
    },
    /// A netlink request failed.
    #[error("netlink: cannot {op}: {reason}")]
    Netlink {
        /// What the driver was doing.
        op: String,
        /// What the kernel or the socket said.
        reason: String,
    },
    /// The Linux bridge does not filter by VLAN, so its VLAN table would
    /// isolate nothing.
    #[error(
        "bridge {bridge} has VLAN filtering off, so it would forward every VLAN to every port; \
         turn it on (`ip link set {bridge} type bridge vlan_filtering 1`), and if the kernel \
         refuses (built without CONFIG_BRIDGE_VLAN_FILTERING), manage the ports with the \
         Open vSwitch driver instead"
    )]
    NoVlanFiltering {
        /// The bridge.
        bridge: String,
    },
}

/// What a port carries, as desired or as the switch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortConfig {
    /// On the switch without any VLAN setting. Open vSwitch then trunks
    /// every VLAN, so intent never asks for this; it is observed, and is
    /// what a rolled-back change may restore.
    Unset,
    /// Untagged on one VLAN.
    Access {
        /// The VLAN.
        vlan: VlanId,
    },
    /// Tagged on the allowed VLANs; untagged frames belong to `native`.
    Trunk {
        /// The VLANs allowed tagged.
        allowed: BTreeSet<VlanId>,
        /// The native (untagged) VLAN, one of `allowed`.
        native: Option<VlanId>,
    },
    /// A setting the model has no word for (an OVS `dot1q-tunnel` port, a
    /// tag without trunks in `native-tagged` mode). Plans replace it; a
    /// driver cannot write it back.
    Other(String),
}

impl fmt::Display for PortConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortConfig::Unset => f.write_str("no VLAN setting"),
            PortConfig::Access { vlan } => write!(f, "access {vlan}"),
            PortConfig::Trunk { allowed, native } => {
                let list: Vec<String> = allowed.iter().map(ToString::to_string).collect();
                write!(f, "trunk {}", list.join(","))?;
                if let Some(n) = native {
                    write!(f, " native {n}")?;
                }
                Ok(())
            }
            PortConfig::Other(what) => write!(f, "unmanaged ({what})"),
        }
    }
}

impl From<&PortMode> for PortConfig {
    fn from(mode: &PortMode) -> Self {
        match mode {
            PortMode::Access { vlan } => PortConfig::Access { vlan: *vlan },
            PortMode::Trunk { allowed, native } => PortConfig::Trunk {
                allowed: allowed.iter().copied().collect(),
                native: *native,
            },
        }
    }
}

/// One port of a switch: what it carries, and over which interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// What the port carries.
    pub vlan: PortConfig,
    /// Its member interfaces when it is a bond (a LAG); empty for a port
    /// that is the one interface of its own name.
    pub members: BTreeSet<PortName>,
}

impl Port {
    /// A port that is one interface of its own name.
    pub fn single(vlan: PortConfig) -> Self {
        Self {
            vlan,
            members: BTreeSet::new(),
        }
    }

    /// The interfaces the port named `name` is made of: its members, or
    /// the one interface named like it.
    pub fn interfaces<'a>(&'a self, name: &'a PortName) -> BTreeSet<&'a PortName> {
        if self.members.is_empty() {
            BTreeSet::from([name])
        } else {
            self.members.iter().collect()
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.vlan)?;
        if !self.members.is_empty() {
            let list: Vec<&str> = self.members.iter().map(PortName::as_str).collect();
            write!(f, " over [{}]", list.join(", "))?;
        }
        Ok(())
    }
}

/// Ports of one switch and what each is; a port not in the map is absent
/// from the switch (observed) or not to be on it (desired).
pub type Ports = BTreeMap<PortName, Port>;

/// The desired ports of `switch`: each of its assignments with the mode of
/// the profile it names, and each of its LAGs as a bond named like the LAG
/// over the LAG's members, with its profile's mode. The intent is assumed
/// validated ([`SiteIntent::validate`]); a dangling profile or a name
/// claimed twice is still refused here rather than silently dropping or
/// overwriting a port.
pub fn desired_ports(intent: &SiteIntent, switch: &SwitchName) -> Result<Ports, SwitchError> {
    let mode = |port: &PortName, profile: &PortProfileName| {
        intent
            .profiles
            .iter()
            .find(|p| &p.name == profile)
            .map(|p| PortConfig::from(&p.mode))
            .ok_or_else(|| SwitchError::UnknownProfile {
                switch: switch.clone(),
                port: port.clone(),
                profile: profile.to_string(),
            })
    };
    let clash = |port: &PortName, what: String| SwitchError::NameClash {
        switch: switch.clone(),
        port: port.clone(),
        what,
    };
    let mut out = Ports::new();
    for a in intent.assignments.iter().filter(|a| &a.switch == switch) {
        let port = Port::single(mode(&a.port, &a.profile)?);
        if out.insert(a.port.clone(), port).is_some() {
            return Err(clash(&a.port, "two assignments".to_owned()));
        }
    }
    // Every interface a port is made of, so a LAG member that is also a
    // port (or another LAG's member) is caught whatever the order.
    let mut interfaces: BTreeMap<PortName, String> = out
        .keys()
        .map(|p| (p.clone(), format!("port {p}")))
        .collect();
    for l in intent.lags.iter().filter(|l| &l.switch == switch) {
        let name = PortName::new(l.name.as_str()).map_err(|e| SwitchError::Unsupported {
            port: l.name.to_string(),
            what: e.to_string(),
        })?;
        let port = Port {
            vlan: mode(&name, &l.profile)?,
            members: l.members.iter().cloned().collect(),
        };
        if out.contains_key(&name) {
            return Err(clash(
                &name,
                format!("LAG {} and a port or LAG of that name", l.name),
            ));
        }
        if let Some(by) = interfaces.get(&name) {
            return Err(clash(&name, format!("LAG {} and {by}", l.name)));
        }
        for m in &port.members {
            if let Some(by) = interfaces.insert(m.clone(), format!("member of LAG {}", l.name)) {
                return Err(clash(m, format!("member of LAG {} and {by}", l.name)));
            }
            if out.contains_key(m) {
                return Err(clash(m, format!("member of LAG {} and a LAG", l.name)));
            }
        }
        out.insert(name, port);
    }
    Ok(out)
}

/// One step of a plan: a port goes from `before` to `after` (`None` = not
/// on the switch). Its inverse is the same port going back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The port.
    pub port: PortName,
    /// What it is now (as observed when planned).
    pub before: Option<Port>,
    /// What it will be.
    pub after: Option<Port>,
}

/// The kind of a [`Change`], as an operator reads a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The port is put on the switch.
    Add,
    /// The port becomes (or changes) an access port.
    Retag,
    /// The port becomes (or changes) a trunk.
    Trunk,
    /// The port is taken off the switch.
    Remove,
    /// The port's VLAN settings are cleared (only as a rollback).
    Clear,
    /// The port's member interfaces change (a port becomes a bond, a bond
    /// gains or loses members, or stops being a bond). Its VLAN setting
    /// may change in the same step; the display shows both.
    Members,
}

impl Change {
    /// What kind of change this is.
    pub fn kind(&self) -> ChangeKind {
        match (&self.before, &self.after) {
            (None, _) => ChangeKind::Add,
            (Some(_), None) => ChangeKind::Remove,
            (Some(b), Some(a)) if b.members != a.members => ChangeKind::Members,
            (Some(_), Some(a)) => match a.vlan {
                PortConfig::Trunk { .. } => ChangeKind::Trunk,
                PortConfig::Access { .. } => ChangeKind::Retag,
                _ => ChangeKind::Clear,
            },
        }
    }

    /// Whether the change puts an interface on the port that it does not
    /// have before.
    pub fn claims_interfaces(&self) -> bool {
        match (&self.before, &self.after) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(b), Some(a)) => !a
                .interfaces(&self.port)
                .is_subset(&b.interfaces(&self.port)),
        }
    }

    /// The change that undoes this one.
    pub fn inverse(&self) -> Change {
        Change {
            port: self.port.clone(),
            before: self.after.clone(),
            after: self.before.clone(),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |c: &Option<Port>| match c {
            Some(c) => c.to_string(),
            None => "absent".to_owned(),
        };
        let kind = match self.kind() {
            ChangeKind::Add => "add",
            ChangeKind::Retag => "retag",
            ChangeKind::Trunk => "trunk",
            ChangeKind::Remove => "remove",
            ChangeKind::Clear => "clear",
            ChangeKind::Members => "members",
        };
        write!(
            f,
            "{kind} {}: {} -> {}",
            self.port,
            show(&self.before),
            show(&self.after)
        )
    }
}

/// An ordered list of changes.
pub type Plan = Vec<Change>;

/// The changes that turn `observed` into `desired`, so the same states
/// always give the same plan: first the changes that take no interface a
/// port does not have yet (removals, retags, a bond losing members), then
/// those that do (adds, a bond gaining members), each group in port-name
/// order. An interface moving between ports (a port becoming a LAG member)
/// is thus freed before it is claimed; a switch refuses an interface on two
/// ports. Ports on the switch that the intent does not name are removed: an
/// unassigned port on an Open vSwitch bridge would otherwise trunk every
/// VLAN.
pub fn diff(desired: &Ports, observed: &Ports) -> Plan {
    let ports: BTreeSet<&PortName> = desired.keys().chain(observed.keys()).collect();
    let (claims, frees): (Plan, Plan) = ports
        .into_iter()
        .filter_map(|port| {
            let before = observed.get(port);
            let after = desired.get(port);
            (before != after).then(|| Change {
                port: port.clone(),
                before: before.cloned(),
                after: after.cloned(),
            })
        })
        .partition(Change::claims_interfaces);
    frees.into_iter().chain(claims).collect()
}

/// A plan that failed midway: the step that failed, and what became of the
/// steps before it.
#[derive(Debug, thiserror::Error)]
#[error("{failed} failed; {} earlier step(s) rolled back{}", .rolled_back.len(),
    if .rollback_failed.is_empty() { String::new() } else {
        format!(", {} could not be rolled back: the switch needs attention", .rollback_failed.len())
    })]
pub struct ApplyError {
    /// The step that failed (nothing of it remains applied).
    pub failed: Change,
    /// Why.
    #[source]
    pub source: SwitchError,
    /// Earlier steps undone, in the order they were undone.
    pub rolled_back: Vec<Change>,
    /// Earlier steps whose undo failed too, with why.
    pub rollback_failed: Vec<(Change, SwitchError)>,
}

/// A switch the agent configures.
pub trait SwitchDriver: Send {
    /// The ports on the switch and what each carries now.
    fn observe(&mut self) -> impl Future<Output = Result<Ports, SwitchError>> + Send;

    /// Applies one change atomically: all of it takes effect or none. A
    /// step that fails leaves the switch as it was.
    fn apply_change(
        &mut self,
        change: &Change,
    ) -> impl Future<Output = Result<(), SwitchError>> + Send;

    /// The changes that would make the switch carry `desired`.
    fn plan(&mut self, desired: &Ports) -> impl Future<Output = Result<Plan, SwitchError>> + Send {
        async move { Ok(diff(desired, &self.observe().await?)) }
    }

    /// Applies `plan` in order. When a step fails, the steps applied before
    /// it are undone newest first (best effort: each undo is logged, and
    /// one that fails is reported, not retried). Returns the steps applied.
    fn apply(&mut self, plan: &[Change]) -> impl Future<Output = Result<Plan, ApplyError>> + Send {
        async move {
            let mut applied: Plan = Vec::new();
            for change in plan {
                tracing::info!(%change, "switch: applying");
                if let Err(source) = self.apply_change(change).await {
                    tracing::warn!(%change, error = %source, "switch: step failed, rolling back");
                    let mut rolled_back = Vec::new();
                    let mut rollback_failed = Vec::new();
                    for done in applied.iter().rev() {
                        let undo = done.inverse();
                        match self.apply_change(&undo).await {
                            Ok(()) => {
                                tracing::info!(change = %undo, "switch: rolled back");
                                rolled_back.push(undo);
                            }
                            Err(e) => {
                                tracing::error!(change = %undo, error = %e, "switch: rollback failed");
                                rollback_failed.push((undo, e));
                            }
                        }
                    }
                    return Err(ApplyError {
                        failed: change.clone(),
                        source,
                        rolled_back,
                        rollback_failed,
                    });
                }
                applied.push(change.clone());
            }
            Ok(applied)
        }
    }

    /// What differs between `desired` and the switch: empty when the switch
    /// does what was applied.
    fn drift(&mut self, desired: &Ports) -> impl Future<Output = Result<Plan, SwitchError>> + Send {
        self.plan(desired)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use dv_protocol::{Lag, LagName, PortAssignment, PortProfile, PortProfileName};

    fn port(p: &str) -> PortName {
        PortName::new(p).unwrap()
    }

    fn vlan(v: u16) -> VlanId {
        VlanId::new(v).unwrap()
    }

    fn access(v: u16) -> Port {
        Port::single(PortConfig::Access { vlan: vlan(v) })
    }

    fn bond(v: u16, members: &[&str]) -> Port {
        Port {
            vlan: PortConfig::Access { vlan: vlan(v) },
            members: members.iter().map(|m| port(m)).collect(),
        }
    }

    fn lag(switch: &str, name: &str, members: &[&str], profile: &str) -> Lag {
        Lag {
            name: LagName::new(name).unwrap(),
            switch: SwitchName::new(switch).unwrap(),
            members: members.iter().map(|m| port(m)).collect(),
            profile: PortProfileName::new(profile).unwrap(),
        }
    }

    fn intent(assignments: Vec<PortAssignment>, lags: Vec<Lag>) -> SiteIntent {
        SiteIntent {
            networks: vec![],
            profiles: profiles(),
            assignments,
            lags,
        }
    }

    fn assign(switch: &str, p: &str, profile: &str) -> PortAssignment {
        PortAssignment {
            switch: SwitchName::new(switch).unwrap(),
            port: port(p),
            profile: PortProfileName::new(profile).unwrap(),
            machine: None,
            nic: None,
        }
    }

    fn profiles() -> Vec<PortProfile> {
        vec![
            PortProfile {
                name: PortProfileName::new("server").unwrap(),
                mode: PortMode::Access { vlan: vlan(10) },
            },
            PortProfile {
                name: PortProfileName::new("uplink").unwrap(),
                mode: PortMode::Trunk {
                    allowed: vec![vlan(20), vlan(10)],
                    native: Some(vlan(10)),
                },
            },
        ]
    }

    #[test]
    fn desired_ports_take_one_switch_and_the_profiles_modes() {
        let assignments = vec![
            assign("leaf-1", "swp1", "server"),
            assign("leaf-1", "swp49", "uplink"),
            assign("leaf-2", "swp1", "uplink"),
        ];
        let lags = vec![
            lag("leaf-1", "bond1", &["swp3", "swp2"], "uplink"),
            lag("leaf-2", "bond9", &["swp3", "swp4"], "server"),
        ];
        let ports = desired_ports(
            &intent(assignments, lags),
            &SwitchName::new("leaf-1").unwrap(),
        )
        .unwrap();
        let trunk = PortConfig::Trunk {
            allowed: BTreeSet::from([vlan(10), vlan(20)]),
            native: Some(vlan(10)),
        };
        assert_eq!(
            ports,
            Ports::from([
                (
                    port("bond1"),
                    Port {
                        vlan: trunk.clone(),
                        members: BTreeSet::from([port("swp2"), port("swp3")]),
                    }
                ),
                (port("swp1"), access(10)),
                (port("swp49"), Port::single(trunk)),
            ])
        );
        let leaf1 = SwitchName::new("leaf-1").unwrap();
        let e = desired_ports(
            &intent(vec![assign("leaf-1", "swp2", "nope")], vec![]),
            &leaf1,
        )
        .unwrap_err();
        assert!(e.to_string().contains("profile nope"), "{e}");
        let e = desired_ports(
            &intent(vec![], vec![lag("leaf-1", "po1", &["swp1"], "nope")]),
            &leaf1,
        )
        .unwrap_err();
        assert!(e.to_string().contains("profile nope"), "{e}");
        // A name claimed twice is refused, never overwritten.
        for (assignments, lags) in [
            (
                vec![assign("leaf-1", "swp1", "server")],
                vec![lag("leaf-1", "swp1", &["swp2"], "server")],
            ),
            (
                vec![assign("leaf-1", "swp1", "server")],
                vec![lag("leaf-1", "po1", &["swp1"], "server")],
            ),
            (
                vec![],
                vec![
                    lag("leaf-1", "po1", &["swp1"], "server"),
                    lag("leaf-1", "po2", &["swp1"], "server"),
                ],
            ),
            (
                vec![],
                vec![
                    lag("leaf-1", "po1", &["swp1"], "server"),
                    lag("leaf-1", "po2", &["po1"], "server"),
                ],
            ),
        ] {
            let e = desired_ports(&intent(assignments, lags), &leaf1).unwrap_err();
            assert!(matches!(e, SwitchError::NameClash { .. }), "{e}");
        }
    }

    #[test]
    fn diff_frees_then_claims_each_in_port_order() {
        let desired = Ports::from([
            (port("a"), access(10)),
            (port("b"), access(20)),
            (
                port("c"),
                Port::single(PortConfig::Trunk {
                    allowed: BTreeSet::from([vlan(10)]),
                    native: None,
                }),
            ),
            (port("e"), access(10)),
        ]);
        let observed = Ports::from([
            (port("b"), access(10)),
            (port("c"), Port::single(PortConfig::Unset)),
            (port("d"), access(10)),
            (port("e"), access(10)),
        ]);
        let plan = diff(&desired, &observed);
        let kinds: Vec<(&str, ChangeKind)> =
            plan.iter().map(|c| (c.port.as_str(), c.kind())).collect();
        assert_eq!(
            kinds,
            [
                ("b", ChangeKind::Retag),
                ("c", ChangeKind::Trunk),
                ("d", ChangeKind::Remove),
                ("a", ChangeKind::Add),
            ]
        );
        assert_eq!(plan[0].to_string(), "retag b: access 10 -> access 20");
        assert_eq!(plan[3].to_string(), "add a: absent -> access 10");
        assert!(diff(&desired, &desired).is_empty());
    }

    #[test]
    fn diff_with_members_frees_interfaces_before_claiming_them() {
        // h1a, a port of its own, becomes a member of bond1; bond2 loses
        // h2b and is re-tagged; bond3 gains a member.
        let observed = Ports::from([
            (port("bond2"), bond(10, &["h2a", "h2b"])),
            (port("bond3"), bond(10, &["h3a"])),
            (port("h1a"), access(10)),
        ]);
        let desired = Ports::from([
            (port("bond1"), bond(10, &["h1a", "h1b"])),
            (port("bond2"), bond(20, &["h2a"])),
            (port("bond3"), bond(10, &["h3a", "h3b"])),
        ]);
        let plan = diff(&desired, &observed);
        let shown: Vec<String> = plan.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "members bond2: access 10 over [h2a, h2b] -> access 20 over [h2a]",
                "remove h1a: access 10 -> absent",
                "add bond1: absent -> access 10 over [h1a, h1b]",
                "members bond3: access 10 over [h3a] -> access 10 over [h3a, h3b]",
            ]
        );
        assert_eq!(plan[0].kind(), ChangeKind::Members);
        assert!(!plan[0].claims_interfaces() && !plan[1].claims_interfaces());
        assert!(plan[2].claims_interfaces() && plan[3].claims_interfaces());
        // The same states, the same plan; applied, nothing left to do.
        assert_eq!(diff(&desired, &observed), plan);
        assert!(diff(&desired, &desired).is_empty());
        // A bond of one member named like the port is still a bond: its
        // members differ from a plain port's.
        let one = Ports::from([(port("x"), bond(10, &["x"]))]);
        let plain = Ports::from([(port("x"), access(10))]);
        let c = diff(&one, &plain);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].kind(), ChangeKind::Members);
        assert!(!c[0].claims_interfaces());
        // Undoing a bond's growth is a shrink, and the other way round.
        assert!(!plan[3].inverse().claims_interfaces());
        assert!(plan[0].inverse().claims_interfaces());
        assert_eq!(plan[3].inverse().inverse(), plan[3]);
    }

    #[test]
    fn the_inverse_undoes() {
        let c = Change {
            port: port("a"),
            before: Some(Port::single(PortConfig::Unset)),
            after: Some(access(10)),
        };
        assert_eq!(c.inverse().kind(), ChangeKind::Clear);
        assert_eq!(c.inverse().inverse(), c);
        let add = Change {
            port: port("a"),
            before: None,
            after: Some(access(10)),
        };
        assert_eq!(add.inverse().kind(), ChangeKind::Remove);
    }

    /// A switch in memory that fails on a chosen port, to check the
    /// rollback loop without a real switch.
    #[derive(Debug, Default)]
    struct Fake {
        ports: Ports,
        fail_on: Option<PortName>,
    }

    impl SwitchDriver for Fake {
        async fn observe(&mut self) -> Result<Ports, SwitchError> {
            Ok(self.ports.clone())
        }

        async fn apply_change(&mut self, change: &Change) -> Result<(), SwitchError> {
            if self.fail_on.as_ref() == Some(&change.port) {
                return Err(SwitchError::PortGone {
                    port: change.port.clone(),
                });
            }
            match &change.after {
                Some(c) => self.ports.insert(change.port.clone(), c.clone()),
                None => self.ports.remove(&change.port),
            };
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failed_step_rolls_back_the_earlier_ones() {
        let before = Ports::from([(port("a"), access(10)), (port("b"), access(10))]);
        let mut sw = Fake {
            ports: before.clone(),
            fail_on: Some(port("c")),
        };
        let desired = Ports::from([
            (port("a"), access(20)),
            (port("b"), access(20)),
            (port("c"), access(20)),
        ]);
        let plan = sw.plan(&desired).await.unwrap();
        let e = sw.apply(&plan).await.unwrap_err();
        assert_eq!(e.failed.port, port("c"));
        let undone: Vec<&str> = e.rolled_back.iter().map(|c| c.port.as_str()).collect();
        assert_eq!(undone, ["b", "a"]);
        assert!(e.rollback_failed.is_empty());
        assert_eq!(sw.observe().await.unwrap(), before);

        sw.fail_on = None;
        let applied = sw.apply(&plan).await.unwrap();
        assert_eq!(applied.len(), 3);
        assert!(sw.drift(&desired).await.unwrap().is_empty());
    }
}
