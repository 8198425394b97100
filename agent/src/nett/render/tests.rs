//! The shared rules (port order, port-channel numbers, refusals) and a
//! property test over random valid intents for every vendor. The golden
//! files are checked by `agent/tests/nett_render.rs`.

use std::collections::BTreeSet;

use dv_protocol::{Lag, NetworkName, NetworkPurpose, NetworkSpec, PortAssignment, PortProfileName};
use proptest::prelude::*;

use super::*;

fn vlan(v: u16) -> VlanId {
    VlanId::new(v).unwrap()
}

fn net(name: &str, v: u16) -> NetworkSpec {
    NetworkSpec {
        name: NetworkName::new(name).unwrap(),
        vlan: vlan(v),
        purpose: NetworkPurpose::Tenant,
        prefix: format!("10.{}.{}.0/24", v / 256, v % 256).parse().unwrap(),
        gateway: None,
        dhcp: false,
        reserved: vec![],
    }
}

fn profile(name: &str, mode: PortMode) -> PortProfile {
    PortProfile {
        name: PortProfileName::new(name).unwrap(),
        mode,
    }
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

fn lag(switch: &str, name: &str, members: &[&str], profile: &str) -> Lag {
    Lag {
        name: LagName::new(name).unwrap(),
        switch: SwitchName::new(switch).unwrap(),
        members: members.iter().map(|m| PortName::new(*m).unwrap()).collect(),
        profile: PortProfileName::new(profile).unwrap(),
    }
}

fn sw(name: &str) -> SwitchName {
    SwitchName::new(name).unwrap()
}

fn small(ports: &[&str], lags: Vec<Lag>) -> SiteIntent {
    SiteIntent {
        networks: vec![net("prov", 10), net("stor", 20)],
        profiles: vec![
            profile("a10", PortMode::Access { vlan: vlan(10) }),
            profile(
                "t",
                PortMode::Trunk {
                    allowed: vec![vlan(20), vlan(10)],
                    native: None,
                },
            ),
        ],
        assignments: ports.iter().map(|p| assign("leaf-1", p, "a10")).collect(),
        lags,
    }
}

#[test]
fn vendors_parse_and_print_by_name() {
    for v in Vendor::ALL {
        assert_eq!(v.to_string().parse::<Vendor>().unwrap(), v);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            format!("\"{}\"", v.as_str())
        );
    }
    let e = "junos".parse::<Vendor>().unwrap_err();
    assert!(e.to_string().contains("sonic, eos, nvue"), "{e}");
}

#[test]
fn ports_sort_naturally_and_totally() {
    let mut names = vec![
        "Ethernet10",
        "Ethernet2",
        "Ethernet1/10",
        "Ethernet1/2",
        "po01",
        "po1",
    ];
    names.sort_by(|a, b| natural_cmp(a, b));
    assert_eq!(
        names,
        [
            "Ethernet1/2",
            "Ethernet1/10",
            "Ethernet2",
            "Ethernet10",
            "po01",
            "po1"
        ]
    );
    assert_eq!(natural_cmp("swp1", "swp1"), Ordering::Equal);
    assert_eq!(natural_cmp("swp1", "swp1s0"), Ordering::Less);
}

#[test]
fn lag_numbers_come_from_the_digits_that_end_the_name() {
    assert_eq!(lag_number("po10"), Some(10));
    assert_eq!(lag_number("bond-r01u12"), Some(12));
    assert_eq!(lag_number("7"), Some(7));
    assert_eq!(lag_number("uplink"), None);
    assert_eq!(lag_number("po99999999999"), None);
}

#[test]
fn vendor_port_names() {
    assert!(sonic::port_ok("Ethernet0"));
    assert!(!sonic::port_ok("Ethernet1/1"));
    assert!(!sonic::port_ok("swp1"));
    assert!(!sonic::port_ok("Ethernet"));
    assert!(eos::port_ok("Ethernet1"));
    assert!(eos::port_ok("Ethernet49/1"));
    assert!(eos::port_ok("Ethernet3/1/4"));
    assert!(!eos::port_ok("Ethernet1/1/1/1"));
    assert!(!eos::port_ok("Et1"));
    assert!(!eos::port_ok("Ethernet1/"));
    assert!(nvue::port_ok("swp1"));
    assert!(nvue::port_ok("swp49s0"));
    assert!(!nvue::port_ok("swp"));
    assert!(!nvue::port_ok("swp1s"));
    assert!(!nvue::port_ok("eth0"));
    assert!(!nvue::port_ok("swps1"));
}

#[test]
fn eos_lists_vlans_as_ranges() {
    let set: BTreeSet<VlanId> = [10, 11, 12, 20, 22, 23].into_iter().map(vlan).collect();
    assert_eq!(eos::vlan_list(&set), "10-12,20,22-23");
}

