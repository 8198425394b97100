//! The API documents under `docs/api/` and the Python tools that check
//! them (openapi-spec-validator and schemathesis, pinned in
//! scripts/requirements-test.txt and installed into `.venv` by
//! scripts/setup.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::Guarded;

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A checked-in OpenAPI document, by file name (`hub-openapi.json`).
pub fn document(name: &str) -> PathBuf {
    repo().join("docs/api").join(name)
}

/// `.venv/bin/<tool>`, or `None` after a loud skip notice naming `test`.
pub fn venv_tool(tool: &str, test: &str) -> Option<PathBuf> {
    let bin = repo().join(".venv/bin").join(tool);
    if bin.exists() {
        return Some(bin);
    }
    eprintln!(
        "\n!!! SKIPPED {test}: {} missing (scripts/setup.sh installs scripts/requirements-test.txt) !!!\n",
        bin.display()
    );
    None
}

/// What a tool run left: whether it exited 0, how long it took, and its
/// stdout and stderr together.
#[derive(Debug)]
pub struct ToolRun {
    /// Exit status 0.
    pub success: bool,
    /// Wall time.
    pub took: Duration,
    /// stdout, then stderr.
    pub output: String,
}

/// Runs `cmd` to completion or for at most `limit` (then kills it and
/// reports a failure), capturing its output in files under `dir` so a
/// chatty tool never blocks on a full pipe.
pub fn run_tool(cmd: &mut Command, dir: &Path, limit: Duration) -> std::io::Result<ToolRun> {
    let (out, err) = (dir.join("tool.stdout"), dir.join("tool.stderr"));
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::fs::File::create(&err)?);
    let started = Instant::now();
    let mut child = Guarded::spawn(cmd)?;
    let status = child.wait_timeout(limit);
    // Dropping the guard kills a tool that overran.
    drop(child);
    let took = started.elapsed();
    let mut output = std::fs::read_to_string(&out).unwrap_or_default();
    output.push_str(&std::fs::read_to_string(&err).unwrap_or_default());
    if status.is_none() {
        output.push_str(&format!("\n(killed after {limit:?})\n"));
    }
    Ok(ToolRun {
        success: status.is_some_and(|s| s.success()),
        took,
        output,
    })
}
