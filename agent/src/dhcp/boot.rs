//! The network-boot decision: which first stage a netboot client gets.
//!
//! The chain (shared/recipes/qemu-pxe.md): PXE firmware fetches a first stage
//! over TFTP (`undionly.kpxe` on BIOS, `snponly.efi` on x86-64 UEFI), that
//! first stage is iPXE, and iPXE asks again with user class `iPXE`; then it
//! gets the agent's entry script over TFTP (`fallback.ipxe`), which chains
//! the machine's HTTP script and boots the local disk if HTTP cannot be
//! reached, so an HTTP outage never sends an installed machine into a loop.
//! With TFTP off, iPXE gets the HTTP URL of its script directly: the
//! machine's own one when the agent knows it (a reservation), else the
//! discovery script. UEFI HTTP
//! boot (vendor class `HTTPClient`) skips TFTP and gets an HTTP URL of the
//! EFI iPXE binary (snponly.efi) directly.
//!
//! Architecture numbers are RFC 4578 §2.1 and the IANA registry that
//! extends it: 0 x86 BIOS, 6 IA32 UEFI, 7 and 9 x86-64 UEFI, 16 x86-64 UEFI
//! HTTP. A TFTP boot sets siaddr, option 66 (RFC 2132 §9.4), option 67 and
//! the `file` header field to the same server and file; an HTTP boot sets
//! option 67 and `file` to the URL and leaves siaddr and option 66 empty, so
//! no client can combine one answer's server with another's file.
//!
//! A TFTP answer does *not* echo option 60 `PXEClient`. PXE 2.1 reserves
//! that echo for boot-server offers, which also carry option 43; UEFI's PXE
//! client (EDK2/OVMF) classifies a DHCP offer that echoes `PXEClient`
//! without option 43 as a BINL offer and gives up with "PXE-E16: No valid
//! offer received" (seen in `agent/tests/pxe_qemu.rs`). A plain DHCP offer
//! with siaddr, `file` and option 67 is what dnsmasq sends, and both OVMF and
//! iPXE ROMs boot from it.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use dv_protocol::MacAddr;

use super::classify::Firmware;

/// Where boot files and scripts are served; built by `serve` from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootOptions {
    /// The TFTP server for first stages (siaddr, option 66).
    pub tftp_server: Ipv4Addr,
    /// Base of the HTTP boot URLs, without a trailing slash:
    /// `http://<addr>:<port>`.
    pub http_base: String,
    /// First stage for x86 BIOS PXE (arch 0).
    pub bios_file: String,
    /// First stage for x86-64 UEFI PXE (arch 7, 9).
    pub uefi_file: String,
    /// EFI binary fetched over HTTP by UEFI HTTP boot (arch 16).
    pub http_boot_file: String,
    /// Path of the discovery script under `http_base`.
    pub discovery_path: String,
    /// What every iPXE client is given when set: the agent's entry script
    /// over TFTP (`tftp://<agent>/fallback.ipxe`), which chains to the
    /// machine's HTTP script and boots the local disk when HTTP cannot be
    /// reached. `None` (TFTP off): iPXE gets the HTTP script URL directly.
    pub ipxe_entry: Option<String>,
}

impl BootOptions {
    /// Defaults for a server at `addr` whose HTTP listener is on `http_port`.
    pub fn new(addr: Ipv4Addr, http_port: u16) -> BootOptions {
        BootOptions {
            tftp_server: addr,
            http_base: format!("http://{addr}:{http_port}"),
            bios_file: "undionly.kpxe".into(),
            uefi_file: "snponly.efi".into(),
            // snponly.efi, not ipxe.efi: HTTP boot firmware has already
            // brought the NIC up (SNP is there to use), and Debian's
            // ipxe.efi is a symlink out of /usr/lib/ipxe that the file root
            // rightly refuses to follow (found by the QEMU HTTP boot test).
            http_boot_file: "snponly.efi".into(),
            discovery_path: "/boot/discover.ipxe".into(),
            ipxe_entry: None,
        }
    }

