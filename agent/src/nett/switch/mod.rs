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
//! port profiles and the assignments of one switch. LAGs are not pushed yet.
//!
//! | file | holds |
//! | --- | --- |
//! | `mod.rs` | the model ([`PortConfig`], [`Change`], [`Plan`]), [`diff`], the trait and its apply/rollback loop |
//! | `ovsdb.rs` | the OVSDB (RFC 7047) JSON-RPC client |
//! | `ovs.rs` | the Open vSwitch driver over OVSDB |
//! | `netlink.rs` | the Linux VLAN-aware bridge driver over rtnetlink |

pub mod netlink;
pub mod ovs;
pub mod ovsdb;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;

use dv_protocol::{PortAssignment, PortMode, PortName, PortProfile, SwitchName, VlanId};

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

/// Ports of one switch and what each carries; a port not in the map is
/// absent from the switch (observed) or not to be on it (desired).
pub type Ports = BTreeMap<PortName, PortConfig>;

/// The desired ports of `switch`: each of its assignments with the mode of
/// the profile it names. The intent is assumed validated
/// ([`dv_protocol::SiteIntent::validate`]); a dangling profile is still
/// refused here rather than silently dropping the port.
pub fn desired_ports(
    profiles: &[PortProfile],
    assignments: &[PortAssignment],
    switch: &SwitchName,
) -> Result<Ports, SwitchError> {
    let mut out = Ports::new();
    for a in assignments.iter().filter(|a| &a.switch == switch) {
        let profile = profiles
            .iter()
            .find(|p| p.name == a.profile)
            .ok_or_else(|| SwitchError::UnknownProfile {
                switch: a.switch.clone(),
                port: a.port.clone(),
                profile: a.profile.to_string(),
            })?;
        out.insert(a.port.clone(), PortConfig::from(&profile.mode));
    }
    Ok(out)
}

/// One step of a plan: a port goes from `before` to `after` (`None` = not
/// on the switch). Its inverse is the same port going back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The port.
    pub port: PortName,
    /// What it carries now (as observed when planned).
    pub before: Option<PortConfig>,
    /// What it will carry.
    pub after: Option<PortConfig>,
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
}

impl Change {
    /// What kind of change this is.
    pub fn kind(&self) -> ChangeKind {
        match (&self.before, &self.after) {
            (None, _) => ChangeKind::Add,
            (Some(_), None) => ChangeKind::Remove,
            (Some(_), Some(PortConfig::Trunk { .. })) => ChangeKind::Trunk,
            (Some(_), Some(PortConfig::Access { .. })) => ChangeKind::Retag,
            (Some(_), Some(_)) => ChangeKind::Clear,
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
        let show = |c: &Option<PortConfig>| match c {
            Some(c) => c.to_string(),
            None => "absent".to_owned(),
        };
        let kind = match self.kind() {
            ChangeKind::Add => "add",
            ChangeKind::Retag => "retag",
            ChangeKind::Trunk => "trunk",
            ChangeKind::Remove => "remove",
            ChangeKind::Clear => "clear",
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

/// The changes that turn `observed` into `desired`, in port-name order so
/// the same states always give the same plan. Ports on the switch that the
/// intent does not name are removed: an unassigned port on an Open vSwitch
/// bridge would otherwise trunk every VLAN.
pub fn diff(desired: &Ports, observed: &Ports) -> Plan {
    let ports: BTreeSet<&PortName> = desired.keys().chain(observed.keys()).collect();
    ports
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
        .collect()
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
    use dv_protocol::PortProfileName;

    fn port(p: &str) -> PortName {
        PortName::new(p).unwrap()
    }

    fn vlan(v: u16) -> VlanId {
        VlanId::new(v).unwrap()
    }

    fn access(v: u16) -> PortConfig {
        PortConfig::Access { vlan: vlan(v) }
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
        let ports = desired_ports(
            &profiles(),
            &assignments,
            &SwitchName::new("leaf-1").unwrap(),
        )
        .unwrap();
        assert_eq!(
            ports,
            Ports::from([
                (port("swp1"), access(10)),
                (
                    port("swp49"),
                    PortConfig::Trunk {
                        allowed: BTreeSet::from([vlan(10), vlan(20)]),
                        native: Some(vlan(10)),
                    }
                ),
            ])
        );
        let e = desired_ports(
            &profiles(),
            &[assign("leaf-1", "swp2", "nope")],
            &SwitchName::new("leaf-1").unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("profile nope"), "{e}");
    }

    #[test]
    fn diff_adds_retags_trunks_and_removes_in_port_order() {
        let desired = Ports::from([
            (port("a"), access(10)),
            (port("b"), access(20)),
            (
                port("c"),
                PortConfig::Trunk {
                    allowed: BTreeSet::from([vlan(10)]),
                    native: None,
                },
            ),
            (port("e"), access(10)),
        ]);
        let observed = Ports::from([
            (port("b"), access(10)),
            (port("c"), PortConfig::Unset),
            (port("d"), access(10)),
            (port("e"), access(10)),
        ]);
        let plan = diff(&desired, &observed);
        let kinds: Vec<(&str, ChangeKind)> =
            plan.iter().map(|c| (c.port.as_str(), c.kind())).collect();
        assert_eq!(
            kinds,
            [
                ("a", ChangeKind::Add),
                ("b", ChangeKind::Retag),
                ("c", ChangeKind::Trunk),
                ("d", ChangeKind::Remove),
            ]
        );
        assert_eq!(plan[1].to_string(), "retag b: access 10 -> access 20");
        assert_eq!(plan[0].to_string(), "add a: absent -> access 10");
        assert!(diff(&desired, &desired).is_empty());
    }

    #[test]
    fn the_inverse_undoes() {
        let c = Change {
            port: port("a"),
            before: Some(PortConfig::Unset),
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
