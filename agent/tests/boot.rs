//! TFTP and HTTP boot of the real `dv-agent` binary against real clients:
//! tftp-hpa's `tftp`, `atftp` and `curl` (TFTP and HTTP), on loopback.
//! Each test skips loudly when a client is not installed
//! (scripts/setup.sh installs them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dv_protocol::{Event, EventBody, Message, codec};

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("\n!!! SKIPPED: {tool} is not installed (scripts/setup.sh installs it) !!!\n");
    }
    found
}

struct Agent {
    dir: tempfile::TempDir,
    running: Option<dv_tests::agent::RunningAgent>,
    http: SocketAddr,
    tftp: SocketAddr,
    big_sha: String,
}

/// Writes a site config with TFTP and HTTP on loopback ports chosen by the
/// OS, a firmware root with a 3 MB file, a symlink out of the root, and an
/// artifacts directory; starts the agent and reads both addresses from its log.
fn start() -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let fw = dir.path().join("fw");
    let artifacts = dir.path().join("artifacts/discovery");
    std::fs::create_dir_all(&fw).unwrap();
    std::fs::create_dir_all(&artifacts).unwrap();
    // Not a multiple of any block size used below, so the last block is short.
    let big: Vec<u8> = (0..3_000_001u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(fw.join("big.bin"), &big).unwrap();
    std::fs::write(fw.join("undionly.kpxe"), b"not really ipxe\n").unwrap();
    std::fs::write(artifacts.join("vmlinuz"), &big).unwrap();
    std::fs::write(dir.path().join("secret"), b"top secret\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), fw.join("escape")).unwrap();
    let big_sha = dv_agent::boot::digest::file_sha256(&fw.join("big.bin")).unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        r#"
[site]
name = "lab"
domain = "dataverket.test"
authority = "production"
data_dir = "data"

[http]
listen = "127.0.0.1:0"

[management]
segment = "lab"
interface = "lo"
prefix = "10.77.0.0/24"
gateway = "10.77.0.1"
production_address = "10.77.0.5"
host = "provisioner-01"

[boot]
http_url = "http://127.0.0.1:8680"
firmware_dir = "fw"
artifacts_dir = "artifacts"

[tftp]
listen = "127.0.0.1:0"
enabled = true

[[dns.hosts]]
name = "provisioner-01"
interfaces = [{ segment = "lab", address = "10.77.0.1" }]
"#,
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dv-agent"));
    cmd.args(["serve", "--log-format", "json", "--config"])
        .arg(&config)
        .env("DV_LOG", "info");
    let mut agent = dv_tests::agent::start(&mut cmd, Duration::from_secs(30))
        .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"));
    let tftp = agent
        .logged("tftp serving", "listen", Duration::from_secs(10))
        .and_then(|a| a.parse().ok())
        .expect("the agent logs its TFTP address");
    Agent {
        dir,
        http: agent.http,
        running: Some(agent),
        tftp,
        big_sha,
    }
}

impl Agent {
    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn sha(&self, path: &Path) -> String {
        dv_agent::boot::digest::file_sha256(path).unwrap()
    }

    /// Stops the agent; the directory lives on until `self` is dropped.
    fn stop(&mut self) {
        if let Some(agent) = self.running.take() {
            agent.stop();
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn tftp_serves_real_clients_with_every_option() {
    if !(have("curl") && have("atftp") && have("tftp")) {
        return;
    }
    let mut a = start();
    let port = a.tftp.port().to_string();
    // curl: blksize (and tsize, which curl always asks for).
    for blksize in ["512", "1468", "8192"] {
        let out = a.out(&format!("curl-{blksize}"));
        let o = run(Command::new("curl")
            .args(["-sS", "--max-time", "60", "--tftp-blksize", blksize])
            .arg(format!("tftp://127.0.0.1:{port}/big.bin"))
            .arg("-o")
            .arg(&out));
        assert!(o.status.success(), "curl blksize {blksize}: {}", text(&o));
        assert_eq!(a.sha(&out), a.big_sha, "curl blksize {blksize}");
    }
    // atftp: windowsize (RFC 7440), blksize, tsize, timeout.
    for window in ["1", "8", "16"] {
        let out = a.out(&format!("atftp-{window}"));
        let o = run(Command::new("atftp")
            .args(["--get", "-r", "big.bin", "-l"])
            .arg(&out)
            .args([
                "--option",
                "blksize 1428",
                "--option",
                &format!("windowsize {window}"),
                "--option",
                "tsize",
                "--option",
                "timeout 2",
                "127.0.0.1",
                &port,
            ]));
        assert!(
            o.status.success(),
            "atftp windowsize {window}: {}",
            text(&o)
        );
        assert_eq!(a.sha(&out), a.big_sha, "atftp windowsize {window}");
    }
    // tftp-hpa: plain RFC 1350, 512-byte lock-step, octet mode.
    let out = a.out("hpa");
    let o = run(Command::new("tftp")
        .args(["-m", "binary", "127.0.0.1", &port, "-c", "get", "big.bin"])
        .arg(&out));
    assert!(o.status.success(), "tftp-hpa: {}", text(&o));
    assert_eq!(a.sha(&out), a.big_sha, "tftp-hpa");
    // The in-memory entry script.
    let o = run(Command::new("curl")
        .args(["-sS"])
        .arg(format!("tftp://127.0.0.1:{port}/fallback.ipxe")));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("chain --replace --autofree http://127.0.0.1:8680/boot/${net0/mac}.ipxe")
    );
    a.stop();
}

#[test]
fn tftp_serves_twenty_transfers_at_once() {
    if !have("curl") {
        return;
    }
    let mut a = start();
    let children: Vec<_> = (0..20)
        .map(|i| {
            let out = a.out(&format!("c{i}"));
            let child = Command::new("curl")
                .args(["-sS", "--max-time", "120", "--tftp-blksize", "1468"])
                .arg(format!("tftp://127.0.0.1:{}/big.bin", a.tftp.port()))
                .arg("-o")
                .arg(&out)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (out, child)
        })
        .collect();
    for (out, child) in children {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(a.sha(&out), a.big_sha);
    }
    a.stop();
}

#[test]
fn tftp_refuses_missing_files_escapes_and_writes_clearly() {
    if !(have("curl") && have("tftp") && have("atftp")) {
        return;
    }
    let mut a = start();
    let port = a.tftp.port().to_string();
    let o = run(Command::new("curl")
        .args(["-sS"])
        .arg(format!("tftp://127.0.0.1:{port}/nope.efi")));
    assert_eq!(
        o.status.code(),
        Some(68),
        "curl: file not found is exit 68: {}",
        text(&o)
    );
    for name in ["../../etc/passwd", "/etc/passwd", "escape"] {
        let out = a.out("refused");
        let o = run(Command::new("tftp")
            .args(["-m", "binary", "127.0.0.1", &port, "-c", "get", name])
            .arg(&out));
        let said = text(&o);
        assert!(
            said.contains("Access violation") || said.contains("access violation"),
            "{name}: {said}"
        );
        let got = std::fs::read(&out).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&got).contains("top secret")
                && !String::from_utf8_lossy(&got).contains("root:")
        );
    }
    let o = run(Command::new("atftp").args([
        "--put",
        "-l",
        "/etc/hostname",
        "-r",
        "x",
        "127.0.0.1",
        &port,
    ]));
    assert!(!o.status.success());
    assert!(text(&o).contains("read-only"), "{}", text(&o));
    assert!(!a.dir.path().join("fw/x").exists());
    a.stop();
}

#[test]
fn http_boot_serves_ranges_digests_and_records_callbacks() {
    if !have("curl") {
        return;
    }
    let mut a = start();
    let base = format!("http://{}", a.http);
    // Range request: the bytes of that range, 206.
    let o = run(Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
            "-r",
            "1000-1999",
        ])
        .arg(format!("{base}/artifacts/discovery/vmlinuz")));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "206 1000");
    // Whole file: its sha256 equals the header and the .sha256 document.
    let out = a.out("vmlinuz");
    let o = run(Command::new("curl")
        .args(["-sS", "-D", "-", "-o"])
        .arg(&out)
        .arg(format!("{base}/artifacts/discovery/vmlinuz")));
    let headers = String::from_utf8_lossy(&o.stdout).to_lowercase();
    assert!(
        headers.contains(&format!("x-checksum-sha256: {}", a.big_sha)),
        "{headers}"
    );
    assert_eq!(a.sha(&out), a.big_sha);
    let o = run(Command::new("curl")
        .args(["-sS"])
        .arg(format!("{base}/artifacts/discovery/vmlinuz.sha256")));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("{}  vmlinuz\n", a.big_sha)
    );
    // The script of an unknown machine is discovery.
    let o = run(Command::new("curl")
        .args(["-sS"])
        .arg(format!("{base}/boot/52:54:00:99:00:01.ipxe")));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("dv.callback=http://127.0.0.1:8680/boot/52:54:00:99:00:01/callback")
    );
    // The discovery initrd's callback, as busybox wget sends it.
    let o = run(Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--data",
            "stage=discovered&ip=10.77.0.150&cpus=2",
        ])
        .arg(format!("{base}/boot/52:54:00:99:00:01/callback")));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "204");
    let data = a.dir.path().join("data");
    a.stop();
    // The event is in the outbox of the store the agent closed.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = dv_agent::store::Store::open(&data).unwrap();
        // Every row, sent or not: a publisher may already have drained it.
        let rows: Vec<(String, Vec<u8>)> = store
            .read(|c| {
                let mut st = c.prepare("SELECT subject, payload FROM outbox ORDER BY seq")?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        let reported: Vec<_> = rows
            .iter()
            .filter(|(subject, _)| subject == "dv.lab.maskin.evt.machine.boot-reported")
            .map(|(_, payload)| codec::decode::<Event>(payload).unwrap())
            .collect();
        assert_eq!(
            reported.len(),
            1,
            "{:?} in {}",
            rows.iter().map(|r| &r.0).collect::<Vec<_>>(),
            data.display()
        );
        let Message {
            body:
                Event {
                    body: EventBody::MachineBootReported { stage, ip, .. },
                    ..
                },
            ..
        } = &reported[0]
        else {
            panic!("{reported:?}")
        };
        assert_eq!(stage, "discovered");
        assert_eq!(*ip, Some("10.77.0.150".parse().unwrap()));
        store.close().await;
    });
}
