//! Talos machine configs: golden files, a strict typed check of the
//! v1alpha1 fields the agent writes, and the crypto material checked by a
//! real peer (openssl).
//!
//! Golden: controlplane and worker configs rendered from the checked-in
//! test secrets (`golden/talos-secrets.fixture.json`, deterministic; test
//! keys only) must equal `golden/talos-*.yaml`. After an intended change,
//! regenerate with
//! `UPDATE_GOLDEN=1 cargo nextest run -p dv-agent --test talos_config` and
//! review the diff.
//!
//! No independent Talos validator is obtainable from the registries this
//! project reaches (no `talosctl` on PyPI, npm or Debian), so "parses as
//! Talos machine configuration" is checked by decoding every config into
//! serde types written from the v1alpha1 reference for the fields we emit,
//! with `deny_unknown_fields` throughout: a misspelled or misplaced key
//! fails, as does a value of the wrong shape.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dv_agent::talos::SecretsBundle;
use dv_agent::talos::config::{MachineFacts, MachineType, render};
use dv_agent::talos::secrets::is_token;
use serde::Deserialize;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn settings() -> dv_agent::config::Talos {
    dv_agent::config::Talos {
        cluster_name: "lab".into(),
        endpoint: "https://10.77.0.50:6443".into(),
        install_image: "ghcr.io/siderolabs/installer:v1.11.5".into(),
        install_disk: "/dev/sda".into(),
        wipe: false,
        kernel: "talos/vmlinuz-amd64".into(),
        initrd: "talos/initramfs-amd64.xz".into(),
        dns_domain: "cluster.local".into(),
        pod_subnets: vec!["10.244.0.0/16".parse().unwrap()],
        service_subnets: vec!["10.96.0.0/12".parse().unwrap()],
        nameservers: vec!["10.77.0.1".parse().unwrap()],
    }
}

fn facts(kind: MachineType, mac: &str, hostname: &str) -> MachineFacts {
    MachineFacts {
        kind,
        mac: mac.parse().unwrap(),
        hostname: hostname.into(),
        fqdn: format!("{hostname}.lab.dataverket.test"),
    }
}

/// The checked-in test secrets; created (once, on purpose) with
/// UPDATE_GOLDEN=1 when missing.
fn fixture() -> SecretsBundle {
    let path = golden("talos-secrets.fixture.json");
    if !path.exists() && std::env::var_os("UPDATE_GOLDEN").is_some() {
        let start = time::macros::datetime!(2026-01-01 00:00 UTC);
        let bundle = SecretsBundle::generate(start).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bundle.to_json().unwrap()).unwrap();
        // Tests run in parallel processes: the first link wins, and every
        // process then reads that one file.
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_string_pretty(&value).unwrap() + "\n").unwrap();
        let _ = std::fs::hard_link(&tmp, &path);
        std::fs::remove_file(&tmp).unwrap();
    }
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    SecretsBundle::from_json(&bytes).unwrap()
}

fn compare(file: &str, rendered: &str) {
    let path = golden(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, rendered).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(
        rendered, want,
        "{file} drifted; rerun with UPDATE_GOLDEN=1 and review"
    );
}

fn controlplane(secrets: &SecretsBundle) -> String {
    render(
        &settings(),
        secrets,
        &facts(MachineType::ControlPlane, "52:54:00:99:00:01", "cp-01"),
    )
    .unwrap()
}

fn worker(secrets: &SecretsBundle) -> String {
    render(
        &settings(),
        secrets,
        &facts(MachineType::Worker, "52:54:00:99:00:02", "worker-01"),
    )
    .unwrap()
}

#[test]
fn controlplane_matches_golden() {
    compare("talos-controlplane.yaml", &controlplane(&fixture()));
}

#[test]
fn worker_matches_golden() {
    compare("talos-worker.yaml", &worker(&fixture()));
}

