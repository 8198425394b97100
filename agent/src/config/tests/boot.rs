//! `[boot]` and `[tftp]`: defaults derived from the site, and each malformed
//! value reported at its line.

use std::path::PathBuf;

use super::{FIXTURE, edit, expect_only, load};
use crate::boot::BootState;

#[test]
fn defaults_follow_the_bootstrap_address_and_data_dir() {
    let config = load(FIXTURE).unwrap();
    assert_eq!(config.boot.http_url, "http://10.77.0.1:8680");
    assert_eq!(config.boot.firmware_dir, PathBuf::from("/usr/lib/ipxe"));
    assert_eq!(
        config.boot.artifacts_dir,
        PathBuf::from("/etc/dataverket/data/artifacts")
    );
    assert_eq!(config.boot.default_state, BootState::Discover);
    assert_eq!(config.tftp.listen.to_string(), "10.77.0.1:69");
    assert!(config.tftp.enabled, "bootstrap authority serves TFTP");
    let summary = config.summary();
    assert!(
        summary.contains("tftp: listen 10.77.0.1:69 (enabled)"),
        "{summary}"
    );
}

#[test]
fn explicit_values_are_used() {
    let text = edit(
        "[management]",
        "[boot]\nhttp_url = \"http://pxe.lab.dataverket.test:8080/\"\nfirmware_dir = \"fw\"\n\
         artifacts_dir = \"/srv/artifacts\"\ndefault_state = \"local\"\n\n\
         [tftp]\nlisten = \"127.0.0.1:6969\"\nenabled = false\n\n[management]",
    );
    let config = load(&text).unwrap();
    assert_eq!(config.boot.http_url, "http://pxe.lab.dataverket.test:8080");
    assert_eq!(
        config.boot.firmware_dir,
        PathBuf::from("/etc/dataverket/fw")
    );
    assert_eq!(config.boot.artifacts_dir, PathBuf::from("/srv/artifacts"));
    assert_eq!(config.boot.default_state, BootState::Local);
    assert_eq!(config.tftp.listen.to_string(), "127.0.0.1:6969");
    assert!(!config.tftp.enabled);
}

#[test]
fn production_authority_leaves_tftp_off() {
    let text = edit("authority = \"bootstrap\"", "authority = \"production\"");
    assert!(!load(&text).unwrap().tftp.enabled);
}

#[test]
fn malformed_boot_values_name_their_line_and_field() {
    let text = edit(
        "[management]",
        "[boot]\nhttp_url = \"ftp://x\"\n\n[management]",
    );
    expect_only(&text, "ftp://x", "boot.http_url", "must start with http://");
    let text = edit(
        "[management]",
        "[boot]\nhttp_url = \"http://x/?a=1\"\n\n[management]",
    );
    expect_only(&text, "http://x/?a=1", "boot.http_url", "query");
    let text = edit(
        "[management]",
        "[boot]\ndefault_state = \"install\"\n\n[management]",
    );
    expect_only(
        &text,
        "\"install\"",
        "boot.default_state",
        "cannot be the default",
    );
    let text = edit(
        "[management]",
        "[boot]\ndefault_state = \"wipe\"\n\n[management]",
    );
    expect_only(&text, "\"wipe\"", "boot.default_state", "never a default");
    let text = edit(
        "[management]",
        "[boot]\ndefault_state = \"disk\"\n\n[management]",
    );
    expect_only(
        &text,
        "\"disk\"",
        "boot.default_state",
        "discover, install, local, rescue",
    );
    let text = edit(
        "[management]",
        "[boot]\nfirmware_dir = \"\"\n\n[management]",
    );
    expect_only(&text, "firmware_dir", "boot.firmware_dir", "empty");
    let text = edit(
        "[management]",
        "[tftp]\nlisten = \"nowhere\"\n\n[management]",
    );
    expect_only(&text, "nowhere", "tftp.listen", "not an IP address");
    let text = edit("[management]", "[tftp]\nport = 69\n\n[management]");
    expect_only(&text, "port = 69", "tftp.port", "unknown field `port`");
}
