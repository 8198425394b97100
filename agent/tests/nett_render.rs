//! Vendor renderers against golden files: one site intent with two
//! switches, rendered for SONiC, EOS and NVUE, must equal
//! `golden/nett/<vendor>/<switch>.(json|txt|yaml)` byte for byte. leaf-1
//! has two access ports (VLANs 10 and 20), a trunk with native VLAN 10 and
//! a LAG of two members; leaf-2 has ports and a VLAN (30) of its own that
//! must not leak into leaf-1's output.
//!
//! After an intended change, regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p dv-agent --test nett_render` (the
//! convention of the other goldens here) and review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use dv_agent::nett::render::{RenderError, Vendor, render};
use dv_protocol::{
    Lag, LagName, NetworkName, NetworkPurpose, NetworkSpec, PortAssignment, PortMode, PortName,
    PortProfile, PortProfileName, SiteIntent, SwitchName, VlanId,
};

fn vlan(v: u16) -> VlanId {
    VlanId::new(v).unwrap()
}

fn sw(name: &str) -> SwitchName {
    SwitchName::new(name).unwrap()
}

/// Port `n` as `vendor` names it.
fn port(vendor: Vendor, n: u16) -> PortName {
    PortName::new(match vendor {
        Vendor::Sonic => format!("Ethernet{}", (n - 1) * 4),
        Vendor::Eos => format!("Ethernet{n}"),
        Vendor::Nvue => format!("swp{n}"),
    })
    .unwrap()
}

fn intent(vendor: Vendor) -> SiteIntent {
    let net = |name: &str, v: u16, prefix: &str| NetworkSpec {
        name: NetworkName::new(name).unwrap(),
        vlan: vlan(v),
        purpose: NetworkPurpose::Tenant,
        prefix: prefix.parse().unwrap(),
        gateway: None,
        dhcp: false,
        reserved: vec![],
    };
    let profile = |name: &str, mode| PortProfile {
        name: PortProfileName::new(name).unwrap(),
        mode,
    };
    let assign = |switch: &str, n: u16, profile: &str| PortAssignment {
        switch: sw(switch),
        port: port(vendor, n),
        profile: PortProfileName::new(profile).unwrap(),
        machine: None,
        nic: None,
    };
    let lag = |switch: &str, name: &str, members: &[u16], profile: &str| Lag {
        name: LagName::new(name).unwrap(),
        switch: sw(switch),
        members: members.iter().map(|n| port(vendor, *n)).collect(),
        profile: PortProfileName::new(profile).unwrap(),
    };
    SiteIntent {
        networks: vec![
            net("prov", 10, "10.10.0.0/24"),
            net("storage", 20, "10.20.0.0/24"),
            net("mgmt", 30, "10.30.0.0/24"),
        ],
        profiles: vec![
            profile("server-prov", PortMode::Access { vlan: vlan(10) }),
            profile("server-storage", PortMode::Access { vlan: vlan(20) }),
            profile(
                "hypervisor",
                PortMode::Trunk {
                    allowed: vec![vlan(20), vlan(10)],
                    native: Some(vlan(10)),
                },
            ),
            profile(
                "uplink",
                PortMode::Trunk {
                    allowed: vec![vlan(10), vlan(20)],
                    native: None,
                },
            ),
            profile("bmc", PortMode::Access { vlan: vlan(30) }),
        ],
        assignments: vec![
            // Out of order on purpose: the output is in port order.
            assign("leaf-1", 3, "hypervisor"),
            assign("leaf-2", 1, "bmc"),
            assign("leaf-1", 1, "server-prov"),
            assign("leaf-1", 2, "server-storage"),
        ],
        lags: vec![
            lag("leaf-1", "po1", &[10, 9], "uplink"),
            lag("leaf-2", "po7", &[4, 5], "bmc"),
        ],
    }
}

fn ext(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Sonic => "json",
        Vendor::Eos => "txt",
        Vendor::Nvue => "yaml",
    }
}

fn golden(vendor: Vendor, case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/nett")
        .join(vendor.as_str())
        .join(format!("{case}.{}", ext(vendor)))
}

fn check(vendor: Vendor, switch: &str) -> String {
    let text = render(vendor, &intent(vendor), &sw(switch)).unwrap();
    let path = golden(vendor, switch);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(
        text,
        want,
        "{} drifted; rerun with UPDATE_GOLDEN=1 and review",
        path.display()
    );
    // Byte-stable: a second render of the same intent is identical.
    assert_eq!(render(vendor, &intent(vendor), &sw(switch)).unwrap(), text);
    text
}

