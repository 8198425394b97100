//! Every shipped example site configuration must load, and an error found in
//! a real file on disk must name that file, the line and the field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use dv_agent::config::{Config, ConfigError};

/// `site-kits/examples/*/agent.toml`, sorted.
fn examples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../site-kits/examples");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .map(|entry| entry.unwrap().path().join("agent.toml"))
        .filter(|path| path.is_file())
        .collect();
    found.sort();
    found
}

#[test]
fn every_example_site_config_is_valid() {
    let examples = examples();
    assert!(
        examples.iter().any(|p| p.ends_with("lab/agent.toml")),
        "the lab example is missing: {examples:?}"
    );
    for path in examples {
        match Config::from_file(&path) {
            Ok(config) => assert!(!config.summary().is_empty()),
            Err(err) => panic!("{} must be valid:\n{err}", path.display()),
        }
    }
}

#[test]
fn a_broken_copy_names_its_file_line_and_field() {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../site-kits/examples/lab/agent.toml");
    let text = std::fs::read_to_string(&lab).unwrap();
    let good = "end = \"10.77.0.199\"";
    assert_eq!(text.matches(good).count(), 1, "the lab pool's end moved");
    let broken = text.replacen(good, "end = \"10.77.1.9\"", 1);
    let line = broken
        .lines()
        .position(|l| l.starts_with("end = \"10.77.1.9\""))
        .unwrap()
        + 1;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, &broken).unwrap();

    let err = Config::from_file(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        err.to_string(),
        format!(
            "{}:{line}:7: dhcp.subnets[0].pools[0].end: 10.77.1.9 is outside the subnet 10.77.0.0/24",
            path.display()
        )
    );
}

#[test]
fn a_relative_data_dir_is_relative_to_the_file() {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../site-kits/examples/lab/agent.toml");
    let text = std::fs::read_to_string(&lab).unwrap();
    let relative = text.replacen(
        "data_dir = \"/var/lib/dataverket/lab\"",
        "data_dir = \"state\"",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, relative).unwrap();
    let config = Config::from_file(&path).unwrap();
    assert_eq!(config.site.data_dir, dir.path().join("state"));
}
