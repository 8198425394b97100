//! The dv family as a user meets it: every name's `--help` with examples,
//! shell completions per name, plain (escape-free) output when piped;
//! `dvnet` networks and addresses and `dvce ... --wait` progress against a
//! real dv-agent; projects, environments and quota through `dv` against a
//! real hub, and what `dvnet`, `dvke` and `dv offerings` say when the hub
//! cannot serve them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use dv_tests::hub::{Hub, workspace_bin};
use dv_tests::nats::nats_server_bin;
use serde_json::Value;

const NAMES: [&str; 7] = ["dv", "dvid", "dvce", "dvke", "dvapp", "dvos", "dvnet"];

/// Runs the dv binary under `name` (a symlink, as installed) with `dir/config`
/// as its contexts directory and nothing chosen by the environment.
fn run(dir: &Path, name: &str, args: &[&str]) -> Output {
    run_env(dir, name, args, &[])
}

fn run_env(dir: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let link = dir.join(name);
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_dv"), &link).unwrap();
    }
    let mut cmd = Command::new(&link);
    cmd.args(args)
        .env("DV_CONFIG_DIR", dir.join("config"))
        .env_remove("DV_AGENT")
        .env_remove("DV_CONTEXT")
        .env_remove("DV_TENANT")
        .env_remove("DV_PROJECT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
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

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// No ANSI escape sequence (colour, cursor movement) anywhere in the output.
fn assert_plain(o: &Output) {
    assert!(
        !o.stdout.contains(&0x1b) && !o.stderr.contains(&0x1b),
        "escape codes in piped output: {}",
        text(o)
    );
}

#[test]
fn every_name_helps_completes_and_prints_plain_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in NAMES {
        let o = run(d, name, &["--help"]);
        assert!(o.status.success(), "{name} --help: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("Examples:"), "{name} --help: {out}");
        assert!(out.contains("completion"), "{name} --help: {out}");
        assert_plain(&o);
    }
    // `dv <family>` is the family: the same subcommands.
    let o = run(d, "dv", &["net", "--help"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("network") && out.contains("address"), "{out}");
    let o = run(d, "dvnet", &["network", "create", "--help"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Examples:"),
        "{}",
        text(&o)
    );

    // Completions: of the name they run under, with its subcommands.
    let o = run(d, "dv", &["completion", "bash"]);
    assert!(o.status.success(), "{}", text(&o));
    let script = String::from_utf8_lossy(&o.stdout);
    for word in ["_dv()", "project", "quota", "offerings", "context", "net"] {
        assert!(script.contains(word), "dv completion bash lacks {word}");
    }
    let o = run(d, "dvce", &["completion", "bash"]);
    let script = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && script.contains("_dvce()"),
        "{}",
        text(&o)
    );
    assert!(script.contains("machine") && script.contains("inventory"));
    let o = run(d, "dvnet", &["completion", "zsh"]);
    let script = String::from_utf8_lossy(&o.stdout);
    assert!(script.starts_with("#compdef dvnet"), "{}", text(&o));
    assert!(script.contains("allocate"), "{script}");
    let o = run(d, "dvos", &["completion", "fish"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("bucket"),
        "{}",
        text(&o)
    );
    let o = run(d, "dv", &["completion", "tcsh"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // Piped: tables and errors without escape codes, whatever NO_COLOR says.
    let o = run(
        d,
        "dv",
        &[
            "context",
            "add",
            "lab",
            "--url",
            "http://127.0.0.1:9",
            "--kind",
            "agent",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run(d, "dv", &["context", "list", "-o", "table"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_plain(&o);
    let o = run(d, "dvnet", &["network", "list"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(stderr(&o).starts_with("error: cannot reach the agent"));
    assert_plain(&o);
    // On a terminal (util-linux `script` gives one): a red `error`, unless
    // NO_COLOR is set.
    if Path::new("/usr/bin/script").exists() {
        let on_tty = |no_color: &str| {
            let line = format!("{} network list", d.join("dvnet").display());
            let mut cmd = Command::new("/usr/bin/script");
            cmd.args(["-qec", &line, "/dev/null"])
                .env("DV_CONFIG_DIR", d.join("config"))
                .env_remove("DV_AGENT")
                .env_remove("DV_CONTEXT");
            match no_color {
                "" => cmd.env_remove("NO_COLOR"),
                v => cmd.env("NO_COLOR", v),
            };
            let o = cmd.output().unwrap();
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        let coloured = on_tty("");
        assert!(coloured.contains("\x1b[31merror\x1b[0m"), "{coloured:?}");
        let plain = on_tty("1");
        assert!(plain.starts_with("error: cannot reach"), "{plain:?}");
        assert!(!plain.contains('\x1b'), "{plain:?}");
    }
    // A hub-only command sent to an agent: refused before any call.
    let o = run(d, "dv", &["project", "list", "--tenant", "acme"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("answered by the hub"), "{}", text(&o));
    assert_plain(&o);
}

#[test]
fn dvnet_networks_addresses_and_wait_progress_against_an_agent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("agent")).unwrap();
    let agent = dv_tests::agent::start_api_only(&workspace_bin("dv-agent"), &d.join("agent"))
        .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"));
    let url = format!("http://{}", agent.http);
    let net = |args: &[&str]| {
        let mut all = vec!["--agent", url.as_str()];
        all.extend_from_slice(args);
        run(d, "dvnet", &all)
    };

    let created = json(&net(&[
        "network",
        "create",
        "tenant-20",
        "--vlan",
        "20",
        "--purpose",
        "tenant",
        "--prefix",
        "10.20.0.0/24",
        "--gateway",
        "10.20.0.1",
        "--reserved",
        "10.20.0.2-10.20.0.9",
        "-o",
        "json",
    ]));
    assert_eq!(created["name"], "tenant-20");
    assert_eq!(created["vlan"], 20);
    assert_eq!(created["prefix"], "10.20.0.0/24");
    // The same VLAN again: the agent's refusal, exit 1.
    let o = net(&[
        "network",
        "create",
        "other",
        "--vlan",
        "20",
        "--purpose",
        "tenant",
        "--prefix",
        "10.21.0.0/24",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("error (409)"), "{}", text(&o));
    // A prefix with host bits: the agent says how to write it (422).
    let o = net(&[
        "network",
        "create",
        "bad",
        "--vlan",
        "30",
        "--purpose",
        "tenant",
        "--prefix",
        "10.30.0.5/24",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("error (422)"), "{}", text(&o));
    assert!(stderr(&o).contains("10.30.0.0/24"), "{}", text(&o));
    // Not a CIDR at all: refused before any call (exit 2).
    let o = net(&[
        "network",
        "create",
        "bad",
        "--vlan",
        "30",
        "--purpose",
        "tenant",
        "--prefix",
        "10.30.0.0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("--prefix is a CIDR"), "{}", text(&o));

    let list = json(&net(&["network", "list", "-o", "json"]));
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["name"], "tenant-20");
    // Through dv, the same answer.
    let again = json(&run(
        d,
        "dv",
        &["net", "--agent", &url, "network", "list", "-o", "json"],
    ));
    assert_eq!(again, list);
    let o = net(&["network", "list", "-o", "table"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("tenant-20"));
    assert_plain(&o);

    // The lowest free address past the gateway and the reserved range.
    let a = json(&net(&[
        "address",
        "allocate",
        "tenant-20",
        "--hostname",
        "web-1",
        "--owner",
        "ticket-42",
        "-o",
        "json",
    ]));
    assert_eq!(a["address"], "10.20.0.10", "{a}");
    assert_eq!(a["hostname"], "web-1");
    let b = json(&net(&[
        "address",
        "allocate",
        "tenant-20",
        "--mac",
        "52:54:00:aa:00:01",
        "--address",
        "10.20.0.50",
        "-o",
        "json",
    ]));
    assert_eq!(b["address"], "10.20.0.50");
    assert_eq!(b["dhcp_reservation"]["ip"], "10.20.0.50", "{b}");
    let addresses = json(&net(&["address", "list", "tenant-20", "-o", "json"]));
    let ips: Vec<&str> = addresses
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["address"].as_str().unwrap())
        .collect();
    assert_eq!(ips, ["10.20.0.10", "10.20.0.50"]);
    // A network holding addresses is not deleted.
    let o = net(&["network", "delete", "tenant-20"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = net(&["address", "release", "tenant-20", "10.20.0.10"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(stderr(&o).contains("10.20.0.10 released on tenant-20"));
    let o = net(&["address", "release", "tenant-20", "10.20.0.10"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("not allocated"), "{}", text(&o));
    let o = net(&["address", "release", "tenant-20", "10.20.0.50"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = net(&["network", "delete", "tenant-20"]);
    assert!(o.status.success(), "{}", text(&o));
    let list = json(&net(&["network", "list", "-o", "json"]));
    assert_eq!(list, serde_json::json!([]));

    // --wait, piped: one plain line per step transition, then the end.
    // The machine has no BMC, so its provisioning fails (exit 4).
    let inventory = d.join("inventory.yaml");
    std::fs::write(
        &inventory,
        "machines:\n  - serial: W-1\n    macs: [\"52:54:00:71:00:01\"]\n    role: worker\n",
    )
    .unwrap();
    let o = run(
        d,
        "dvce",
        &[
            "--agent",
            &url,
            "inventory",
            "import",
            inventory.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        d,
        "dvce",
        &["--agent", &url, "machine", "provision", "W-1", "--wait"],
    );
    eprintln!("provision W-1 --wait: {}", text(&o));
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert_plain(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.len() >= 2,
        "a line per transition expected: {}",
        text(&o)
    );
    assert!(
        lines[0].contains(" running"),
        "first the step starting: {}",
        text(&o)
    );
    assert!(
        lines.iter().any(|l| l.contains(" failed")),
        "then how it ended: {}",
        text(&o)
    );
    assert!(stderr(&o).contains("failed:"), "{}", text(&o));
    drop(agent);
}

#[test]
fn projects_environments_quota_and_offerings_through_a_hub() {
    let test = "projects_environments_quota_and_offerings_through_a_hub";
    let Some(nats) = nats_server_bin(test) else {
        return;
    };
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
    let token = hub.dir.join("token");
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
            token.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));

    // No tenant named anywhere: exit 2 and every way to name one.
    let o = run(d, "dv", &["project", "list"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains("which tenant?"), "{err}");
    assert!(
        err.contains("--tenant") && err.contains("DV_TENANT") && err.contains("dv context set lab"),
        "{err}"
    );

    let o = run(
        d,
        "dv",
        &[
            "tenant",
            "create",
            "acme",
            "--display-name",
            "Acme AS",
            "-o",
            "json",
        ],
    );
    assert_eq!(json(&o)["display_name"], "Acme AS");
    let tenants = json(&run(d, "dv", &["tenant", "list", "-o", "json"]));
    assert_eq!(tenants[0]["name"], "acme", "{tenants}");

    // A project named by flag; then the context's defaults.
    let p = json(&run(
        d,
        "dv",
        &[
            "project",
            "create",
            "web",
            "--tenant",
            "acme",
            "--allowed-site",
            "osl-1",
            "-o",
            "json",
        ],
    ));
    assert_eq!(p["allowed_sites"], serde_json::json!(["osl-1"]));
    let o = run(
        d,
        "dv",
        &[
            "context",
            "use",
            "lab",
            "--tenant",
            "acme",
            "--project",
            "web",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        stderr(&o).contains("tenant acme, project web"),
        "{}",
        text(&o)
    );
    let shown = json(&run(d, "dv", &["project", "show", "-o", "json"]));
    assert_eq!(shown["name"], "web");
    // Defaults given when the context is added work the same.
    let o = run(
        d,
        "dv",
        &[
            "context",
            "add",
            "acme-web",
            "--url",
            &hub_url,
            "--token-file",
            token.to_str().unwrap(),
            "--tenant",
            "acme",
            "--project",
            "web",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let shown = json(&run(
        d,
        "dv",
        &["--context", "acme-web", "project", "show", "-o", "json"],
    ));
    assert_eq!(shown["name"], "web");
    let ctx = json(&run(
        d,
        "dv",
        &["context", "show", "acme-web", "-o", "json"],
    ));
    assert_eq!(
        (ctx["tenant"].as_str(), ctx["project"].as_str()),
        (Some("acme"), Some("web"))
    );
    let list = json(&run(d, "dv", &["project", "list", "-o", "json"]));
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    // The flag beats the context, and the hub's refusal is shown (exit 1).
    let o = run(d, "dv", &["project", "list", "--tenant", "nobody"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("error (404)"), "{}", text(&o));
    assert!(stderr(&o).contains("nobody"), "{}", text(&o));
    // A site the hub does not federate: 422 with the hub's reason.
    let o = run(
        d,
        "dv",
        &["project", "create", "db", "--allowed-site", "xyz-9"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("xyz-9"), "{}", text(&o));

    // Environments of the default project.
    let e = json(&run(
        d,
        "dv",
        &[
            "env",
            "create",
            "prod",
            "--kind",
            "production",
            "-o",
            "json",
        ],
    ));
    assert_eq!(e["kind"], "production");
    let envs = json(&run(d, "dv", &["env", "list", "-o", "json"]));
    assert_eq!(envs[0]["name"], "prod", "{envs}");
    let e = json(&run(d, "dv", &["env", "show", "prod", "-o", "json"]));
    assert_eq!(e["name"], "prod");
    let o = run(d, "dv", &["env", "create", "prod"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("error (409)"), "{}", text(&o));

    // Quota: zero until set; set changes only the limits it names.
    let q = json(&run(d, "dv", &["quota", "show", "-o", "json"]));
    assert_eq!(q["machines"], 0, "{q}");
    let q = json(&run(
        d,
        "dv",
        &[
            "quota",
            "set",
            "--machines",
            "4",
            "--vcpus",
            "64",
            "-o",
            "json",
        ],
    ));
    assert_eq!(
        (q["machines"].as_u64(), q["vcpus"].as_u64()),
        (Some(4), Some(64))
    );
    let q = json(&run(
        d,
        "dv",
        &["quota", "set", "--buckets", "2", "-o", "json"],
    ));
    assert_eq!(q["machines"], 4, "{q}");
    assert_eq!(q["buckets"], 2, "{q}");
    let q = json(&run_env(
        d,
        "dv",
        &["quota", "show", "-o", "json"],
        &[("DV_PROJECT", "web")],
    ));
    assert_eq!(
        (q["vcpus"].as_u64(), q["buckets"].as_u64()),
        (Some(64), Some(2))
    );
    let o = run(d, "dv", &["quota", "set"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // Networks live in a site's agent: said plainly, with where to go.
    let o = run(d, "dvnet", &["network", "list"]);
    eprintln!("dvnet network list through the hub: {}", text(&o));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains("kept by each site's agent"), "{err}");
    assert!(
        err.contains("--agent") && err.contains("--kind agent"),
        "{err}"
    );
    assert_plain(&o);

    // dvke (and the others) never pretend: exit 1 with what is missing, or
    // that this hub cannot say.
    for (name, noun, what) in [
        ("dvke", "cluster", "create a Kubernetes cluster (demo)"),
        ("dvapp", "app", "create an app (demo)"),
        ("dvos", "bucket", "create a bucket (demo)"),
    ] {
        let o = run(d, name, &[noun, "create", "demo"]);
        eprintln!("{name} {noun} create demo: {}", text(&o));
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o));
        let err = stderr(&o);
        assert!(err.contains(&format!("cannot {what}")), "{name}: {err}");
        assert!(
            err.contains("does not offer")
                || err.contains("not ready")
                || err.contains("not available")
                || err.contains("cannot request it yet"),
            "{name}: {err}"
        );
        assert!(err.contains("nothing was created"), "{name}: {err}");
        assert!(o.stdout.is_empty(), "{name}: {}", text(&o));
    }
    // dv offerings: the table if the hub lists offerings, else why not.
    let o = run(d, "dv", &["offerings", "-o", "json"]);
    if o.status.success() {
        let offerings = json(&o);
        let ke = offerings
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["cli"] == "dvke")
            .unwrap_or_else(|| panic!("no dvke offering: {offerings}"));
        assert!(ke["prerequisites"].is_array(), "{ke}");
    } else {
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            stderr(&o).contains("this hub does not offer an offerings list"),
            "{}",
            text(&o)
        );
    }

    // Children first: a project with an environment is not deleted.
    let o = run(d, "dv", &["project", "delete", "web"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("prod"), "{}", text(&o));
    let o = run(d, "dv", &["env", "delete", "prod"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(d, "dv", &["project", "delete", "web"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(d, "dv", &["project", "list", "-o", "json"]);
    assert_eq!(json(&o), serde_json::json!([]));
    let o = run(d, "dv", &["tenant", "delete", "acme"]);
    assert!(o.status.success(), "{}", text(&o));
    drop(hub);
}
