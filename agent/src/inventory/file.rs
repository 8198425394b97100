//! The inventory file: the YAML a site kit seeds a site with, and what
//! `GET /v1/inventory` gives back (without secrets).
//!
//! ```yaml
//! racks:
//!   - name: r01
//!     location: room 1, row A
//! machines:
//!   - serial: SN-0001
//!     vendor: Dell Inc.
//!     model: PowerEdge R650
//!     macs: ["52:54:00:99:00:01"]
//!     rack: r01
//!     position: 12
//!     role: worker
//!     bmc: { protocol: redfish, host: 10.99.0.201, port: 8400, user: admin, password: s3cret }
//!     cabling:
//!       - { nic: "52:54:00:99:00:01", switch: leaf-1, port: swp12, profile: server }
//! ```
//!
//! `cabling` is the site's topology: which switch port each NIC is cabled
//! to, and the port profile it gets. Importing it assigns those ports (the
//! port intent, as `dvnet port assign --machine --nic` does), so
//! provisioning the machine waits until the ports are applied.
//!
//! A machine is known by its serial number. Parsing checks the whole file
//! and reports every problem at once, each naming the entry it is in; a
//! file with any problem changes nothing.

use std::collections::HashSet;
use std::net::IpAddr;

use dv_protocol::{
    BmcHost, BmcProtocol, MacAddr, MachineRole, PortName, PortProfileName, SwitchName,
};
use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryFile {
    /// Racks, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub racks: Vec<RackEntry>,
    /// Machines, by serial number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub machines: Vec<MachineEntry>,
}

/// One rack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RackEntry {
    /// Its label on the floor.
    pub name: String,
    /// Where to find it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// One machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineEntry {
    /// Chassis serial number: the machine's identity in the file.
    pub serial: String,
    /// Vendor.
    #[serde(default)]
    pub vendor: String,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// NIC MACs; the first is the one it network-boots from.
    pub macs: Vec<String>,
    /// Rack name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    /// Lowest rack unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u16>,
    /// What it is for.
    #[serde(default = "unassigned")]
    pub role: MachineRole,
    /// Its BMC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bmc: Option<BmcEntry>,
    /// Which switch port each NIC is cabled to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cabling: Vec<CablingEntry>,
}

/// One NIC's cable: the switch port at its other end and the profile the
/// port gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CablingEntry {
    /// The NIC: one of the machine's MACs.
    pub nic: String,
    /// The switch, as the port intent names it.
    pub switch: String,
    /// The port, as the switch names it.
    pub port: String,
    /// The port profile it gets (defined beforehand: `dvnet profile set`).
    pub profile: String,
}

/// A cabling entry with its values parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cable {
    /// The NIC.
    pub nic: MacAddr,
    /// The switch.
    pub switch: SwitchName,
    /// The port.
    pub port: PortName,
    /// The profile.
    pub profile: PortProfileName,
}

fn unassigned() -> MachineRole {
    MachineRole::Unassigned
}

/// A machine's BMC and how to log in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BmcEntry {
    /// redfish or ipmi.
    pub protocol: BmcProtocol,
    /// IP address or DNS name.
    pub host: String,
    /// Port, when not the protocol's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Redfish only: `https` (the default) or `http` (emulators, labs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<Scheme>,
    /// Login user.
    pub user: String,
    /// Login password: stored encrypted under the site key, never exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// How a Redfish BMC is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// HTTPS.
    Https,
    /// Plain HTTP.
    Http,
}

impl Scheme {
    /// `https` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

/// A machine entry with its values checked and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedMachine {
    /// As written.
    pub entry: MachineEntry,
    /// Parsed MACs.
    pub macs: Vec<MacAddr>,
    /// Parsed BMC host.
    pub bmc_host: Option<BmcHost>,
    /// Parsed cabling.
    pub cabling: Vec<Cable>,
}

/// Highest rack unit accepted (the tallest racks in use are 58U).
const MAX_POSITION: u16 = 60;

impl InventoryFile {
    /// Parses YAML. Errors name the line and column.
    pub fn parse(text: &str) -> Result<InventoryFile, Vec<String>> {
        yaml_serde::from_str(text).map_err(|e| vec![e.to_string()])
    }

    /// Renders YAML.
    pub fn render(&self) -> String {
        let body = yaml_serde::to_string(self).unwrap_or_default();
        format!(
            "# Dataverket inventory. BMC passwords are never exported: add them\n\
             # before importing this file elsewhere.\n{body}"
        )
    }

