//! Rules relating addresses: the management segment, DHCP subnets, timers,
//! routes, pools and reservations.

use super::{edit, expect_only, line_of, problems};

#[test]
fn gateway_is_a_host_address_inside_the_management_prefix() {
    let text = edit("gateway = \"10.77.0.1\"", "gateway = \"10.77.0.255\"");
    let found = problems(&text);
    // The agent's host record no longer matches either; the gateway itself
    // is the first problem.
    assert_eq!(found[0].field, "management.gateway", "{found:#?}");
    assert!(
        found[0]
            .message
            .contains("broadcast address of the management prefix")
    );
}

#[test]
fn production_address_is_not_the_gateway() {
    let text = edit(
        "production_address = \"10.77.0.5\"",
        "production_address = \"10.77.0.1\"",
    );
    expect_only(
        &text,
        "production_address",
        "management.production_address",
        "is the gateway",
    );
}

#[test]
fn production_authority_needs_a_production_address() {
    let text = edit("authority = \"bootstrap\"", "authority = \"production\"").replacen(
        "production_address = \"10.77.0.5\"\n",
        "",
        1,
    );
    expect_only(
        &text,
        "[management]",
        "management.production_address",
        "required when site.authority",
    );
}

#[test]
fn the_agent_host_must_be_a_dns_host() {
    let text = edit(
        "host = \"provisioner-01\"\n\n[[dhcp",
        "host = \"provisioner-02\"\n\n[[dhcp",
    );
    expect_only(
        &text,
        "provisioner-02",
        "management.host",
        "no [[dns.hosts]] entry",
    );
}

#[test]
fn the_agent_host_record_holds_the_bootstrap_address() {
    let text = edit(
        "{ segment = \"lab\", address = \"10.77.0.1\" }",
        "{ segment = \"lab\", address = \"10.77.0.2\" }",
    );
    expect_only(
        &text,
        "10.77.0.2\"",
        "dns.hosts[0].interfaces[0].address",
        "management.bootstrap_address",
    );
    let text = edit(
        "{ segment = \"lab\", address = \"10.77.0.1\" }",
        "{ segment = \"dev\", address = \"10.77.0.1\" }",
    );
    expect_only(
        &text,
        "segment = \"dev\"",
        "dns.hosts[0].interfaces",
        "no interface on the management segment",
    );
}

#[test]
fn subnets_do_not_overlap() {
    let text = edit("prefix = \"10.78.0.0/24\"", "prefix = \"10.77.0.0/16\"");
    let found = problems(&text);
    assert_eq!(found[0].field, "dhcp.subnets[1].prefix", "{found:#?}");
    assert!(
        found[0]
            .message
            .contains("overlaps dhcp.subnets[0] (10.77.0.0/24)")
    );
}

#[test]
fn router_is_inside_its_subnet() {
    let text = edit("router = \"10.78.0.1\"", "router = \"10.77.0.1\"");
    expect_only(
        &text,
        "router = \"10.77.0.1\"\n\n[[dhcp.subnets.pools]]\nstart = \"10.78",
        "dhcp.subnets[1].router",
        "outside the subnet 10.78.0.0/24",
    );
}

#[test]
fn renew_before_rebind_before_lease() {
    let text = edit(
        "lease_time = \"12h\"",
        "lease_time = \"12h\"\nrenew_time = \"11h\"",
    );
    expect_only(
        &text,
        "renew_time",
        "dhcp.subnets[0].renew_time",
        "shorter than rebind_time 10h 30m",
    );
    let text = edit(
        "lease_time = \"12h\"",
        "lease_time = \"12h\"\nrebind_time = \"12h\"",
    );
    expect_only(
        &text,
        "rebind_time",
        "dhcp.subnets[0].rebind_time",
        "shorter than lease_time 12h",
    );
}

#[test]
fn classless_routes_are_on_link_unique_and_keep_the_default_route() {
    let route = |routes: &str| {
        edit(
            "router = \"10.78.0.1\"",
            &format!("router = \"10.78.0.1\"\nclassless_routes = [{routes}]"),
        )
    };
    let text = route(
        "{ destination = \"0.0.0.0/0\", gateway = \"10.78.0.1\" }, { destination = \"10.80.0.0/16\", gateway = \"10.99.0.1\" }",
    );
    expect_only(
        &text,
        "classless_routes",
        "dhcp.subnets[1].classless_routes[1].gateway",
        "on-link",
    );
    let text = route(
        "{ destination = \"0.0.0.0/0\", gateway = \"10.78.0.1\" }, { destination = \"0.0.0.0/0\", gateway = \"10.78.0.2\" }",
    );
    expect_only(
        &text,
        "classless_routes",
        "dhcp.subnets[1].classless_routes[1].destination",
        "already routed",
    );
    let text = route("{ destination = \"10.80.0.0/16\", gateway = \"10.78.0.2\" }");
    expect_only(
        &text,
        "classless_routes",
        "dhcp.subnets[1].classless_routes",
        "RFC 3442",
    );
}

