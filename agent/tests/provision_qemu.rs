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
//! Checked as an operator would: the task's steps in order, each done,
//! with timestamps; the machine `ready`; the emulator's boot override on
//! `Hdd`; in the agent's events, the lease, the boot entry going to
//! install and back to local, the config served, and the install report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use dv_protocol::{EventBody, MacAddr};
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

/// curl inside `ns`: (status, body).
fn curl(ns: &Netns, args: &[&str], url: &str) -> (u16, String) {
    let out = ns
        .command("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn api(ns: &Netns, method: &str, path: &str, body: Option<(&str, &str)>) -> (u16, Value) {
    let url = format!("http://{AGENT_ADDR}:8680{path}");
    let mut args = vec!["-X", method];
    if let Some((content_type, data)) = body {
        args.extend(["-H", content_type, "--data-binary", data]);
    }
    let (code, text) = curl(ns, &args, &url);
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The emulator's view of the system, asked directly.
fn bmc_system(ns: &Netns, sushy: &Sushy) -> Value {
    let (_, body) = curl(
        ns,
        &[],
        &format!("{}/redfish/v1/Systems/{NODE_1}", sushy.endpoint),
    );
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

#[test]
fn provisioning_powers_a_vm_through_its_bmc_and_it_installs_and_ends_ready() {
    let test = "provisioning_powers_a_vm_through_its_bmc_and_it_installs_and_ends_ready";
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
    let seed = format!(
        "machines:\n  - serial: E2E-01\n    macs: [\"{MAC}\"]\n    role: worker\n    \
         bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {}, user: admin, password: unused }}\n",
        Sushy::NETNS_PORT
    );
    let (code, body) = api(
        &bed.server,
        "POST",
        "/v1/inventory",
        Some(("Content-Type: application/yaml", &seed)),
    );
    assert_eq!(code, 200, "{body}");
    let (code, task) = api(
        &bed.server,
        "POST",
        "/v1/machines/E2E-01/provision",
        Some(("Content-Type: application/json", "{}")),
    );
    assert_eq!(code, 202, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();

    // The BMC-to-hardware wiring: the VM runs while the emulator says On.
    let serial = dir.path().join("serial.log");
    let mut vm: Option<Vm> = None;
    let deadline = Instant::now() + TASK_LIMIT;
    let done = loop {
        let (_, t) = api(&bed.server, "GET", &format!("/v1/tasks/{id}"), None);
        let state = &t["task"]["state"];
        if state == "succeeded" || state.get("failed").is_some() || Instant::now() > deadline {
            break t;
        }
        if vm.is_none() && bmc_system(&bed.server, &sushy)["PowerState"] == "On" {
            vm = Some(Vm::netboot(&bed, Firmware::Bios, MAC, &serial, VM_LIMIT).unwrap());
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let console = std::fs::read_to_string(&serial).unwrap_or_default();
    drop(vm);
    let agent_log = agent.log_text();
    assert_eq!(
        done["task"]["state"], "succeeded",
        "task: {done:#}\n--- serial ---\n{console}\n--- agent ---\n{agent_log}"
    );
    let steps: Vec<&str> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "allocate",
            "set_pxe",
            "power_cycle",
            "await_install",
            "set_disk",
            "ready"
        ]
    );
    let mut previous = String::new();
    for s in done["steps"].as_array().unwrap() {
        assert_eq!(s["outcome"], "done", "{s}");
        let (started, finished) = (
            s["started_at"].as_str().unwrap(),
            s["finished_at"].as_str().unwrap(),
        );
        assert!(previous.as_str() <= started && started <= finished, "{s}");
        previous = finished.to_owned();
    }
    assert!(
        console.contains("DV-INSTALL: machine config fetched"),
        "{console}"
    );
    let (_, machine) = api(&bed.server, "GET", "/v1/machines/E2E-01", None);
    assert_eq!(machine["state"], "ready", "{machine}");
    let system = bmc_system(&bed.server, &sushy);
    assert_eq!(
        system["Boot"]["BootSourceOverrideTarget"], "Hdd",
        "{system}"
    );
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
    assert_eq!(entries, ["install", "local"], "{events:#?}");
}
