//! `[provision]`: the defaults, and a bad timeout reported at its line.

use std::time::Duration;

use super::{FIXTURE, edit, expect_only, load};

#[test]
fn absent_means_half_an_hour_each() {
    let p = load(FIXTURE).unwrap().provision;
    assert_eq!(p.install_timeout, Duration::from_secs(1800));
    assert_eq!(p.wipe_timeout, Duration::from_secs(1800));
    let text = edit(
        "[management]",
        "[provision]\ninstall_timeout = \"45m\"\n\n[management]",
    );
    let p = load(&text).unwrap().provision;
    assert_eq!(p.install_timeout, Duration::from_secs(45 * 60));
    assert_eq!(p.wipe_timeout, Duration::from_secs(1800));
}

#[test]
fn a_bad_timeout_names_its_field() {
    let text = edit(
        "[management]",
        "[provision]\nwipe_timeout = \"soon\"\n\n[management]",
    );
    expect_only(
        &text,
        "wipe_timeout = \"soon\"",
        "provision.wipe_timeout",
        "not a duration",
    );
}
