//! The RMCP+ session-setup payloads (IPMI v2.0 sections 13.17-13.23): Open
//! Session Request/Response and RAKP messages 1-4, both directions, so the
//! driver and a test BMC share one encoding. Parsing is length-checked like
//! [`super::rmcp`]; no keys or HMACs here (see [`super::crypto`]).

use super::rmcp::{PacketError, Reader};

/// Privilege level ADMINISTRATOR.
pub const PRIV_ADMIN: u8 = 0x04;
/// RAKP 1 role bit: look the user up by name only (not name and role),
/// which is what ipmitool sends and BMCs expect by default.
pub const NAME_ONLY_LOOKUP: u8 = 0x10;

/// The console's proposal of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionRequest {
    /// Matches request and response.
    pub tag: u8,
    /// Requested maximum privilege (0: the highest the user may have).
    pub max_privilege: u8,
    /// The console's id for the session (the BMC addresses packets with it).
    pub console_session_id: u32,
    /// Authentication algorithm.
    pub auth: u8,
    /// Integrity algorithm.
    pub integrity: u8,
    /// Confidentiality algorithm.
    pub confidentiality: u8,
}

/// The BMC's answer to an [`OpenSessionRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionResponse {
    /// The request's tag.
    pub tag: u8,
    /// RMCP+ status code (0: accepted).
    pub status: u8,
    /// Privilege the session may reach.
    pub max_privilege: u8,
    /// The console's session id, echoed.
    pub console_session_id: u32,
    /// The BMC's id for the session (the console addresses packets with it).
    pub bmc_session_id: u32,
    /// Chosen authentication algorithm.
    pub auth: u8,
    /// Chosen integrity algorithm.
    pub integrity: u8,
    /// Chosen confidentiality algorithm.
    pub confidentiality: u8,
}

/// RAKP message 1: the console's random number and user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp1 {
    /// Matches RAKP 1 and 2.
    pub tag: u8,
    /// The BMC's session id.
    pub bmc_session_id: u32,
    /// The console's random number (Rm).
    pub console_random: [u8; 16],
    /// Requested role and lookup bit (ROLEm), used as is in every HMAC.
    pub role: u8,
    /// User name (at most 16 bytes).
    pub username: Vec<u8>,
}

/// RAKP message 2: the BMC's random number, GUID and proof of the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp2 {
    /// RAKP 1's tag.
    pub tag: u8,
    /// RMCP+ status code.
    pub status: u8,
    /// The console's session id.
    pub console_session_id: u32,
    /// The BMC's random number (Rc).
    pub bmc_random: [u8; 16],
    /// The BMC's GUID (GUIDc).
    pub bmc_guid: [u8; 16],
    /// HMAC over the exchange, keyed with the user's password.
    pub auth_code: Vec<u8>,
}

/// RAKP message 3: the console's proof of the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp3 {
    /// Matches RAKP 3 and 4.
    pub tag: u8,
    /// RMCP+ status code (non-zero tells the BMC the console gives up).
    pub status: u8,
    /// The BMC's session id.
    pub bmc_session_id: u32,
    /// HMAC over the exchange, keyed with the user's password.
    pub auth_code: Vec<u8>,
}

/// RAKP message 4: the BMC's integrity check value under the new session key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp4 {
    /// RAKP 3's tag.
    pub tag: u8,
    /// RMCP+ status code.
    pub status: u8,
    /// The console's session id.
    pub console_session_id: u32,
    /// HMAC keyed with SIK, truncated to the integrity algorithm's length.
    pub icv: Vec<u8>,
}

fn algorithm(out: &mut Vec<u8>, kind: u8, id: u8) {
    out.extend_from_slice(&[kind, 0, 0, 0x08, id & 0x3f, 0, 0, 0]);
}

fn read_algorithm(r: &mut Reader<'_>, kind: u8) -> Result<u8, PacketError> {
    let rec = r.array::<8>("algorithm payload")?;
    if rec[0] != kind {
        return Err(PacketError::Field {
            what: "algorithm payload type",
            value: u32::from(rec[0]),
            expected: "authentication, integrity, confidentiality in order",
        });
    }
    Ok(rec[4] & 0x3f)
}

impl OpenSessionRequest {
    /// Wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.tag, self.max_privilege, 0, 0];
        out.extend_from_slice(&self.console_session_id.to_le_bytes());
        algorithm(&mut out, 0, self.auth);
        algorithm(&mut out, 1, self.integrity);
        algorithm(&mut out, 2, self.confidentiality);
        out
    }

    /// Parses one.
    pub fn decode(bytes: &[u8]) -> Result<Self, PacketError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8("tag")?;
        let max_privilege = r.u8("privilege")?;
        r.take("reserved", 2)?;
        let console_session_id = r.u32("console session id")?;
        Ok(OpenSessionRequest {
            tag,
            max_privilege,
            console_session_id,
            auth: read_algorithm(&mut r, 0)?,
            integrity: read_algorithm(&mut r, 1)?,
            confidentiality: read_algorithm(&mut r, 2)?,
        })
    }
}

