//! Inventory: racks and machines in the agent store, seeded from (and
//! exported as) the site kit's YAML file, with BMC passwords sealed under
//! the site key.
//!
//! An imported file is operator-supplied truth: its machines are trusted
//! inventory (`available`) at once. Machines that only discovered
//! themselves by network-booting are another path (issue 5's approval
//! rule) and are not created here.

pub mod file;
pub mod site_key;

pub use file::InventoryFile;
pub use site_key::{KeyError, SiteKey};
