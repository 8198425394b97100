//! A machine's boot state: what its next network boot runs.

use std::fmt;
use std::str::FromStr;

use dv_protocol::MacAddr;

/// What a machine boots into when it network-boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BootState {
    /// Boot the discovery environment, which reports hardware and powers off.
    Discover,
    /// Boot an installer (kernel, initrd, command line from its parameters).
    Install,
    /// Boot the local disk.
    Local,
    /// Boot a rescue environment.
    Rescue,
    /// Boot the wipe environment: it erases the machine's disks, reports
    /// `stage=wiped` and powers off. Only a deprovisioning task sets it.
    Wipe,
}

impl BootState {
    /// Every state, in documentation order.
    pub const ALL: [BootState; 5] = [
        BootState::Discover,
        BootState::Install,
        BootState::Local,
        BootState::Rescue,
        BootState::Wipe,
    ];

    /// The state's name in the store, config and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            BootState::Discover => "discover",
            BootState::Install => "install",
            BootState::Local => "local",
            BootState::Rescue => "rescue",
            BootState::Wipe => "wipe",
        }
    }
}

impl fmt::Display for BootState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BootState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BootState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a boot state; use one of discover, install, local, rescue, wipe"
                )
            })
    }
}

/// How an installer (or rescue system) is booted. Paths are relative to the
/// artifacts directory and served under `/artifacts/`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstallParams {
    /// The kernel, e.g. `talos/vmlinuz-amd64`.
    pub kernel: Option<String>,
    /// The initrd, e.g. `talos/initramfs-amd64.xz`.
    pub initrd: Option<String>,
    /// Extra kernel command line, e.g. `talos.platform=metal talos.config=...`.
    pub cmdline: Option<String>,
}

impl InstallParams {
    /// Checks what goes into an iPXE script: artifact paths are plain
    /// relative paths, and the command line is one line of printable ASCII,
    /// so no value can end the line and inject iPXE commands.
    pub fn check(&self) -> Result<(), String> {
        for (what, path) in [("kernel", &self.kernel), ("initrd", &self.initrd)] {
            if let Some(path) = path {
                check_artifact_path(what, path)?;
            }
        }
        if let Some(cmdline) = &self.cmdline
            && let Some(c) = cmdline.chars().find(|c| !(' '..='~').contains(c))
        {
            return Err(format!(
                "cmdline contains {c:?}; it must be one line of printable ASCII"
            ));
        }
        Ok(())
    }
}

/// An artifact path as scripts may name it: relative, no `..`, characters
/// that need no quoting in a URL or an iPXE command line.
pub fn check_artifact_path(what: &str, path: &str) -> Result<(), String> {
    let ok_chars = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-/+".contains(&b));
    if path.is_empty() || path.len() > 512 || !ok_chars {
        return Err(format!(
            "{what} {path:?} must be 1..=512 characters of letters, digits and . _ - + /"
        ));
    }
    if path.starts_with('/')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!(
            "{what} {path:?} must be a relative path inside the artifacts directory"
        ));
    }
    Ok(())
}

/// One machine's boot entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineBoot {
    /// The NIC it boots from.
    pub mac: MacAddr,
    /// What it boots into.
    pub state: BootState,
    /// Its host name, if known.
    pub hostname: Option<String>,
    /// Installer (or rescue) parameters.
    pub install: InstallParams,
}

impl MachineBoot {
    /// An entry for a machine the agent knows nothing about.
    pub fn unknown(mac: MacAddr, state: BootState) -> Self {
        MachineBoot {
            mac,
            state,
            hostname: None,
            install: InstallParams::default(),
        }
    }

    /// Checks the entry can be rendered: install needs a kernel and an
    /// initrd; every parameter passes [`InstallParams::check`].
    pub fn check(&self) -> Result<(), String> {
        self.install.check()?;
        if let Some(host) = &self.hostname {
            dv_protocol::validate_token("hostname", host).map_err(|e| e.to_string())?;
        }
        if self.state == BootState::Install
            && (self.install.kernel.is_none() || self.install.initrd.is_none())
        {
            return Err("state install needs a kernel and an initrd".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn states_round_trip_and_unknown_names_list_the_choices() {
        for state in BootState::ALL {
            assert_eq!(state.as_str().parse::<BootState>(), Ok(state));
        }
        assert!("disk".parse::<BootState>().unwrap_err().contains("local"));
    }

    #[test]
    fn parameters_cannot_inject_script_lines() {
        let bad = InstallParams {
            cmdline: Some("quiet\nshell".into()),
            ..InstallParams::default()
        };
        assert!(bad.check().unwrap_err().contains("printable"));
        for path in ["../x", "/etc/passwd", "a//b", "a b", "a/./b", ""] {
            assert!(check_artifact_path("kernel", path).is_err(), "{path:?}");
        }
        assert!(check_artifact_path("kernel", "talos/vmlinuz-amd64").is_ok());
        let mac: MacAddr = "52:54:00:00:00:01".parse().unwrap();
        let install = MachineBoot {
            state: BootState::Install,
            ..MachineBoot::unknown(mac, BootState::Discover)
        };
        assert!(install.check().unwrap_err().contains("kernel"));
    }
}
