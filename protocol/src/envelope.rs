//! The message envelope: who sent what, on whose behalf, as part of which
//! conversation.
//!
//! Every message on the bus is a [`Message<T>`]: an [`Envelope`] and a body.
//! The envelope's routing fields are also sent as NATS headers
//! ([`Envelope::headers`]) so an operator can read them with any NATS tool
//! without decoding the postcard payload. The payload is authoritative; the
//! headers are a copy.
//!
//! Correlation: a message that starts a conversation (an operator's command)
//! has a correlation id equal to its own id. Every message that follows from
//! it is made with [`Message::caused_by`], which copies the correlation id,
//! tenant and project and records the parent as the causation id. Following
//! causation ids backwards from any event reaches the command that caused it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::id::{CorrelationId, MessageId};
use crate::token::{ProjectName, SiteName, TenantName, validate_token};

/// The version of the body schema this build speaks: stamped into every
/// envelope and the `Dv-Schema` header. Bumped when a body type gains a
/// variant or field (see `docs/adr/0003-envelope-and-codec.md`).
///
/// History: 1 = first release; 2 = `EventBody::MachineBootReported` and
/// `EventBody::MachineBootStateSet` appended; 3 =
/// `EventBody::BmcCertificatePinned` appended; 4 = `EventBody::CommandRejected`,
/// `EventBody::NetworkDeleted`, `EventBody::AddressAllocated` and
/// `EventBody::AddressReleased` appended; 5 = `EventBody::PortIntentChanged`,
/// `EventBody::SwitchApplied`, `EventBody::SwitchApplyFailed` and
/// `EventBody::SwitchDrifted` appended.
pub const SCHEMA_VERSION: u16 = 5;

/// NATS header names carrying the envelope's routing fields.
pub mod header {
    /// The message id; JetStream deduplicates on it.
    pub const MSG_ID: &str = "Nats-Msg-Id";
    /// The correlation id.
    pub const CORRELATION_ID: &str = "Dv-Correlation-Id";
    /// The causation id, when there is one.
    pub const CAUSATION_ID: &str = "Dv-Causation-Id";
    /// The tenant, when there is one.
    pub const TENANT: &str = "Dv-Tenant";
    /// The project, when there is one.
    pub const PROJECT: &str = "Dv-Project";
    /// Who sent it.
    pub const ACTOR: &str = "Dv-Actor";
    /// The site it was sent from or for.
    pub const SITE: &str = "Dv-Site";
    /// The body schema version, in decimal.
    pub const SCHEMA: &str = "Dv-Schema";
}

/// Why an envelope field is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The actor is not `<kind>:<name>` in visible ASCII of at most 128 bytes.
    #[error("actor {value:?} is invalid: {reason}")]
    Actor {
        /// The rejected text.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Who acts: `<kind>:<name>`, such as `agent:lab`, `user:alice@example.com`,
/// `hub:placement`.
///
/// `kind` follows the name-token rule; `name` is 1 or more visible ASCII
/// characters (no spaces or control characters, so the value is always a
/// safe NATS header value); the whole is at most 128 bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Actor(String);

impl Actor {
    /// The longest actor text accepted, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Validates `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, EnvelopeError> {
        let value = value.into();
        let fail = |value: String, reason| Err(EnvelopeError::Actor { value, reason });
        if value.len() > Self::MAX_LEN {
            return fail(value, "longer than 128 bytes");
        }
        let Some((kind, name)) = value.split_once(':') else {
            return fail(value, "expected <kind>:<name>, such as user:alice");
        };
        if validate_token("actor kind", kind).is_err() {
            return fail(
                value,
                "the kind must be a lower-case token such as agent or user",
            );
        }
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return fail(value, "the name must be visible ASCII without spaces");
        }
        Ok(Self(value))
    }

    /// The actor for a site's agent: `agent:<site>`.
    pub fn agent(site: &SiteName) -> Self {
        Self(format!("agent:{site}"))
    }

    /// The actor as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the colon (`agent`, `user`).
    pub fn kind(&self) -> &str {
        self.0.split_once(':').map_or("", |(kind, _)| kind)
    }

    /// The part after the colon.
    pub fn name(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, name)| name)
    }
}

