//! What a request is, before any decision: its message type (RFC 2132
//! §9.6), who sent it (RFC 2132 §9.14 client identifier, else chaddr), its
//! relay facts (RFC 2131 giaddr, RFC 3046 option 82) and its netboot facts
//! (RFC 4578 option 93, PXE vendor class, RFC 3004 user class, iPXE's
//! option 175).
//!
//! Everything here reads untrusted bytes, so every accessor is total: a
//! malformed field yields `None` or an [`DhcpError::Ignored`] with a reason,
//! never a panic.

use std::net::Ipv4Addr;

use dhcproto::v4::{self, DhcpOption, MessageType, OptionCode};
use dhcproto::{Decodable, Encodable, Encoder};
use dv_protocol::MacAddr;

use super::DhcpError;

/// The key a client's leases are filed under: option 61 when sent (RFC 2131
/// §4.2 says it then identifies the client), else the hardware address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    /// Option 61, raw.
    ClientId(Vec<u8>),
    /// chaddr of an Ethernet client.
    Mac(MacAddr),
}

/// The netboot firmware a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// Not a netboot client (an OS, an installer, a BMC).
    None,
    /// PXE firmware (option 60 starts with `PXEClient`), with option 93.
    Pxe {
        /// RFC 4578 client system architecture, if sent.
        arch: Option<u16>,
    },
    /// UEFI HTTP boot (option 60 starts with `HTTPClient`), with option 93.
    HttpClient {
        /// RFC 4578 client system architecture, if sent.
        arch: Option<u16>,
    },
    /// iPXE, already loaded: user class `iPXE` or option 175 present.
    Ipxe,
}

/// A decoded, checked request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The decoded message.
    pub msg: v4::Message,
    /// Option 53.
    pub kind: MessageType,
    /// The client's hardware address.
    pub mac: MacAddr,
    /// Option 61, raw, if sent.
    pub client_id: Option<Vec<u8>>,
    /// Option 50, if sent.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54, if sent.
    pub server_id: Option<Ipv4Addr>,
    /// Option 12, if sent and valid UTF-8.
    pub hostname: Option<String>,
    /// Option 82 as the relay sent it (sub-options, without code and length).
    pub relay_info: Option<Vec<u8>>,
    /// The netboot firmware, and why we think so.
    pub firmware: Firmware,
    /// The reason for `firmware`, for log lines.
    pub firmware_reason: &'static str,
}

impl Request {
    /// The key the client's leases are filed under.
    pub fn key(&self) -> ClientKey {
        match &self.client_id {
            Some(id) if !id.is_empty() => ClientKey::ClientId(id.clone()),
            _ => ClientKey::Mac(self.mac),
        }
    }

    /// The relay address, or `None` for a directly attached client.
    pub fn giaddr(&self) -> Option<Ipv4Addr> {
        Some(self.msg.giaddr()).filter(|a| !a.is_unspecified())
    }

    /// The client's own address, or `None` when it has none yet.
    pub fn ciaddr(&self) -> Option<Ipv4Addr> {
        Some(self.msg.ciaddr()).filter(|a| !a.is_unspecified())
    }
}

/// The metric label of a message type.
pub fn type_name(kind: MessageType) -> &'static str {
    match kind {
        MessageType::Discover => "discover",
        MessageType::Offer => "offer",
        MessageType::Request => "request",
        MessageType::Decline => "decline",
        MessageType::Ack => "ack",
        MessageType::Nak => "nak",
        MessageType::Release => "release",
        MessageType::Inform => "inform",
        _ => "other",
    }
}

