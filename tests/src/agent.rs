//! A `dv-agent serve` process under test: started, watched through its JSON
//! log, and stopped with the clean-shutdown check every test wants.
//!
//! The caller builds the command (binary path, namespace, config, flags; it
//! must log JSON: `--log-format json`) because each test places the agent
//! differently. [`start`] captures stderr and returns once the agent logged
//! "agent serving", or with its exit code and log if it stopped first.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::process::Guarded;

/// A running agent and the log lines read so far.
#[derive(Debug)]
pub struct RunningAgent {
    /// The process; killed on drop if still running.
    pub child: Guarded,
    /// Log lines read so far.
    pub seen: Vec<String>,
    /// The HTTP address the agent reported.
    pub http: SocketAddr,
    lines: mpsc::Receiver<String>,
}

/// Why an agent did not come up: its exit code (if it exited) and its log.
pub type StartFailure = (Option<i32>, Vec<String>);

/// Spawns `cmd` and waits up to `limit` for "agent serving".
pub fn start(cmd: &mut Command, limit: Duration) -> Result<RunningAgent, StartFailure> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = match Guarded::spawn(cmd) {
        Ok(c) => c,
        Err(e) => return Err((None, vec![format!("cannot start dv-agent: {e}")])),
    };
    let Some(stderr) = child.child().and_then(|c| c.stderr.take()) else {
        return Err((None, vec!["dv-agent has no stderr pipe".to_owned()]));
    };
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    // Bounded by the deadline; ends early when the agent exits (stderr closes).
    let deadline = Instant::now() + limit;
    let mut http = None;
    while http.is_none() && Instant::now() < deadline {
        let line = match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(l) => l,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if message(&line).as_deref() == Some("agent serving") {
            http = field(&line, "http").and_then(|a| a.parse().ok());
        }
        seen.push(line);
    }
    match http {
        Some(http) => Ok(RunningAgent {
            child,
            seen,
            http,
            lines,
        }),
        None => {
            let status = child.wait_timeout(Duration::from_secs(10));
            while let Ok(l) = lines.recv_timeout(Duration::from_millis(200)) {
                seen.push(l);
            }
            Err((status.and_then(|s| s.code()), seen))
        }
    }
}

fn message(line: &str) -> Option<String> {
    field(line, "message")
}

fn field(line: &str, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v[key].as_str().map(str::to_owned)
}

impl RunningAgent {
    /// Reads log lines for up to `limit` until one contains `needle`.
    pub fn wait_log(&mut self, needle: &str, limit: Duration) -> Option<String> {
        let (lines, seen) = (&self.lines, &mut self.seen);
        crate::wait_for(limit, || {
            let l = lines.recv_timeout(Duration::from_millis(50)).ok()?;
            seen.push(l.clone());
            l.contains(needle).then_some(l)
        })
    }

    /// The whole log so far, one line per entry (reads what has arrived).
    pub fn log_text(&mut self) -> String {
        self.seen.extend(self.lines.try_iter());
        self.seen.join("\n")
    }

    /// The field `key` of the first log line whose message is
    /// `message_text` (e.g. the `listen` of "tftp serving"), reading more of
    /// the log for up to `limit` if it has not been logged yet.
    pub fn logged(&mut self, message_text: &str, key: &str, limit: Duration) -> Option<String> {
        let found = |l: &String| {
            (message(l).as_deref() == Some(message_text))
                .then(|| field(l, key))
                .flatten()
        };
        if let Some(v) = self.seen.iter().find_map(found) {
            return Some(v);
        }
        let (lines, seen) = (&self.lines, &mut self.seen);
        crate::wait_for(limit, || {
            let l = lines.recv_timeout(Duration::from_millis(50)).ok()?;
            let v = found(&l);
            seen.push(l);
            v
        })
    }

    /// SIGTERM, then asserts the agent exits 0 within 30 s (the clean
    /// shutdown that commits every queued write). Returns the whole log.
    pub fn stop(mut self) -> Vec<String> {
        let signalled = self.child.signal(libc::SIGTERM);
        let status = self.child.wait_timeout(Duration::from_secs(30));
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(l);
        }
        assert!(
            signalled.is_ok() && status.is_some_and(|s| s.success()),
            "dv-agent did not stop cleanly ({status:?}); log:\n{}",
            self.seen.join("\n")
        );
        self.seen
    }
}

/// A site config for an agent that serves only its API: production
/// authority (no DHCP or DNS of its own), HTTP on a loopback port the OS
/// picks, TFTP off, data in `dir/data`. Returns the config's path.
pub fn api_only_config(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    api_only_config_with(dir, "")
}

/// [`api_only_config`] with `extra` (more sections) appended.
pub fn api_only_config_with(
    dir: &std::path::Path,
    extra: &str,
) -> std::io::Result<std::path::PathBuf> {
    api_only_config_for(dir, "lab", extra)
}

/// [`api_only_config_with`] for site `site`.
pub fn api_only_config_for(
    dir: &std::path::Path,
    site: &str,
    extra: &str,
) -> std::io::Result<std::path::PathBuf> {
    let path = dir.join("agent.toml");
    let base = r#"
[site]
name = "@SITE@"
domain = "dataverket.test"
authority = "production"
data_dir = "data"

[http]
listen = "127.0.0.1:0"

[management]
segment = "lab"
interface = "lo"
prefix = "10.77.0.0/24"
gateway = "10.77.0.1"
production_address = "10.77.0.5"
host = "provisioner-01"

[tftp]
enabled = false

[[dns.hosts]]
name = "provisioner-01"
interfaces = [{ segment = "lab", address = "10.77.0.1" }]
"#;
    let base = base.replace("@SITE@", site);
    std::fs::write(&path, format!("{base}\n{extra}"))?;
    Ok(path)
}

/// Starts `binary` (a dv-agent) on [`api_only_config`] in `dir`.
pub fn start_api_only(
    binary: &std::path::Path,
    dir: &std::path::Path,
) -> Result<RunningAgent, StartFailure> {
    start_api_only_with(binary, dir, "")
}

/// [`start_api_only`] with `extra` config sections (e.g. `[talos]`).
pub fn start_api_only_with(
    binary: &std::path::Path,
    dir: &std::path::Path,
    extra: &str,
) -> Result<RunningAgent, StartFailure> {
    start_api_only_for(binary, dir, "lab", extra)
}

/// [`start_api_only_with`] for site `site`.
pub fn start_api_only_for(
    binary: &std::path::Path,
    dir: &std::path::Path,
    site: &str,
    extra: &str,
) -> Result<RunningAgent, StartFailure> {
    let config = api_only_config_for(dir, site, extra).map_err(|e| (None, vec![e.to_string()]))?;
    let mut cmd = Command::new(binary);
    cmd.args(["serve", "--log-format", "json", "--config"])
        .arg(&config)
        .env("DV_LOG", "info");
    start(&mut cmd, Duration::from_secs(30))
}
