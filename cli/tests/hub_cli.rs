//! `dv` against a real hub (one nats-server node, one replica) federating
//! one real site (leaf nats-server + dv-agent): contexts with the hub's
//! token file, machines of the site listed through the hub, provision
//! through the hub as a command whose task `--wait` follows to its end
//! (the machines have no reachable BMC: one has none and fails, exit 4;
//! one's BMC does not answer and blocks, exit 5), a wrong token (exit 6)
//! and a hub that is not there (exit 3), each with what to do next.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dv_tests::hub::{Hub, Site, workspace_bin};
use dv_tests::nats::nats_server_bin;
use dv_tests::wait_for;
use serde_json::Value;

/// Runs the dv binary under `name` with only `config` as its contexts
/// directory (no agent or context from the environment).
fn run(dir: &Path, name: &str, args: &[&str]) -> Output {
    let link = dir.join(name);
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_dv"), &link).unwrap();
    }
    Command::new(&link)
        .args(args)
        .env("DV_CONFIG_DIR", dir.join("config"))
        .env_remove("DV_AGENT")
        .env_remove("DV_CONTEXT")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

#[test]
fn dv_through_a_hub_contexts_provision_wait_and_auth() {
    let test = "dv_through_a_hub_contexts_provision_wait_and_auth";
    let Some(nats) = nats_server_bin(test) else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(
        &nats,
        &workspace_bin("dv-hub"),
        &d.join("hub"),
        1,
        1,
        &["osl-1"],
    );
    let site = Site::start(
        &nats,
        &workspace_bin("dv-agent"),
        &d.join("osl-1"),
        "osl-1",
        &hub,
    );
    eprintln!("hub and site up in {:?}", started.elapsed());

    // The site's inventory, through the CLI at the agent: OSL-1 and OSL-3
    // have no BMC, OSL-2 a Redfish BMC where nothing listens.
    let dead = dv_tests::sushy::free_port();
    let inventory = d.join("inventory.yaml");
    std::fs::write(
        &inventory,
        format!(
            "machines:\n  - serial: OSL-1\n    macs: [\"52:54:00:71:00:01\"]\n    role: worker\n  - serial: OSL-2\n    macs: [\"52:54:00:71:00:02\"]\n    role: worker\n    bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {dead}, user: admin, password: s3cret }}\n  - serial: OSL-3\n    macs: [\"52:54:00:71:00:03\"]\n    role: worker\n"
        ),
    )
    .unwrap();
    let o = run(
        d,
        "dvce",
        &[
            "--agent",
            &site.api(),
            "inventory",
            "import",
            inventory.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));

    // Contexts: the hub with its token file, and one with a wrong token.
    let token_file = hub.dir.join("token");
    let wrong = d.join("wrong-token");
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    let hub_url = hub.api(0);
    let o = run(
        d,
        "dv",
        &[
            "context",
            "add",
            "lab",
            "--url",
            &hub_url,
            "--token-file",
            token_file.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        d,
        "dv",
        &[
            "context",
            "add",
            "stale",
            "--url",
            &hub_url,
            "--token-file",
            wrong.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run(d, "dv", &["context", "use", "lab"]);
    assert!(o.status.success(), "{}", text(&o));
    let file = d.join("config/contexts.yaml");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "contexts.yaml is {mode:o}");
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(
        !stored.contains(&hub.token),
        "the token itself is never stored"
    );

    let list = json(&run(d, "dv", &["context", "list", "-o", "json"]));
    let names: Vec<(&str, bool)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["current"] == true))
        .collect();
    assert_eq!(names, [("lab", true), ("stale", false)]);
    let shown = json(&run(d, "dv", &["context", "show", "-o", "json"]));
    assert_eq!(shown["url"], hub_url.as_str());
    assert_eq!(shown["chosen_by"], "the current context");

    // The site's machines, through the hub, once its events arrived.
    let machines = wait_for(Duration::from_secs(30), || {
        let o = run(d, "dvce", &["machine", "list", "-o", "json"]);
        let v: Value = serde_json::from_slice(&o.stdout).ok()?;
        (v.as_array()?.len() == 3).then_some(v)
    })
    .unwrap_or_else(|| {
        panic!(
            "the hub never listed the site's 3 machines: {}",
            text(&run(d, "dvce", &["machine", "list", "-o", "json"]))
        )
    });
    for m in machines.as_array().unwrap() {
        assert_eq!(m["site"], "osl-1");
    }
    // The same through `dv ce`, and one machine by serial.
    let again = json(&run(d, "dv", &["ce", "machine", "list", "-o", "json"]));
    assert_eq!(again.as_array().unwrap().len(), 3);
    let one = json(&run(d, "dvce", &["machine", "show", "OSL-3", "-o", "json"]));
    assert_eq!(one["serial"], "OSL-3");

    // Provision through the hub answers the command it queued.
    let accepted = json(&run(
        d,
        "dvce",
        &["machine", "provision", "OSL-3", "-o", "json"],
    ));
    assert_eq!(accepted["site"], "osl-1");
    assert_eq!(accepted["action"], "provision");
    assert_eq!(accepted["machine"], one["id"]);
    assert!(accepted["command"].as_str().is_some_and(|c| !c.is_empty()));

    // --wait follows a command to its task's end. OSL-2's BMC does not
    // answer: the task blocks on it, exit 5 and how to go on.
    let t = Instant::now();
    let o = run(d, "dvce", &["machine", "provision", "OSL-2", "--wait"]);
    eprintln!(
        "provision OSL-2 --wait took {:?}: {}",
        t.elapsed(),
        text(&o)
    );
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("sent to site osl-1"), "{}", text(&o));
    assert!(
        err.contains(&format!("is blocked on bmc 127.0.0.1:{dead}")),
        "{}",
        text(&o)
    );
    assert!(err.contains("task retry"), "{}", text(&o));
    // Progress: the state changes the hub saw, one per line, each step
    // from the hub's event feed even when it came and went between reads.
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("set_pxe        running"), "{}", text(&o));
    assert!(
        out.contains(&format!("blocked on bmc 127.0.0.1:{dead}")),
        "{}",
        text(&o)
    );

    // OSL-1 has no BMC at all: its provision task fails, exit 4 with the
    // site's reason.
    let o = run(d, "dvce", &["machine", "provision", "OSL-1", "--wait"]);
    eprintln!("provision OSL-1 --wait: {}", text(&o));
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("failed:"), "{}", text(&o));
    assert!(
        err.contains("OSL-1"),
        "the reason names the machine: {}",
        text(&o)
    );

    // Every task shows at the hub.
    let tasks = json(&run(
        d,
        "dv",
        &["task", "list", "--site", "osl-1", "-o", "json"],
    ));
    assert!(tasks.as_array().unwrap().len() >= 3, "{tasks}");
    let blocked = json(&run(
        d,
        "dv",
        &["task", "list", "--state", "blocked", "-o", "json"],
    ));
    assert_eq!(blocked.as_array().unwrap().len(), 1, "{blocked}");

    // An agent-only command through the hub: refused before any call.
    let o = run(d, "dvce", &["machine", "approve", "OSL-1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--kind agent"), "{}", text(&o));

    // The wrong token: exit 6, the server's message and what to do.
    let o = run(d, "dvce", &["--context", "stale", "machine", "list"]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("error (401)"), "{}", text(&o));
    assert!(err.contains("hub token"), "{}", text(&o));
    assert!(
        err.contains(&format!(
            "hint: context stale sends the token from file {}",
            wrong.display()
        )),
        "{}",
        text(&o)
    );
    // DV_CONTEXT chooses the same way.
    let o = Command::new(d.join("dvce"))
        .args(["machine", "list"])
        .env("DV_CONFIG_DIR", d.join("config"))
        .env("DV_CONTEXT", "stale")
        .env_remove("DV_AGENT")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));

    // A context whose hub is not there: exit 3 and where to look.
    let port = dv_tests::sushy::free_port();
    let o = run(
        d,
        "dv",
        &[
            "context",
            "add",
            "gone",
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--token-file",
            token_file.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run(d, "dv", &["--context", "gone", "task", "list"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("is dv-hub running there?"),
        "{}",
        text(&o)
    );
    // An unknown context: exit 2, naming the ones there are.
    let o = run(d, "dv", &["--context", "nope", "task", "list"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("there are: lab, stale, gone"),
        "{}",
        text(&o)
    );

    drop(site);
    drop(hub);
    eprintln!("{test} took {:?}", started.elapsed());
}
