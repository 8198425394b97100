//! Feeds arbitrary bytes through the DHCP server's decode, classify and
//! reply-building path with an in-memory lease index (no store, no
//! sockets). Input is a sequence of packets, each prefixed by a 2-byte
//! big-endian length, so the fuzzer can drive the index through DISCOVER,
//! REQUEST, DECLINE and RELEASE sequences.
//!
//! Nothing may panic; every reply must encode; every address a reply or
//! lease names must be inside the configured subnet.

#![no_main]

use std::net::Ipv4Addr;
use std::sync::OnceLock;
use std::time::Duration;

use dhcproto::Encodable;
use dv_agent::config::{ClientKey, Pool, Reservation, Subnet};
use dv_agent::dhcp::BootOptions;
use dv_agent::dhcp::classify::classify;
use dv_agent::dhcp::handler::{Arrival, Handler, Outcome};
use dv_agent::dhcp::leases::LeaseIndex;
use libfuzzer_sys::fuzz_target;

fn handler() -> &'static Handler {
    static H: OnceLock<Handler> = OnceLock::new();
    H.get_or_init(|| {
        let direct = Subnet {
            prefix: "10.0.0.0/24".parse().unwrap(),
            interface: Some("eth0".into()),
            router: Some(Ipv4Addr::new(10, 0, 0, 1)),
            dns_servers: vec![Ipv4Addr::new(10, 0, 0, 1)],
            domain_name: "lab.example.test".into(),
            ntp_servers: vec![Ipv4Addr::new(10, 0, 0, 1)],
            mtu: Some(1500),
            lease_time: Duration::from_secs(3600),
            renew_time: Duration::from_secs(1800),
            rebind_time: Duration::from_secs(3150),
            classless_routes: vec![],
            pxe: true,
            pools: vec![Pool {
                start: Ipv4Addr::new(10, 0, 0, 100),
                end: Ipv4Addr::new(10, 0, 0, 103),
            }],
            reservations: vec![Reservation {
                client: ClientKey::Mac("52:54:00:00:00:01".parse().unwrap()),
                ip: Ipv4Addr::new(10, 0, 0, 11),
                hostname: Some("node-01".into()),
            }],
        };
        let mut relayed = direct.clone();
        relayed.prefix = "10.9.0.0/24".parse().unwrap();
        relayed.interface = None;
        relayed.pools = vec![Pool {
            start: Ipv4Addr::new(10, 9, 0, 100),
            end: Ipv4Addr::new(10, 9, 0, 110),
        }];
        relayed.reservations = vec![];
        Handler::new(
            vec![direct, relayed],
            BootOptions::new(Ipv4Addr::new(10, 0, 0, 1), 8680),
        )
    })
}

fn local(_: &str, _: Ipv4Addr) -> Option<Ipv4Addr> {
    Some(Ipv4Addr::new(10, 0, 0, 1))
}

fuzz_target!(|data: &[u8]| {
    let h = handler();
    let mut index = LeaseIndex::new();
    let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    let mut rest = data;
    for _ in 0..32 {
        let [a, b, tail @ ..] = rest else { break };
        let n = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let (packet, next) = tail.split_at(n);
        rest = next;
        let Ok(req) = classify(packet) else { continue };
        let in_net = |ip: Ipv4Addr| h.subnets().iter().any(|s| s.prefix.contains(&ip));
        match h.handle(&mut index, &req, Arrival { interface: "eth0" }, &local, now) {
            Outcome::Drop { .. } => {}
            Outcome::Reply { reply, .. } => {
                reply.to_vec().expect("reply encodes");
                assert!(reply.yiaddr().is_unspecified() || in_net(reply.yiaddr()));
            }
            Outcome::Commit { change, reply } => {
                assert!(in_net(change.entry.ip));
                if let Some(r) = reply {
                    r.to_vec().expect("reply encodes");
                    assert_eq!(r.yiaddr(), change.entry.ip);
                }
            }
        }
    }
});
