//! busybox udhcpc, the client in most initrds and embedded systems, gets a
//! pool address and the subnet's options from the agent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dhcp;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

use dhcp::{Bed, CLI_IF, start_agent};

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
