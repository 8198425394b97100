//! A real machine network-boots from the agent: QEMU (TCG) with real firmware
//! on a segment whose only DHCP, TFTP and HTTP server is `dv-agent`.
//!
//! - UEFI: OVMF's own PXE client -> DHCP (arch 7) -> TFTP first stage ->
//!   iPXE -> DHCP (user class iPXE) -> HTTP `/boot/<mac>.ipxe` -> discovery
//!   kernel and initrd -> the initrd posts hardware facts to the callback.
//! - BIOS: SeaBIOS with iPXE as the NIC ROM -> the same HTTP chain.
//! - BIOS, machine in state `local`: the script boots the VM's own disk, whose
//!   boot sector prints a marker on the serial console.
//! - UEFI, machine in state `local`: the script hands control back to OVMF
//!   (`exit 1`), which boots the next boot option, the VM's disk: an EFI
//!   system partition whose GRUB prints a marker and powers off.
//! - Both firmwares with the agent's HTTP unreachable: the entry script
//!   fetched over TFTP retries, then boots the disk the same way.
//!
//! The test checks what an operator would: the VM powered itself off after
//! reporting, and the agent's store holds the lease and the callback event.
//! The boots take 30-60 s each under TCG; nextest runs them one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dv_agent::store::{Store, boot as boot_store};
use dv_protocol::{Actor, EventBody, MacAddr, SiteName};
use dv_tests::agent::RunningAgent;
use dv_tests::lab::{self, AGENT_ADDR, events, set_key, write_config};
use dv_tests::netns::require_netns;
use dv_tests::qemu::{Firmware, PxeBed, Vm, require_qemu};
use dv_tests::wait_for;

/// QEMU's whole life is bounded by this.
const VM_LIMIT: Duration = Duration::from_secs(240);

fn start_agent(bed: &PxeBed, config: &Path, data: &Path) -> RunningAgent {
    lab::start_agent(Path::new(env!("CARGO_BIN_EXE_dv-agent")), bed, config, data)
}

