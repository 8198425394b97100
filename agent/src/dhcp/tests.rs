//! Handler-level tests: whole replies for the PXE decisions, and proptests
//! that every reply round-trips through the codec and never names an
//! address outside its subnet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{self, DhcpOption, MessageType, OptionCode};
use dhcproto::{Decodable, Encodable};
use proptest::prelude::*;
use time::OffsetDateTime;

use super::boot::BootOptions;
use super::classify::classify;
use super::handler::{Arrival, Handler, Outcome};
use super::leases::LeaseIndex;
use crate::config::{ClientKey, Pool, Reservation, Subnet};

pub(crate) fn subnet() -> Subnet {
    Subnet {
        prefix: "10.0.0.0/24".parse().unwrap(),
        interface: Some("eth0".into()),
        router: Some(Ipv4Addr::new(10, 0, 0, 1)),
        dns_servers: vec![Ipv4Addr::new(10, 0, 0, 1)],
        domain_name: "lab.example.test".into(),
        ntp_servers: vec![],
        mtu: Some(1500),
        lease_time: Duration::from_secs(3600),
        renew_time: Duration::from_secs(1800),
        rebind_time: Duration::from_secs(3150),
        classless_routes: vec![],
        pxe: true,
        pools: vec![Pool {
            start: Ipv4Addr::new(10, 0, 0, 100),
            end: Ipv4Addr::new(10, 0, 0, 109),
        }],
        reservations: vec![Reservation {
            client: ClientKey::Mac("52:54:00:00:00:01".parse().unwrap()),
            ip: Ipv4Addr::new(10, 0, 0, 11),
            hostname: Some("node-01".into()),
        }],
    }
}

pub(crate) fn handler() -> Handler {
    Handler::new(
        vec![subnet()],
        BootOptions::new(Ipv4Addr::new(10, 0, 0, 1), 8680),
    )
}

fn local(_: &str, _: Ipv4Addr) -> Option<Ipv4Addr> {
    Some(Ipv4Addr::new(10, 0, 0, 1))
}

fn discover(mac: [u8; 6], edit: impl Fn(&mut v4::Message)) -> Vec<u8> {
    let mut m = v4::Message::new_with_id(
        7,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &mac,
    );
    m.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Discover));
    edit(&mut m);
    m.to_vec().unwrap()
}

fn offer(bytes: &[u8]) -> v4::Message {
    let req = classify(bytes).unwrap();
    let mut index = LeaseIndex::new();
    match handler().handle(
        &mut index,
        &req,
        Arrival { interface: "eth0" },
        &local,
        OffsetDateTime::now_utc(),
    ) {
        Outcome::Reply { reply, .. } => *reply,
        other => panic!("{other:?}"),
    }
}

/// (siaddr, option 66, option 67, file, option 60) of a reply.
fn boot_fields(
    m: &v4::Message,
) -> (
    Ipv4Addr,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    let text = |c| match m.opts().get(c) {
        Some(
            DhcpOption::TFTPServerName(b)
            | DhcpOption::BootfileName(b)
            | DhcpOption::ClassIdentifier(b),
        ) => Some(String::from_utf8(b.clone()).unwrap()),
        _ => None,
    };
    let file = m
        .fname_str()
        .and_then(Result::ok)
        .map(|f| f.trim_end_matches('\0').to_owned());
    (
        m.siaddr(),
        text(OptionCode::TFTPServerName),
        text(OptionCode::BootfileName),
        file,
        text(OptionCode::ClassIdentifier),
    )
}

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x99];
const KNOWN: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x01];

fn pxe(arch: u16, vendor: &'static [u8]) -> impl Fn(&mut v4::Message) {
    move |m| {
        m.opts_mut()
            .insert(DhcpOption::ClassIdentifier(vendor.to_vec()));
        m.opts_mut()
            .insert(DhcpOption::ClientSystemArchitecture(arch.into()));
    }
}

fn s(x: &str) -> Option<String> {
    Some(x.to_owned())
}

#[test]
fn bios_pxe_gets_undionly_over_tftp() {
    let m = offer(&discover(MAC, pxe(0, b"PXEClient:Arch:00000:UNDI:002001")));
    let tftp = Ipv4Addr::new(10, 0, 0, 1);
    assert_eq!(
        boot_fields(&m),
        (
            tftp,
            s("10.0.0.1"),
            s("undionly.kpxe"),
            s("undionly.kpxe"),
            None
        )
    );
    assert_eq!(m.yiaddr(), Ipv4Addr::new(10, 0, 0, 100));
}

#[test]
fn uefi_x64_pxe_gets_snponly_over_tftp() {
    for arch in [7, 9] {
        let m = offer(&discover(
            MAC,
            pxe(arch, b"PXEClient:Arch:00007:UNDI:003000"),
        ));
        assert_eq!(
            boot_fields(&m),
            (
                Ipv4Addr::new(10, 0, 0, 1),
                s("10.0.0.1"),
                s("snponly.efi"),
                s("snponly.efi"),
                None
            ),
            "arch {arch}"
        );
    }
}

