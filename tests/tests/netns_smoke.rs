//! The namespace helpers themselves: two namespaces joined by a veth pair can
//! ping each other, and everything is gone after drop.
#![allow(clippy::unwrap_used)]

use dv_tests::netns::{Netns, ip, require_netns, veth};

#[test]
fn veth_pair_connects_two_namespaces_and_drop_removes_them() {
    if !require_netns("veth_pair_connects_two_namespaces_and_drop_removes_them") {
        return;
    }
    let (a, b) = (Netns::new("a").unwrap(), Netns::new("b").unwrap());
    veth(&a, "va", &b, "vb").unwrap();
    a.addr_up("va", "10.250.0.1/30").unwrap();
    b.addr_up("vb", "10.250.0.2/30").unwrap();
    let ping = a
        .command("ping")
        .args(["-c", "1", "-W", "2", "10.250.0.2"])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let names = [a.name().to_owned(), b.name().to_owned()];
    drop((a, b));
    let list = String::from_utf8(ip(&["netns", "list"]).unwrap().stdout).unwrap();
    for n in names {
        assert!(!list.contains(&n), "{n} still exists: {list}");
    }
}
