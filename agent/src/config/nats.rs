//! `[nats]`: the site's local leaf-node nats-server the agent federates
//! through. Absent means no federation: the outbox just grows.
//!
//! Credentials and TLS are not configurable yet (the leaf node listens on
//! loopback only); `tls://` URLs are refused with that reason.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use dv_protocol::SiteName;

use super::error::Report;
use super::values::{duration, label, socket};
use super::{Nats, wire};

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
    Some(Nats {
        client: url?,
        domain: domain?,
        hub: hub.into_iter().collect::<Option<_>>()?,
        heartbeat_interval: heartbeat?,
        store_dir: store_dir?,
    })
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
                "{text:?}: TLS leaf connections are not supported yet (a documented TODO)"
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
