//! Durability of acknowledged leases: many clients (through a relay) run
//! DORA while the agent is killed with SIGKILL at a random moment. After a
//! restart every ACKed (address, MAC) pair is still bound to the same
//! client: its row says so, a renewal keeps the address, and neither a
//! different MAC's DISCOVER nor its REQUEST gets it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dhcp;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcp::{Bed, Client, lease_row, mac, msg_type, server_id, start_agent};
use dhcproto::v4::{DhcpOption, MessageType};
use dhcproto::{Decodable, v4};
use dv_tests::Rng;

const CLIENTS: u32 = 50;

#[test]
fn acked_leases_survive_kill_9_and_stay_with_their_clients() {
    if !dhcp::require("acked_leases_survive_kill_9", &[]) {
        return;
    }
    let seed = Rng::seed_from_clock();
    eprintln!("seed {seed}");
    let mut rng = Rng::new(seed);
    let bed = Bed::new("du", true);
    let config = bed.write_config("");
    let mut agent = start_agent(&bed, &config, &[]).unwrap_or_else(|e| panic!("{e:?}"));
    let relay = Client::relay(&bed.cli);
    relay
        .sock
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();

    // Pipelined DORA for all clients; a thread kills the agent meanwhile.
    let pid = agent.child.child().unwrap().id() as i32;
    let delay = Duration::from_millis(rng.range(3, 40));
    eprintln!("kill -9 after {delay:?}");
    let killer = std::thread::spawn(move || {
        std::thread::sleep(delay);
        #[allow(unsafe_code)]
        // SAFETY: kill(2) takes plain integers.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    });
    for i in 0..CLIENTS {
        relay.send(&relay.message(MessageType::Discover, mac(1000 + i), i));
    }
    let mut acked: HashMap<Ipv4Addr, [u8; 6]> = HashMap::new();
    let mut buf = [0u8; 1500];
    let quiet = Duration::from_millis(1500);
    let mut last = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    while last.elapsed() < quiet && Instant::now() < deadline {
        let Ok((n, _)) = relay.sock.recv_from(&mut buf) else {
            continue;
        };
        let Ok(m) = v4::Message::from_bytes(&buf[..n]) else {
            continue;
        };
        last = Instant::now();
        let i = m.xid() % 100_000;
        match msg_type(&m) {
            Some(MessageType::Offer) => {
                let mut r = relay.message(MessageType::Request, mac(1000 + i), 100_000 + i);
                r.opts_mut()
                    .insert(DhcpOption::RequestedIpAddress(m.yiaddr()));
                r.opts_mut()
                    .insert(DhcpOption::ServerIdentifier(server_id(&m).unwrap()));
                relay.send(&r);
            }
            Some(MessageType::Ack) => {
                let prev = acked.insert(m.yiaddr(), mac(1000 + i));
                assert!(
                    prev.is_none_or(|p| p == mac(1000 + i)),
                    "one address ACKed to two clients"
                );
            }
            _ => {}
        }
    }
    killer.join().unwrap();
    let status = agent.child.wait_timeout(Duration::from_secs(10));
    assert!(status.is_some(), "agent not dead after SIGKILL");
    eprintln!("{} of {CLIENTS} clients ACKed before the kill", acked.len());

    // Restart on the same data directory.
    drop(agent);
    let agent = start_agent(&bed, &config, &[]).unwrap_or_else(|e| panic!("restart: {e:?}"));
    relay
        .sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    for (ip, m) in &acked {
        let row = lease_row(&bed.db(), *ip).unwrap_or_else(|| panic!("ACKed lease {ip} lost"));
        assert_eq!(row.0, "bound", "{ip}");
        assert_eq!(
            row.1,
            dv_protocol::MacAddr(*m).to_string(),
            "{ip} changed hands"
        );
    }
    // Every ACKed client renews (INIT-REBOOT through the relay) and keeps it.
    for (n, (ip, m)) in acked.iter().enumerate() {
        let mut r = relay.message(MessageType::Request, *m, 200_000 + n as u32);
        r.opts_mut().insert(DhcpOption::RequestedIpAddress(*ip));
        let ack = relay.exchange(&r).expect("no answer to renewal");
        assert_eq!(msg_type(&ack), Some(MessageType::Ack), "{ip} not renewed");
        assert_eq!(ack.yiaddr(), *ip);
    }
    // Other MACs never get an ACKed address.
    let taken: HashSet<Ipv4Addr> = acked.keys().copied().collect();
    for n in 0..60u32 {
        let offer = relay
            .exchange(&relay.message(MessageType::Discover, mac(5000 + n), 300_000 + n))
            .expect("no offer");
        assert!(
            !taken.contains(&offer.yiaddr()),
            "{} offered twice",
            offer.yiaddr()
        );
    }
    for (n, ip) in taken.iter().enumerate() {
        let mut r = relay.message(
            MessageType::Request,
            mac(9000 + n as u32),
            400_000 + n as u32,
        );
        r.opts_mut().insert(DhcpOption::RequestedIpAddress(*ip));
        let reply = relay.exchange(&r).expect("no answer");
        assert_eq!(
            msg_type(&reply),
            Some(MessageType::Nak),
            "{ip} given to another MAC"
        );
    }
    agent.stop();
}
