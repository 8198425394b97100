//! A whole federation on loopback, built the way an operator builds one:
//! `hub.toml` describes the hub (nats-server nodes, `dv-hub` replicas,
//! sites); every node's nats-server config comes from `dv-hub nats-config`,
//! every site's leaf node config from `dv-agent nats-config`. Each site's
//! uplink runs through a [`Proxy`] the test can cut.
//!
//! Everything started here is killed on drop. Set-up failures panic with
//! what went wrong: this runs only inside tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::agent::RunningAgent;
use crate::nats::NatsServer;
use crate::process::Guarded;
use crate::proxy::Proxy;
use crate::sushy::free_port;
use crate::wait_for;

/// A workspace binary next to the running test's own directory
/// (`target/debug/<name>`); the workspace build puts every binary there.
/// `DV_BIN_DIR` names another directory to take them from (binaries built
/// once and copied, or a target directory that other builds share and
/// overwrite).
pub fn workspace_bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("DV_BIN_DIR") {
        let bin = PathBuf::from(dir).join(name);
        assert!(bin.exists(), "{} is missing (DV_BIN_DIR)", bin.display());
        return bin;
    }
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/<test>-<hash> -> target/debug/<name>
    let bin = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        bin.display()
    );
    bin
}

/// The `[limits]` tests run with unless they ask for others: tests poll
/// far faster than people type, and the rate limit has its own test.
pub const TEST_LIMITS: &str = "[limits]\nrequests_per_second = 100000\nburst = 100000\n";

/// One hub node's ports.
#[derive(Debug, Clone, Copy)]
pub struct NodePorts {
    /// Client listener.
    pub client: u16,
    /// Cluster listener.
    pub cluster: u16,
    /// Leaf-node listener.
    pub leaf: u16,
}

/// One `dv-hub serve` replica.
#[derive(Debug)]
pub struct Replica {
    /// The process.
    pub process: Guarded,
    /// Its API address.
    pub addr: SocketAddr,
    /// Its log file.
    pub log: PathBuf,
}

/// The hub: its nats-server nodes and replicas.
#[derive(Debug)]
pub struct Hub {
    /// The directory holding hub.toml, configs, stores and logs.
    pub dir: PathBuf,
    /// hub.toml
    pub config: PathBuf,
    /// The API token.
    pub token: String,
    /// The nodes, `None` once killed.
    pub nodes: Vec<Option<NatsServer>>,
    /// Their ports.
    pub ports: Vec<NodePorts>,
    /// The replicas, `None` once killed.
    pub replicas: Vec<Option<Replica>>,
    replica_addrs: Vec<SocketAddr>,
    nats_bin: PathBuf,
    hub_bin: PathBuf,
    /// With TLS: the PKI directory `dv-hub pki init` wrote.
    pub pki: Option<PathBuf>,
    ca: Option<String>,
}

impl Hub {
    /// Writes hub.toml for `nodes` nodes, `replicas` replicas and `sites`,
    /// starts the nodes from `dv-hub nats-config` and then the replicas.
    pub fn start(
        nats_bin: &Path,
        hub_bin: &Path,
        dir: &Path,
        nodes: usize,
        replicas: usize,
        sites: &[&str],
    ) -> Hub {
        Self::start_with(
            nats_bin,
            hub_bin,
            dir,
            nodes,
            replicas,
            sites,
            false,
            TEST_LIMITS,
        )
    }

    /// [`Hub::start`] with `extra` appended to hub.toml (`[identity]`,
    /// `[limits]`, ...); `extra` replaces the generous test limits.
    pub fn start_with_toml(
        nats_bin: &Path,
        hub_bin: &Path,
        dir: &Path,
        nodes: usize,
        replicas: usize,
        sites: &[&str],
        extra: &str,
    ) -> Hub {
        Self::start_with(nats_bin, hub_bin, dir, nodes, replicas, sites, false, extra)
    }

