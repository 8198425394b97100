//! The Open vSwitch driver against a real Open vSwitch: `ovsdb-server` and
//! `ovs-vswitchd` (userspace datapath) in a network namespace, hosts in
//! their own namespaces on veth ports. What an operator checks: the plan
//! before an apply, who can ping whom after it, what `ovs-vsctl` changed
//! behind the agent's back, and that a failed apply leaves the switch as it
//! was.
//!
//! Needs root (namespaces) and Open vSwitch (scripts/setup.sh installs it).
//! Without namespaces the tests skip loudly; without Open vSwitch they fail.
//! Every host shares one subnet, so only VLAN membership decides who
//! answers. LAGs are bonds with LACP between two switches, each member a
//! veth cable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use dv_agent::nett::switch::ovs::OvsSwitch;
use dv_agent::nett::switch::{
    ChangeKind, Port, PortConfig, Ports, SwitchDriver, SwitchError, desired_ports,
};
use dv_protocol::{
    Lag, LagName, PortAssignment, PortMode, PortName, PortProfile, PortProfileName, SiteIntent,
    SwitchName, VlanId,
};
use dv_tests::netns::{Netns, require_netns};
use dv_tests::ovs::{OvsSwitchNs, cable, ping, require_ovs};
use dv_tests::wait_for;

fn vlan(v: u16) -> VlanId {
    VlanId::new(v).unwrap()
}

fn port(p: &str) -> PortName {
    PortName::new(p).unwrap()
}

fn access(v: u16) -> Port {
    Port::single(PortConfig::Access { vlan: vlan(v) })
}

/// `true` when the test may run; panics when Open vSwitch is missing.
fn gate(test: &str) -> bool {
    if !require_netns(test) {
        return false;
    }
    require_ovs(test);
    true
}

/// The desired ports of switch `sw1`: profiles `v10`, `v20` (access),
/// `uplink` (trunk 10,20) and `hv` (trunk 10,20, native 10), and the given
/// port assignments.
fn intent(assign: &[(&str, &str)]) -> Ports {
    intent_with(assign, &[])
}

/// [`intent`] with LAGs: (name, members, profile).
fn intent_with(assign: &[(&str, &str)], lags: &[(&str, &[&str], &str)]) -> Ports {
    let profile = |name: &str, mode| PortProfile {
        name: PortProfileName::new(name).unwrap(),
        mode,
    };
    let profiles = [
        profile("v10", PortMode::Access { vlan: vlan(10) }),
        profile("v20", PortMode::Access { vlan: vlan(20) }),
        profile(
            "uplink",
            PortMode::Trunk {
                allowed: vec![vlan(10), vlan(20)],
                native: None,
            },
        ),
        profile(
            "hv",
            PortMode::Trunk {
                allowed: vec![vlan(10), vlan(20)],
                native: Some(vlan(10)),
            },
        ),
    ];
    let assignments: Vec<PortAssignment> = assign
        .iter()
        .map(|(p, prof)| PortAssignment {
            switch: SwitchName::new("sw1").unwrap(),
            port: port(p),
            profile: PortProfileName::new(*prof).unwrap(),
            machine: None,
            nic: None,
        })
        .collect();
    let lags = lags
        .iter()
        .map(|(name, members, profile)| Lag {
            name: LagName::new(*name).unwrap(),
            switch: SwitchName::new("sw1").unwrap(),
            members: members.iter().map(|m| port(m)).collect(),
            profile: PortProfileName::new(*profile).unwrap(),
        })
        .collect();
    let intent = SiteIntent {
        networks: vec![],
        profiles: profiles.to_vec(),
        assignments,
        lags,
    };
    desired_ports(&intent, &SwitchName::new("sw1").unwrap()).unwrap()
}

/// One switch with hosts h1 (10.99.0.1), h2 (.2), h3 (.3) on ports
/// h1p, h2p, h3p, none on the bridge yet.
struct ThreeHosts {
    h1: Netns,
    // Kept for their veth ends; dropped after the switch.
    _h2: Netns,
    _h3: Netns,
    sw: OvsSwitchNs,
}

