//! One RMCP+ session over UDP: the handshake (Get Channel Authentication
//! Capabilities, Open Session, RAKP 1-4, Set Session Privilege Level),
//! authenticated and encrypted request/response exchanges, and Close
//! Session.
//!
//! Each exchange gets [`Limits::request`](super::super::Limits) in all,
//! split into [`TRIES`] transmissions. A retransmission keeps the IPMI
//! request sequence number (rqSeq), so a BMC that saw the first copy can
//! tell it is the same request, and takes a fresh session sequence number,
//! because BMCs drop a session sequence number they have already seen.
//! Commands whose repetition would do harm (a hard reset) are sent once.
//!
//! Inbound datagrams that are not for this exchange (another address,
//! another session, a bad AuthCode, an earlier request's late answer, a
//! replayed sequence number) are dropped and waited past; an authenticated
//! answer that then does not parse is an error.

use std::net::SocketAddr;
use std::time::Duration;

use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::commands::{self, Command};
use super::crypto::{CipherSuite, Handshake, SessionKeys, user_key};
use super::rakp::{
    self, NAME_ONLY_LOOKUP, OpenSessionRequest, OpenSessionResponse, PRIV_ADMIN, Rakp1, Rakp2,
    Rakp3, Rakp4,
};
use super::rmcp::{self, BMC_ADDR, CONSOLE_ADDR, Message, Packet, V2Header, payload};
use crate::bmc::BmcError;

/// Transmissions per exchange (the first and two retransmissions).
pub const TRIES: u32 = 3;
/// Largest datagram read (RMCP+ packets here are well under 200 bytes).
const MAX_DATAGRAM: usize = 1024;
/// How many recent inbound sequence numbers are remembered against replay.
const REPLAY_WINDOW: usize = 32;

/// An open, privileged session with a BMC.
#[derive(Debug)]
pub struct Session {
    socket: UdpSocket,
    peer: SocketAddr,
    endpoint: String,
    request: Duration,
    keys: SessionKeys,
    console_id: u32,
    bmc_id: u32,
    /// Our next session sequence number.
    out_seq: u32,
    /// Our next IPMI request sequence number (6 bits).
    rq_seq: u8,
    /// Inbound session sequence numbers already accepted.
    seen: Vec<u32>,
}

/// Where an exchange goes.
#[derive(Clone, Copy)]
struct Wire<'a> {
    socket: &'a UdpSocket,
    peer: SocketAddr,
    endpoint: &'a str,
}

/// What an inbound datagram is to the exchange waiting for it.
enum Verdict<T> {
    Done(T),
    Fail(BmcError),
    Ignore(String),
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

/// Sends what `make` builds (once per try) and waits for a datagram that
/// `judge` accepts, within `total`, over at most `tries` transmissions.
async fn exchange<T>(
    wire: Wire<'_>,
    what: &str,
    total: Duration,
    tries: u32,
    mut make: impl FnMut() -> Result<Vec<u8>, BmcError>,
    mut judge: impl FnMut(&[u8]) -> Verdict<T>,
) -> Result<T, BmcError> {
    let Wire {
        socket,
        peer,
        endpoint,
    } = wire;
    let tries = tries.max(1);
    let per_try = total / tries;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut ignored: Option<String> = None;
    for attempt in 1..=tries {
        let bytes = make()?;
        if let Err(e) = socket.send(&bytes).await {
            return Err(unreachable(endpoint, what, e));
        }
        let deadline = Instant::now() + per_try;
        // Bounded by the deadline, checked on every pass: tokio's timeout
        // polls the receive first, so a flood of ready datagrams alone
        // would never let it fire.
        loop {
            if Instant::now() >= deadline {
                break;
            }
            let got = match tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(unreachable(endpoint, what, e)),
                Ok(Ok(x)) => x,
            };
            let (n, from) = got;
            if from != peer {
                ignored = Some(format!("a datagram from {from}"));
                continue;
            }
            match judge(buf.get(..n).unwrap_or_default()) {
                Verdict::Done(v) => return Ok(v),
                Verdict::Fail(e) => return Err(e),
                Verdict::Ignore(why) => {
                    tracing::debug!(bmc = endpoint, what, why, "IPMI datagram ignored");
                    ignored = Some(why);
                }
            }
        }
        if attempt < tries {
            tracing::debug!(
                bmc = endpoint,
                what,
                attempt,
                "no IPMI answer yet; retransmitting"
            );
        }
    }
    let mut detail = format!("no answer to {what} within {total:?} ({tries} transmission(s))");
    if let Some(why) = ignored {
        detail.push_str(&format!("; last datagram ignored: {why}"));
    }
    Err(BmcError::Unreachable {
        endpoint: endpoint.to_owned(),
        source: detail.into(),
    })
}

