//! `dv-protocol`: the shared language of Dataverket.
//!
//! Everything that crosses a process boundary is defined here, once: the
//! resource types a site is made of, their typed ids, the NATS subject
//! taxonomy, the message envelope and the wire codec. The agent, the hub, the
//! `dv` CLI and the site-kit tooling all depend on this crate; it depends on
//! none of them.
//!
//! # No I/O
//!
//! This crate is pure: no tokio, no sockets, no files, no NATS client, no
//! SQLite. Types, validation, subject building and byte encoding only (it does
//! read the clock and the random source to mint ids and timestamps). Transports
//! belong in `agent/` and `hub/`. That keeps the protocol testable in
//! isolation, fuzzable, and usable from any runtime.
//!
//! # Code tour
//!
//! | module | owns |
//! | --- | --- |
//! | [`id`] | typed UUIDv7 ids (`MachineId`, `TaskId`, `MessageId`, ...) |
//! | [`token`] | name tokens: `SiteName`, `ServiceName`, tenant/project names; the lower-case DNS-label rule |
//! | [`dns_name`] | `DnsName`: canonical fully qualified names |
//! | [`mac`] | `MacAddr` |
//! | [`resource`] | sites, racks, machines, BMCs, networks/VLANs, prefixes, leases, DNS records, tasks; tenants, projects, environments, quotas |
//! | [`event`] | `Event` / `EventBody`: facts, each with a fixed subject |
//! | [`command`] | `Command`: requests to a site, each with a fixed subject |
//! | [`heartbeat`] | `Heartbeat`: an agent's periodic liveness beat |
//! | [`jetstream`] | stream, consumer and domain names the agent and the hub share |
//! | [`subject`] | `dv.<site>.<service>.cmd.<action>` and friends: builders, filters, parser |
//! | [`envelope`] | `Envelope`, `Message<T>`, `Actor`, NATS headers |
//! | [`codec`] | `encode` / `decode`: a version byte plus postcard |
//! | [`timestamp`] | the serde form of timestamps (RFC 3339 text / Unix nanoseconds) |
//! | [`auth`] | roles, scopes, role bindings, principals: the authorization decision hub and agents share |
//! | [`api`] | REST bodies that are not resources: error body, accepted command, command record, site status, task with steps |
//! | [`schema`] | OpenAPI schemas (utoipa `ToSchema`) of the types the APIs return |
//!
//! Each module has its own error enum (`TokenError`, `SubjectError`,
//! `CodecError`, ...). Display texts name what failed; an underlying cause is
//! reachable through [`std::error::Error::source`], never repeated in the text.
//!
//! # Example
//!
//! ```
//! use dv_protocol::{Actor, Event, EventBody, Message, SiteName, TaskId, TaskState, codec};
//!
//! let site: SiteName = "lab".parse()?;
//! let event = Event::new(EventBody::TaskStateChanged {
//!     task: TaskId::new(),
//!     from: TaskState::Pending,
//!     to: TaskState::Running { step: "power_on".into() },
//! });
//! let subject = event.subject(&site); // dv.lab.task.evt.state-changed
//! let message = Message::new(site.clone(), Actor::agent(&site), event);
//! let headers = message.headers(); // Nats-Msg-Id, Dv-Correlation-Id, ...
//! let payload = codec::encode(&message)?;
//! assert_eq!(codec::decode::<Event>(&payload)?, message);
//! # assert_eq!(subject.as_str(), "dv.lab.task.evt.state-changed");
//! # assert_eq!(headers[0].0, "Nats-Msg-Id");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod codec;
pub mod command;
pub mod dns_name;
pub mod envelope;
pub mod event;
pub mod heartbeat;
pub mod id;
pub mod jetstream;
pub mod mac;
pub mod resource;
pub mod schema;
pub mod subject;
pub mod timestamp;
pub mod token;

pub use codec::{CODEC_VERSION, CodecError, decode, encode};
pub use command::Command;
pub use dns_name::{DnsName, DnsNameError};
pub use envelope::{Actor, Envelope, EnvelopeError, Message, SCHEMA_VERSION};
pub use event::{Event, EventBody};
pub use heartbeat::Heartbeat;
pub use id::{
    AllocationId, BmcId, CommandId, CorrelationId, DnsRecordId, EventId, IdError, LeaseId,
    MachineId, MessageId, NetworkId, PrefixId, RackId, TaskId,
};
pub use mac::{MacAddr, MacParseError};
pub use resource::{
    AddressRange, Allocation, IntentError, Lag, NetworkSpec, PortAssignment, PortMode, PortName,
    PortNameError, PortProfile, Problem, SiteIntent,
};
pub use resource::{
    Bmc, BmcAddress, BmcEndpoint, BmcHost, BmcProtocol, DependencyKind, DnsRecord, DnsRecordData,
    Lease, LeaseRef, LeaseState, Machine, MachineRole, MachineState, Network, NetworkError,
    NetworkPurpose, Prefix, Rack, ResourceRef, Site, SiteError, Task, TaskKind, TaskState, VlanId,
};
pub use resource::{Environment, EnvironmentKind, Project, Quota, TenancyError, Tenant};
pub use subject::{ParsedSubject, Subject, SubjectError, SubjectFilter};
pub use token::{
    CredentialRef, EnvironmentName, HUB, LagName, NetworkName, PortProfileName, ProjectName,
    ServiceName, SiteName, SwitchName, TenantName, TokenError, validate_token,
};
