//! `dv-hub nats-config --node <name>`: the nats-server configuration of one
//! hub node, generated from `hub.toml` so the cluster's routes, the
//! JetStream domain and the leaf listener cannot disagree between nodes.
//!
//! The leaf listener's `advertise` is always set: without it a site's leaf
//! node learns the hub's own listener address from INFO and reconnects
//! around whatever sits in between (a load balancer, a proxy, a partition
//! test). It defaults to the listener itself.
//!
//! With `[tls]` (ADR 0012) the node also gets:
//! - `tls {}` on the client listener (the replicas trust the hub CA);
//! - `cluster { tls { verify: true } }`: routes are mutual TLS with the
//!   nodes' own certificates, so only a holder of a CA-issued node key
//!   joins the cluster;
//! - `leafnodes { tls {} }`;
//! - `authorization { users }`: `dv-hub` (the replicas; client connections
//!   only, every subject) and one `site-<name>` per site (leaf connections
//!   only) with the least-privilege [`site_permissions`]. The passwords are
//!   read from the PKI directory and written into the text, so the rendered
//!   file is a secret too.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use dv_protocol::SiteName;
use dv_protocol::jetstream::conf_quote as quote;

use crate::config::{HUB_DOMAIN, HubConfig, NatsNode};
use crate::pki::{self, PkiError};

/// The hub node's memory budget for JetStream.
const MAX_MEMORY_STORE: &str = "256MB";
/// The hub node's disk budget for JetStream.
const MAX_FILE_STORE: &str = "16GB";

/// How long a TLS handshake may take on any listener, in seconds
/// (nats-server's default of 2 s is short for a site on a slow uplink).
const TLS_TIMEOUT_SECS: u32 = 5;

/// What a site's leaf-node user may move across the leaf link. Each entry
/// and why it is needed: ADR 0012.
///
/// Direction (verified against nats-server 2.12): for a leaf connection,
/// `publish` is what the site may send *up* to the hub and `subscribe`
/// what it may receive *from* the hub (the hub honours the site's interest
/// only there). The hub also sends both lists to the site in INFO
/// (`export`/`import`), which then enforces them itself; the hub enforces
/// them regardless, so a modified site server gains nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePermissions {
    /// Site to hub.
    pub publish: Vec<String>,
    /// Hub to site.
    pub subscribe: Vec<String>,
}

/// The permissions of `site`'s leaf-node user.
pub fn site_permissions(site: &SiteName) -> SitePermissions {
    let own = format!("dv.{site}.>");
    let site_stream = crate::streams::site_event_stream(site);
    let consumer = dv_protocol::jetstream::hub_command_consumer(site);
    SitePermissions {
        publish: vec![
            // Events, heartbeats, and the deliveries of the hub's source
            // of DV_EVT_<SITE> (delivery prefix dv.<site>.hub.src).
            own.clone(),
            // Replies to the hub's JetStream API requests into the site's
            // domain (the source consumer's create).
            "$JSC.R.*".to_owned(),
            // The agent's durable pull consumer on DV_HUB_CMD
            // (`dv-agent-<site>`): created with a filter that the server
            // checks against the subject (the site's own commands only),
            // then read, inspected and acknowledged by name.
            format!(
                "$JS.{HUB_DOMAIN}.API.CONSUMER.CREATE.{}.*.dv.{site}.*.cmd.>",
                crate::streams::COMMANDS
            ),
            format!(
                "$JS.{HUB_DOMAIN}.API.CONSUMER.MSG.NEXT.{}.{consumer}",
                crate::streams::COMMANDS
            ),
            format!(
                "$JS.{HUB_DOMAIN}.API.CONSUMER.INFO.{}.{consumer}",
                crate::streams::COMMANDS
            ),
            // Acks, in both reply-subject forms (with and without domain
            // and account hash).
            format!("$JS.ACK.{}.{consumer}.>", crate::streams::COMMANDS),
            format!(
                "$JS.ACK.{HUB_DOMAIN}.*.{}.{consumer}.>",
                crate::streams::COMMANDS
            ),
        ],
        subscribe: vec![
            // The agent's inbox (its client's inbox prefix is
            // `dv.<site>.inbox`): pulled commands and their heartbeats.
            own,
            // Replies to the site's JetStream API requests on the hub.
            "$JSC.R.*".to_owned(),
            // Flow-control answers from the hub to the site's consumer
            // feeding DV_HUB_EVT.
            format!("$JS.FC.{site_stream}.>"),
            // The hub's JetStream API requests into the site's domain.
            format!("$JS.{site}.API.>"),
        ],
    }
}

/// Why a node's configuration could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsConfigError {
    /// A password of the PKI could not be read.
    #[error("[tls]: cannot read the NATS passwords (run `dv-hub pki init` first?)")]
    Secret(#[source] PkiError),
    /// A certificate or key the configuration names is missing.
    #[error("[tls]: {0} is missing (run `dv-hub pki init`, or `--force` to re-issue)")]
    Missing(PathBuf),
}

