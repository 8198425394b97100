//! RMCP+ cipher suites 3 and 17 (IPMI v2.0 sections 13.28-13.32 and
//! table 22-20): the RAKP HMACs that prove the password both ways, the
//! session integrity key (SIK) and the keys K1 (integrity) and K2
//! (confidentiality) derived from it, the per-packet AuthCode, and
//! AES-CBC-128 with the spec's own padding.
//!
//! Both sides of a handshake compute the same values, so a test BMC uses
//! these functions as they are. Suite 3 is checked end to end against
//! OpenIPMI's ipmi_sim; ipmi_sim cannot do suite 17, so its values are
//! checked against vectors computed independently (Python's hmac/hashlib).

use aes::Aes128;
use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};

use super::rmcp::PacketError;

/// An RMCP+ cipher suite this driver speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherSuite {
    /// RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128.
    Suite3,
    /// RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128.
    Suite17,
}

/// Authentication algorithm ids (table 13-17).
const RAKP_HMAC_SHA1: u8 = 0x01;
const RAKP_HMAC_SHA256: u8 = 0x03;
/// Integrity algorithm ids (table 13-18).
const HMAC_SHA1_96: u8 = 0x01;
const HMAC_SHA256_128: u8 = 0x04;
/// Confidentiality algorithm id (table 13-19).
const AES_CBC_128: u8 = 0x01;

const AES_BLOCK: usize = 16;

impl CipherSuite {
    /// The suite's number (what `ipmitool -C` takes).
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 3,
            CipherSuite::Suite17 => 17,
        }
    }

    /// The suite by number.
    pub fn from_id(id: u8) -> Option<CipherSuite> {
        match id {
            3 => Some(CipherSuite::Suite3),
            17 => Some(CipherSuite::Suite17),
            _ => None,
        }
    }

    /// Authentication, integrity and confidentiality algorithm ids.
    pub fn algorithms(self) -> (u8, u8, u8) {
        match self {
            CipherSuite::Suite3 => (RAKP_HMAC_SHA1, HMAC_SHA1_96, AES_CBC_128),
            CipherSuite::Suite17 => (RAKP_HMAC_SHA256, HMAC_SHA256_128, AES_CBC_128),
        }
    }

    /// Length of the RAKP 2/3 key exchange AuthCodes (the full HMAC).
    pub fn rakp_code_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 20,
            CipherSuite::Suite17 => 32,
        }
    }

    /// Length of the RAKP 4 check value and of every packet's AuthCode.
    pub fn icv_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 12,
            CipherSuite::Suite17 => 16,
        }
    }

    /// HMAC with the suite's hash over the concatenation of `parts`.
    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        // HMAC takes keys of any length, so new_from_slice cannot fail; an
        // empty MAC would only make every comparison fail, never pass.
        match self {
            CipherSuite::Suite3 => {
                let Ok(mut m) = Hmac::<sha1::Sha1>::new_from_slice(key) else {
                    return Vec::new();
                };
                parts.iter().for_each(|p| m.update(p));
                m.finalize().into_bytes().to_vec()
            }
            CipherSuite::Suite17 => {
                let Ok(mut m) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
                    return Vec::new();
                };
                parts.iter().for_each(|p| m.update(p));
                m.finalize().into_bytes().to_vec()
            }
        }
    }
}

/// The user's key Kuid: the password, zero-padded to the 20 bytes IPMI v2.0
/// allows. `None` if it is longer.
pub fn user_key(password: &[u8]) -> Option<[u8; 20]> {
    let mut key = [0u8; 20];
    key.get_mut(..password.len())?.copy_from_slice(password);
    Some(key)
}

/// Equal contents, compared without an early exit (the codes are secrets'
/// proofs, and an attacker on the LAN may time the answers).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What both sides know once RAKP 2 has arrived: the inputs of every
/// handshake HMAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The suite negotiated.
    pub suite: CipherSuite,
    /// SIDm.
    pub console_session_id: u32,
    /// SIDc.
    pub bmc_session_id: u32,
    /// Rm.
    pub console_random: [u8; 16],
    /// Rc.
    pub bmc_random: [u8; 16],
    /// GUIDc.
    pub bmc_guid: [u8; 16],
    /// ROLEm, the whole byte as sent in RAKP 1.
    pub role: u8,
    /// UNAMEm.
    pub username: Vec<u8>,
}

