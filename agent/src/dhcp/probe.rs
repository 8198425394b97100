//! The single-authority check: before serving an interface, broadcast a
//! DHCPDISCOVER there (as a client would, from port 68) and see whether any
//! server offers. One answer means another DHCP authority is on the
//! segment, and two authorities hand out conflicting addresses.
//!
//! The window is a few seconds because servers may delay their first offer:
//! dnsmasq pings an address before offering it (up to 3 s). The DISCOVER is
//! sent twice, in case the first one is lost.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use dhcproto::v4::{self, DhcpOption, MessageType, OptionCode};
use dhcproto::{Decodable, Encodable};
use tokio::time::Instant;

use super::DhcpError;
use super::socket::{self, CLIENT_PORT, SERVER_PORT};

/// How long the probe listens, by default.
pub const PROBE_WINDOW: Duration = Duration::from_secs(4);

/// Another server that answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// Its server identifier (option 54), else its source address.
    pub server: Ipv4Addr,
    /// The IP source of its reply.
    pub source: Ipv4Addr,
    /// What it offered.
    pub offered: Ipv4Addr,
}

/// Probes `interface` for `window`. `Ok(None)`: nobody answered.
pub async fn probe(interface: &str, window: Duration) -> Result<Option<Answer>, DhcpError> {
    let sock = socket::bind(interface, CLIENT_PORT)?;
    let io = |source| DhcpError::Io {
        interface: interface.to_owned(),
        source,
    };
    let seed = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let xid = (seed as u32) ^ std::process::id().rotate_left(16);
    // A locally administered unicast MAC, so no real machine is named.
    let x = xid.to_be_bytes();
    let chaddr = [0x02, 0xd7, x[0], x[1], x[2], x[3]];
    let mut msg = v4::Message::new_with_id(
        xid,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &chaddr,
    );
    msg.set_flags(v4::Flags::default().set_broadcast());
    msg.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Discover));
    msg.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
    ]));
    let bytes = msg.to_vec().map_err(DhcpError::Encode)?;
    let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT);
    let start = Instant::now();
    let deadline = start + window;
    let mut resend = Some(start + window / 3);
    sock.send_to(&bytes, to).await.map_err(io)?;
    tracing::info!(
        interface,
        xid,
        window_ms = window.as_millis() as u64,
        "probing for another DHCP server"
    );
    let mut buf = vec![0u8; 1500];
    loop {
        let wake = resend.map_or(deadline, |r| r.min(deadline));
        let got = tokio::time::timeout_at(wake, sock.recv_from(&mut buf)).await;
        match got {
            Err(_) if Instant::now() >= deadline => return Ok(None),
            Err(_) => {
                resend = None;
                sock.send_to(&bytes, to).await.map_err(io)?;
            }
            Ok(Err(e)) => return Err(io(e)),
            Ok(Ok((n, from))) => {
                let Ok(reply) = v4::Message::from_bytes(&buf[..n]) else {
                    continue;
                };
                let is_answer = reply.opcode() == v4::Opcode::BootReply
                    && reply.xid() == xid
                    && matches!(
                        reply.opts().msg_type(),
                        Some(MessageType::Offer | MessageType::Ack | MessageType::Nak)
                    );
                if !is_answer {
                    continue;
                }
                let source = match from.ip() {
                    std::net::IpAddr::V4(a) => a,
                    std::net::IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
                };
                let server = match reply.opts().get(OptionCode::ServerIdentifier) {
                    Some(DhcpOption::ServerIdentifier(s)) => *s,
                    _ => source,
                };
                return Ok(Some(Answer {
                    server,
                    source,
                    offered: reply.yiaddr(),
                }));
            }
        }
    }
}