#[test]
fn ia32_uefi_gets_an_address_but_no_boot_file() {
    let m = offer(&discover(MAC, pxe(6, b"PXEClient:Arch:00006:UNDI:003000")));
    assert_eq!(
        boot_fields(&m),
        (Ipv4Addr::UNSPECIFIED, None, None, None, None)
    );
    assert!(!m.yiaddr().is_unspecified());
}

#[test]
fn uefi_http_boot_gets_an_http_url_and_httpclient_echo() {
    let m = offer(&discover(
        MAC,
        pxe(16, b"HTTPClient:Arch:00016:UNDI:003001"),
    ));
    let url = "http://10.0.0.1:8680/boot/snponly.efi";
    assert_eq!(
        boot_fields(&m),
        (Ipv4Addr::UNSPECIFIED, None, s(url), s(url), s("HTTPClient"))
    );
}

#[test]
fn ipxe_gets_its_script_or_discovery() {
    let ipxe = |m: &mut v4::Message| {
        pxe(7, b"PXEClient:Arch:00007:UNDI:003010")(m);
        m.opts_mut().insert(DhcpOption::UserClass(b"iPXE".to_vec()));
    };
    let m = offer(&discover(MAC, ipxe));
    let url = "http://10.0.0.1:8680/boot/discover.ipxe";
    assert_eq!(
        boot_fields(&m),
        (Ipv4Addr::UNSPECIFIED, None, s(url), s(url), None)
    );
    let m = offer(&discover(KNOWN, ipxe));
    let url = "http://10.0.0.1:8680/boot/52:54:00:00:00:01.ipxe";
    assert_eq!(
        boot_fields(&m),
        (Ipv4Addr::UNSPECIFIED, None, s(url), s(url), None)
    );
    assert_eq!(m.yiaddr(), Ipv4Addr::new(10, 0, 0, 11));
    assert!(
        matches!(m.opts().get(OptionCode::Hostname), Some(DhcpOption::Hostname(h)) if h == "node-01")
    );
}

#[test]
fn a_plain_client_gets_no_boot_fields() {
    let m = offer(&discover(MAC, |_| {}));
    assert_eq!(
        boot_fields(&m),
        (Ipv4Addr::UNSPECIFIED, None, None, None, None)
    );
}

/// A request of any type from any MAC, with optional requested address,
/// ciaddr, server id and giaddr drawn partly from inside the subnet.
fn arb_request() -> impl Strategy<Value = Vec<u8>> {
    let addr = prop_oneof![
        Just(Ipv4Addr::UNSPECIFIED),
        (95u8..115).prop_map(|n| Ipv4Addr::new(10, 0, 0, n)),
        any::<u32>().prop_map(Ipv4Addr::from),
    ];
    (
        1u8..9,
        any::<[u8; 6]>(),
        addr.clone(),
        addr.clone(),
        addr.clone(),
        proptest::option::of(addr),
        any::<u32>(),
    )
        .prop_map(|(t, mut mac, req, ci, gi, sid, xid)| {
            mac[0] &= 0xfe;
            mac[5] |= 1;
            let mut m = v4::Message::new_with_id(
                xid,
                ci,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::UNSPECIFIED,
                gi,
                &mac,
            );
            m.opts_mut()
                .insert(DhcpOption::MessageType(MessageType::from(t)));
            if !req.is_unspecified() {
                m.opts_mut().insert(DhcpOption::RequestedIpAddress(req));
            }
            if let Some(s) = sid {
                m.opts_mut().insert(DhcpOption::ServerIdentifier(s));
            }
            m.to_vec().unwrap()
        })
}

proptest! {
    #[test]
    fn replies_round_trip_and_stay_inside_the_subnet(reqs in proptest::collection::vec(arb_request(), 1..40)) {
        let h = handler();
        let mut index = LeaseIndex::new();
        let net = subnet().prefix;
        let now = OffsetDateTime::now_utc();
        for bytes in reqs {
            let Ok(req) = classify(&bytes) else { continue };
            let reply = match h.handle(&mut index, &req, Arrival { interface: "eth0" }, &local, now) {
                Outcome::Drop { .. } => continue,
                Outcome::Reply { reply, .. } => *reply,
                Outcome::Commit { reply: None, change } => {
                    prop_assert!(net.contains(&change.entry.ip));
                    continue;
                }
                Outcome::Commit { reply: Some(reply), change } => {
                    prop_assert!(net.contains(&change.entry.ip));
                    *reply
                }
            };
            let bytes = reply.to_vec().unwrap();
            let back = v4::Message::from_bytes(&bytes).unwrap();
            prop_assert_eq!(&back, &reply);
            let y = back.yiaddr();
            prop_assert!(y.is_unspecified() || net.contains(&y), "yiaddr {} outside {}", y, net);
            if let Some(DhcpOption::Router(r)) = back.opts().get(OptionCode::Router) {
                prop_assert!(r.iter().all(|a| net.contains(a)));
            }
        }
        // No address is bound to two clients.
        let mut seen = std::collections::HashSet::new();
        for e in index.entries() {
            prop_assert!(seen.insert(e.ip));
        }
    }
}
