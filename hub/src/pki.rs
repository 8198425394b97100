//! `dv-hub pki init`: the hub's certificate authority and every identity
//! that `hub.toml` implies, written as PEM files into one directory that
//! `[tls] dir` then points at.
//!
//! | file | what |
//! | --- | --- |
//! | `ca.pem`, `ca-key.pem` | the CA (ECDSA P-256, ten years); keep the key offline |
//! | `nats/<node>.pem`, `nats/<node>-key.pem` | each hub nats-server node: client, route and leaf listeners; serverAuth + clientAuth, because routes verify each other with it |
//! | `api/<replica>.pem`, `api/<replica>-key.pem` | each replica's HTTPS API |
//! | `hub/nats-password` | the password of NATS user `dv-hub`, the replicas' client identity |
//! | `sites/<site>/password` | the password of NATS user `site-<site>`, the site's leaf-node identity |
//! | `sites/<site>/leaf.pem`, `sites/<site>/leaf-key.pem` | an optional leaf-node client certificate (clientAuth, CN `site-<site>`) |
//! | `sites/<site>/ca.pem` | a copy of the CA certificate, so `sites/<site>/` is the whole site kit part |
//!
//! Server certificates name their listeners' IP addresses (unspecified
//! addresses such as `0.0.0.0` name nothing and are left out),
//! `localhost`, the node's or replica's name and, for a node, the host of
//! `leaf_advertise`. Keys and passwords are written mode 0600.
//!
//! An existing CA is never replaced silently: every certificate and every
//! site's trust hangs on it, so `init` refuses unless `--force`.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use dv_protocol::SiteName;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

use crate::config::{HubConfig, NatsNode, Replica};

/// How long the CA is valid.
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// How long a node, replica or site certificate is valid.
pub const LEAF_VALIDITY: Duration = Duration::days(825);
/// The NATS user of the hub's replicas.
pub const HUB_USER: &str = "dv-hub";
/// Random bytes in a generated password (hex-encoded: URL-safe, so a site
/// can put it into its `nats-leaf://user:password@host` URL as is).
const PASSWORD_BYTES: usize = 24;

/// Why the PKI could not be created or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A CA is already there.
    #[error(
        "{0} already exists: refusing to replace the CA every certificate and site trusts \
         (pass --force to generate a new CA and re-issue everything)"
    )]
    CaExists(PathBuf),
    /// A file could not be written or read.
    #[error("{path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file exists but holds nothing usable.
    #[error("{path}: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A certificate could not be built or signed.
    #[error("cannot issue the certificate for {subject}")]
    Issue {
        /// Whose certificate.
        subject: String,
        /// The cause.
        #[source]
        source: rcgen::Error,
    },
    /// The system's random source failed.
    #[error("no randomness for a password")]
    Random,
}

/// Where each file of the PKI directory lives.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// The PKI in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The CA key.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca-key.pem")
    }

    /// A hub node's certificate.
    pub fn node_cert(&self, node: &str) -> PathBuf {
        self.dir.join("nats").join(format!("{node}.pem"))
    }

    /// A hub node's key.
    pub fn node_key(&self, node: &str) -> PathBuf {
        self.dir.join("nats").join(format!("{node}-key.pem"))
    }

    /// A replica's API certificate.
    pub fn api_cert(&self, replica: &str) -> PathBuf {
        self.dir.join("api").join(format!("{replica}.pem"))
    }

    /// A replica's API key.
    pub fn api_key(&self, replica: &str) -> PathBuf {
        self.dir.join("api").join(format!("{replica}-key.pem"))
    }

    /// The replicas' NATS password (user [`HUB_USER`]).
    pub fn hub_password(&self) -> PathBuf {
        self.dir.join("hub").join("nats-password")
    }

    /// A site's directory: everything the site kit needs.
    pub fn site_dir(&self, site: &SiteName) -> PathBuf {
        self.dir.join("sites").join(site.as_str())
    }

    /// A site's leaf-node password (user [`site_user`]).
    pub fn site_password(&self, site: &SiteName) -> PathBuf {
        self.site_dir(site).join("password")
    }

    /// A site's leaf-node client certificate.
    pub fn site_cert(&self, site: &SiteName) -> PathBuf {
        self.site_dir(site).join("leaf.pem")
    }

    /// A site's leaf-node client key.
    pub fn site_key(&self, site: &SiteName) -> PathBuf {
        self.site_dir(site).join("leaf-key.pem")
    }

    /// The copy of the CA certificate in a site's directory.
    pub fn site_ca(&self, site: &SiteName) -> PathBuf {
        self.site_dir(site).join("ca.pem")
    }
}

