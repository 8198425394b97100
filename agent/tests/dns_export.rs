//! Golden tests of the production-authority exports: the lab site's records
//! as VyOS commands, OPNsense Unbound overrides and dnsmasq lines. Regenerate
//! with `UPDATE_GOLDEN=1 cargo nextest run -p dv-agent --test dns_export` and
//! review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use dv_agent::config::Config;
use dv_agent::dns::export::{self, Format};
use dv_agent::dns::zones::{Inputs, build};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn check(format: Format, file: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../site-kits/examples/lab/agent.toml");
    let config = Config::from_file(&path).unwrap();
    let mut inputs = Inputs::from_config(&config);
    // A moved service, to show the export follows the store, not only the file.
    inputs
        .placements
        .insert("console".into(), "provisioner-01-lab".into());
    let zones = build(&inputs, 2026112201);
    let text = export::render(format, &zones, &config.dns.upstreams);
    let path = golden(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(
        text, want,
        "{file} drifted; rerun with UPDATE_GOLDEN=1 and review"
    );
}

#[test]
fn vyos_matches_golden() {
    check(Format::Vyos, "dns-export.vyos");
}

#[test]
fn opnsense_matches_golden() {
    check(Format::Opnsense, "dns-export.opnsense.xml");
}

#[test]
fn dnsmasq_matches_golden() {
    check(Format::Dnsmasq, "dns-export.dnsmasq.conf");
}

/// The dnsmasq export is a working configuration: real dnsmasq loads it and
/// answers the service chain exactly as the agent does.
#[test]
fn dnsmasq_accepts_the_export() {
    let path = golden("dns-export.dnsmasq.conf");
    let out = std::process::Command::new("dnsmasq")
        .arg("--test")
        .arg(format!("--conf-file={}", path.display()))
        .output();
    let Ok(out) = out else {
        eprintln!("\n!!! SKIPPED dnsmasq_accepts_the_export: dnsmasq not installed !!!\n");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