fn unreachable(endpoint: &str, what: &str, e: std::io::Error) -> BmcError {
    BmcError::Unreachable {
        endpoint: endpoint.to_owned(),
        source: format!("{what}: {e}").into(),
    }
}

fn protocol(endpoint: &str, what: &str, detail: impl std::fmt::Display) -> BmcError {
    BmcError::Protocol {
        endpoint: endpoint.to_owned(),
        path: what.to_owned(),
        detail: detail.to_string(),
    }
}

/// The error for a non-zero RMCP+ status in a session-setup answer.
fn refused(endpoint: &str, step: &str, suite: CipherSuite, status: u8) -> BmcError {
    let meaning = rakp::status_meaning(status);
    match status {
        0x09 | 0x0a | 0x0d | 0x0e | 0x0f => BmcError::Auth {
            endpoint: endpoint.to_owned(),
            reason: format!("{step} answered RMCP+ status {status:#04x} ({meaning})"),
        },
        0x04..=0x07 | 0x10 | 0x11 => BmcError::Unsupported {
            endpoint: endpoint.to_owned(),
            wanted: format!("cipher suite {}", suite.id()),
            allowed: format!("not listed; {step} answered {status:#04x}, {meaning}"),
        },
        _ => protocol(
            endpoint,
            step,
            format!("RMCP+ status {status:#04x} ({meaning})"),
        ),
    }
}

/// Whether a session-setup answer is for this console: its session id
/// matches, or it is a refusal cut short before the id (ipmi_sim sends
/// refusals as tag and status only; the tag still has to match).
fn ours(status: u8, answered: u32, console_id: u32) -> bool {
    answered == console_id || (status != 0 && answered == 0)
}