impl FromStr for Actor {
    type Err = EnvelopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Actor({:?})", self.0)
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

/// Who sent a message, on whose behalf, and as part of what.
///
/// Field order is the postcard wire order; changing it changes the codec
/// version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// This message's id (`Nats-Msg-Id`).
    pub id: MessageId,
    /// The conversation it belongs to.
    pub correlation_id: CorrelationId,
    /// The message that caused this one, if any.
    pub causation_id: Option<MessageId>,
    /// The tenant it is for, if any.
    pub tenant: Option<TenantName>,
    /// The project it is for, if any.
    pub project: Option<ProjectName>,
    /// Who sent it.
    pub actor: Actor,
    /// The site it was sent from (events) or for (commands); [`SiteName::hub`]
    /// for hub-level messages.
    pub site: SiteName,
    /// The body schema version of the sender ([`SCHEMA_VERSION`]).
    pub schema_version: u16,
    /// When the sender made it.
    #[serde(with = "crate::timestamp")]
    pub occurred_at: OffsetDateTime,
}

impl Envelope {
    /// A fresh envelope starting a new conversation, stamped now.
    pub fn new(site: SiteName, actor: Actor) -> Self {
        let id = MessageId::new();
        Self {
            id,
            correlation_id: id.into(),
            causation_id: None,
            tenant: None,
            project: None,
            actor,
            site,
            schema_version: SCHEMA_VERSION,
            occurred_at: OffsetDateTime::now_utc(),
        }
    }

    /// The routing fields as NATS `(header, value)` pairs; absent optional
    /// fields are left out. Every value is a valid header value.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            (header::MSG_ID, self.id.to_string()),
            (header::CORRELATION_ID, self.correlation_id.to_string()),
        ];
        if let Some(causation) = self.causation_id {
            headers.push((header::CAUSATION_ID, causation.to_string()));
        }
        if let Some(tenant) = &self.tenant {
            headers.push((header::TENANT, tenant.to_string()));
        }
        if let Some(project) = &self.project {
            headers.push((header::PROJECT, project.to_string()));
        }
        headers.push((header::ACTOR, self.actor.to_string()));
        headers.push((header::SITE, self.site.to_string()));
        headers.push((header::SCHEMA, self.schema_version.to_string()));
        headers
    }
}

/// A message on the bus: an envelope and a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message<T> {
    /// Routing and provenance.
    pub envelope: Envelope,
    /// The payload (an [`Event`](crate::Event), a [`Task`](crate::Task), ...).
    pub body: T,
}

impl<T> Message<T> {
    /// A message starting a new conversation, stamped now.
    pub fn new(site: SiteName, actor: Actor, body: T) -> Self {
        Self {
            envelope: Envelope::new(site, actor),
            body,
        }
    }

    /// Marks this message as caused by `parent`: copies its correlation id,
    /// sets the causation id to the parent's id, and copies the parent's
    /// tenant and project where this message has none.
    #[must_use]
    pub fn caused_by(mut self, parent: &Envelope) -> Self {
        self.envelope.correlation_id = parent.correlation_id;
        self.envelope.causation_id = Some(parent.id);
        if self.envelope.tenant.is_none() {
            self.envelope.tenant.clone_from(&parent.tenant);
        }
        if self.envelope.project.is_none() {
            self.envelope.project.clone_from(&parent.project);
        }
        self
    }

    /// Sets the tenant.
    #[must_use]
    pub fn with_tenant(mut self, tenant: TenantName) -> Self {
        self.envelope.tenant = Some(tenant);
        self
    }

