//! The DNS server end to end: the real `dv-agent` binary inside a network
//! namespace, queried with `dig`/`kdig`, transferred to a real NSD secondary,
//! forwarding to a real NSD upstream. Needs root (namespaces, port 53); skips
//! loudly without it.
//!
//! Addresses inside each namespace (all on `lo`): 10.53.0.1 the agent,
//! 10.53.0.2 the NSD secondary, 10.53.0.3 the NSD upstream for example.test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use dv_tests::netns::{Netns, require_netns};
use dv_tests::process::Guarded;
use dv_tests::wait_for;

const AGENT: &str = "10.53.0.1";
const SECONDARY: &str = "10.53.0.2";
const UPSTREAM: &str = "10.53.0.3";

struct Bed {
    ns: Netns,
    dir: tempfile::TempDir,
    _agent: dv_tests::agent::RunningAgent,
}

fn config(dir: &Path) -> PathBuf {
    let v6: Vec<String> = (1..=60).map(|i| format!("\"fd53::{i:x}\"")).collect();
    let text = format!(
        r#"
[site]
name = "dvntm"
domain = "dataverket.test"
authority = "bootstrap"
data_dir = "{data}"

[http]
listen = "127.0.0.1:8680"

[management]
segment = "dvntm"
interface = "lo"
prefix = "10.53.0.0/24"
gateway = "10.53.0.1"
production_address = "10.53.0.5"
host = "provisioner-01"

[dns]
listen = ["{AGENT}:53"]
upstreams = ["{UPSTREAM}:53"]
secondaries = ["{SECONDARY}:53"]
allow_transfer = ["127.0.0.0/8", "10.53.0.0/24"]
ttl = "5m"

[[dns.hosts]]
name = "provisioner-01"
address = "10.53.0.1"
interfaces = [{{ segment = "dvntm", address = "10.53.0.1" }}, {{ segment = "dvnt", address = "10.60.0.1" }}]

[[dns.hosts]]
name = "provisioner-02"
interfaces = [{{ segment = "dvntm", address = "10.53.0.20" }}]

[[dns.hosts]]
name = "big"
address = "10.53.0.30"
ipv6 = [{v6}]

[[dns.services]]
name = "artifacts"
host = "provisioner-01-dvntm"

[[dns.services]]
name = "pxe"
host = "provisioner-01-dvntm"

[dns.site]
services = ["artifacts", "pxe"]
"#,
        data = dir.join("data").display(),
        v6 = v6.join(", "),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn bed(tag: &str) -> Option<Bed> {
    if !require_netns(tag) {
        return None;
    }
    let ns = Netns::new(tag).unwrap();
    for ip in [AGENT, SECONDARY, UPSTREAM] {
        ns.ip(&["addr", "add", &format!("{ip}/32"), "dev", "lo"])
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_dv-agent"));
    cmd.args(["serve", "--log-format", "json", "--config"])
        .arg(&cfg)
        .env("DV_LOG", "info,dv_agent::dns=debug");
    let agent = dv_tests::agent::start(&mut cmd, Duration::from_secs(30))
        .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"));
    Some(Bed {
        ns,
        dir,
        _agent: agent,
    })
}

impl Bed {
    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.ns.command(program).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn dig(&self, args: &[&str]) -> String {
        let mut all = vec!["@10.53.0.1", "+time=2", "+tries=1"];
        all.extend_from_slice(args);
        // Columns collapsed to single spaces, so assertions read like zone lines.
        (self.run("dig", &all).lines())
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn short(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["+short"];
        all.extend_from_slice(args);
        self.dig(&all).lines().map(str::to_owned).collect()
    }

    fn curl(&self, args: &[&str]) -> String {
        let mut all = vec!["-s", "-w", "\n%{http_code}"];
        all.extend_from_slice(args);
        self.run("curl", &all)
    }

    /// `PUT /v1/dns/services/{service}` with `{"host": host}`; the body and
    /// then the status code on the last line.
    fn move_service(&self, service: &str, host: &str) -> String {
        let body = format!(r#"{{"host":"{host}"}}"#);
        let url = format!("http://127.0.0.1:8680/v1/dns/services/{service}");
        self.curl(&[
            "-X",
            "PUT",
            "-H",
            "content-type: application/json",
            "-d",
            &body,
            &url,
        ])
    }

    fn axfr(&self, zone: &str, server: &str) -> Vec<String> {
        let mut lines: Vec<String> = self
            .run(
                "dig",
                &[
                    &format!("@{server}"),
                    "+noall",
                    "+answer",
                    "+nottlid",
                    "AXFR",
                    zone,
                ],
            )
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        lines.sort();
        lines.dedup();
        lines
    }

    fn serial(&self, zone: &str, server: &str) -> Option<u32> {
        let out = self.run(
            "dig",
            &[
                &format!("@{server}"),
                "+short",
                "+time=1",
                "+tries=1",
                "SOA",
                zone,
            ],
        );
        out.split_whitespace().nth(2)?.parse().ok()
    }
}

#[test]
fn answers_authoritatively_with_chains_negatives_tcp_edns_and_axfr() {
    let Some(bed) = bed("dnsauth") else { return };
    // A, AAAA, PTR, interface identities.
    assert_eq!(
        bed.short(&["A", "provisioner-01.mgmt.dataverket.test"]),
        ["10.53.0.1"]
    );
    assert_eq!(
        bed.short(&["A", "provisioner-01-dvnt.mgmt.dataverket.test"]),
        ["10.60.0.1"]
    );
    assert_eq!(
        bed.short(&["AAAA", "big.mgmt.dataverket.test", "+tcp"])
            .len(),
        60
    );
    // One PTR per address: the plain host name wins over its identity.
    assert_eq!(
        bed.short(&["-x", "10.53.0.20"]),
        ["provisioner-02.mgmt.dataverket.test."]
    );
    // The full chain of seed section 6, across two zones, in one answer.
    assert_eq!(
        bed.short(&["A", "artifacts.dvntm.dataverket.test"]),
        [
            "artifacts.mgmt.dataverket.test.",
            "provisioner-01-dvntm.mgmt.dataverket.test.",
            "10.53.0.1"
        ]
    );
    let full = bed.dig(&["A", "artifacts.dvntm.dataverket.test"]);
    assert!(full.contains("flags: qr aa rd"), "{full}");
    // Case-insensitive, the question echoed as asked.
    let mixed = bed.dig(&["A", "PROVISIONER-01.MGMT.DataVerket.TEST"]);
    assert!(
        mixed.contains("PROVISIONER-01.MGMT.DataVerket.TEST. 300 IN A 10.53.0.1"),
        "{mixed}"
    );
    // NXDOMAIN versus NODATA, both with the SOA in the authority section.
    let nx = bed.dig(&["A", "nope.mgmt.dataverket.test"]);
    assert!(
        nx.contains("status: NXDOMAIN") && nx.contains("AUTHORITY: 1"),
        "{nx}"
    );
    assert!(nx.contains("mgmt.dataverket.test. 60 IN SOA"), "{nx}");
    let nodata = bed.dig(&["MX", "provisioner-01.mgmt.dataverket.test"]);
    assert!(
        nodata.contains("status: NOERROR")
            && nodata.contains("ANSWER: 0")
            && nodata.contains("AUTHORITY: 1"),
        "{nodata}"
    );
    // SOA and NS at the apex, with glue.
    let soa = bed.short(&["SOA", "mgmt.dataverket.test"]);
    assert!(
        soa[0].starts_with(
            "provisioner-01-dvntm.mgmt.dataverket.test. hostmaster.mgmt.dataverket.test."
        ),
        "{soa:?}"
    );
    let ns = bed.dig(&["NS", "dvntm.dataverket.test"]);
    assert!(ns.contains("ADDITIONAL: 2"), "{ns}"); // glue A + OPT
    // TCP.
    assert_eq!(
        bed.short(&["+tcp", "A", "pxe.mgmt.dataverket.test"])
            .last()
            .unwrap(),
        "10.53.0.1"
    );
    // EDNS: our size is 1232; a 60-AAAA RRset does not fit and sets TC...
    let edns = bed.dig(&["+bufsize=4096", "SOA", "mgmt.dataverket.test"]);
    assert!(
        edns.contains("EDNS: version: 0, flags:; udp: 1232"),
        "{edns}"
    );
    let tc = bed.dig(&[
        "+ignore",
        "+bufsize=4096",
        "AAAA",
        "big.mgmt.dataverket.test",
    ]);
    assert!(tc.contains(" tc") && tc.contains("ANSWER: 0"), "{tc}");
    // ...and dig's automatic retry over TCP gets the whole set.
    let retried = bed.dig(&["AAAA", "big.mgmt.dataverket.test"]);
    assert!(
        retried.contains("ANSWER: 60") && retried.contains("Truncated, retrying in TCP mode"),
        "{retried}"
    );
    // BADVERS for EDNS version 1.
    let badvers = bed.dig(&["+edns=1", "+noednsneg", "A", "pxe.mgmt.dataverket.test"]);
    assert!(badvers.contains("status: BADVERS"), "{badvers}");
    // kdig agrees on the chain.
    let k = bed.run(
        "kdig",
        &["@10.53.0.1", "+short", "A", "pxe.dvntm.dataverket.test"],
    );
    assert!(k.trim_end().ends_with("10.53.0.1"), "{k}");
    // AXFR: SOA first and last, every record.
    let axfr = bed.dig(&["+noall", "+answer", "AXFR", "mgmt.dataverket.test"]);
    let rows: Vec<&str> = axfr.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        rows.first().unwrap().contains("SOA") && rows.last().unwrap().contains("SOA"),
        "{axfr}"
    );
    assert!(axfr.contains("artifacts.mgmt.dataverket.test. 300 IN CNAME provisioner-01-dvntm.mgmt.dataverket.test."), "{axfr}");
    malformed_queries_get_formerr_or_silence(&bed);
}

/// Raw packets sent with a small Python client inside the namespace.
fn malformed_queries_get_formerr_or_silence(bed: &Bed) {
    let script = r#"
import socket, struct, sys
def ask(b):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
    s.sendto(b, ("10.53.0.1", 53))
    try: r = s.recv(4096); return "rcode=%d" % (r[3] & 15)
    except socket.timeout: return "silent"
def q(qd=1, qclass=1, name=b"\x03pxe\x04mgmt\x0adataverket\x04test\x00"):
    return struct.pack(">HHHHHH", 0x4242, 0x0100, qd, 0, 0, 0) + (name + struct.pack(">HH", 1, qclass)) * qd
print("short", ask(b"\x12\x34\x01"))
print("garbage", ask(b"\x12\x34\x01\x00" + b"\xff" * 40))
print("qd5", ask(q(qd=5)))
print("qd0", ask(struct.pack(">HHHHHH", 1, 0x0100, 0, 0, 0, 0)))
print("class", ask(q(qclass=4242)))
print("badlabel", ask(struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\x3fabc"))
print("response", ask(struct.pack(">HHHHHH", 9, 0x8100, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01"))
print("udpaxfr", ask(struct.pack(">HHHHHH", 11, 0, 1, 0, 0, 0) + b"\x04mgmt\x0adataverket\x04test\x00" + struct.pack(">HH", 252, 1)))
print("ok", ask(q()))
"#;
    let out = bed.run("python3", &["-c", script]);
    let expect = [
        ("short", "silent"),
        ("garbage", "rcode=1"),
        ("qd5", "rcode=1"),
        ("qd0", "rcode=1"),
        ("class", "rcode=1"),
        ("badlabel", "rcode=1"),
        ("response", "silent"),
        // RFC 5936 section 4.2: AXFR is TCP-only.
        ("udpaxfr", "rcode=1"),
        ("ok", "rcode=0"),
    ];
    for (what, want) in expect {
        assert!(
            out.contains(&format!("{what} {want}")),
            "{what}: want {want}; got:\n{out}"
        );
    }
    // And the server still answers.
    assert_eq!(
        bed.short(&["A", "provisioner-01.mgmt.dataverket.test"]),
        ["10.53.0.1"]
    );
}

fn nsd_conf(dir: &Path, ip: &str, zones: &[(&str, &str)]) -> PathBuf {
    let mut text = format!(
        "server:\n  ip-address: {ip}\n  port: 53\n  zonesdir: \"{d}\"\n  database: \"\"\n  pidfile: \"{d}/nsd.pid\"\n  xfrdfile: \"{d}/xfrd.state\"\n  zonelistfile: \"{d}/zone.list\"\n  username: \"\"\n  logfile: \"{d}/nsd.log\"\n  verbosity: 2\n  xfrd-reload-timeout: 0\nremote-control:\n  control-enable: no\n",
        d = dir.display()
    );
    for (zone, extra) in zones {
        text.push_str(&format!(
            "zone:\n  name: {zone}\n  zonefile: \"{zone}.zone\"\n{extra}"
        ));
    }
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("nsd.conf");
    std::fs::write(&path, text).unwrap();
    path
}

fn nsd(bed: &Bed, conf: &Path) -> Guarded {
    Guarded::spawn(
        bed.ns
            .command("nsd")
            .args(["-d", "-c"])
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap()
}

#[test]
fn nsd_secondary_follows_notify_and_a_service_move_changes_one_cname() {
    let Some(bed) = bed("dnsxfr") else { return };
    let zones = [
        "mgmt.dataverket.test",
        "dvntm.dataverket.test",
        "0.53.10.in-addr.arpa",
    ];
    let secondary = "  request-xfr: AXFR 10.53.0.1 NOKEY\n  allow-notify: 10.53.0.0/24 NOKEY\n  provide-xfr: 10.53.0.0/24 NOKEY\n";
    let zone_list: Vec<(&str, &str)> = zones.iter().map(|z| (*z, secondary)).collect();
    let conf = nsd_conf(&bed.dir.path().join("nsd2"), SECONDARY, &zone_list);
    let _nsd = nsd(&bed, &conf);
    let first = bed.serial("mgmt.dataverket.test", AGENT).unwrap();
    wait_for(Duration::from_secs(20), || {
        (bed.serial("mgmt.dataverket.test", SECONDARY) == Some(first)).then_some(())
    })
    .expect("NSD never loaded the zone");
    for zone in zones {
        assert_eq!(
            bed.axfr(zone, SECONDARY),
            bed.axfr(zone, AGENT),
            "{zone} differs on NSD"
        );
    }
    let before = bed.axfr("mgmt.dataverket.test", AGENT);

    // The API: errors first.
    let unknown = bed.move_service("nope", "provisioner-02-dvntm");
    assert!(unknown.ends_with("404"), "{unknown}");
    let bad = bed.move_service("artifacts", "pxe");
    assert!(
        bad.ends_with("422") && bad.contains("is a service, not a host"),
        "{bad}"
    );
    // The move.
    let moved = bed.move_service("artifacts", "provisioner-02-dvntm");
    assert!(moved.ends_with("200"), "{moved}");
    let second = bed.serial("mgmt.dataverket.test", AGENT).unwrap();
    assert!(second > first, "serial {first} -> {second}");
    assert_eq!(
        bed.short(&["A", "artifacts.dvntm.dataverket.test"]),
        [
            "artifacts.mgmt.dataverket.test.",
            "provisioner-02-dvntm.mgmt.dataverket.test.",
            "10.53.0.20"
        ]
    );
    // Only that CNAME (and the SOA serial) changed.
    let after = bed.axfr("mgmt.dataverket.test", AGENT);
    let removed: Vec<&String> = before.iter().filter(|l| !after.contains(l)).collect();
    let added: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert_eq!(added.len(), 2, "{added:?}");
    assert!(
        added
            .iter()
            .any(|l| l.contains("artifacts.mgmt.dataverket.test. IN CNAME provisioner-02-dvntm")),
        "{added:?}"
    );
    assert!(added.iter().any(|l| l.contains("SOA")), "{added:?}");
    // NOTIFY brings NSD to the new serial, and it answers the same.
    wait_for(Duration::from_secs(20), || {
        (bed.serial("mgmt.dataverket.test", SECONDARY) == Some(second)).then_some(())
    })
    .expect("NSD did not follow the NOTIFY");
    assert_eq!(bed.axfr("mgmt.dataverket.test", SECONDARY), after);
    let via_nsd = bed.run(
        "dig",
        &[
            "@10.53.0.2",
            "+short",
            "CNAME",
            "artifacts.mgmt.dataverket.test",
        ],
    );
    assert_eq!(via_nsd.trim(), "provisioner-02-dvntm.mgmt.dataverket.test.");
    // The listing shows the move.
    let list = bed.curl(&["http://127.0.0.1:8680/v1/dns/services"]);
    assert!(
        list.contains(r#""name":"artifacts""#) && list.contains(r#""host":"provisioner-02-dvntm""#),
        "{list}"
    );
}

#[test]
fn forwards_other_names_and_serves_them_from_cache_when_the_upstream_is_gone() {
    let Some(bed) = bed("dnsfwd") else { return };
    let dir = bed.dir.path().join("upstream");
    let conf = nsd_conf(&dir, UPSTREAM, &[("example.test", "")]);
    std::fs::write(
        dir.join("example.test.zone"),
        "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 300\n@ IN NS ns\nns IN A 10.53.0.3\nwww IN A 192.0.2.80\n",
    )
    .unwrap();
    let mut upstream = nsd(&bed, &conf);
    wait_for(Duration::from_secs(10), || {
        let out = bed.run(
            "dig",
            &["@10.53.0.3", "+short", "+time=1", "www.example.test"],
        );
        (out.trim() == "192.0.2.80").then_some(())
    })
    .expect("upstream NSD did not start");
    let first = bed.dig(&["www.example.test"]);
    assert!(
        first.contains("192.0.2.80") && first.contains(" ra"),
        "{first}"
    );
    let nx = bed.dig(&["nope.example.test"]);
    assert!(
        nx.contains("status: NXDOMAIN") && nx.contains("example.test.") && nx.contains("SOA"),
        "{nx}"
    );
    assert_eq!(bed.short(&["www.example.test"]), ["192.0.2.80"]);
    // Without RD, names outside our zones are refused, not forwarded.
    let norec = bed.dig(&["+norec", "www.example.test"]);
    assert!(norec.contains("status: REFUSED"), "{norec}");

    upstream.signal(libc::SIGKILL).unwrap();
    upstream.wait_timeout(Duration::from_secs(5));
    // Positive and negative answers still come from the cache, TTL counting down.
    let cached = bed.dig(&["www.example.test"]);
    assert!(cached.contains("192.0.2.80"), "{cached}");
    let ttl: u32 = cached
        .lines()
        .find(|l| l.starts_with("www.example.test.") && l.contains(" A "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|t| t.parse().ok())
        .unwrap();
    assert!(ttl <= 300, "{cached}");
    let nx_cached = bed.dig(&["nope.example.test"]);
    assert!(nx_cached.contains("status: NXDOMAIN"), "{nx_cached}");
    // A name never asked before now fails: the upstream really is gone.
    let fresh = bed.dig(&["+time=15", "other.example.test"]);
    assert!(fresh.contains("status: SERVFAIL"), "{fresh}");
}
