//! SONiC: the switch's ports as a `config_db.json` fragment.
//!
//! This file owns SONiC's names and tables. Tables written (the keys and
//! fields of SONiC's YANG models `sonic-vlan`, `sonic-portchannel`,
//! `sonic-port`):
//!
//! - `VLAN`: `"Vlan10": {"vlanid": "10", "description": "<network>"}`;
//! - `VLAN_MEMBER`: `"Vlan10|Ethernet0": {"tagging_mode": "untagged"}`
//!   (an access VLAN or a trunk's native VLAN) or `"tagged"`; a LAG is a
//!   member as `PortChannel<N>`, its member ports never are;
//! - `PORTCHANNEL`: `"PortChannel1": {"admin_status": "up", "min_links": "1"}`;
//!   LACP runs active, SONiC's only mode (teamd's LACP runner);
//! - `PORTCHANNEL_MEMBER`: `"PortChannel1|Ethernet8": {}`;
//! - `PORT`: `"Ethernet0": {"admin_status": "up"}` for every port used.
//!
//! It is a fragment: `sonic-cfggen -j <file> --write-to-db` (what `config
//! load` runs) merges fields into existing entries, so a `PORT` entry keeps
//! its lanes and speed from the platform. SONiC's own rules the renderer
//! enforces: front-panel ports are `Ethernet<N>`, port-channels
//! `PortChannel<N>` with N of at most four digits, and VLAN 1 is not
//! configurable (`sonic-vlan` accepts `Vlan2`..`Vlan4094`).

use std::collections::BTreeMap;

use super::{Mode, NaturalKey, RenderError, SwitchView, Vendor, prefix_number};

const VENDOR: Vendor = Vendor::Sonic;

/// The highest port-channel number (`PortChannel[0-9]{1,4}`).
pub const MAX_PORTCHANNEL: u32 = 9999;

/// Whether SONiC names a front-panel port `name`: `Ethernet<N>`.
pub fn port_ok(name: &str) -> bool {
    prefix_number(name, "Ethernet")
}

type Table = BTreeMap<NaturalKey, BTreeMap<&'static str, String>>;

fn key(s: String) -> NaturalKey {
    NaturalKey(s)
}

fn fields<const N: usize>(f: [(&'static str, &str); N]) -> BTreeMap<&'static str, String> {
    f.into_iter().map(|(k, v)| (k, v.to_owned())).collect()
}

/// Renders `view` as a `config_db.json` fragment.
pub fn render(view: &SwitchView) -> Result<String, RenderError> {
    view.check_ports(VENDOR, port_ok, "Ethernet<N> (Ethernet0, Ethernet48)")?;
    let lags = view.numbered_lags(VENDOR, MAX_PORTCHANNEL)?;
    if let Some(vlan) = view.vlans.keys().find(|v| v.get() == 1) {
        return Err(RenderError::Vlan {
            vendor: VENDOR,
            switch: view.switch.clone(),
            vlan: *vlan,
            reason: "SONiC reserves VLAN 1 (its configuration accepts Vlan2 to Vlan4094); \
                     move the network to another VLAN",
        });
    }

    let mut vlan = Table::new();
    for (id, network) in &view.vlans {
        vlan.insert(
            key(format!("Vlan{id}")),
            fields([
                ("vlanid", &id.to_string()),
                ("description", network.as_str()),
            ]),
        );
    }

    let mut vlan_member = Table::new();
    let mut member = |port: &str, mode: &Mode| {
        let untagged = mode.untagged();
        for id in mode.vlans() {
            let tagging = if Some(id) == untagged {
                "untagged"
            } else {
                "tagged"
            };
            vlan_member.insert(
                key(format!("Vlan{id}|{port}")),
                fields([("tagging_mode", tagging)]),
            );
        }
    };
    for (port, mode) in &view.ports {
        member(port.as_str(), mode);
    }
    let mut portchannel = Table::new();
    let mut portchannel_member = Table::new();
    for (number, lag) in &lags {
        let name = format!("PortChannel{number}");
        member(&name, &lag.mode);
        for m in &lag.members {
            portchannel_member.insert(key(format!("{name}|{m}")), BTreeMap::new());
        }
        portchannel.insert(
            key(name),
            fields([("admin_status", "up"), ("min_links", "1")]),
        );
    }

    let port: Table = view
        .physical_ports()
        .into_iter()
        .map(|p| (key(p.to_string()), fields([("admin_status", "up")])))
        .collect();

    // Empty tables are left out: writing one changes nothing, and an
    // operator reading the fragment sees only what is configured.
    let mut db: BTreeMap<&'static str, Table> = BTreeMap::new();
    for (name, table) in [
        ("PORT", port),
        ("PORTCHANNEL", portchannel),
        ("PORTCHANNEL_MEMBER", portchannel_member),
        ("VLAN", vlan),
        ("VLAN_MEMBER", vlan_member),
    ] {
        if !table.is_empty() {
            db.insert(name, table);
        }
    }
    let mut text = serde_json::to_string_pretty(&db).map_err(|e| RenderError::Serialize {
        vendor: VENDOR,
        source: Box::new(e),
    })?;
    text.push('\n');
    Ok(text)
}
