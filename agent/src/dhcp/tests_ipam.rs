//! IPAM reservations in the DHCP handler: the index keeps what a served
//! subnet's network reserves, agent.toml's reservations win, and the
//! handler answers from the index swapped in after each allocate and
//! release (through a real store).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};

use dhcproto::Encodable;
use dhcproto::v4::{self, DhcpOption, MessageType, OptionCode};
use dv_protocol::{
    Actor, AddressRange, MacAddr, NetworkName, NetworkPurpose, NetworkSpec, SiteName, VlanId,
};
use time::OffsetDateTime;

use super::Reservations;
use super::classify::classify;
use super::handler::{Arrival, Outcome};
use super::leases::LeaseIndex;
use super::reservations::Index;
use super::tests::{handler, subnet};
use crate::store::ipam::{
    self, AllocateRequest, FixedReservation, IpamError, ReservationRow, ServedReservation,
};
use crate::store::{Store, StoreError};

const IPAM_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x42];
const OTHER: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x43];
const CONFIG_MAC: &str = "52:54:00:00:00:01";

fn site() -> SiteName {
    SiteName::new("lab").unwrap()
}

fn row(mac: &str, ip: &str, prefix: &str, dhcp: bool) -> ServedReservation {
    ServedReservation {
        reservation: ReservationRow {
            mac: mac.parse().unwrap(),
            ip: ip.parse().unwrap(),
            hostname: Some("web-1".into()),
        },
        prefix: prefix.parse().unwrap(),
        dhcp,
    }
}

fn fixed() -> Vec<FixedReservation> {
    vec![FixedReservation {
        ip: "10.0.0.11".parse().unwrap(),
        mac: Some(CONFIG_MAC.parse().unwrap()),
        client: format!("MAC {CONFIG_MAC}"),
    }]
}

#[test]
fn index_serves_only_dhcp_networks_of_served_subnets_and_never_against_the_config() {
    let rows = vec![
        row("52:54:00:00:00:42", "10.0.0.50", "10.0.0.0/24", true),
        // DHCP off on its network.
        row("52:54:00:00:00:43", "10.0.0.51", "10.0.0.0/24", false),
        // A network that is no served subnet.
        row("52:54:00:00:00:44", "10.7.0.5", "10.7.0.0/24", true),
        // The config reserves this MAC, and this address: config wins.
        row(CONFIG_MAC, "10.0.0.52", "10.0.0.0/24", true),
        row("52:54:00:00:00:45", "10.0.0.11", "10.0.0.0/24", true),
        // IPv6 is not DHCPv4's.
        row("52:54:00:00:00:46", "fd00::5", "fd00::/64", true),
    ];
    let index = Index::build(&[subnet()], &fixed(), rows);
    assert_eq!(index.len(), 1);
    let s = index.subnet("10.0.0.0/24".parse().unwrap()).unwrap();
    let r = s.get(MacAddr(IPAM_MAC)).unwrap();
    assert_eq!(r.ip, Ipv4Addr::new(10, 0, 0, 50));
    assert_eq!(r.hostname.as_deref(), Some("web-1"));
    assert!(s.holds(Ipv4Addr::new(10, 0, 0, 50)));
    assert!(!s.holds(Ipv4Addr::new(10, 0, 0, 11)));
    assert!(s.get(CONFIG_MAC.parse().unwrap()).is_none());
}

#[test]
fn a_network_inside_a_served_subnet_is_served_there_and_a_wider_one_is_not() {
    let rows = vec![
        // Narrower, inside the served /24: served in the /24.
        row("52:54:00:00:00:42", "10.0.0.70", "10.0.0.64/26", true),
        row("52:54:00:00:00:47", "10.0.0.130", "10.0.0.128/25", true),
        // Wider than the served /24: not served.
        row("52:54:00:00:00:43", "10.0.0.60", "10.0.0.0/23", true),
        // Only partly inside (and wider): not served.
        row("52:54:00:00:00:44", "10.0.1.5", "10.0.0.0/23", true),
        // Entirely outside.
        row("52:54:00:00:00:45", "10.0.2.5", "10.0.2.0/25", true),
    ];
    let index = Index::build(&[subnet()], &[], rows);
    assert_eq!(index.len(), 2);
    assert!(index.subnet("10.0.0.64/26".parse().unwrap()).is_none());
    let s = index.subnet("10.0.0.0/24".parse().unwrap()).unwrap();
    assert_eq!(
        s.get(MacAddr(IPAM_MAC)).unwrap().ip,
        Ipv4Addr::new(10, 0, 0, 70)
    );
    assert!(s.holds(Ipv4Addr::new(10, 0, 0, 130)));
    assert!(s.get(MacAddr(OTHER)).is_none());
    assert!(!s.holds(Ipv4Addr::new(10, 0, 0, 60)));
}

fn spec() -> NetworkSpec {
    NetworkSpec {
        name: NetworkName::new("lab").unwrap(),
        vlan: VlanId::new(10).unwrap(),
        purpose: NetworkPurpose::Tenant,
        prefix: "10.0.0.0/24".parse().unwrap(),
        gateway: Some("10.0.0.1".parse().unwrap()),
        dhcp: true,
        // .2-.10 reserved, so the lowest free address is the config's .11.
        reserved: vec![AddressRange {
            first: "10.0.0.2".parse().unwrap(),
            last: "10.0.0.10".parse().unwrap(),
        }],
    }
}

