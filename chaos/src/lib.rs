//! `dv-chaos`: the multi-site test bed.
//!
//! Builds sites inside network namespaces (veth pairs, Open vSwitch switches,
//! nats-server leaf nodes), injects faults (cut uplinks, killed agents and hub
//! replicas, slow or lying BMCs) and checks invariants (no acknowledged lease,
//! record, task or event lost; one authority per segment).
//!
//! Nothing is implemented here yet: the chaos bed arrives with the federation
//! and failover issues.