fn three_hosts(tag: &str) -> ThreeHosts {
    let sw = OvsSwitchNs::start(&format!("{tag}sw"), "br0");
    let h1 = sw.host(&format!("{tag}h1"), "h1p", "10.99.0.1/24");
    let h2 = sw.host(&format!("{tag}h2"), "h2p", "10.99.0.2/24");
    let h3 = sw.host(&format!("{tag}h3"), "h3p", "10.99.0.3/24");
    ThreeHosts {
        h1,
        _h2: h2,
        _h3: h3,
        sw,
    }
}

async fn driver(sw: &OvsSwitchNs) -> OvsSwitch {
    OvsSwitch::connect_unix(&sw.db_socket(), sw.bridge())
        .await
        .unwrap()
}

fn desired_a() -> Ports {
    intent(&[("h1p", "v10"), ("h2p", "v10"), ("h3p", "v20")])
}

#[tokio::test]
async fn access_ports_isolate_vlans() {
    if !gate("access_ports_isolate_vlans") {
        return;
    }
    let t = three_hosts("a");
    let mut drv = driver(&t.sw).await;
    let desired = desired_a();

    let plan = drv.plan(&desired).await.unwrap();
    let shown: Vec<String> = plan.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "add h1p: absent -> access 10",
            "add h2p: absent -> access 10",
            "add h3p: absent -> access 20",
        ]
    );
    let applied = drv.apply(&plan).await.unwrap();
    assert_eq!(applied, plan);

    assert!(ping(&t.h1, "10.99.0.2"), "h1 -> h2 share VLAN 10");
    assert!(
        !ping(&t.h1, "10.99.0.3"),
        "h1 (VLAN 10) must not reach h3 (VLAN 20)"
    );

    // What the switch reports is what was asked for, and ovs-vsctl agrees.
    assert_eq!(drv.observe().await.unwrap(), desired);
    assert!(drv.drift(&desired).await.unwrap().is_empty());
    assert_eq!(t.sw.vsctl(&["get", "port", "h3p", "tag"]).trim(), "20");
}

#[tokio::test]
async fn a_change_behind_the_agents_back_is_drift_and_reapply_converges() {
    if !gate("a_change_behind_the_agents_back_is_drift_and_reapply_converges") {
        return;
    }
    let t = three_hosts("b");
    let mut drv = driver(&t.sw).await;
    let desired = desired_a();
    let plan = drv.plan(&desired).await.unwrap();
    drv.apply(&plan).await.unwrap();
    assert!(drv.drift(&desired).await.unwrap().is_empty());

    t.sw.vsctl(&["set", "port", "h3p", "tag=10"]);
    assert!(ping(&t.h1, "10.99.0.3"), "the hand-made re-tag is in force");

    let drift = drv.drift(&desired).await.unwrap();
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert_eq!(drift[0].port, port("h3p"));
    assert_eq!(drift[0].kind(), ChangeKind::Retag);
    assert_eq!(drift[0].to_string(), "retag h3p: access 10 -> access 20");

    drv.apply(&drift).await.unwrap();
    assert!(drv.drift(&desired).await.unwrap().is_empty());
    assert!(
        !ping(&t.h1, "10.99.0.3"),
        "isolation is back after re-apply"
    );
}

