//! `[boot]` and `[tftp]`: wire values to [`Boot`] and [`Tftp`], with
//! defaults derived from `[site]`, `[management]` and `[http]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::error::Report;
use super::values::socket;
use super::{Authority, Boot, Management, Tftp, wire};
use crate::boot::BootState;

/// `boot.firmware_dir` when unset: where Debian's `ipxe` package puts
/// undionly.kpxe and snponly.efi.
pub(crate) const DEFAULT_FIRMWARE_DIR: &str = "/usr/lib/ipxe";
/// The TFTP port.
const TFTP_PORT: u16 = 69;

fn check<T>(report: &mut Report, field: &str, parsed: Result<T, String>) -> Option<T> {
    parsed.map_err(|msg| report.push(field, msg)).ok()
}

/// `None` when a value failed (and was reported) or a section it derives a
/// default from failed.
pub(crate) fn boot(
    report: &mut Report,
    w: &wire::Boot,
    base_dir: &Path,
    data_dir: Option<&Path>,
    management: Option<&Management>,
    http_port: Option<u16>,
) -> Option<Boot> {
    let http_url = match &w.http_url {
        Some(url) => check(report, "boot.http_url", http_url(url)),
        None => match (management, http_port) {
            (Some(m), Some(port)) => Some(format!("http://{}:{port}", m.bootstrap_address)),
            _ => None,
        },
    };
    let dir = |report: &mut Report, field: &str, value: &Option<String>| match value {
        Some(text) if text.is_empty() => check(report, field, Err(format!("{field} is empty"))),
        // Relative to the config file, like site.data_dir.
        Some(text) => {
            let joined = base_dir.join(text);
            Some(Some(std::path::absolute(&joined).unwrap_or(joined)))
        }
        None => Some(None),
    };
    let firmware_dir = dir(report, "boot.firmware_dir", &w.firmware_dir);
    let artifacts_dir = dir(report, "boot.artifacts_dir", &w.artifacts_dir);
    let default_state = match &w.default_state {
        None => Some(BootState::Discover),
        Some(text) => check(
            report,
            "boot.default_state",
            text.parse::<BootState>().and_then(|s| match s {
                BootState::Install => Err(
                    "\"install\" needs per-machine kernel and initrd, so it cannot be the \
                     default; use discover, local or rescue"
                        .to_owned(),
                ),
                BootState::Wipe => Err(
                    "\"wipe\" erases disks, so it is never a default: only a deprovisioning \
                     task sets it, for its machine; use discover, local or rescue"
                        .to_owned(),
                ),
                s => Ok(s),
            }),
        ),
    };
    let artifacts_dir = match artifacts_dir? {
        Some(dir) => dir,
        None => data_dir?.join("artifacts"),
    };
    Some(Boot {
        http_url: http_url?,
        firmware_dir: firmware_dir?.unwrap_or_else(|| PathBuf::from(DEFAULT_FIRMWARE_DIR)),
        artifacts_dir,
        default_state: default_state?,
    })
}

pub(crate) fn tftp(
    report: &mut Report,
    w: &wire::Tftp,
    authority: Option<Authority>,
    management: Option<&Management>,
) -> Option<Tftp> {
    let listen = match &w.listen {
        Some(text) => check(report, "tftp.listen", socket(text, Some(TFTP_PORT))),
        // Like DHCP and DNS, TFTP belongs to the bootstrap address.
        None => management.map(|m| SocketAddr::new(m.bootstrap_address.into(), TFTP_PORT)),
    };
    Some(Tftp {
        listen: listen?,
        enabled: w.enabled.unwrap_or(authority? == Authority::Bootstrap),
    })
}

/// `boot.http_url`: an `http://` or `https://` URL with a host and no query
/// or fragment; the trailing slash is dropped. iPXE pastes paths onto it.
pub(crate) fn http_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .ok_or_else(|| format!("{text:?} must start with http:// (or https://)"))?;
    if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{text:?} contains {c:?}"));
    }
    if text.contains(['?', '#']) {
        return Err(format!(
            "{text:?} has a query or fragment; give the base URL only"
        ));
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("{text:?} has no host"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}
