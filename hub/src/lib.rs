//! `dv-hub`: the small replicated hub of a Dataverket installation.
//!
//! Three hub replicas run over a three-node NATS JetStream cluster. Each
//! replica is stateless apart from a SQLite read model that it rebuilds from
//! the streams at start. The hub owns:
//! - the aggregated inventory and resource graph of every site (sourced from
//!   the sites' event streams across NATS leaf connections);
//! - tenants, projects, environments and quotas (JetStream KV, revision-checked
//!   updates);
//! - placement and cross-site failover decisions, with fencing epochs;
//! - tasks and the append-only audit stream;
//! - the public REST API under `/v1`, with its OpenAPI document checked in.
//!
//! Nothing is implemented here yet: the hub arrives with the federation issue.
//! The crate exists so the workspace has its final shape and the dependency
//! direction (`protocol` <- `hub`) is fixed from the start.
