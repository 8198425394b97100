//! OpenIPMI's BMC simulator (`ipmi_sim`) on loopback, for tests of the IPMI
//! driver, with `ipmitool -I lanplus -C 3` as the independent check.
//!
//! Everything it needs is generated into a fresh directory per instance
//! (lan.conf, the .emu command file, the chassis program and the state
//! directory: users changed over IPMI persist there). The chassis program
//! keeps "power" and "boot device" in files and returns at once, so no
//! powered process outlives the test. ipmi_sim runs in its own process
//! group, killed as a whole on drop.
//!
//! Set-up failures panic with what went wrong: this runs only inside tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::process::Guarded;
use crate::wait_for;

/// The admin user ipmi_sim is configured with.
pub const USER: &str = "admin";
/// Its password.
pub const PASSWORD: &str = "password";

/// The chassis_control program: `PROG STATEDIR set|get|check ...`. ipmi_sim
/// popen()s it and reads its stdout, so it must exit at once and leave
/// nothing holding that pipe.
const CHASSIS: &str = r#"#!/bin/sh
S=$1; shift
op=$1; shift
case "$op" in
set)
  while [ $# -ge 2 ]; do
    k=$1; v=$2; shift 2
    echo "set $k=$v" >> "$S/events.log"
    case "$k" in
      power) echo "$v" > "$S/power" ;;
      shutdown) echo 0 > "$S/power" ;;
      boot) echo "$v" > "$S/boot" ;;
    esac
  done ;;
get)
  for k in "$@"; do
    case "$k" in
      power) echo "power:$(cat "$S/power" 2>/dev/null || echo 0)" ;;
      boot) echo "boot:$(cat "$S/boot" 2>/dev/null || echo default)" ;;
    esac
  done ;;
esac
exit 0
"#;

const EMU: &str = "mc_setbmc 0x20\n\
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n\
sel_enable 0x20 1000 0x0a\n\
mc_enable 0x20\n";

