//! The `dv` multi-call binary: `dv`, or `dvid`, `dvce`, `dvke`, `dvapp`,
//! `dvos`, `dvnet` by the name it is called under (a symlink to it). See
//! [`dv_cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    dv_cli::run(std::env::args_os().collect())
}
