//! UDP sockets bound to one interface, and where replies go.
//!
//! Each served interface gets its own socket on 0.0.0.0:67 with
//! SO_BINDTODEVICE, so a packet's interface is known from its socket and a
//! broadcast reply leaves through the interface the request came in on.
//! SO_BROADCAST allows sending to 255.255.255.255.
//!
//! Reply destinations follow RFC 2131 §4.1: a relayed request is answered to
//! giaddr port 67; a NAK is broadcast; a client with an address (renewing,
//! INFORM) gets unicast to ciaddr port 68; anyone else gets a broadcast
//! (unicast to yiaddr would need an ARP entry we cannot set from a UDP
//! socket; RFC 2131 allows the broadcast).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use dhcproto::v4::{self, MessageType};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::DhcpError;

/// The DHCP server port.
pub const SERVER_PORT: u16 = 67;
/// The DHCP client port.
pub const CLIENT_PORT: u16 = 68;

/// Receive buffer asked of the kernel for a server socket.
const RECV_BUFFER: usize = 4 << 20;

/// ENODEV: SO_BINDTODEVICE names an interface that does not exist (yet).
const ENODEV: i32 = 19;

/// True if `e` says the interface does not exist.
pub fn is_no_device(e: &DhcpError) -> bool {
    matches!(e, DhcpError::Socket { source, .. } if source.raw_os_error() == Some(ENODEV))
}

/// A UDP socket on 0.0.0.0:`port` that sends and receives only on
/// `interface`, with broadcast allowed.
pub fn bind(interface: &str, port: u16) -> Result<UdpSocket, DhcpError> {
    let err = |source| DhcpError::Socket {
        interface: interface.to_owned(),
        source,
    };
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    sock.bind_device(Some(interface.as_bytes())).map_err(err)?;
    // Several interfaces each bind :67; SO_REUSEADDR with distinct devices
    // lets them coexist.
    sock.set_reuse_address(true).map_err(err)?;
    sock.set_broadcast(true).map_err(err)?;
    // Room for a burst (a rack powering on at once) while a batch commits.
    // Best effort: the kernel caps it at net.core.rmem_max.
    if let Err(e) = sock.set_recv_buffer_size(RECV_BUFFER) {
        tracing::warn!(interface, error = %e, "cannot enlarge the DHCP receive buffer");
    }
    sock.set_nonblocking(true).map_err(err)?;
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
    sock.bind(&addr.into()).map_err(err)?;
    UdpSocket::from_std(sock.into()).map_err(err)
}

/// Our source address toward `target` through `interface`: the kernel's
/// route choice, found by connecting a UDP socket (which sends nothing).
pub fn local_addr_toward(interface: &str, target: Ipv4Addr) -> std::io::Result<Ipv4Addr> {
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    sock.bind_device(Some(interface.as_bytes()))?;
    let to = SocketAddr::V4(SocketAddrV4::new(target, SERVER_PORT));
    sock.connect(&to.into())?;
    match sock.local_addr()?.as_socket() {
        Some(SocketAddr::V4(a)) if !a.ip().is_unspecified() => Ok(*a.ip()),
        _ => Err(std::io::Error::other("no IPv4 source address")),
    }
}

/// Where to send `reply` to a request with these header fields.
pub fn destination(request: &v4::Message, reply: &v4::Message) -> SocketAddrV4 {
    let giaddr = request.giaddr();
    if !giaddr.is_unspecified() {
        return SocketAddrV4::new(giaddr, SERVER_PORT);
    }
    let nak = reply.opts().msg_type() == Some(MessageType::Nak);
    let ciaddr = request.ciaddr();
    if !nak && !ciaddr.is_unspecified() {
        return SocketAddrV4::new(ciaddr, CLIENT_PORT);
    }
    SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT)
}
