//! busybox udhcpc, the client in most initrds and embedded systems, gets a
//! pool address and the subnet's options from the agent; a lease its client
//! abandons runs out, and the agent records that and withdraws its name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dhcp;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use dhcp::{Bed, CLI_IF, dig, start_agent};
use dv_tests::wait_for;

/// udhcpc's event script: on `bound`, write its environment to a file.
fn write_script(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("udhcpc.sh");
    let out = dir.join("bound.env");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = bound ] && env > {}.tmp && mv {}.tmp {}\nexit 0\n",
            out.display(),
            out.display(),
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

#[test]
fn udhcpc_gets_a_pool_address_and_the_subnet_options() {
    if !dhcp::require(
        "udhcpc_gets_a_pool_address_and_the_subnet_options",
        &["udhcpc"],
    ) {
        return;
    }
    let bed = Bed::new("uc", false);
    let agent = start_agent(&bed, &bed.write_config(""), &[])
        .unwrap_or_else(|e| panic!("agent failed: {e:?}"));
    let script = write_script(bed.dir.path());
    // -q: quit once bound; -n: fail rather than retry forever; bounded by
    // -t/-T and by the timeout of the wait below.
    let out = bed
        .cli
        .command("timeout")
        .args(["30", "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "2"])
        .args(["-i", CLI_IF, "-s"])
        .arg(&script)
        .output()
        .unwrap();
    let env_file = bed.dir.path().join("bound.env");
    let text = std::fs::read_to_string(&env_file).unwrap_or_else(|_| {
        panic!(
            "udhcpc did not bind: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let ip: Ipv4Addr = vars["ip"].parse().unwrap();
    assert!(
        (Ipv4Addr::new(10, 88, 0, 100)..=Ipv4Addr::new(10, 88, 0, 119)).contains(&ip),
        "{ip} is outside the pool"
    );
    assert_eq!(vars["subnet"], "255.255.255.0");
    assert_eq!(vars["router"].trim(), "10.88.0.1");
    assert_eq!(vars["dns"].trim(), "10.88.0.1 10.88.0.3");
    assert_eq!(vars["domain"], "lab.dataverket.test");
    assert_eq!(vars["lease"], "20");
    assert_eq!(vars["mtu"], "1400");
    assert_eq!(vars["serverid"], "10.88.0.1");
    let row = dhcp::lease_row(&bed.db(), ip).unwrap();
    assert_eq!(row.0, "bound");
    agent.stop();
}

#[test]
fn a_lease_its_client_abandons_expires_and_leaves_dns() {
    if !dhcp::require(
        "a_lease_its_client_abandons_expires_and_leaves_dns",
        &["udhcpc", "dig"],
    ) {
        return;
    }
    let bed = Bed::new("ux", false);
    let mut agent = start_agent(&bed, &bed.write_config(""), &[])
        .unwrap_or_else(|e| panic!("agent failed: {e:?}"));
    let script = write_script(bed.dir.path());
    // -q quits once bound without releasing: the client vanishes, as a
    // machine that is switched off does. The subnet's lease time is 20 s.
    let out = bed
        .cli
        .command("timeout")
        .args(["30", "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "2"])
        .args(["-x", "hostname:gone-away", "-i", CLI_IF, "-s"])
        .arg(&script)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(bed.dir.path().join("bound.env")).unwrap_or_else(|_| {
        panic!(
            "udhcpc did not bind: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let ip: Ipv4Addr = vars["ip"].parse().unwrap();
    let name = "gone-away.lab.dataverket.test";
    let named = wait_for(Duration::from_secs(10), || {
        (dig(&bed, &[name, "A"]) == ip.to_string()).then_some(())
    });
    assert!(
        named.is_some(),
        "no A record while bound: {}",
        dig(&bed, &[name])
    );

    // Lease time 20 s, sweeps every 5 s: expired within half a minute.
    let expired = wait_for(Duration::from_secs(45), || {
        dhcp::lease_row(&bed.db(), ip).filter(|r| r.0 == "expired")
    });
    assert!(
        expired.is_some(),
        "lease not expired: {:?}\n{}",
        dhcp::lease_row(&bed.db(), ip),
        agent.log_text()
    );
    let gone = wait_for(Duration::from_secs(10), || {
        dig(&bed, &[name, "A"]).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "A record outlived the lease: {}",
        dig(&bed, &[name])
    );
    assert!(
        dig(&bed, &["-x", &ip.to_string()]).is_empty(),
        "PTR outlived the lease"
    );
    // The expiry is an event for the hub, committed with the row.
    let conn =
        rusqlite::Connection::open_with_flags(bed.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let events: i64 = conn
        .query_row(
            "SELECT count(*) FROM outbox WHERE subject LIKE '%lease.expired%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(events, 1);
    agent.stop();
}
