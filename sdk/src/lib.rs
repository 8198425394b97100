//! `dv-sdk`: the typed Rust client of the Dataverket API.
//!
//! One API shape is served by the hub (every site) and by each site's agent
//! (its own site). This crate owns the client side of it: URLs, the bearer
//! token, TLS trust, `ETag`/`If-Match`, and turning answers into the
//! protocol's own types (`dv_protocol::Machine`, `Task`, `Tenant`, and the
//! bodies in `dv_protocol::api`). The servers serialize those same types, so
//! a change on one side that the other does not share fails to compile or
//! fails a test instead of drifting. The `dv` CLI uses nothing else to talk
//! to the API.
//!
//! Where hub and agent answer differently the types say so:
//! - provisioning: an agent starts the task at once ([`Accepted::Task`]); the
//!   hub queues a command for the machine's site ([`Accepted::Command`]),
//!   whose task shows in [`Client::command_get`] once the site started it;
//! - one task: an agent also returns its step log, the hub only the task's
//!   state ([`TaskView::steps`] is `None`).
//!
//! Hub-only calls (commands, sites, tenancy, offerings) answer
//! [`Error::NoEndpoint`] from an agent; agent-only calls (inventory file,
//! BMC power/boot/re-pin, task retry, networks and addresses) answer it
//! from the hub. [`Error::NotFound`] is a missing record, never a missing
//! endpoint. The agent-only BMC answers have no shared
//! type yet and come back as JSON values.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dv_sdk::Error> {
//! let hub = dv_sdk::Client::new("https://hub.example:7443", Some("token".into()))?;
//! for m in hub.machine_list(None).await? {
//!     println!("{} {} {}", m.site, m.serial, m.state);
//! }
//! match hub.machine_provision("SN-0001").await? {
//!     dv_sdk::Accepted::Command(c) => println!("queued as {}", c.command),
//!     dv_sdk::Accepted::Task(t) => println!("task {}", t.id),
//! }
//! # Ok(()) }
//! ```

mod error;
mod events;
mod network;
pub mod oidc;
mod project_machines;
mod switches;
mod tenancy;

use std::fmt;
use std::time::Duration;

use dv_protocol::api::{
    CommandAccepted, CommandRecord, Grant, NewServiceToken, OidcConfig, ServiceToken,
    ServiceTokenCreated, SiteStatus, StepRun, TaskDetail,
};
use dv_protocol::auth::{Principal, RoleBinding};
use dv_protocol::{Machine, SiteName, Task, Tenant};
use reqwest::header::{CONTENT_TYPE, ETAG, HeaderValue, IF_MATCH};
use reqwest::{Method, RequestBuilder, Response, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use dv_protocol;
pub use error::Error;
pub use events::EventRecord;
pub use network::{AddressRequest, AddressView, NetworkView, Reservation};
pub use switches::SwitchPorts;

/// A record's revision as the server names it in `ETag` (quotes included,
/// `"12"`), to send back in `If-Match`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    /// An ETag exactly as the server sent it.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a change is based on (`If-Match`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// Only if the record is still at this revision.
    Tag(ETag),
    /// Whatever is current, as long as the record exists (`*`: a deliberate
    /// blind write).
    Any,
}

impl IfMatch {
    pub(crate) fn header(&self) -> &str {
        match self {
            Self::Tag(t) => t.as_str(),
            Self::Any => "*",
        }
    }
}

/// A record with the revision it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The record.
    pub value: T,
    /// Its revision, if the server sent one.
    pub etag: Option<ETag>,
}

/// The answer to provision or deprovision.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// An agent started the task (follow it with [`Client::task_get`]).
    Task(Task),
    /// The hub stored a command for the machine's site; the site starts the
    /// task when it receives the command ([`Client::command_get`]).
    Command(CommandAccepted),
}

/// One task, with its step log when the server keeps one.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    /// The task.
    pub task: Task,
    /// Every step it ran, from an agent; `None` from the hub, which holds
    /// task states, not step logs.
    pub steps: Option<Vec<StepRun>>,
}

/// Filters of [`Client::task_list`].
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    /// Only this site (hub).
    pub site: Option<SiteName>,
    /// Only tasks in this state: `pending`, `running`, `blocked`, `failed`,
    /// `succeeded` (agent).
    pub state: Option<String>,
}

