//! `hub.toml`: one file describes the whole hub: its three nats-server
//! nodes, its `dv-hub` replicas and the sites it federates. Every replica
//! and every node reads the same file and picks its own entry by name, so
//! the topology is generated from configuration, never written by hand per
//! node (`dv-hub nats-config --node hub-2`).
//!
//! ```toml
//! [hub]
//! data_dir = "/var/lib/dv-hub"
//! token_file = "/etc/dv-hub/token"
//!
//! [[nats]]
//! name = "hub-1"
//! client = "127.0.0.1:4222"
//! cluster = "127.0.0.1:6222"
//! leaf = "0.0.0.0:7422"
//!
//! [[replicas]]
//! name = "hub-1"
//! listen = "127.0.0.1:7443"
//!
//! [[sites]]
//! name = "osl-1"
//!
//! # Optional: TLS on every listener and per-site NATS users, from the
//! # files `dv-hub pki init` wrote (relative to this file's directory).
//! [tls]
//! dir = "pki"
//!
//! # Optional: OIDC users (ADR 0013). Without it only service tokens and
//! # the bootstrap token authenticate.
//! [identity]
//! issuer = "https://id.example.com"
//! client_id = "dataverket"
//! # audience = "dataverket"          # default: client_id
//! # user_claim = "email"             # the claim naming the user
//! # scopes = ["openid", "email", "profile"]
//! # ca_file = "issuer-ca.pem"        # extra CA for the issuer's TLS
//! platform_operators = ["user:alice@example.com"]
//!
//! # Optional: per-principal API rate limits (token bucket).
//! [limits]
//! requests_per_second = 20
//! burst = 40
//! ```

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use dv_protocol::SiteName;
use serde::Deserialize;

/// The JetStream domain of the hub cluster; sites reach the hub's streams
/// through `$JS.hub.API`.
pub const HUB_DOMAIN: &str = dv_protocol::jetstream::HUB_DOMAIN;

/// Why `hub.toml` was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML does not parse or does not fit the schema.
    #[error("{path}: {detail}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said (line and column included).
        detail: String,
    },
    /// A value parses but breaks a rule.
    #[error("{path}: {field}: {detail}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The offending field.
        field: String,
        /// What is wrong and what to do.
        detail: String,
    },
}

/// The whole hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Where the replicas keep their read models (one subdirectory each)
    /// and the nodes their JetStream stores, unless a node says otherwise.
    pub data_dir: PathBuf,
    /// The file holding the API token; `None` only when `insecure_no_token`
    /// is set, for a loopback lab.
    pub token_file: Option<PathBuf>,
    /// The nats-server nodes of the hub cluster.
    pub nats: Vec<NatsNode>,
    /// The `dv-hub` replicas.
    pub replicas: Vec<Replica>,
    /// The sites federated by this hub.
    pub sites: Vec<SiteName>,
    /// `[tls]`: when set, TLS on every listener and NATS users with
    /// passwords (see [`crate::pki`]); when absent, everything is plain.
    pub tls: Option<Tls>,
    /// `[identity]`: OIDC users and bootstrap platform operators.
    pub identity: Option<Identity>,
    /// `[limits]`: API rate limits.
    pub limits: Limits,
}

/// `[identity]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The OIDC issuer URL.
    pub issuer: String,
    /// The public client `dvid login` uses.
    pub client_id: String,
    /// The `aud` tokens must carry (default: `client_id`).
    pub audience: String,
    /// The claim naming the user (default `email`).
    pub user_claim: String,
    /// The scopes `dvid login` asks for.
    pub scopes: Vec<String>,
    /// Extra CA certificates for the issuer's TLS, absolute.
    pub ca_file: Option<PathBuf>,
    /// Subjects bound as platform-operator by this file (not revocable
    /// through the API).
    pub platform_operators: Vec<String>,
}

/// `[limits]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Tokens refilled per second, per principal.
    #[serde(default = "default_rps")]
    pub requests_per_second: u32,
    /// The most tokens a principal can save up.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_rps() -> u32 {
    20
}

fn default_burst() -> u32 {
    40
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            requests_per_second: default_rps(),
            burst: default_burst(),
        }
    }
}

/// `[tls]`
#[derive(Debug, Clone)]
pub struct Tls {
    /// The directory `dv-hub pki init` wrote, absolute (a relative `dir` is
    /// taken from `hub.toml`'s directory, so nats-server, started
    /// elsewhere, finds the same files).
    pub dir: PathBuf,
}

