//! sushy-tools' Redfish emulator (fake driver) on loopback, for tests of
//! the Redfish driver and of the agent's machine power and boot API.
//!
//! The fake driver applies power changes after a random 1-11 s, and only
//! when the system is next read: callers poll, bounded.
//!
//! Set-up failures panic with what went wrong: this runs only inside tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::netns::Netns;
use crate::process::Guarded;
use crate::wait_for;

/// The first fake system (starts powered off).
pub const NODE_1: &str = "11111111-0000-0000-0000-000000000001";
/// The second fake system (starts powered on).
pub const NODE_2: &str = "11111111-0000-0000-0000-000000000002";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A loopback TCP port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// sushy-emulator from the project's venv (scripts/setup.sh installs it).
pub fn sushy_bin(test: &str) -> Option<PathBuf> {
    let bin = repo().join(".venv/bin/sushy-emulator");
    if bin.exists() {
        return Some(bin);
    }
    eprintln!(
        "\n!!! SKIPPED {test}: {} missing (scripts/setup.sh installs sushy-tools) !!!\n",
        bin.display()
    );
    None
}

/// A running emulator with two fake systems (node-1 off, node-2 on).
#[derive(Debug)]
pub struct Sushy {
    _process: Guarded,
    /// `http://127.0.0.1:<port>` (`https://` with [`Options::tls`]).
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

/// How to start the emulator on host loopback.
#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    /// HTTP basic auth for user `admin` with this password.
    pub password: Option<&'a str>,
    /// HTTPS with this certificate and key (PEM files), as
    /// `SUSHY_EMULATOR_SSL_CERT` / `SUSHY_EMULATOR_SSL_KEY`.
    pub tls: Option<(&'a Path, &'a Path)>,
    /// This port instead of a free one (e.g. to restart it in place).
    pub port: Option<u16>,
}

impl Sushy {
    /// Its port inside a namespace of its own test (nothing else listens there).
    pub const NETNS_PORT: u16 = 8400;

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// Starts it on host loopback; with `password`, HTTP basic auth for
    /// user `admin`.
    pub fn start(bin: &Path, password: Option<&str>) -> Sushy {
        Self::start_in(bin, password, None)
    }

    /// Starts it on host loopback as `options` say.
    pub fn start_with(bin: &Path, options: &Options<'_>) -> Sushy {
        Self::launch(bin, options, None)
    }

    /// As [`Sushy::start`], on the loopback of `netns` when given (port
    /// [`Sushy::NETNS_PORT`] there), so an agent in that namespace can
    /// reach it.
    pub fn start_in(bin: &Path, password: Option<&str>, netns: Option<&Netns>) -> Sushy {
        let options = Options {
            password,
            ..Options::default()
        };
        Self::launch(bin, &options, netns)
    }

    fn launch(bin: &Path, options: &Options<'_>, netns: Option<&Netns>) -> Sushy {
        let password = options.password;
        let dir = tempfile::tempdir().unwrap();
        let port = match (netns, options.port) {
            (Some(_), _) => Self::NETNS_PORT,
            (None, Some(p)) => p,
            (None, None) => free_port(),
        };
        let mut conf = format!(
            "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\n\
             SUSHY_EMULATOR_LISTEN_PORT = {port}\n\
             SUSHY_EMULATOR_FAKE_DRIVER = True\n\
             SUSHY_EMULATOR_STATE_DIR = '{state}'\n\
             SUSHY_EMULATOR_FAKE_SYSTEMS = [\n\
               {{'uuid': '{NODE_1}', 'name': 'node-1', 'power_state': 'Off',\n\
                 'nics': [{{'mac': '52:54:00:99:00:01', 'ip': '10.99.0.101'}}]}},\n\
               {{'uuid': '{NODE_2}', 'name': 'node-2',\n\
                 'power_state': 'On', 'nics': [{{'mac': '52:54:00:99:00:02', 'ip': '10.99.0.102'}}]}},\n\
             ]\n",
            state = dir.path().join("state").display(),
        );
        if let Some(pw) = password {
            let htpasswd = dir.path().join("htpasswd");
            let python = repo().join(".venv/bin/python");
            let out = Command::new(python)
                .args([
                    "-c",
                    "import bcrypt, sys; print('admin:' + bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(rounds=4)).decode())",
                    pw,
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(&htpasswd, out.stdout).unwrap();
            conf.push_str(&format!(
                "SUSHY_EMULATOR_AUTH_FILE = '{}'\n",
                htpasswd.display()
            ));
        }
        if let Some((cert, key)) = options.tls {
            conf.push_str(&format!(
                "SUSHY_EMULATOR_SSL_CERT = '{}'\nSUSHY_EMULATOR_SSL_KEY = '{}'\n",
                cert.display(),
                key.display()
            ));
        }
        let conf_path = dir.path().join("sushy.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = std::fs::File::create(dir.path().join("sushy.log")).unwrap();
        let mut cmd = match netns {
            Some(ns) => ns.command(bin),
            None => Command::new(bin),
        };
        let process = Guarded::spawn(
            cmd.arg("--config")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log),
        )
        .unwrap();
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let endpoint = format!("{scheme}://127.0.0.1:{port}");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let up = wait_for(Duration::from_secs(30), || match netns {
            None if options.tls.is_some() => Command::new("curl")
                .args(["-skf", "--max-time", "2", "-o", "/dev/null"])
                .arg(format!("{endpoint}/redfish/v1/"))
                .status()
                .ok()
                .filter(|s| s.success())
                .map(|_| ()),
            Some(ns) => ns
                .command("curl")
                .args(["-sf", "--max-time", "2", "-o", "/dev/null"])
                .arg(format!("{endpoint}/redfish/v1/"))
                .status()
                .ok()
                .filter(|s| s.success())
                .map(|_| ()),
            None => crate::http::get(addr, "/redfish/v1/")
                .ok()
                .filter(|r| r.status == 200)
                .map(|_| ()),
        });
        assert!(
            up.is_some(),
            "sushy-emulator did not start: {}",
            std::fs::read_to_string(dir.path().join("sushy.log")).unwrap_or_default()
        );
        Sushy {
            _process: process,
            endpoint,
            _dir: dir,
        }
    }
}