fn names(vendor: Vendor, ns: &[u16]) -> BTreeSet<String> {
    ns.iter().map(|n| port(vendor, *n).to_string()).collect()
}

#[test]
fn sonic_matches_golden_and_parses_back() {
    let v = Vendor::Sonic;
    let text = check(v, "leaf-1");
    check(v, "leaf-2");
    let db: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys =
        |t: &str| -> BTreeSet<String> { db[t].as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys("PORT"), names(v, &[1, 2, 3, 9, 10]));
    assert_eq!(
        keys("VLAN"),
        BTreeSet::from(["Vlan10".into(), "Vlan20".into()])
    );
    assert_eq!(db["VLAN"]["Vlan20"]["description"], "storage");
    assert_eq!(keys("PORTCHANNEL"), BTreeSet::from(["PortChannel1".into()]));
    assert_eq!(
        keys("PORTCHANNEL_MEMBER"),
        BTreeSet::from([
            "PortChannel1|Ethernet32".into(),
            "PortChannel1|Ethernet36".into()
        ])
    );
    let m = &db["VLAN_MEMBER"];
    assert_eq!(m["Vlan10|Ethernet0"]["tagging_mode"], "untagged");
    assert_eq!(m["Vlan10|Ethernet8"]["tagging_mode"], "untagged");
    assert_eq!(m["Vlan20|Ethernet8"]["tagging_mode"], "tagged");
    assert_eq!(m["Vlan10|PortChannel1"]["tagging_mode"], "tagged");
    // LAG members are members of the port-channel, not of VLANs.
    assert!(m.get("Vlan10|Ethernet32").is_none());
    assert!(!text.contains("Vlan30") && !text.contains("Ethernet12"));
}

#[test]
fn eos_matches_golden() {
    let v = Vendor::Eos;
    let text = check(v, "leaf-1");
    check(v, "leaf-2");
    let interfaces: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("interface "))
        .collect();
    assert_eq!(
        interfaces,
        BTreeSet::from([
            "Ethernet1",
            "Ethernet2",
            "Ethernet3",
            "Ethernet9",
            "Ethernet10",
            "Port-Channel1"
        ])
    );
    assert!(text.contains("interface Ethernet9\n   channel-group 1 mode active\n"));
    assert!(!text.contains("vlan 30") && !text.contains("mgmt"));
}

#[test]
fn nvue_matches_golden_and_parses_back() {
    let v = Vendor::Nvue;
    let text = check(v, "leaf-1");
    check(v, "leaf-2");
    let doc: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    let set = &doc[0]["set"];
    let vlans: Vec<&str> = set["bridge"]["domain"]["br_default"]["vlan"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(vlans, ["10", "20"]);
    let i = &set["interface"];
    assert_eq!(i["swp1"]["bridge"]["domain"]["br_default"]["access"], 10);
    assert_eq!(i["swp3"]["bridge"]["domain"]["br_default"]["untagged"], 10);
    assert_eq!(i["po1"]["type"], "bond");
    assert_eq!(i["po1"]["bond"]["mode"], "lacp");
    assert_eq!(
        i["po1"]["bridge"]["domain"]["br_default"]["untagged"],
        "none"
    );
    let members: Vec<&str> = i["po1"]["bond"]["member"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(members, ["swp9", "swp10"]);
    let interfaces: BTreeSet<String> = i
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let mut want = names(v, &[1, 2, 3, 9, 10]);
    want.insert("po1".into());
    assert_eq!(interfaces, want);
}

#[test]
fn a_switch_without_ports_and_bad_names_are_refused() {
    for v in Vendor::ALL {
        let e = render(v, &intent(v), &sw("spine-1")).unwrap_err();
        assert!(
            e.to_string()
                .contains("switch spine-1 has no ports in the intent"),
            "{e}"
        );
        assert!(e.to_string().contains("leaf-1, leaf-2"), "{e}");
    }
    // SONiC ports rendered for Cumulus.
    let e = render(Vendor::Nvue, &intent(Vendor::Sonic), &sw("leaf-1")).unwrap_err();
    assert!(matches!(e, RenderError::PortName { .. }), "{e}");
    let e = render(Vendor::Eos, &intent(Vendor::Nvue), &sw("leaf-1")).unwrap_err();
    assert!(e.to_string().contains("Ethernet<N>"), "{e}");
}