impl Tls {
    /// Where each file is.
    pub fn layout(&self) -> crate::pki::Layout {
        crate::pki::Layout::new(&self.dir)
    }
}

/// One nats-server node of the hub cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsNode {
    /// `server_name`; unique.
    pub name: String,
    /// The client listener the replicas connect to.
    pub client: SocketAddr,
    /// The cluster (route) listener.
    pub cluster: SocketAddr,
    /// The leaf-node listener sites connect to.
    pub leaf: SocketAddr,
    /// The address sites are told to reconnect to (`host:port`); default
    /// `leaf`. Set it to the name sites must use behind NAT or a proxy.
    #[serde(default)]
    pub leaf_advertise: Option<String>,
    /// The HTTP monitoring listener, if any.
    #[serde(default)]
    pub monitor: Option<SocketAddr>,
    /// The JetStream store; default `<data_dir>/nats/<name>`.
    #[serde(default)]
    pub store_dir: Option<PathBuf>,
}

/// One `dv-hub` replica.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replica {
    /// Its name; unique.
    pub name: String,
    /// Where it serves the API.
    pub listen: SocketAddr,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    hub: RawHub,
    #[serde(default)]
    nats: Vec<NatsNode>,
    #[serde(default)]
    replicas: Vec<Replica>,
    #[serde(default)]
    sites: Vec<RawSite>,
    #[serde(default)]
    tls: Option<RawTls>,
    #[serde(default)]
    identity: Option<RawIdentity>,
    #[serde(default)]
    limits: Limits,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    issuer: String,
    client_id: String,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    user_claim: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    platform_operators: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHub {
    data_dir: PathBuf,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    insecure_no_token: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: String,
}

impl HubConfig {
    /// Reads and validates `path`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates `text` (read from `path`, for messages).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: Raw = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        let invalid = |field: &str, detail: String| ConfigError::Invalid {
            path: path.to_owned(),
            field: field.to_owned(),
            detail,
        };
        if raw.nats.is_empty() {
            return Err(invalid(
                "nats",
                "at least one [[nats]] node is needed (three for a replicated hub)".into(),
            ));
        }
        if raw.nats.len() == 2 {
            return Err(invalid(
                "nats",
                "two nodes cannot elect a leader after losing one; use one or three".into(),
            ));
        }
        unique(raw.nats.iter().map(|n| n.name.as_str()))
            .map_err(|name| invalid("nats.name", format!("{name:?} appears twice")))?;
        for node in &raw.nats {
            dv_protocol::validate_token("node name", &node.name).map_err(|e| {
                invalid(
                    "nats.name",
                    format!(
                        "{:?}: {e} (it becomes a server name and a directory)",
                        node.name
                    ),
                )
            })?;
        }
        if raw.replicas.is_empty() {
            return Err(invalid(
                "replicas",
                "at least one [[replicas]] entry is needed".into(),
            ));
        }
        unique(raw.replicas.iter().map(|r| r.name.as_str()))
            .map_err(|name| invalid("replicas.name", format!("{name:?} appears twice")))?;
        for replica in &raw.replicas {
            dv_protocol::validate_token("replica name", &replica.name)
                .map_err(|e| invalid("replicas.name", format!("{:?}: {e}", replica.name)))?;
        }
        let mut sites = Vec::with_capacity(raw.sites.len());
        for site in raw.sites {
            let name = SiteName::new(&site.name)
                .map_err(|e| invalid("sites.name", format!("{:?}: {e}", site.name)))?;
            if name.is_hub() {
                return Err(invalid(
                    "sites.name",
                    "\"hub\" is the hub's own name, not a site".into(),
                ));
            }
            sites.push(name);
        }
        unique(sites.iter().map(SiteName::as_str))
            .map_err(|name| invalid("sites.name", format!("{name:?} appears twice")))?;
        let token_file = match (raw.hub.token_file, raw.hub.insecure_no_token) {
            (Some(f), false) => Some(f),
            (None, true) => None,
            (Some(_), true) => {
                return Err(invalid(
                    "hub.insecure_no_token",
                    "set either token_file or insecure_no_token, not both".into(),
                ));
            }
            (None, false) => {
                return Err(invalid(
                    "hub.token_file",
                    "the API requires a token: name the file holding it \
                     (or set insecure_no_token = true for a loopback lab)"
                        .into(),
                ));
            }
        };
        let tls = match raw.tls {
            Some(t) if t.dir.as_os_str().is_empty() => {
                return Err(invalid(
                    "tls.dir",
                    "name the directory `dv-hub pki init` wrote".into(),
                ));
            }
            Some(t) => {
                let joined = path.parent().unwrap_or(Path::new("")).join(&t.dir);
                Some(Tls {
                    dir: std::path::absolute(&joined).unwrap_or(joined),
                })
            }
            None => None,
        };
        let base = path.parent().unwrap_or(Path::new(""));
        let identity = raw
            .identity
            .map(|i| identity(i, base))
            .transpose()
            .map_err(|(field, detail)| invalid(field, detail))?;
        if raw.limits.requests_per_second == 0 || raw.limits.burst == 0 {
            return Err(invalid(
                "limits",
                "requests_per_second and burst must be at least 1".into(),
            ));
        }
        Ok(Self {
            data_dir: raw.hub.data_dir,
            token_file,
            nats: raw.nats,
            replicas: raw.replicas,
            sites,
            tls,
            identity,
            limits: raw.limits,
        })
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NatsNode> {
        self.nats.iter().find(|n| n.name == name)
    }

    /// The replica called `name`.
    pub fn replica(&self, name: &str) -> Option<&Replica> {
        self.replicas.iter().find(|r| r.name == name)
    }

    /// A node's JetStream store.
    pub fn store_dir(&self, node: &NatsNode) -> PathBuf {
        node.store_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("nats").join(&node.name))
    }

    /// A replica's own directory (its read model).
    pub fn replica_dir(&self, replica: &Replica) -> PathBuf {
        self.data_dir.join("replicas").join(&replica.name)
    }

    /// The client URLs of every node, for the replicas' NATS client.
    pub fn client_urls(&self) -> Vec<String> {
        self.nats
            .iter()
            .map(|n| format!("nats://{}", n.client))
            .collect()
    }

    /// How many copies the hub's streams and KV buckets keep.
    pub fn stream_replicas(&self) -> usize {
        self.nats.len().min(3)
    }
}

