//! The lab site on a [`PxeBed`](crate::qemu::PxeBed): its config rewritten
//! for the bed, the discovery (and install stand-in) kernel and initrd as
//! its artifacts, the agent started in the bed's server namespace, and the
//! events it recorded. Shared by the QEMU boot and provisioning tests.
//!
//! Set-up failures panic with what went wrong: this runs only inside tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dv_agent::store::{Store, outbox};
use dv_protocol::{Event, codec};

use crate::agent::RunningAgent;
use crate::qemu::PxeBed;

/// The agent's address on the bed (the lab's bootstrap address).
pub const AGENT_ADDR: &str = "10.77.0.1";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The discovery kernel and initrd, built once per machine by setup.sh (and
/// here, idempotently, if a developer runs a test without it).
pub fn discovery_artifacts() -> PathBuf {
    let dir = repo().join(".cache/discovery");
    let status = Command::new(repo().join("firmware-ipxe/discovery/build.sh"))
        .arg(&dir)
        .status()
        .expect("run firmware-ipxe/discovery/build.sh");
    assert!(
        status.success(),
        "building the discovery environment failed"
    );
    dir
}

/// The lab site config for the bed: the agent on the bed's server
/// interface, HTTP where machines can reach it, and artifacts (the
/// discovery kernel and initrd under `discovery/`) in `dir/artifacts`.
pub fn write_config(dir: &Path) -> PathBuf {
    let lab = std::fs::read_to_string(repo().join("site-kits/examples/lab/agent.toml")).unwrap();
    let mut text = lab
        .replace("\"dvlab0\"", &format!("\"{}\"", PxeBed::SERVER_IF))
        .replace("127.0.0.1:8680", &format!("{AGENT_ADDR}:8680"))
        .replace("0.0.0.0:8680", &format!("{AGENT_ADDR}:8680"));
    let artifacts = dir.join("artifacts");
    std::fs::create_dir_all(artifacts.join("discovery")).unwrap();
    let disc = discovery_artifacts();
    for f in ["vmlinuz", "initrd.cpio.gz"] {
        std::fs::copy(disc.join(f), artifacts.join("discovery").join(f)).unwrap();
    }
    text = set_key(
        &text,
        "boot",
        "artifacts_dir",
        &artifacts.display().to_string(),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Sets `key = "value"` in `[table]`, replacing an existing line or adding one.
pub fn set_key(text: &str, table: &str, key: &str, value: &str) -> String {
    let mut out = Vec::new();
    let mut in_table = false;
    let mut done = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            if in_table && !done {
                out.push(format!("{key} = \"{value}\""));
                done = true;
            }
            in_table = trimmed == format!("[{table}]");
        }
        if in_table && trimmed.starts_with(&format!("{key} ")) {
            out.push(format!("{key} = \"{value}\""));
            done = true;
            continue;
        }
        out.push(line.to_owned());
    }
    if !done {
        if !in_table {
            out.push(format!("[{table}]"));
        }
        out.push(format!("{key} = \"{value}\""));
    }
    out.join("\n") + "\n"
}

/// Starts `binary` (dv-agent) in the bed's server namespace.
pub fn start_agent(binary: &Path, bed: &PxeBed, config: &Path, data: &Path) -> RunningAgent {
    let mut cmd = bed.server.command(binary);
    cmd.args(["serve", "--log-format", "json", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env("DV_LOG", "info");
    crate::agent::start(&mut cmd, Duration::from_secs(30))
        .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"))
}

/// Every event the agent recorded (read from its store; stop it first).
pub fn events(data: &Path) -> Vec<Event> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(data).unwrap();
        let rows = store
            .read(|c| outbox::pending(c, usize::MAX))
            .await
            .unwrap();
        store.close().await;
        rows.iter()
            .map(|r| codec::decode::<Event>(&r.payload).unwrap().body)
            .collect()
    })
}