/// Decodes and checks one datagram. Refuses what a server must not answer:
/// replies (op 2), messages without option 53, non-Ethernet hardware, and
/// chaddr lengths that do not fit the field (dhcproto would panic on those).
pub fn classify(bytes: &[u8]) -> Result<Request, DhcpError> {
    check_fixed_lengths(bytes)?;
    let msg = v4::Message::from_bytes(bytes).map_err(DhcpError::Decode)?;
    if msg.opcode() != v4::Opcode::BootRequest {
        return Err(DhcpError::Ignored {
            reason: "not a BOOTREQUEST",
        });
    }
    // Checked before chaddr(): dhcproto slices chaddr by hlen unchecked.
    if msg.htype() != v4::HType::Eth || msg.hlen() != 6 {
        return Err(DhcpError::Ignored {
            reason: "not an Ethernet client (htype 1, hlen 6)",
        });
    }
    let mut octets = [0u8; 6];
    octets.copy_from_slice(msg.chaddr().get(..6).ok_or(DhcpError::Ignored {
        reason: "short chaddr",
    })?);
    let mac = MacAddr(octets);
    if mac.is_multicast() || octets == [0; 6] {
        return Err(DhcpError::Ignored {
            reason: "chaddr is not a unicast MAC",
        });
    }
    let kind = msg.opts().msg_type().ok_or(DhcpError::Ignored {
        reason: "no message type (option 53)",
    })?;
    let opts = msg.opts();
    let client_id = match opts.get(OptionCode::ClientIdentifier) {
        Some(DhcpOption::ClientIdentifier(id)) if !id.is_empty() => Some(id.clone()),
        _ => None,
    };
    let requested_ip = match opts.get(OptionCode::RequestedIpAddress) {
        Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
        _ => None,
    };
    let server_id = match opts.get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
        _ => None,
    };
    let hostname = match opts.get(OptionCode::Hostname) {
        Some(DhcpOption::Hostname(h)) if !h.is_empty() && h.len() <= 253 => Some(h.clone()),
        _ => None,
    };
    let relay_info = opts
        .get(OptionCode::RelayAgentInformation)
        .and_then(raw_option_body);
    let (firmware, firmware_reason) = firmware(&msg);
    Ok(Request {
        kind,
        mac,
        client_id,
        requested_ip,
        server_id,
        hostname,
        relay_info,
        firmware,
        firmware_reason,
        msg,
    })
}

/// Refuses options whose length contradicts their fixed size before
/// dhcproto sees them: its decoder `debug_assert!`s these lengths (a panic
/// in debug builds, found by the `dhcp_packet` fuzz target) and, in release
/// builds, reads a fixed width and loses its place in the options.
fn check_fixed_lengths(bytes: &[u8]) -> Result<(), DhcpError> {
    // 236 header octets, then the magic cookie, then options (RFC 2131 §3).
    // A code may repeat, and dhcproto may decode the pieces one by one or
    // concatenated (RFC 3396), so the rule holds for each piece and for
    // each code's total length.
    let mut total: [Option<usize>; 256] = [None; 256];
    let mut rest = bytes.get(240..).unwrap_or_default();
    while let [code, tail @ ..] = rest {
        match code {
            0 => {
                rest = tail;
                continue;
            }
            255 => break,
            _ => {}
        }
        let [len, body @ ..] = tail else { break };
        let len = usize::from(*len);
        let sum = &mut total[usize::from(*code)];
        *sum = Some(sum.unwrap_or(0) + len);
        if impossible_length(*code, len) {
            return Err(impossible());
        }
        rest = body.get(len..).unwrap_or_default();
    }
    if (0..=255u8)
        .zip(total)
        .any(|(code, len)| len.is_some_and(|len| impossible_length(code, len)))
    {
        return Err(impossible());
    }
    Ok(())
}

fn impossible() -> DhcpError {
    DhcpError::Ignored {
        reason: "option with an impossible length",
    }
}

/// Lengths dhcproto's decoder asserts against, for one piece or a
/// repeated option's concatenation.
fn impossible_length(code: u8, len: usize) -> bool {
    match code {
        80 => len != 0,
        81 => len < 3,
        94 => len != 3,
        91 | 152..=155 => len != 4,
        93 => len < 2 || !len.is_multiple_of(2),
        _ => false,
    }
}

