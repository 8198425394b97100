//! ISC dhclient against `dv-agent serve` in network namespaces: a pool
//! address with the subnet's options, a reserved MAC's address and host
//! name, a renewal at T1 that keeps the address, and a release that frees
//! the lease row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dhcp;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use dhcp::{Bed, CLI_IF, lease_row, start_agent};
use dv_tests::process::Guarded;
use dv_tests::wait_for;

/// A dhclient script that records each event's environment and configures
/// the address (inside the client namespace only); it never touches
/// /etc/resolv.conf, unlike the stock dhclient-script.
fn write_script(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("dhclient-script");
    let log = dir.join("events");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n{{ echo \"reason=$reason\"; env | grep '^new_' ; echo '--'; }} >> {log}\n\
             case \"$reason\" in BOUND|RENEW|REBIND|REBOOT) ip addr replace \"$new_ip_address/24\" dev \"$interface\" ;; esac\n\
             exit 0\n",
            log = log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The events dhclient reported so far: (reason, new_* variables).
fn events(dir: &Path) -> Vec<(String, HashMap<String, String>)> {
    let text = std::fs::read_to_string(dir.join("events")).unwrap_or_default();
    // Only blocks the script finished (terminated by "--"): the file may be
    // read while the script is still writing the last one.
    let mut blocks: Vec<&str> = text.split("--\n").collect();
    blocks.pop();
    blocks
        .into_iter()
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut reason = String::new();
            let mut vars = HashMap::new();
            for line in block.lines() {
                if let Some(r) = line.strip_prefix("reason=") {
                    reason = r.to_owned();
                } else if let Some((k, v)) = line.split_once('=') {
                    vars.insert(k.to_owned(), v.to_owned());
                }
            }
            (reason, vars)
        })
        .collect()
}

fn dhclient(bed: &Bed, script: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = bed.cli.command("dhclient");
    cmd.args(["-d", "-v", "-sf"])
        .arg(script)
        .arg("-lf")
        .arg(bed.dir.path().join("dhclient.leases"))
        .arg("-pf")
        .arg(bed.dir.path().join("dhclient.pid"))
        .args(args)
        .arg(CLI_IF)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

#[test]
fn dhclient_gets_pool_address_with_options_renews_and_releases() {
    if !dhcp::require("dhclient_gets_pool_address...", &["dhclient"]) {
        return;
    }
    let bed = Bed::new("dh", false);
    let config = bed.write_config("");
    let agent = start_agent(&bed, &config, &[]).unwrap_or_else(|e| panic!("agent failed: {e:?}"));
    let script = write_script(bed.dir.path());

    // Runs in the foreground (-d) so the guard can stop it; renews at T1 = 4 s.
    let mut client = Guarded::spawn(&mut dhclient(&bed, &script, &[])).unwrap();
    let bound = wait_for(Duration::from_secs(30), || {
        events(bed.dir.path())
            .into_iter()
            .find(|(r, _)| r == "BOUND")
    })
    .expect("dhclient never bound");
    let vars = bound.1;
    let ip: Ipv4Addr = vars["new_ip_address"].parse().unwrap();
    assert!(
        (Ipv4Addr::new(10, 88, 0, 100)..=Ipv4Addr::new(10, 88, 0, 119)).contains(&ip),
        "{ip} outside the pool"
    );
    assert_eq!(vars["new_routers"], "10.88.0.1");
    assert_eq!(vars["new_domain_name_servers"], "10.88.0.1 10.88.0.3");
    assert_eq!(vars["new_domain_name"], "lab.dataverket.test");
    assert_eq!(vars["new_interface_mtu"], "1400");
    assert_eq!(vars["new_dhcp_lease_time"], "20");
    assert_eq!(vars["new_subnet_mask"], "255.255.255.0");
    assert_eq!(vars["new_dhcp_server_identifier"], "10.88.0.1");
    assert_eq!(lease_row(&bed.db(), ip).unwrap().0, "bound");

    // T1 is 4 s: dhclient unicasts a renewal and must keep its address.
    let renewed = wait_for(Duration::from_secs(30), || {
        events(bed.dir.path())
            .into_iter()
            .find(|(r, _)| r == "RENEW")
    })
    .expect("dhclient never renewed");
    assert_eq!(renewed.1["new_ip_address"], ip.to_string());

    // Stop the daemon, then release: the row must say released.
    drop(client.0.take().map(|mut c| {
        let _ = c.kill();
        c.wait()
    }));
    let status = dhclient(&bed, &script, &["-r"]).status().unwrap();
    assert!(status.success());
    let released = wait_for(Duration::from_secs(10), || {
        lease_row(&bed.db(), ip).filter(|r| r.0 == "released")
    });
    assert!(
        released.is_some(),
        "lease row not released: {:?}",
        lease_row(&bed.db(), ip)
    );
    agent.stop();
}

#[test]
fn dhclient_with_a_reserved_mac_gets_its_address_and_host_name() {
    if !dhcp::require("dhclient_with_a_reserved_mac...", &["dhclient"]) {
        return;
    }
    let bed = Bed::new("dr", false);
    bed.cli
        .ip(&["link", "set", CLI_IF, "address", "52:54:00:00:88:01"])
        .unwrap();
    let config = bed.write_config("");
    let agent = start_agent(&bed, &config, &[]).unwrap_or_else(|e| panic!("agent failed: {e:?}"));
    let script = write_script(bed.dir.path());
    let _client = Guarded::spawn(&mut dhclient(&bed, &script, &[])).unwrap();
    let bound = wait_for(Duration::from_secs(20), || {
        events(bed.dir.path())
            .into_iter()
            .find(|(r, _)| r == "BOUND")
    })
    .expect("dhclient never bound");
    assert_eq!(bound.1["new_ip_address"], "10.88.0.11");
    assert_eq!(bound.1["new_host_name"], "node-01");
    let row = lease_row(&bed.db(), Ipv4Addr::new(10, 88, 0, 11)).unwrap();
    assert_eq!(row.0, "bound");
    assert_eq!(row.1, "52:54:00:00:88:01");

    // The reservation's name resolves through the agent's DNS, A and PTR.
    let a = wait_for(Duration::from_secs(10), || {
        let answer = dhcp::dig(&bed, &["node-01.lab.dataverket.test", "A"]);
        (!answer.is_empty()).then_some(answer)
    });
    assert_eq!(a.as_deref(), Some("10.88.0.11"));
    assert_eq!(
        dhcp::dig(&bed, &["-x", "10.88.0.11"]),
        "node-01.lab.dataverket.test."
    );
    agent.stop();
}
