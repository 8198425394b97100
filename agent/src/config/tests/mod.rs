//! Unit tests of the loader: the lab example, TOML syntax and shape errors,
//! and one test per rule (in the submodules), each asserting the reported
//! line and field path; plus a fuzz-style property that no input panics.
//!
//! Rule tests start from [`FIXTURE`], a small valid site, and change one
//! line with [`edit`]; the expected line is found by looking for the changed
//! text, so the tests stay right when the fixture grows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod addressing;
mod boot;
mod naming;
mod nats;
mod provision;
mod switches;
mod talos;
mod values;

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::{Authority, ClientKey, Config, ConfigError, Problem};

const LAB: &str = include_str!("../../../../site-kits/examples/lab/agent.toml");

/// A valid site with two subnets (one relayed) and a multi-homed host.
const FIXTURE: &str = r#"
[site]
name = "lab"
domain = "dataverket.test"
authority = "bootstrap"
data_dir = "data"

[management]
segment = "lab"
interface = "dvlab0"
prefix = "10.77.0.0/24"
gateway = "10.77.0.1"
production_address = "10.77.0.5"
host = "provisioner-01"

[[dhcp.subnets]]
prefix = "10.77.0.0/24"
interface = "dvlab0"
router = "10.77.0.1"
lease_time = "12h"

[[dhcp.subnets.pools]]
start = "10.77.0.100"
end = "10.77.0.199"

[[dhcp.subnets.reservations]]
mac = "52:54:00:00:77:01"
ip = "10.77.0.11"
hostname = "node-01"

[[dhcp.subnets]]
prefix = "10.78.0.0/24"
router = "10.78.0.1"

[[dhcp.subnets.pools]]
start = "10.78.0.100"
end = "10.78.0.149"

[[dhcp.subnets.pools]]
start = "10.78.0.150"
end = "10.78.0.199"

[[dhcp.subnets.reservations]]
client_id = "01:52:54:00:00:78:01"
ip = "10.78.0.11"
hostname = "node-11"

[dns]
upstreams = ["192.0.2.53"]

[[dns.hosts]]
name = "provisioner-01"
interfaces = [{ segment = "lab", address = "10.77.0.1" }]

[[dns.hosts]]
name = "console-01"
interfaces = [
    { segment = "lab", address = "10.77.0.20" },
    { segment = "oob", address = "10.79.0.20" },
]

[[dns.services]]
name = "artifacts"
host = "provisioner-01"

[[dns.services]]
name = "console"
host = "console-01-oob"

[dns.site]
services = ["artifacts"]
"#;

const PATH: &str = "/etc/dataverket/agent.toml";

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new(PATH))
}

/// The fixture with the one occurrence of `old` replaced by `new`.
fn edit(old: &str, new: &str) -> String {
    assert_eq!(
        FIXTURE.matches(old).count(),
        1,
        "{old:?} must occur once in FIXTURE"
    );
    FIXTURE.replacen(old, new, 1)
}

/// 1-based line of the one occurrence of `marker` in `text`.
fn line_of(text: &str, marker: &str) -> usize {
    assert_eq!(
        text.matches(marker).count(),
        1,
        "{marker:?} must occur once"
    );
    text[..text.find(marker).unwrap()].matches('\n').count() + 1
}

fn problems(text: &str) -> Vec<Problem> {
    match load(text) {
        Ok(_) => panic!("loaded, but a problem was expected"),
        Err(err) => err.problems().to_vec(),
    }
}

/// Asserts that loading `text` reports exactly one problem, on the line of
/// `marker`, about `field`, with a message containing `words`.
#[track_caller]
fn expect_only(text: &str, marker: &str, field: &str, words: &str) {
    let found = problems(text);
    let line = line_of(text, marker);
    assert!(
        matches!(found.as_slice(), [p] if p.line == line && p.field == field && p.message.contains(words)),
        "expected one problem at line {line}, field {field:?}, containing {words:?}; got {found:#?}"
    );
}

/// Like [`expect_only`], for edits that rightly cause further problems too.
#[track_caller]
fn expect_some(text: &str, marker: &str, field: &str, words: &str) {
    let found = problems(text);
    let line = line_of(text, marker);
    assert!(
        (found.iter()).any(|p| p.line == line && p.field == field && p.message.contains(words)),
        "expected a problem at line {line}, field {field:?}, containing {words:?}; got {found:#?}"
    );
}