#[tokio::test]
async fn a_trunk_between_two_switches_carries_both_vlans() {
    if !gate("a_trunk_between_two_switches_carries_both_vlans") {
        return;
    }
    let sw1 = OvsSwitchNs::start("csw1", "br0");
    let sw2 = OvsSwitchNs::start("csw2", "br0");
    cable(&sw1, "up1", &sw2, "up2");
    let a10 = sw1.host("ca10", "a10p", "10.99.0.1/24");
    let _a20 = sw1.host("ca20", "a20p", "10.99.0.2/24");
    let _b10 = sw2.host("cb10", "b10p", "10.99.0.3/24");
    let b20 = sw2.host("cb20", "b20p", "10.99.0.4/24");
    // A host that sends untagged frames into a trunk port: they belong to
    // the port's native VLAN, 10.
    let n = sw2.host("cn", "np", "10.99.0.5/24");

    let trunk = PortConfig::Trunk {
        allowed: BTreeSet::from([vlan(10), vlan(20)]),
        native: None,
    };
    let mut d1 = driver(&sw1).await;
    let want1 = intent(&[("a10p", "v10"), ("a20p", "v20"), ("up1", "uplink")]);
    assert_eq!(want1.get(&port("up1")), Some(&Port::single(trunk)));
    let plan1 = d1.plan(&want1).await.unwrap();
    d1.apply(&plan1).await.unwrap();
    let mut d2 = driver(&sw2).await;
    let want2 = intent(&[
        ("b10p", "v10"),
        ("b20p", "v20"),
        ("np", "hv"),
        ("up2", "uplink"),
    ]);
    let plan2 = d2.plan(&want2).await.unwrap();
    assert!(
        plan2
            .iter()
            .any(|c| c.to_string() == "add up2: absent -> trunk 10,20")
    );
    d2.apply(&plan2).await.unwrap();

    assert!(ping(&a10, "10.99.0.3"), "VLAN 10 crosses the trunk");
    assert!(ping(&b20, "10.99.0.2"), "VLAN 20 crosses the trunk");
    assert!(
        !ping(&a10, "10.99.0.4"),
        "VLAN 10 must not reach VLAN 20 across the trunk"
    );
    assert!(
        ping(&n, "10.99.0.1"),
        "untagged on a trunk is the native VLAN 10"
    );
    assert!(!ping(&n, "10.99.0.2"), "the native VLAN is 10, not 20");
    assert_eq!(d1.observe().await.unwrap(), want1);
    assert_eq!(d2.observe().await.unwrap(), want2);
    assert_eq!(
        sw2.vsctl(&["get", "port", "np", "vlan_mode"]).trim(),
        "native-untagged"
    );
    assert_eq!(
        sw2.vsctl(&["get", "port", "up2", "trunks"]).trim(),
        "[10, 20]"
    );
}

#[tokio::test]
async fn a_failed_step_rolls_back_the_earlier_ones() {
    if !gate("a_failed_step_rolls_back_the_earlier_ones") {
        return;
    }
    let t = three_hosts("d");
    let mut drv = driver(&t.sw).await;
    let first = intent(&[("h1p", "v10"), ("h2p", "v10")]);
    let plan = drv.plan(&first).await.unwrap();
    drv.apply(&plan).await.unwrap();
    let before = drv.observe().await.unwrap();

    // Step 1 re-tags h1p; step 2 adds a port whose interface does not exist
    // in the switch's namespace, which the switch refuses.
    let second = intent(&[("h1p", "v20"), ("h2p", "v10"), ("nosuchp", "v20")]);
    let plan = drv.plan(&second).await.unwrap();
    let steps: Vec<(&str, ChangeKind)> = plan.iter().map(|c| (c.port.as_str(), c.kind())).collect();
    assert_eq!(
        steps,
        [("h1p", ChangeKind::Retag), ("nosuchp", ChangeKind::Add)]
    );

    let err = drv.apply(&plan).await.unwrap_err();
    assert_eq!(err.failed.port, port("nosuchp"));
    assert!(
        matches!(err.source, SwitchError::NoSuchInterface { .. }),
        "{:?}",
        err.source
    );
    assert_eq!(err.rolled_back.len(), 1);
    assert_eq!(err.rolled_back[0].after, Some(access(10)));
    assert!(err.rollback_failed.is_empty());

    assert_eq!(
        drv.observe().await.unwrap(),
        before,
        "the switch is as it was"
    );
    assert!(ping(&t.h1, "10.99.0.2"), "h1 is back in VLAN 10 with h2");
    // Nothing of the failed port is left in the database either.
    let ports = t.sw.vsctl(&["list-ports", "br0"]);
    assert_eq!(ports.split_whitespace().collect::<Vec<_>>(), ["h1p", "h2p"]);
}

