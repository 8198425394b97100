//! `[nats]`: absent means no federation; the defaults; every bad value
//! reported at its line.

use std::time::Duration;

use super::{FIXTURE, edit, expect_only, load, problems};

fn with(section: &str) -> String {
    edit(
        "[management]",
        &format!("[nats]\n{section}\n\n[management]"),
    )
}

#[test]
fn absent_means_no_federation_and_defaults_fill_an_empty_section() {
    assert_eq!(load(FIXTURE).unwrap().nats, None);
    let config = load(&with("")).unwrap();
    let nats = config.nats.clone().unwrap();
    assert_eq!(nats.url(), "nats://127.0.0.1:4222");
    assert_eq!(nats.domain, "lab");
    assert!(nats.hub.is_empty());
    assert_eq!(nats.heartbeat_interval, Duration::from_secs(10));
    assert_eq!(nats.store_dir, config.site.data_dir.join("nats"));
    let summary = config.summary();
    assert!(
        summary.contains(
            "nats: leaf node nats://127.0.0.1:4222, JetStream domain lab, hub none, heartbeat every 10s"
        ),
        "{summary}"
    );
    assert!(load(FIXTURE).unwrap().summary().contains("nats: off"));
}

#[test]
fn values_are_read_and_normalised() {
    let nats = load(&with(
        "url = \"nats://127.0.0.1:14222\"\ndomain = \"lab-dc\"\n\
         hub = [\"nats-leaf://hub-1.example:7422\", \"nats://10.0.0.2:7422\"]\n\
         heartbeat_interval = \"2s\"\nstore_dir = \"/var/lib/nats\"",
    ))
    .unwrap()
    .nats
    .unwrap();
    assert_eq!(nats.client.port(), 14222);
    assert_eq!(nats.domain, "lab-dc");
    assert_eq!(
        nats.hub,
        [
            "nats-leaf://hub-1.example:7422",
            "nats-leaf://10.0.0.2:7422"
        ]
    );
    assert_eq!(nats.heartbeat_interval, Duration::from_secs(2));
    assert_eq!(nats.store_dir, std::path::Path::new("/var/lib/nats"));
}

#[test]
fn a_bad_url_names_its_field() {
    let text = with("url = \"http://127.0.0.1:4222\"");
    expect_only(&text, "http://", "nats.url", "nats://<ip>:<port>");
    let text = with("url = \"tls://127.0.0.1:4222\"");
    expect_only(&text, "tls://", "nats.url", "not supported yet");
}

#[test]
fn a_bad_domain_names_its_field() {
    expect_only(
        &with("domain = \"Lab\""),
        "domain = \"Lab\"",
        "nats.domain",
        "JetStream domain",
    );
    expect_only(
        &with("domain = \"hub\""),
        "domain = \"hub\"",
        "nats.domain",
        "hub's own",
    );
}

#[test]
fn bad_hub_urls_and_intervals_are_all_reported() {
    let text = with(
        "hub = [\"nats-leaf://ok:7422\", \"nats-leaf://noport\", \"ftp://x:1\"]\n\
         heartbeat_interval = \"2h\"",
    );
    let found = problems(&text);
    let fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        ["nats.hub[1]", "nats.hub[2]", "nats.heartbeat_interval"],
        "{found:?}"
    );
    assert!(found[0].message.contains("no port"), "{found:?}");
    assert!(found[2].message.contains("1h limit"), "{found:?}");
}

#[test]
fn hub_credentials_and_tls_paths_are_relative_to_the_file() {
    let config = load(&with(
        "hub = [\"nats-leaf://hub-1.example:7422\"]\nhub_password_file = \"kit/password\"\n\
         hub_ca = \"/etc/dv/ca.pem\"",
    ))
    .unwrap();
    let nats = config.nats.clone().unwrap();
    let credentials = nats.hub_credentials.unwrap();
    assert_eq!(credentials.user, "site-lab");
    assert!(credentials.password_file.is_absolute());
    assert!(credentials.password_file.ends_with("kit/password"));
    let tls = nats.hub_tls.unwrap();
    assert_eq!(tls.ca, std::path::Path::new("/etc/dv/ca.pem"));
    assert!(tls.identity.is_none());
    assert!(config.summary().contains("nats: hub user site-lab"));
    assert!(config.summary().contains("nats: TLS to the hub"));
    // Neither set: a plain, anonymous leaf link, as before.
    let plain = load(&with("")).unwrap().nats.unwrap();
    assert_eq!((plain.hub_credentials, plain.hub_tls), (None, None));
}

#[test]
fn hub_credential_and_tls_combinations_are_checked() {
    let found = problems(&with(
        "hub_user = \"x\"\nhub_cert = \"c.pem\"\nhub_key = \"k.pem\"",
    ));
    let mut fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["nats.hub_ca", "nats.hub_user"], "{found:?}");
    let found = problems(&with(
        "hub_password_file = \"p\"\nhub_user = \"a:b@c\"\nhub_ca = \"ca.pem\"\nhub_cert = \"c.pem\"",
    ));
    let mut fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["nats.hub_key", "nats.hub_user"], "{found:?}");
}

#[test]
fn unknown_keys_are_refused() {
    let found = problems(&with("creds = \"x.creds\""));
    assert_eq!(found.len(), 1, "{found:?}");
}