#[test]
fn refusals_say_what_to_do() {
    let intent = small(&["Ethernet0"], vec![]);
    let e = render(Vendor::Sonic, &intent, &sw("leaf-9")).unwrap_err();
    assert!(matches!(e, RenderError::NoPorts { .. }), "{e}");
    assert!(e.to_string().contains("switches with ports: leaf-1"), "{e}");

    let e = render(Vendor::Nvue, &intent, &sw("leaf-1")).unwrap_err();
    assert!(e.to_string().contains("no port named Ethernet0"), "{e}");
    assert!(e.to_string().contains("swp<N>"), "{e}");

    let mut bad = intent.clone();
    bad.assignments.push(assign("leaf-1", "Ethernet0", "nope"));
    let e = render(Vendor::Sonic, &bad, &sw("leaf-1")).unwrap_err();
    let RenderError::Invalid(problems) = &e else {
        panic!("{e}")
    };
    assert_eq!(problems.problems.len(), 2, "{problems}");

    let named = small(&[], vec![lag("leaf-1", "uplink", &["Ethernet0"], "t")]);
    let e = render(Vendor::Eos, &named, &sw("leaf-1")).unwrap_err();
    assert!(e.to_string().contains("rename it like po1"), "{e}");
    // NVUE takes the name as it is.
    let nvue_named = small(&[], vec![lag("leaf-1", "uplink", &["swp1"], "t")]);
    render(Vendor::Nvue, &nvue_named, &sw("leaf-1")).unwrap();

    let clash = small(
        &[],
        vec![
            lag("leaf-1", "po1", &["Ethernet0"], "t"),
            lag("leaf-1", "bond1", &["Ethernet4"], "t"),
        ],
    );
    let e = render(Vendor::Sonic, &clash, &sw("leaf-1")).unwrap_err();
    assert!(matches!(e, RenderError::LagClash { number: 1, .. }), "{e}");

    let far = small(&[], vec![lag("leaf-1", "po2001", &["Ethernet1"], "t")]);
    let e = render(Vendor::Eos, &far, &sw("leaf-1")).unwrap_err();
    assert!(e.to_string().contains("range 1 to 2000"), "{e}");
    render(Vendor::Sonic, &far, &sw("leaf-1")).unwrap();

    let mut one = small(&["Ethernet0"], vec![]);
    one.networks[0].vlan = vlan(1);
    one.profiles[0].mode = PortMode::Access { vlan: vlan(1) };
    one.profiles[1].mode = PortMode::Access { vlan: vlan(1) };
    let e = render(Vendor::Sonic, &one, &sw("leaf-1")).unwrap_err();
    assert!(e.to_string().contains("reserves VLAN 1"), "{e}");
    render(Vendor::Eos, &one, &sw("leaf-1")).unwrap();
}

#[test]
fn vlans_are_only_those_the_switch_uses() {
    let intent = small(&["Ethernet0"], vec![]);
    let view = SwitchView::new(&intent, &sw("leaf-1")).unwrap();
    assert_eq!(view.vlans.keys().copied().collect::<Vec<_>>(), [vlan(10)]);
}

/// Assigned ports as `(switch * 1000 + profile, port number)`.
type PortCodes = Vec<(usize, u16)>;
/// LAGs as `(switch * 1000 + profile, LAG number, member port numbers)`.
type LagCodes = Vec<(usize, u16, Vec<u16>)>;

