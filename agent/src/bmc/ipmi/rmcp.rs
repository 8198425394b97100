//! RMCP framing and the IPMI session headers around a payload (IPMI v2.0
//! section 13): the v1.5 header the driver uses only for the one
//! pre-session command, the v2.0 (RMCP+) header and its integrity trailer,
//! and the IPMI request/response message inside a payload.
//!
//! Everything here is pure bytes-in, bytes-out with no keys: the session
//! ([`super::session`]) signs, checks and encrypts around these functions.
//! Decoding treats every input as hostile: lengths are checked before each
//! read and every failure is a [`PacketError`], never a panic (the
//! `ipmi_packet` fuzz target and the property tests hold this).

/// RMCP version 1.0, no RMCP ACK wanted (sequence 0xff), class IPMI.
pub const RMCP_HEADER: [u8; 4] = [0x06, 0x00, 0xff, 0x07];
/// Session auth type "none" (IPMI v1.5 framing).
pub const AUTH_NONE: u8 = 0x00;
/// Session auth type "RMCP+" (IPMI v2.0 framing).
pub const AUTH_RMCP_PLUS: u8 = 0x06;
/// The only session trailer "next header" value the spec defines.
const NEXT_HEADER: u8 = 0x07;
/// Auth type, payload type, session id, sequence, payload length.
const V2_HEADER_LEN: usize = 12;

/// RMCP+ payload types (IPMI v2.0 table 13-16).
pub mod payload {
    /// An IPMI request or response.
    pub const IPMI: u8 = 0x00;
    /// RMCP+ Open Session Request.
    pub const OPEN_SESSION_REQUEST: u8 = 0x10;
    /// RMCP+ Open Session Response.
    pub const OPEN_SESSION_RESPONSE: u8 = 0x11;
    /// RAKP Message 1.
    pub const RAKP1: u8 = 0x12;
    /// RAKP Message 2.
    pub const RAKP2: u8 = 0x13;
    /// RAKP Message 3.
    pub const RAKP3: u8 = 0x14;
    /// RAKP Message 4.
    pub const RAKP4: u8 = 0x15;
}

/// A packet or payload that cannot be what it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Fewer bytes than the field needs.
    #[error("{what} needs {need} bytes, {have} left")]
    Short {
        /// The field or structure.
        what: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes there are.
        have: usize,
    },
    /// Not RMCP, or RMCP of another class (ASF ping, OEM).
    #[error("not an RMCP IPMI packet (header {0:02x?})")]
    NotRmcp([u8; 4]),
    /// A session auth type this driver does not speak.
    #[error("session auth type {0:#04x} is not spoken here")]
    AuthType(u8),
    /// The payload length field disagrees with the datagram.
    #[error("payload length field says {declared} bytes but {available} follow")]
    Length {
        /// From the header.
        declared: usize,
        /// In the datagram.
        available: usize,
    },
    /// A payload too long for the 16-bit length field.
    #[error("payload of {0} bytes does not fit an RMCP+ packet")]
    TooLong(usize),
    /// A malformed integrity trailer.
    #[error("session trailer: {0}")]
    Trailer(&'static str),
    /// An IPMI message whose checksum does not add up.
    #[error("IPMI message {0} checksum is wrong")]
    Checksum(&'static str),
    /// An encrypted payload that does not decrypt to a well-formed plaintext.
    #[error("encrypted payload: {0}")]
    Crypt(&'static str),
    /// A field with a value the protocol does not allow.
    #[error("{what} is {value:#04x}, {expected}")]
    Field {
        /// The field.
        what: &'static str,
        /// Its value.
        value: u32,
        /// What it should be.
        expected: &'static str,
    },
}

/// One RMCP datagram's session layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// IPMI v1.5 framing (only unauthenticated, before a session).
    V15(V15Packet),
    /// IPMI v2.0 RMCP+ framing.
    V20(V2Packet),
}

/// An IPMI v1.5 session header and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V15Packet {
    /// Session sequence number.
    pub seq: u32,
    /// Session id (0 outside a session).
    pub session_id: u32,
    /// The IPMI message.
    pub payload: Vec<u8>,
}

/// An IPMI v2.0 (RMCP+) session header, payload and trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Packet {
    /// Payload type (low 6 bits of the header byte).
    pub payload_type: u8,
    /// The payload is encrypted (confidentiality header and trailer inside).
    pub encrypted: bool,
    /// A session trailer with an AuthCode follows the payload.
    pub authenticated: bool,
    /// The receiver's session id (0 before a session).
    pub session_id: u32,
    /// Session sequence number (0 before a session).
    pub seq: u32,
    /// The payload as carried (still encrypted if `encrypted`).
    pub payload: Vec<u8>,
    /// The trailer's AuthCode (empty unless `authenticated`).
    pub auth_code: Vec<u8>,
    /// How many bytes, from the auth type byte on, the AuthCode covers.
    pub signed_len: usize,
}