/// The OVSDB client on its own, against the real server, with `ovs-vsctl`
/// as the independent check: every operation kind, and the errors an
/// operator would have to read.
#[tokio::test]
async fn the_ovsdb_client_speaks_rfc_7047_to_a_real_server() {
    use dv_agent::nett::switch::ovsdb::{Condition, Mutation, Op, OvsdbClient, OvsdbError};
    use serde_json::json;
    if !gate("the_ovsdb_client_speaks_rfc_7047_to_a_real_server") {
        return;
    }
    let sw = OvsSwitchNs::start("esw", "br0");
    let mut c = OvsdbClient::connect_unix(&sw.db_socket(), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        c.list_dbs()
            .await
            .unwrap()
            .contains(&"Open_vSwitch".to_owned())
    );
    assert_eq!(
        c.get_schema("Open_vSwitch").await.unwrap()["name"],
        "Open_vSwitch"
    );
    c.echo().await.unwrap();

    let obj = |v: serde_json::Value| v.as_object().unwrap().clone();
    let name = Condition::eq("name", "tmpbr");
    // insert + mutate with a uuid-name: a bridge the root row refers to.
    let r = c
        .transact(
            "Open_vSwitch",
            &[
                Op::Insert {
                    table: "Bridge".into(),
                    row: obj(json!({"name": "tmpbr", "datapath_type": "netdev"})),
                    uuid_name: Some("b".into()),
                },
                Op::Mutate {
                    table: "Open_vSwitch".into(),
                    conditions: vec![],
                    mutations: vec![Mutation(
                        "bridges".into(),
                        "insert".into(),
                        json!(["set", [["named-uuid", "b"]]]),
                    )],
                },
                Op::Update {
                    table: "Bridge".into(),
                    conditions: vec![name.clone()],
                    row: obj(json!({"external_ids": ["map", [["owner", "dv"]]]})),
                },
            ],
        )
        .await
        .unwrap();
    assert!(r[0].uuid.is_some());
    assert_eq!(r[2].count, Some(1));
    let listed = sw.vsctl(&["list-br"]);
    assert!(listed.lines().any(|l| l == "tmpbr"), "{listed}");
    assert_eq!(
        sw.vsctl(&["get", "bridge", "tmpbr", "external_ids:owner"])
            .trim(),
        "dv"
    );

    // A failed precondition: nothing of the transaction happens.
    let e = c
        .transact(
            "Open_vSwitch",
            &[
                Op::Wait {
                    table: "Bridge".into(),
                    conditions: vec![Condition::eq("name", "nosuchbr")],
                    columns: vec!["name".into()],
                    until: "==".into(),
                    rows: vec![obj(json!({"name": "nosuchbr"}))],
                    timeout: Some(0),
                },
                Op::Delete {
                    table: "Bridge".into(),
                    conditions: vec![name.clone()],
                },
            ],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, OvsdbError::Operation { index: 0, error, .. } if error == "timed out"),
        "{e}"
    );
    // Deleting a row still referred to breaks referential integrity at commit.
    let e = c
        .transact(
            "Open_vSwitch",
            &[Op::Delete {
                table: "Bridge".into(),
                conditions: vec![name.clone()],
            }],
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("referential integrity"), "{e}");
    assert!(sw.vsctl(&["list-br"]).lines().any(|l| l == "tmpbr"));

    // Dropping the reference removes it (Bridge is not a root table).
    let rows = c
        .transact(
            "Open_vSwitch",
            &[Op::Select {
                table: "Bridge".into(),
                conditions: vec![name],
                columns: Some(vec!["_uuid".into()]),
            }],
        )
        .await
        .unwrap();
    let uuid = rows[0].rows.as_ref().unwrap()[0]["_uuid"].clone();
    c.transact(
        "Open_vSwitch",
        &[Op::Mutate {
            table: "Open_vSwitch".into(),
            conditions: vec![],
            mutations: vec![Mutation(
                "bridges".into(),
                "delete".into(),
                json!(["set", [uuid]]),
            )],
        }],
    )
    .await
    .unwrap();
    assert!(!sw.vsctl(&["list-br"]).lines().any(|l| l == "tmpbr"));

    let e = c.transact("Nope", &[]).await.unwrap_err();
    assert!(matches!(e, OvsdbError::Rpc { .. }), "{e}");
    assert!(e.to_string().contains("unknown database"), "{e}");
}

/// Whether `from` reaches `to` within a few seconds: a new bond answers
/// only once LACP has agreed on its members (about a second).
fn ping_soon(from: &Netns, to: &str) -> bool {
    wait_for(Duration::from_secs(10), || ping(from, to).then_some(())).is_some()
}

fn link(sw: &OvsSwitchNs, dev: &str, state: &str) {
    let out = sw.ns().ip(&["link", "set", dev, state]).unwrap();
    assert!(out.status.success(), "ip link set {dev} {state}: {out:?}");
}

