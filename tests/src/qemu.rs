//! Virtual machines that network-boot inside a test's namespaces.
//!
//! A [`PxeBed`] is the smallest site: a "switch" namespace holding a bridge
//! with a tap for the VM's NIC, joined by a veth pair to an "agent" namespace
//! where the agent (or any server under test) owns the segment's gateway
//! address. [`Vm`] starts QEMU under TCG (this machine's /dev/kvm cannot run
//! firmware) with BIOS (SeaBIOS + iPXE ROM) or UEFI (OVMF's own PXE client,
//! then a first stage over TFTP), and is killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::netns::{Netns, NetnsError, veth};
use crate::process::Guarded;

/// Firmware a VM boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS; the NIC's option ROM is iPXE.
    Bios,
    /// OVMF with its built-in PXE client (the NIC's iPXE ROM removed), so the
    /// boot goes firmware PXE -> TFTP first stage -> iPXE -> HTTP.
    Uefi,
    /// OVMF with PXE switched off, so its UEFI HTTP boot runs: DHCP with
    /// vendor class HTTPClient -> first stage over HTTP -> iPXE -> HTTP.
    UefiHttp,
}

/// OVMF's code and variable-store templates (Debian package ovmf).
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// Whether QEMU and the firmware needed for `fw` are installed; prints a loud
/// skip notice naming `test` when not.
pub fn require_qemu(test: &str, fw: Firmware) -> bool {
    let mut missing = Vec::new();
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        missing.push("qemu-system-x86_64");
    }
    if fw != Firmware::Bios && !Path::new(OVMF_CODE).exists() {
        missing.push(OVMF_CODE);
    }
    if missing.is_empty() {
        return true;
    }
    eprintln!("\n!!! SKIPPED {test}: missing {} !!!\n", missing.join(", "));
    false
}

/// The namespaces of one boot segment.
#[derive(Debug)]
pub struct PxeBed {
    /// Holds the VM's tap and the bridge.
    pub switch: Netns,
    /// Holds the server side: interface [`PxeBed::SERVER_IF`].
    pub server: Netns,
}

impl PxeBed {
    /// The server-side interface name.
    pub const SERVER_IF: &'static str = "vagent";
    /// The tap QEMU attaches to.
    pub const TAP: &'static str = "tap0";

    /// Builds the bed; `server_addr` (CIDR) goes on the server interface.
    pub fn new(server_addr: &str) -> Result<PxeBed, NetnsError> {
        let switch = Netns::new("sw")?;
        let server = Netns::new("srv")?;
        switch.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "forward_delay",
            "0",
            "stp_state",
            "0",
        ])?;
        switch.ip(&["tuntap", "add", "dev", Self::TAP, "mode", "tap"])?;
        switch.ip(&["link", "set", Self::TAP, "master", "br0"])?;
        veth(&switch, "vsw0", &server, Self::SERVER_IF)?;
        switch.ip(&["link", "set", "vsw0", "master", "br0"])?;
        switch.ip(&["link", "set", "br0", "up"])?;
        switch.ip(&["link", "set", Self::TAP, "up"])?;
        server.addr_up(Self::SERVER_IF, server_addr)?;
        Ok(PxeBed { switch, server })
    }
}

/// A VM's disk and the bus it sits on.
#[derive(Debug, Clone, Copy)]
enum Disk<'a> {
    Ide(&'a Path),
    Virtio(&'a Path),
}

/// What a VM has besides its NIC: a disk, an option ROM for the NIC in
/// place of QEMU's (BIOS), a kernel and initrd to boot (BIOS).
#[derive(Debug, Default, Clone, Copy)]
struct Extras<'a> {
    disk: Option<Disk<'a>>,
    nic_rom: Option<&'a Path>,
    kernel: Option<(&'a Path, &'a Path)>,
}

/// A running VM, killed on drop.
#[derive(Debug)]
pub struct Vm {
    process: Guarded,
    /// The serial console log.
    pub serial: PathBuf,
}

impl Vm {
    /// Boots a VM with `mac` from the network on the bed's tap, serial console
    /// to `serial`. `limit` bounds its whole life (QEMU runs under `timeout`).
    pub fn netboot(
        bed: &PxeBed,
        fw: Firmware,
        mac: &str,
        serial: &Path,
        limit: Duration,
    ) -> std::io::Result<Vm> {
        Self::start(bed, fw, mac, serial, Extras::default(), limit)
    }

    /// As [`Vm::netboot`], BIOS, with `disk` (a raw image) as a virtio disk
    /// (`/dev/vda` to Linux), after the network in the boot order.
    pub fn netboot_with_virtio_disk(
        bed: &PxeBed,
        mac: &str,
        serial: &Path,
        disk: &Path,
        limit: Duration,
    ) -> std::io::Result<Vm> {
        let extras = Extras {
            disk: Some(Disk::Virtio(disk)),
            ..Extras::default()
        };
        Self::start(bed, Firmware::Bios, mac, serial, extras, limit)
    }

    /// As [`Vm::netboot`], with `disk` (a raw image) as its first hard disk;
    /// the firmware still tries the network first.
    pub fn netboot_with_disk(
        bed: &PxeBed,
        fw: Firmware,
        mac: &str,
        serial: &Path,
        disk: &Path,
        limit: Duration,
    ) -> std::io::Result<Vm> {
        let extras = Extras {
            disk: Some(Disk::Ide(disk)),
            ..Extras::default()
        };
        Self::start(bed, fw, mac, serial, extras, limit)
    }

