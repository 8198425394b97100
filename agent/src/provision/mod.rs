//! Provisioning machines: the workflow ([`workflow`], pure) and the runner
//! that drives it as a durable task ([`runner`]).

pub mod runner;
pub mod workflow;
