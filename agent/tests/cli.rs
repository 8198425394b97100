//! The `dv-agent` binary, end to end: version, check-config, and serve with
//! health, metrics and a clean SIGTERM shutdown, as an operator runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use dv_tests::process::Guarded;
use dv_tests::{http, wait_for};

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dv-agent"))
}

fn lab_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../site-kits/examples/lab/agent.toml")
}

/// Starts `dv-agent serve` on the lab config with `data` as its data directory
/// and returns the guarded child, the HTTP address it reported, and a channel
/// of its remaining log lines.
fn serve(data: &Path) -> (Guarded, SocketAddr, mpsc::Receiver<String>) {
    let mut child = Guarded::spawn(
        agent()
            .args(["serve", "--log-format", "json", "--listen", "127.0.0.1:0"])
            .args(["--tftp-listen", "127.0.0.1:0"])
            // The lab's DNS address (10.77.0.1:53) exists only on a lab host.
            .args(["--dns-listen", "127.0.0.1:0"])
            .arg("--config")
            .arg(lab_config())
            .arg("--data-dir")
            .arg(data)
            .env("DV_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let stderr = child.child().unwrap().stderr.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The agent logs the address it bound; read it from the JSON log lines.
    let mut seen = Vec::new();
    let addr = wait_for(Duration::from_secs(20), || {
        let line = lines_rx.recv_timeout(Duration::from_millis(100)).ok()?;
        seen.push(line.clone());
        let v: serde_json::Value = serde_json::from_str(&line).ok()?;
        if v["message"] != "agent serving" {
            return None;
        }
        v["http"].as_str()?.parse().ok()
    })
    .unwrap_or_else(|| panic!("agent did not report serving; log: {seen:#?}"));
    (child, addr, lines_rx)
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
    let (mut child, addr, log) = serve(&data);

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

    child.signal(libc::SIGTERM).unwrap();
    let status = child
        .wait_timeout(Duration::from_secs(20))
        .expect("agent exits after SIGTERM");
    // The child is gone, so its stderr reaches EOF and the reader thread ends.
    let rest: Vec<String> =
        std::iter::from_fn(|| log.recv_timeout(Duration::from_secs(5)).ok()).collect();
    assert_eq!(status.code(), Some(0), "log: {rest:#?}");
    assert!(
        rest.iter().any(|l| l.contains("agent stopped cleanly")),
        "{rest:#?}"
    );
    assert!(data.join("agent.db").exists());

    // Serving again on the same data directory works (re-open is idempotent).
    let (mut again, addr, _log) = serve(&data);
    assert_eq!(http::get(addr, "/v1/health").unwrap().status, 200);
    again.signal(libc::SIGTERM).unwrap();
    assert_eq!(
        again
            .wait_timeout(Duration::from_secs(20))
            .and_then(|s| s.code()),
        Some(0)
    );
}