/// Checks `[identity]` and fills its defaults; relative `ca_file` is taken
/// from `hub.toml`'s directory.
fn identity(raw: RawIdentity, base: &Path) -> Result<Identity, (&'static str, String)> {
    // Kept exactly as written: tokens must carry this very `iss` (some
    // issuers end theirs with a slash).
    let issuer = raw.issuer.clone();
    if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
        return Err((
            "identity.issuer",
            format!("{:?} is not an http(s) URL", raw.issuer),
        ));
    }
    if raw.client_id.trim().is_empty() {
        return Err(("identity.client_id", "name the OIDC client".into()));
    }
    let audience = raw.audience.unwrap_or_else(|| raw.client_id.clone());
    let user_claim = raw.user_claim.unwrap_or_else(|| "email".to_owned());
    if user_claim.is_empty() {
        return Err(("identity.user_claim", "name a claim, such as email".into()));
    }
    for subject in &raw.platform_operators {
        dv_protocol::auth::validate_subject(subject)
            .map_err(|e| ("identity.platform_operators", e.to_string()))?;
    }
    let ca_file = raw.ca_file.map(|f| {
        let joined = base.join(f);
        std::path::absolute(&joined).unwrap_or(joined)
    });
    Ok(Identity {
        issuer,
        client_id: raw.client_id,
        audience,
        user_claim,
        scopes: raw
            .scopes
            .unwrap_or_else(|| ["openid", "email", "profile"].map(str::to_owned).to_vec()),
        ca_file,
        platform_operators: raw.platform_operators,
    })
}

fn unique<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(name.to_owned());
        }
    }
    Ok(())
}

/// A three-node hub with two sites, for tests.
#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) const THREE: &str = r#"
[hub]
data_dir = "/var/lib/dv-hub"
token_file = "/etc/dv-hub/token"

[[nats]]
name = "hub-1"
client = "127.0.0.1:4222"
cluster = "127.0.0.1:6222"
leaf = "127.0.0.1:7422"
[[nats]]
name = "hub-2"
client = "127.0.0.1:4223"
cluster = "127.0.0.1:6223"
leaf = "127.0.0.1:7423"
[[nats]]
name = "hub-3"
client = "127.0.0.1:4224"
cluster = "127.0.0.1:6224"
leaf = "127.0.0.1:7424"

