//! Provisioning end to end: the agent drives a machine's BMC, and the BMC
//! drives a real VM.
//!
//! sushy-tools' Redfish emulator (fake driver) stands in for the machine's
//! BMC, in the agent's namespace. The test is the wiring between the BMC and
//! the hardware: when the emulator reports the system powered on, a QEMU VM
//! (SeaBIOS + iPXE ROM) with the machine's MAC powers up on the provisioning
//! segment. From there everything is real: the agent's provisioning task
//! sets one-time PXE and powers the system on through Redfish; the VM
//! network-boots from the agent (DHCP, TFTP, HTTP), gets the Talos install
//! script the `allocate` step set for it, boots the install stand-in in
//! place of Talos's kernel (the discovery initrd, which fetches its Talos
//! machine config from `talos.config=` as Talos does, and reports
//! `stage=installed`), and the task sets the next boot to disk and ends
//! with the machine ready, its boot entry on the local disk.
//!
//! Then deprovisioning: the BMC restarts the VM into the wipe environment
//! (the discovery initrd with `dv.wipe=1`), which erases the disk the
//! install wrote and reports `stage=wiped`; the BMC powers it off and the
//! machine is available again.
//!
//! Checked as an operator would: the task's steps in order, each done,
//! with timestamps; the machine `ready`; the emulator's boot override on
//! `Hdd`; in the agent's events, the lease, the boot entry going to
//! install and back to local, the config served, and the install report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use dv_protocol::{EventBody, MacAddr};
use dv_tests::api::{Api, assert_steps_done_in_order, ended, step_names};
use dv_tests::lab::{self, AGENT_ADDR, events, write_config};
use dv_tests::netns::{Netns, require_netns};
use dv_tests::qemu::{Firmware, PxeBed, Vm, require_qemu};
use dv_tests::sushy::{NODE_1, Sushy, sushy_bin};
use serde_json::Value;

const MAC: &str = "52:54:00:77:00:31";
/// QEMU's whole life is bounded by this.
const VM_LIMIT: Duration = Duration::from_secs(300);
/// The whole provisioning, power-on to ready.
const TASK_LIMIT: Duration = Duration::from_secs(420);

/// The emulator's view of the system, asked directly.
fn bmc_system(ns: &Netns, sushy: &Sushy) -> Value {
    Api::within(ns, &sushy.endpoint)
        .get(&format!("/redfish/v1/Systems/{NODE_1}"))
        .1
}

/// The wiring between the emulated BMC and the hardware: a VM starts when
/// the emulator's power goes On (a restart reads Off, then On) and is
/// switched off when it goes Off. The VM's disk persists across boots.
struct Wiring<'a> {
    bed: &'a PxeBed,
    sushy: &'a Sushy,
    dir: &'a Path,
    disk: &'a Path,
    vm: Option<Vm>,
    power: String,
    boots: u32,
}

impl Wiring<'_> {
    fn tick(&mut self) {
        let now = bmc_system(&self.bed.server, self.sushy)["PowerState"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if now == "On" && self.power != "On" {
            self.vm = None;
            self.boots += 1;
            let serial = self.dir.join(format!("serial-{}.log", self.boots));
            self.vm = Some(
                Vm::netboot_with_virtio_disk(self.bed, MAC, &serial, self.disk, VM_LIMIT).unwrap(),
            );
        } else if now == "Off" {
            self.vm = None;
        }
        if !now.is_empty() {
            self.power = now;
        }
    }

    /// Runs the wiring until task `id` ends (bounded); its last answer.
    fn follow(&mut self, api: &Api<'_>, id: &str) -> Value {
        let deadline = Instant::now() + TASK_LIMIT;
        loop {
            let (_, t) = api.get(&format!("/v1/tasks/{id}"));
            if ended(&t) || Instant::now() > deadline {
                return t;
            }
            self.tick();
            std::thread::sleep(Duration::from_millis(400));
        }
    }

    /// The serial console of boot `n` (from 1).
    fn console(&self, n: u32) -> String {
        std::fs::read_to_string(self.dir.join(format!("serial-{n}.log"))).unwrap_or_default()
    }
}

