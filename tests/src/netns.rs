//! Network namespaces and veth pairs that a test creates and always removes.
//!
//! Tests that put traffic on a wire (DHCP, TFTP, PXE) run their peers inside
//! namespaces made here, never on the host's interfaces. Each [`Netns`] gets a
//! unique name and is deleted on drop, with every process still inside it
//! killed first, so a failing test leaves nothing behind.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Why a namespace operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// `ip` could not be run.
    #[error("cannot run `ip {args}`")]
    Spawn {
        /// The arguments.
        args: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// `ip` ran and failed.
    #[error("`ip {args}` failed: {stderr}")]
    Failed {
        /// The arguments.
        args: String,
        /// What it printed.
        stderr: String,
    },
}

/// Whether this process may create namespaces (root with iproute2). Tests that
/// need them call [`require_netns`] and skip loudly when this is false.
pub fn can_create_netns() -> bool {
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no preconditions and touches no memory of ours.
    let root = unsafe { libc::geteuid() } == 0;
    root && Command::new("ip").arg("-V").output().is_ok()
}

/// Returns true when namespaces are available; otherwise prints a loud skip
/// notice naming the test, so a skipped test is never silent.
pub fn require_netns(test: &str) -> bool {
    if can_create_netns() {
        return true;
    }
    eprintln!("\n!!! SKIPPED {test}: needs root and iproute2 to create network namespaces !!!\n");
    false
}

/// Runs `ip` with `args`.
pub fn ip(args: &[&str]) -> Result<Output, NetnsError> {
    let joined = args.join(" ");
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| NetnsError::Spawn {
            args: joined.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(NetnsError::Failed {
            args: joined,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out)
}

/// A network namespace, deleted (with its processes) on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace named `dvt-<tag>-<pid>-<n>` with loopback up.
    pub fn new(tag: &str) -> Result<Netns, NetnsError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "dvt-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Result<Output, NetnsError> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Adds `addr` (CIDR) to `dev` and brings it up.
    pub fn addr_up(&self, dev: &str, addr: &str) -> Result<(), NetnsError> {
        self.ip(&["addr", "add", addr, "dev", dev])?;
        self.ip(&["link", "set", dev, "up"])?;
        Ok(())
    }
}

/// Connects `a` and `b` with a veth pair: `a_if` inside `a`, `b_if` inside
/// `b`, both up. Deleting either namespace removes the pair.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<(), NetnsError> {
    // Create both ends inside `a` under their final names, then move one, so
    // no interface ever appears in the host namespace.
    a.ip(&["link", "add", a_if, "type", "veth", "peer", "name", b_if])?;
    a.ip(&["link", "set", b_if, "netns", b.name()])?;
    a.ip(&["link", "set", a_if, "up"])?;
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill what still runs inside, then delete; deleting a namespace with
        // live processes would only detach its name.
        if let Ok(out) = ip(&["netns", "pids", &self.name]) {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    #[allow(unsafe_code)]
                    // SAFETY: kill(2) takes plain integers.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
        }
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Runs `f` on a new thread that has first entered `ns`'s network namespace
/// (setns(2) on `/var/run/netns/<name>`), and returns what it returns. A
/// socket opened inside `f` (an rtnetlink connection, say) belongs to `ns`
/// for its whole life, so a driver under test talks to the namespace's
/// kernel objects and never to the host's. A panic in `f` is re-raised here.
pub fn run_in<T, F>(ns: &Netns, f: F) -> std::io::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let file = std::fs::File::open(format!("/var/run/netns/{}", ns.name()))?;
    let thread = std::thread::spawn(move || -> std::io::Result<T> {
        use std::os::fd::AsRawFd;
        #[allow(unsafe_code)]
        // SAFETY: setns(2) gets an open namespace file descriptor (`file`
        // lives until after the call) and a flag; it changes only this
        // thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(f())
    });
    match thread.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
