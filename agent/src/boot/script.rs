//! iPXE scripts rendered from a machine's boot state.
//!
//! The templates live in `firmware-ipxe/` and are embedded at build time, so
//! the agent binary always carries scripts that match its routes. Values
//! reach a script only after [`MachineBoot::check`] (no newlines, plain
//! artifact paths), so nothing a client or operator sends can add a line.

use minijinja::{Environment, UndefinedBehavior, context};

use super::state::{BootState, MachineBoot};

/// The templates: name and source.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "discover.ipxe",
        include_str!("../../../firmware-ipxe/discover.ipxe"),
    ),
    (
        "install.ipxe",
        include_str!("../../../firmware-ipxe/install.ipxe"),
    ),
    (
        "local.ipxe",
        include_str!("../../../firmware-ipxe/local.ipxe"),
    ),
    (
        "rescue.ipxe",
        include_str!("../../../firmware-ipxe/rescue.ipxe"),
    ),
    (
        "wipe.ipxe",
        include_str!("../../../firmware-ipxe/wipe.ipxe"),
    ),
    (
        "fallback.ipxe",
        include_str!("../../../firmware-ipxe/fallback.ipxe"),
    ),
    (
        "local-disk.inc.ipxe",
        include_str!("../../../firmware-ipxe/local-disk.inc.ipxe"),
    ),
    (
        "boot-kernel.inc.ipxe",
        include_str!("../../../firmware-ipxe/boot-kernel.inc.ipxe"),
    ),
];

/// Artifacts the discovery state boots (firmware-ipxe/discovery/build.sh
/// writes them; a site kit puts them in `<artifacts_dir>/discovery/`).
pub const DISCOVERY_KERNEL: &str = "discovery/vmlinuz";
/// See [`DISCOVERY_KERNEL`].
pub const DISCOVERY_INITRD: &str = "discovery/initrd.cpio.gz";
/// Artifacts rescue boots when the machine has no parameters of its own.
pub const RESCUE_KERNEL: &str = "rescue/vmlinuz";
/// See [`RESCUE_KERNEL`].
pub const RESCUE_INITRD: &str = "rescue/initrd.cpio.gz";
/// The kernel argument that turns the discovery environment into the wipe
/// environment (firmware-ipxe/discovery/build.sh).
pub const WIPE_ARG: &str = "dv.wipe=1";
/// Console arguments every booted kernel gets, so the serial log shows it.
const CONSOLE: &str = "console=tty0 console=ttyS0 panic=30";

/// Why a script could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// A template failed to compile or render: a bug in `firmware-ipxe/`.
    #[error("iPXE template {name} failed")]
    Template {
        /// The template.
        name: &'static str,
        /// minijinja's error.
        #[source]
        source: minijinja::Error,
    },
    /// The machine's entry cannot be rendered (e.g. install without kernel).
    #[error("boot entry of {mac} is incomplete: {detail}")]
    Entry {
        /// The machine.
        mac: String,
        /// What is wrong.
        detail: String,
    },
}

/// The compiled templates and the URL machines reach the agent at.
#[derive(Debug)]
pub struct Scripts {
    env: Environment<'static>,
    base_url: String,
}

