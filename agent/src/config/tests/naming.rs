//! Rules of the naming model: hosts, interface identities, services, the
//! site zone, and forwarding.

use super::{edit, expect_only, expect_some, problems};

#[test]
fn a_host_is_defined_once() {
    let text = edit("name = \"console-01\"", "name = \"provisioner-01\"");
    let found = problems(&text);
    assert_eq!(found[0].field, "dns.hosts[1].name", "{found:#?}");
    assert!(
        found[0]
            .message
            .contains("already a management host (dns.hosts[0])")
    );
}

#[test]
fn a_host_has_one_interface_per_segment() {
    let text = edit("{ segment = \"oob\"", "{ segment = \"lab\"");
    // console-01-oob is gone too, so its service reports as well.
    expect_some(
        &text,
        "{ segment = \"lab\", address = \"10.79",
        "dns.hosts[1].interfaces[1].segment",
        "already has an interface on segment lab",
    );
}

#[test]
fn management_segment_addresses_are_in_the_management_prefix() {
    let text = edit("address = \"10.77.0.20\"", "address = \"10.78.0.20\"");
    expect_only(
        &text,
        "10.78.0.20",
        "dns.hosts[1].interfaces[0].address",
        "management segment",
    );
}

#[test]
fn an_interface_identity_is_not_another_name() {
    let text = edit("name = \"console\"", "name = \"console-01-oob\"");
    expect_only(
        &text,
        "name = \"console-01-oob\"",
        "dns.services[1].name",
        "interface identity of host console-01",
    );
}

#[test]
fn a_name_is_a_host_or_a_service_not_both() {
    let text = edit("name = \"artifacts\"", "name = \"console-01\"");
    let found = problems(&text);
    assert_eq!(found[0].field, "dns.services[0].name", "{found:#?}");
    assert!(
        found[0]
            .message
            .contains("a name is a host or a service, not both")
    );
}

#[test]
fn a_service_points_at_a_host_not_a_service() {
    let text = edit("host = \"console-01-oob\"", "host = \"artifacts\"");
    expect_only(
        &text,
        "host = \"artifacts\"",
        "dns.services[1].host",
        "CNAME chain",
    );
}

#[test]
fn a_service_points_at_something_that_exists() {
    let text = edit("host = \"console-01-oob\"", "host = \"console-02\"");
    expect_only(
        &text,
        "console-02",
        "dns.services[1].host",
        "hosts: provisioner-01, console-01",
    );
}

#[test]
fn a_service_on_a_multi_homed_host_names_the_interface() {
    let text = edit("host = \"console-01-oob\"", "host = \"console-01\"");
    expect_only(
        &text,
        "host = \"console-01\"",
        "dns.services[1].host",
        "console-01-lab, console-01-oob",
    );
}

#[test]
fn site_aliases_are_services() {
    let text = edit(
        "services = [\"artifacts\"]",
        "services = [\"artifacts\", \"pxe\"]",
    );
    expect_only(
        &text,
        "\"pxe\"",
        "dns.site.services[1]",
        "not defined in [[dns.services]]",
    );
    let text = edit(
        "services = [\"artifacts\"]",
        "services = [\"artifacts\", \"artifacts\"]",
    );
    expect_only(
        &text,
        "services = [",
        "dns.site.services[1]",
        "listed twice",
    );
}

#[test]
fn the_site_zone_does_not_define_management_records() {
    let text = edit(
        "services = [\"artifacts\"]",
        "services = [\"provisioner-01\"]",
    );
    expect_only(
        &text,
        "services = [\"provisioner-01\"]",
        "dns.site.services[0]",
        "must not define management-plane records",
    );
    let text = edit("hostname = \"node-11\"", "hostname = \"console-01\"");
    expect_only(
        &text,
        "hostname = \"console-01\"",
        "dhcp.subnets[1].reservations[0].hostname",
        "must not define management-plane records",
    );
    let text = edit("hostname = \"node-11\"", "hostname = \"artifacts\"");
    expect_only(
        &text,
        "hostname = \"artifacts\"",
        "dhcp.subnets[1].reservations[0].hostname",
        "site alias",
    );
}

#[test]
fn the_dns_server_does_not_forward_to_itself() {
    let text = edit(
        "upstreams = [\"192.0.2.53\"]",
        "listen = [\"0.0.0.0\"]\nupstreams = [\"192.0.2.53\", \"127.0.0.1\"]",
    );
    expect_only(&text, "upstreams", "dns.upstreams[1]", "would loop");
    let text = edit(
        "upstreams = [\"192.0.2.53\"]",
        "listen = []\nupstreams = [\"192.0.2.53\"]",
    );
    expect_only(&text, "listen = []", "dns.listen", "empty");
}

#[test]
fn names_fit_in_a_dns_name() {
    let long = [
        "a".repeat(60),
        "b".repeat(60),
        "c".repeat(60),
        "d".repeat(60),
    ]
    .join(".");
    let text = edit(
        "domain = \"dataverket.test\"",
        &format!("domain = \"{long}\""),
    );
    let found = problems(&text);
    assert!(
        found
            .iter()
            .any(|p| p.field == "dns.hosts[0].name" && p.message.contains("at most 253")),
        "{found:#?}"
    );
}