/// Decodes an unauthenticated RMCP+ session-setup answer of `kind`.
fn setup_payload(datagram: &[u8], kind: u8) -> Result<Vec<u8>, String> {
    match rmcp::decode(datagram) {
        Ok(Packet::V20(p)) if p.payload_type == kind && !p.encrypted => Ok(p.payload),
        Ok(other) => Err(format!("not a payload of type {kind:#04x}: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

impl Session {
    /// Opens a session as `user` with `suite` and raises it to
    /// ADMINISTRATOR.
    pub async fn open(
        endpoint: &str,
        user: &str,
        password: &str,
        suite: CipherSuite,
        request: Duration,
    ) -> Result<Session, BmcError> {
        let auth = |reason: String| BmcError::Auth {
            endpoint: endpoint.to_owned(),
            reason,
        };
        let kuid = user_key(password.as_bytes())
            .ok_or_else(|| auth("the password is longer than IPMI's 20 bytes".into()))?;
        if user.len() > 16 {
            return Err(auth("the user name is longer than IPMI's 16 bytes".into()));
        }
        let peer = resolve(endpoint, request).await?;
        let local: SocketAddr = if peer.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)
            .await
            .map_err(|e| unreachable(endpoint, "binding a UDP socket", e))?;
        // Connected: the kernel drops datagrams from elsewhere and reports
        // ICMP port unreachable as an error instead of a silent timeout.
        socket
            .connect(peer)
            .await
            .map_err(|e| unreachable(endpoint, "connecting the UDP socket", e))?;

        // 1. Get Channel Authentication Capabilities, pre-session (v1.5
        // framing, as every BMC answers that).
        let caps = Message {
            to_addr: BMC_ADDR,
            netfn: commands::GET_CHANNEL_AUTH_CAPS.netfn,
            to_lun: 0,
            from_addr: CONSOLE_ADDR,
            rq_seq: 0,
            from_lun: 0,
            cmd: commands::GET_CHANNEL_AUTH_CAPS.cmd,
            // Bit 7: ask for the IPMI v2.0 extended data; channel 0x0e: this one.
            body: vec![0x8e, PRIV_ADMIN],
        }
        .encode();
        let name = commands::GET_CHANNEL_AUTH_CAPS.name;
        let wire = Wire {
            socket: &socket,
            peer,
            endpoint,
        };
        let caps_data = exchange(
            wire,
            name,
            request,
            TRIES,
            || rmcp::encode_v15(0, 0, &caps).map_err(|e| protocol(endpoint, name, e)),
            |d| {
                let msg = match rmcp::decode(d) {
                    Ok(Packet::V15(p)) => p.payload,
                    Ok(Packet::V20(p)) if p.payload_type == payload::IPMI && !p.encrypted => {
                        p.payload
                    }
                    Ok(_) => return Verdict::Ignore("not a pre-session IPMI answer".into()),
                    Err(e) => return Verdict::Ignore(e.to_string()),
                };
                match Message::decode(&msg) {
                    Ok(m) if m.cmd == commands::GET_CHANNEL_AUTH_CAPS.cmd => Verdict::Done(m.body),
                    Ok(_) => Verdict::Ignore("an answer to another command".into()),
                    // Unauthenticated, like everything before RAKP 4: a bad
                    // one is noise until the deadline says otherwise.
                    Err(e) => Verdict::Ignore(e.to_string()),
                }
            },
        )
        .await?;
        match caps_data.split_first() {
            Some((0, data)) => match commands::speaks_v2(data) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(BmcError::Unsupported {
                        endpoint: endpoint.to_owned(),
                        wanted: "IPMI v2.0 (RMCP+) on this channel".into(),
                        allowed: "IPMI v1.5 only".into(),
                    });
                }
                Err(e) => return Err(protocol(endpoint, name, e)),
            },
            Some((&cc, _)) => {
                return Err(completion(endpoint, commands::GET_CHANNEL_AUTH_CAPS, cc));
            }
            None => return Err(protocol(endpoint, name, "empty answer")),
        }

        // 2. Open Session.
        // Zero means "no session"; one value in 2^32 made 1 loses nothing.
        let console_id = u32::from_le_bytes(random()).max(1);
        let (a, i, c) = suite.algorithms();
        let tag = random::<1>()[0];
        let open = OpenSessionRequest {
            tag,
            max_privilege: PRIV_ADMIN,
            console_session_id: console_id,
            auth: a,
            integrity: i,
            confidentiality: c,
        }
        .encode();
        let step = "RMCP+ Open Session";
        let resp: OpenSessionResponse = exchange(
            wire,
            step,
            request,
            TRIES,
            || setup(endpoint, step, payload::OPEN_SESSION_REQUEST, &open),
            |d| match setup_payload(d, payload::OPEN_SESSION_RESPONSE)
                .and_then(|p| OpenSessionResponse::decode(&p).map_err(|e| e.to_string()))
            {
                Ok(r) if r.tag == tag && ours(r.status, r.console_session_id, console_id) => {
                    Verdict::Done(r)
                }
                Ok(_) => Verdict::Ignore("another session's Open Session Response".into()),
                Err(e) => Verdict::Ignore(e),
            },
        )
        .await?;
        if resp.status != 0 {
            return Err(refused(endpoint, step, suite, resp.status));
        }
        if (resp.auth, resp.integrity, resp.confidentiality) != (a, i, c) {
            return Err(protocol(
                endpoint,
                step,
                format!(
                    "the BMC chose algorithms {:?} instead of cipher suite {}'s {:?}",
                    (resp.auth, resp.integrity, resp.confidentiality),
                    suite.id(),
                    (a, i, c)
                ),
            ));
        }
        let bmc_id = resp.bmc_session_id;

        // 3. RAKP 1 and 2: the BMC proves it knows the password.
        let mut hs = Handshake {
            suite,
            console_session_id: console_id,
            bmc_session_id: bmc_id,
            console_random: random(),
            bmc_random: [0; 16],
            bmc_guid: [0; 16],
            role: PRIV_ADMIN | NAME_ONLY_LOOKUP,
            username: user.as_bytes().to_vec(),
        };
        let tag = tag.wrapping_add(1);
        let rakp1 = Rakp1 {
            tag,
            bmc_session_id: bmc_id,
            console_random: hs.console_random,
            role: hs.role,
            username: hs.username.clone(),
        }
        .encode()
        .map_err(|e| protocol(endpoint, "RAKP 1", e))?;
        let rakp2: Rakp2 = exchange(
            wire,
            "RAKP 1",
            request,
            TRIES,
            || setup(endpoint, "RAKP 1", payload::RAKP1, &rakp1),
            |d| match setup_payload(d, payload::RAKP2)
                .and_then(|p| Rakp2::decode(&p).map_err(|e| e.to_string()))
            {
                Ok(r) if r.tag == tag && ours(r.status, r.console_session_id, console_id) => {
                    Verdict::Done(r)
                }
                Ok(_) => Verdict::Ignore("another session's RAKP 2".into()),
                Err(e) => Verdict::Ignore(e),
            },
        )
        .await?;
        if rakp2.status != 0 {
            return Err(refused(endpoint, "RAKP 1", suite, rakp2.status));
        }
        hs.bmc_random = rakp2.bmc_random;
        hs.bmc_guid = rakp2.bmc_guid;
        let tag = tag.wrapping_add(1);
        if !super::crypto::same(&hs.rakp2_code(&kuid), &rakp2.auth_code) {
            // Tell the BMC to drop the half-open session (best effort: the
            // error stands whatever happens to this datagram).
            let bye = Rakp3 {
                tag,
                status: 0x0f,
                bmc_session_id: bmc_id,
                auth_code: Vec::new(),
            }
            .encode();
            if let Ok(bytes) = setup(endpoint, "RAKP 3", payload::RAKP3, &bye) {
                let _ = socket.send(&bytes).await;
            }
            return Err(auth(format!(
                "the BMC's RAKP 2 proof does not match the password for user {user:?} (wrong password)"
            )));
        }

        // 4. RAKP 3 and 4: we prove it, and the BMC proves the session key.
        let rakp3 = Rakp3 {
            tag,
            status: 0,
            bmc_session_id: bmc_id,
            auth_code: hs.rakp3_code(&kuid),
        }
        .encode();
        let rakp4: Rakp4 = exchange(
            wire,
            "RAKP 3",
            request,
            TRIES,
            || setup(endpoint, "RAKP 3", payload::RAKP3, &rakp3),
            |d| match setup_payload(d, payload::RAKP4)
                .and_then(|p| Rakp4::decode(&p).map_err(|e| e.to_string()))
            {
                Ok(r) if r.tag == tag && ours(r.status, r.console_session_id, console_id) => {
                    Verdict::Done(r)
                }
                Ok(_) => Verdict::Ignore("another session's RAKP 4".into()),
                Err(e) => Verdict::Ignore(e),
            },
        )
        .await?;
        if rakp4.status != 0 {
            return Err(refused(endpoint, "RAKP 3", suite, rakp4.status));
        }
        // No BMC key (Kg) is configured anywhere, so SIK is keyed with Kuid.
        let sik = hs.sik(&kuid);
        if !super::crypto::same(&hs.rakp4_icv(&sik), &rakp4.icv) {
            return Err(auth(
                "the BMC's RAKP 4 check value does not match (a BMC key, Kg, may be set on the BMC; this driver does not support one)".into(),
            ));
        }

        let mut session = Session {
            socket,
            peer,
            endpoint: endpoint.to_owned(),
            request,
            keys: SessionKeys::derive(suite, &sik),
            console_id,
            bmc_id,
            out_seq: 1,
            rq_seq: random::<1>()[0] & 0x3f,
            seen: Vec::new(),
        };
        // 5. Sessions start at USER privilege; chassis control needs more.
        // A session refused it is closed, not left holding one of the
        // BMC's few slots until it times out.
        if let Err(e) = session
            .command(commands::SET_SESSION_PRIVILEGE, &[PRIV_ADMIN], true)
            .await
        {
            session.close().await;
            return Err(e);
        }
        Ok(session)
    }

    /// Sends `command` with `data` in the session and returns the answer's
    /// data (after a zero completion code). `resend`: whether a lost answer
    /// may be made up for by sending the request again.
    pub async fn command(
        &mut self,
        command: Command,
        data: &[u8],
        resend: bool,
    ) -> Result<Vec<u8>, BmcError> {
        let rq_seq = self.rq_seq;
        self.rq_seq = (self.rq_seq + 1) & 0x3f;
        let message = Message {
            to_addr: BMC_ADDR,
            netfn: command.netfn,
            to_lun: 0,
            from_addr: CONSOLE_ADDR,
            rq_seq,
            from_lun: 0,
            cmd: command.cmd,
            body: data.to_vec(),
        }
        .encode();
        let tries = if resend { TRIES } else { 1 };
        let Session {
            socket,
            peer,
            endpoint,
            request,
            keys,
            console_id,
            bmc_id,
            out_seq,
            seen,
            ..
        } = self;
        let endpoint: &str = endpoint;
        let wire = Wire {
            socket,
            peer: *peer,
            endpoint,
        };
        let body = exchange(
            wire,
            command.name,
            *request,
            tries,
            || {
                let seq = *out_seq;
                // Zero means "no session sequence"; skip it on wrap.
                *out_seq = out_seq.wrapping_add(1).max(1);
                let sealed = keys.encrypt(random(), &message);
                let header = V2Header {
                    payload_type: payload::IPMI,
                    encrypted: true,
                    session_id: *bmc_id,
                    seq,
                };
                rmcp::encode_v2(header, &sealed, Some(&|b: &[u8]| keys.sign(b)))
                    .map_err(|e| protocol(endpoint, command.name, e))
            },
            |d| {
                let (seq, m) = match inbound(keys, *console_id, d) {
                    Inbound::Answer { seq, message } => (seq, message),
                    Inbound::Ignore(why) => return Verdict::Ignore(why),
                    Inbound::Malformed(e) => {
                        return Verdict::Fail(protocol(endpoint, command.name, e));
                    }
                };
                if seen.contains(&seq) {
                    return Verdict::Ignore(format!("replayed session sequence {seq}"));
                }
                if m.netfn != command.netfn + 1 || m.cmd != command.cmd || m.rq_seq != rq_seq {
                    return Verdict::Ignore(format!(
                        "an answer to another request (netfn {:#04x} cmd {:#04x} seq {})",
                        m.netfn, m.cmd, m.rq_seq
                    ));
                }
                if seen.len() >= REPLAY_WINDOW {
                    seen.remove(0);
                }
                seen.push(seq);
                Verdict::Done(m.body)
            },
        )
        .await?;
        match body.split_first() {
            Some((0, data)) => Ok(data.to_vec()),
            Some((&cc, _)) => Err(completion(&self.endpoint, command, cc)),
            None => Err(protocol(
                &self.endpoint,
                command.name,
                "an answer without a completion code",
            )),
        }
    }

    /// Closes the session (best effort: the BMC times idle sessions out).
    pub async fn close(mut self) {
        let id = self.bmc_id.to_le_bytes();
        // One try with a short wait: closing must not hold a caller that
        // already has its answer.
        self.request = self.request.min(Duration::from_secs(1));
        if let Err(e) = self.command(commands::CLOSE_SESSION, &id, false).await {
            tracing::debug!(bmc = %self.endpoint, error = %e, "IPMI Close Session failed");
        }
    }
}

/// What a datagram that arrives in an active session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// An authentic IPMI message for this session.
    Answer {
        /// Its session sequence number.
        seq: u32,
        /// The message.
        message: Message,
    },
    /// Not for this session, or not authentic: to be waited past.
    Ignore(String),
    /// Authentic, for this session, and malformed inside: an error.
    Malformed(rmcp::PacketError),
}

