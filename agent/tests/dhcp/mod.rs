//! Shared parts of the DHCP end-to-end tests: a server namespace running
//! `dv-agent serve` and a client namespace joined by a veth pair, the agent's
//! config written per test, and a small typed DHCP client (dhcproto) that
//! can act as a directly attached client or as a relay agent.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dhcproto::v4::{self, DhcpOption, MessageType, OptionCode};
use dhcproto::{Decodable, Encodable};
use dv_tests::netns::{self, Netns};
use dv_tests::wait_for;

pub const SRV_IF: &str = "dvs0";
pub const CLI_IF: &str = "dvc0";
pub const SRV_ADDR: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
pub const CLI_ADDR: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);
/// The relay's address inside the relayed subnet (giaddr).
pub const RELAY_ADDR: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

/// The default test config: a direct subnet on the veth and a relayed one.
pub fn config(data: &Path, extra_subnet: &str) -> String {
    format!(
        r#"
[site]
name = "lab"
domain = "dataverket.test"
authority = "bootstrap"
data_dir = "{data}"

[http]
listen = "127.0.0.1:8680"

[management]
segment = "lab"
interface = "{SRV_IF}"
prefix = "10.88.0.0/24"
gateway = "10.88.0.1"
host = "provisioner-01"

[[dhcp.subnets]]
prefix = "10.88.0.0/24"
interface = "{SRV_IF}"
router = "10.88.0.1"
dns_servers = ["10.88.0.1", "10.88.0.3"]
domain_name = "lab.dataverket.test"
ntp_servers = ["10.88.0.1"]
mtu = 1400
lease_time = "20s"
renew_time = "4s"
rebind_time = "15s"

[[dhcp.subnets.pools]]
start = "10.88.0.100"
end = "10.88.0.119"

[[dhcp.subnets.reservations]]
mac = "52:54:00:00:88:01"
ip = "10.88.0.11"
hostname = "node-01"

[[dhcp.subnets]]
prefix = "10.99.0.0/24"
router = "10.99.0.1"
dns_servers = ["10.88.0.1"]
lease_time = "1h"
{extra_subnet}

[[dhcp.subnets.pools]]
start = "10.99.0.100"
end = "10.99.0.250"

[dns]
upstreams = ["127.0.0.1:5353"]

[[dns.hosts]]
name = "provisioner-01"
interfaces = [{{ segment = "lab", address = "10.88.0.1" }}]
"#,
        data = data.display()
    )
}

/// A server and a client namespace on one veth pair.
pub struct Bed {
    pub srv: Netns,
    pub cli: Netns,
    pub dir: tempfile::TempDir,
}

