//! Network boot: what a machine boots into, and the files it boots from.
//!
//! - [`state`]: a machine's boot state (discover, install, local, rescue) and
//!   its install parameters, as the store keeps them.
//! - [`script`]: renders the iPXE script for a state from the templates in
//!   `firmware-ipxe/` (embedded at build time, rendered with minijinja).
//! - [`root`]: resolves a requested file name inside a directory without ever
//!   leaving it; TFTP (firmware root) and HTTP (artifacts) both use it.
//! - [`digest`]: sha256 of served files, cached by path, size and mtime.
//! - [`mac`]: the MAC in a boot URL.
//!
//! Deterministic boot is the rule this module exists for: a machine whose
//! state says "local" always gets a script that boots its disk on BIOS and
//! UEFI and ends, on failure, in a bounded wait and power-off: never a shell,
//! a menu or an unbounded loop. See `local.ipxe` and `fallback.ipxe`.

pub mod digest;
pub mod mac;
pub mod root;
pub mod script;
pub mod state;

pub use digest::DigestCache;
pub use root::{FileRoot, PathError};
pub use script::{ScriptError, Scripts};
pub use state::{BootState, InstallParams, MachineBoot};
