//! A BMC's TLS certificate pinned instead of validated against roots (BMC
//! certificates are self-signed as a rule): a rustls verifier that accepts
//! only the pinned certificate, or on first use the first one presented
//! and then only that, and in both cases verifies the handshake signature
//! with the certificate's key (aws-lc-rs), so the peer holds the pinned
//! key and not just a copy of the certificate. ADR 0008.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use super::Fingerprint;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The certificate pin shared by a driver and its TLS verifier.
#[derive(Debug)]
pub(super) struct Pin {
    /// The fingerprint required; `None` until the first handshake of a
    /// first-use driver.
    expected: Mutex<Option<Fingerprint>>,
    /// The fingerprint of the last certificate presented.
    presented: Mutex<Option<Fingerprint>>,
    provider: Arc<CryptoProvider>,
}

impl Pin {
    /// A pin on `expected`, or on the first certificate presented.
    pub(super) fn new(expected: Option<Fingerprint>) -> Arc<Pin> {
        Arc::new(Pin {
            expected: Mutex::new(expected),
            presented: Mutex::new(None),
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        })
    }

    /// A client configuration that trusts this pin and nothing else.
    pub(super) fn client_config(self: &Arc<Self>) -> Result<rustls::ClientConfig, rustls::Error> {
        Ok(
            rustls::ClientConfig::builder_with_provider(self.provider.clone())
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinVerifier(self.clone())))
                .with_no_client_auth(),
        )
    }

    /// The fingerprint held to: the pinned one, or after a first-use
    /// handshake the one presented then.
    pub(super) fn expected(&self) -> Option<Fingerprint> {
        *lock(&self.expected)
    }

    /// `(expected, presented)` when the last certificate presented was not
    /// the pinned one.
    pub(super) fn mismatch(&self) -> Option<(Fingerprint, Fingerprint)> {
        match (*lock(&self.expected), *lock(&self.presented)) {
            (Some(e), Some(p)) if e != p => Some((e, p)),
            _ => None,
        }
    }
}

/// A rustls verifier that trusts a pinned certificate instead of roots:
/// the certificate must be the pinned one, and the handshake must be
/// signed with its key.
#[derive(Debug)]
struct PinVerifier(Arc<Pin>);

impl PinVerifier {
    fn refused() -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
    }

    /// After a good handshake signature: a first-use pin takes this
    /// certificate; a set pin must match it.
    fn settle(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let fp = Fingerprint::of(cert);
        let mut expected = lock(&self.0.expected);
        match *expected {
            None => {
                *expected = Some(fp);
                Ok(())
            }
            Some(e) if e == fp => Ok(()),
            Some(_) => Err(Self::refused()),
        }
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // No CA, name or validity checks: BMC certificates are self-signed
        // and often expired or issued for a default name; the pin is the
        // trust.
        let fp = Fingerprint::of(end_entity);
        *lock(&self.0.presented) = Some(fp);
        match *lock(&self.0.expected) {
            Some(e) if e != fp => Err(Self::refused()),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let valid = verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.provider.signature_verification_algorithms,
        )?;
        self.settle(cert)?;
        Ok(valid)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let valid = verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.provider.signature_verification_algorithms,
        )?;
        self.settle(cert)?;
        Ok(valid)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0
            .provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