#[test]
fn the_fixture_is_valid() {
    let config = load(FIXTURE).unwrap();
    // Relative data_dir: against the file's directory, not the cwd.
    assert_eq!(config.site.data_dir, PathBuf::from("/etc/dataverket/data"));
    assert_eq!(config.dhcp.subnets[1].interface, None);
    assert!(config.dhcp.subnets[1].is_relayed());
    assert_eq!(config.dhcp.subnets[1].domain_name, "lab.dataverket.test");
    assert!(
        matches!(config.dhcp.subnets[1].reservations[0].client, ClientKey::ClientId(ref id) if id.len() == 7)
    );
    // A multi-homed host with no `address` has no plain A record.
    assert_eq!(config.dns.hosts[1].address, None);
    assert_eq!(config.dns.upstreams[0].to_string(), "192.0.2.53:53");
}

#[test]
fn the_lab_example_loads_with_its_defaults() {
    let config = load(LAB).unwrap();
    assert_eq!(config.site.name.as_str(), "lab");
    assert_eq!(config.site.authority, Authority::Bootstrap);
    assert_eq!(
        config.site.data_dir,
        PathBuf::from("/var/lib/dataverket/lab")
    );
    assert_eq!(config.mgmt_zone(), "mgmt.dataverket.test");
    assert_eq!(config.site_zone(), "lab.dataverket.test");
    let m = &config.management;
    assert_eq!(m.bootstrap_address, m.gateway);
    assert_eq!(config.http.listen.to_string(), "10.77.0.1:8680");
    assert_eq!(config.boot.http_url, "http://10.77.0.1:8680");
    assert_eq!(config.tftp.listen.to_string(), "10.77.0.1:69");
    let subnet = &config.dhcp.subnets[0];
    assert_eq!(subnet.pools[0].size(), 100);
    assert_eq!(subnet.reservations.len(), 2);
    assert_eq!(subnet.renew_time.as_secs(), 6 * 3600);
    assert_eq!(subnet.rebind_time.as_secs(), 10 * 3600 + 1800);
    assert_eq!(subnet.domain_name, "lab.dataverket.test");
    assert!(subnet.pxe);
    assert_eq!(config.dns.hosts[0].address, Some(m.gateway));
    assert_eq!(config.dns.hosts[0].identity("lab"), "provisioner-01-lab");
    assert_eq!(config.dns.services.len(), 5);
    assert_eq!(config.dns.site_services, ["artifacts", "pxe"]);
    assert_eq!(config.dns.listen[0].to_string(), "10.77.0.1:53");
    assert_eq!(config.dns.ttl.as_secs(), 300);

    let summary = config.summary();
    for words in [
        "site lab",
        "mgmt.dataverket.test",
        "10.77.0.100-10.77.0.199 (100)",
        "reservations 2",
        "artifacts -> provisioner-01",
    ] {
        assert!(
            summary.contains(words),
            "{words:?} missing from:\n{summary}"
        );
    }
}

#[test]
fn a_syntax_error_reports_its_line_and_no_field() {
    let text = edit("name = \"lab\"", "name = lab");
    expect_only(&text, "name = lab", "", "TOML syntax");
}

#[test]
fn an_unknown_field_reports_its_name_and_line() {
    let text = edit(
        "authority = \"bootstrap\"",
        "authority = \"bootstrap\"\ncolour = \"blue\"",
    );
    expect_only(&text, "colour", "site.colour", "unknown field `colour`");
    // Inside the second of an array of tables, the index is right.
    let text = edit(
        "hostname = \"node-11\"",
        "hostname = \"node-11\"\nhost = \"x\"",
    );
    expect_only(
        &text,
        "host = \"x\"",
        "dhcp.subnets[1].reservations[0].host",
        "unknown field `host`",
    );
}

#[test]
fn a_wrong_type_reports_its_field() {
    let text = edit("lease_time = \"12h\"", "lease_time = 12");
    expect_only(
        &text,
        "lease_time",
        "dhcp.subnets[0].lease_time",
        "invalid type: integer `12`",
    );
    let text = edit("authority = \"bootstrap\"", "authority = \"prod\"");
    expect_only(
        &text,
        "authority",
        "site.authority",
        "`bootstrap` or `production`",
    );
}

#[test]
fn a_missing_field_reports_the_field_at_its_table_header() {
    let text = edit("gateway = \"10.77.0.1\"\n", "");
    expect_only(
        &text,
        "[management]",
        "management.gateway",
        "missing field `gateway`",
    );
    let text = edit("ip = \"10.78.0.11\"\n", "");
    let header = text
        .match_indices("[[dhcp.subnets.reservations]]")
        .nth(1)
        .unwrap()
        .0;
    let found = problems(&text);
    assert_eq!(
        found[0].field, "dhcp.subnets[1].reservations[0].ip",
        "{found:#?}"
    );
    assert_eq!(found[0].line, text[..header].matches('\n').count() + 1);
    // A whole missing section has no header to point at: line 1.
    let start = FIXTURE.find("[management]").unwrap();
    let end = FIXTURE.find("[[dhcp.subnets]]").unwrap();
    let text = format!("{}{}", &FIXTURE[..start], &FIXTURE[end..]);
    let found = problems(&text);
    assert_eq!(
        (found[0].line, found[0].field.as_str()),
        (1, "management"),
        "{found:#?}"
    );
}