async fn allocate(store: &Store, req: AllocateRequest) -> Result<ipam::AllocationRow, StoreError> {
    let fixed = fixed();
    store
        .write(move |c| {
            ipam::allocate_beside(c, &site(), &Actor::agent(&site()), "lab", &req, &fixed)
        })
        .await
}

fn message(kind: MessageType, mac: [u8; 6], requested: Option<Ipv4Addr>) -> Vec<u8> {
    let mut m = v4::Message::new_with_id(
        9,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &mac,
    );
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    if let Some(ip) = requested {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)));
    }
    m.to_vec().unwrap()
}

fn answer(
    h: &super::handler::Handler,
    index: &mut LeaseIndex,
    bytes: &[u8],
) -> Option<v4::Message> {
    let req = classify(bytes).unwrap();
    let local = |_: &str, _: Ipv4Addr| Some(Ipv4Addr::new(10, 0, 0, 1));
    match h.handle(
        index,
        &req,
        Arrival { interface: "eth0" },
        &local,
        OffsetDateTime::now_utc(),
    ) {
        Outcome::Reply { reply, .. } => Some(*reply),
        Outcome::Commit { reply, .. } => reply.map(|r| *r),
        Outcome::Drop { .. } => None,
    }
}

fn hostname(m: &v4::Message) -> Option<String> {
    match m.opts().get(OptionCode::Hostname) {
        Some(DhcpOption::Hostname(h)) => Some(h.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn allocations_are_served_from_their_commit_and_released_ones_stop() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .write(|c| ipam::network_create(c, &site(), &Actor::agent(&site()), &spec()))
        .await
        .unwrap();
    let live = Reservations::load(&[subnet()], &store).await.unwrap();
    let h = handler().with_ipam(live.clone());

    // The config's MAC and address are refused, and the lowest free pick
    // skips the config's .11; nothing is stored for a refusal.
    let e = allocate(
        &store,
        AllocateRequest {
            mac: Some(CONFIG_MAC.parse().unwrap()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, StoreError::Ipam(IpamError::MacConfigReserved { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("agent.toml"), "{e}");
    let e = allocate(
        &store,
        AllocateRequest {
            address: Some("10.0.0.11".parse().unwrap()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, StoreError::Ipam(IpamError::AddressConfigReserved { .. })),
        "{e}"
    );
    assert!(store.read(ipam::reservations).await.unwrap().is_empty());

    // An address inside the pool, so the pool must also skip it.
    let pooled = Ipv4Addr::new(10, 0, 0, 100);
    let got = allocate(
        &store,
        AllocateRequest {
            mac: Some(MacAddr(IPAM_MAC)),
            hostname: Some("web-1".into()),
            address: Some(IpAddr::V4(pooled)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(got.allocation.address, IpAddr::V4(pooled));
    let lowest = allocate(&store, AllocateRequest::default()).await.unwrap();
    assert_eq!(lowest.allocation.address.to_string(), "10.0.0.12");

    // Before the refresh the server does not know it; after, it does.
    let mut index = LeaseIndex::new();
    let before = answer(
        &h,
        &mut index,
        &message(MessageType::Discover, IPAM_MAC, None),
    )
    .unwrap();
    assert_eq!(
        before.yiaddr(),
        pooled,
        "the pool's first address, unreserved yet"
    );
    assert_eq!(live.refresh().await.unwrap(), 1);
    let mut index = LeaseIndex::new();
    let offer = answer(
        &h,
        &mut index,
        &message(MessageType::Discover, IPAM_MAC, None),
    )
    .unwrap();
    assert_eq!(offer.yiaddr(), pooled);
    assert_eq!(hostname(&offer).as_deref(), Some("web-1"));
    let ack = answer(
        &h,
        &mut index,
        &message(MessageType::Request, IPAM_MAC, Some(pooled)),
    )
    .unwrap();
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
    assert_eq!(ack.yiaddr(), pooled);
    // Another client neither gets it from the pool nor by asking.
    let other = answer(&h, &mut index, &message(MessageType::Discover, OTHER, None)).unwrap();
    assert_eq!(other.yiaddr(), Ipv4Addr::new(10, 0, 0, 101));
    let nak = answer(
        &h,
        &mut index,
        &message(MessageType::Request, OTHER, Some(pooled)),
    )
    .unwrap();
    assert_eq!(nak.opts().msg_type(), Some(MessageType::Nak));
    // The config's reservation still wins for its client.
    let config = answer(
        &h,
        &mut LeaseIndex::new(),
        &message(MessageType::Discover, [0x52, 0x54, 0, 0, 0, 1], None),
    )
    .unwrap();
    assert_eq!(config.yiaddr(), Ipv4Addr::new(10, 0, 0, 11));

    // Released: a client without a lease gets a pool address again (the
    // lease above would keep .100 from others until it runs out).
    store
        .write(move |c| {
            ipam::release(
                c,
                &site(),
                &Actor::agent(&site()),
                "lab",
                IpAddr::V4(pooled),
            )
        })
        .await
        .unwrap();
    assert_eq!(live.refresh().await.unwrap(), 0);
    let mut fresh = LeaseIndex::new();
    let after = answer(
        &h,
        &mut fresh,
        &message(MessageType::Discover, IPAM_MAC, None),
    )
    .unwrap();
    assert_eq!(after.yiaddr(), pooled, "a plain pool address now");
    assert_eq!(hostname(&after), None);
    let mut held = index;
    let after = answer(&h, &mut held, &message(MessageType::Discover, OTHER, None)).unwrap();
    assert_ne!(after.yiaddr(), pooled, "the old lease still holds it");
    store.close().await;
}