/// Decodes one datagram. Any input yields a packet or an error.
pub fn decode(datagram: &[u8]) -> Result<Packet, PacketError> {
    let mut r = Reader::new(datagram);
    let rmcp = r.array::<4>("RMCP header")?;
    // RMCP sequence numbers and ACKs are unused by IPMI: check version and
    // class only.
    if rmcp[0] != RMCP_HEADER[0] || rmcp[3] != RMCP_HEADER[3] {
        return Err(PacketError::NotRmcp(rmcp));
    }
    match r.u8("auth type")? {
        AUTH_RMCP_PLUS => decode_v2(datagram, r).map(Packet::V20),
        // v1.5 auth types none, MD2, MD5, straight password, OEM: the last
        // four carry a 16-byte AuthCode before the length.
        t @ (0x00..=0x02 | 0x04 | 0x05) => {
            let seq = r.u32("session sequence")?;
            let session_id = r.u32("session id")?;
            if t != AUTH_NONE {
                r.take("v1.5 AuthCode", 16)?;
            }
            let len = usize::from(r.u8("payload length")?);
            let payload = r.take("payload", len)?.to_vec();
            Ok(Packet::V15(V15Packet {
                seq,
                session_id,
                payload,
            }))
        }
        t => Err(PacketError::AuthType(t)),
    }
}

fn decode_v2(datagram: &[u8], mut r: Reader<'_>) -> Result<V2Packet, PacketError> {
    let kind = r.u8("payload type")?;
    let payload_type = kind & 0x3f;
    if payload_type == 0x02 {
        // OEM explicit payloads carry an extra IANA + id; nothing here
        // asks for them, so they are refused rather than half-parsed.
        return Err(PacketError::Field {
            what: "payload type",
            value: 0x02,
            expected: "not OEM explicit",
        });
    }
    let session_id = r.u32("session id")?;
    let seq = r.u32("session sequence")?;
    let declared = usize::from(r.u16("payload length")?);
    let available = r.left();
    let payload = r
        .take("payload", declared)
        .map_err(|_| PacketError::Length {
            declared,
            available,
        })?
        .to_vec();
    let authenticated = kind & 0x40 != 0;
    let mut packet = V2Packet {
        payload_type,
        encrypted: kind & 0x80 != 0,
        authenticated,
        session_id,
        seq,
        payload,
        auth_code: Vec::new(),
        signed_len: 0,
    };
    if !authenticated {
        return Ok(packet);
    }
    // Trailer: 0-3 pad bytes (0xff), pad length, next header, AuthCode. The
    // pad length sits right after the pad, so find it by trying the four
    // possible pad sizes; only one is self-consistent.
    let start = 4 + V2_HEADER_LEN + declared;
    let rest = datagram.get(start..).unwrap_or_default();
    let pad = (0..4usize)
        .find(|&n| {
            rest.get(n).map(|&b| usize::from(b)) == Some(n)
                && rest.get(..n).is_some_and(|p| p.iter().all(|&b| b == 0xff))
        })
        .ok_or(PacketError::Trailer("no consistent integrity pad"))?;
    if rest.get(pad + 1) != Some(&NEXT_HEADER) {
        return Err(PacketError::Trailer("next header is not 0x07"));
    }
    if !(V2_HEADER_LEN + declared + pad + 2).is_multiple_of(4) {
        return Err(PacketError::Trailer("integrity pad does not align to 4"));
    }
    let code = rest.get(pad + 2..).unwrap_or_default();
    if code.is_empty() {
        return Err(PacketError::Trailer("no AuthCode"));
    }
    packet.auth_code = code.to_vec();
    packet.signed_len = V2_HEADER_LEN + declared + pad + 2;
    Ok(packet)
}

/// Encodes an unauthenticated IPMI v1.5 packet around `message` (the
/// pre-session Get Channel Authentication Capabilities).
pub fn encode_v15(seq: u32, session_id: u32, message: &[u8]) -> Result<Vec<u8>, PacketError> {
    let len = u8::try_from(message.len()).map_err(|_| PacketError::TooLong(message.len()))?;
    let mut out = Vec::with_capacity(14 + message.len());
    out.extend_from_slice(&RMCP_HEADER);
    out.push(AUTH_NONE);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&session_id.to_le_bytes());
    out.push(len);
    out.extend_from_slice(message);
    Ok(out)
}

/// Computes a packet's AuthCode from the bytes it covers.
pub type Signer<'a> = &'a dyn Fn(&[u8]) -> Vec<u8>;

/// The header fields of an RMCP+ packet to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2Header {
    /// Payload type (6 bits).
    pub payload_type: u8,
    /// The payload given is already encrypted.
    pub encrypted: bool,
    /// The receiver's session id.
    pub session_id: u32,
    /// Session sequence number.
    pub seq: u32,
}