    /// Sets the project.
    #[must_use]
    pub fn with_project(mut self, project: ProjectName) -> Self {
        self.envelope.project = Some(project);
        self
    }

    /// The envelope's NATS headers; see [`Envelope::headers`].
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        self.envelope.headers()
    }

    /// Replaces the body, keeping the envelope.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Message<U> {
        Message {
            envelope: self.envelope,
            body: f(self.body),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lab() -> SiteName {
        SiteName::new("lab").unwrap()
    }

    #[test]
    fn actor_rule() {
        for ok in [
            "agent:lab",
            "user:alice@example.com",
            "hub:placement",
            "svc:a:b",
        ] {
            assert_eq!(Actor::new(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "alice",
            ":alice",
            "user:",
            "User:alice",
            "user:al ice",
            "user:al\r\nX: y",
            "user:ål",
        ] {
            assert!(Actor::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Actor::new(format!("user:{}", "a".repeat(124))).is_err());
        let actor = Actor::agent(&lab());
        assert_eq!((actor.kind(), actor.name()), ("agent", "lab"));
        let err = Actor::new("alice").unwrap_err().to_string();
        assert!(err.contains("<kind>:<name>"), "{err}");
        assert!(serde_json::from_str::<Actor>("\"no colon\"").is_err());
    }

    #[test]
    fn a_new_message_starts_a_conversation() {
        let msg = Message::new(lab(), Actor::agent(&lab()), ());
        let env = &msg.envelope;
        assert_eq!(env.correlation_id, CorrelationId::from(env.id));
        assert_eq!(env.causation_id, None);
        assert_eq!(env.schema_version, SCHEMA_VERSION);
    }

    #[test]
    fn caused_by_carries_the_conversation() {
        let parent = Message::new(lab(), Actor::new("user:alice").unwrap(), ())
            .with_tenant(TenantName::new("acme").unwrap())
            .with_project(ProjectName::new("web").unwrap());
        let child = Message::new(lab(), Actor::agent(&lab()), 1u8).caused_by(&parent.envelope);
        let grandchild = Message::new(lab(), Actor::agent(&lab()), 2u8).caused_by(&child.envelope);
        for msg in [&child.envelope, &grandchild.envelope] {
            assert_eq!(msg.correlation_id, parent.envelope.correlation_id);
            assert_eq!(msg.tenant, parent.envelope.tenant);
            assert_eq!(msg.project, parent.envelope.project);
        }
        assert_eq!(child.envelope.causation_id, Some(parent.envelope.id));
        assert_eq!(grandchild.envelope.causation_id, Some(child.envelope.id));
        assert_ne!(child.envelope.id, parent.envelope.id);
    }

    #[test]
    fn headers_mirror_the_routing_fields() {
        let parent = Message::new(lab(), Actor::new("user:alice").unwrap(), ());
        let msg = Message::new(lab(), Actor::agent(&lab()), ())
            .with_tenant(TenantName::new("acme").unwrap())
            .with_project(ProjectName::new("web").unwrap())
            .caused_by(&parent.envelope);
        let env = &msg.envelope;
        assert_eq!(
            msg.headers(),
            vec![
                ("Nats-Msg-Id", env.id.to_string()),
                ("Dv-Correlation-Id", parent.envelope.id.to_string()),
                ("Dv-Causation-Id", parent.envelope.id.to_string()),
                ("Dv-Tenant", "acme".to_owned()),
                ("Dv-Project", "web".to_owned()),
                ("Dv-Actor", "agent:lab".to_owned()),
                ("Dv-Site", "lab".to_owned()),
                ("Dv-Schema", SCHEMA_VERSION.to_string()),
            ]
        );
        let names: Vec<_> = parent.headers().into_iter().map(|(name, _)| name).collect();
        assert_eq!(
            names,
            [
                "Nats-Msg-Id",
                "Dv-Correlation-Id",
                "Dv-Actor",
                "Dv-Site",
                "Dv-Schema"
            ]
        );
    }
}
