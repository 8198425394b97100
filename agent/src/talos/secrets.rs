//! The cluster secrets bundle: what every machine of one Talos cluster
//! shares, generated once per cluster in the forms Talos itself generates.
//!
//! - cluster id and secret: 32 random bytes each, base64 (the id URL-safe);
//! - bootstrap token and trustd (machine) token: `[a-z0-9]{6}.[a-z0-9]{16}`;
//! - secretbox encryption secret: 32 random bytes, base64;
//! - Kubernetes CA (O=kubernetes), aggregator CA (CN=front-proxy) and etcd
//!   CA (O=etcd): ECDSA P-256, the key as a SEC1 `EC PRIVATE KEY` PEM;
//! - machine (Talos OS) CA (O=talos): Ed25519, the key as PKCS#8 under the
//!   PEM label `ED25519 PRIVATE KEY`, as Talos writes it;
//! - service account key: ECDSA P-256, SEC1 PEM.
//!
//! The CAs are self-signed, valid ten years from generation, with basic
//! constraints CA:TRUE, key usage digitalSignature + keyCertSign and
//! extended key usage serverAuth + clientAuth. PEM text is kept as is;
//! [`crate::talos::config`] base64-encodes it into the machine config.
//!
//! The bundle is serialized as JSON and sealed under the site key by the
//! store (`store::talos`); its `Debug` shows no secret.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ED25519, SerialNumber,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::TalosError;

/// How long the cluster CAs are valid (Talos uses ten years too).
pub const CA_VALIDITY: Duration = Duration::days(3650);

/// A CA certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertAndKey {
    /// `-----BEGIN CERTIFICATE-----` ...
    pub crt: String,
    /// `-----BEGIN EC PRIVATE KEY-----` or `ED25519 PRIVATE KEY`.
    pub key: String,
}

impl std::fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAndKey")
            .field("crt", &format_args!("{} bytes", self.crt.len()))
            .field("key", &"<redacted>")
            .finish()
    }
}

/// One cluster's secrets. See the module docs for each field's form.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsBundle {
    /// `cluster.id`.
    pub cluster_id: String,
    /// `cluster.secret`.
    pub cluster_secret: String,
    /// `cluster.token`: the Kubernetes bootstrap token.
    pub bootstrap_token: String,
    /// `machine.token`: the trustd token machines join with.
    pub trustd_token: String,
    /// `cluster.secretboxEncryptionSecret`.
    pub secretbox_encryption_secret: String,
    /// `cluster.ca`.
    pub kubernetes_ca: CertAndKey,
    /// `cluster.aggregatorCA`.
    pub aggregator_ca: CertAndKey,
    /// `cluster.etcd.ca`.
    pub etcd_ca: CertAndKey,
    /// `machine.ca`: the Talos API CA.
    pub os_ca: CertAndKey,
    /// `cluster.serviceAccount.key` (PEM).
    pub service_account_key: String,
}

impl std::fmt::Debug for SecretsBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsBundle(<redacted>)")
    }
}

impl SecretsBundle {
    /// A fresh bundle; the CAs are valid from `now` for [`CA_VALIDITY`].
    pub fn generate(now: OffsetDateTime) -> Result<SecretsBundle, TalosError> {
        let (sa_key, _) = ecdsa_key()?;
        Ok(SecretsBundle {
            cluster_id: URL_SAFE.encode(random::<32>()),
            cluster_secret: STANDARD.encode(random::<32>()),
            bootstrap_token: token(),
            trustd_token: token(),
            secretbox_encryption_secret: STANDARD.encode(random::<32>()),
            kubernetes_ca: ca(
                now,
                Subject::Organization("kubernetes"),
                Algorithm::EcdsaP256,
            )?,
            aggregator_ca: ca(
                now,
                Subject::CommonName("front-proxy"),
                Algorithm::EcdsaP256,
            )?,
            etcd_ca: ca(now, Subject::Organization("etcd"), Algorithm::EcdsaP256)?,
            os_ca: ca(now, Subject::Organization("talos"), Algorithm::Ed25519)?,
            service_account_key: sa_key,
        })
    }

    /// The bundle as the store seals it.
    pub fn to_json(&self) -> Result<Vec<u8>, TalosError> {
        serde_json::to_vec(self).map_err(TalosError::Encode)
    }