/// The NATS user a site's leaf node connects to the hub as.
pub fn site_user(site: &SiteName) -> String {
    format!("site-{site}")
}

/// A PEM certificate and its key.
#[derive(Clone)]
pub struct Issued {
    /// `-----BEGIN CERTIFICATE-----`
    pub cert: String,
    /// `-----BEGIN PRIVATE KEY-----` (PKCS#8)
    pub key: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert", &format_args!("{} bytes", self.cert.len()))
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Everything [`init`] writes, in memory.
#[derive(Debug)]
pub struct Pki {
    /// The CA.
    pub ca: Issued,
    /// Per node name.
    pub nodes: Vec<(String, Issued)>,
    /// Per replica name.
    pub replicas: Vec<(String, Issued)>,
    /// The replicas' NATS password.
    pub hub_password: Secret,
    /// Per site: its password and client certificate.
    pub sites: Vec<(SiteName, Secret, Issued)>,
}

/// A password; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The password text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A fresh random password: [`PASSWORD_BYTES`] from the crypto provider's
/// generator, hex.
pub fn password() -> Result<Secret, PkiError> {
    let mut bytes = [0u8; PASSWORD_BYTES];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    Ok(Secret(hex::encode(bytes)))
}

/// Generates the CA and every identity of `config`, valid from `now`.
pub fn generate(config: &HubConfig, now: OffsetDateTime) -> Result<Pki, PkiError> {
    let issue = |subject: &str| {
        let subject = subject.to_owned();
        move |source| PkiError::Issue { subject, source }
    };
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(issue("the CA"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name("Dataverket hub CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now;
    params.not_after = now + CA_VALIDITY;
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(params, ca_key).map_err(issue("the CA"))?;

    let mut nodes = Vec::with_capacity(config.nats.len());
    for node in &config.nats {
        let sans = node_sans(node);
        let issued = leaf(
            &ca,
            &node.name,
            &sans,
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            now,
        )
        .map_err(issue(&node.name))?;
        nodes.push((node.name.clone(), issued));
    }
    let mut replicas = Vec::with_capacity(config.replicas.len());
    for replica in &config.replicas {
        let issued = leaf(
            &ca,
            &replica.name,
            &replica_sans(replica),
            &[ExtendedKeyUsagePurpose::ServerAuth],
            now,
        )
        .map_err(issue(&replica.name))?;
        replicas.push((replica.name.clone(), issued));
    }
    let mut sites = Vec::with_capacity(config.sites.len());
    for site in &config.sites {
        let user = site_user(site);
        let issued = leaf(&ca, &user, &[], &[ExtendedKeyUsagePurpose::ClientAuth], now)
            .map_err(issue(&user))?;
        sites.push((site.clone(), password()?, issued));
    }
    Ok(Pki {
        ca: Issued {
            cert: ca.pem(),
            key: ca_key_pem,
        },
        nodes,
        replicas,
        hub_password: password()?,
        sites,
    })
}

/// What `init` wrote.
#[derive(Debug)]
pub struct Written {
    /// Every file, in the order written.
    pub files: Vec<PathBuf>,
}

/// `dv-hub pki init`: generates the PKI of `config` into `out`. Refuses
/// when `out` already holds a CA, unless `force`.
pub fn init(config: &HubConfig, out: &Path, force: bool) -> Result<Written, PkiError> {
    let layout = Layout::new(out);
    for existing in [layout.ca_cert(), layout.ca_key()] {
        if existing.exists() && !force {
            return Err(PkiError::CaExists(existing));
        }
    }
    let pki = generate(config, OffsetDateTime::now_utc())?;
    let mut files = Vec::new();
    let mut put = |path: PathBuf, text: &str, secret: bool| -> Result<(), PkiError> {
        write(&path, text, secret)?;
        files.push(path);
        Ok(())
    };
    put(layout.ca_cert(), &pki.ca.cert, false)?;
    put(layout.ca_key(), &pki.ca.key, true)?;
    for (node, issued) in &pki.nodes {
        put(layout.node_cert(node), &issued.cert, false)?;
        put(layout.node_key(node), &issued.key, true)?;
    }
    for (replica, issued) in &pki.replicas {
        put(layout.api_cert(replica), &issued.cert, false)?;
        put(layout.api_key(replica), &issued.key, true)?;
    }
    put(layout.hub_password(), pki.hub_password.expose(), true)?;
    for (site, secret, issued) in &pki.sites {
        put(layout.site_password(site), secret.expose(), true)?;
        put(layout.site_cert(site), &issued.cert, false)?;
        put(layout.site_key(site), &issued.key, true)?;
        put(layout.site_ca(site), &pki.ca.cert, false)?;
    }
    Ok(Written { files })
}

/// Reads a password file (trimmed); an empty file is refused.
pub fn read_secret(path: &Path) -> Result<Secret, PkiError> {
    let text = std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(PkiError::Invalid {
            path: path.to_owned(),
            detail: "the password file is empty".into(),
        });
    }
    Ok(Secret(text.to_owned()))
}

/// Loads a certificate chain and its key for a rustls server.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, PkiError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |path: &Path, detail: String| PkiError::Invalid {
        path: path.to_owned(),
        detail,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(cert, "holds no certificate".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| invalid(key, format!("not a PEM private key: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid(cert, e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key_der)
    .map_err(|e| invalid(key, format!("does not fit the certificate: {e}")))?;
    // axum serves HTTP/1.1 here (no http2 feature).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Dataverket");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A certificate for `cn` with `sans`, signed by `ca`.
fn leaf(
    ca: &CertifiedIssuer<'_, KeyPair>,
    cn: &str,
    sans: &[String],
    usages: &[ExtendedKeyUsagePurpose],
    now: OffsetDateTime,
) -> Result<Issued, rcgen::Error> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(sans.to_vec())?;
    params.distinguished_name = name(cn);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = usages.to_vec();
    params.use_authority_key_identifier_extension = true;
    params.not_before = now;
    params.not_after = now + LEAF_VALIDITY;
    let cert = params.signed_by(&key, ca)?;
    Ok(Issued {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// The names a node's certificate carries (see the module docs).
pub fn node_sans(node: &NatsNode) -> Vec<String> {
    let mut sans = BTreeSet::new();
    for ip in [node.client.ip(), node.cluster.ip(), node.leaf.ip()] {
        add_ip(&mut sans, ip);
    }
    if let Some(host) = node.leaf_advertise.as_deref().and_then(advertised_host) {
        sans.insert(host);
    }
    sans.insert("localhost".to_owned());
    sans.insert(node.name.clone());
    sans.into_iter().collect()
}

/// The names a replica's API certificate carries.
pub fn replica_sans(replica: &Replica) -> Vec<String> {
    let mut sans = BTreeSet::new();
    add_ip(&mut sans, replica.listen.ip());
    sans.insert("localhost".to_owned());
    sans.insert(replica.name.clone());
    sans.into_iter().collect()
}

fn add_ip(sans: &mut BTreeSet<String>, ip: IpAddr) {
    // A wildcard bind address is nobody's name.
    if !ip.is_unspecified() {
        sans.insert(ip.to_string());
    }
}

/// The host of `host:port` (`[v6]:port` too); `None` when it has none.
fn advertised_host(text: &str) -> Option<String> {
    let host = match text.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => text,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| host.to_owned())
}

/// Writes `text` to `path` (creating its directory), mode 0600 when
/// `secret`. The mode is set at creation, so a key is never readable by
/// others, not even for a moment.
fn write(path: &Path, text: &str, secret: bool) -> Result<(), PkiError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| PkiError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let mode = if secret { 0o600 } else { 0o644 };
    // Remove first: an existing file keeps its old mode when truncated.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    if !text.ends_with('\n') {
        file.write_all(b"\n").map_err(io)?;
    }
    file.sync_all().map_err(io)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::Arc;

    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    use super::*;

    fn config() -> HubConfig {
        let text = crate::config::tests_support::THREE.replace(
            "leaf = \"127.0.0.1:7424\"",
            "leaf = \"0.0.0.0:7424\"\nleaf_advertise = \"hub-3.example:7422\"",
        );
        HubConfig::parse(&text, Path::new("hub.toml")).unwrap()
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    /// Verifies `cert` for `name` against `ca` the way a TLS client does.
    fn verify(ca: &str, cert: &str, name: &str) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(ca)).unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
        .build()
        .unwrap();
        let name = ServerName::try_from(name.to_owned()).unwrap();
        verifier
            .verify_server_cert(&der(cert), &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn every_server_certificate_chains_to_the_ca_for_its_names_only() {
        let c = config();
        let pki = generate(&c, OffsetDateTime::now_utc()).unwrap();
        let (_, hub1) = &pki.nodes[0];
        for name in ["127.0.0.1", "localhost", "hub-1"] {
            verify(&pki.ca.cert, &hub1.cert, name).unwrap();
        }
        assert!(verify(&pki.ca.cert, &hub1.cert, "hub-2").is_err());
        assert!(verify(&pki.ca.cert, &hub1.cert, "10.0.0.1").is_err());
        // The wildcard leaf bind is not a name; the advertised host is.
        let (_, hub3) = &pki.nodes[2];
        verify(&pki.ca.cert, &hub3.cert, "hub-3.example").unwrap();
        assert!(verify(&pki.ca.cert, &hub3.cert, "0.0.0.0").is_err());
        let (_, api) = &pki.replicas[0];
        for name in ["127.0.0.1", "localhost", "r1"] {
            verify(&pki.ca.cert, &api.cert, name).unwrap();
        }
        // Another CA's certificates do not verify.
        let other = generate(&c, OffsetDateTime::now_utc()).unwrap();
        assert!(verify(&other.ca.cert, &hub1.cert, "hub-1").is_err());
        // A site's client certificate is no server certificate.
        let (_, _, site) = &pki.sites[0];
        assert!(verify(&pki.ca.cert, &site.cert, "site-osl-1").is_err());
    }

    #[test]
    fn sans_are_the_listeners_localhost_and_the_name() {
        let c = config();
        assert_eq!(
            node_sans(c.node("hub-1").unwrap()),
            ["127.0.0.1", "hub-1", "localhost"]
        );
        assert_eq!(
            node_sans(c.node("hub-3").unwrap()),
            ["127.0.0.1", "hub-3", "hub-3.example", "localhost"]
        );
        assert_eq!(
            replica_sans(c.replica("r1").unwrap()),
            ["127.0.0.1", "localhost", "r1"]
        );
        assert_eq!(advertised_host("[::1]:7422").as_deref(), Some("::1"));
        assert_eq!(
            advertised_host("hub.example").as_deref(),
            Some("hub.example")
        );
    }

    #[test]
    fn init_writes_keys_0600_and_refuses_to_replace_a_ca() {
        let c = config();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("pki");
        let written = init(&c, &out, false).unwrap();
        let layout = Layout::new(&out);
        let site = SiteName::new("osl-1").unwrap();
        for secret in [
            layout.ca_key(),
            layout.node_key("hub-2"),
            layout.api_key("r1"),
            layout.hub_password(),
            layout.site_password(&site),
            layout.site_key(&site),
        ] {
            assert!(written.files.contains(&secret), "{}", secret.display());
            let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", secret.display());
        }
        let password = read_secret(&layout.site_password(&site)).unwrap();
        assert_eq!(password.expose().len(), 2 * PASSWORD_BYTES);
        assert_ne!(
            password,
            read_secret(&layout.site_password(&SiteName::new("bgo-1").unwrap())).unwrap()
        );
        server_config(&layout.api_cert("r1"), &layout.api_key("r1")).unwrap();

        let ca_before = std::fs::read_to_string(layout.ca_cert()).unwrap();
        let e = init(&c, &out, false).unwrap_err();
        assert!(matches!(e, PkiError::CaExists(_)), "{e}");
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(
            std::fs::read_to_string(layout.ca_cert()).unwrap(),
            ca_before
        );
        init(&c, &out, true).unwrap();
        assert_ne!(
            std::fs::read_to_string(layout.ca_cert()).unwrap(),
            ca_before
        );
        let mode = std::fs::metadata(layout.ca_key())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