/// The configuration text of `node`. With `[tls]` this reads the NATS
/// passwords from the PKI directory and checks the node's files exist.
pub fn render(config: &HubConfig, node: &NatsNode) -> Result<String, NatsConfigError> {
    let secured = match &config.tls {
        None => None,
        Some(tls) => {
            let layout = tls.layout();
            for file in [
                layout.ca_cert(),
                layout.node_cert(&node.name),
                layout.node_key(&node.name),
            ] {
                if !file.is_file() {
                    return Err(NatsConfigError::Missing(file));
                }
            }
            let hub = pki::read_secret(&layout.hub_password()).map_err(NatsConfigError::Secret)?;
            let mut sites = Vec::with_capacity(config.sites.len());
            for site in &config.sites {
                let secret = pki::read_secret(&layout.site_password(site))
                    .map_err(NatsConfigError::Secret)?;
                sites.push((site.clone(), secret));
            }
            Some(Secured { layout, hub, sites })
        }
    };
    Ok(render_with(config, node, secured.as_ref()))
}

/// What `[tls]` adds, loaded.
struct Secured {
    layout: pki::Layout,
    hub: pki::Secret,
    sites: Vec<(SiteName, pki::Secret)>,
}

fn render_with(config: &HubConfig, node: &NatsNode, secured: Option<&Secured>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "# nats-server configuration of hub node {}.\n\
         # Generated by `dv-hub nats-config` from hub.toml; regenerate, do not edit.",
        node.name
    );
    let _ = writeln!(out, "server_name: {}", quote(&node.name));
    let _ = writeln!(out, "listen: {}", quote(&node.client.to_string()));
    if let Some(monitor) = node.monitor {
        let _ = writeln!(out, "http: {}", quote(&monitor.to_string()));
    }
    let _ = writeln!(out, "jetstream {{");
    let _ = writeln!(out, "  domain: {}", quote(HUB_DOMAIN));
    let _ = writeln!(
        out,
        "  store_dir: {}",
        quote(&config.store_dir(node).display().to_string())
    );
    let _ = writeln!(out, "  max_memory_store: {MAX_MEMORY_STORE}");
    let _ = writeln!(out, "  max_file_store: {MAX_FILE_STORE}");
    let _ = writeln!(out, "}}");
    if let Some(s) = secured {
        let cert = s.layout.node_cert(&node.name);
        let key = s.layout.node_key(&node.name);
        tls_block(&mut out, "", &cert, &key, None);
        authorization(&mut out, s);
    }
    if config.nats.len() > 1 {
        let _ = writeln!(out, "cluster {{");
        let _ = writeln!(out, "  name: {}", quote(HUB_DOMAIN));
        let _ = writeln!(out, "  listen: {}", quote(&node.cluster.to_string()));
        let _ = writeln!(out, "  routes: [");
        for peer in &config.nats {
            let _ = writeln!(
                out,
                "    {}",
                quote(&format!("nats-route://{}", peer.cluster))
            );
        }
        let _ = writeln!(out, "  ]");
        if let Some(s) = secured {
            let cert = s.layout.node_cert(&node.name);
            let key = s.layout.node_key(&node.name);
            tls_block(&mut out, "  ", &cert, &key, Some(&s.layout.ca_cert()));
        }
        let _ = writeln!(out, "}}");
    }
    let advertise = node
        .leaf_advertise
        .clone()
        .unwrap_or_else(|| node.leaf.to_string());
    let _ = writeln!(out, "leafnodes {{");
    let _ = writeln!(out, "  listen: {}", quote(&node.leaf.to_string()));
    let _ = writeln!(out, "  advertise: {}", quote(&advertise));
    if let Some(s) = secured {
        let cert = s.layout.node_cert(&node.name);
        let key = s.layout.node_key(&node.name);
        tls_block(&mut out, "  ", &cert, &key, None);
    }
    let _ = writeln!(out, "}}");
    out
}

/// A `tls {}` block; `verify_with` turns on mutual TLS against that CA.
fn tls_block(out: &mut String, indent: &str, cert: &Path, key: &Path, verify_with: Option<&Path>) {
    let path = |p: &Path| quote(&p.display().to_string());
    let _ = writeln!(out, "{indent}tls {{");
    let _ = writeln!(out, "{indent}  cert_file: {}", path(cert));
    let _ = writeln!(out, "{indent}  key_file: {}", path(key));
    if let Some(ca) = verify_with {
        let _ = writeln!(out, "{indent}  ca_file: {}", path(ca));
        let _ = writeln!(out, "{indent}  verify: true");
    }
    let _ = writeln!(out, "{indent}  timeout: {TLS_TIMEOUT_SECS}");
    let _ = writeln!(out, "{indent}}}");
}

