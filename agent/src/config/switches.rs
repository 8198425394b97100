//! `[[switches]]`: the switches this agent configures from the site's port
//! intent, each with its driver (Open vSwitch over OVSDB, or a Linux
//! VLAN-aware bridge over netlink) and how often drift is checked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dv_protocol::SwitchName;

use super::error::Report;
use super::values::duration;
use super::wire;

/// `drift_interval` when unset.
pub(crate) const DEFAULT_DRIFT_INTERVAL: Duration = Duration::from_secs(60);

/// One `[[switches]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// The switch's name, as port assignments name it.
    pub name: SwitchName,
    /// How the agent reaches it.
    pub driver: SwitchDriverConfig,
    /// How often the agent reads the switch back and records drift.
    pub drift_interval: Duration,
}

/// A switch's driver and its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchDriverConfig {
    /// Open vSwitch: one bridge, over its OVSDB server.
    Ovs {
        /// Where its `ovsdb-server` listens.
        ovsdb: OvsdbRemote,
        /// The bridge whose ports the agent manages.
        bridge: String,
    },
    /// A Linux bridge with VLAN filtering on this host, over netlink.
    Netlink {
        /// The bridge.
        bridge: String,
    },
}

/// An OVSDB server address, as `ovs-vsctl --db` spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OvsdbRemote {
    /// `unix:<path>`
    Unix(PathBuf),
    /// `tcp:<host>:<port>`
    Tcp(String),
}

impl std::fmt::Display for OvsdbRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OvsdbRemote::Unix(p) => write!(f, "unix:{}", p.display()),
            OvsdbRemote::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

impl SwitchDriverConfig {
    /// `ovs` or `netlink`.
    pub fn kind(&self) -> &'static str {
        match self {
            SwitchDriverConfig::Ovs { .. } => "ovs",
            SwitchDriverConfig::Netlink { .. } => "netlink",
        }
    }

    /// What it manages, for an operator.
    pub fn target(&self) -> String {
        match self {
            SwitchDriverConfig::Ovs { ovsdb, bridge } => format!("bridge {bridge} over {ovsdb}"),
            SwitchDriverConfig::Netlink { bridge } => format!("bridge {bridge} on this host"),
        }
    }
}

fn remote(text: &str, base_dir: &Path) -> Result<OvsdbRemote, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("unix: needs the socket's path (unix:/run/openvswitch/db.sock)".into());
        }
        return Ok(OvsdbRemote::Unix(base_dir.join(path)));
    }
    if let Some(addr) = text.strip_prefix("tcp:") {
        let ok = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            return Err(format!(
                "{text:?} is not tcp:<host>:<port> (tcp:192.0.2.10:6640)"
            ));
        }
        return Ok(OvsdbRemote::Tcp(addr.to_owned()));
    }
    Err(format!(
        "{text:?} is not an OVSDB remote; write unix:<path> or tcp:<host>:<port>"
    ))
}

fn bridge(text: &str) -> Result<String, String> {
    // A Linux interface name (IFNAMSIZ 16 with the NUL), as OVS requires too.
    let ok = !text.is_empty()
        && text.len() <= 15
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a bridge name: 1 to 15 letters, digits, '-', '_' or '.'"
        ))
    }
}

/// `None` when any entry failed (each failure is reported).
pub(crate) fn switches(
    report: &mut Report,
    entries: &[wire::Switch],
    base_dir: &Path,
) -> Option<Vec<Switch>> {
    let mut out = Some(Vec::new());
    let mut names = HashSet::new();
    for (i, w) in entries.iter().enumerate() {
        let at = |field: &str| format!("switches[{i}].{field}");
        let mut fail = |field: &str, msg: String| report.push(at(field), msg);
        let name = match SwitchName::new(&w.name) {
            Ok(n) if !names.insert(n.clone()) => {
                fail("name", format!("switch {n} is listed twice"));
                None
            }
            Ok(n) => Some(n),
            Err(e) => {
                fail("name", e.to_string());
                None
            }
        };
        let bridge = bridge(&w.bridge).map_err(|m| fail("bridge", m)).ok();
        let driver = match (w.driver.as_str(), &w.ovsdb) {
            ("ovs", Some(r)) => match (remote(r, base_dir), bridge) {
                (Ok(ovsdb), Some(bridge)) => Some(SwitchDriverConfig::Ovs { ovsdb, bridge }),
                (Err(m), _) => {
                    fail("ovsdb", m);
                    None
                }
                _ => None,
            },
            ("ovs", None) => {
                fail(
                    "ovsdb",
                    "an ovs switch needs ovsdb = \"unix:<path>\" or \"tcp:<host>:<port>\"".into(),
                );
                None
            }
            ("netlink", None) => bridge.map(|bridge| SwitchDriverConfig::Netlink { bridge }),
            ("netlink", Some(_)) => {
                fail(
                    "ovsdb",
                    "a netlink switch is a bridge on this host; remove ovsdb".into(),
                );
                None
            }
            (other, _) => {
                fail(
                    "driver",
                    format!("{other:?} is not a switch driver; use \"ovs\" or \"netlink\""),
                );
                None
            }
        };
        let interval = match &w.drift_interval {
            None => Some(DEFAULT_DRIFT_INTERVAL),
            Some(t) => duration(t).map_err(|m| fail("drift_interval", m)).ok(),
        };
        match (name, driver, interval, &mut out) {
            (Some(name), Some(driver), Some(drift_interval), Some(list)) => list.push(Switch {
                name,
                driver,
                drift_interval,
            }),
            _ => out = None,
        }
    }
    out
}
