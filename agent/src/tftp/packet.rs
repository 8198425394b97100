//! TFTP packets (RFC 1350) with option extension (RFC 2347): parsing what
//! clients send and encoding what the server sends.
//!
//! [`parse`] takes untrusted bytes and never panics (property tests here, a
//! fuzz target in `fuzz/`). Only what a read-only server needs is decoded:
//! requests with their options, ACK and ERROR.

/// Opcodes (RFC 1350 section 5, RFC 2347).
pub mod opcode {
    /// Read request.
    pub const RRQ: u16 = 1;
    /// Write request.
    pub const WRQ: u16 = 2;
    /// Data.
    pub const DATA: u16 = 3;
    /// Acknowledgment.
    pub const ACK: u16 = 4;
    /// Error.
    pub const ERROR: u16 = 5;
    /// Option acknowledgment.
    pub const OACK: u16 = 6;
}

/// Error codes (RFC 1350 appendix, RFC 2347).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    /// Not defined, see message.
    Undefined = 0,
    /// File not found.
    NotFound = 1,
    /// Access violation.
    AccessViolation = 2,
    /// Illegal TFTP operation.
    IllegalOperation = 4,
    /// Unknown transfer ID.
    UnknownTid = 5,
    /// Option negotiation refused (RFC 2347).
    OptionRefused = 8,
}

/// Largest block size RFC 2348 allows.
pub const MAX_BLKSIZE: u16 = 65464;
/// The block size without the option.
pub const DEFAULT_BLKSIZE: u16 = 512;
/// Options accepted per request; more is an attack, not a client.
const MAX_OPTIONS: usize = 16;

/// Transfer mode of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bytes as they are.
    Octet,
    /// Text with CR LF line ends (RFC 764).
    Netascii,
}

/// The options a client asked for; `None` when absent or malformed (RFC 2347:
/// the server ignores options it does not accept).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// RFC 2348, 8..=65464.
    pub blksize: Option<u16>,
    /// RFC 2349; a client sends 0 on a read request to ask for the size.
    pub tsize: Option<u64>,
    /// RFC 2349, seconds 1..=255.
    pub timeout: Option<u8>,
    /// RFC 7440, 1..=65535.
    pub windowsize: Option<u16>,
}

/// A read or write request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The requested file name as sent.
    pub filename: String,
    /// Transfer mode.
    pub mode: Mode,
    /// Requested options.
    pub options: Options,
}

/// A parsed packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// RRQ.
    Read(Request),
    /// WRQ (refused by this server, but parsed to answer properly).
    Write(Request),
    /// DATA (a server never expects it; parsed to answer properly).
    Data {
        /// Block number.
        block: u16,
    },
    /// ACK of a block (0 acknowledges an OACK).
    Ack(u16),
    /// ERROR from the peer.
    Error {
        /// Code.
        code: u16,
        /// Message.
        message: String,
    },
    /// OACK (a server never expects it).
    Oack,
}

/// Why a packet could not be parsed; the text goes into the ERROR reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Fewer than two bytes, or a truncated field.
    #[error("truncated packet")]
    Truncated,
    /// An opcode outside 1..=6.
    #[error("unknown opcode {0}")]
    Opcode(u16),
    /// A string field without its terminating NUL.
    #[error("unterminated string")]
    Unterminated,
    /// The file name is not UTF-8.
    #[error("file name is not UTF-8")]
    FilenameEncoding,
    /// A mode other than octet and netascii.
    #[error("unsupported transfer mode {0:?}")]
    Mode(String),
    /// Too many options.
    #[error("more than {MAX_OPTIONS} options")]
    TooManyOptions,
}

/// Parses one datagram.
pub fn parse(buf: &[u8]) -> Result<Packet, PacketError> {
    let (op, rest) = split_u16(buf)?;
    match op {
        opcode::RRQ => request(rest).map(Packet::Read),
        opcode::WRQ => request(rest).map(Packet::Write),
        opcode::DATA => split_u16(rest).map(|(block, _)| Packet::Data { block }),
        opcode::ACK => split_u16(rest).map(|(block, _)| Packet::Ack(block)),
        opcode::ERROR => {
            let (code, rest) = split_u16(rest)?;
            // Some clients omit the final NUL of the message; accept that.
            let text = rest.split(|b| *b == 0).next().unwrap_or_default();
            Ok(Packet::Error {
                code,
                message: String::from_utf8_lossy(text).into_owned(),
            })
        }
        opcode::OACK => Ok(Packet::Oack),
        other => Err(PacketError::Opcode(other)),
    }
}

fn split_u16(buf: &[u8]) -> Result<(u16, &[u8]), PacketError> {
    match buf {
        [a, b, rest @ ..] => Ok((u16::from_be_bytes([*a, *b]), rest)),
        _ => Err(PacketError::Truncated),
    }
}

/// Splits `buf` at its first NUL: the string before, the bytes after.
fn cstr(buf: &[u8]) -> Result<(&[u8], &[u8]), PacketError> {
    let end = buf
        .iter()
        .position(|b| *b == 0)
        .ok_or(PacketError::Unterminated)?;
    Ok((&buf[..end], &buf[end + 1..]))
}