/// The users: the replicas' and one per site.
fn authorization(out: &mut String, s: &Secured) {
    let list = |items: &[String]| {
        items
            .iter()
            .map(|i| quote(i))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "authorization {{");
    let _ = writeln!(out, "  users: [");
    // The replicas: every subject, but only as a client, so a leaked
    // password cannot be used to attach a leaf node with full rights.
    let _ = writeln!(
        out,
        "    {{ user: {}, password: {}, allowed_connection_types: [\"STANDARD\"] }}",
        quote(pki::HUB_USER),
        quote(s.hub.expose())
    );
    for (site, secret) in &s.sites {
        let perms = site_permissions(site);
        let _ = writeln!(
            out,
            "    {{ user: {}, password: {}, allowed_connection_types: [\"LEAFNODE\"],",
            quote(&pki::site_user(site)),
            quote(secret.expose())
        );
        let _ = writeln!(out, "      permissions: {{");
        let _ = writeln!(
            out,
            "        publish: {{ allow: [ {} ] }}",
            list(&perms.publish)
        );
        let _ = writeln!(
            out,
            "        subscribe: {{ allow: [ {} ] }}",
            list(&perms.subscribe)
        );
        let _ = writeln!(out, "      }}");
        let _ = writeln!(out, "    }}");
    }
    let _ = writeln!(out, "  ]");
    let _ = writeln!(out, "}}");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn every_node_lists_every_route_and_its_own_listeners() {
        let c = HubConfig::parse(crate::config::tests_support::THREE, Path::new("h.toml")).unwrap();
        let text = render(&c, c.node("hub-2").unwrap()).unwrap();
        assert!(text.contains("server_name: \"hub-2\"\n"), "{text}");
        assert!(!text.contains("tls"), "{text}");
        assert!(!text.contains("authorization"), "{text}");
        assert!(text.contains("listen: \"127.0.0.1:4223\"\n"), "{text}");
        assert!(text.contains("  domain: \"hub\"\n"), "{text}");
        assert!(text.contains("  listen: \"127.0.0.1:6223\"\n"), "{text}");
        for port in [6222, 6223, 6224] {
            assert!(
                text.contains(&format!("\"nats-route://127.0.0.1:{port}\"")),
                "{text}"
            );
        }
        assert!(text.contains("  advertise: \"127.0.0.1:7423\"\n"), "{text}");
        assert!(
            text.contains("store_dir: \"/var/lib/dv-hub/nats/hub-2\""),
            "{text}"
        );
    }

    #[test]
    fn tls_secures_every_listener_and_names_each_site_user() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{}\n[tls]\ndir = \"pki\"\n",
            crate::config::tests_support::THREE
        );
        let c = HubConfig::parse(&text, &dir.path().join("hub.toml")).unwrap();
        let e = render(&c, c.node("hub-1").unwrap()).unwrap_err();
        assert!(e.to_string().contains("pki init"), "{e}");
        pki::init(&c, &dir.path().join("pki"), false).unwrap();
        let text = render(&c, c.node("hub-1").unwrap()).unwrap();
        let pki_dir = dir.path().join("pki");
        // Client listener, routes (mutual), leaf listener.
        assert_eq!(text.matches("tls {").count(), 3, "{text}");
        assert_eq!(text.matches("verify: true").count(), 1, "{text}");
        assert!(
            text.contains(&format!(
                "cert_file: \"{}/nats/hub-1.pem\"",
                pki_dir.display()
            )),
            "{text}"
        );
        assert!(
            text.contains("user: \"dv-hub\"") && text.contains("[\"STANDARD\"]"),
            "{text}"
        );
        assert!(text.contains("user: \"site-osl-1\""), "{text}");
        assert!(
            text.contains("\"$JS.hub.API.CONSUMER.CREATE.DV_HUB_CMD.*.dv.bgo-1.*.cmd.>\""),
            "{text}"
        );
        let password = pki::read_secret(
            &pki::Layout::new(&pki_dir).site_password(&SiteName::new("bgo-1").unwrap()),
        )
        .unwrap();
        assert!(text.contains(password.expose()), "{text}");
    }

    #[test]
    fn a_site_may_move_only_its_own_subjects() {
        let p = site_permissions(&SiteName::new("osl-1").unwrap());
        for subject in p.publish.iter().chain(&p.subscribe) {
            assert!(
                subject.starts_with("dv.osl-1.")
                    || subject.starts_with("$JSC.R.")
                    || subject.starts_with("$JS.FC.")
                    || subject.starts_with("$JS.osl-1.API.")
                    || subject.contains(".dv.osl-1.")
                    || subject.contains(".dv-agent-osl-1"),
                "{subject}"
            );
        }
    }
}
