//! The `dv` multi-call binary: `dv`, or `dvce` (and later the rest of the
//! family) by the name it is called under. See [`dv_cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    dv_cli::run(std::env::args_os().collect())
}