    /// [`Hub::start`] with `[tls]`: `dv-hub pki init` first, then TLS on
    /// every listener, per-site NATS users, an HTTPS API.
    pub fn start_tls(
        nats_bin: &Path,
        hub_bin: &Path,
        dir: &Path,
        nodes: usize,
        replicas: usize,
        sites: &[&str],
    ) -> Hub {
        Self::start_with(
            nats_bin,
            hub_bin,
            dir,
            nodes,
            replicas,
            sites,
            true,
            TEST_LIMITS,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn start_with(
        nats_bin: &Path,
        hub_bin: &Path,
        dir: &Path,
        nodes: usize,
        replicas: usize,
        sites: &[&str],
        tls: bool,
        extra: &str,
    ) -> Hub {
        std::fs::create_dir_all(dir).unwrap();
        let token = format!("token-{}", std::process::id());
        let token_file = dir.join("token");
        std::fs::write(&token_file, &token).unwrap();
        let ports: Vec<NodePorts> = (0..nodes)
            .map(|_| NodePorts {
                client: free_port(),
                cluster: free_port(),
                leaf: free_port(),
            })
            .collect();
        let replica_addrs: Vec<SocketAddr> = (0..replicas)
            .map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())))
            .collect();
        let mut toml = format!(
            "[hub]\ndata_dir = \"{}\"\ntoken_file = \"{}\"\n",
            dir.join("data").display(),
            token_file.display()
        );
        for (i, p) in ports.iter().enumerate() {
            toml.push_str(&format!(
                "\n[[nats]]\nname = \"hub-{}\"\nclient = \"127.0.0.1:{}\"\ncluster = \"127.0.0.1:{}\"\nleaf = \"127.0.0.1:{}\"\n",
                i + 1,
                p.client,
                p.cluster,
                p.leaf
            ));
        }
        for (i, a) in replica_addrs.iter().enumerate() {
            toml.push_str(&format!(
                "\n[[replicas]]\nname = \"r{}\"\nlisten = \"{a}\"\n",
                i + 1
            ));
        }
        for s in sites {
            toml.push_str(&format!("\n[[sites]]\nname = \"{s}\"\n"));
        }
        let pki = tls.then(|| dir.join("pki"));
        if tls {
            toml.push_str("\n[tls]\ndir = \"pki\"\n");
        }
        toml.push('\n');
        toml.push_str(extra);
        let config = dir.join("hub.toml");
        std::fs::write(&config, toml).unwrap();
        if let Some(pki) = &pki {
            let out = Command::new(hub_bin)
                .args(["pki", "init", "--config"])
                .arg(&config)
                .arg("--out")
                .arg(pki)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "dv-hub pki init failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut hub = Hub {
            dir: dir.to_owned(),
            config,
            token,
            nodes: Vec::new(),
            ports,
            replicas: Vec::new(),
            replica_addrs,
            nats_bin: nats_bin.to_owned(),
            hub_bin: hub_bin.to_owned(),
            ca: pki
                .as_ref()
                .and_then(|p| p.join("ca.pem").to_str().map(str::to_owned)),
            pki,
        };
        // Start every node before waiting on any: a cluster node's JetStream
        // is ready only once its peers are up.
        let files: Vec<PathBuf> = (0..nodes).map(|i| hub.node_config(i)).collect();
        let starters: Vec<_> = files
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let (bin, port) = (hub.nats_bin.clone(), hub.ports[i].client);
                std::thread::spawn(move || NatsServer::start_file(&bin, &f, port))
            })
            .collect();
        hub.nodes = starters
            .into_iter()
            .map(|t| Some(t.join().unwrap()))
            .collect();
        for i in 0..replicas {
            let r = hub.start_replica(i);
            hub.replicas.push(Some(r));
        }
        hub
    }

    /// Renders node `i`'s config with `dv-hub nats-config` into a file.
    fn node_config(&self, i: usize) -> PathBuf {
        let out = Command::new(&self.hub_bin)
            .args(["nats-config", "--config"])
            .arg(&self.config)
            .args(["--node", &format!("hub-{}", i + 1)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dv-hub nats-config failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = self.dir.join(format!("hub-{}.conf", i + 1));
        std::fs::write(&file, &out.stdout).unwrap();
        file
    }

    /// Starts replica `i` and waits until its API answers.
    pub fn start_replica(&self, i: usize) -> Replica {
        let log = self.dir.join(format!("r{}.log", i + 1));
        let mut cmd = Command::new(&self.hub_bin);
        cmd.args(["serve", "--config"])
            .arg(&self.config)
            .args(["--replica", &format!("r{}", i + 1)])
            .env("DV_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let process = Guarded::spawn(&mut cmd).unwrap();
        let addr = self.replica_addrs[i];
        let base = self.api(i);
        let up = wait_for(Duration::from_secs(60), || {
            let api = crate::api::Api::new(&base);
            let api = match &self.pki {
                Some(_) => api.with_ca(self.ca_file()),
                None => api,
            };
            (api.get("/v1/health").0 == 200).then_some(())
        });
        assert!(
            up.is_some(),
            "replica r{} did not come up; log:\n{}",
            i + 1,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Replica { process, addr, log }
    }

    /// `http://addr` of replica `i` (`https://` with TLS).
    pub fn api(&self, i: usize) -> String {
        let scheme = if self.pki.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.replica_addrs[i])
    }

    /// The hub CA's certificate (with TLS), for clients.
    pub fn ca_file(&self) -> &str {
        self.ca.as_deref().unwrap_or("")
    }

    /// The hub's leaf-node listeners, for a site's uplink proxy.
    pub fn leaf_addrs(&self) -> Vec<SocketAddr> {
        self.ports
            .iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p.leaf)))
            .collect()
    }

    /// `nats://` client URLs of the live nodes.
    pub fn client_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .zip(&self.ports)
            .filter(|(n, _)| n.is_some())
            .map(|(_, p)| format!("nats://127.0.0.1:{}", p.client))
            .collect()
    }

    /// SIGKILLs node `i`.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            n.kill();
        }
    }

    /// SIGKILLs replica `i`.
    pub fn kill_replica(&mut self, i: usize) {
        if let Some(mut r) = self.replicas[i].take() {
            let _ = r.process.signal(libc::SIGKILL);
            let _ = r.process.wait_timeout(Duration::from_secs(10));
        }
    }

    /// What the live nodes say about their streams, sources and leaf
    /// links: for a failed assertion's message.
    pub fn diagnose(&self) -> String {
        let mut out = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(n) = n {
                out.push_str(&format!(
                    "--- hub-{} /leafz:\n{}\n--- /jsz?streams=true&config=true:\n{}\n",
                    i + 1,
                    n.monitor("/leafz"),
                    n.monitor("/jsz?streams=true&config=true")
                ));
            }
        }
        out
    }

    /// Replica `i`'s log so far.
    pub fn replica_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("r{}.log", i + 1))).unwrap_or_default()
    }
}