#[tokio::test]
async fn a_lag_between_two_switches_carries_vlans_and_survives_a_member_down() {
    if !gate("a_lag_between_two_switches_carries_vlans_and_survives_a_member_down") {
        return;
    }
    let sw1 = OvsSwitchNs::start("gsw1", "br0");
    let sw2 = OvsSwitchNs::start("gsw2", "br0");
    // Two cables, both members of one LAG on each end.
    cable(&sw1, "l1a", &sw2, "l2a");
    cable(&sw1, "l1b", &sw2, "l2b");
    let a10 = sw1.host("ga10", "a10p", "10.99.0.1/24");
    let _b10 = sw2.host("gb10", "b10p", "10.99.0.3/24");
    let _b20 = sw2.host("gb20", "b20p", "10.99.0.4/24");

    let mut d1 = driver(&sw1).await;
    let want1 = intent_with(&[("a10p", "v10")], &[("bond1", &["l1a", "l1b"], "uplink")]);
    let plan1 = d1.plan(&want1).await.unwrap();
    let shown: Vec<String> = plan1.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "add a10p: absent -> access 10",
            "add bond1: absent -> trunk 10,20 over [l1a, l1b]",
        ]
    );
    d1.apply(&plan1).await.unwrap();
    let mut d2 = driver(&sw2).await;
    let want2 = intent_with(
        &[("b10p", "v10"), ("b20p", "v20")],
        &[("bond2", &["l2a", "l2b"], "uplink")],
    );
    let plan2 = d2.plan(&want2).await.unwrap();
    d2.apply(&plan2).await.unwrap();

    // One Port row with both interfaces, LACP on.
    assert_eq!(
        sw1.vsctl(&["get", "port", "bond1", "bond_mode"]).trim(),
        "balance-tcp"
    );
    assert_eq!(
        sw1.vsctl(&["get", "port", "bond1", "lacp"]).trim(),
        "active"
    );
    let ports = sw1.vsctl(&["list-ports", "br0"]);
    assert_eq!(
        ports.split_whitespace().collect::<Vec<_>>(),
        ["a10p", "bond1"]
    );
    let ifaces = sw1.vsctl(&["list-ifaces", "br0"]);
    assert_eq!(
        ifaces.split_whitespace().collect::<Vec<_>>(),
        ["a10p", "l1a", "l1b"]
    );
    assert_eq!(d1.observe().await.unwrap(), want1);
    assert_eq!(d2.observe().await.unwrap(), want2);

    assert!(ping_soon(&a10, "10.99.0.3"), "VLAN 10 crosses the LAG");
    assert!(
        !ping(&a10, "10.99.0.4"),
        "VLAN 10 must not reach VLAN 20 across the LAG"
    );

    // Each member in turn carries the bundle alone.
    link(&sw1, "l1a", "down");
    assert!(ping_soon(&a10, "10.99.0.3"), "the LAG survives l1a down");
    link(&sw1, "l1a", "up");
    link(&sw1, "l1b", "down");
    assert!(ping_soon(&a10, "10.99.0.3"), "the LAG survives l1b down");
    // A link down is not a configuration change: no drift.
    assert!(d1.drift(&want1).await.unwrap().is_empty());
    assert!(d2.drift(&want2).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_port_becomes_a_lag_and_a_member_removed_behind_the_agents_back_is_drift() {
    if !gate("a_port_becomes_a_lag_and_a_member_removed_behind_the_agents_back_is_drift") {
        return;
    }
    let sw = OvsSwitchNs::start("hsw", "br0");
    let _m1 = sw.host("hm1", "m1", "10.99.0.1/24");
    let _m2 = sw.host("hm2", "m2", "10.99.0.2/24");
    let mut drv = driver(&sw).await;

    // m1 on its own first, then m1 and m2 bundled as bond1: m1 is freed
    // before bond1 claims it.
    let single = intent(&[("m1", "v10")]);
    let plan = drv.plan(&single).await.unwrap();
    drv.apply(&plan).await.unwrap();
    let desired = intent_with(&[], &[("bond1", &["m1", "m2"], "v10")]);
    let plan = drv.plan(&desired).await.unwrap();
    let shown: Vec<String> = plan.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "remove m1: access 10 -> absent",
            "add bond1: absent -> access 10 over [m1, m2]",
        ]
    );
    drv.apply(&plan).await.unwrap();
    assert!(drv.drift(&desired).await.unwrap().is_empty());

    // A member taken out of the bond by hand.
    let m2 = sw.vsctl(&["get", "interface", "m2", "_uuid"]);
    sw.vsctl(&["remove", "port", "bond1", "interfaces", m2.trim()]);
    let drift = drv.drift(&desired).await.unwrap();
    let shown: Vec<String> = drift.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["members bond1: access 10 over [m1] -> access 10 over [m1, m2]"]
    );
    assert_eq!(drift[0].kind(), ChangeKind::Members);
    drv.apply(&drift).await.unwrap();
    assert!(drv.drift(&desired).await.unwrap().is_empty());
    let ifaces = sw.vsctl(&["list-ifaces", "br0"]);
    assert_eq!(ifaces.split_whitespace().collect::<Vec<_>>(), ["m1", "m2"]);

    // The bond's mode changed by hand: drift, and re-applying restores it.
    sw.vsctl(&["set", "port", "bond1", "bond_mode=balance-slb"]);
    let drift = drv.drift(&desired).await.unwrap();
    let shown: Vec<String> = drift.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "retag bond1: unmanaged (access 10 as a bond with bond_mode balance-slb, lacp active) \
          over [m1, m2] -> access 10 over [m1, m2]"
        ]
    );
    drv.apply(&drift).await.unwrap();
    assert!(drv.drift(&desired).await.unwrap().is_empty());
    assert_eq!(
        sw.vsctl(&["get", "port", "bond1", "bond_mode"]).trim(),
        "balance-tcp"
    );

    // The whole bond deleted by hand, and a member put back as a port of
    // its own: re-apply frees m2 and rebuilds the bond.
    sw.vsctl(&["del-port", "br0", "bond1", "--", "add-port", "br0", "m2"]);
    let drift = drv.drift(&desired).await.unwrap();
    let kinds: Vec<(&str, ChangeKind)> =
        drift.iter().map(|c| (c.port.as_str(), c.kind())).collect();
    assert_eq!(
        kinds,
        [("m2", ChangeKind::Remove), ("bond1", ChangeKind::Add)]
    );
    drv.apply(&drift).await.unwrap();
    assert!(drv.drift(&desired).await.unwrap().is_empty());

    // Back to single ports: the bond goes, the old member is a port again.
    let back = intent(&[("m1", "v20")]);
    let plan = drv.plan(&back).await.unwrap();
    let shown: Vec<String> = plan.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "remove bond1: access 10 over [m1, m2] -> absent",
            "add m1: absent -> access 20",
        ]
    );
    drv.apply(&plan).await.unwrap();
    assert_eq!(drv.observe().await.unwrap(), back);
}