/// A random valid intent over switches `s0`..`s2`: ports and LAG members
/// are numbered (the vendor's prefix is added at render time), each port in
/// one place, LAGs named `po<N>` with distinct N.
fn arb_intent() -> impl Strategy<Value = (SiteIntent, PortCodes, LagCodes)> {
    let vlans = proptest::collection::btree_set(2u16..4095, 1..6);
    vlans
        .prop_flat_map(|vlans| {
            let vlans: Vec<u16> = vlans.into_iter().collect();
            let n = vlans.len();
            let modes = proptest::collection::vec(
                prop_oneof![
                    (0..n).prop_map(|i| (vec![i], None, true)),
                    (proptest::collection::btree_set(0..n, 1..=n), any::<bool>()).prop_map(
                        |(s, nat)| {
                            let s: Vec<usize> = s.into_iter().collect();
                            let native = nat.then(|| s[0]);
                            (s, native, false)
                        }
                    ),
                ],
                1..4,
            );
            // Port numbers 0..64 per switch, shuffled into assignments and LAGs.
            let ports = proptest::collection::vec((0usize..3, 0u16..64, 0usize..4), 1..20);
            let lag_of = proptest::collection::vec(0usize..8, 20);
            (Just(vlans), modes, ports, lag_of)
        })
        .prop_map(|(vlans, modes, ports, lag_of)| {
            let networks: Vec<NetworkSpec> = vlans
                .iter()
                .enumerate()
                .map(|(i, v)| net(&format!("n{i}"), *v))
                .collect();
            let profiles: Vec<PortProfile> = modes
                .iter()
                .enumerate()
                .map(|(i, (idx, native, access))| {
                    let mode = if *access {
                        PortMode::Access {
                            vlan: vlan(vlans[idx[0]]),
                        }
                    } else {
                        PortMode::Trunk {
                            allowed: idx.iter().map(|k| vlan(vlans[*k])).collect(),
                            native: native.map(|k| vlan(vlans[k])),
                        }
                    };
                    profile(&format!("p{i}"), mode)
                })
                .collect();
            let mut seen = BTreeSet::new();
            let mut assigned = Vec::new();
            let mut lags: BTreeMap<(usize, usize), (usize, Vec<u16>)> = BTreeMap::new();
            for (k, (s, p, prof)) in ports.into_iter().enumerate() {
                if !seen.insert((s, p)) {
                    continue;
                }
                let prof = prof % profiles.len();
                // About half the ports go into one of four LAGs per switch.
                match lag_of[k] {
                    l @ 0..4 => lags.entry((s, l)).or_insert((prof, vec![])).1.push(p),
                    _ => assigned.push((s, p, prof)),
                }
            }
            let intent = SiteIntent {
                networks,
                profiles,
                assignments: vec![],
                lags: vec![],
            };
            let a = assigned
                .iter()
                .map(|(s, p, prof)| (*s * 1000 + *prof, *p))
                .collect();
            let l = lags
                .into_iter()
                .map(|((s, l), (prof, members))| (s * 1000 + prof, l as u16 + 1, members))
                .collect();
            (intent, a, l)
        })
}

/// Fills in the vendor's port names: `(switch*1000 + profile, port)`.
fn for_vendor(
    vendor: Vendor,
    base: &SiteIntent,
    ports: &[(usize, u16)],
    lags: &[(usize, u16, Vec<u16>)],
) -> SiteIntent {
    let name = |p: u16| match vendor {
        Vendor::Sonic => format!("Ethernet{}", p * 4),
        Vendor::Eos => format!("Ethernet{}/1", p + 1),
        Vendor::Nvue => format!("swp{}", p + 1),
    };
    let mut intent = base.clone();
    for (code, p) in ports {
        intent.assignments.push(assign(
            &format!("s{}", code / 1000),
            &name(*p),
            &format!("p{}", code % 1000),
        ));
    }
    for (code, n, members) in lags {
        let members: Vec<String> = members.iter().map(|p| name(*p)).collect();
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        intent.lags.push(lag(
            &format!("s{}", code / 1000),
            &format!("po{n}"),
            &members,
            &format!("p{}", code % 1000),
        ));
    }
    intent
}

/// Every physical port named in `output`, parsed back per vendor.
fn ports_in(vendor: Vendor, output: &str) -> BTreeSet<String> {
    match vendor {
        Vendor::Sonic => {
            let v: serde_json::Value = serde_json::from_str(output).unwrap();
            v["PORT"].as_object().unwrap().keys().cloned().collect()
        }
        Vendor::Eos => output
            .lines()
            .filter_map(|l| l.strip_prefix("interface Ethernet"))
            .map(|p| format!("Ethernet{p}"))
            .collect(),
        Vendor::Nvue => {
            let v: yaml_serde::Value = yaml_serde::from_str(output).unwrap();
            let interfaces = v[0]["set"]["interface"].as_mapping().unwrap();
            interfaces
                .iter()
                .filter(|(_, i)| i["type"].as_str() == Some("swp"))
                .map(|(k, _)| k.as_str().unwrap().to_owned())
                .collect()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn renders_never_panic_and_carry_every_port((base, ports, lags) in arb_intent()) {
        for vendor in Vendor::ALL {
            let intent = for_vendor(vendor, &base, &ports, &lags);
            prop_assert!(intent.validate().is_ok(), "{:?}", intent.validate());
            for s in 0..3 {
                let switch = sw(&format!("s{s}"));
                let result = render(vendor, &intent, &switch);
                let want: BTreeSet<String> = intent
                    .assignments
                    .iter()
                    .filter(|a| a.switch == switch)
                    .map(|a| a.port.to_string())
                    .chain(
                        intent
                            .lags
                            .iter()
                            .filter(|l| l.switch == switch)
                            .flat_map(|l| l.members.iter().map(ToString::to_string)),
                    )
                    .collect();
                match result {
                    Ok(text) => {
                        prop_assert_eq!(ports_in(vendor, &text), want);
                        prop_assert_eq!(&render(vendor, &intent, &switch).unwrap(), &text);
                    }
                    Err(RenderError::NoPorts { .. }) => prop_assert!(want.is_empty()),
                    Err(e) => prop_assert!(false, "{vendor} {switch}: {e}"),
                }
            }
        }
    }
}