impl OpenSessionResponse {
    /// Wire bytes (short form for a refusal).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.tag, self.status, self.max_privilege, 0];
        out.extend_from_slice(&self.console_session_id.to_le_bytes());
        if self.status == 0 {
            out.extend_from_slice(&self.bmc_session_id.to_le_bytes());
            algorithm(&mut out, 0, self.auth);
            algorithm(&mut out, 1, self.integrity);
            algorithm(&mut out, 2, self.confidentiality);
        }
        out
    }

    /// Parses one. A refusal may be cut short anywhere after the status
    /// (ipmi_sim sends only tag and status): missing fields read as 0.
    pub fn decode(bytes: &[u8]) -> Result<Self, PacketError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8("tag")?;
        let status = r.u8("status")?;
        if status != 0 {
            let max_privilege = r.u8("privilege").unwrap_or(0);
            let _ = r.u8("reserved");
            return Ok(OpenSessionResponse {
                tag,
                status,
                max_privilege,
                console_session_id: r.u32("console session id").unwrap_or(0),
                bmc_session_id: 0,
                auth: 0,
                integrity: 0,
                confidentiality: 0,
            });
        }
        let max_privilege = r.u8("privilege")?;
        r.u8("reserved")?;
        let console_session_id = r.u32("console session id")?;
        let mut resp = OpenSessionResponse {
            tag,
            status,
            max_privilege,
            console_session_id,
            bmc_session_id: 0,
            auth: 0,
            integrity: 0,
            confidentiality: 0,
        };
        resp.bmc_session_id = r.u32("BMC session id")?;
        resp.auth = read_algorithm(&mut r, 0)?;
        resp.integrity = read_algorithm(&mut r, 1)?;
        resp.confidentiality = read_algorithm(&mut r, 2)?;
        Ok(resp)
    }
}

impl Rakp1 {
    /// Wire bytes.
    pub fn encode(&self) -> Result<Vec<u8>, PacketError> {
        let len = u8::try_from(self.username.len())
            .ok()
            .filter(|&n| n <= 16)
            .ok_or(PacketError::TooLong(self.username.len()))?;
        let mut out = vec![self.tag, 0, 0, 0];
        out.extend_from_slice(&self.bmc_session_id.to_le_bytes());
        out.extend_from_slice(&self.console_random);
        out.extend_from_slice(&[self.role, 0, 0, len]);
        out.extend_from_slice(&self.username);
        Ok(out)
    }

    /// Parses one.
    pub fn decode(bytes: &[u8]) -> Result<Self, PacketError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8("tag")?;
        r.take("reserved", 3)?;
        let bmc_session_id = r.u32("BMC session id")?;
        let console_random = r.array("console random")?;
        let role = r.u8("role")?;
        r.take("reserved", 2)?;
        let len = r.u8("user name length")?;
        if len > 16 {
            return Err(PacketError::Field {
                what: "user name length",
                value: u32::from(len),
                expected: "at most 16",
            });
        }
        let username = r.take("user name", usize::from(len))?.to_vec();
        Ok(Rakp1 {
            tag,
            bmc_session_id,
            console_random,
            role,
            username,
        })
    }
}

impl Rakp2 {
    /// Wire bytes (short form for a refusal).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.tag, self.status, 0, 0];
        out.extend_from_slice(&self.console_session_id.to_le_bytes());
        if self.status == 0 {
            out.extend_from_slice(&self.bmc_random);
            out.extend_from_slice(&self.bmc_guid);
            out.extend_from_slice(&self.auth_code);
        }
        out
    }

    /// Parses one. A refusal may be cut short anywhere after the status:
    /// a missing session id reads as 0.
    pub fn decode(bytes: &[u8]) -> Result<Self, PacketError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8("tag")?;
        let status = r.u8("status")?;
        if status != 0 {
            let _ = r.take("reserved", 2);
            return Ok(Rakp2 {
                tag,
                status,
                console_session_id: r.u32("console session id").unwrap_or(0),
                bmc_random: [0; 16],
                bmc_guid: [0; 16],
                auth_code: Vec::new(),
            });
        }
        r.take("reserved", 2)?;
        let console_session_id = r.u32("console session id")?;
        Ok(Rakp2 {
            tag,
            status,
            console_session_id,
            bmc_random: r.array("BMC random")?,
            bmc_guid: r.array("BMC GUID")?,
            auth_code: r.rest().to_vec(),
        })
    }
}

impl Rakp3 {
    /// Wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.tag, self.status, 0, 0];
        out.extend_from_slice(&self.bmc_session_id.to_le_bytes());
        out.extend_from_slice(&self.auth_code);
        out
    }

    /// Parses one.
    pub fn decode(bytes: &[u8]) -> Result<Self, PacketError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8("tag")?;
        let status = r.u8("status")?;
        r.take("reserved", 2)?;
        let bmc_session_id = r.u32("BMC session id")?;
        Ok(Rakp3 {
            tag,
            status,
            bmc_session_id,
            auth_code: r.rest().to_vec(),
        })
    }
}

