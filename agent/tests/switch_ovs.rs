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
//! answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use dv_agent::nett::switch::ovs::OvsSwitch;
use dv_agent::nett::switch::{
    ChangeKind, PortConfig, Ports, SwitchDriver, SwitchError, desired_ports,
};
use dv_protocol::{
    PortAssignment, PortMode, PortName, PortProfile, PortProfileName, SwitchName, VlanId,
};
use dv_tests::netns::{Netns, require_netns};
use dv_tests::ovs::{OvsSwitchNs, cable, ping, require_ovs};

fn vlan(v: u16) -> VlanId {
    VlanId::new(v).unwrap()
}

fn port(p: &str) -> PortName {
    PortName::new(p).unwrap()
}

fn access(v: u16) -> PortConfig {
    PortConfig::Access { vlan: vlan(v) }
}

/// `true` when the test may run; panics when Open vSwitch is missing.
fn gate(test: &str) -> bool {
    if !require_netns(test) {
        return false;
    }
    require_ovs(test);
    true
}

/// The site intent for switch `sw1`: profiles `v10`, `v20` (access),
/// `uplink` (trunk 10,20) and `hv` (trunk 10,20, native 10), and the given
/// port assignments.
fn intent(assign: &[(&str, &str)]) -> Ports {
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
    desired_ports(&profiles, &assignments, &SwitchName::new("sw1").unwrap()).unwrap()
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
    assert_eq!(want1.get(&port("up1")), Some(&trunk));
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
    let mut c = OvsdbClient::connect_unix(&sw.db_socket(), std::time::Duration::from_secs(10))
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
