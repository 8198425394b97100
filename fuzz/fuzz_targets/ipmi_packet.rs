//! Feeds arbitrary bytes through everything the IPMI driver does with a
//! datagram from a BMC: the RMCP/session decode, `session::inbound` (the
//! driver's own check of a datagram in a session), the AuthCode check and
//! AES-CBC decryption under fixed session keys (suites 3 and 17), the IPMI
//! message decode, the session-setup payloads and the command answers.
//!
//! Nothing may panic. An RMCP+ packet that decodes encodes back to the same
//! bytes (after the RMCP header; trailing bytes after an unauthenticated
//! packet are ignored), AuthCode included; so does an IPMI message.

#![no_main]

use dv_agent::bmc::ipmi::commands::{self, BootFlags, DeviceId};
use dv_agent::bmc::ipmi::crypto::{CipherSuite, SessionKeys};
use dv_agent::bmc::ipmi::rakp::{
    OpenSessionRequest, OpenSessionResponse, Rakp1, Rakp2, Rakp3, Rakp4,
};
use dv_agent::bmc::ipmi::rmcp::{self, Message, Packet, V2Header};
use dv_agent::bmc::ipmi::session::{Inbound, inbound};
use libfuzzer_sys::fuzz_target;

fn payloads(bytes: &[u8]) {
    let _ = OpenSessionRequest::decode(bytes);
    let _ = OpenSessionResponse::decode(bytes);
    let _ = Rakp1::decode(bytes);
    let _ = Rakp2::decode(bytes);
    let _ = Rakp3::decode(bytes);
    let _ = Rakp4::decode(bytes);
    let _ = BootFlags::parse(bytes);
    let _ = DeviceId::parse(bytes);
    let _ = commands::power_is_on(bytes);
    let _ = commands::guid_text(bytes);
    let _ = commands::speaks_v2(bytes);
    if let Ok(m) = Message::decode(bytes) {
        assert_eq!(m.encode(), bytes);
    }
}

fuzz_target!(|data: &[u8]| {
    payloads(data);
    let Ok(packet) = rmcp::decode(data) else {
        return;
    };
    match packet {
        Packet::V15(p) => payloads(&p.payload),
        Packet::V20(p) => {
            let header = V2Header {
                payload_type: p.payload_type,
                encrypted: p.encrypted,
                session_id: p.session_id,
                seq: p.seq,
            };
            let code = p.auth_code.clone();
            let sign = move |_: &[u8]| code.clone();
            let signer: Option<rmcp::Signer<'_>> = p.authenticated.then_some(&sign as _);
            let again = rmcp::encode_v2(header, &p.payload, signer).expect("re-encodes");
            // An authenticated packet ends with its AuthCode; after an
            // unauthenticated one, trailing bytes (legacy pads) are ignored.
            if p.authenticated {
                assert_eq!(again.get(4..), data.get(4..));
            } else {
                assert_eq!(again.get(4..), data.get(4..again.len()));
            }
            for suite in [CipherSuite::Suite3, CipherSuite::Suite17] {
                let keys = SessionKeys::derive(suite, b"fuzz session integrity key");
                // The driver's own judgement of a datagram in a session.
                if let Inbound::Answer { message, .. } = inbound(&keys, p.session_id, data) {
                    assert_eq!(Message::decode(&message.encode()), Ok(message));
                }
                if p.authenticated {
                    let covered = data.get(4..4 + p.signed_len).expect("signed_len in range");
                    let _ = keys.verify(covered, &p.auth_code);
                }
                if let Ok(plain) = keys.decrypt(&p.payload) {
                    payloads(&plain);
                }
            }
            payloads(&p.payload);
        }
    }
});
