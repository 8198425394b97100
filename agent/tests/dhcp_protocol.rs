//! The DHCP server's protocol paths over a real wire, driven by a typed
//! client (dhcproto) from a second namespace: relayed requests (giaddr picks
//! the subnet, option 82 is echoed and recorded), DECLINE quarantine, INFORM
//! without allocation, NAK for a wrong address, iPXE's entry script, and
//! a named lease's DNS records appearing and going with the lease.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dhcp;

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcp::{Bed, Client, dig, lease_row, mac, msg_type, server_id, start_agent};
use dhcproto::v4::{self, DhcpOption, MessageType, OptionCode};
use dv_tests::wait_for;

fn bootfile(m: &v4::Message) -> Option<String> {
    match m.opts().get(OptionCode::BootfileName) {
        Some(DhcpOption::BootfileName(b)) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

#[test]
fn direct_and_relayed_subnets_with_option_82() {
    if !dhcp::require("direct_and_relayed_subnets_with_option_82", &[]) {
        return;
    }
    let bed = Bed::new("rl", true);
    let agent = start_agent(&bed, &bed.write_config(""), &[]).unwrap_or_else(|e| panic!("{e:?}"));

    // Direct: the veth's subnet.
    let direct = Client::direct(&bed.cli);
    let (offer, ack) = direct.dora(mac(1), 0x1000, |_| {});
    assert!(v4_in(offer.yiaddr(), "10.88.0.0/24"), "{}", offer.yiaddr());
    assert_eq!(msg_type(&ack), Some(MessageType::Ack));

    // Relayed: giaddr 10.99.0.1 selects 10.99.0.0/24; option 82 with a
    // circuit id and remote id comes back and lands on the lease row.
    let relay = Client::relay(&bed.cli);
    let agent_info = vec![
        1, 6, b'p', b'o', b'r', b't', b'-', b'7', 2, 3, b's', b'w', b'1',
    ];
    let opt82 = v4::UnknownOption::new(OptionCode::RelayAgentInformation, agent_info.clone());
    let add82 = |m: &mut v4::Message| {
        m.opts_mut().insert(DhcpOption::Unknown(opt82.clone()));
    };
    let (offer, ack) = relay.dora(mac(2), 0x2000, add82);
    let ip = offer.yiaddr();
    assert!(v4_in(ip, "10.99.0.0/24"), "{ip}");
    assert_eq!(server_id(&offer), Some(Ipv4Addr::new(10, 88, 0, 1)));
    assert_eq!(msg_type(&ack), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), ip);
    assert_eq!(ack.giaddr(), Ipv4Addr::new(10, 99, 0, 1));
    match ack.opts().get(OptionCode::RelayAgentInformation) {
        Some(o) => {
            let mut b = Vec::new();
            dhcproto::Encodable::encode(o, &mut dhcproto::Encoder::new(&mut b)).unwrap();
            assert_eq!(&b[2..], &agent_info[..], "option 82 not echoed as sent");
        }
        None => panic!("option 82 not echoed"),
    }
    let row = lease_row(&bed.db(), ip).unwrap();
    assert_eq!(row.0, "bound");
    assert_eq!(
        row.2.as_deref(),
        Some(&agent_info[..]),
        "option 82 not recorded"
    );
    agent.stop();
}

fn v4_in(ip: Ipv4Addr, net: &str) -> bool {
    net.parse::<ipnet::Ipv4Net>().unwrap().contains(&ip)
}

#[test]
fn decline_quarantines_inform_allocates_nothing_wrong_address_gets_nak() {
    if !dhcp::require("decline_quarantines...", &[]) {
        return;
    }
    let bed = Bed::new("dn", true);
    let agent = start_agent(&bed, &bed.write_config(""), &[]).unwrap_or_else(|e| panic!("{e:?}"));
    let c = Client::direct(&bed.cli);

    // DECLINE: the address is quarantined; the next client gets another one
    // and the decliner itself is not offered it again.
    let (_, ack) = c.dora(mac(10), 0x3000, |_| {});
    let declined = ack.yiaddr();
    let mut d = c.message(MessageType::Decline, mac(10), 0x3100);
    d.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(declined));
    d.opts_mut()
        .insert(DhcpOption::ServerIdentifier(server_id(&ack).unwrap()));
    c.send(&d);
    let row = wait_for(Duration::from_secs(5), || {
        lease_row(&bed.db(), declined).filter(|r| r.0 == "declined")
    });
    assert!(row.is_some(), "declined address not quarantined");
    for (n, who) in [(11u32, mac(11)), (12, mac(10))] {
        let offer = c
            .exchange(&c.message(MessageType::Discover, who, 0x3200 + n))
            .unwrap();
        assert_ne!(offer.yiaddr(), declined, "quarantined address offered");
    }

    // INFORM: options, no address, no lease time, no lease row.
    let mut inf = c.message(MessageType::Inform, mac(13), 0x4000);
    inf.set_ciaddr(Ipv4Addr::new(10, 88, 0, 2));
    let ack = c.exchange(&inf).expect("INFORM not answered");
    assert_eq!(msg_type(&ack), Some(MessageType::Ack));
    assert!(ack.yiaddr().is_unspecified());
    assert!(ack.opts().get(OptionCode::AddressLeaseTime).is_none());
    assert!(ack.opts().get(OptionCode::Router).is_some());
    assert!(lease_row(&bed.db(), Ipv4Addr::new(10, 88, 0, 2)).is_none());

    // INIT-REBOOT for an address on another network: NAK.
    let mut r = c.message(MessageType::Request, mac(14), 0x5000);
    r.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(
            192, 168, 1, 50,
        )));
    let nak = c.exchange(&r).expect("no NAK");
    assert_eq!(msg_type(&nak), Some(MessageType::Nak));
    // ... and for an address another client holds: NAK.
    let mut r = c.message(MessageType::Request, mac(15), 0x5100);
    r.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(declined));
    assert_eq!(msg_type(&c.exchange(&r).unwrap()), Some(MessageType::Nak));
    // ... and for the reserved address of another MAC: NAK.
    let mut r = c.message(MessageType::Request, mac(16), 0x5200);
    r.opts_mut()
        .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 88, 0, 11)));
    assert_eq!(msg_type(&c.exchange(&r).unwrap()), Some(MessageType::Nak));
    agent.stop();
}