#[test]
fn every_malformed_value_is_reported_in_file_order() {
    let text = edit("prefix = \"10.78.0.0/24\"", "prefix = \"10.78.0.0/33\"")
        .replacen("gateway = \"10.77.0.1\"", "gateway = \"10.77.0.256\"", 1)
        .replacen("ip = \"10.77.0.11\"", "ip = \"ten\"", 1);
    let found = problems(&text);
    let fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "management.gateway",
            "dhcp.subnets[0].reservations[0].ip",
            "dhcp.subnets[1].prefix"
        ]
    );
    assert!(found.windows(2).all(|w| w[0].line < w[1].line));
}

#[test]
fn display_names_file_line_column_and_field() {
    let text = edit("end = \"10.77.0.199\"", "end = \"10.77.1.9\"");
    let line = line_of(&text, "10.77.1.9");
    let err = load(&text).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{PATH}:{line}:7: dhcp.subnets[0].pools[0].end: 10.77.1.9 is outside the subnet 10.77.0.0/24"
        )
    );
}

#[test]
fn a_file_that_is_not_utf8_is_invalid_not_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, b"[site]\nname = \"l\xffb\"\n").unwrap();
    let err = Config::from_file(&path).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!((err.problems()[0].line, err.problems()[0].column), (2, 10));
    let missing = Config::from_file(&dir.path().join("nope.toml")).unwrap_err();
    assert!(matches!(missing, ConfigError::Io { .. }));
    assert_eq!(missing.exit_code(), 1);
}

/// One edit to the text: at a position (a fraction of its length), insert,
/// delete or replace characters.
fn mutation() -> impl Strategy<Value = (f64, u8, String)> {
    let chars = prop_oneof![
        proptest::sample::select(vec![
            '"', '[', ']', '{', '}', '=', '.', ',', '#', '\n', ' ', '\'', '\\', '0', '9', 'a', 'z',
            '-', ':', '/'
        ]),
        any::<char>(),
    ];
    (
        0.0..1.0f64,
        0..3u8,
        proptest::collection::vec(chars, 1..4).prop_map(String::from_iter),
    )
}

fn apply(text: &str, (at, op, chars): &(f64, u8, String)) -> String {
    let mut out: Vec<char> = text.chars().collect();
    let i = ((out.len() as f64) * at) as usize;
    let i = i.min(out.len());
    match op {
        0 => drop(out.splice(i..i, chars.chars())),
        1 => drop(out.drain(i..(i + chars.len()).min(out.len()))),
        _ => drop(out.splice(i..(i + 1).min(out.len()), chars.chars())),
    }
    out.into_iter().collect()
}

/// The lab file with its `n`th quoted string's content replaced: text that
/// stays valid TOML, so the value parsers and rules see the damage.
fn replace_string(n: usize, content: &str) -> String {
    let quotes: Vec<usize> = LAB.match_indices('"').map(|(i, _)| i).collect();
    let pairs = quotes.len() / 2;
    let (open, close) = (quotes[2 * (n % pairs)], quotes[2 * (n % pairs) + 1]);
    format!("{}{}{}", &LAB[..=open], content, &LAB[close..])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn damaged_values_never_panic_and_are_located(
        n in 0..200usize,
        content in "[0-9a-z.:/ _-]{0,20}",
    ) {
        let text = replace_string(n, &content);
        if let Err(err) = load(&text) {
            for p in err.problems() {
                // Every problem points at a line of the file and names a field.
                prop_assert!(p.line >= 1 && p.line <= text.lines().count(), "{p:?}");
                prop_assert!(!p.field.is_empty(), "{p:?}");
            }
        }
    }

    #[test]
    fn mutated_lab_files_never_panic(edits in proptest::collection::vec(mutation(), 1..6)) {
        let text = edits.iter().fold(LAB.to_owned(), |text, e| apply(&text, e));
        if let Err(err) = load(&text) {
            prop_assert!(!err.problems().is_empty());
            for p in err.problems() {
                prop_assert!(p.line >= 1 && p.column >= 1);
                prop_assert!(p.line <= text.lines().count() + 1, "{p:?}");
            }
        }
    }
}