/// Judges a datagram arriving in the session `console_id` holds with
/// `keys`: framing, session id, AuthCode, decryption, message. Only what
/// passes the AuthCode can be `Malformed`; anything before that is noise.
pub fn inbound(keys: &SessionKeys, console_id: u32, datagram: &[u8]) -> Inbound {
    let p = match rmcp::decode(datagram) {
        Ok(Packet::V20(p)) => p,
        Ok(Packet::V15(_)) => return Inbound::Ignore("an IPMI v1.5 packet".into()),
        Err(e) => return Inbound::Ignore(e.to_string()),
    };
    if p.session_id != console_id {
        return Inbound::Ignore(format!("session id {:#010x}", p.session_id));
    }
    // The session negotiated integrity and confidentiality: a packet
    // without either is not from the BMC's side of it.
    if !(p.authenticated && p.encrypted) || p.payload_type != payload::IPMI {
        return Inbound::Ignore("an unauthenticated or unencrypted packet".into());
    }
    let covered = datagram.get(4..4 + p.signed_len).unwrap_or_default();
    if !keys.verify(covered, &p.auth_code) {
        return Inbound::Ignore("a packet whose AuthCode does not verify".into());
    }
    match keys
        .decrypt(&p.payload)
        .and_then(|plain| Message::decode(&plain))
    {
        Ok(message) => Inbound::Answer {
            seq: p.seq,
            message,
        },
        Err(e) => Inbound::Malformed(e),
    }
}