[[replicas]]
name = "r1"
listen = "127.0.0.1:7443"

[[sites]]
name = "osl-1"
[[sites]]
name = "bgo-1"
"#;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::tests_support::THREE;
    use super::*;

    fn parse(text: &str) -> Result<HubConfig, ConfigError> {
        HubConfig::parse(text, Path::new("hub.toml"))
    }

    #[test]
    fn a_three_node_hub_parses() {
        let c = parse(THREE).unwrap();
        assert_eq!(c.nats.len(), 3);
        assert_eq!(c.stream_replicas(), 3);
        assert_eq!(c.sites[1].as_str(), "bgo-1");
        assert_eq!(
            c.store_dir(c.node("hub-2").unwrap()),
            Path::new("/var/lib/dv-hub/nats/hub-2")
        );
        assert_eq!(c.client_urls()[2], "nats://127.0.0.1:4224");
        assert!(c.tls.is_none());
    }

    #[test]
    fn tls_dir_is_relative_to_the_file() {
        let text = format!("{THREE}\n[tls]\ndir = \"pki\"\n");
        let c = HubConfig::parse(&text, Path::new("/etc/dv-hub/hub.toml")).unwrap();
        assert_eq!(c.tls.unwrap().dir, Path::new("/etc/dv-hub/pki"));
        let e = parse(&format!("{THREE}\n[tls]\ndir = \"\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls.dir"), "{e}");
    }

    #[test]
    fn bad_configs_name_the_field() {
        let two = THREE.replacen("name = \"hub-3\"", "name = \"hub-2\"", 1);
        let e = parse(&two).unwrap_err().to_string();
        assert!(e.contains("nats.name") && e.contains("twice"), "{e}");
        let hub_site = THREE.replace("name = \"bgo-1\"", "name = \"hub\"");
        let e = parse(&hub_site).unwrap_err().to_string();
        assert!(e.contains("sites.name"), "{e}");
        let no_token = THREE.replace("token_file = \"/etc/dv-hub/token\"", "");
        let e = parse(&no_token).unwrap_err().to_string();
        assert!(e.contains("hub.token_file"), "{e}");
        let typo = THREE.replace("data_dir", "datadir");
        let e = parse(&typo).unwrap_err().to_string();
        assert!(e.contains("datadir"), "{e}");
        let bad_site = THREE.replace("osl-1", "Osl_1");
        let e = parse(&bad_site).unwrap_err().to_string();
        assert!(e.contains("sites.name"), "{e}");
    }

    #[test]
    fn identity_and_limits() {
        let c = parse(THREE).unwrap();
        assert!(c.identity.is_none());
        assert_eq!(c.limits, Limits::default());
        let text = format!(
            "{THREE}\n[identity]\nissuer = \"https://id.example.com/\"\nclient_id = \"dv\"\n\
             ca_file = \"ca.pem\"\nplatform_operators = [\"user:alice@example.com\"]\n\
             [limits]\nrequests_per_second = 5\n"
        );
        let c = HubConfig::parse(&text, Path::new("/etc/dv-hub/hub.toml")).unwrap();
        let i = c.identity.unwrap();
        assert_eq!(i.issuer, "https://id.example.com/");
        assert_eq!(i.audience, "dv");
        assert_eq!(i.user_claim, "email");
        assert_eq!(i.scopes, ["openid", "email", "profile"]);
        assert_eq!(i.ca_file.unwrap(), Path::new("/etc/dv-hub/ca.pem"));
        assert_eq!(c.limits.requests_per_second, 5);
        assert_eq!(c.limits.burst, 40);
        let bad = text.replace("user:alice@example.com", "alice");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains("identity.platform_operators"), "{e}");
        let typo = text.replace("client_id", "clientid");
        assert!(parse(&typo).unwrap_err().to_string().contains("clientid"));
        let typo = text.replace("requests_per_second", "rps");
        assert!(parse(&typo).unwrap_err().to_string().contains("rps"));
        let zero = text.replace("requests_per_second = 5", "requests_per_second = 0");
        assert!(parse(&zero).unwrap_err().to_string().contains("limits"));
    }
}
