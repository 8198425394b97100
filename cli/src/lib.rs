//! `dv-cli`: the `dv` command-line family.
//!
//! One multi-call binary installed under seven names: `dv` (projects,
//! environments, quotas, tasks), `dvid` (login, tokens), `dvce` (machines,
//! BMCs, inventory), `dvke` (clusters), `dvapp` (apps), `dvos` (buckets) and
//! `dvnet` (networks, VLANs, addresses, DNS). It talks to the hub, or to one
//! site's agent, through the same API shapes, using the request and response
//! types of `dv-protocol` so it cannot drift from the servers.
//!
//! Nothing is implemented here yet: the CLI arrives with its own issue.