/// An unauthenticated RMCP+ session-setup packet.
fn setup(endpoint: &str, step: &str, kind: u8, body: &[u8]) -> Result<Vec<u8>, BmcError> {
    let header = V2Header {
        payload_type: kind,
        encrypted: false,
        session_id: 0,
        seq: 0,
    };
    rmcp::encode_v2(header, body, None).map_err(|e| protocol(endpoint, step, e))
}

/// The error for a non-zero completion code.
pub fn completion(endpoint: &str, command: Command, code: u8) -> BmcError {
    BmcError::Completion {
        endpoint: endpoint.to_owned(),
        command: command.name,
        code,
        meaning: commands::completion_meaning(code),
    }
}

/// The BMC's `host:port` as a socket address, within `limit`.
async fn resolve(endpoint: &str, limit: Duration) -> Result<SocketAddr, BmcError> {
    let found = tokio::time::timeout(limit, tokio::net::lookup_host(endpoint))
        .await
        .map_err(|_| BmcError::Unreachable {
            endpoint: endpoint.to_owned(),
            source: format!("resolving the name took over {limit:?}").into(),
        })?
        .map_err(|e| unreachable(endpoint, "resolving the name", e))?;
    let mut found = found;
    found.next().ok_or_else(|| BmcError::Unreachable {
        endpoint: endpoint.to_owned(),
        source: "the name resolves to no address".into(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A Get Chassis Status answer (power on) built outside Rust (Python
    /// hmac/hashlib and `cryptography`) for console session 0x11223344,
    /// sequence 7, suite 3, SIK "fuzz session integrity key"; also a seed
    /// of the `ipmi_packet` fuzz target.
    const PYTHON_BUILT: &str = "0600ff0706c04433221107000000200009090909090909090909090909090909\
        d757137e4a1e1f3fb70b73caea3357deffff0207be9f85bfc39c95c1ca18d7c5";

    #[test]
    fn an_independently_built_answer_is_accepted_and_tampering_is_not() {
        let keys = SessionKeys::derive(CipherSuite::Suite3, b"fuzz session integrity key");
        let bytes = hex::decode(PYTHON_BUILT).unwrap();
        match inbound(&keys, 0x1122_3344, &bytes) {
            Inbound::Answer { seq, message } => {
                assert_eq!(seq, 7);
                assert_eq!(
                    (message.netfn, message.cmd, message.rq_seq),
                    (0x01, 0x01, 5)
                );
                assert_eq!(message.body, [0, 1, 0, 0]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            inbound(&keys, 0x1122_3345, &bytes),
            Inbound::Ignore(_)
        ));
        let mut tampered = bytes.clone();
        tampered[30] ^= 1;
        assert!(matches!(
            inbound(&keys, 0x1122_3344, &tampered),
            Inbound::Ignore(_)
        ));
        let other = SessionKeys::derive(CipherSuite::Suite3, b"another key");
        assert!(matches!(
            inbound(&other, 0x1122_3344, &bytes),
            Inbound::Ignore(_)
        ));
    }
}
