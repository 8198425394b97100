//! `[nats]`: the site's local leaf-node nats-server the agent federates
//! through. Absent means no federation: the outbox just grows.
//!
//! The agent's own connection to the leaf node stays plain and
//! unauthenticated: the leaf node listens on loopback only, so `tls://`
//! URLs are refused with that reason. The leaf node's link to the hub can
//! carry a NATS user and TLS (`hub_user`, `hub_password_file`, `hub_ca`,
//! `hub_cert`, `hub_key`; ADR 0012); only `dv-agent nats-config` uses
//! them. Their paths are relative to the config file, like `data_dir`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dv_protocol::SiteName;

use super::error::Report;
use super::values::{duration, label, socket};
use super::{HubCredentials, HubTls, Nats, wire};

/// `nats.url` when unset: the leaf node's client port on loopback.
pub(crate) const DEFAULT_URL: &str = "nats://127.0.0.1:4222";
/// `nats.heartbeat_interval` when unset.
pub(crate) const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// `nats.store_dir` when unset, under `site.data_dir`.
pub(crate) const DEFAULT_STORE_DIR: &str = "nats";
/// The longest heartbeat interval accepted: beyond it a watcher cannot tell
/// a quiet site from a dead one in useful time.
const MAX_HEARTBEAT: Duration = Duration::from_secs(3600);

fn check<T>(report: &mut Report, field: &str, parsed: Result<T, String>) -> Option<T> {
    parsed.map_err(|msg| report.push(field, msg)).ok()
}

/// `None` when any value failed (each failure is reported).
pub(crate) fn nats(
    report: &mut Report,
    w: &wire::Nats,
    site: Option<&SiteName>,
    data_dir: Option<&Path>,
    base_dir: &Path,
) -> Option<Nats> {
    let url = check(
        report,
        "nats.url",
        client_url(w.url.as_deref().unwrap_or(DEFAULT_URL)),
    );
    let domain = match (&w.domain, site) {
        (Some(d), _) => check(report, "nats.domain", domain(d)),
        (None, Some(site)) => Some(site.to_string()),
        // The site name failed and was reported already.
        (None, None) => None,
    };
    let hub: Vec<Option<String>> = (w.hub.iter().enumerate())
        .map(|(i, u)| check(report, &format!("nats.hub[{i}]"), leaf_url(u)))
        .collect();
    let heartbeat = match &w.heartbeat_interval {
        None => Some(DEFAULT_HEARTBEAT),
        Some(text) => check(
            report,
            "nats.heartbeat_interval",
            duration(text).and_then(|d| {
                if d > MAX_HEARTBEAT {
                    Err(format!("{text:?} is longer than the 1h limit"))
                } else {
                    Ok(d)
                }
            }),
        ),
    };
    let store_dir = w.store_dir.as_deref().unwrap_or(DEFAULT_STORE_DIR);
    let store_dir = if store_dir.is_empty() {
        check(
            report,
            "nats.store_dir",
            Err("store_dir is empty".to_owned()),
        )
    } else {
        data_dir.map(|d| d.join(store_dir))
    };
    let file = |report: &mut Report, field: &str, text: &Option<String>| match text {
        None => Some(None),
        Some(t) if t.is_empty() => check(report, field, Err("the path is empty".to_owned())),
        Some(t) => {
            // Relative to the file, then absolute, as site.data_dir.
            let joined = base_dir.join(t);
            Some(Some(std::path::absolute(&joined).unwrap_or(joined)))
        }
    };
    let password_file = file(report, "nats.hub_password_file", &w.hub_password_file);
    let ca = file(report, "nats.hub_ca", &w.hub_ca);
    let cert = file(report, "nats.hub_cert", &w.hub_cert);
    let key = file(report, "nats.hub_key", &w.hub_key);
    let user = match (&w.hub_user, &w.hub_password_file) {
        (Some(u), Some(_)) => check(report, "nats.hub_user", hub_user(u)),
        (Some(_), None) => check(
            report,
            "nats.hub_user",
            Err("a user needs its password: set hub_password_file too".to_owned()),
        ),
        // The user `dv-hub pki init` creates for the site.
        (None, _) => site.map(|s| format!("site-{s}")),
    };
    // Checked before the credentials so both get reported.
    let hub_tls = hub_tls(report, ca?, cert?, key?);
    let hub_credentials = match password_file? {
        Some(password_file) => Some(HubCredentials {
            user: user?,
            password_file,
        }),
        None => None,
    };
    Some(Nats {
        client: url?,
        domain: domain?,
        hub: hub.into_iter().collect::<Option<_>>()?,
        heartbeat_interval: heartbeat?,
        store_dir: store_dir?,
        hub_credentials,
        hub_tls: hub_tls?,
    })
}

