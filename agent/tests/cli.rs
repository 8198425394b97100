//! The `dv-agent` binary, end to end: version, check-config, and serve with
//! health, metrics and a clean SIGTERM shutdown, as an operator runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dv_tests::agent::RunningAgent;
use dv_tests::http;

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dv-agent"))
}

fn lab_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../site-kits/examples/lab/agent.toml")
}

/// Starts `dv-agent serve` on the lab config with `data` as its data
/// directory, every listener on loopback.
fn serve(data: &Path) -> RunningAgent {
    let mut cmd = agent();
    cmd.args(["serve", "--log-format", "json", "--listen", "127.0.0.1:0"])
        .args([
            "--dns-listen",
            "127.0.0.1:0",
            "--tftp-listen",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(lab_config())
        .arg("--data-dir")
        .arg(data)
        .env("DV_LOG", "info");
    dv_tests::agent::start(&mut cmd, Duration::from_secs(30))
        .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"))
}

#[test]
fn version_prints_the_crate_version() {
    let out = agent().arg("version").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim(),
        format!("dv-agent {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_accepts_the_lab_site() {
    let out = agent()
        .arg("check-config")
        .arg(lab_config())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": ok"), "{stdout}");
    assert!(stdout.contains("lab"), "{stdout}");
}

#[test]
fn check_config_names_file_line_and_field_of_a_bad_value() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(lab_config()).unwrap();
    // Make the site name invalid, on whatever line it is.
    let (line_no, _) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.trim_start().starts_with("name = \"lab\""))
        .expect("the lab config has a site name line");
    let broken: Vec<&str> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == line_no {
                "name = \"Not.A.Site\""
            } else {
                l
            }
        })
        .collect();
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, broken.join("\n")).unwrap();

    let out = agent().arg("check-config").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected = format!("{}:{}:", file.display(), line_no + 1);
    assert!(stderr.contains(&expected), "want {expected:?} in {stderr}");
    assert!(stderr.contains("site.name"), "{stderr}");
}

#[test]
fn check_config_of_a_missing_file_exits_1() {
    let out = agent()
        .arg("check-config")
        .arg("/nonexistent/agent.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/agent.toml"));
}

#[test]
fn serve_with_a_bad_config_exits_2_without_touching_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, "[site]\nname = 3\n").unwrap();
    let data = dir.path().join("data");
    let out = agent()
        .args(["serve", "--log-format", "json", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!data.exists(), "a refused config must change nothing");
}

#[test]
fn serve_answers_health_and_metrics_then_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let agent = serve(&data);
    let addr = agent.http;

    let health = http::get(addr, "/v1/health").unwrap();
    assert_eq!(health.status, 200, "{}", health.body);
    let doc: serde_json::Value = serde_json::from_str(&health.body).unwrap();
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["site"], "lab");
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));

    let metrics = http::get(addr, "/metrics").unwrap();
    assert_eq!(metrics.status, 200);
    for name in [
        "dv_agent_build_info{",
        "dv_store_commits_total",
        "dv_store_commit_seconds_bucket",
        "dv_http_requests_total{",
        "dv_outbox_pending",
    ] {
        assert!(
            metrics.body.contains(name),
            "{name} missing:\n{}",
            metrics.body
        );
    }
    assert_eq!(http::get(addr, "/v1/nope").unwrap().status, 404);

    // SIGTERM: exit 0 after the store committed what was queued.
    let log = agent.stop();
    assert!(
        log.iter().any(|l| l.contains("agent stopped cleanly")),
        "{log:#?}"
    );
    assert!(data.join("agent.db").exists());

    // Serving again on the same data directory works (re-open is idempotent).
    let again = serve(&data);
    assert_eq!(http::get(again.http, "/v1/health").unwrap().status, 200);
    again.stop();
}
