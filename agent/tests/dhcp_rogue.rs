//! Single authority: with dnsmasq already serving DHCP on the segment,
//! `dv-agent serve` refuses to start and names it; `--force-dhcp` serves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dhcp;

use std::process::Stdio;

use dhcp::{Bed, CLI_IF, start_agent};
use dv_tests::process::Guarded;

#[test]
fn another_dhcp_server_on_the_segment_stops_start_up_unless_forced() {
    if !dhcp::require("another_dhcp_server...", &["dnsmasq"]) {
        return;
    }
    let bed = Bed::new("rg", true);
    let leases = bed.dir.path().join("dnsmasq.leases");
    let _dnsmasq = Guarded::spawn(
        bed.cli
            .command("dnsmasq")
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                "--bind-interfaces",
                "--user=root",
                "--group=root",
                "--no-resolv",
                "--no-hosts",
                "--log-dhcp",
            ])
            .arg(format!("--interface={CLI_IF}"))
            .arg("--dhcp-range=10.88.0.150,10.88.0.160,1h")
            .arg(format!("--dhcp-leasefile={}", leases.display()))
            .arg(format!(
                "--pid-file={}",
                bed.dir.path().join("dnsmasq.pid").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));

    let config = bed.write_config("");
    let (code, log) = match start_agent(&bed, &config, &[]) {
        Ok(_) => panic!("agent served next to dnsmasq"),
        Err(e) => e,
    };
    assert_eq!(code, Some(1), "exit code; log: {log:#?}");
    let text = log.join("\n");
    assert!(
        text.contains("another DHCP server answers on interface dvs0: 10.88.0.2"),
        "error does not name the other server: {text}"
    );

    let mut agent =
        start_agent(&bed, &config, &["--force-dhcp"]).unwrap_or_else(|e| panic!("{e:?}"));
    let seen = agent.seen.join("\n");
    assert!(seen.contains("serving anyway (--force-dhcp)"), "{seen}");
    assert!(
        seen.contains("DHCP serving")
            || agent
                .wait_log("DHCP serving", std::time::Duration::from_secs(5))
                .is_some()
    );
    agent.stop();
}