    /// A BIOS VM whose NIC (e1000, as in [`Vm::netboot`]) has `rom` as its
    /// option ROM instead of QEMU's, and `disk` as its first hard disk; the
    /// network is still tried first. The ROM must be built for the NIC's
    /// PCI ID, 8086:100e (iPXE's `bin/8086100e.rom`). (virtio-net was the
    /// first choice, but this QEMU 7.2 runs no ROM given to virtio-net-pci
    /// with `romfile=`, not even its own default efi-virtio.rom.)
    pub fn bios_with_nic_rom(
        bed: &PxeBed,
        mac: &str,
        serial: &Path,
        disk: &Path,
        rom: &Path,
        limit: Duration,
    ) -> std::io::Result<Vm> {
        let extras = Extras {
            disk: Some(Disk::Ide(disk)),
            nic_rom: Some(rom),
            ..Extras::default()
        };
        Self::start(bed, Firmware::Bios, mac, serial, extras, limit)
    }

    /// A BIOS VM that boots `kernel` with `initrd` (QEMU's `-kernel` and
    /// `-initrd`) instead of the network, `disk` as its first hard disk,
    /// and an e1000 NIC without an option ROM. With Debian's `ipxe.lkrn`
    /// as the kernel and an iPXE script as the initrd, iPXE runs that
    /// script first, as it runs an embedded one.
    pub fn bios_with_kernel(
        bed: &PxeBed,
        mac: &str,
        serial: &Path,
        disk: &Path,
        kernel: (&Path, &Path),
        limit: Duration,
    ) -> std::io::Result<Vm> {
        let extras = Extras {
            disk: Some(Disk::Ide(disk)),
            kernel: Some(kernel),
            ..Extras::default()
        };
        Self::start(bed, Firmware::Bios, mac, serial, extras, limit)
    }

    fn start(
        bed: &PxeBed,
        fw: Firmware,
        mac: &str,
        serial: &Path,
        extras: Extras<'_>,
        limit: Duration,
    ) -> std::io::Result<Vm> {
        let Extras {
            disk,
            nic_rom,
            kernel,
        } = extras;
        let mut cmd = bed.switch.command("timeout");
        cmd.arg(limit.as_secs().to_string())
            .arg("qemu-system-x86_64")
            .args(["-machine", "q35", "-accel", "tcg", "-m", "768", "-smp", "1"])
            .args(["-nographic", "-monitor", "none", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", serial.display()))
            .args([
                "-netdev",
                &format!("tap,id=n0,ifname={},script=no,downscript=no", PxeBed::TAP),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match kernel {
            Some((kernel, initrd)) => cmd.arg("-kernel").arg(kernel).arg("-initrd").arg(initrd),
            None => cmd.args(["-boot", "n"]),
        };
        match fw {
            Firmware::Bios => {
                match disk {
                    Some(Disk::Ide(disk)) => {
                        cmd.arg("-drive")
                            .arg(format!("file={},format=raw,if=ide,index=0", disk.display()));
                    }
                    Some(Disk::Virtio(disk)) => {
                        cmd.arg("-drive")
                            .arg(format!("file={},format=raw,if=virtio", disk.display()));
                    }
                    None => {}
                }
                let rom = match (nic_rom, kernel) {
                    (Some(r), _) => format!(",romfile={}", r.display()),
                    (None, Some(_)) => ",romfile=".to_owned(),
                    (None, None) => String::new(),
                };
                cmd.args(["-device", &format!("e1000,netdev=n0,mac={mac}{rom}")]);
            }
            Firmware::Uefi | Firmware::UefiHttp => {
                // OVMF writes its variables; give it a copy in the test's
                // directory, removed with it.
                let vars = serial.with_extension("vars.fd");
                std::fs::copy(OVMF_VARS, &vars)?;
                // The beds have no IPv6 provisioning: without this, OVMF
                // spends minutes on PXE and HTTP boot over IPv6 before it
                // reaches the disk, as a server would unless its operator
                // turned IPv6 network boot off.
                cmd.args(["-fw_cfg", "name=opt/org.tianocore/IPv6Support,string=no"]);
                if fw == Firmware::UefiHttp {
                    cmd.args(["-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=no"]);
                }
                cmd.args([
                    "-drive",
                    &format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"),
                    "-drive",
                    &format!("if=pflash,format=raw,file={}", vars.display()),
                    // romfile= removes the NIC's iPXE ROM: OVMF's own PXE
                    // runs. bootindex puts the network before the disk, as
                    // on a server that is provisioned over the network.
                    "-device",
                    &format!("virtio-net-pci,netdev=n0,mac={mac},romfile=,bootindex=1"),
                ]);
                if let Some(Disk::Ide(disk) | Disk::Virtio(disk)) = disk {
                    cmd.arg("-drive")
                        .arg(format!(
                            "if=none,id=disk0,format=raw,file={}",
                            disk.display()
                        ))
                        .args(["-device", "ide-hd,drive=disk0,bus=ide.0,bootindex=2"]);
                }
            }
        }
        Ok(Vm {
            process: Guarded::spawn(&mut cmd)?,
            serial: serial.to_owned(),
        })
    }

    /// Waits up to `limit` for QEMU to exit (the discovery initrd powers the VM
    /// off after its callback); true if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        self.process.wait_timeout(limit).is_some()
    }

    /// The serial console so far.
    pub fn console(&self) -> String {
        std::fs::read(&self.serial)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}
