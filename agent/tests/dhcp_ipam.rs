//! The DHCP server serves IPAM reservations live (issue 8): busybox udhcpc
//! gets a pool address, then, once an address is allocated with its MAC
//! through the agent's API, exactly that address and its host name, without
//! a restart; after the allocation is released, a pool address again. The
//! allocate call refuses a MAC or address that agent.toml reserves (409,
//! nothing stored), because agent.toml's reservations win, and an address
//! another client holds a DHCP lease on. A network narrower than the served
//! subnet, inside it, is served too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dhcp;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

use dhcp::{Bed, CLI_IF, dig, start_agent};
use dv_tests::api::Api;

/// The client's NIC, set on the veth so the allocation can name it.
const CLIENT_MAC: &str = "52:54:00:00:88:42";
/// The address allocated for it: outside the pool (.100-.119), so a lease
/// of it that outlives the allocation is never offered again by the pool.
const RESERVED: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 50);

/// udhcpc's event script: on `bound`, write its environment to `out`.
fn write_script(dir: &Path, out: &Path) -> std::path::PathBuf {
    let script = dir.join("udhcpc.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = bound ] && env > {o}.tmp && mv {o}.tmp {o}\nexit 0\n",
            o = out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

/// One bounded udhcpc run (quit once bound, give up after 5 tries of 2 s,
/// killed after 30 s): the environment its script saw at `bound`.
fn udhcpc(bed: &Bed, run: &str) -> HashMap<String, String> {
    let out_file = bed.dir.path().join(format!("{run}.env"));
    let script = write_script(bed.dir.path(), &out_file);
    let out = bed
        .cli
        .command("timeout")
        .args(["30", "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "2"])
        .args(["-i", CLI_IF, "-s"])
        .arg(&script)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&out_file).unwrap_or_else(|_| {
        panic!(
            "udhcpc ({run}) did not bind: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// A test bed whose client NIC has `CLIENT_MAC`, and an agent serving it.
fn bed_and_agent(tag: &str) -> (Bed, dhcp::Agent) {
    let bed = Bed::new(tag, false);
    for args in [
        &["link", "set", CLI_IF, "down"][..],
        &["link", "set", CLI_IF, "address", CLIENT_MAC],
        &["link", "set", CLI_IF, "up"],
    ] {
        bed.cli.ip(args).unwrap();
    }
    let agent = start_agent(&bed, &bed.write_config(""), &[])
        .unwrap_or_else(|e| panic!("agent failed: {e:?}"));
    (bed, agent)
}

fn in_pool(ip: Ipv4Addr) -> bool {
    (Ipv4Addr::new(10, 88, 0, 100)..=Ipv4Addr::new(10, 88, 0, 119)).contains(&ip)
}

fn count(bed: &Bed, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(bed.db()).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn udhcpc_gets_its_ipam_reservation_live_and_a_pool_address_once_released() {
    if !dhcp::require(
        "udhcpc_gets_its_ipam_reservation_live_and_a_pool_address_once_released",
        &["udhcpc", "curl", "dig"],
    ) {
        return;
    }
    let (bed, agent) = bed_and_agent("ui");
    let base = format!("http://{}", agent.http);
    let api = Api::within(&bed.srv, &base);

    // Before any allocation: a pool address.
    let first = udhcpc(&bed, "before");
    let ip: Ipv4Addr = first["ip"].parse().unwrap();
    assert!(in_pool(ip), "{ip} is outside the pool");

    let (code, body) = api.post_json(
        "/v1/networks",
        r#"{"name":"lab","vlan":20,"purpose":"provisioning","prefix":"10.88.0.0/24",
            "gateway":"10.88.0.1","dhcp":true,
            "reserved":[{"first":"10.88.0.2","last":"10.88.0.9"}]}"#,
    );
    assert_eq!(code, 201, "{body}");

    // agent.toml reserves 52:54:00:00:88:01 -> 10.88.0.11: both refused,
    // nothing stored.
    let (code, body) = api.post_json(
        "/v1/networks/lab/addresses",
        r#"{"mac":"52:54:00:00:88:01"}"#,
    );
    assert_eq!(code, 409, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("52:54:00:00:88:01") && msg.contains("agent.toml"),
        "{body}"
    );
    let (code, body) = api.post_json(
        "/v1/networks/lab/addresses",
        r#"{"address":"10.88.0.11","mac":"52:54:00:00:88:43"}"#,
    );
    assert_eq!(code, 409, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("10.88.0.11") && msg.contains("agent.toml"),
        "{body}"
    );
    assert_eq!(count(&bed, "allocation"), 0);
    assert_eq!(count(&bed, "dhcp_reservation"), 0);

    // Allocated with the client's MAC: served from the commit on.
    let (code, a) = api.post_json(
        "/v1/networks/lab/addresses",
        &format!(r#"{{"hostname":"web-1","mac":"{CLIENT_MAC}","address":"{RESERVED}"}}"#),
    );
    assert_eq!(code, 201, "{a}");
    assert_eq!(a["dhcp_reservation"]["ip"], RESERVED.to_string(), "{a}");
    let reserved = udhcpc(&bed, "reserved");
    assert_eq!(reserved["ip"], RESERVED.to_string(), "{reserved:?}");
    assert_eq!(reserved["hostname"], "web-1", "{reserved:?}");
    assert_eq!(
        dig(&bed, &["web-1.lab.dataverket.test"]),
        RESERVED.to_string()
    );
    let row = dhcp::lease_row(&bed.db(), RESERVED).unwrap();
    assert_eq!((row.0.as_str(), row.1.as_str()), ("bound", CLIENT_MAC));

    // Released: the next run (same MAC and client id; its lease of .50
    // still runs, but .50 is no pool address, so it is not offered again)
    // gets a pool address and no reserved name.
    let (code, body) = api.curl(
        &["-X", "DELETE"],
        &format!("/v1/networks/lab/addresses/{RESERVED}"),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(count(&bed, "dhcp_reservation"), 0);
    let after = udhcpc(&bed, "after");
    let ip: Ipv4Addr = after["ip"].parse().unwrap();
    assert!(in_pool(ip), "{ip} is outside the pool: {after:?}");
    assert!(!after.contains_key("hostname"), "{after:?}");
    agent.stop();
}

#[test]
fn a_narrower_network_inside_the_served_subnet_is_served_and_leased_addresses_are_refused() {
    if !dhcp::require(
        "a_narrower_network_inside_the_served_subnet_is_served_and_leased_addresses_are_refused",
        &["udhcpc", "curl"],
    ) {
        return;
    }
    let (bed, agent) = bed_and_agent("un");
    let base = format!("http://{}", agent.http);
    let api = Api::within(&bed.srv, &base);

    // The client leases a pool address first.
    let first = udhcpc(&bed, "before");
    let leased: Ipv4Addr = first["ip"].parse().unwrap();
    assert!(in_pool(leased), "{leased} is outside the pool");
    let row = dhcp::lease_row(&bed.db(), leased).unwrap();
    assert_eq!((row.0.as_str(), row.1.as_str()), ("bound", CLIENT_MAC));

    // A /25 inside the served 10.88.0.0/24; .2-.99 reserved, so the lowest
    // free address is in the pool's range (.100-.119).
    let (code, body) = api.post_json(
        "/v1/networks",
        r#"{"name":"half","vlan":21,"purpose":"provisioning","prefix":"10.88.0.0/25",
            "gateway":"10.88.0.1","dhcp":true,
            "reserved":[{"first":"10.88.0.2","last":"10.88.0.99"}]}"#,
    );
    assert_eq!(code, 201, "{body}");

    // Another NIC asking for the leased address: 409 naming the holder and
    // when its lease ends; nothing stored.
    let (code, body) = api.post_json(
        "/v1/networks/half/addresses",
        &format!(r#"{{"address":"{leased}","mac":"52:54:00:00:88:43"}}"#),
    );
    assert_eq!(code, 409, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains(CLIENT_MAC) && msg.contains("leased") && msg.contains("until"),
        "{body}"
    );
    assert_eq!(count(&bed, "allocation"), 0);
    // The lowest-free pick passes over it.
    let (code, a) = api.post_json("/v1/networks/half/addresses", r#"{"owner":"probe"}"#);
    assert_eq!(code, 201, "{a}");
    let picked: Ipv4Addr = a["address"].as_str().unwrap().parse().unwrap();
    assert_ne!(picked, leased, "{a}");
    assert!(picked >= Ipv4Addr::new(10, 88, 0, 100), "{a}");

    // The client's own MAC on a /25 address: served on the /24 it asks on.
    // .120: past the pool, inside the /25.
    let narrow = Ipv4Addr::new(10, 88, 0, 120);
    let (code, a) = api.post_json(
        "/v1/networks/half/addresses",
        &format!(r#"{{"hostname":"half-1","mac":"{CLIENT_MAC}","address":"{narrow}"}}"#),
    );
    assert_eq!(code, 201, "{a}");
    let got = udhcpc(&bed, "narrow");
    assert_eq!(got["ip"], narrow.to_string(), "{got:?}");
    assert_eq!(got["hostname"], "half-1", "{got:?}");
    // The served subnet's mask and router, not the /25's.
    assert_eq!(got["subnet"], "255.255.255.0", "{got:?}");
    agent.stop();
}