/// The body of an option as it was on the wire (code and length stripped),
/// re-encoded from dhcproto's parsed form.
fn raw_option_body(opt: &DhcpOption) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    opt.encode(&mut Encoder::new(&mut buf)).ok()?;
    // RFC 3396 long options repeat [code, len] every 255 bytes; strip each.
    let mut body = Vec::with_capacity(buf.len());
    let mut rest = buf.as_slice();
    while let [_code, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        body.extend_from_slice(&tail[..n]);
        rest = &tail[n..];
    }
    Some(body)
}

/// iPXE's encapsulated options (option 175); only its presence matters.
const IPXE_ENCAP: u8 = 175;

/// Which netboot firmware sent `msg`, and the reason.
///
/// Order matters: iPXE also sends `PXEClient` in option 60 (it keeps the
/// firmware's identity), so the iPXE test runs first. iPXE sends option 77
/// as the bare string `iPXE` rather than RFC 3004's length-prefixed list;
/// both forms are accepted.
pub fn firmware(msg: &v4::Message) -> (Firmware, &'static str) {
    let opts = msg.opts();
    if let Some(DhcpOption::UserClass(raw)) = opts.get(OptionCode::UserClass)
        && user_class_has(raw, b"iPXE")
    {
        return (Firmware::Ipxe, "user class (option 77) is iPXE");
    }
    if opts.get(OptionCode::Unknown(IPXE_ENCAP)).is_some() {
        return (Firmware::Ipxe, "iPXE encapsulated options (175) present");
    }
    let arch = match opts.get(OptionCode::ClientSystemArchitecture) {
        Some(DhcpOption::ClientSystemArchitecture(a)) => Some(a.0),
        _ => None,
    };
    match opts.get(OptionCode::ClassIdentifier) {
        Some(DhcpOption::ClassIdentifier(v)) if v.starts_with(b"PXEClient") => (
            Firmware::Pxe { arch },
            "vendor class (option 60) starts with PXEClient",
        ),
        Some(DhcpOption::ClassIdentifier(v)) if v.starts_with(b"HTTPClient") => (
            Firmware::HttpClient { arch },
            "vendor class (option 60) starts with HTTPClient",
        ),
        _ => (Firmware::None, "no netboot vendor or user class"),
    }
}

/// True if RFC 3004 option 77 `raw` carries `class`, either as the whole
/// value (iPXE's form) or as one of its length-prefixed entries.
pub fn user_class_has(raw: &[u8], class: &[u8]) -> bool {
    if raw == class {
        return true;
    }
    let mut rest = raw;
    while let [len, tail @ ..] = rest {
        let n = usize::from(*len);
        let Some(entry) = tail.get(..n) else {
            return false;
        };
        if entry == class {
            return true;
        }
        rest = &tail[n..];
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn user_class_accepts_bare_and_rfc3004_forms() {
        assert!(user_class_has(b"iPXE", b"iPXE"));
        assert!(user_class_has(b"\x03abc\x04iPXE", b"iPXE"));
        assert!(!user_class_has(b"\x09iPXE", b"iPXE"));
        assert!(!user_class_has(b"", b"iPXE"));
    }

    #[test]
    fn hlen_over_16_is_refused_not_a_panic() {
        let mut msg = v4::Message::default();
        msg.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Discover));
        let mut bytes = msg.to_vec().unwrap();
        bytes[2] = 200; // hlen
        assert!(classify(&bytes).is_err());
    }

    /// Found by the fuzz smoke: dhcproto concatenates a repeated option
    /// (RFC 3396), so two well-formed 4-octet pieces make an 8-octet
    /// option its decoder asserts against.
    #[test]
    fn a_fixed_length_option_split_in_two_is_refused_not_a_panic() {
        let mut msg = v4::Message::default();
        msg.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Discover));
        let mut bytes = msg.to_vec().unwrap();
        let end = bytes.iter().rposition(|b| *b == 255).unwrap();
        bytes.splice(end..end, [154, 4, 0, 0, 0, 1, 154, 4, 0, 0, 0, 2]);
        assert!(matches!(
            classify(&bytes),
            Err(DhcpError::Ignored { reason }) if reason.contains("impossible length")
        ));
    }
}
