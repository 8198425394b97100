//! Arista EOS: the switch's ports as configuration text, in the shape
//! `show running-config` prints (three-space indents, `!` between blocks),
//! for a configure session or `copy <file> running-config`.
//!
//! This file owns EOS's names and commands:
//!
//! - `vlan 10` / `name <network>` for each VLAN the switch's ports use;
//! - access: `switchport mode access`, `switchport access vlan 10`;
//! - trunk: `switchport mode trunk`, `switchport trunk allowed vlan
//!   10,20-22`, and `switchport trunk native vlan 10`; a trunk without a
//!   native VLAN gets `switchport trunk native vlan tag`, because EOS would
//!   otherwise put untagged frames in VLAN 1 where the intent drops them;
//! - LAG: `interface Port-Channel<N>` carries the profile, each member
//!   `channel-group <N> mode active` (LACP, active);
//! - every interface `no shutdown`.
//!
//! Front-panel ports are `Ethernet<N>`, `Ethernet<N>/<N>` or
//! `Ethernet<N>/<N>/<N>` (fixed, modular or broken-out ports), written in
//! full; port-channels are numbered 1 to 2000.

use std::collections::BTreeSet;

use dv_protocol::VlanId;

use super::{Mode, RenderError, SwitchView, Vendor};

const VENDOR: Vendor = Vendor::Eos;

/// The highest port-channel number EOS takes.
pub const MAX_PORT_CHANNEL: u32 = 2000;

/// The longest VLAN name EOS takes.
pub const MAX_VLAN_NAME: usize = 32;

/// Whether EOS names a front-panel port `name`: `Ethernet` and one to three
/// slash-separated numbers.
pub fn port_ok(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("Ethernet") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    parts.len() <= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `10,20-22`: VLANs as EOS lists them, consecutive ones as ranges.
pub fn vlan_list(vlans: &BTreeSet<VlanId>) -> String {
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for v in vlans.iter().map(|v| v.get()) {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == v => *last = v,
            _ => runs.push((v, v)),
        }
    }
    let parts: Vec<String> = runs
        .into_iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    parts.join(",")
}

fn switchport(out: &mut Vec<String>, mode: &Mode) {
    match mode {
        Mode::Access(vlan) => {
            out.push("   switchport mode access".into());
            out.push(format!("   switchport access vlan {vlan}"));
        }
        Mode::Trunk { allowed, native } => {
            out.push("   switchport mode trunk".into());
            out.push(format!(
                "   switchport trunk allowed vlan {}",
                vlan_list(allowed)
            ));
            match native {
                Some(n) => out.push(format!("   switchport trunk native vlan {n}")),
                None => out.push("   switchport trunk native vlan tag".into()),
            }
        }
    }
}

/// Renders `view` as EOS configuration text.
pub fn render(view: &SwitchView) -> Result<String, RenderError> {
    view.check_ports(
        VENDOR,
        port_ok,
        "Ethernet<N>, Ethernet<N>/<N> or Ethernet<N>/<N>/<N> (Ethernet1, Ethernet49/1), in full",
    )?;
    let lags = view.numbered_lags(VENDOR, MAX_PORT_CHANNEL)?;
    if let Some((vlan, _)) = view
        .vlans
        .iter()
        .find(|(_, n)| n.as_str().len() > MAX_VLAN_NAME)
    {
        return Err(RenderError::Vlan {
            vendor: VENDOR,
            switch: view.switch.clone(),
            vlan: *vlan,
            reason: "EOS VLAN names are at most 32 characters and the VLAN is named after its \
                     network; shorten the network's name",
        });
    }

    let mut out = vec![format!(
        "! switch {}: ports rendered by Dataverket",
        view.switch
    )];
    for (id, network) in &view.vlans {
        out.push("!".into());
        out.push(format!("vlan {id}"));
        out.push(format!("   name {network}"));
    }
    for port in view.physical_ports() {
        out.push("!".into());
        out.push(format!("interface {port}"));
        if let Some((_, mode)) = view.ports.iter().find(|(p, _)| p == port) {
            switchport(&mut out, mode);
        } else if let Some((n, _)) = lags.iter().find(|(_, l)| l.members.contains(port)) {
            out.push(format!("   channel-group {n} mode active"));
        }
        out.push("   no shutdown".into());
    }
    for (n, lag) in &lags {
        out.push("!".into());
        out.push(format!("interface Port-Channel{n}"));
        out.push(format!("   description LAG {}", lag.name));
        switchport(&mut out, &lag.mode);
        out.push("   no shutdown".into());
    }
    out.push("!".into());
    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}