    /// Checks everything; returns the machines parsed, or every problem.
    pub fn check(&self) -> Result<Vec<CheckedMachine>, Vec<String>> {
        let mut problems = Vec::new();
        let mut racks = HashSet::new();
        for (i, r) in self.racks.iter().enumerate() {
            let at = format!("racks[{i}] ({})", r.name);
            if r.name.trim().is_empty() {
                problems.push(format!("racks[{i}]: name is empty"));
            } else if !racks.insert(r.name.as_str()) {
                problems.push(format!("{at}: a second rack with this name"));
            }
        }
        let mut serials = HashSet::new();
        let mut all_macs = HashSet::new();
        let mut all_ports = HashSet::new();
        let mut checked = Vec::new();
        for (i, m) in self.machines.iter().enumerate() {
            let at = format!("machines[{i}] ({})", m.serial);
            if m.serial.trim().is_empty() {
                problems.push(format!("machines[{i}]: serial is empty"));
            } else if !serials.insert(m.serial.as_str()) {
                problems.push(format!("{at}: a second machine with this serial"));
            }
            if m.macs.is_empty() {
                problems.push(format!("{at}: macs is empty; the first MAC is how the machine is recognised when it boots"));
            }
            let mut macs = Vec::new();
            for text in &m.macs {
                match text.parse::<MacAddr>() {
                    Ok(mac) if !all_macs.insert(mac) => {
                        problems.push(format!("{at}: MAC {mac} is listed twice in the file"));
                    }
                    Ok(mac) => macs.push(mac),
                    Err(e) => problems.push(format!("{at}: MAC {text:?}: {e}")),
                }
            }
            if let Some(rack) = &m.rack
                && !racks.contains(rack.as_str())
            {
                problems.push(format!("{at}: rack {rack:?} is not in racks"));
            }
            if let Some(p) = m.position
                && !(1..=MAX_POSITION).contains(&p)
            {
                problems.push(format!("{at}: position {p} is outside 1..={MAX_POSITION}"));
            }
            if m.position.is_some() && m.rack.is_none() {
                problems.push(format!("{at}: position without a rack"));
            }
            let mut bmc_host = None;
            if let Some(b) = &m.bmc {
                match parse_host(&b.host) {
                    Ok(h) => bmc_host = Some(h),
                    Err(e) => problems.push(format!("{at}: bmc.host: {e}")),
                }
                if b.user.is_empty() {
                    problems.push(format!("{at}: bmc.user is empty"));
                }
                if b.port == Some(0) {
                    problems.push(format!("{at}: bmc.port 0"));
                }
                if b.scheme.is_some() && b.protocol != BmcProtocol::Redfish {
                    problems.push(format!("{at}: bmc.scheme applies to redfish only"));
                }
            }
            let mut cabling = Vec::new();
            for (k, c) in m.cabling.iter().enumerate() {
                let at = format!("{at}: cabling[{k}]");
                let nic = match c.nic.parse::<MacAddr>() {
                    Ok(mac) if macs.contains(&mac) => Some(mac),
                    Ok(mac) => {
                        problems.push(format!("{at}: nic {mac} is not one of the machine's macs"));
                        None
                    }
                    Err(e) => {
                        problems.push(format!("{at}: nic {:?}: {e}", c.nic));
                        None
                    }
                };
                let switch = SwitchName::new(&c.switch)
                    .map_err(|e| problems.push(format!("{at}: switch: {e}")))
                    .ok();
                let port = PortName::new(&c.port)
                    .map_err(|e| problems.push(format!("{at}: port: {e}")))
                    .ok();
                let profile = PortProfileName::new(&c.profile)
                    .map_err(|e| problems.push(format!("{at}: profile: {e}")))
                    .ok();
                if let (Some(nic), Some(switch), Some(port), Some(profile)) =
                    (nic, switch, port, profile)
                {
                    if !all_ports.insert((switch.clone(), port.clone())) {
                        problems.push(format!(
                            "{at}: port {switch}/{port} is cabled twice in the file"
                        ));
                    }
                    cabling.push(Cable {
                        nic,
                        switch,
                        port,
                        profile,
                    });
                }
            }
            checked.push(CheckedMachine {
                entry: m.clone(),
                macs,
                bmc_host,
                cabling,
            });
        }
        if problems.is_empty() {
            Ok(checked)
        } else {
            Err(problems)
        }
    }
}