impl Scripts {
    /// Compiles every template; `base_url` is `boot.http_url` (any trailing
    /// slash is dropped).
    pub fn new(base_url: &str) -> Result<Scripts, ScriptError> {
        let mut env = Environment::new();
        // Undefined variables are template bugs: fail loudly in tests rather
        // than render an empty URL that a machine would fetch.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|source| ScriptError::Template { name, source })?;
        }
        Ok(Scripts {
            env,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The base URL scripts point at.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The script for `boot`'s state.
    pub fn render(&self, boot: &MachineBoot) -> Result<String, ScriptError> {
        boot.check().map_err(|detail| ScriptError::Entry {
            mac: boot.mac.to_string(),
            detail,
        })?;
        let mac = boot.mac.to_string();
        let (name, kernel, initrd, cmdline) = match boot.state {
            BootState::Local => ("local.ipxe", "", "", String::new()),
            BootState::Discover => (
                "discover.ipxe",
                DISCOVERY_KERNEL,
                DISCOVERY_INITRD,
                CONSOLE.to_owned(),
            ),
            BootState::Install => (
                "install.ipxe",
                boot.install.kernel.as_deref().unwrap_or_default(),
                boot.install.initrd.as_deref().unwrap_or_default(),
                join(CONSOLE, boot.install.cmdline.as_deref()),
            ),
            BootState::Rescue => (
                "rescue.ipxe",
                boot.install.kernel.as_deref().unwrap_or(RESCUE_KERNEL),
                boot.install.initrd.as_deref().unwrap_or(RESCUE_INITRD),
                join(CONSOLE, boot.install.cmdline.as_deref()),
            ),
            // The discovery environment wipes when told to; an entry may
            // name another wipe environment of its own.
            BootState::Wipe => (
                "wipe.ipxe",
                boot.install.kernel.as_deref().unwrap_or(DISCOVERY_KERNEL),
                boot.install.initrd.as_deref().unwrap_or(DISCOVERY_INITRD),
                join(
                    &format!("{CONSOLE} {WIPE_ARG}"),
                    boot.install.cmdline.as_deref(),
                ),
            ),
        };
        let artifacts = format!("{}/artifacts", self.base_url);
        let ctx = context! {
            mac => mac.clone(),
            hostname => boot.hostname.clone(),
            state => boot.state.as_str(),
            base_url => self.base_url.clone(),
            callback_url => format!("{}/boot/{mac}/callback", self.base_url),
            kernel_url => format!("{artifacts}/{kernel}"),
            initrd_url => format!("{artifacts}/{initrd}"),
            initrd_name => initrd.rsplit('/').next().unwrap_or(initrd),
            cmdline => cmdline,
        };
        self.render_template(name, ctx)
    }

    /// The entry script (`fallback.ipxe`): chain to the per-MAC script, boot
    /// the local disk if the agent cannot be reached. iPXE fills in the MAC.
    pub fn fallback(&self) -> Result<String, ScriptError> {
        let ctx = context! {
            base_url => self.base_url.clone(),
            callback_url => format!("{}/boot/${{net0/mac}}/callback", self.base_url),
        };
        self.render_template("fallback.ipxe", ctx)
    }

    fn render_template(
        &self,
        name: &'static str,
        ctx: minijinja::Value,
    ) -> Result<String, ScriptError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map(|mut text| {
                // minijinja drops the template's final newline; iPXE wants one.
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text
            })
            .map_err(|source| ScriptError::Template { name, source })
    }
}

fn join(base: &str, extra: Option<&str>) -> String {
    match extra {
        Some(extra) if !extra.trim().is_empty() => format!("{base} {}", extra.trim()),
        _ => base.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::boot::state::InstallParams;

    const BASE: &str = "http://10.77.0.1:8680/";

    fn machine(state: BootState) -> MachineBoot {
        MachineBoot {
            mac: "52:54:00:00:77:01".parse().unwrap(),
            state,
            hostname: Some("node-01".into()),
            install: InstallParams {
                kernel: Some("talos/vmlinuz-amd64".into()),
                initrd: Some("talos/initramfs-amd64.xz".into()),
                cmdline: Some("talos.platform=metal".into()),
            },
        }
    }

    fn render(state: BootState) -> String {
        Scripts::new(BASE).unwrap().render(&machine(state)).unwrap()
    }

    /// No script may ever hand a machine an interactive or looping path.
    fn assert_deterministic(script: &str) {
        assert!(script.starts_with("#!ipxe\n"), "{script}");
        for line in script.lines().map(str::trim) {
            let first = line.split_whitespace().next().unwrap_or("");
            assert!(
                !["shell", "prompt", "menu", "choose", "login"].contains(&first),
                "interactive command {line:?} in\n{script}"
            );
        }
        // Every goto jumps forward: no loops.
        let labels: Vec<(usize, &str)> = (script.lines().enumerate())
            .filter_map(|(i, l)| l.strip_prefix(':').map(|n| (i, n.trim())))
            .collect();
        for (i, line) in script.lines().enumerate() {
            if line.starts_with('#') {
                continue; // a comment, not a command
            }
            for target in line.split("goto ").skip(1) {
                let target = target.split_whitespace().next().unwrap_or("");
                let (at, _) = labels
                    .iter()
                    .find(|(_, n)| *n == target)
                    .unwrap_or_else(|| panic!("goto {target:?} has no label in\n{script}"));
                assert!(*at > i, "goto {target} jumps backwards in\n{script}");
            }
        }
        assert!(!script.contains("{{") && !script.contains("{%"), "{script}");
    }

    #[test]
    fn local_boots_the_disk_on_bios_and_uefi_and_ends_in_power_off() {
        let s = render(BootState::Local);
        assert_deterministic(&s);
        assert!(
            s.contains("iseq ${platform} efi && goto local_efi ||"),
            "{s}"
        );
        assert!(s.contains("sanboot --no-describe --drive 0x80 ||"), "{s}");
        assert!(s.contains(":local_efi\nexit 1\n"), "{s}");
        assert!(s.contains("sleep 60\npoweroff ||\nexit 1"), "{s}");
        assert!(s.contains(
            "imgfetch http://10.77.0.1:8680/boot/52:54:00:00:77:01/callback?stage=local-boot-failed"
        ));
        assert!(!s.contains("kernel "), "{s}");
    }

    #[test]
    fn discover_boots_the_discovery_environment_with_a_callback() {
        let s = render(BootState::Discover);
        assert_deterministic(&s);
        assert!(
            s.contains(
                "kernel http://10.77.0.1:8680/artifacts/discovery/vmlinuz initrd=initrd.cpio.gz \
             console=tty0 console=ttyS0 panic=30 \
             dv.callback=http://10.77.0.1:8680/boot/52:54:00:00:77:01/callback || goto fetch2"
            ),
            "{s}"
        );
        assert!(s.contains(
            "initrd http://10.77.0.1:8680/artifacts/discovery/initrd.cpio.gz || goto fetch2"
        ));
        assert!(s.contains("stage=discover-boot-failed"));
        assert!(
            !s.contains("talos"),
            "discovery ignores install parameters: {s}"
        );
    }

    #[test]
    fn install_uses_the_machine_parameters() {
        let s = render(BootState::Install);
        assert_deterministic(&s);
        assert!(s.contains("echo DV: installing 52:54:00:00:77:01 as node-01"));
        assert!(s.contains(
            "kernel http://10.77.0.1:8680/artifacts/talos/vmlinuz-amd64 initrd=initramfs-amd64.xz \
             console=tty0 console=ttyS0 panic=30 talos.platform=metal dv.callback="
        ), "{s}");
        assert!(s.contains("initrd http://10.77.0.1:8680/artifacts/talos/initramfs-amd64.xz"));
    }

    #[test]
    fn rescue_defaults_to_the_rescue_artifacts() {
        let mut m = machine(BootState::Rescue);
        m.install = InstallParams::default();
        let s = Scripts::new(BASE).unwrap().render(&m).unwrap();
        assert_deterministic(&s);
        assert!(
            s.contains("/artifacts/rescue/vmlinuz initrd=initrd.cpio.gz"),
            "{s}"
        );
        assert!(render(BootState::Rescue).contains("/artifacts/talos/vmlinuz-amd64"));
    }

    #[test]
    fn wipe_boots_the_discovery_environment_told_to_wipe() {
        let mut m = machine(BootState::Wipe);
        m.install = InstallParams::default();
        let s = Scripts::new(BASE).unwrap().render(&m).unwrap();
        assert_deterministic(&s);
        assert!(s.contains("its disks will be erased"), "{s}");
        assert!(
            s.contains(
                "kernel http://10.77.0.1:8680/artifacts/discovery/vmlinuz initrd=initrd.cpio.gz \
                 console=tty0 console=ttyS0 panic=30 dv.wipe=1 dv.callback="
            ),
            "{s}"
        );
        assert!(s.contains("stage=wipe-boot-failed"), "{s}");
    }

    #[test]
    fn fallback_chains_three_times_then_boots_the_disk() {
        let s = Scripts::new(BASE).unwrap().fallback().unwrap();
        assert_deterministic(&s);
        let chain = "chain --replace --autofree http://10.77.0.1:8680/boot/${net0/mac}.ipxe";
        assert_eq!(s.matches(chain).count(), 3, "{s}");
        assert!(s.contains(&format!("{chain} || goto local\n")), "{s}");
        assert!(s.contains("sanboot --no-describe --drive 0x80"));
        assert!(s.contains(":local_efi\nexit 1\n"));
    }

    /// The script built into the project's iPXE binaries (build-ipxe.sh).
    const EMBEDDED: &str = include_str!("../../../firmware-ipxe/embedded.ipxe");

    /// From `:local` up to `:local_failed`: how a script boots the disk.
    fn local_disk_block(script: &str) -> &str {
        let start = script.find("\n:local\n").unwrap();
        let end = script.find("\n:local_failed\n").unwrap();
        &script[start..end]
    }

    #[test]
    fn the_embedded_first_stage_is_bounded_and_boots_the_disk_like_the_templates() {
        assert_deterministic(EMBEDDED);
        // Two DHCP attempts, then three chains of the DHCP boot file (the
        // agent's fallback.ipxe), each replacing this script when it loads.
        assert_eq!(EMBEDDED.matches("\ndhcp && goto chain1 ||\n").count(), 2);
        let chain = "chain --replace --autofree ${filename}";
        assert_eq!(EMBEDDED.matches(chain).count(), 3, "{EMBEDDED}");
        assert!(EMBEDDED.contains(&format!("{chain} || goto local\n")));
        assert!(EMBEDDED.contains("isset ${filename} || goto nofile\n"));
        // The disk is booted exactly as the agent's scripts boot it.
        let fallback = Scripts::new(BASE).unwrap().fallback().unwrap();
        assert_eq!(local_disk_block(EMBEDDED), local_disk_block(&fallback));
        assert_eq!(
            local_disk_block(EMBEDDED),
            local_disk_block(&render(BootState::Local))
        );
        // ...and ends the same way, without the agent callback (no agent).
        let end = "echo DV: no bootable local disk; powering off in 60 s\nsleep 60\npoweroff ||\nexit 1\n";
        assert!(
            EMBEDDED.ends_with(&format!(":local_failed\n{end}")),
            "{EMBEDDED}"
        );
        assert!(fallback.ends_with(end), "{fallback}");
        assert!(
            !EMBEDDED.contains("http://"),
            "no agent address: {EMBEDDED}"
        );
    }

    #[test]
    fn an_incomplete_install_entry_is_an_error_not_a_script() {
        let mut m = machine(BootState::Install);
        m.install.kernel = None;
        let err = Scripts::new(BASE).unwrap().render(&m).unwrap_err();
        assert!(err.to_string().contains("needs a kernel"), "{err}");
    }
}
