//! docs/walkthrough.md, run: every `$ ` command of its `console` blocks,
//! in order, through the real `dv` binaries, against a real hub (one
//! nats-server node, one replica, `[identity]` pointing at a real
//! oidc-provider issuer), a real site agent federated to it with `[talos]`
//! and a machine whose BMC is sushy-tools' Redfish emulator.
//!
//! The test adds only what a person at a browser or a machine at a rack
//! would do: it approves `dvid login`'s code as alice, and when the
//! provisioning task waits for the install it reports `stage=installed`
//! as the installer does. Each command must exit 0; a few checks read
//! what the page says the output shows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dv_tests::api::Api;
use dv_tests::hub::{Hub, Site, workspace_bin};
use dv_tests::oidc::{CLIENT_ID, Issuer};
use dv_tests::process::Guarded;
use dv_tests::sushy::{Sushy, sushy_bin};
use dv_tests::wait_for;

const ALICE: &str = "alice@example.com";
const MAC: &str = "52:54:00:42:00:01";
const TALOS: &str = r#"
[talos]
cluster_name = "acme"
endpoint = "https://10.77.0.50:6443"
install_image = "ghcr.io/siderolabs/installer:v1.11.5"
"#;

/// The `$ ` commands of the page's `console` blocks, in order.
fn commands(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in page.lines() {
        if line.starts_with("```") {
            inside = line.trim() == "```console";
            continue;
        }
        if inside && let Some(cmd) = line.strip_prefix("$ ") {
            out.push(cmd.to_owned());
        }
    }
    out
}

/// Where the seven names link to the one `dv` binary.
fn bin_dir(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["dv", "dvid", "dvce", "dvke", "dvapp", "dvos", "dvnet"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_dv"), bin.join(name)).unwrap();
    }
    bin
}