/// `hub_ca` with an optional `hub_cert` + `hub_key` pair.
fn hub_tls(
    report: &mut Report,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Option<Option<HubTls>> {
    let identity = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            return check(
                report,
                "nats.hub_key",
                Err("hub_cert needs its key: set hub_key too".to_owned()),
            );
        }
        (None, Some(_)) => {
            return check(
                report,
                "nats.hub_cert",
                Err("hub_key needs its certificate: set hub_cert too".to_owned()),
            );
        }
    };
    match (ca, identity) {
        (Some(ca), identity) => Some(Some(HubTls { ca, identity })),
        (None, None) => Some(None),
        (None, Some(_)) => check(
            report,
            "nats.hub_ca",
            Err(
                "a client certificate is presented only over TLS: set hub_ca to the hub CA"
                    .to_owned(),
            ),
        ),
    }
}

/// A user name that can stand in a `nats-leaf://user:password@host` URL
/// unescaped: letters, digits, `-`, `_`, `.`.
fn hub_user(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?}: a NATS user here is letters, digits, '-', '_' and '.' (e.g. site-osl-1)"
        ))
    }
}

/// `nats://<ip>:<port>`: the local leaf node's client listener.
pub(crate) fn client_url(text: &str) -> Result<SocketAddr, String> {
    let rest = match text.split_once("://") {
        Some(("nats", rest)) => rest,
        Some(("tls", _)) => {
            return Err(format!(
                "{text:?}: TLS to the leaf node is not supported yet; it listens on loopback, use nats://"
            ));
        }
        _ => return Err(format!("{text:?} is not a nats://<ip>:<port> URL")),
    };
    socket(rest.trim_end_matches('/'), Some(4222))
        .map_err(|e| format!("{text:?} is not a nats://<ip>:<port> URL: {e}"))
}

/// A JetStream domain: a name token (as site names are), not `hub`.
fn domain(text: &str) -> Result<String, String> {
    let d = label("JetStream domain", text)?;
    if d == dv_protocol::HUB {
        return Err("\"hub\" is the hub's own JetStream domain".to_owned());
    }
    Ok(d)
}

/// A hub leaf-node URL: `nats-leaf://<host>:<port>` (also `nats://`,
/// rewritten to `nats-leaf://`). The host may be a name.
pub fn leaf_url(text: &str) -> Result<String, String> {
    let rest = match text.split_once("://") {
        Some(("nats-leaf" | "nats", rest)) => rest,
        Some(("tls", _)) => {
            return Err(format!(
                "{text:?}: write nats-leaf://; TLS on the leaf link comes from nats.hub_ca"
            ));
        }
        _ => return Err(format!("{text:?} is not a nats-leaf://<host>:<port> URL")),
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} has no port; write nats-leaf://<host>:7422"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{text:?} has an invalid port {port:?}"))?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    if !host_ok {
        return Err(format!("{text:?} has an invalid host {host:?}"));
    }
    Ok(format!("nats-leaf://{host}:{port}"))
}