    /// What [`Self::to_json`] wrote.
    pub fn from_json(bytes: &[u8]) -> Result<SecretsBundle, TalosError> {
        serde_json::from_slice(bytes).map_err(TalosError::Decode)
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

const TOKEN_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `[a-z0-9]{6}.[a-z0-9]{16}`, uniformly (rejection sampling).
pub fn token() -> String {
    let mut chars = Vec::with_capacity(22);
    while chars.len() < 22 {
        for b in random::<32>() {
            // 252 = 7 * 36: values above would skew the distribution.
            if b < 252 && chars.len() < 22 {
                chars.push(TOKEN_ALPHABET[usize::from(b % 36)]);
            }
        }
    }
    let text: String = chars.into_iter().map(char::from).collect();
    format!("{}.{}", &text[..6], &text[6..])
}

/// True for `[a-z0-9]{6}.[a-z0-9]{16}`.
pub fn is_token(text: &str) -> bool {
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    text.split_once('.')
        .is_some_and(|(id, secret)| ok(id, 6) && ok(secret, 16))
}

enum Subject {
    Organization(&'static str),
    CommonName(&'static str),
}

#[derive(Clone, Copy)]
enum Algorithm {
    EcdsaP256,
    Ed25519,
}

/// A self-signed CA: (certificate PEM, key PEM).
fn ca(now: OffsetDateTime, subject: Subject, alg: Algorithm) -> Result<CertAndKey, TalosError> {
    let (key_pem, key) = match alg {
        Algorithm::EcdsaP256 => ecdsa_key()?,
        Algorithm::Ed25519 => ed25519_key()?,
    };
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    match subject {
        Subject::Organization(o) => dn.push(DnType::OrganizationName, o),
        Subject::CommonName(cn) => dn.push(DnType::CommonName, cn),
    }
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = now;
    params.not_after = now + CA_VALIDITY;
    let mut serial = random::<16>();
    // A positive serial number (RFC 5280 4.1.2.2).
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let cert = params.self_signed(&key).map_err(TalosError::Crypto)?;
    Ok(CertAndKey {
        crt: cert.pem(),
        key: key_pem,
    })
}

/// An ECDSA P-256 key: (SEC1 `EC PRIVATE KEY` PEM, the key pair).
fn ecdsa_key() -> Result<(String, KeyPair), TalosError> {
    let generated = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(TalosError::Crypto)?;
    let pkcs8 = generated.serialize_der();
    let d = p256_scalar(&pkcs8).ok_or(TalosError::KeyForm("P-256 private scalar"))?;
    let sec1 = sec1_p256(d, generated.public_key_raw())?;
    let pem = pem("EC PRIVATE KEY", &sec1);
    // Read back the form written, so the PEM is known to be the key signed with.
    let key = KeyPair::from_pem_and_sign_algo(&pem, &PKCS_ECDSA_P256_SHA256)
        .map_err(TalosError::Crypto)?;
    Ok((pem, key))
}

/// An Ed25519 key: (PKCS#8 v1 under `ED25519 PRIVATE KEY`, the key pair).
fn ed25519_key() -> Result<(String, KeyPair), TalosError> {
    // PKCS#8 v1 (RFC 8410): SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 },
    // OCTET STRING { OCTET STRING seed } }.
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(&random::<32>());
    let key = KeyPair::from_pkcs8_der_and_sign_algo(&der.as_slice().into(), &PKCS_ED25519)
        .map_err(TalosError::Crypto)?;
    Ok((pem("ED25519 PRIVATE KEY", &der), key))
}

/// The private scalar inside a P-256 PKCS#8 document: the 32-byte OCTET
/// STRING that follows `INTEGER 1` in its ECPrivateKey.
fn p256_scalar(pkcs8: &[u8]) -> Option<&[u8]> {
    const MARK: [u8; 5] = [0x02, 0x01, 0x01, 0x04, 0x20];
    let at = pkcs8.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    pkcs8.get(at..at + 32)
}

/// SEC1 ECPrivateKey (RFC 5915) with the curve named, as Go's
/// `x509.MarshalECPrivateKey` writes it.
fn sec1_p256(d: &[u8], public: &[u8]) -> Result<Vec<u8>, TalosError> {
    if d.len() != 32 || public.len() != 65 {
        return Err(TalosError::KeyForm("P-256 key sizes"));
    }
    // prime256v1, 1.2.840.10045.3.1.7
    const CURVE: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let mut body = vec![0x02, 0x01, 0x01, 0x04, 0x20];
    body.extend_from_slice(d);
    body.extend_from_slice(&[0xa0, 0x0a]);
    body.extend_from_slice(&CURVE);
    body.extend_from_slice(&[0xa1, 0x44, 0x03, 0x42, 0x00]);
    body.extend_from_slice(public);
    let mut der = vec![0x30, 0x77];
    der.extend_from_slice(&body);
    debug_assert_eq!(der.len(), 0x77 + 2);
    Ok(der)
}

/// PEM with 64-column base64 lines and a final newline.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_have_talos_form() {
        for _ in 0..200 {
            let t = token();
            assert!(is_token(&t), "{t}");
        }
        assert!(!is_token("abcdef.0123456789abcdeF"));
        assert!(!is_token("abcdef0123456789abcdef"));
    }

    #[test]
    fn a_bundle_has_every_secret_in_its_form_and_round_trips() {
        let b = SecretsBundle::generate(OffsetDateTime::now_utc()).unwrap();
        assert_eq!(URL_SAFE.decode(&b.cluster_id).unwrap().len(), 32);
        assert_eq!(STANDARD.decode(&b.cluster_secret).unwrap().len(), 32);
        assert_eq!(
            STANDARD
                .decode(&b.secretbox_encryption_secret)
                .unwrap()
                .len(),
            32
        );
        assert!(is_token(&b.bootstrap_token) && is_token(&b.trustd_token));
        for ca in [&b.kubernetes_ca, &b.aggregator_ca, &b.etcd_ca] {
            assert!(ca.crt.starts_with("-----BEGIN CERTIFICATE-----\n"));
            assert!(ca.key.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
        }
        assert!(
            b.os_ca
                .key
                .starts_with("-----BEGIN ED25519 PRIVATE KEY-----\n")
        );
        assert!(
            b.service_account_key
                .starts_with("-----BEGIN EC PRIVATE KEY-----\n")
        );
        let again = SecretsBundle::from_json(&b.to_json().unwrap()).unwrap();
        assert_eq!(again, b);
        // Debug never shows a secret.
        let shown = format!("{b:?} {:?}", b.os_ca);
        assert!(!shown.contains("PRIVATE") && !shown.contains(&b.trustd_token));
        // Two bundles share nothing.
        let other = SecretsBundle::generate(OffsetDateTime::now_utc()).unwrap();
        assert_ne!(other.kubernetes_ca.key, b.kubernetes_ca.key);
        assert_ne!(other.cluster_secret, b.cluster_secret);
    }
}