fn parse_host(text: &str) -> Result<BmcHost, String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(BmcHost::Ip(ip));
    }
    text.parse()
        .map(BmcHost::Name)
        .map_err(|e| format!("{text:?} is neither an IP address nor a DNS name: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = r#"
racks:
  - name: r01
    location: room 1, row A
machines:
  - serial: SN-1
    vendor: Dell Inc.
    model: PowerEdge R650
    macs: ["52:54:00:99:00:01", "52:54:00:99:01:01"]
    rack: r01
    position: 12
    role: worker
    bmc: { protocol: redfish, host: 10.99.0.201, port: 8400, user: admin, password: s3cret }
  - serial: SN-2
    macs: ["52:54:00:99:00:02"]
    bmc: { protocol: ipmi, host: bmc-2.mgmt.example.test, user: root }
"#;

    #[test]
    fn cabling_is_checked_with_the_rest() {
        let text = r#"
machines:
  - serial: SN-1
    macs: ["52:54:00:99:00:01"]
    cabling:
      - { nic: "52:54:00:99:00:01", switch: leaf-1, port: swp1, profile: server }
      - { nic: "52:54:00:99:00:09", switch: leaf-1, port: swp2, profile: server }
      - { nic: "52:54:00:99:00:01", switch: Leaf_1, port: swp3, profile: server }
  - serial: SN-2
    macs: ["52:54:00:99:00:02"]
    cabling:
      - { nic: "52:54:00:99:00:02", switch: leaf-1, port: swp1, profile: server }
"#;
        let problems = InventoryFile::parse(text).unwrap().check().unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0]
                .contains("cabling[1]: nic 52:54:00:99:00:09 is not one of the machine's macs")
        );
        assert!(problems[1].contains("cabling[2]: switch:"));
        assert!(
            problems[2]
                .contains("machines[1] (SN-2): cabling[0]: port leaf-1/swp1 is cabled twice")
        );
        let fine = text
            .replace("00:99:00:09", "00:99:00:01")
            .replace("Leaf_1", "leaf-2")
            .replace("    cabling:\n      - { nic: \"52:54:00:99:00:02\", switch: leaf-1, port: swp1, profile: server }\n", "");
        let checked = InventoryFile::parse(&fine).unwrap().check();
        // The same NIC may be cabled twice (two switches), one port only once.
        let checked = checked.unwrap();
        assert_eq!(checked[0].cabling.len(), 3);
        assert_eq!(checked[0].cabling[2].switch.as_str(), "leaf-2");
    }

    #[test]
    fn a_good_file_parses_checks_and_renders_back_without_passwords() {
        let file = InventoryFile::parse(GOOD).unwrap();
        let checked = file.check().unwrap();
        assert_eq!(checked.len(), 2);
        assert_eq!(checked[0].macs.len(), 2);
        assert_eq!(checked[1].entry.role, MachineRole::Unassigned);
        assert!(matches!(checked[1].bmc_host, Some(BmcHost::Name(_))));
        let mut exported = file.clone();
        for m in &mut exported.machines {
            if let Some(b) = &mut m.bmc {
                b.password = None;
            }
        }
        let text = exported.render();
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(InventoryFile::parse(&text).unwrap(), exported);
    }

    #[test]
    fn the_lab_site_kit_inventory_is_valid() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../site-kits/examples/lab/inventory.yaml");
        let file = InventoryFile::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(file.check().unwrap().len(), 2);
    }

    #[test]
    fn every_problem_is_reported_with_its_entry() {
        let bad = r#"
racks:
  - name: r01
  - name: r01
machines:
  - serial: SN-1
    macs: ["52:54:00:99:00:01", "nonsense"]
    rack: r09
    position: 99
  - serial: SN-1
    macs: ["52:54:00:99:00:01"]
    bmc: { protocol: redfish, host: "not a host!", user: "" }
  - serial: SN-3
    macs: []
"#;
        let problems = InventoryFile::parse(bad).unwrap().check().unwrap_err();
        let all = problems.join("\n");
        for expected in [
            "racks[1] (r01): a second rack with this name",
            "machines[0] (SN-1): MAC \"nonsense\"",
            "machines[0] (SN-1): rack \"r09\" is not in racks",
            "machines[0] (SN-1): position 99 is outside",
            "machines[1] (SN-1): a second machine with this serial",
            "machines[1] (SN-1): MAC 52:54:00:99:00:01 is listed twice",
            "machines[1] (SN-1): bmc.host:",
            "machines[1] (SN-1): bmc.user is empty",
            "machines[2] (SN-3): macs is empty",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused_with_a_location() {
        let err = InventoryFile::parse("machines:\n  - serial: a\n    macs: []\n    colour: red\n")
            .unwrap_err()
            .join("");
        assert!(err.contains("colour"), "{err}");
        assert!(err.contains("line"), "{err}");
        let err = InventoryFile::parse("machines:\n  - serial: a\n    macs: []\n    role: chef\n")
            .unwrap_err()
            .join("");
        assert!(err.contains("chef"), "{err}");
    }
}
