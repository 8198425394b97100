//! `dv-hub`: the small replicated hub of a Dataverket installation.
//!
//! Three `dv-hub` replicas run over a three-node NATS JetStream cluster
//! (domain `hub`). Each replica is stateless apart from a SQLite read model
//! that it rebuilds from the streams at start; any replica answers any
//! call, and writes go to JetStream, never to a replica's file.
//!
//! | module | owns |
//! | --- | --- |
//! | [`config`] | `hub.toml`: nodes, replicas, sites |
//! | [`nats_config`] | `dv-hub nats-config`: a node's nats-server configuration, its TLS and per-site users |
//! | [`pki`] | `dv-hub pki init`: the hub CA, node/replica certificates, site identities |
//! | [`streams`] | `DV_HUB_EVT` (sources every site), `DV_HUB_CMD`, `DV_HUB_AUDIT` |
//! | [`offerings`] | the offering catalog and prerequisite discovery for a project |
//! | [`kv`] | the `dv_tenancy` KV bucket: tenants, projects, environments, quotas; revision-checked writes |
//! | [`identity`] | the `dv_identity` KV bucket: role bindings and service tokens, indexed in memory |
//! | [`publish`] | acknowledged publishes that ride out leader elections |
//! | [`readmodel`] | the SQLite read model and its queries |
//! | [`ingest`] | ordered consumers that keep the read model current; heartbeats |
//! | [`sources`] | restarts event sourcing that stalled while a site is reachable |
//! | [`api`] | the `/v1` REST API, its OpenAPI document, authentication, authorization, rate limits, audit |
//! | [`serve`] | one replica's lifecycle |
//! | [`tls`] | the API's HTTPS listener |
//!
//! The design: `docs/adr/0011-hub.md`; its security: `docs/adr/0012-hub-security.md`; identity and
//! authorization: `docs/adr/0013-identity-and-authorization.md`.

pub mod api;
pub mod config;
pub mod identity;
pub mod ingest;
pub mod kv;
pub mod nats_config;
pub mod offerings;
pub mod pki;
pub mod publish;
pub mod readmodel;
pub mod serve;
pub mod sources;
pub mod streams;
pub mod tls;