impl Bed {
    /// Creates the namespaces; the client side gets `CLI_ADDR` and
    /// `RELAY_ADDR` only if `addresses` (dhclient wants a bare interface).
    pub fn new(tag: &str, addresses: bool) -> Bed {
        let srv = Netns::new(&format!("{tag}s")).unwrap();
        let cli = Netns::new(&format!("{tag}c")).unwrap();
        netns::veth(&srv, SRV_IF, &cli, CLI_IF).unwrap();
        srv.addr_up(SRV_IF, "10.88.0.1/24").unwrap();
        srv.ip(&[
            "route",
            "add",
            "10.99.0.0/24",
            "via",
            "10.88.0.2",
            "dev",
            SRV_IF,
        ])
        .ok();
        if addresses {
            cli.addr_up(CLI_IF, "10.88.0.2/24").unwrap();
            cli.addr_up(CLI_IF, "10.99.0.1/24").unwrap();
            srv.ip(&[
                "route",
                "replace",
                "10.99.0.0/24",
                "via",
                "10.88.0.2",
                "dev",
                SRV_IF,
            ])
            .unwrap();
        }
        Bed {
            srv,
            cli,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes the agent config and returns its path.
    pub fn write_config(&self, extra_subnet: &str) -> PathBuf {
        let data = self.dir.path().join("data");
        let path = self.dir.path().join("agent.toml");
        std::fs::write(&path, config(&data, extra_subnet)).unwrap();
        path
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn db(&self) -> PathBuf {
        self.data_dir().join("agent.db")
    }
}

/// `dig @10.88.0.1 +short ARGS` from the server namespace (the agent's DNS
/// listens on the bootstrap address there).
pub fn dig(bed: &Bed, args: &[&str]) -> String {
    let out = bed
        .srv
        .command("dig")
        .args(["@10.88.0.1", "+short", "+time=2", "+tries=2"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A running agent and its log lines.
pub type Agent = dv_tests::agent::RunningAgent;

/// Starts `dv-agent serve` in the server namespace and waits for "agent
/// serving"; the exit code and log if it stopped first.
pub fn start_agent(
    bed: &Bed,
    config: &Path,
    extra: &[&str],
) -> Result<Agent, dv_tests::agent::StartFailure> {
    let mut cmd = bed.srv.command(env!("CARGO_BIN_EXE_dv-agent"));
    cmd.args(["serve", "--log-format", "json", "--listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(bed.data_dir())
        .args(extra)
        .env("DV_LOG", "info");
    dv_tests::agent::start(&mut cmd, Duration::from_secs(30))
}

/// Runs `f` on a thread that entered `ns`'s network namespace, so sockets it
/// makes belong there (a socket keeps its namespace for life).
pub fn in_netns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{}", ns.name());
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(&path).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: setns(2) on an open namespace fd affects only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns failed: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap()
}

/// A UDP socket in `ns`, bound to `addr`, on `CLI_IF`, broadcast allowed.
pub fn udp_in(ns: &Netns, addr: SocketAddrV4) -> UdpSocket {
    in_netns(ns, move || {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        s.bind_device(Some(CLI_IF.as_bytes())).unwrap();
        s.set_reuse_address(true).unwrap();
        s.set_broadcast(true).unwrap();
        s.bind(&SocketAddr::V4(addr).into()).unwrap();
        let s: UdpSocket = s.into();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        s
    })
}

/// A typed test client: direct (port 68, broadcast) or relay (giaddr).
pub struct Client {
    pub sock: UdpSocket,
    pub giaddr: Option<Ipv4Addr>,
    pub to: SocketAddrV4,
}

pub fn mac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x52, 0x54, 0x01, b[1], b[2], b[3]]
}

impl Client {
    /// A directly attached client: sends broadcasts from port 68.
    pub fn direct(ns: &Netns) -> Client {
        Client {
            sock: udp_in(ns, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)),
            giaddr: None,
            to: SocketAddrV4::new(Ipv4Addr::BROADCAST, 67),
        }
    }

    /// A relay agent at `RELAY_ADDR`:67 unicasting to the server.
    pub fn relay(ns: &Netns) -> Client {
        Client {
            sock: udp_in(ns, SocketAddrV4::new(RELAY_ADDR, 67)),
            giaddr: Some(RELAY_ADDR),
            to: SocketAddrV4::new(SRV_ADDR, 67),
        }
    }

    pub fn message(&self, kind: MessageType, mac: [u8; 6], xid: u32) -> v4::Message {
        let mut m = v4::Message::new_with_id(
            xid,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            self.giaddr.unwrap_or(Ipv4Addr::UNSPECIFIED),
            &mac,
        );
        if self.giaddr.is_none() {
            m.set_flags(v4::Flags::default().set_broadcast());
        } else {
            m.set_hops(1);
        }
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        m
    }

    pub fn send(&self, m: &v4::Message) {
        self.sock.send_to(&m.to_vec().unwrap(), self.to).unwrap();
    }

    /// Waits up to `limit` for a reply with `xid`.
    pub fn recv(&self, xid: u32, limit: Duration) -> Option<v4::Message> {
        let mut buf = [0u8; 1500];
        wait_for(limit, || {
            let (n, _) = self.sock.recv_from(&mut buf).ok()?;
            let m = v4::Message::from_bytes(&buf[..n]).ok()?;
            (m.opcode() == v4::Opcode::BootReply && m.xid() == xid).then_some(m)
        })
    }

    /// Sends `m` and waits for its reply, retrying twice.
    pub fn exchange(&self, m: &v4::Message) -> Option<v4::Message> {
        for _ in 0..3 {
            self.send(m);
            if let Some(r) = self.recv(m.xid(), Duration::from_secs(2)) {
                return Some(r);
            }
        }
        None
    }

    /// DISCOVER, OFFER, REQUEST, ACK. Returns the offer and the final reply.
    pub fn dora(
        &self,
        mac: [u8; 6],
        xid: u32,
        edit: impl Fn(&mut v4::Message),
    ) -> (v4::Message, v4::Message) {
        let mut d = self.message(MessageType::Discover, mac, xid);
        edit(&mut d);
        let offer = self.exchange(&d).expect("no OFFER");
        assert_eq!(msg_type(&offer), Some(MessageType::Offer));
        let mut r = self.message(MessageType::Request, mac, xid.wrapping_add(1));
        r.opts_mut()
            .insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
        r.opts_mut()
            .insert(DhcpOption::ServerIdentifier(server_id(&offer).unwrap()));
        edit(&mut r);
        let ack = self.exchange(&r).expect("no ACK");
        (offer, ack)
    }
}

pub fn msg_type(m: &v4::Message) -> Option<MessageType> {
    m.opts().msg_type()
}

pub fn server_id(m: &v4::Message) -> Option<Ipv4Addr> {
    match m.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => Some(*s),
        _ => None,
    }
}

/// (state, mac, relay_agent_info) of the lease row for `ip`.
pub fn lease_row(db: &Path, ip: Ipv4Addr) -> Option<(String, String, Option<Vec<u8>>)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.busy_timeout(Duration::from_secs(5)).ok()?;
    conn.query_row(
        "SELECT state, mac, relay_agent_info FROM dhcp_lease WHERE ip = ?1",
        [ip.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .ok()
}

/// Whether the test can run (root, iproute2, `program` installed).
pub fn require(test: &str, programs: &[&str]) -> bool {
    if !netns::require_netns(test) {
        return false;
    }
    for p in programs {
        if !Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            eprintln!("\n!!! SKIPPED {test}: needs {p} (scripts/setup.sh installs it) !!!\n");
            return false;
        }
    }
    true
}
