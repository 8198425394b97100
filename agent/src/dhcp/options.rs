//! Building replies: the BOOTP header fields of RFC 2131 Table 3 and the
//! subnet's options.
//!
//! Options sent with an address (RFC 2132): 1 subnet mask, 3 router, 6 DNS,
//! 12 host name (reservations), 15 domain, 26 MTU, 42 NTP, 51 lease time,
//! 58/59 T1/T2, 121 classless routes (RFC 3442), 54 server identifier. A
//! relayed request's option 82 is echoed unchanged (RFC 3046 §2.2), so the
//! relay can strip it and find the port. The client identifier is echoed
//! (RFC 6842). Boot options come from [`super::boot`].

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{self, DhcpOption, MessageType, OptionCode};

use super::boot::Boot;
use super::classify::Request;
use crate::config::Subnet;

/// What a reply should carry beyond the request's own fields.
#[derive(Debug, Clone)]
pub struct Reply<'a> {
    /// OFFER, ACK or NAK.
    pub kind: MessageType,
    /// The address given (unspecified for NAK and INFORM).
    pub yiaddr: Ipv4Addr,
    /// Option 54: our address as the client (or relay) sees it.
    pub server_id: Ipv4Addr,
    /// The subnet's options; `None` for a NAK.
    pub subnet: Option<&'a Subnet>,
    /// Include lease times (not for INFORM, RFC 2131 §4.3.5).
    pub with_lease: bool,
    /// Option 12.
    pub hostname: Option<&'a str>,
    /// Boot options.
    pub boot: &'a Boot,
    /// Option 56 text (NAK reason).
    pub message: Option<&'static str>,
}

/// Seconds for a u32 lease option, saturating.
fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// Builds the reply to `req`.
pub fn build(req: &Request, reply: &Reply<'_>) -> v4::Message {
    let q = &req.msg;
    let mut m = v4::Message::default();
    m.set_opcode(v4::Opcode::BootReply)
        .set_htype(q.htype())
        .set_xid(q.xid())
        .set_flags(q.flags())
        .set_giaddr(q.giaddr())
        .set_chaddr(&req.mac.octets())
        .set_yiaddr(reply.yiaddr);
    // RFC 2131 Table 3: ciaddr is echoed in an ACK (renewal, INFORM), zero
    // otherwise.
    if reply.kind == MessageType::Ack {
        m.set_ciaddr(q.ciaddr());
    }
    let opts = m.opts_mut();
    opts.insert(DhcpOption::MessageType(reply.kind));
    opts.insert(DhcpOption::ServerIdentifier(reply.server_id));
    if let Some(id) = &req.client_id {
        opts.insert(DhcpOption::ClientIdentifier(id.clone()));
    }
    if let Some(text) = reply.message {
        opts.insert(DhcpOption::Message(text.into()));
    }
    if let Some(raw) = &req.relay_info {
        // Echo the relay's bytes as they came (dhcproto re-encodes its parsed
        // form, which may differ from the original for unknown sub-options).
        if let Some(orig) = q.opts().get(OptionCode::RelayAgentInformation) {
            opts.insert(orig.clone());
        } else {
            opts.insert(DhcpOption::Unknown(v4::UnknownOption::new(
                OptionCode::RelayAgentInformation,
                raw.clone(),
            )));
        }
    }
    if reply.kind == MessageType::Nak {
        return m;
    }
    if let Some(s) = reply.subnet {
        opts.insert(DhcpOption::SubnetMask(s.prefix.netmask()));
        if let Some(r) = s.router {
            opts.insert(DhcpOption::Router(vec![r]));
        }
        if !s.dns_servers.is_empty() {
            opts.insert(DhcpOption::DomainNameServer(s.dns_servers.clone()));
        }
        if !s.domain_name.is_empty() {
            opts.insert(DhcpOption::DomainName(s.domain_name.clone()));
        }
        if !s.ntp_servers.is_empty() {
            opts.insert(DhcpOption::NtpServers(s.ntp_servers.clone()));
        }
        if let Some(mtu) = s.mtu {
            opts.insert(DhcpOption::InterfaceMtu(mtu));
        }
        if !s.classless_routes.is_empty() {
            opts.insert(DhcpOption::ClasslessStaticRoute(
                s.classless_routes
                    .iter()
                    .map(|r| (r.destination, r.gateway))
                    .collect(),
            ));
        }
        if reply.with_lease {
            opts.insert(DhcpOption::AddressLeaseTime(secs(s.lease_time)));
            opts.insert(DhcpOption::Renewal(secs(s.renew_time)));
            opts.insert(DhcpOption::Rebinding(secs(s.rebind_time)));
        }
    }
    if let Some(h) = reply.hostname {
        opts.insert(DhcpOption::Hostname(h.to_owned()));
    }
    set_boot(&mut m, reply.boot);
    m
}

/// Sets the boot fields so that header and options agree (see [`super::boot`]).
fn set_boot(m: &mut v4::Message, boot: &Boot) {
    match boot {
        Boot::None { .. } => {}
        Boot::Tftp { server, file, .. } => {
            m.set_siaddr(*server);
            if file.len() < 128 {
                m.set_fname_str(file);
            }
            let opts = m.opts_mut();
            opts.insert(DhcpOption::TFTPServerName(server.to_string().into_bytes()));
            opts.insert(DhcpOption::BootfileName(file.clone().into_bytes()));
        }
        Boot::Http {
            url, vendor_class, ..
        } => {
            // `file` holds 128 octets with a terminating NUL; longer URLs go
            // in option 67 only.
            if url.len() < 128 {
                m.set_fname_str(url);
            }
            let opts = m.opts_mut();
            opts.insert(DhcpOption::BootfileName(url.clone().into_bytes()));
            if let Some(vc) = vendor_class {
                opts.insert(DhcpOption::ClassIdentifier(vc.as_bytes().to_vec()));
            }
        }
    }
}
