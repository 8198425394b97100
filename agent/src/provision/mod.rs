//! Provisioning machines: the workflow ([`workflow`], pure) and the runner
//! that drives it as a durable task ([`runner`]); the `network` step's
//! check that the machine's switch ports are applied (`network`).

mod network;
pub mod runner;
pub mod workflow;

/// How a task blocked on its machine's network names the dependency; an
/// apply of a switch retries the tasks blocked on it.
pub const NETWORK_DEPENDENCY: &str = "network:";