fn dir_join(base: &Path, parts: &[&str]) -> PathBuf {
    parts.iter().fold(base.to_owned(), |p, part| p.join(part))
}

/// A site's leaf node, through a cuttable uplink to the hub, configured by
/// `dv-agent nats-config`; no agent (a bench publishes into its streams).
#[derive(Debug)]
pub struct Leaf {
    /// The site name.
    pub name: String,
    /// The site's leaf-node nats-server.
    pub nats: NatsServer,
    /// The uplink to the hub.
    pub uplink: Proxy,
    /// The agent's `[nats]` section that matches this leaf node.
    pub nats_section: String,
}

impl Leaf {
    /// Starts site `name`'s uplink proxy and leaf node in `dir`.
    pub fn start(nats_bin: &Path, agent_bin: &Path, dir: &Path, name: &str, hub: &Hub) -> Leaf {
        std::fs::create_dir_all(dir).unwrap();
        let uplink = Proxy::start(hub.leaf_addrs()).unwrap();
        let port = free_port();
        let nats_section = format!(
            "[nats]\nurl = \"nats://127.0.0.1:{port}\"\nhub = [\"nats-leaf://127.0.0.1:{}\"]\n\
             heartbeat_interval = \"1s\"\nstore_dir = \"{}\"\n",
            uplink.port,
            dir.join("nats-store").display()
        );
        let nats_section = match &hub.pki {
            None => nats_section,
            Some(pki) => {
                let site = dir_join(pki, &["sites", name]);
                format!(
                    "{nats_section}hub_password_file = \"{}\"\nhub_ca = \"{}\"\n",
                    site.join("password").display(),
                    site.join("ca.pem").display()
                )
            }
        };
        let config = crate::agent::api_only_config_for(dir, name, &nats_section).unwrap();
        let out = Command::new(agent_bin)
            .args(["nats-config", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dv-agent nats-config failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = dir.join("leaf.conf");
        std::fs::write(&file, &out.stdout).unwrap();
        let nats = NatsServer::start_file(nats_bin, &file, port);
        Leaf {
            name: name.to_owned(),
            nats,
            uplink,
            nats_section,
        }
    }
}

/// A site: its leaf node (through a cuttable uplink) and its agent.
#[derive(Debug)]
pub struct Site {
    /// The site name.
    pub name: String,
    /// The agent.
    pub agent: RunningAgent,
    /// The site's leaf-node nats-server.
    pub nats: NatsServer,
    /// The uplink to the hub.
    pub uplink: Proxy,
    /// The site's directory.
    pub dir: PathBuf,
}

impl Site {
    /// Starts site `name` in `dir`: an uplink proxy to `hub`'s leaf
    /// listeners, the leaf node from `dv-agent nats-config`, and the agent
    /// (API only) federating through it.
    pub fn start(nats_bin: &Path, agent_bin: &Path, dir: &Path, name: &str, hub: &Hub) -> Site {
        Self::start_with(nats_bin, agent_bin, dir, name, hub, "")
    }

    /// [`Site::start`] with `extra` agent config sections (`[talos]`, ...).
    pub fn start_with(
        nats_bin: &Path,
        agent_bin: &Path,
        dir: &Path,
        name: &str,
        hub: &Hub,
        extra: &str,
    ) -> Site {
        let leaf = Leaf::start(nats_bin, agent_bin, dir, name, hub);
        let config = format!("{}\n{extra}", leaf.nats_section);
        let agent = crate::agent::start_api_only_for(agent_bin, dir, name, &config).unwrap_or_else(
            |(code, log)| panic!("agent {name} exited {code:?}:\n{}", log.join("\n")),
        );
        Site {
            name: name.to_owned(),
            agent,
            nats: leaf.nats,
            uplink: leaf.uplink,
            dir: dir.to_owned(),
        }
    }

    /// `http://addr` of the agent's API.
    pub fn api(&self) -> String {
        format!("http://{}", self.agent.http)
    }
}