struct Env {
    bin: PathBuf,
    config: PathBuf,
    vars: Vec<(&'static str, String)>,
}

impl Env {
    fn shell(&self, cmd: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(cmd);
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env("PATH", path)
            .env("DV_CONFIG_DIR", &self.config)
            .env("NO_COLOR", "1")
            .env_remove("DV_AGENT")
            .env_remove("DV_CONTEXT")
            .env_remove("DV_TOKEN")
            .env_remove("DV_TENANT")
            .env_remove("DV_PROJECT")
            .env_remove("DISPLAY");
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }
}

fn shown(cmd: &str, o: &Output) -> String {
    format!(
        "$ {cmd}\nexit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `dvid login`: reads the code it prints and approves it as alice.
fn login(env: &Env, cmd: &str, issuer: &Issuer, log: &Path) -> String {
    let mut child = Guarded::spawn(
        env.shell(cmd)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap()),
    )
    .unwrap();
    let stdout = child.child().unwrap().stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut code = None;
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(c) = line.strip_prefix("and enter the code: ") {
            code = Some(c.trim().to_owned());
            break;
        }
    }
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    let err = || std::fs::read_to_string(log).unwrap_or_default();
    let code = code.unwrap_or_else(|| panic!("$ {cmd}: no user code\n{}", err()));
    issuer.approve(&code, ALICE);
    let status = child
        .wait_timeout(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("$ {cmd}: did not end after approval\n{}", err()));
    assert!(status.success(), "$ {cmd}: {status}\n{}", err());
    err()
}

/// The machine at the rack: when a provisioning task waits for the
/// install, report it done, as the installer does.
fn play_the_installer(site_api: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<bool> {
    std::thread::spawn(move || {
        let api = Api::new(&site_api);
        for _ in 0..1200 {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let (_, tasks) = api.get("/v1/tasks");
            let waiting = tasks
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["state"]["running"]["step"] == "await_install");
            if waiting {
                let (code, body) = api.curl(
                    &["-X", "POST", "--data", "stage=installed"],
                    &format!("/boot/{MAC}/callback"),
                );
                assert_eq!(code, 204, "install report: {body}");
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    })
}

#[test]
fn the_first_use_walkthrough_runs_as_written() {
    let test = "the_first_use_walkthrough_runs_as_written";
    let Some(nats) = dv_tests::nats::nats_server_bin(test) else {
        return;
    };
    let Some(sushy) = sushy_bin(test) else {
        return;
    };
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/walkthrough.md"),
    )
    .unwrap();
    let steps = commands(&page);
    assert!(steps.len() >= 15, "the page lost its commands: {steps:#?}");

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let issuer = Issuer::start(&d.join("issuer"));
    let identity = format!(
        "\n[identity]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\n",
        issuer.url()
    );
    let hub = Hub::start_with_toml(
        &nats,
        &workspace_bin("dv-hub"),
        &d.join("hub"),
        1,
        1,
        &["osl-1"],
        &identity,
    );
    let site = Site::start_with(
        &nats,
        &workspace_bin("dv-agent"),
        &d.join("osl-1"),
        "osl-1",
        &hub,
        TALOS,
    );
    // The site's rack: one machine, its BMC an emulator.
    let bmc = Sushy::start(&sushy, Some("s3cret"));
    let inventory = format!(
        "machines:\n  - serial: OSL-0001\n    macs: [\"{MAC}\"]\n    role: worker\n    \
         bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {}, user: admin, password: s3cret }}\n",
        bmc.port()
    );
    let (code, body) = Api::new(&site.api()).import(&inventory);
    assert_eq!(code, 200, "{body}");
    let base = hub.api(0);
    let seen = wait_for(Duration::from_secs(60), || {
        let (_, m) = Api::with_token(&base, &hub.token).get("/v1/machines");
        (m.as_array().map_or(0, Vec::len) == 1).then_some(())
    });
    assert!(
        seen.is_some(),
        "the hub never saw the site's machine\n{}",
        hub.diagnose()
    );

    let token_file = d.join("hub-token");
    std::fs::write(&token_file, &hub.token).unwrap();
    let env = Env {
        bin: bin_dir(d),
        config: d.join("config"),
        vars: vec![
            ("DV_HUB", base.clone()),
            ("DV_HUB_TOKEN", token_file.display().to_string()),
            ("DV_SITE", site.api()),
            ("DV_ISSUER", issuer.url().to_owned()),
        ],
    };

    let mut offerings_seen = 0;
    for (i, cmd) in steps.iter().enumerate() {
        if cmd.starts_with("dvid login") {
            let said = login(&env, cmd, &issuer, &d.join(format!("step-{i}.err")));
            assert!(said.contains(&format!("logged in as {ALICE}")), "{said}");
            continue;
        }
        let installer = cmd.contains("machine request").then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            (play_the_installer(site.api(), stop.clone()), stop)
        });
        let mut child = Guarded::spawn(
            env.shell(cmd)
                .stdout(std::fs::File::create(d.join(format!("step-{i}.out"))).unwrap())
                .stderr(std::fs::File::create(d.join(format!("step-{i}.err"))).unwrap()),
        )
        .unwrap();
        let status = child.wait_timeout(Duration::from_secs(300));
        let o = Output {
            status: status.unwrap_or_else(|| panic!("$ {cmd}: still running after 300 s")),
            stdout: std::fs::read(d.join(format!("step-{i}.out"))).unwrap(),
            stderr: std::fs::read(d.join(format!("step-{i}.err"))).unwrap(),
        };
        if let Some((thread, stop)) = installer {
            stop.store(true, Ordering::Relaxed);
            assert!(
                thread.join().unwrap(),
                "the task never waited for the install\n{}",
                shown(cmd, &o)
            );
        }
        assert!(
            o.status.success(),
            "{}\n{}",
            shown(cmd, &o),
            hub.replica_log(0)
        );
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        // What the page says the output shows.
        if cmd.starts_with("dvid whoami") {
            assert!(
                out.contains(&format!("user:{ALICE}")) && out.contains("tenant-admin"),
                "{out}"
            );
        }
        if cmd.starts_with("dv tenant list") {
            assert!(out.contains("acme"), "{out}");
        }
        if cmd.starts_with("dv offerings") {
            // Piped, dv prints JSON (a table on a terminal).
            offerings_seen += 1;
            let all: serde_json::Value = serde_json::from_str(&out).unwrap();
            let bare_metal = all
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["name"] == "bare-metal")
                .unwrap();
            let unmet: Vec<&str> = bare_metal["prerequisites"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["met"] == false)
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            if offerings_seen == 1 {
                assert_eq!(unmet, ["enabled", "quota.machines"], "{out}");
                assert!(
                    out.contains("dv offering enable bare-metal --tenant acme --project web"),
                    "{out}"
                );
            } else {
                assert!(unmet.is_empty() && bare_metal["ready"] == true, "{out}");
            }
        }
        if cmd.contains("machine request") {
            // Progress on stdout, one line per step; notes on stderr.
            for step in [
                "allocate",
                "set_pxe",
                "power_cycle",
                "await_install",
                "set_disk",
            ] {
                assert!(out.contains(step), "{step} was not shown:\n{out}\n{err}");
            }
            assert!(
                out.contains("succeeded") && err.contains("claimed for acme/web"),
                "{out}\n{err}"
            );
        }
        if cmd.starts_with("dvce machine held") {
            assert!(out.contains("OSL-0001") && out.contains("ready"), "{out}");
        }
    }
    assert_eq!(
        offerings_seen, 2,
        "the page checks offerings before and after"
    );

    // What the page promises a tenant cannot do.
    let other = env
        .shell("dv --context acme tenant show globex")
        .output()
        .unwrap();
    assert!(!other.status.success());
    let quota = env.shell("dv quota set --machines 5").output().unwrap();
    assert_eq!(
        quota.status.code(),
        Some(6),
        "{}",
        shown("dv quota set --machines 5", &quota)
    );
}