impl Handshake {
    fn name_len(&self) -> [u8; 1] {
        // RAKP 1 refuses names over 16 bytes, so this never saturates.
        [u8::try_from(self.username.len()).unwrap_or(u8::MAX)]
    }

    /// RAKP 2's key exchange AuthCode: the BMC proves it knows the password.
    pub fn rakp2_code(&self, kuid: &[u8]) -> Vec<u8> {
        self.suite.hmac(
            kuid,
            &[
                &self.console_session_id.to_le_bytes(),
                &self.bmc_session_id.to_le_bytes(),
                &self.console_random,
                &self.bmc_random,
                &self.bmc_guid,
                &[self.role],
                &self.name_len(),
                &self.username,
            ],
        )
    }

    /// RAKP 3's key exchange AuthCode: the console proves it.
    pub fn rakp3_code(&self, kuid: &[u8]) -> Vec<u8> {
        self.suite.hmac(
            kuid,
            &[
                &self.bmc_random,
                &self.console_session_id.to_le_bytes(),
                &[self.role],
                &self.name_len(),
                &self.username,
            ],
        )
    }

    /// The session integrity key, keyed with Kg (the BMC key) or, when the
    /// BMC has none, with Kuid.
    pub fn sik(&self, kg_or_kuid: &[u8]) -> Vec<u8> {
        self.suite.hmac(
            kg_or_kuid,
            &[
                &self.console_random,
                &self.bmc_random,
                &[self.role],
                &self.name_len(),
                &self.username,
            ],
        )
    }

    /// RAKP 4's integrity check value: the BMC proves it derived the same SIK.
    pub fn rakp4_icv(&self, sik: &[u8]) -> Vec<u8> {
        let mut mac = self.suite.hmac(
            sik,
            &[
                &self.console_random,
                &self.bmc_session_id.to_le_bytes(),
                &self.bmc_guid,
            ],
        );
        mac.truncate(self.suite.icv_len());
        mac
    }
}

/// An active session's keys: K1 signs and checks packets, K2's first 16
/// bytes encrypt payloads.
#[derive(Clone)]
pub struct SessionKeys {
    suite: CipherSuite,
    k1: Vec<u8>,
    aes_key: [u8; AES_BLOCK],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// K1 = HMAC(SIK, 20 × 0x01), K2 = HMAC(SIK, 20 × 0x02) (section 13.32;
    /// the constants are 20 bytes for every suite).
    pub fn derive(suite: CipherSuite, sik: &[u8]) -> SessionKeys {
        let k1 = suite.hmac(sik, &[&[0x01; 20]]);
        let k2 = suite.hmac(sik, &[&[0x02; 20]]);
        let mut aes_key = [0u8; AES_BLOCK];
        for (d, s) in aes_key.iter_mut().zip(&k2) {
            *d = *s;
        }
        SessionKeys { suite, k1, aes_key }
    }

    /// K1, for the test vectors.
    pub fn k1(&self) -> &[u8] {
        &self.k1
    }

    /// The AES key (K2's first 16 bytes), for the test vectors.
    pub fn aes_key(&self) -> &[u8; AES_BLOCK] {
        &self.aes_key
    }

    /// The AuthCode over a packet's covered bytes.
    pub fn sign(&self, covered: &[u8]) -> Vec<u8> {
        let mut mac = self.suite.hmac(&self.k1, &[covered]);
        mac.truncate(self.suite.icv_len());
        mac
    }

    /// Whether `code` is the AuthCode of `covered`.
    pub fn verify(&self, covered: &[u8], code: &[u8]) -> bool {
        same(&self.sign(covered), code)
    }

