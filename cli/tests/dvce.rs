//! `dvce` (and `dv ce`) against a running dv-agent: inventory import and
//! export, machine list and show in every output format, refusals and an
//! unreachable agent with their exit codes and hints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

/// The dv-agent built beside this test (nextest builds every binary of the
/// workspace; a plain `cargo test -p dv-cli` needs `cargo build -p dv-agent`).
fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("dv-agent");
    assert!(
        bin.exists(),
        "{} missing: build dv-agent first",
        bin.display()
    );
    bin
}

fn start_agent(dir: &Path) -> dv_tests::agent::RunningAgent {
    dv_tests::agent::start_api_only(&agent_binary(), dir)
        .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"))
}

/// Runs the dv binary under `name` (a symlink, as the installed family is).
fn run(links: &Path, name: &str, agent: &str, args: &[&str]) -> Output {
    let link = links.join(name);
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_dv"), &link).unwrap();
    }
    Command::new(&link)
        .args(args)
        .env("DV_AGENT", agent)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn dvce_imports_lists_shows_and_explains_failures() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path());
    let url = format!("http://{}", agent.http);
    let links = dir.path();
    let seed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../site-kits/examples/lab/inventory.yaml");

    let o = run(
        links,
        "dvce",
        &url,
        &["inventory", "import", seed.to_str().unwrap(), "-o", "json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(summary["machines_added"], 2);

    let o = run(links, "dvce", &url, &["machine", "list", "-o", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);

    // Through dv, the same answer.
    let o = run(links, "dv", &url, &["ce", "machine", "list", "-o", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(serde_json::from_str::<Value>(&stdout(&o)).unwrap(), list);

    let o = run(links, "dvce", &url, &["machine", "list", "-o", "table"]);
    let table = stdout(&o);
    assert!(
        table.contains("SERIAL") && table.contains("LAB-VM-01"),
        "{table}"
    );
    assert!(table.contains("available"), "{table}");

    let o = run(
        links,
        "dvce",
        &url,
        &["machine", "show", "52:54:00:77:00:22", "-o", "yaml"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("serial: LAB-VM-02"), "{}", stdout(&o));

    // The API refuses: exit 1 with its message.
    let o = run(links, "dvce", &url, &["machine", "approve", "LAB-VM-01"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("only discovered machines are approved"),
        "{}",
        stderr(&o)
    );
    // An IPMI BMC has no TLS certificate to re-pin.
    let o = run(links, "dvce", &url, &["machine", "repin", "LAB-VM-02"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("there is no certificate to pin"),
        "{}",
        stderr(&o)
    );
    let o = run(links, "dvce", &url, &["machine", "show", "nobody"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("error (404)"), "{}", stderr(&o));

    // A file with problems lists them all.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "machines:\n  - serial: X\n    macs: [zz]\n    rack: r99\n",
    )
    .unwrap();
    let o = run(
        links,
        "dvce",
        &url,
        &["inventory", "import", bad.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("2 problem(s)") && err.contains("rack \"r99\""),
        "{err}"
    );

    let o = run(links, "dvce", &url, &["inventory", "export"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("LAB-VM-01") && !stdout(&o).contains("password: password"));

    // Wrong usage: exit 2. Nobody listening: exit 3, with a hint.
    let o = run(links, "dvce", &url, &["machine", "power"]);
    assert_eq!(o.status.code(), Some(2));
    let port = dv_tests::sushy::free_port();
    let o = run(
        links,
        "dvce",
        &format!("http://127.0.0.1:{port}"),
        &["machine", "list"],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("hint: is dv-agent running there?"),
        "{}",
        stderr(&o)
    );

    let o = run(links, "dvce", &url, &["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("Examples:"), "{}", stdout(&o));
    agent.stop();
}

#[test]
fn dvce_provisions_with_wait_and_dv_task_follows_shows_and_lists() {
    let test = "dvce_provisions_with_wait_and_dv_task_follows_shows_and_lists";
    let Some(bin) = dv_tests::sushy::sushy_bin(test) else {
        return;
    };
    let sushy = dv_tests::sushy::Sushy::start(&bin, Some("s3cret"));
    let port = sushy.port();
    let dead = dv_tests::sushy::free_port();
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path());
    let url = format!("http://{}", agent.http);
    let links = dir.path();
    let seed = dir.path().join("inventory.yaml");
    std::fs::write(
        &seed,
        format!(
            "machines:\n  - serial: SN-P\n    macs: [\"52:54:00:99:30:01\"]\n    bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {port}, user: admin, password: s3cret }}\n  - serial: SN-U\n    macs: [\"52:54:00:99:30:02\"]\n    bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {dead}, user: admin, password: s3cret }}\n"
        ),
    )
    .unwrap();
    let o = run(
        links,
        "dvce",
        &url,
        &["inventory", "import", seed.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // dvce machine provision --wait follows the task; the test plays the
    // installer and posts its callback once the task waits for it.
    let link = links.join("dvce");
    let log = dir.path().join("watch.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = dv_tests::process::Guarded::spawn(
        Command::new(&link)
            .args(["machine", "provision", "SN-P", "--wait"])
            .env("DV_AGENT", &url)
            .stdout(file.try_clone().unwrap())
            .stderr(file),
    )
    .unwrap();
    let waiting = dv_tests::wait_for(Duration::from_secs(90), || {
        let o = run(
            links,
            "dv",
            &url,
            &["task", "list", "--state", "running", "-o", "json"],
        );
        let tasks: Value = serde_json::from_str(&stdout(&o)).ok()?;
        tasks
            .as_array()?
            .iter()
            .any(|t| t["state"]["running"]["step"] == "await_install")
            .then_some(())
    });
    assert!(waiting.is_some(), "the task never waited for the installer");
    let cb = Command::new("curl")
        .args(["-s", "-X", "POST", "--data", "stage=installed"])
        .arg(format!("{url}/boot/52:54:00:99:30:01/callback"))
        .status()
        .unwrap();
    assert!(cb.success());
    let status = child
        .wait_timeout(Duration::from_secs(60))
        .expect("dvce --wait did not end");
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "dvce --wait failed: {out}");
    for step in [
        "allocate",
        "set_pxe",
        "power_cycle",
        "await_install",
        "set_disk",
        "ready",
    ] {
        assert!(out.contains(step), "{step} not shown: {out}");
    }
    assert!(out.contains("succeeded"), "{out}");

    // Blocked on the BMC: exit 5 and how to go on.
    let o = run(
        links,
        "dvce",
        &url,
        &["machine", "provision", "SN-U", "--wait"],
    );
    assert_eq!(o.status.code(), Some(5), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains(&format!("blocked on bmc 127.0.0.1:{dead}")),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("dv task retry"), "{}", stderr(&o));

    let o = run(links, "dv", &url, &["task", "list", "-o", "json"]);
    let tasks: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(tasks.as_array().unwrap().len(), 2);
    let id = tasks[0]["id"].as_str().unwrap();
    let o = run(links, "dv", &url, &["task", "show", id, "-o", "table"]);
    let table = stdout(&o);
    assert!(
        table.contains("await_install") && table.contains("succeeded"),
        "{table}"
    );
    let o = run(links, "dv", &url, &["task", "watch", id]);
    assert!(o.status.success(), "{}", stderr(&o));
    agent.stop();
}
