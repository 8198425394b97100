//! Child processes that a test starts and is sure to stop.

use std::process::{Child, Command};
use std::time::Duration;

/// A child process killed (SIGKILL) and reaped when dropped, so a failing
/// assertion never leaves a server running.
#[derive(Debug)]
pub struct Guarded(pub Option<Child>);

impl Guarded {
    /// Spawns `cmd`.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Guarded> {
        cmd.spawn().map(|c| Guarded(Some(c)))
    }

    /// The child, while it runs.
    pub fn child(&mut self) -> Option<&mut Child> {
        self.0.as_mut()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) -> std::io::Result<()> {
        let Some(child) = &self.0 else {
            return Ok(());
        };
        let pid = i32::try_from(child.id()).map_err(std::io::Error::other)?;
        let rc = kill(pid, signal);
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Waits up to `limit` for the child to exit and returns its status; None
    /// if it is still running (the guard kills it when dropped).
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let child = self.0.as_mut()?;
        let status = crate::wait_for(limit, || child.try_wait().ok().flatten());
        if status.is_some() {
            self.0 = None;
        }
        status
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[allow(unsafe_code)]
fn kill(pid: i32, signal: i32) -> i32 {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(pid, signal) }
}
