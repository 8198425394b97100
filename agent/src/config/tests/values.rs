//! Rules on single values (the `convert` step): each malformed value is
//! reported at its own line with its own field path.

use super::{edit, expect_only, load, problems};

#[test]
fn site_name_follows_the_token_rule() {
    let text = edit("name = \"lab\"", "name = \"Lab\"");
    expect_only(&text, "\"Lab\"", "site.name", "only lower-case");
}

#[test]
fn site_names_mgmt_and_hub_are_reserved() {
    let text = edit("name = \"lab\"", "name = \"mgmt\"");
    expect_only(&text, "\"mgmt\"", "site.name", "management zone");
    let text = edit("name = \"lab\"", "name = \"hub\"");
    expect_only(&text, "\"hub\"", "site.name", "reserved");
}

#[test]
fn domain_must_be_a_lower_case_dns_name() {
    let text = edit(
        "domain = \"dataverket.test\"",
        "domain = \"Dataverket.test\"",
    );
    expect_only(&text, "Dataverket", "site.domain", "lower-case");
    let text = edit(
        "domain = \"dataverket.test\"",
        "domain = \"dataverket.test.\"",
    );
    expect_only(&text, "dataverket.test.", "site.domain", "root dot");
}

#[test]
fn data_dir_must_not_be_empty() {
    let text = edit("data_dir = \"data\"", "data_dir = \"\"");
    expect_only(&text, "data_dir", "site.data_dir", "empty");
}

#[test]
fn http_listen_needs_a_port() {
    let text = edit(
        "[management]",
        "[http]\nlisten = \"127.0.0.1\"\n\n[management]",
    );
    expect_only(
        &text,
        "listen = \"127.0.0.1\"",
        "http.listen",
        "address:port",
    );
}

#[test]
fn interface_names_follow_linux_rules() {
    let text = edit(
        "interface = \"dvlab0\"\nprefix",
        "interface = \"a-very-long-bridge\"\nprefix",
    );
    expect_only(
        &text,
        "a-very-long-bridge",
        "management.interface",
        "at most 15",
    );
}

#[test]
fn prefixes_have_no_host_bits() {
    let text = edit("prefix = \"10.78.0.0/24\"", "prefix = \"10.78.0.7/24\"");
    expect_only(
        &text,
        "10.78.0.7/24",
        "dhcp.subnets[1].prefix",
        "the network is 10.78.0.0/24",
    );
}

#[test]
fn addresses_must_parse() {
    let text = edit("gateway = \"10.77.0.1\"", "gateway = \"10.77.0.256\"");
    expect_only(
        &text,
        "10.77.0.256",
        "management.gateway",
        "not an IPv4 address",
    );
}

#[test]
fn mtu_is_between_576_and_9216() {
    let text = edit("lease_time = \"12h\"", "lease_time = \"12h\"\nmtu = 100000");
    expect_only(&text, "mtu", "dhcp.subnets[0].mtu", "576..=9216");
}

#[test]
fn durations_are_humantime_whole_seconds() {
    let text = edit("lease_time = \"12h\"", "lease_time = \"12 parsecs\"");
    expect_only(
        &text,
        "parsecs",
        "dhcp.subnets[0].lease_time",
        "not a duration",
    );
    let text = edit("upstreams", "ttl = \"1500ms\"\nupstreams");
    expect_only(&text, "1500ms", "dns.ttl", "whole number of seconds");
}

#[test]
fn a_reservation_has_exactly_one_of_mac_and_client_id() {
    let text = edit(
        "mac = \"52:54:00:00:77:01\"",
        "mac = \"52:54:00:00:77:01\"\nclient_id = \"01:02\"",
    );
    expect_only(
        &text,
        "client_id = \"01:02\"",
        "dhcp.subnets[0].reservations[0].client_id",
        "not both",
    );
    // Neither: the field does not exist, so the report points at the header.
    let text = edit("client_id = \"01:52:54:00:00:78:01\"\n", "");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].field, "dhcp.subnets[1].reservations[0].mac");
    assert!(found[0].message.contains("needs mac or client_id"));
    let header = text
        .match_indices("[[dhcp.subnets.reservations]]")
        .nth(1)
        .unwrap()
        .0;
    assert_eq!(found[0].line, text[..header].matches('\n').count() + 1);
}

#[test]
fn macs_are_unicast_and_client_ids_are_hex_octets() {
    let text = edit("mac = \"52:54:00:00:77:01\"", "mac = \"01:00:5e:00:00:01\"");
    expect_only(
        &text,
        "01:00:5e",
        "dhcp.subnets[0].reservations[0].mac",
        "multicast",
    );
    let text = edit(
        "client_id = \"01:52:54:00:00:78:01\"",
        "client_id = \"node-11\"",
    );
    expect_only(
        &text,
        "client_id",
        "dhcp.subnets[1].reservations[0].client_id",
        "hex",
    );
}

#[test]
fn hostnames_are_dns_labels() {
    let text = edit("hostname = \"node-01\"", "hostname = \"node_01\"");
    expect_only(
        &text,
        "node_01",
        "dhcp.subnets[0].reservations[0].hostname",
        "contains '_'",
    );
}

#[test]
fn upstreams_are_addresses_with_an_optional_port() {
    let text = edit(
        "upstreams = [\"192.0.2.53\"]",
        "upstreams = [\"192.0.2.53\", \"resolver\"]",
    );
    expect_only(&text, "resolver", "dns.upstreams[1]", "not an IP address");
    let text = edit(
        "upstreams = [\"192.0.2.53\"]",
        "upstreams = [\"[2001:db8::53]:5353\"]",
    );
    assert_eq!(load(&text).unwrap().dns.upstreams[0].port(), 5353);
}

#[test]
fn names_in_the_dns_sections_are_labels() {
    let text = edit("name = \"artifacts\"", "name = \"Artifacts\"");
    expect_only(&text, "Artifacts", "dns.services[0].name", "lower-case");
    let text = edit("{ segment = \"oob\"", "{ segment = \"o.o.b\"");
    expect_only(
        &text,
        "o.o.b",
        "dns.hosts[1].interfaces[1].segment",
        "contains '.'",
    );
}
