//! NVIDIA Cumulus Linux: the switch's ports as NVUE YAML, the document
//! `nv config show -o yaml` prints and `nv config patch <file>` (then `nv
//! config apply`) loads: a list holding one `set:` document.
//!
//! This file owns NVUE's names and paths. Everything sits in the default
//! VLAN-aware bridge `br_default`:
//!
//! - `bridge.domain.br_default.vlan.'10': {}` for each VLAN the switch's
//!   ports use (NVUE has no VLAN name, so the network name is not carried);
//! - access: `interface.swp1.bridge.domain.br_default.access: 10`;
//! - trunk: `...br_default.vlan: ['10', '20']` and `untagged: 10`, or
//!   `untagged: none` when the intent has no native VLAN (untagged frames
//!   dropped);
//! - LAG: `interface.<lag>` with `type: bond`, `bond.member.<swp>: {}` and
//!   `bond.mode: lacp` (Cumulus runs LACP active); the bond carries the
//!   bridge membership. `lacp-bypass` stays at its default (off): a bypassed
//!   bond forwards before LACP agrees, which the intent never asks for;
//! - every port and bond `link.state: up`, ports `type: swp`.
//!
//! Front-panel ports are `swp<N>` or, broken out, `swp<N>s<N>`. The bond is
//! named after the LAG, so the LAG name must be a Linux interface name (at
//! most 15 characters) that is not itself a port name.
//!
//! The YAML is built from typed values and `BTreeMap`s and written by
//! `yaml_serde`, so quoting (`'10'` as a map key) is the serializer's, not
//! ours.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Mode, NaturalKey, RenderError, SwitchView, Vendor};

const VENDOR: Vendor = Vendor::Nvue;

/// The bridge every port joins (Cumulus's default VLAN-aware bridge).
pub const BRIDGE: &str = "br_default";

/// Linux's longest interface name (`IFNAMSIZ` less its NUL).
pub const MAX_IFNAME: usize = 15;

/// Whether Cumulus names a front-panel port `name`: `swp<N>` or
/// `swp<N>s<N>` (a breakout lane).
pub fn port_ok(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let Some(rest) = name.strip_prefix("swp") else {
        return false;
    };
    match rest.split_once('s') {
        Some((port, lane)) => digits(port) && digits(lane),
        None => digits(rest),
    }
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Document {
    set: Set,
}

#[derive(Serialize)]
struct Set {
    bridge: Bridge,
    interface: BTreeMap<NaturalKey, Interface>,
}

#[derive(Serialize)]
struct Bridge {
    domain: BTreeMap<&'static str, Domain>,
}

#[derive(Serialize)]
struct Domain {
    vlan: BTreeMap<NaturalKey, Empty>,
}

#[derive(Serialize)]
struct Interface {
    #[serde(skip_serializing_if = "Option::is_none")]
    bond: Option<Bond>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bridge: Option<Membership>,
    link: Link,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Bond {
    member: BTreeMap<NaturalKey, Empty>,
    mode: &'static str,
}

#[derive(Serialize)]
struct Link {
    state: &'static str,
}

#[derive(Serialize)]
struct Membership {
    domain: BTreeMap<&'static str, Port>,
}

#[derive(Serialize)]
struct Port {
    #[serde(skip_serializing_if = "Option::is_none")]
    access: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    untagged: Option<Untagged>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<Vec<String>>,
}

/// A trunk's native VLAN, or `none`.
#[derive(Serialize)]
#[serde(untagged)]
enum Untagged {
    Vlan(u16),
    Word(&'static str),
}

fn membership(mode: &Mode) -> Membership {
    let port = match mode {
        Mode::Access(v) => Port {
            access: Some(v.get()),
            untagged: None,
            vlan: None,
        },
        Mode::Trunk { allowed, native } => Port {
            access: None,
            untagged: Some(match native {
                Some(n) => Untagged::Vlan(n.get()),
                None => Untagged::Word("none"),
            }),
            vlan: Some(allowed.iter().map(ToString::to_string).collect()),
        },
    };
    Membership {
        domain: BTreeMap::from([(BRIDGE, port)]),
    }
}

fn up() -> Link {
    Link { state: "up" }
}

/// Renders `view` as NVUE YAML.
pub fn render(view: &SwitchView) -> Result<String, RenderError> {
    view.check_ports(VENDOR, port_ok, "swp<N> or swp<N>s<N> (swp1, swp49s0)")?;
    for lag in &view.lags {
        let name = lag.name.as_str();
        let reason = if name.len() > MAX_IFNAME {
            Some(format!(
                "the bond is named after the LAG and Linux interface names are at most \
                 {MAX_IFNAME} characters; shorten it (bond1)"
            ))
        } else if port_ok(name) {
            Some("the name is a port name; name the LAG like bond1".to_owned())
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(RenderError::LagName {
                vendor: VENDOR,
                switch: view.switch.clone(),
                lag: lag.name.clone(),
                reason,
            });
        }
    }

    let mut interface = BTreeMap::new();
    for (port, mode) in &view.ports {
        interface.insert(
            NaturalKey(port.to_string()),
            Interface {
                bond: None,
                bridge: Some(membership(mode)),
                link: up(),
                kind: "swp",
            },
        );
    }
    for lag in &view.lags {
        for m in &lag.members {
            interface.insert(
                NaturalKey(m.to_string()),
                Interface {
                    bond: None,
                    bridge: None,
                    link: up(),
                    kind: "swp",
                },
            );
        }
        interface.insert(
            NaturalKey(lag.name.to_string()),
            Interface {
                bond: Some(Bond {
                    member: lag
                        .members
                        .iter()
                        .map(|m| (NaturalKey(m.to_string()), Empty {}))
                        .collect(),
                    mode: "lacp",
                }),
                bridge: Some(membership(&lag.mode)),
                link: up(),
                kind: "bond",
            },
        );
    }
    let vlan = view
        .vlans
        .keys()
        .map(|v| (NaturalKey(v.to_string()), Empty {}))
        .collect();
    let doc = vec![Document {
        set: Set {
            bridge: Bridge {
                domain: BTreeMap::from([(BRIDGE, Domain { vlan })]),
            },
            interface,
        },
    }];
    yaml_serde::to_string(&doc).map_err(|e| RenderError::Serialize {
        vendor: VENDOR,
        source: Box::new(e),
    })
}