    /// The confidentiality header (IV), the encrypted payload and its
    /// trailer: pad bytes 1, 2, 3 … and the pad length, to whole blocks.
    pub fn encrypt(&self, iv: [u8; AES_BLOCK], plain: &[u8]) -> Vec<u8> {
        let pad = (AES_BLOCK - (plain.len() + 1) % AES_BLOCK) % AES_BLOCK;
        let mut buf = Vec::with_capacity(AES_BLOCK + plain.len() + pad + 1);
        buf.extend_from_slice(plain);
        // pad < 16, so the casts cannot truncate.
        buf.extend((1..=pad).map(|i| i as u8));
        buf.push(pad as u8);
        let len = buf.len();
        let enc = cbc::Encryptor::<Aes128>::new(&self.aes_key.into(), &iv.into());
        let cipher = match enc.encrypt_padded_mut::<NoPadding>(&mut buf, len) {
            Ok(c) => c.to_vec(),
            // Unreachable: the buffer is whole blocks by construction.
            Err(_) => Vec::new(),
        };
        let mut out = iv.to_vec();
        out.extend_from_slice(&cipher);
        out
    }

    /// The plaintext of an encrypted payload, its padding checked.
    pub fn decrypt(&self, payload: &[u8]) -> Result<Vec<u8>, PacketError> {
        let (iv, data) = payload
            .split_at_checked(AES_BLOCK)
            .ok_or(PacketError::Short {
                what: "confidentiality header",
                need: AES_BLOCK,
                have: payload.len(),
            })?;
        if data.is_empty() || data.len() % AES_BLOCK != 0 {
            return Err(PacketError::Crypt("not a whole number of AES blocks"));
        }
        let mut iv_block = [0u8; AES_BLOCK];
        iv_block.copy_from_slice(iv);
        let mut buf = data.to_vec();
        let dec = cbc::Decryptor::<Aes128>::new(&self.aes_key.into(), &iv_block.into());
        let plain = dec
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| PacketError::Crypt("AES-CBC decryption failed"))?;
        let (&pad, rest) = plain
            .split_last()
            .ok_or(PacketError::Crypt("empty plaintext"))?;
        let pad = usize::from(pad);
        if pad >= AES_BLOCK || pad > rest.len() {
            return Err(PacketError::Crypt(
                "confidentiality pad length out of range",
            ));
        }
        let (body, padding) = rest.split_at(rest.len() - pad);
        if !padding
            .iter()
            .enumerate()
            .all(|(i, &b)| usize::from(b) == i + 1)
        {
            return Err(PacketError::Crypt(
                "confidentiality pad bytes are not 1, 2, 3, …",
            ));
        }
        Ok(body.to_vec())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn handshake(suite: CipherSuite) -> Handshake {
        Handshake {
            suite,
            console_session_id: 0x0a0b0c0d,
            bmc_session_id: 0x11223344,
            console_random: core::array::from_fn(|i| i as u8),
            bmc_random: core::array::from_fn(|i| 0xf0 - i as u8),
            bmc_guid: core::array::from_fn(|i| 0x40 + i as u8),
            role: 0x14,
            username: b"admin".to_vec(),
        }
    }

    /// Vectors computed outside Rust (Python 3 hmac/hashlib) from the
    /// handshake above and the password "password", following IPMI v2.0
    /// section 13.31/13.32 field order.
    #[test]
    fn suite_17_matches_independently_computed_vectors() {
        let hs = handshake(CipherSuite::Suite17);
        let kuid = user_key(b"password").unwrap();
        assert_eq!(hex::encode(hs.rakp2_code(&kuid)), SHA256_RAKP2);
        assert_eq!(hex::encode(hs.rakp3_code(&kuid)), SHA256_RAKP3);
        let sik = hs.sik(&kuid);
        assert_eq!(hex::encode(&sik), SHA256_SIK);
        assert_eq!(hex::encode(hs.rakp4_icv(&sik)), SHA256_RAKP4);
        let keys = SessionKeys::derive(CipherSuite::Suite17, &sik);
        assert_eq!(hex::encode(keys.k1()), SHA256_K1);
        assert_eq!(hex::encode(keys.aes_key()), SHA256_AES);
        assert_eq!(hex::encode(keys.sign(b"covered bytes")), SHA256_SIGN);
    }