#[test]
fn pool_bounds_are_inside_the_subnet() {
    let text = edit("end = \"10.77.0.199\"", "end = \"10.77.1.9\"");
    expect_only(
        &text,
        "10.77.1.9",
        "dhcp.subnets[0].pools[0].end",
        "10.77.1.9 is outside the subnet 10.77.0.0/24",
    );
    let text = edit("end = \"10.78.0.199\"", "end = \"10.78.0.255\"");
    expect_only(
        &text,
        "10.78.0.255",
        "dhcp.subnets[1].pools[1].end",
        "broadcast address",
    );
}

#[test]
fn a_pool_starts_before_it_ends() {
    let text = edit("end = \"10.78.0.149\"", "end = \"10.78.0.90\"");
    expect_only(
        &text,
        "10.78.0.90",
        "dhcp.subnets[1].pools[0].end",
        "before it starts",
    );
}

#[test]
fn pools_do_not_overlap() {
    let text = edit("start = \"10.78.0.150\"", "start = \"10.78.0.140\"");
    expect_only(
        &text,
        "10.78.0.140",
        "dhcp.subnets[1].pools[1].start",
        "overlaps pools[0]",
    );
}

#[test]
fn pools_leave_infrastructure_and_host_addresses_alone() {
    let text = edit("start = \"10.77.0.100\"", "start = \"10.77.0.2\"");
    let line = line_of(&text, "10.77.0.2\"");
    let found = problems(&text);
    let pool: Vec<&str> = (found.iter())
        .filter(|p| p.field == "dhcp.subnets[0].pools[0].start" && p.line == line)
        .map(|p| p.message.as_str())
        .collect();
    assert_eq!(pool.len(), 2, "{found:#?}");
    assert!(pool[0].contains("contains 10.77.0.5, management.production_address"));
    assert!(pool[1].contains("contains 10.77.0.20, the address of console-01"));
    // The reservation now inside the pool is reported on the reservation.
    assert_eq!(found.len(), 3, "{found:#?}");
    assert_eq!(found[2].field, "dhcp.subnets[0].reservations[0].ip");
}

#[test]
fn reservations_are_inside_their_subnet_and_outside_pools() {
    let text = edit("ip = \"10.77.0.11\"", "ip = \"10.78.0.12\"");
    expect_only(
        &text,
        "10.78.0.12",
        "dhcp.subnets[0].reservations[0].ip",
        "outside the subnet",
    );
    let text = edit("ip = \"10.77.0.11\"", "ip = \"10.77.0.150\"");
    expect_only(
        &text,
        "10.77.0.150",
        "dhcp.subnets[0].reservations[0].ip",
        "inside pools[0]",
    );
    let text = edit("ip = \"10.78.0.11\"", "ip = \"10.78.0.1\"");
    expect_only(
        &text,
        "ip = \"10.78.0.1\"",
        "dhcp.subnets[1].reservations[0].ip",
        "router",
    );
}

#[test]
fn reservations_are_unique_across_the_site() {
    let second = "[[dhcp.subnets.reservations]]\nmac = \"52:54:00:00:77:01\"\nip = \"10.78.0.12\"\nhostname = \"node-01\"\n\n[dns]";
    let text = edit("[dns]\n", &format!("{second}\n"));
    let found = problems(&text);
    let fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "dhcp.subnets[1].reservations[1].mac",
            "dhcp.subnets[1].reservations[1].hostname"
        ]
    );
    assert!(
        found[0]
            .message
            .contains("already has a reservation: dhcp.subnets[0].reservations[0]")
    );
    let text = edit(
        "ip = \"10.78.0.11\"\nhostname = \"node-11\"",
        "ip = \"10.78.0.11\"\nhostname = \"node-11\"\n\n[[dhcp.subnets.reservations]]\nmac = \"52:54:00:00:78:02\"\nip = \"10.78.0.11\"",
    );
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].field, "dhcp.subnets[1].reservations[1].ip");
    assert_eq!(
        found[0].line,
        text.lines()
            .position(|l| l == "mac = \"52:54:00:00:78:02\"")
            .unwrap()
            + 2
    );
}