fn request(buf: &[u8]) -> Result<Request, PacketError> {
    let (name, rest) = cstr(buf)?;
    let filename = std::str::from_utf8(name)
        .map_err(|_| PacketError::FilenameEncoding)?
        .to_owned();
    let (mode, mut rest) = cstr(rest)?;
    let mode = String::from_utf8_lossy(mode).to_ascii_lowercase();
    let mode = match mode.as_str() {
        "octet" => Mode::Octet,
        "netascii" => Mode::Netascii,
        _ => return Err(PacketError::Mode(mode)),
    };
    let mut options = Options::default();
    let mut count = 0;
    // Trailing garbage without a NUL (some old clients pad) ends the list.
    while !rest.is_empty() {
        let Ok((name, after)) = cstr(rest) else { break };
        let Ok((value, after)) = cstr(after) else {
            break;
        };
        rest = after;
        count += 1;
        if count > MAX_OPTIONS {
            return Err(PacketError::TooManyOptions);
        }
        let value = std::str::from_utf8(value).ok();
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        match name.as_str() {
            "blksize" => {
                options.blksize = value
                    .and_then(|v| v.parse::<u32>().ok())
                    .filter(|v| *v >= 8)
                    .map(|v| v.min(u32::from(MAX_BLKSIZE)) as u16);
            }
            "tsize" => options.tsize = value.and_then(|v| v.parse().ok()),
            "timeout" => {
                options.timeout = value.and_then(|v| v.parse::<u8>().ok()).filter(|v| *v >= 1);
            }
            "windowsize" => {
                options.windowsize = value
                    .and_then(|v| v.parse::<u16>().ok())
                    .filter(|v| *v >= 1);
            }
            _ => {}
        }
    }
    Ok(Request {
        filename,
        mode,
        options,
    })
}

/// Writes a DATA header for `block` into an empty `buf`.
pub fn data_header(buf: &mut Vec<u8>, block: u16) {
    buf.clear();
    buf.extend_from_slice(&opcode::DATA.to_be_bytes());
    buf.extend_from_slice(&block.to_be_bytes());
}

/// An ERROR packet.
pub fn error(code: ErrorCode, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.extend_from_slice(&opcode::ERROR.to_be_bytes());
    out.extend_from_slice(&(code as u16).to_be_bytes());
    // A message with a NUL would cut itself short on the wire.
    out.extend(message.bytes().filter(|b| *b != 0));
    out.push(0);
    out
}

/// An OACK listing `options` (name, value) in order.
pub fn oack(options: &[(&str, u64)]) -> Vec<u8> {
    let mut out = opcode::OACK.to_be_bytes().to_vec();
    for (name, value) in options {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.to_string().as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn rrq(fields: &[&str]) -> Vec<u8> {
        let mut out = opcode::RRQ.to_be_bytes().to_vec();
        for f in fields {
            out.extend_from_slice(f.as_bytes());
            out.push(0);
        }
        out
    }

    #[test]
    fn parses_a_request_with_every_option() {
        let p = parse(&rrq(&[
            "undionly.kpxe",
            "OCTET",
            "blksize",
            "1468",
            "TSIZE",
            "0",
            "timeout",
            "3",
            "windowsize",
            "8",
            "multicast",
            "",
        ]))
        .unwrap();
        let Packet::Read(r) = p else { panic!("{p:?}") };
        assert_eq!(r.filename, "undionly.kpxe");
        assert_eq!(r.mode, Mode::Octet);
        assert_eq!(
            r.options,
            Options {
                blksize: Some(1468),
                tsize: Some(0),
                timeout: Some(3),
                windowsize: Some(8)
            }
        );
    }

    #[test]
    fn out_of_range_options_are_ignored_or_clamped() {
        let Packet::Read(r) = parse(&rrq(&[
            "f",
            "octet",
            "blksize",
            "7",
            "timeout",
            "0",
            "windowsize",
            "70000",
            "tsize",
            "x",
        ]))
        .unwrap() else {
            panic!()
        };
        assert_eq!(r.options, Options::default());
        let Packet::Read(r) = parse(&rrq(&["f", "octet", "blksize", "99999"])).unwrap() else {
            panic!()
        };
        assert_eq!(r.options.blksize, Some(MAX_BLKSIZE));
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert_eq!(parse(&[0]), Err(PacketError::Truncated));
        assert_eq!(parse(&[0, 9]), Err(PacketError::Opcode(9)));
        assert_eq!(parse(&[0, 1, b'a']), Err(PacketError::Unterminated));
        assert!(matches!(
            parse(&rrq(&["f", "mail"])),
            Err(PacketError::Mode(_))
        ));
        assert_eq!(
            parse(&[0, 1, 0xff, 0, b'o', 0]),
            Err(PacketError::FilenameEncoding)
        );
        assert_eq!(parse(&[0, 4, 0, 7]), Ok(Packet::Ack(7)));
        assert_eq!(
            parse(&[0, 5, 0, 8, b'n', b'o']),
            Ok(Packet::Error {
                code: 8,
                message: "no".into()
            })
        );
    }

    #[test]
    fn encodes_error_and_oack() {
        assert_eq!(
            error(ErrorCode::NotFound, "x\0y"),
            [0, 5, 0, 1, b'x', b'y', 0]
        );
        assert_eq!(oack(&[("tsize", 12)]), b"\x00\x06tsize\x0012\x00");
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn requests_round_trip(
            name in "[a-zA-Z0-9._/-]{1,60}",
            blksize in 8u16..=MAX_BLKSIZE,
            windowsize in 1u16..=64,
        ) {
            let bytes = rrq(&[&name, "octet", "blksize", &blksize.to_string(),
                "windowsize", &windowsize.to_string()]);
            let Ok(Packet::Read(r)) = parse(&bytes) else { panic!("{bytes:?}") };
            prop_assert_eq!(r.filename, name);
            prop_assert_eq!(r.options.blksize, Some(blksize));
            prop_assert_eq!(r.options.windowsize, Some(windowsize));
        }
    }
}