/// Boots `mac` into discovery; returns the serial console (None: skipped).
fn discovery_boot(fw: Firmware, test: &str, mac: &str) -> Option<String> {
    if !require_netns(test) || !require_qemu(test, fw) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let bed = PxeBed::new(&format!("{AGENT_ADDR}/24")).unwrap();
    let config = write_config(dir.path());
    let data = dir.path().join("data");
    let mut agent = start_agent(&bed, &config, &data);

    let mut vm = Vm::netboot(&bed, fw, mac, &dir.path().join("serial.log"), VM_LIMIT).unwrap();
    let exited = vm.wait_exit(VM_LIMIT + Duration::from_secs(10));
    let console = vm.console();
    let agent_log = agent.log_text();
    assert!(
        exited && console.contains("DV-DISCOVERY: CALLBACK-OK"),
        "the VM did not report and power off.\n--- serial ---\n{console}\n--- agent ---\n{agent_log}"
    );
    agent.stop();

    let mac: MacAddr = mac.parse().unwrap();
    let events = events(&data);
    let bound = events
        .iter()
        .any(|e| matches!(&e.body, EventBody::LeaseBound { lease } if lease.mac == mac));
    assert!(bound, "no lease bound for {mac}: {events:#?}");
    let report = events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::MachineBootReported {
                mac: m,
                stage,
                detail,
                ..
            } if *m == mac => Some((stage.clone(), detail.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no boot report from {mac}: {events:#?}"));
    assert_eq!(report.0, "discovered");
    assert!(report.1.contains("cpus=1"), "facts: {}", report.1);
    assert!(report.1.contains("memory_kb="), "facts: {}", report.1);
    // The machine is in the inventory now, discovered (not yet trusted),
    // with the facts its discovery boot reported.
    let conn = rusqlite::Connection::open(data.join("agent.db")).unwrap();
    let (state, facts): (String, String) = conn
        .query_row(
            "SELECT m.state, m.facts FROM machine m JOIN machine_mac x ON x.machine_id = m.id
             WHERE x.mac = ?1",
            [mac.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap_or_else(|e| panic!("{mac} not in the inventory: {e}"));
    assert_eq!(state, "discovered");
    assert!(facts.contains("\"cpus\":\"1\""), "{facts}");
    Some(console)
}

/// UEFI HTTP boot (OVMF with PXE off): the firmware's DHCP says HTTPClient,
/// gets the URL of the first stage, fetches it over HTTP, and the rest is
/// the same chain.
#[test]
fn qemu_uefi_http_boot_boots_into_discovery_and_reports() {
    let Some(console) = discovery_boot(
        Firmware::UefiHttp,
        "qemu_uefi_http_boot_boots_into_discovery_and_reports",
        "52:54:00:77:00:24",
    ) else {
        return;
    };
    assert!(
        console.contains("Start HTTP Boot over IPv4"),
        "not an HTTP boot: {console}"
    );
    assert!(
        !console.contains("Start PXE over IPv4"),
        "PXE ran: {console}"
    );
}

#[test]
fn qemu_uefi_pxe_boots_into_discovery_and_reports() {
    discovery_boot(
        Firmware::Uefi,
        "qemu_uefi_pxe_boots_into_discovery_and_reports",
        "52:54:00:77:00:21",
    );
}

#[test]
fn qemu_bios_pxe_boots_into_discovery_and_reports() {
    discovery_boot(
        Firmware::Bios,
        "qemu_bios_pxe_boots_into_discovery_and_reports",
        "52:54:00:77:00:22",
    );
}

/// A 512-byte boot sector that writes a marker to COM1 and halts: proof that
/// the firmware booted the disk, not the network.
fn marker_boot_sector() -> Vec<u8> {
    let mut code = vec![
        0xFA, // cli
        0x31, 0xC0, // xor ax, ax
        0x8E, 0xD8, // mov ds, ax
        0xBE, 0x16, 0x7C, // mov si, 0x7c16 (the message)
        0xBA, 0xF8, 0x03, // mov dx, 0x3f8 (COM1)
        0xAC, // .l: lodsb
        0x84, 0xC0, // test al, al
        0x74, 0x03, // jz .d
        0xEE, // out dx, al
        0xEB, 0xF8, // jmp .l
        0xF4, // .d: hlt
        0xEB, 0xFD, // jmp .d
    ];
    code.extend_from_slice(b"DV-LOCAL-DISK-BOOTED\r\n\0");
    code.resize(510, 0);
    code.extend_from_slice(&[0x55, 0xAA]);
    code
}

/// A raw disk that is an EFI system partition (FAT, no partition table,
/// which OVMF boots as removable media) holding `EFI/BOOT/BOOTX64.EFI`: a
/// standalone GRUB whose only job is to print a marker and power off.
/// Built with Debian's grub-efi-amd64-bin, dosfstools and mtools.
fn marker_esp(dir: &Path) -> PathBuf {
    let cfg = dir.join("grub.cfg");
    std::fs::write(
        &cfg,
        "terminal_output console\necho DV-LOCAL-DISK-BOOTED\nsleep 1\nhalt\n",
    )
    .unwrap();
    let efi = dir.join("BOOTX64.EFI");
    let disk = dir.join("esp.img");
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("grub-mkstandalone")
        .args([
            "-O",
            "x86_64-efi",
            "--locales=",
            "--fonts=",
            "--themes=",
            "-o",
        ])
        .arg(&efi)
        .arg(format!("boot/grub/grub.cfg={}", cfg.display())));
    run(Command::new("mkfs.vfat").arg("-C").arg(&disk).arg("8192"));
    run(Command::new("mmd")
        .arg("-i")
        .arg(&disk)
        .args(["::/EFI", "::/EFI/BOOT"]));
    run(Command::new("mcopy")
        .arg("-i")
        .arg(&disk)
        .arg(&efi)
        .arg("::/EFI/BOOT/BOOTX64.EFI"));
    disk
}

/// True if every program is on PATH; prints a loud skip notice if not.
fn require_programs(test: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| {
            Command::new("sh")
                .args(["-c", &format!("command -v {p}")])
                .stdout(std::process::Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    eprintln!(
        "\n!!! SKIPPED {test}: missing {} (scripts/setup.sh installs them) !!!\n",
        missing.join(", ")
    );
    false
}

#[test]
fn qemu_bios_machine_in_state_local_boots_its_disk() {
    local_disk_boot(
        "qemu_bios_machine_in_state_local_boots_its_disk",
        Firmware::Bios,
        None,
        "DV: booting the local disk",
    );
}

/// The agent's HTTP cannot be reached (boot.http_url points at a port where
/// nothing listens): the entry script iPXE got over TFTP retries, then boots
/// the local disk instead of looping or dropping to a shell.
#[test]
fn qemu_bios_boots_its_disk_when_the_agent_http_is_unreachable() {
    local_disk_boot(
        "qemu_bios_boots_its_disk_when_the_agent_http_is_unreachable",
        Firmware::Bios,
        Some(&format!("http://{AGENT_ADDR}:9")),
        "DV: agent not reachable",
    );
}

#[test]
fn qemu_uefi_machine_in_state_local_boots_its_disk() {
    local_disk_boot(
        "qemu_uefi_machine_in_state_local_boots_its_disk",
        Firmware::Uefi,
        None,
        "DV: booting the local disk (platform efi)",
    );
}

#[test]
fn qemu_uefi_boots_its_disk_when_the_agent_http_is_unreachable() {
    local_disk_boot(
        "qemu_uefi_boots_its_disk_when_the_agent_http_is_unreachable",
        Firmware::Uefi,
        Some(&format!("http://{AGENT_ADDR}:9")),
        "DV: agent not reachable",
    );
}

fn local_disk_boot(test: &str, fw: Firmware, http_url: Option<&str>, expect_on_console: &str) {
    if !require_netns(test) || !require_qemu(test, fw) {
        return;
    }
    if fw != Firmware::Bios
        && !require_programs(test, &["grub-mkstandalone", "mkfs.vfat", "mmd", "mcopy"])
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bed = PxeBed::new(&format!("{AGENT_ADDR}/24")).unwrap();
    let mut config = write_config(dir.path());
    if let Some(url) = http_url {
        let text = std::fs::read_to_string(&config).unwrap();
        config = dir.path().join("agent-unreachable.toml");
        std::fs::write(&config, set_key(&text, "boot", "http_url", url)).unwrap();
    }
    let data = dir.path().join("data");
    let mac: MacAddr = "52:54:00:77:00:23".parse().unwrap();

    // The operator marked the machine installed: boot from disk.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(&data).unwrap();
        let site = SiteName::new("lab").unwrap();
        store
            .write(move |c| {
                let entry =
                    dv_agent::boot::MachineBoot::unknown(mac, dv_agent::boot::BootState::Local);
                boot_store::set(c, &site, &Actor::agent(&site), &entry)
            })
            .await
            .unwrap();
        store.close().await;
    });
    let disk = match fw {
        Firmware::Bios => {
            let disk = dir.path().join("disk.img");
            let mut image = marker_boot_sector();
            image.resize(1024 * 1024, 0);
            std::fs::write(&disk, image).unwrap();
            disk
        }
        Firmware::Uefi | Firmware::UefiHttp => marker_esp(dir.path()),
    };

    let mut agent = start_agent(&bed, &config, &data);
    let vm = Vm::netboot_with_disk(
        &bed,
        fw,
        &mac.to_string(),
        &dir.path().join("serial.log"),
        &disk,
        VM_LIMIT,
    )
    .unwrap();
    let booted = wait_for(VM_LIMIT, || {
        vm.console().contains("DV-LOCAL-DISK-BOOTED").then_some(())
    });
    let console = vm.console();
    drop(vm);
    let agent_log = agent.log_text();
    agent.stop();
    assert!(
        booted.is_some(),
        "the disk was not booted.\n--- serial ---\n{console}\n--- agent ---\n{agent_log}"
    );
    assert!(
        console.contains(expect_on_console),
        "expected {expect_on_console:?} on the console: {console}"
    );
}