#[tokio::test]
async fn a_bond_member_the_switch_cannot_open_undoes_its_step() {
    if !gate("a_bond_member_the_switch_cannot_open_undoes_its_step") {
        return;
    }
    let sw = OvsSwitchNs::start("ksw", "br0");
    let _m1 = sw.host("km1", "m1", "10.99.0.1/24");
    let mut drv = driver(&sw).await;
    let desired = intent_with(&[], &[("bond1", &["m1"], "v10")]);
    let plan = drv.plan(&desired).await.unwrap();
    drv.apply(&plan).await.unwrap();
    let before = drv.observe().await.unwrap();

    let grown = intent_with(&[], &[("bond1", &["m1", "nosuchm"], "v10")]);
    let plan = drv.plan(&grown).await.unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].kind(), ChangeKind::Members);
    let err = drv.apply(&plan).await.unwrap_err();
    assert!(
        matches!(&err.source, SwitchError::NoSuchInterface { port, .. } if port.as_str() == "nosuchm"),
        "{:?}",
        err.source
    );
    assert_eq!(
        drv.observe().await.unwrap(),
        before,
        "the bond is as it was"
    );
    let ifaces = sw.vsctl(&["list-ifaces", "br0"]);
    assert_eq!(ifaces.split_whitespace().collect::<Vec<_>>(), ["m1"]);
}
