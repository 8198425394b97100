//! `[[switches]]`: each driver's settings, defaults, and each bad value
//! reported at its line.

use std::path::PathBuf;
use std::time::Duration;

use super::{FIXTURE, expect_only, load, problems};
use crate::config::{OvsdbRemote, SwitchDriverConfig};

fn with(section: &str) -> String {
    format!("{FIXTURE}\n{section}")
}

const OVS: &str = "[[switches]]\nname = \"leaf-1\"\ndriver = \"ovs\"\novsdb = \"unix:/run/openvswitch/db.sock\"\nbridge = \"br0\"\n";

#[test]
fn absent_means_none_and_each_driver_loads() {
    assert!(load(FIXTURE).unwrap().switches.is_empty());
    let text = with(&format!(
        "{OVS}\n[[switches]]\nname = \"leaf-2\"\ndriver = \"ovs\"\novsdb = \"tcp:192.0.2.10:6640\"\nbridge = \"br-int\"\ndrift_interval = \"5m\"\n\n[[switches]]\nname = \"host-br\"\ndriver = \"netlink\"\nbridge = \"br0\"\n"
    ));
    let s = load(&text).unwrap().switches;
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].name.as_str(), "leaf-1");
    assert_eq!(
        s[0].driver,
        SwitchDriverConfig::Ovs {
            ovsdb: OvsdbRemote::Unix(PathBuf::from("/run/openvswitch/db.sock")),
            bridge: "br0".into()
        }
    );
    assert_eq!(s[0].drift_interval, Duration::from_secs(60));
    assert_eq!(
        s[1].driver,
        SwitchDriverConfig::Ovs {
            ovsdb: OvsdbRemote::Tcp("192.0.2.10:6640".into()),
            bridge: "br-int".into()
        }
    );
    assert_eq!(s[1].drift_interval, Duration::from_secs(300));
    assert_eq!(
        s[2].driver,
        SwitchDriverConfig::Netlink {
            bridge: "br0".into()
        }
    );
}

#[test]
fn each_bad_value_names_its_field() {
    let cases = [
        (
            "driver = \"ovs\"",
            "driver = \"cisco\"",
            "switches[0].driver",
            "not a switch driver",
        ),
        (
            "ovsdb = \"unix:/run/openvswitch/db.sock\"",
            "ovsdb = \"db.sock\"",
            "switches[0].ovsdb",
            "not an OVSDB remote",
        ),
        (
            "ovsdb = \"unix:/run/openvswitch/db.sock\"",
            "ovsdb = \"tcp:192.0.2.10\"",
            "switches[0].ovsdb",
            "tcp:<host>:<port>",
        ),
        (
            "bridge = \"br0\"",
            "bridge = \"a bridge\"",
            "switches[0].bridge",
            "not a bridge name",
        ),
        (
            "name = \"leaf-1\"",
            "name = \"Leaf_1\"",
            "switches[0].name",
            "switch name",
        ),
    ];
    for (old, new, field, words) in cases {
        let text = with(&OVS.replace(old, new));
        expect_only(&text, new, field, words);
    }
    let text = with(&format!("{OVS}drift_interval = \"soon\"\n"));
    expect_only(
        &text,
        "drift_interval = \"soon\"",
        "switches[0].drift_interval",
        "",
    );
    let text = with(&OVS.replace("ovsdb = \"unix:/run/openvswitch/db.sock\"\n", ""));
    let found = problems(&text);
    assert!(
        found
            .iter()
            .any(|p| p.field == "switches[0].ovsdb" && p.message.contains("needs ovsdb")),
        "{found:#?}"
    );
    let text = with(&format!("{OVS}\n{OVS}"));
    let found = problems(&text);
    assert!(
        found
            .iter()
            .any(|p| p.field == "switches[1].name" && p.message.contains("listed twice")),
        "{found:#?}"
    );
    let text = with(
        "[[switches]]\nname = \"h\"\ndriver = \"netlink\"\nbridge = \"br0\"\novsdb = \"unix:/x\"\n",
    );
    let found = problems(&text);
    assert!(
        found
            .iter()
            .any(|p| p.field == "switches[0].ovsdb" && p.message.contains("remove ovsdb")),
        "{found:#?}"
    );
    let text = with(&format!("{OVS}color = \"blue\"\n"));
    assert!(!problems(&text).is_empty(), "unknown keys are refused");
}