/// Builds a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    base: String,
    token: Option<String>,
    ca_pem: Option<Vec<u8>>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl ClientBuilder {
    /// Sends `Authorization: Bearer <token>` on every call.
    pub fn token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Trusts only the CA certificates in this PEM bundle for `https` (the
    /// hub's or the site's own CA), instead of the system's.
    pub fn ca_pem(mut self, pem: Vec<u8>) -> Self {
        self.ca_pem = Some(pem);
        self
    }

    /// The longest one call may take (default 180 s: an agent's BMC calls
    /// answer only once the BMC did).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client, Error> {
        let base = Url::parse(&self.base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| Error::InvalidUrl {
                url: self.base.clone(),
            })?;
        let mut http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout);
        if let Some(pem) = &self.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|source| Error::InvalidCa { source })?;
            http = http.tls_certs_only(certs);
        }
        let http = http.build().map_err(|source| Error::Setup { source })?;
        Ok(Client {
            base,
            token: self.token.filter(|t| !t.trim().is_empty()),
            http,
        })
    }
}

/// A client of one hub or one agent.
#[derive(Clone)]
pub struct Client {
    base: Url,
    token: Option<String>,
    http: reqwest::Client,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token itself: Debug output ends up in logs.
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the API at `base_url` (`http://10.77.0.1:8680`,
    /// `https://hub:7443`), sending `token` if there is one.
    pub fn new(base_url: &str, token: Option<String>) -> Result<Client, Error> {
        Self::builder(base_url).token(token).build()
    }

    /// A builder, for a CA or a timeout.
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base: base_url.to_owned(),
            token: None,
            ca_pem: None,
            timeout: Duration::from_secs(180),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    // ------------------------------------------------------------ machines

    /// Machines: every site's (hub), or only `site`'s; an agent's own.
    pub async fn machine_list(&self, site: Option<&SiteName>) -> Result<Vec<Machine>, Error> {
        let mut url = self.url(&["v1", "machines"]);
        if let Some(s) = site {
            url.query_pairs_mut().append_pair("site", s.as_str());
        }
        self.get_json(url).await
    }

    /// One machine by id, serial or MAC.
    pub async fn machine_get(&self, key: &str) -> Result<Machine, Error> {
        self.get_json(self.url(&["v1", "machines", key])).await
    }

    /// Starts provisioning the machine.
    pub async fn machine_provision(&self, key: &str) -> Result<Accepted, Error> {
        self.machine_task(key, "provision").await
    }

    /// Starts deprovisioning the machine.
    pub async fn machine_deprovision(&self, key: &str) -> Result<Accepted, Error> {
        self.machine_task(key, "deprovision").await
    }

    async fn machine_task(&self, key: &str, action: &str) -> Result<Accepted, Error> {
        let url = self.url(&["v1", "machines", key, action]);
        let value: serde_json::Value = self.post_json(url.clone(), &empty()).await?;
        // The hub's answer names a command, an agent's is the task itself.
        let decoded = if value.get("command").is_some() {
            serde_json::from_value(value).map(Accepted::Command)
        } else {
            serde_json::from_value(value).map(Accepted::Task)
        };
        decoded.map_err(|source| decode_error(&url, source))
    }

    /// Makes a discovered machine trusted inventory (agent).
    pub async fn machine_approve(&self, key: &str) -> Result<Machine, Error> {
        let url = self.url(&["v1", "machines", key, "approve"]);
        self.post_json(url, &empty()).await
    }

    /// The machine's power state as its BMC reports it (agent).
    pub async fn machine_power(&self, key: &str) -> Result<serde_json::Value, Error> {
        self.get_json(self.url(&["v1", "machines", key, "power"]))
            .await
    }

    /// Changes the machine's power (`on`, `force_off`, `graceful_shutdown`,
    /// `force_restart`) and waits until the BMC shows it (agent).
    pub async fn machine_set_power(
        &self,
        key: &str,
        action: &str,
    ) -> Result<serde_json::Value, Error> {
        let url = self.url(&["v1", "machines", key, "power"]);
        self.post_json(url, &serde_json::json!({ "action": action }))
            .await
    }

    /// Sets the machine's next boot (`pxe`, `disk`, `uefi_http`) (agent).
    pub async fn machine_boot(&self, key: &str, target: &str) -> Result<serde_json::Value, Error> {
        let url = self.url(&["v1", "machines", key, "boot"]);
        self.post_json(url, &serde_json::json!({ "target": target }))
            .await
    }

    /// Trusts the certificate the machine's Redfish BMC presents now, if it
    /// has the fingerprint `sha256` when one is given (agent).
    pub async fn machine_repin(
        &self,
        key: &str,
        sha256: Option<&str>,
    ) -> Result<serde_json::Value, Error> {
        let url = self.url(&["v1", "machines", key, "bmc", "repin"]);
        let body = match sha256 {
            Some(f) => serde_json::json!({ "sha256": f }),
            None => serde_json::json!({}),
        };
        self.post_json(url, &body).await
    }

    // ----------------------------------------------------------- inventory

    /// Imports an inventory file (YAML) (agent). A file with problems
    /// changes nothing; [`Error::Invalid`] lists them all.
    pub async fn inventory_import(&self, yaml: String) -> Result<serde_json::Value, Error> {
        let url = self.url(&["v1", "inventory"]);
        let req = self
            .request(Method::POST, url.clone())
            .header(CONTENT_TYPE, "application/yaml")
            .body(yaml);
        let resp = self.execute(req, &url).await?;
        decode(resp, &url).await
    }

    /// The site's inventory as YAML, without passwords (agent).
    pub async fn inventory_export(&self) -> Result<String, Error> {
        let url = self.url(&["v1", "inventory"]);
        let resp = self
            .execute(self.request(Method::GET, url.clone()), &url)
            .await?;
        resp.text()
            .await
            .map_err(|source| unreachable_error(&url, source))
    }

    // --------------------------------------------------- tasks and commands

    /// Tasks, oldest first.
    pub async fn task_list(&self, query: &TaskQuery) -> Result<Vec<Task>, Error> {
        let mut url = self.url(&["v1", "tasks"]);
        if let Some(s) = &query.site {
            url.query_pairs_mut().append_pair("site", s.as_str());
        }
        if let Some(s) = &query.state {
            url.query_pairs_mut().append_pair("state", s);
        }
        self.get_json(url).await
    }

    /// One task, with its steps from an agent.
    pub async fn task_get(&self, id: &str) -> Result<TaskView, Error> {
        let url = self.url(&["v1", "tasks", id]);
        let value: serde_json::Value = self.get_json(url.clone()).await?;
        // An agent answers {task, steps}; the hub the bare task.
        let decoded = if value.get("steps").is_some() {
            serde_json::from_value::<TaskDetail>(value).map(|d| TaskView {
                task: d.task,
                steps: Some(d.steps),
            })
        } else {
            serde_json::from_value::<Task>(value).map(|task| TaskView { task, steps: None })
        };
        decoded.map_err(|source| decode_error(&url, source))
    }

    /// Runs a blocked task's step again (agent).
    pub async fn task_retry(&self, id: &str) -> Result<Task, Error> {
        let url = self.url(&["v1", "tasks", id, "retry"]);
        self.post_json(url, &empty()).await
    }

    /// A command the hub sent and the task it started (hub). Answers
    /// [`Error::NotFound`] for a moment after the command was accepted,
    /// until the replica read it back from its stream.
    pub async fn command_get(&self, id: &str) -> Result<CommandRecord, Error> {
        self.get_json(self.url(&["v1", "commands", id])).await
    }

    /// The federated sites, their last heartbeat and event count (hub).
    pub async fn site_list(&self) -> Result<Vec<SiteStatus>, Error> {
        self.get_json(self.url(&["v1", "sites"])).await
    }

    // ------------------------------------------------------------- tenancy

    /// Every tenant, by name (hub).
    pub async fn tenant_list(&self) -> Result<Vec<Tenant>, Error> {
        self.get_json(self.url(&["v1", "tenants"])).await
    }

    /// One tenant and its ETag (hub).
    pub async fn tenant_get(&self, name: &str) -> Result<Versioned<Tenant>, Error> {
        let url = self.url(&["v1", "tenants", name]);
        let resp = self
            .execute(self.request(Method::GET, url.clone()), &url)
            .await?;
        versioned(resp, &url).await
    }

    /// Creates a tenant (hub); [`Error::Conflict`] if the name is taken.
    pub async fn tenant_create(&self, tenant: &Tenant) -> Result<Versioned<Tenant>, Error> {
        let url = self.url(&["v1", "tenants"]);
        let req = self.request(Method::POST, url.clone()).json(tenant);
        let resp = self.execute(req, &url).await?;
        versioned(resp, &url).await
    }

    /// Replaces a tenant if it is still at `if_match` (hub);
    /// [`Error::PreconditionFailed`] names the current ETag otherwise.
    pub async fn tenant_replace(
        &self,
        tenant: &Tenant,
        if_match: &IfMatch,
    ) -> Result<Versioned<Tenant>, Error> {
        let url = self.url(&["v1", "tenants", tenant.name.as_str()]);
        let req = self
            .request(Method::PUT, url.clone())
            .header(IF_MATCH, if_match.header())
            .json(tenant);
        let resp = self.execute(req, &url).await?;
        versioned(resp, &url).await
    }

    /// Deletes a tenant (it must have no projects) if it is still at
    /// `if_match` (hub).
    pub async fn tenant_delete(&self, name: &str, if_match: &IfMatch) -> Result<(), Error> {
        let url = self.url(&["v1", "tenants", name]);
        let req = self
            .request(Method::DELETE, url.clone())
            .header(IF_MATCH, if_match.header());
        self.execute(req, &url).await.map(drop)
    }

    // ------------------------------------------------------------ identity

    /// Where users log in (`dvid login`): the server's OIDC issuer and
    /// client. Sends no token (a stale one must not stand in the way of
    /// logging in again); [`Error::NotFound`] if the server has no issuer.
    pub async fn oidc_config(&self) -> Result<OidcConfig, Error> {
        let url = self.url(&["v1", "identity", "oidc"]);
        let resp = self
            .execute(self.http.request(Method::GET, url.clone()), &url)
            .await?;
        decode(resp, &url).await
    }

    /// Who the server takes the caller for, and its bindings.
    pub async fn whoami(&self) -> Result<Principal, Error> {
        self.get_json(self.url(&["v1", "identity", "whoami"])).await
    }

    /// The role bindings the caller may see (hub).
    pub async fn binding_list(&self) -> Result<Vec<Grant>, Error> {
        self.get_json(self.url(&["v1", "identity", "bindings"]))
            .await
    }

    /// Grants a role (hub); granting the same binding again is a no-op
    /// that answers the same grant.
    pub async fn binding_grant(&self, binding: &RoleBinding) -> Result<Grant, Error> {
        self.post_json(self.url(&["v1", "identity", "bindings"]), binding)
            .await
    }

    /// Revokes a role binding by id (hub).
    pub async fn binding_revoke(&self, id: &str) -> Result<(), Error> {
        self.delete(self.url(&["v1", "identity", "bindings", id]))
            .await
    }

    /// The service tokens the caller may see, never their secrets (hub).
    pub async fn token_list(&self) -> Result<Vec<ServiceToken>, Error> {
        self.get_json(self.url(&["v1", "identity", "tokens"])).await
    }

    /// Mints a service token (hub); the answer holds the token, which is
    /// never shown again.
    pub async fn token_create(&self, new: &NewServiceToken) -> Result<ServiceTokenCreated, Error> {
        self.post_json(self.url(&["v1", "identity", "tokens"]), new)
            .await
    }

    /// Revokes a service token by id (hub).
    pub async fn token_revoke(&self, id: &str) -> Result<(), Error> {
        self.delete(self.url(&["v1", "identity", "tokens", id]))
            .await
    }

    // ------------------------------------------------------------ plumbing

    /// The base URL with `segments` appended, each percent-encoded (a serial
    /// may hold any character).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // The base was checked to be a base URL when the client was built.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let req = self.http.request(method, url);
        match &self.token {
            Some(t) => req.bearer_auth(t.trim()),
            None => req,
        }
    }