#[test]
fn ipxe_gets_the_entry_script_over_tftp() {
    if !dhcp::require("ipxe_gets_the_entry_script_over_tftp", &[]) {
        return;
    }
    let bed = Bed::new("px", true);
    let agent = start_agent(&bed, &bed.write_config(""), &[]).unwrap_or_else(|e| panic!("{e:?}"));
    let c = Client::direct(&bed.cli);
    let ipxe = |m: &mut v4::Message| {
        m.opts_mut().insert(DhcpOption::UserClass(b"iPXE".to_vec()));
        m.opts_mut().insert(DhcpOption::ClassIdentifier(
            b"PXEClient:Arch:00007:UNDI:003010".to_vec(),
        ));
        m.opts_mut()
            .insert(DhcpOption::ClientSystemArchitecture(7.into()));
    };
    // Every iPXE client gets the entry script over TFTP; it chains the
    // machine's HTTP script (unknown machines: discovery) and falls back to
    // the local disk when HTTP is down.
    let entry = "tftp://10.88.0.1/fallback.ipxe";
    let mut d = c.message(MessageType::Discover, mac(20), 0x6000);
    ipxe(&mut d);
    let offer = c.exchange(&d).unwrap();
    assert_eq!(bootfile(&offer).as_deref(), Some(entry));
    let file = offer
        .fname_str()
        .and_then(Result::ok)
        .map(|f| f.trim_end_matches('\0'));
    assert_eq!(file, Some(entry), "file header field");
    let known = [0x52, 0x54, 0x00, 0x00, 0x88, 0x01];
    let (_, ack) = c.dora(known, 0x6100, ipxe);
    assert_eq!(ack.yiaddr(), Ipv4Addr::new(10, 88, 0, 11));
    assert_eq!(bootfile(&ack).as_deref(), Some(entry));
    // Plain UEFI PXE (no user class): TFTP snponly.efi from 10.88.0.1.
    let mut d = c.message(MessageType::Discover, mac(21), 0x6200);
    d.opts_mut().insert(DhcpOption::ClassIdentifier(
        b"PXEClient:Arch:00007:UNDI:003000".to_vec(),
    ));
    d.opts_mut()
        .insert(DhcpOption::ClientSystemArchitecture(7.into()));
    let offer = c.exchange(&d).unwrap();
    assert_eq!(bootfile(&offer).as_deref(), Some("snponly.efi"));
    assert_eq!(offer.siaddr(), Ipv4Addr::new(10, 88, 0, 1));
    agent.stop();
}