/// Encodes an RMCP+ packet. With `sign`, the packet is marked authenticated
/// and gets a trailer whose AuthCode is `sign(covered bytes)`.
pub fn encode_v2(
    header: V2Header,
    payload: &[u8],
    sign: Option<Signer<'_>>,
) -> Result<Vec<u8>, PacketError> {
    let len = u16::try_from(payload.len()).map_err(|_| PacketError::TooLong(payload.len()))?;
    let mut kind = header.payload_type & 0x3f;
    if header.encrypted {
        kind |= 0x80;
    }
    if sign.is_some() {
        kind |= 0x40;
    }
    let mut out = Vec::with_capacity(4 + V2_HEADER_LEN + payload.len() + 24);
    out.extend_from_slice(&RMCP_HEADER);
    out.push(AUTH_RMCP_PLUS);
    out.push(kind);
    out.extend_from_slice(&header.session_id.to_le_bytes());
    out.extend_from_slice(&header.seq.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    if let Some(sign) = sign {
        let pad = (4 - (V2_HEADER_LEN + payload.len() + 2) % 4) % 4;
        out.extend(std::iter::repeat_n(0xff, pad));
        // pad < 4, so the cast cannot truncate.
        out.push(pad as u8);
        out.push(NEXT_HEADER);
        let code = sign(out.get(4..).unwrap_or_default());
        out.extend_from_slice(&code);
    }
    Ok(out)
}

/// An IPMI message (request or response) as carried in a LAN payload:
/// the two halves of the IPMB-style header named by direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Receiver's address (responder 0x20 for a request, requester for a response).
    pub to_addr: u8,
    /// Network function (even for requests, odd for responses).
    pub netfn: u8,
    /// Receiver's LUN.
    pub to_lun: u8,
    /// Sender's address.
    pub from_addr: u8,
    /// Requester's sequence number (6 bits), echoed in the response.
    pub rq_seq: u8,
    /// Sender's LUN.
    pub from_lun: u8,
    /// Command.
    pub cmd: u8,
    /// Request data, or completion code and response data.
    pub body: Vec<u8>,
}

/// The BMC's IPMB address.
pub const BMC_ADDR: u8 = 0x20;
/// A remote console's software id (what ipmitool uses too).
pub const CONSOLE_ADDR: u8 = 0x81;

fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |a, b| a.wrapping_add(*b))
        .wrapping_neg()
}

impl Message {
    /// The message's bytes with both checksums.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(7 + self.body.len());
        out.push(self.to_addr);
        out.push((self.netfn << 2) | (self.to_lun & 0x03));
        out.push(checksum(&out));
        out.push(self.from_addr);
        out.push((self.rq_seq << 2) | (self.from_lun & 0x03));
        out.push(self.cmd);
        out.extend_from_slice(&self.body);
        let sum = checksum(out.get(3..).unwrap_or_default());
        out.push(sum);
        out
    }

    /// Parses and checks a message.
    pub fn decode(bytes: &[u8]) -> Result<Message, PacketError> {
        if bytes.len() < 7 {
            return Err(PacketError::Short {
                what: "IPMI message",
                need: 7,
                have: bytes.len(),
            });
        }
        let (head, tail) = bytes.split_at(3);
        if checksum(head) != 0 {
            return Err(PacketError::Checksum("header"));
        }
        if checksum(tail) != 0 {
            return Err(PacketError::Checksum("body"));
        }
        let mut r = Reader::new(bytes);
        let to_addr = r.u8("rsAddr")?;
        let netfn_lun = r.u8("netFn")?;
        r.u8("checksum")?;
        let from_addr = r.u8("rqAddr")?;
        let seq_lun = r.u8("rqSeq")?;
        let cmd = r.u8("command")?;
        let body = r.take("body", r.left().saturating_sub(1))?.to_vec();
        Ok(Message {
            to_addr,
            netfn: netfn_lun >> 2,
            to_lun: netfn_lun & 0x03,
            from_addr,
            rq_seq: seq_lun >> 2,
            from_lun: seq_lun & 0x03,
            cmd,
            body,
        })
    }
}