    async fn execute(&self, req: RequestBuilder, url: &Url) -> Result<Response, Error> {
        let resp = req
            .send()
            .await
            .map_err(|source| unreachable_error(url, source))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let etag = etag_of(&resp);
        // An unreadable error body still leaves the status to report.
        let body = resp.text().await.unwrap_or_default();
        Err(Error::from_answer_to(
            url.as_str(),
            status.as_u16(),
            &body,
            etag,
        ))
    }

    async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, Error> {
        let resp = self
            .execute(self.request(Method::GET, url.clone()), &url)
            .await?;
        decode(resp, &url).await
    }

    async fn delete(&self, url: Url) -> Result<(), Error> {
        self.execute(self.request(Method::DELETE, url.clone()), &url)
            .await
            .map(drop)
    }

    async fn post_json<T: DeserializeOwned>(
        &self,
        url: Url,
        body: &impl Serialize,
    ) -> Result<T, Error> {
        let req = self.request(Method::POST, url.clone()).json(body);
        let resp = self.execute(req, &url).await?;
        decode(resp, &url).await
    }
}

/// The empty JSON object the action endpoints take.
fn empty() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

fn unreachable_error(url: &Url, source: reqwest::Error) -> Error {
    Error::Unreachable {
        url: url.to_string(),
        source,
    }
}

fn decode_error(url: &Url, source: serde_json::Error) -> Error {
    Error::Decode {
        url: url.to_string(),
        source,
    }
}

fn etag_of(resp: &Response) -> Option<ETag> {
    resp.headers()
        .get(ETAG)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .map(ETag::new)
}

async fn decode<T: DeserializeOwned>(resp: Response, url: &Url) -> Result<T, Error> {
    let bytes = resp
        .bytes()
        .await
        .map_err(|source| unreachable_error(url, source))?;
    serde_json::from_slice(&bytes).map_err(|source| decode_error(url, source))
}

async fn versioned<T: DeserializeOwned>(resp: Response, url: &Url) -> Result<Versioned<T>, Error> {
    let etag = etag_of(&resp);
    let value = decode(resp, url).await?;
    Ok(Versioned { value, etag })
}
