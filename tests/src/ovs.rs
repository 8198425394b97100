//! Open vSwitch switches for tests: `ovsdb-server` and `ovs-vswitchd` with
//! the userspace datapath, run by hand inside a network namespace the test
//! owns, with host namespaces cabled to it by veth pairs.
//!
//! The kernels here have neither 802.1Q nor bridge VLAN filtering, but OVS's
//! userspace datapath (`datapath_type=netdev`) tags, untags and filters in
//! user space over plain veth ports, so it is a real VLAN switch managed
//! over a real management protocol (OVSDB). Each [`OvsSwitchNs`] has its own
//! state directory (`OVS_RUNDIR`, `OVS_DBDIR`, `OVS_LOGDIR`,
//! `OVS_SYSCONFDIR`), never touches the system's `/var/run/openvswitch`,
//! and on drop stops both daemons, deletes the namespace (and with it every
//! veth end inside) and removes the directory. The Debian package's service
//! is never used.
//!
//! Set-up failures panic with what went wrong: this runs only inside tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::netns::{Netns, veth};
use crate::process::Guarded;
use crate::wait_for;

/// The OVSDB schema the Debian package installs.
pub const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

const BINARIES: [&str; 4] = ["ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl"];

fn which(name: &str) -> Option<PathBuf> {
    // The daemons live in /usr/sbin, which a CI PATH may lack.
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Panics, naming what is missing, unless Open vSwitch is installed. CI
/// runs scripts/setup.sh, which installs it, so a missing switch is a
/// broken machine, not a reason to skip.
pub fn require_ovs(test: &str) {
    let missing: Vec<&str> = BINARIES
        .iter()
        .copied()
        .filter(|b| which(b).is_none())
        .collect();
    let schema = Path::new(SCHEMA).is_file();
    assert!(
        missing.is_empty() && schema,
        "{test} needs Open vSwitch (missing: {}{}); run scripts/setup.sh, which installs \
         Debian's openvswitch-switch",
        missing.join(", "),
        if schema { "" } else { " and the schema" }
    );
}

/// One Open vSwitch switch with one bridge, in its own namespace.
#[derive(Debug)]
pub struct OvsSwitchNs {
    // Drop order is field order: daemons first, then the namespace, then
    // the directory they kept their state in.
    vswitchd: Guarded,
    db: Guarded,
    ns: Netns,
    dir: tempfile::TempDir,
    bridge: String,
}

impl OvsSwitchNs {
    /// Starts the daemons in a new namespace tagged `tag` and creates
    /// `bridge` on the userspace datapath.
    pub fn start(tag: &str, bridge: &str) -> OvsSwitchNs {
        let ns = Netns::new(tag).expect("switch namespace");
        let dir = tempfile::Builder::new()
            .prefix("dv-ovs-")
            .tempdir()
            .expect("switch state dir");
        let d = dir.path();
        let db_file = d.join("conf.db");
        let out = Command::new(which("ovsdb-tool").expect("ovsdb-tool"))
            .arg("create")
            .arg(&db_file)
            .arg(SCHEMA)
            .output()
            .expect("run ovsdb-tool");
        assert!(
            out.status.success(),
            "ovsdb-tool create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let socket = d.join("db.sock");
        // In the foreground (no --detach), so the guard's pid is the
        // daemon's: `ip netns exec` execs it in place.
        let mut db = ns.command(which("ovsdb-server").expect("ovsdb-server"));
        db.arg(&db_file)
            .arg(format!("--remote=punix:{}", socket.display()))
            .arg(format!("--pidfile={}", d.join("db.pid").display()))
            .arg(format!("--log-file={}", d.join("db.log").display()))
            .arg(format!("--unixctl={}", d.join("db.ctl").display()));
        let db = spawn_quiet(&mut db, d);
        let up = wait_for(Duration::from_secs(10), || {
            std::os::unix::net::UnixStream::connect(&socket).ok()
        });
        assert!(up.is_some(), "ovsdb-server did not open {socket:?}");
        let mut vs = ns.command(which("ovs-vswitchd").expect("ovs-vswitchd"));
        vs.arg(format!("unix:{}", socket.display()))
            .arg(format!("--pidfile={}", d.join("vs.pid").display()))
            .arg(format!("--log-file={}", d.join("vs.log").display()))
            .arg(format!("--unixctl={}", d.join("vs.ctl").display()));
        let vswitchd = spawn_quiet(&mut vs, d);
        let sw = OvsSwitchNs {
            vswitchd,
            db,
            ns,
            dir,
            bridge: bridge.to_owned(),
        };
        sw.vsctl(&["--no-wait", "init"]);
        // Without --no-wait: returns once ovs-vswitchd has made the bridge.
        sw.vsctl(&[
            "add-br",
            bridge,
            "--",
            "set",
            "bridge",
            bridge,
            "datapath_type=netdev",
        ]);
        sw
    }

    /// The namespace the switch runs in.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The OVSDB unix socket.
    pub fn db_socket(&self) -> PathBuf {
        self.dir.path().join("db.sock")
    }

    /// Runs `ovs-vsctl` against this switch (bounded by `--timeout`) and
    /// returns its output; panics when it fails.
    pub fn vsctl(&self, args: &[&str]) -> String {
        let out = self.vsctl_cmd(args).output().expect("run ovs-vsctl");
        assert!(
            out.status.success(),
            "ovs-vsctl {args:?}: {}\n--- vswitchd log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log("vs.log")
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn vsctl_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(which("ovs-vsctl").expect("ovs-vsctl"));
        cmd.arg(format!("--db=unix:{}", self.db_socket().display()))
            .arg("--timeout=10")
            .args(args);
        set_dirs(&mut cmd, self.dir.path());
        cmd
    }

    /// One of the daemons' logs (`db.log`, `vs.log`), for failure messages.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Sends `signal` to `ovs-vswitchd`: `SIGSTOP` makes a slow switch (its
    /// database takes changes, the datapath does not follow), `SIGCONT`
    /// lets it catch up.
    pub fn signal_vswitchd(&self, signal: i32) {
        self.vswitchd.signal(signal).expect("signal ovs-vswitchd");
    }

    /// Whether both daemons still run.
    pub fn running(&mut self) -> bool {
        let alive = |g: &mut Guarded| g.child().is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        alive(&mut self.db) && alive(&mut self.vswitchd)
    }

    /// A host namespace cabled to the switch: veth `port` in the switch's
    /// namespace (not yet on the bridge: the driver puts it there), `eth0`
    /// in the host with `addr` (CIDR).
    pub fn host(&self, tag: &str, port: &str, addr: &str) -> Netns {
        let h = Netns::new(tag).expect("host namespace");
        veth(&self.ns, port, &h, "eth0").expect("veth to host");
        h.addr_up("eth0", addr).expect("host address");
        h
    }
}

fn set_dirs(cmd: &mut Command, dir: &Path) {
    for var in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
        cmd.env(var, dir);
    }
}

fn spawn_quiet(cmd: &mut Command, dir: &Path) -> Guarded {
    set_dirs(cmd, dir);
    // They log to their files; the console copy would only interleave with
    // the test's output.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // If the test process dies without unwinding (an abort skips every
    // Drop), the kernel kills the daemon instead of leaving it running.
    // The signal survives `ip netns exec`'s exec of the daemon.
    #[allow(unsafe_code)]
    // SAFETY: prctl(2) with integer arguments only, between fork and exec,
    // and async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    Guarded::spawn(cmd).expect("start an Open vSwitch daemon")
}

/// Cables two switches: veth `a_port` in `a`'s namespace to `b_port` in
/// `b`'s (neither on a bridge yet).
pub fn cable(a: &OvsSwitchNs, a_port: &str, b: &OvsSwitchNs, b_port: &str) {
    veth(a.ns(), a_port, b.ns(), b_port).expect("veth between switches");
}

/// Whether `from` gets an answer from `to`: `ping -c 2 -W 1`, so at most
/// about two seconds, and one lost first packet (ARP) does not count.
pub fn ping(from: &Netns, to: &str) -> bool {
    from.command("ping")
        .args(["-c", "2", "-W", "1", "-i", "0.2", "-q", to])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