/// The system GUID the simulator is configured with, as ipmitool and the
/// driver print it.
pub const GUID: &str = "efcdab89-6745-23a1-efcd-ab89674523a1";

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `ipmi_sim` and `ipmitool` if both are installed (scripts/setup.sh
/// installs Debian's openipmi and ipmitool); otherwise says loudly that
/// `test` is skipped.
pub fn ipmi_bins(test: &str) -> Option<(PathBuf, PathBuf)> {
    match (which("ipmi_sim"), which("ipmitool")) {
        (Some(sim), Some(tool)) => Some((sim, tool)),
        (sim, _) => {
            let missing = if sim.is_none() {
                "ipmi_sim"
            } else {
                "ipmitool"
            };
            eprintln!(
                "\n!!! SKIPPED {test}: {missing} missing (scripts/setup.sh installs openipmi and ipmitool) !!!\n"
            );
            None
        }
    }
}

/// A loopback UDP port free right now.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A running simulator: one BMC on `127.0.0.1:port`, system powered off.
#[derive(Debug)]
pub struct IpmiSim {
    process: Guarded,
    ipmitool: PathBuf,
    /// Its UDP port.
    pub port: u16,
    /// `127.0.0.1:<port>`.
    pub endpoint: String,
    dir: tempfile::TempDir,
}

impl IpmiSim {
    /// Starts one and waits (bounded) until ipmitool gets an answer.
    pub fn start(bins: &(PathBuf, PathBuf)) -> IpmiSim {
        let (sim, tool) = bins;
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        let chassis = dir.path().join("chassis.sh");
        std::fs::write(&chassis, CHASSIS).unwrap();
        std::fs::set_permissions(&chassis, std::fs::Permissions::from_mode(0o755)).unwrap();
        let node = dir.path().join("node");
        std::fs::create_dir(&node).unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let conf = format!(
            "name \"dvtest\"\n\
             set_working_mc 0x20\n\
             \x20 startlan 1\n\
             \x20   addr 127.0.0.1 {port}\n\
             \x20   priv_limit admin\n\
             \x20   allowed_auths_callback none md5 straight\n\
             \x20   allowed_auths_user none md5 straight\n\
             \x20   allowed_auths_operator none md5 straight\n\
             \x20   allowed_auths_admin none md5 straight\n\
             \x20   guid a123456789abcdefa123456789abcdef\n\
             \x20 endlan\n\
             \x20 chassis_control \"{chassis} {node}\"\n\
             \x20 user 1 true  \"\"      \"test\"     user   10 none md5 straight\n\
             \x20 user 2 true  \"{USER}\" \"{PASSWORD}\" admin  10 none md5 straight\n",
            chassis = chassis.display(),
            node = node.display(),
        );
        let conf_path = dir.path().join("lan.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let emu = dir.path().join("bmc.emu");
        std::fs::write(&emu, EMU).unwrap();
        let log = std::fs::File::create(dir.path().join("ipmi_sim.log")).unwrap();
        let process = Guarded::spawn(
            Command::new(sim)
                .arg("-c")
                .arg(&conf_path)
                .arg("-f")
                .arg(&emu)
                .arg("-s")
                .arg(&state)
                .arg("-n")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                // Its own group, so drop can stop it and any chassis
                // program it is running in one signal.
                .process_group(0),
        )
        .unwrap();
        let me = IpmiSim {
            process,
            ipmitool: tool.clone(),
            port,
            endpoint: format!("127.0.0.1:{port}"),
            dir,
        };
        let up = wait_for(Duration::from_secs(15), || {
            me.ipmitool(&["chassis", "power", "status"])
                .status
                .success()
                .then_some(())
        });
        assert!(
            up.is_some(),
            "ipmi_sim did not answer: {}",
            std::fs::read_to_string(me.dir.path().join("ipmi_sim.log")).unwrap_or_default()
        );
        me
    }

    /// Runs `ipmitool -I lanplus -C 3` against it as admin.
    pub fn ipmitool(&self, args: &[&str]) -> Output {
        self.ipmitool_as(PASSWORD, args)
    }

    /// Runs `ipmitool -I lanplus -C 3` against it as admin with `password`.
    pub fn ipmitool_as(&self, password: &str, args: &[&str]) -> Output {
        Command::new(&self.ipmitool)
            .args(["-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", USER, "-P", password, "-N", "2", "-R", "2"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ipmitool_text(&self, args: &[&str]) -> String {
        let out = self.ipmitool(args);
        assert!(
            out.status.success(),
            "ipmitool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `chassis power status`: "on" or "off".
    pub fn power(&self) -> String {
        let text = self.ipmitool_text(&["chassis", "power", "status"]);
        text.trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// The "Boot Device Selector" of `chassis bootparam get 5`, e.g.
    /// "Force PXE".
    pub fn boot_device(&self) -> String {
        let text = self.ipmitool_text(&["chassis", "bootparam", "get", "5"]);
        text.lines()
            .find_map(|l| l.split_once("Boot Device Selector :"))
            .map(|(_, d)| d.trim().to_owned())
            .unwrap_or_else(|| panic!("no boot device selector in {text}"))
    }

    /// What the chassis program was asked to do, one `set k=v` a line.
    pub fn events(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node/events.log")).unwrap_or_default()
    }

    /// Where the simulator's files are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for IpmiSim {
    fn drop(&mut self) {
        if let Some(child) = self.process.child() {
            // The group id is the leader's pid (process_group(0)).
            if let Ok(pid) = i32::try_from(child.id()) {
                kill_group(pid);
            }
        }
        // Guarded's own drop then kills (no-op) and reaps the leader; a
        // SIGKILLed process exits at once, so that wait is short.
        let _ = self.process.wait_timeout(Duration::from_secs(5));
    }
}

#[allow(unsafe_code)]
fn kill_group(pgid: i32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours;
    // a negative pid names the process group this helper created.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}