/// GET `path` from the agent's HTTP listener, which sits in the server
/// namespace.
fn curl(bed: &Bed, http: std::net::SocketAddr, path: &str) -> String {
    let out = bed
        .srv
        .command("curl")
        .args(["-s", "--max-time", "5"])
        .arg(format!("http://{http}{path}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_bound_lease_with_a_host_name_is_in_dns_until_released() {
    if !dhcp::require(
        "a_bound_lease_with_a_host_name_is_in_dns_until_released",
        &["dig", "curl"],
    ) {
        return;
    }
    let bed = Bed::new("ld", true);
    let agent = start_agent(&bed, &bed.write_config(""), &[]).unwrap_or_else(|e| panic!("{e:?}"));
    let client = Client::direct(&bed.cli);
    let named = |m: &mut v4::Message| {
        m.opts_mut()
            .insert(DhcpOption::Hostname("web-7".to_owned()));
    };
    let (_, ack) = client.dora(mac(7), 0x7000, named);
    assert_eq!(msg_type(&ack), Some(MessageType::Ack));
    let ip = ack.yiaddr().to_string();

    let a = wait_for(Duration::from_secs(10), || {
        let answer = dig(&bed, &["web-7.lab.dataverket.test", "A"]);
        (answer == ip).then_some(answer)
    });
    assert!(
        a.is_some(),
        "no A record for the lease: {}",
        dig(&bed, &["web-7.lab.dataverket.test"])
    );
    assert_eq!(dig(&bed, &["-x", &ip]), "web-7.lab.dataverket.test.");

    // The operator sees it through the API and in the metrics.
    let bound: serde_json::Value =
        serde_json::from_str(&curl(&bed, agent.http, "/v1/leases?state=bound")).unwrap();
    let lease = bound
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["ip"] == ip.as_str())
        .unwrap_or_else(|| panic!("{ip} not in /v1/leases: {bound}"));
    assert_eq!(lease["mac"], "52:54:01:00:00:07");
    assert_eq!(lease["hostname"], "web-7");
    assert_eq!(lease["subnet"], "10.88.0.0/24");
    let metrics = curl(&bed, agent.http, "/metrics");
    for line in [
        "dv_dhcp_pool_addresses{subnet=\"10.88.0.0/24\"} 20",
        "dv_dhcp_leases{subnet=\"10.88.0.0/24\",state=\"bound\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    assert!(metrics.contains("dv_dhcp_sent_total{"), "{metrics}");
    let refused = curl(&bed, agent.http, "/v1/leases?state=nonsense");
    assert!(refused.contains("state must be one of"), "{refused}");

    let mut release = client.message(MessageType::Release, mac(7), 0x7100);
    release.set_ciaddr(ack.yiaddr());
    release
        .opts_mut()
        .insert(DhcpOption::ServerIdentifier(server_id(&ack).unwrap()));
    client.send(&release);
    let gone = wait_for(Duration::from_secs(10), || {
        dig(&bed, &["web-7.lab.dataverket.test", "A"])
            .is_empty()
            .then_some(())
    });
    assert!(gone.is_some(), "the released lease still resolves");
    agent.stop();
}