    #[test]
    fn suite_3_matches_independently_computed_vectors() {
        let hs = handshake(CipherSuite::Suite3);
        let kuid = user_key(b"password").unwrap();
        assert_eq!(hex::encode(hs.rakp2_code(&kuid)), SHA1_RAKP2);
        let sik = hs.sik(&kuid);
        assert_eq!(hex::encode(&sik), SHA1_SIK);
        assert_eq!(hex::encode(hs.rakp4_icv(&sik)), SHA1_RAKP4);
        let keys = SessionKeys::derive(CipherSuite::Suite3, &sik);
        assert_eq!(hex::encode(keys.k1()), SHA1_K1);
        assert_eq!(hex::encode(keys.sign(b"covered bytes")), SHA1_SIGN);
        // AES-CBC-128 with K2's first 16 bytes, checked with Python's
        // `cryptography` package.
        let sealed = keys.encrypt([7; 16], b"ipmi");
        assert_eq!(hex::encode(&sealed), SHA1_SEALED);
        assert_eq!(keys.decrypt(&sealed).unwrap(), b"ipmi");
    }

    #[test]
    fn aes_cbc_pads_to_whole_blocks_and_rejects_a_bad_pad() {
        let keys = SessionKeys::derive(CipherSuite::Suite3, b"sik");
        // 15 bytes + pad length 0 = one block; 16 bytes need 15 pad bytes.
        assert_eq!(keys.encrypt([7; 16], &[1; 15]).len(), 32);
        assert_eq!(keys.encrypt([7; 16], &[1; 16]).len(), 48);
        let mut bad = keys.encrypt([7; 16], &[1; 16]);
        let last = bad.len() - 1;
        bad[last] ^= 0x55;
        assert!(keys.decrypt(&bad).is_err());
    }

    #[test]
    fn passwords_longer_than_20_bytes_have_no_key() {
        assert!(user_key(&[b'x'; 20]).is_some());
        assert!(user_key(&[b'x'; 21]).is_none());
    }

    proptest! {
        #[test]
        fn encryption_round_trips(iv in any::<[u8; 16]>(), plain in proptest::collection::vec(any::<u8>(), 0..200)) {
            let keys = SessionKeys::derive(CipherSuite::Suite17, &plain);
            let sealed = keys.encrypt(iv, &plain);
            prop_assert_eq!(sealed.len() % 16, 0);
            prop_assert_eq!(keys.decrypt(&sealed).unwrap(), plain);
        }

        #[test]
        fn arbitrary_ciphertext_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let keys = SessionKeys::derive(CipherSuite::Suite3, b"k");
            let _ = keys.decrypt(&bytes);
        }
    }

    const SHA256_RAKP2: &str = "33534c2b7c204bf0e309dc116c5871baa72265cd51bb18257b161d29fb091794";
    const SHA256_RAKP3: &str = "1c4ad9fc8d65f48347b46e6c88295b05766648bcfb4f46a7641b963e25b48c1a";
    const SHA256_SIK: &str = "df1e936839bb6d6009deef65b676988d939ea0512b2cc8e0a085f867a98407c4";
    const SHA256_RAKP4: &str = "d70b58d91660880a6c5949edc4b9db05";
    const SHA256_K1: &str = "7e8e5c84a24bdb95fb6a45c77a24c2069c0d4f91e9272915b6948d1bd432dd01";
    const SHA256_AES: &str = "e572cd0011f99f2aaebff9c3ffbed59b";
    const SHA256_SIGN: &str = "c5281e4be404d5d25719000654b278fe";
    const SHA1_RAKP2: &str = "5abe5c7d9193eb87718ea12369b683114ab677fa";
    const SHA1_SIK: &str = "7500662ef32b557f1c08d97564125bb3518247e2";
    const SHA1_RAKP4: &str = "bc6b5f2219412ed098cef642";
    const SHA1_K1: &str = "5a3ae7ac28d75843609c293c26664c92164ea5f0";
    const SHA1_SIGN: &str = "57c228d958f3f7b4b7a0894c";
    const SHA1_SEALED: &str = "070707070707070707070707070707071deaf8cfad3aedb3f3876b32ab53c200";
}
