//! The agent's DHCPv4 server (RFC 2131, options from RFC 2132).
//!
//! Design, one module per concern:
//! - [`classify`]: what a decoded request is: message type (option 53),
//!   client key (option 61 or chaddr), netboot facts (options 60, 77, 93,
//!   175) with the reason for each decision;
//! - [`boot`]: the PXE/iPXE decision (RFC 4578 architectures, RFC 3004 user
//!   class, RFC 5859 TFTP server) and [`BootOptions`];
//! - [`reservations`]: IPAM's DHCP reservations, an in-memory index swapped
//!   after every IPAM change, served beside agent.toml's (which win);
//! - [`leases`]: the in-memory lease index that every packet reads, kept
//!   current by the handler; offers live only here, with a short expiry;
//! - [`handler`]: the protocol itself, without sockets: a request in, a
//!   [`handler::Outcome`] out (drop, reply now, or commit then reply);
//! - [`options`]: building replies from a subnet's settings (RFC 2132,
//!   RFC 3442 routes, RFC 3046 option 82 echo);
//! - [`store`]: lease rows in SQLite and their outbox events;
//! - [`socket`]: the UDP :67 socket per interface and where replies go;
//! - [`probe`]: the rogue-server probe run before serving an interface;
//! - [`server`]: the I/O loop that ties them together.
//!
//! Durability: a DHCPACK is sent only after the lease it acknowledges and its
//! event are committed by [`crate::store::Store::write`] (group commit, WAL
//! with `synchronous=FULL`). Many packets are handled concurrently, so their
//! commits share fsyncs. A DHCPOFFER is never stored: an offer lost in a crash
//! costs the client one retry, while storing it would halve throughput.
//!
//! Bad input never changes state: a packet that does not decode, or that the
//! handler refuses, is dropped (or NAKed where RFC 2131 says so) with a log
//! line naming the reason.

pub mod boot;
pub mod classify;
pub mod handler;
pub mod leases;
pub mod options;
mod probe;
pub mod reservations;
mod server;
mod socket;
pub mod store;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ipam;

use std::net::Ipv4Addr;

pub use boot::BootOptions;
pub use probe::PROBE_WINDOW;
pub use reservations::Reservations;
pub use server::{DhcpServer, DhcpSettings, LeaseNotice};

/// Everything that can go wrong in the DHCP server. The handler's variants
/// choose between a NAK and a silent drop; the I/O variants stop start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhcpError {
    /// The datagram is not a DHCP message.
    #[error("undecodable DHCP packet")]
    Decode(#[source] dhcproto::error::DecodeError),
    /// The reply could not be encoded (a bug or an oversized option).
    #[error("cannot encode the DHCP reply")]
    Encode(#[source] dhcproto::error::EncodeError),
    /// A well-formed packet this server does not answer.
    #[error("ignored: {reason}")]
    Ignored {
        /// Why, for the log line.
        reason: &'static str,
    },
    /// A socket could not be opened, configured or bound.
    #[error("cannot open the DHCP socket on interface {interface}")]
    Socket {
        /// The interface.
        interface: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Sending or receiving failed.
    #[error("DHCP socket I/O failed on interface {interface}")]
    Io {
        /// The interface.
        interface: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Another DHCP server answered the probe: serving would make two
    /// authorities on one segment.
    #[error(
        "another DHCP server answers on interface {interface}: {server} (from {source_addr}, offered {offered}); \
         refusing to serve DHCP there. Stop that server, or pass --force-dhcp to serve anyway"
    )]
    RogueServer {
        /// The interface probed.
        interface: String,
        /// The other server's identifier (option 54), or its source address.
        server: Ipv4Addr,
        /// The IP source address of its offer.
        source_addr: Ipv4Addr,
        /// The address it offered the probe.
        offered: Ipv4Addr,
    },
    /// A lease could not be committed; no ACK was sent.
    #[error("cannot commit the lease for {ip}")]
    Store {
        /// The leased address.
        ip: Ipv4Addr,
        /// What the store said.
        #[source]
        source: crate::store::StoreError,
    },
    /// The leases could not be loaded at start.
    #[error("cannot load DHCP leases")]
    Load(#[source] crate::store::StoreError),
}