    /// The site's boot endpoints from its config: `boot.http_url` for the
    /// scripts, and the TFTP listen address (or, when it listens on all
    /// addresses, the bootstrap address) as next-server.
    pub fn from_config(config: &crate::config::Config) -> BootOptions {
        let tftp_server = match config.tftp.listen.ip() {
            std::net::IpAddr::V4(ip) if !ip.is_unspecified() => ip,
            _ => config.management.bootstrap_address,
        };
        BootOptions {
            tftp_server,
            http_base: config.boot.http_url.trim_end_matches('/').to_owned(),
            ipxe_entry: config
                .tftp
                .enabled
                .then(|| format!("tftp://{tftp_server}/fallback.ipxe")),
            ..BootOptions::new(tftp_server, 0)
        }
    }

    /// The per-machine iPXE script: `<base>/boot/<mac>.ipxe`.
    pub fn machine_script(&self, mac: MacAddr) -> String {
        let mut url = format!("{}/boot/", self.http_base);
        let _ = write!(url, "{mac}.ipxe");
        url
    }

    /// The discovery script for machines the agent does not know.
    pub fn discovery_script(&self) -> String {
        format!("{}{}", self.http_base, self.discovery_path)
    }

    /// The EFI binary for UEFI HTTP boot.
    pub fn http_boot_url(&self) -> String {
        format!("{}/boot/{}", self.http_base, self.http_boot_file)
    }
}

/// What a reply carries for booting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// No boot options.
    None {
        /// Why not, for the log.
        reason: &'static str,
    },
    /// A first stage over TFTP.
    Tftp {
        /// siaddr and option 66.
        server: Ipv4Addr,
        /// Option 67 and `file`.
        file: String,
        /// Why this file.
        reason: &'static str,
    },
    /// A URL (iPXE script, or EFI binary for UEFI HTTP boot).
    Http {
        /// Option 67 and, when it fits, `file`.
        url: String,
        /// Option 60 echoed, for UEFI HTTP boot (`HTTPClient`).
        vendor_class: Option<&'static str>,
        /// Why this URL.
        reason: &'static str,
    },
}

/// Decides the boot answer for a client. `known` is true when the agent has
/// this machine (a reservation): it gets its own script, others discovery.
pub fn decide(boot: &BootOptions, firmware: Firmware, mac: MacAddr, known: bool) -> Boot {
    match firmware {
        Firmware::None => Boot::None {
            reason: "not a netboot client",
        },
        Firmware::Ipxe if boot.ipxe_entry.is_some() => Boot::Http {
            url: boot.ipxe_entry.clone().unwrap_or_default(),
            vendor_class: None,
            reason: "iPXE: the entry script over TFTP, with its local-disk fallback",
        },
        Firmware::Ipxe if known => Boot::Http {
            url: boot.machine_script(mac),
            vendor_class: None,
            reason: "iPXE, known machine: its script",
        },
        Firmware::Ipxe => Boot::Http {
            url: boot.discovery_script(),
            vendor_class: None,
            reason: "iPXE, unknown machine: discovery script",
        },
        Firmware::Pxe { arch } => match arch {
            None | Some(0) => Boot::Tftp {
                server: boot.tftp_server,
                file: boot.bios_file.clone(),
                reason: "PXE, x86 BIOS (arch 0 or none)",
            },
            Some(7 | 9) => Boot::Tftp {
                server: boot.tftp_server,
                file: boot.uefi_file.clone(),
                reason: "PXE, x86-64 UEFI (arch 7/9)",
            },
            Some(6) => Boot::None {
                reason: "PXE, IA32 UEFI (arch 6): no 32-bit first stage is served",
            },
            Some(_) => Boot::None {
                reason: "PXE, unsupported architecture",
            },
        },
        Firmware::HttpClient { arch } => match arch {
            Some(16) | None => Boot::Http {
                url: boot.http_boot_url(),
                vendor_class: Some("HTTPClient"),
                reason: "UEFI HTTP boot, x86-64 (arch 16)",
            },
            Some(_) => Boot::None {
                reason: "UEFI HTTP boot, unsupported architecture",
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ipxe_client_gets_the_entry_script_when_tftp_serves_it() {
        let mut boot = BootOptions::new(Ipv4Addr::new(10, 0, 0, 1), 8680);
        boot.ipxe_entry = Some("tftp://10.0.0.1/fallback.ipxe".into());
        let mac = MacAddr([0x52, 0x54, 0, 0, 0, 1]);
        for known in [false, true] {
            match decide(&boot, Firmware::Ipxe, mac, known) {
                Boot::Http { url, .. } => assert_eq!(url, "tftp://10.0.0.1/fallback.ipxe"),
                other => panic!("known={known}: {other:?}"),
            }
        }
    }
}
