//! A site agent accepting OIDC logins (`[api] issuer`) with the roles its
//! own config grants (ADR 0013: an agent decides offline), through the
//! real `dv` binaries, a real `dv-agent` and a real oidc-provider issuer:
//! the platform operator reads and changes, the viewer reads and is
//! refused changes (403, exit 6), a user the agent grants nothing is
//! refused even reads, and the site token still works beside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dv_tests::oidc::{CLIENT_ID, Issuer};
use dv_tests::process::Guarded;

/// `dv` as `name`, with `config` as its configuration directory.
fn dv(bin: &Path, config: &Path, name: &str, args: &[&str]) -> Command {
    let link = bin.join(name);
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_dv"), &link).unwrap();
    }
    let mut c = Command::new(link);
    c.args(args)
        .env("DV_CONFIG_DIR", config)
        .env("NO_COLOR", "1")
        .env_remove("DV_AGENT")
        .env_remove("DV_CONTEXT")
        .env_remove("DV_TOKEN")
        .env_remove("DISPLAY");
    c
}

fn shown(o: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A user with their own config directory and a context for the agent,
/// logged in through the issuer.
fn user(bin: &Path, root: &Path, agent: &str, issuer: &Issuer, email: &str) -> PathBuf {
    let config = root.join(email);
    let o = dv(
        bin,
        &config,
        "dv",
        &["context", "add", "site", "--url", agent, "--kind", "agent"],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", shown(&o));
    let log = root.join(format!("{email}.login"));
    let mut child = Guarded::spawn(
        dv(
            bin,
            &config,
            "dvid",
            &[
                "login",
                "--no-browser",
                "--issuer",
                issuer.url(),
                "--client-id",
                CLIENT_ID,
            ],
        )
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap()),
    )
    .unwrap();
    let stdout = child.child().unwrap().stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let code = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("and enter the code: ")
                .map(|c| c.trim().to_owned())
        })
        .unwrap_or_else(|| {
            panic!(
                "no code: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    issuer.approve(&code, email);
    let status = child
        .wait_timeout(Duration::from_secs(60))
        .expect("login ends");
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    config
}

#[test]
fn an_agent_grants_oidc_users_what_its_config_says_and_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let issuer = Issuer::start(&d.join("issuer"));
    std::fs::write(d.join("site-token"), "site-s3cret\n").unwrap();
    let extra = format!(
        "[api]\ntoken_file = \"site-token\"\nissuer = \"{}\"\naudience = \"{CLIENT_ID}\"\n\
         platform_operators = [\"user:alice@example.com\"]\nviewers = [\"user:bob@example.com\"]\n",
        issuer.url()
    );
    let agent_dir = d.join("agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    std::fs::copy(d.join("site-token"), agent_dir.join("site-token")).unwrap();
    let agent = dv_tests::agent::start_api_only_with(
        &dv_tests::hub::workspace_bin("dv-agent"),
        &agent_dir,
        &extra,
    )
    .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"));
    let url = format!("http://{}", agent.http);
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let inventory = d.join("inventory.yaml");
    std::fs::write(
        &inventory,
        "machines:\n  - serial: SN-OIDC\n    macs: [\"52:54:00:45:00:01\"]\n    role: worker\n",
    )
    .unwrap();
    let import = ["dvce", "inventory", "import"];

    // alice: platform-operator here.
    let alice = user(&bin, d, &url, &issuer, "alice@example.com");
    let o = dv(
        &bin,
        &alice,
        "dvce",
        &["inventory", "import", inventory.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", shown(&o));
    let o = dv(&bin, &alice, "dvce", &["machine", "list", "-o", "json"])
        .output()
        .unwrap();
    assert!(
        o.status.success() && shown(&o).contains("SN-OIDC"),
        "{}",
        shown(&o)
    );

    // bob: viewer. Reads; a change is refused and changes nothing.
    let bob = user(&bin, d, &url, &issuer, "bob@example.com");
    let o = dv(&bin, &bob, "dvce", &["machine", "list", "-o", "json"])
        .output()
        .unwrap();
    assert!(
        o.status.success() && shown(&o).contains("SN-OIDC"),
        "{}",
        shown(&o)
    );
    let o = dv(
        &bin,
        &bob,
        import[0],
        &[import[1], import[2], inventory.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(6), "{}", shown(&o));
    assert!(
        shown(&o).contains("user:bob@example.com may not change anything"),
        "{}",
        shown(&o)
    );

    // carol: a valid login the agent grants nothing.
    let carol = user(&bin, d, &url, &issuer, "carol@example.com");
    let o = dv(&bin, &carol, "dvce", &["machine", "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(6), "{}", shown(&o));

    // The site token works beside them; no token at all is 401.
    let o = dv(&bin, &carol, "dvce", &["machine", "list", "-o", "json"])
        .env("DV_TOKEN", "site-s3cret")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", shown(&o));
    let o = dv(
        &bin,
        &d.join("nobody"),
        "dvce",
        &["--agent", &url, "machine", "list"],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(6), "{}", shown(&o));
}