#[test]
fn a_vm_is_provisioned_and_deprovisioned_through_its_bmc_end_to_end() {
    let test = "a_vm_is_provisioned_and_deprovisioned_through_its_bmc_end_to_end";
    if !require_netns(test) || !require_qemu(test, Firmware::Bios) {
        return;
    }
    let Some(sushy_bin) = sushy_bin(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bed = PxeBed::new(&format!("{AGENT_ADDR}/24")).unwrap();
    let config = write_config(dir.path());
    let data = dir.path().join("data");
    let mac: MacAddr = MAC.parse().unwrap();

    // The site installs Talos; the install stand-in takes the place of
    // Talos's kernel and initramfs, so the agent renders and serves the
    // machine's real v1alpha1 config to the VM.
    let text = std::fs::read_to_string(&config).unwrap();
    let text = lab::set_key(&text, "talos", "kernel", "discovery/vmlinuz");
    let text = lab::set_key(&text, "talos", "initrd", "discovery/initrd.cpio.gz");
    std::fs::write(&config, text).unwrap();

    let sushy = Sushy::start_in(&sushy_bin, None, Some(&bed.server));
    let mut agent = lab::start_agent(
        Path::new(env!("CARGO_BIN_EXE_dv-agent")),
        &bed,
        &config,
        &data,
    );
    let base = format!("http://{AGENT_ADDR}:8680");
    let api = Api::within(&bed.server, &base);
    let seed = format!(
        "machines:\n  - serial: E2E-01\n    macs: [\"{MAC}\"]\n    role: worker\n    \
         bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {}, user: admin, password: unused }}\n",
        Sushy::NETNS_PORT
    );
    let (code, body) = api.import(&seed);
    assert_eq!(code, 200, "{body}");
    let (code, task) = api.post_json("/v1/machines/E2E-01/provision", "{}");
    assert_eq!(code, 202, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();

    let disk = dir.path().join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let mut wiring = Wiring {
        bed: &bed,
        sushy: &sushy,
        dir: dir.path(),
        disk: &disk,
        vm: None,
        power: "Off".into(),
        boots: 0,
    };
    let done = wiring.follow(&api, &id);
    let console = wiring.console(1);
    let agent_log = agent.log_text();
    assert_eq!(
        done["task"]["state"], "succeeded",
        "task: {done:#}\n--- serial ---\n{console}\n--- agent ---\n{agent_log}"
    );
    assert_eq!(
        step_names(&done),
        [
            "network",
            "allocate",
            "set_pxe",
            "power_cycle",
            "await_install",
            "set_disk",
            "ready"
        ]
    );
    assert_steps_done_in_order(&done);
    assert!(
        console.contains("DV-INSTALL: machine config fetched"),
        "{console}"
    );
    assert!(
        std::fs::read(&disk).unwrap().starts_with(b"DV-INSTALLED "),
        "the install stand-in did not write its disk: {console}"
    );
    let (_, machine) = api.get("/v1/machines/E2E-01");
    assert_eq!(machine["state"], "ready", "{machine}");
    let system = bmc_system(&bed.server, &sushy);
    assert_eq!(
        system["Boot"]["BootSourceOverrideTarget"], "Hdd",
        "{system}"
    );

    // Deprovisioning: the BMC restarts the machine into the wipe
    // environment, which erases the disk; then it is powered off.
    let (code, task) = api.post_json("/v1/machines/E2E-01/deprovision", "{}");
    assert_eq!(code, 202, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    let done = wiring.follow(&api, &id);
    let console = wiring.console(2);
    let agent_log = agent.log_text();
    assert_eq!(
        done["task"]["state"], "succeeded",
        "task: {done:#}\n--- serial ---\n{console}\n--- agent ---\n{agent_log}"
    );
    assert_eq!(
        step_names(&done),
        [
            "release",
            "set_pxe",
            "power_cycle",
            "await_wipe",
            "power_off",
            "available"
        ]
    );
    assert_steps_done_in_order(&done);
    assert!(console.contains("DV-WIPE: wiped: vda"), "{console}");
    let image = std::fs::read(&disk).unwrap();
    assert!(
        image[..4 << 20].iter().all(|b| *b == 0),
        "the disk's start was not erased"
    );
    assert_eq!(wiring.boots, 2, "one boot to install, one to wipe");
    let (_, machine) = api.get("/v1/machines/E2E-01");
    assert_eq!(machine["state"], "available", "{machine}");
    assert_eq!(bmc_system(&bed.server, &sushy)["PowerState"], "Off");
    drop(wiring);
    agent.stop();

    let events = events(&data);
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.body, EventBody::LeaseBound { lease } if lease.mac == mac)),
        "no lease for {mac}: {events:#?}"
    );
    let installed = events.iter().find_map(|e| match &e.body {
        EventBody::MachineBootReported {
            mac: m,
            stage,
            detail,
            ..
        } if *m == mac && stage == "installed" => Some(detail.clone()),
        _ => None,
    });
    let detail = installed.unwrap_or_else(|| panic!("no install report: {events:#?}"));
    assert!(detail.contains("config_sha256="), "{detail}");
    let served = events.iter().any(|e| {
        matches!(&e.body, EventBody::MachineBootReported { mac: m, stage, .. }
            if *m == mac && stage == "talos-config-served")
    });
    assert!(
        served,
        "the agent did not record serving the config: {events:#?}"
    );
    let entries: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::MachineBootStateSet { mac: m, to, .. } if *m == mac => Some(to.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        entries,
        ["install", "local", "wipe", "discover"],
        "{events:#?}"
    );
}