/// Bounds-checked little-endian reads over a byte slice.
#[derive(Debug)]
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    pub(super) fn left(&self) -> usize {
        self.bytes.len()
    }

    pub(super) fn take(&mut self, what: &'static str, n: usize) -> Result<&'a [u8], PacketError> {
        if n > self.bytes.len() {
            return Err(PacketError::Short {
                what,
                need: n,
                have: self.bytes.len(),
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub(super) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    pub(super) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], PacketError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(what, N)?);
        Ok(out)
    }

    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, PacketError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(super) fn u16(&mut self, what: &'static str) -> Result<u16, PacketError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(super) fn u32(&mut self, what: &'static str) -> Result<u32, PacketError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_get_channel_auth_caps_request_encodes_like_the_spec_example() {
        let msg = Message {
            to_addr: BMC_ADDR,
            netfn: 0x06,
            to_lun: 0,
            from_addr: CONSOLE_ADDR,
            rq_seq: 0,
            from_lun: 0,
            cmd: 0x38,
            body: vec![0x8e, 0x04],
        };
        let bytes = msg.encode();
        assert_eq!(
            bytes,
            [0x20, 0x18, 0xc8, 0x81, 0x00, 0x38, 0x8e, 0x04, 0xb5]
        );
        let packet = encode_v15(0, 0, &bytes).unwrap();
        assert_eq!(&packet[..5], &[0x06, 0x00, 0xff, 0x07, 0x00]);
        assert_eq!(packet[13], 9);
        match decode(&packet).unwrap() {
            Packet::V15(p) => assert_eq!(Message::decode(&p.payload).unwrap(), msg),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_corrupted_checksum_or_truncated_trailer_is_an_error() {
        let mut bytes = Message {
            to_addr: 0x81,
            netfn: 0x01,
            to_lun: 0,
            from_addr: 0x20,
            rq_seq: 5,
            from_lun: 0,
            cmd: 0x01,
            body: vec![0, 1, 2],
        }
        .encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(Message::decode(&bytes), Err(PacketError::Checksum("body")));

        let header = V2Header {
            payload_type: payload::IPMI,
            encrypted: false,
            session_id: 7,
            seq: 9,
        };
        let signed = encode_v2(header, &[1, 2, 3], Some(&|_: &[u8]| vec![0xaa; 12])).unwrap();
        // Cut inside the trailer: no AuthCode left.
        let cut = &signed[..signed.len() - 12];
        assert!(matches!(decode(cut), Err(PacketError::Trailer(_))));
    }

    fn header() -> impl Strategy<Value = V2Header> {
        (0u8..0x40, any::<bool>(), any::<u32>(), any::<u32>()).prop_filter_map(
            "no OEM explicit payloads",
            |(payload_type, encrypted, session_id, seq)| {
                (payload_type != 0x02).then_some(V2Header {
                    payload_type,
                    encrypted,
                    session_id,
                    seq,
                })
            },
        )
    }

    proptest! {
        #[test]
        fn v2_packets_round_trip(
            h in header(),
            body in proptest::collection::vec(any::<u8>(), 0..600),
            code_len in proptest::option::of(1usize..40),
        ) {
            let sign = move |covered: &[u8]| {
                // A stand-in MAC that depends on every covered byte.
                let s = covered.iter().fold(0u8, |a, b| a.wrapping_mul(31).wrapping_add(*b));
                vec![s; code_len.unwrap_or(0)]
            };
            let signer: Option<Signer<'_>> = code_len.map(|_| &sign as _);
            let bytes = encode_v2(h, &body, signer).unwrap();
            let Packet::V20(p) = decode(&bytes).unwrap() else { panic!("not v2") };
            prop_assert_eq!(p.payload_type, h.payload_type);
            prop_assert_eq!(p.encrypted, h.encrypted);
            prop_assert_eq!(p.session_id, h.session_id);
            prop_assert_eq!(p.seq, h.seq);
            prop_assert_eq!(&p.payload, &body);
            prop_assert_eq!(p.authenticated, code_len.is_some());
            if code_len.is_some() {
                prop_assert_eq!(p.signed_len % 4, 0);
                let covered = &bytes[4..4 + p.signed_len];
                prop_assert_eq!(p.auth_code, sign(covered));
            }
        }

        #[test]
        fn messages_round_trip(
            to_addr in any::<u8>(), netfn in 0u8..64, to_lun in 0u8..4,
            from_addr in any::<u8>(), rq_seq in 0u8..64, from_lun in 0u8..4,
            cmd in any::<u8>(), body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let m = Message { to_addr, netfn, to_lun, from_addr, rq_seq, from_lun, cmd, body };
            prop_assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }

        #[test]
        fn v15_packets_round_trip(
            seq in any::<u32>(), id in any::<u32>(),
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let bytes = encode_v15(seq, id, &body).unwrap();
            let want = Packet::V15(V15Packet { seq, session_id: id, payload: body });
            prop_assert_eq!(decode(&bytes).unwrap(), want);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
            let _ = Message::decode(&bytes);
            let mut framed = RMCP_HEADER.to_vec();
            framed.extend_from_slice(&bytes);
            let _ = decode(&framed);
            let mut v2 = RMCP_HEADER.to_vec();
            v2.push(AUTH_RMCP_PLUS);
            v2.extend_from_slice(&bytes);
            let _ = decode(&v2);
        }
    }
}