impl Rakp4 {
    /// Wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.tag, self.status, 0, 0];
        out.extend_from_slice(&self.console_session_id.to_le_bytes());
        out.extend_from_slice(&self.icv);
        out
    }

    /// Parses one. A refusal may be cut short anywhere after the status:
    /// a missing session id reads as 0.
    pub fn decode(bytes: &[u8]) -> Result<Self, PacketError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8("tag")?;
        let status = r.u8("status")?;
        if status != 0 {
            let _ = r.take("reserved", 2);
            return Ok(Rakp4 {
                tag,
                status,
                console_session_id: r.u32("console session id").unwrap_or(0),
                icv: Vec::new(),
            });
        }
        r.take("reserved", 2)?;
        let console_session_id = r.u32("console session id")?;
        Ok(Rakp4 {
            tag,
            status,
            console_session_id,
            icv: r.rest().to_vec(),
        })
    }
}

/// What an RMCP+ status code means (IPMI v2.0 table 13-15).
pub fn status_meaning(code: u8) -> &'static str {
    match code {
        0x00 => "no errors",
        0x01 => "insufficient resources to create a session",
        0x02 => "invalid session id",
        0x03 => "invalid payload type",
        0x04 => "invalid authentication algorithm",
        0x05 => "invalid integrity algorithm",
        0x06 => "no matching authentication payload",
        0x07 => "no matching integrity payload",
        0x08 => "inactive session id",
        0x09 => "invalid role",
        0x0a => "unauthorized role or privilege level requested",
        0x0b => "insufficient resources to create a session at the requested role",
        0x0c => "invalid user name length",
        0x0d => "unauthorized name",
        0x0e => "unauthorized GUID",
        0x0f => "invalid integrity check value",
        0x10 => "invalid confidentiality algorithm",
        0x11 => "no cipher suite match with proposed security algorithms",
        0x12 => "illegal or unrecognized parameter",
        _ => "reserved status code",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn session_setup_payloads_round_trip(
            tag in any::<u8>(), status in any::<u8>(), a in any::<u32>(), b in any::<u32>(),
            algs in (0u8..64, 0u8..64, 0u8..64), r16 in any::<[u8; 16]>(), g16 in any::<[u8; 16]>(),
            role in any::<u8>(), name in proptest::collection::vec(any::<u8>(), 0..=16),
            code in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let osr = OpenSessionRequest { tag, max_privilege: role, console_session_id: a,
                auth: algs.0, integrity: algs.1, confidentiality: algs.2 };
            prop_assert_eq!(OpenSessionRequest::decode(&osr.encode()).unwrap(), osr);
            let ok = status == 0;
            let resp = OpenSessionResponse { tag, status, max_privilege: role, console_session_id: a,
                bmc_session_id: if ok { b } else { 0 },
                auth: if ok { algs.0 } else { 0 }, integrity: if ok { algs.1 } else { 0 },
                confidentiality: if ok { algs.2 } else { 0 } };
            prop_assert_eq!(OpenSessionResponse::decode(&resp.encode()).unwrap(), resp);
            let r1 = Rakp1 { tag, bmc_session_id: b, console_random: r16, role, username: name };
            prop_assert_eq!(Rakp1::decode(&r1.encode().unwrap()).unwrap(), r1);
            let r2 = Rakp2 { tag, status, console_session_id: a,
                bmc_random: if ok { r16 } else { [0; 16] }, bmc_guid: if ok { g16 } else { [0; 16] },
                auth_code: if ok { code.clone() } else { vec![] } };
            prop_assert_eq!(Rakp2::decode(&r2.encode()).unwrap(), r2);
            let r3 = Rakp3 { tag, status, bmc_session_id: b, auth_code: code.clone() };
            prop_assert_eq!(Rakp3::decode(&r3.encode()).unwrap(), r3);
            let r4 = Rakp4 { tag, status, console_session_id: a, icv: if ok { code } else { vec![] } };
            prop_assert_eq!(Rakp4::decode(&r4.encode()).unwrap(), r4);
            // Refusals cut short after the status still parse.
            if !ok {
                let short = [tag, status];
                prop_assert_eq!(OpenSessionResponse::decode(&short).unwrap().status, status);
                prop_assert_eq!(Rakp2::decode(&short).unwrap().status, status);
                prop_assert_eq!(Rakp4::decode(&short).unwrap().status, status);
            }
        }

        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = OpenSessionRequest::decode(&bytes);
            let _ = OpenSessionResponse::decode(&bytes);
            let _ = Rakp1::decode(&bytes);
            let _ = Rakp2::decode(&bytes);
            let _ = Rakp3::decode(&bytes);
            let _ = Rakp4::decode(&bytes);
        }
    }
}