// ---- The strict typed check: v1alpha1 as documented, for what we emit.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    version: String,
    debug: bool,
    persist: bool,
    machine: MachineConfig,
    cluster: ClusterConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MachineConfig {
    #[serde(rename = "type")]
    kind: String,
    token: String,
    ca: Pem,
    #[serde(rename = "certSANs")]
    cert_sans: Vec<String>,
    network: NetworkConfig,
    install: InstallConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pem {
    crt: String,
    #[serde(default)]
    key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyOnly {
    key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkConfig {
    hostname: String,
    interfaces: Vec<Device>,
    #[serde(default)]
    nameservers: Vec<std::net::IpAddr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Device {
    device_selector: DeviceSelector,
    dhcp: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DeviceSelector {
    hardware_addr: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstallConfig {
    disk: String,
    image: String,
    wipe: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClusterConfig {
    id: String,
    secret: String,
    control_plane: ControlPlane,
    cluster_name: String,
    network: ClusterNetwork,
    token: String,
    #[serde(default)]
    secretbox_encryption_secret: Option<String>,
    ca: Pem,
    #[serde(default, rename = "aggregatorCA")]
    aggregator_ca: Option<Pem>,
    #[serde(default)]
    service_account: Option<KeyOnly>,
    #[serde(default)]
    etcd: Option<Etcd>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlPlane {
    endpoint: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClusterNetwork {
    dns_domain: String,
    pod_subnets: Vec<ipnet::IpNet>,
    service_subnets: Vec<ipnet::IpNet>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Etcd {
    ca: Pem,
}

fn unb64(text: &str) -> String {
    String::from_utf8(STANDARD.decode(text).expect("base64")).expect("PEM text")
}

/// Decodes `yaml` strictly and checks the values' shapes; returns it.
fn check_talos(yaml: &str, kind: &str) -> Config {
    let c: Config = yaml_serde::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(c.version, "v1alpha1");
    assert!(!c.debug && c.persist);
    let m = &c.machine;
    assert_eq!(m.kind, kind);
    assert!(is_token(&m.token), "machine.token {}", m.token);
    assert!(unb64(&m.ca.crt).starts_with("-----BEGIN CERTIFICATE-----"));
    let label = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    assert!(label(&m.network.hostname), "{}", m.network.hostname);
    assert!(m.cert_sans.iter().all(|s| s.split('.').all(label)));
    assert_eq!(m.network.interfaces.len(), 1);
    let dev = &m.network.interfaces[0];
    assert!(dev.dhcp);
    assert!(
        dev.device_selector
            .hardware_addr
            .parse::<dv_protocol::MacAddr>()
            .is_ok()
    );
    assert!(m.install.disk.starts_with("/dev/"));
    assert!(!m.install.wipe);
    assert_eq!(
        m.network.nameservers,
        ["10.77.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(m.install.image.contains(':'));
    let cl = &c.cluster;
    assert_eq!(STANDARD.decode(&cl.secret).unwrap().len(), 32);
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE
            .decode(&cl.id)
            .unwrap()
            .len(),
        32
    );
    assert!(cl.control_plane.endpoint.starts_with("https://"));
    assert!(!cl.cluster_name.is_empty());
    assert!(cl.network.dns_domain.split('.').all(label));
    assert!(!cl.network.pod_subnets.is_empty() && !cl.network.service_subnets.is_empty());
    assert!(is_token(&cl.token), "cluster.token {}", cl.token);
    assert!(unb64(&cl.ca.crt).starts_with("-----BEGIN CERTIFICATE-----"));
    if kind == "controlplane" {
        assert!(m.ca.key.is_some() && cl.ca.key.is_some());
        let sb = cl.secretbox_encryption_secret.as_ref().unwrap();
        assert_eq!(STANDARD.decode(sb).unwrap().len(), 32);
        assert!(cl.aggregator_ca.as_ref().unwrap().key.is_some());
        assert!(cl.etcd.as_ref().unwrap().ca.key.is_some());
        assert!(unb64(&cl.service_account.as_ref().unwrap().key).contains("EC PRIVATE KEY"));
    } else {
        // A worker holds no CA key and no cluster-wide secret.
        assert!(m.ca.key.is_none() && cl.ca.key.is_none());
        assert!(cl.secretbox_encryption_secret.is_none());
        assert!(cl.aggregator_ca.is_none() && cl.service_account.is_none() && cl.etcd.is_none());
        assert!(!yaml.contains("key:"), "{yaml}");
    }
    c
}

#[test]
fn every_config_parses_as_talos_v1alpha1() {
    for secrets in [
        fixture(),
        SecretsBundle::generate(time::OffsetDateTime::now_utc()).unwrap(),
    ] {
        let cp = check_talos(&controlplane(&secrets), "controlplane");
        let w = check_talos(&worker(&secrets), "worker");
        assert_eq!(cp.cluster.ca.crt, w.cluster.ca.crt, "one cluster, one CA");
        assert_eq!(cp.cluster.id, w.cluster.id);
        assert_eq!(cp.machine.token, w.machine.token);
    }
    // The strict types do catch a stray key.
    let bad = controlplane(&fixture()).replace("  install:\n", "  instal:\n");
    assert!(yaml_serde::from_str::<Config>(&bad).is_err());
}

// ---- The crypto material, checked by openssl.

fn openssl(args: &[&str], input: &Path) -> String {
    let out = Command::new("openssl")
        .args(args)
        .arg("-in")
        .arg(input)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?} failed on {}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Parses the CA certificate and key with openssl and checks they belong
/// together; returns the certificate's text.
fn check_ca(dir: &Path, name: &str, crt: &str, key: &str) -> String {
    let crt_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&crt_path, crt).unwrap();
    // openssl reads PKCS#8 as "PRIVATE KEY"; Talos labels its Ed25519 PKCS#8
    // "ED25519 PRIVATE KEY" (same DER).
    std::fs::write(&key_path, key.replace("ED25519 PRIVATE KEY", "PRIVATE KEY")).unwrap();
    let text = openssl(&["x509", "-noout", "-text"], &crt_path);
    assert!(text.contains("CA:TRUE"), "{name}: {text}");
    assert!(text.contains("Certificate Sign"), "{name}: {text}");
    openssl(&["pkey", "-noout"], &key_path);
    let from_cert = openssl(&["x509", "-noout", "-pubkey"], &crt_path);
    let from_key = openssl(&["pkey", "-pubout"], &key_path);
    assert_eq!(
        from_cert, from_key,
        "{name}: the key does not match the certificate"
    );
    text
}

#[test]
fn the_cas_and_keys_parse_with_openssl_and_match() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("\n!!! SKIPPED the_cas_and_keys_parse_with_openssl_and_match: no openssl !!!\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (i, b) in [
        fixture(),
        SecretsBundle::generate(time::OffsetDateTime::now_utc()).unwrap(),
    ]
    .iter()
    .enumerate()
    {
        let d = dir.path().join(i.to_string());
        std::fs::create_dir_all(&d).unwrap();
        let k8s = check_ca(&d, "k8s", &b.kubernetes_ca.crt, &b.kubernetes_ca.key);
        assert!(
            k8s.contains("O=kubernetes") || k8s.contains("O = kubernetes"),
            "{k8s}"
        );
        assert!(k8s.contains("prime256v1") || k8s.contains("P-256"), "{k8s}");
        let agg = check_ca(&d, "aggregator", &b.aggregator_ca.crt, &b.aggregator_ca.key);
        assert!(
            agg.contains("CN=front-proxy") || agg.contains("CN = front-proxy"),
            "{agg}"
        );
        let etcd = check_ca(&d, "etcd", &b.etcd_ca.crt, &b.etcd_ca.key);
        assert!(
            etcd.contains("O=etcd") || etcd.contains("O = etcd"),
            "{etcd}"
        );
        let os = check_ca(&d, "os", &b.os_ca.crt, &b.os_ca.key);
        assert!(os.contains("ED25519"), "{os}");
        assert!(os.contains("O=talos") || os.contains("O = talos"), "{os}");
        for t in [&k8s, &agg, &etcd, &os] {
            assert!(t.contains("TLS Web Server Authentication"), "{t}");
            assert!(t.contains("TLS Web Client Authentication"), "{t}");
        }
        // Service account key: an EC P-256 key, as a SEC1 PEM.
        let sa = d.join("sa.key");
        std::fs::write(&sa, &b.service_account_key).unwrap();
        let text = openssl(&["pkey", "-noout", "-text"], &sa);
        assert!(
            text.contains("prime256v1") || text.contains("P-256"),
            "{text}"
        );
        // SEC1 keys name their curve (Go's x509.ParseECPrivateKey needs it).
        let ec = openssl(&["ec", "-noout", "-text"], &d.join("k8s.key"));
        assert!(ec.contains("ASN1 OID: prime256v1"), "{ec}");
    }
}
