//! Typed, time-sortable ids.
//!
//! Every id is a UUIDv7 (RFC 9562) wrapped in its own type, so a `MachineId`
//! can never be passed where a `TaskId` is expected. A v7 id starts with a
//! 48-bit Unix millisecond timestamp, so ids sort by creation time: within one
//! process strictly (the `uuid` crate keeps a counter inside a millisecond),
//! across hosts to clock precision. That makes them good SQLite primary keys
//! (inserts land at the end of the B-tree) and lets an operator read the
//! creation time off any id. See `docs/adr/0001-ids.md`.
//!
//! On the wire an id is the UUID itself: 16 raw bytes under postcard, the
//! canonical hyphenated lower-case text (`0190a5c4-...`) in JSON and in
//! `Display`/`FromStr`. Decoding accepts any UUID version: ids minted by an
//! import or by an older tool stay readable; only [`new`](MachineId::new)
//! promises v7.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The text is not a UUID.
    #[error(
        "{kind} {input:?} is not a UUID (expected text like 0190a5c4-8c1e-7d2a-9f00-5e3c1b2a4d6f)"
    )]
    Parse {
        /// Which id type was being parsed (`machine id`, `task id`, ...).
        kind: &'static str,
        /// The rejected text.
        input: String,
    },
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh UUIDv7 id, ordered after every id this process made before.
            #[allow(clippy::new_without_default, reason = "a random default would surprise in struct update syntax")]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (from a database row, a fixture, a header).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// When the id was made, if it is a v7 (or v1/v6) UUID.
            pub fn timestamp(&self) -> Option<OffsetDateTime> {
                timestamp_of(self.0)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| IdError::Parse {
                    kind: $kind,
                    input: s.to_owned(),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        crate::schema::string_schema!(
            $name,
            concat!("A ", $kind, ": a UUID (v7 when Dataverket minted it), hyphenated lower-case text."),
            None,
            Some("uuid"),
            "0190a5c4-8c1e-7d2a-9f00-5e3c1b2a4d6f"
        );
    };
}

fn timestamp_of(uuid: Uuid) -> Option<OffsetDateTime> {
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    let secs = i64::try_from(secs).ok()?;
    let nanos = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

typed_id!(
    /// A rack inside a site.
    RackId,
    "rack id"
);
typed_id!(
    /// A physical machine, known from its first DHCP packet or BMC inventory.
    MachineId,
    "machine id"
);
typed_id!(
    /// A baseboard management controller (Redfish or IPMI endpoint).
    BmcId,
    "bmc id"
);
typed_id!(
    /// A layer-2 network (one VLAN) inside a site.
    NetworkId,
    "network id"
);
typed_id!(
    /// An IP prefix (subnet) on a network.
    PrefixId,
    "prefix id"
);
typed_id!(
    /// An address handed out by IPAM from a prefix (one owner per address).
    AllocationId,
    "allocation id"
);
typed_id!(
    /// A DHCP lease.
    LeaseId,
    "lease id"
);
typed_id!(
    /// A DNS record the agent serves.
    DnsRecordId,
    "dns record id"
);
typed_id!(
    /// A durable workflow task (provision a machine, apply a network, ...).
    TaskId,
    "task id"
);
typed_id!(
    /// An event: a fact that happened. Consumers deduplicate on it.
    EventId,
    "event id"
);
typed_id!(
    /// One message on the bus; also its `Nats-Msg-Id` for JetStream deduplication.
    MessageId,
    "message id"
);
typed_id!(
    /// Ties together every message that follows from one original request.
    CorrelationId,
    "correlation id"
);

/// A command is a message: its id is the message id.
pub type CommandId = MessageId;

impl From<EventId> for MessageId {
    /// The id of the message that first publishes this event; see
    /// [`Message::from_event`](crate::Message::from_event).
    fn from(id: EventId) -> Self {
        Self(id.0)
    }
}

impl From<MessageId> for CorrelationId {
    /// The correlation id of a conversation started by this message.
    fn from(id: MessageId) -> Self {
        Self(id.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_made_in_sequence_sort_in_order() {
        let ids: Vec<TaskId> = (0..10_000).map(|_| TaskId::new()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        // Their text sorts the same way, which keeps SQLite TEXT keys ordered too.
        let text: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert!(text.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn new_ids_are_v7_and_carry_their_creation_time() {
        let before = OffsetDateTime::now_utc();
        let id = MachineId::new();
        let after = OffsetDateTime::now_utc();
        assert_eq!(id.as_uuid().get_version_num(), 7);
        let at = id.timestamp().unwrap();
        // v7 keeps milliseconds.
        assert!(
            at >= before - time::Duration::milliseconds(1) && at <= after,
            "{at}"
        );
    }

    #[test]
    fn display_parse_round_trip_and_canonical_text() {
        let id = LeaseId::new();
        let text = id.to_string();
        assert_eq!(text, id.as_uuid().hyphenated().to_string());
        assert_eq!(text.parse::<LeaseId>().unwrap(), id);
        assert_eq!(text.to_uppercase().parse::<LeaseId>().unwrap(), id);
    }

    #[test]
    fn parse_error_names_the_kind_and_input() {
        let err = "not-a-uuid".parse::<BmcId>().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("bmc id") && msg.contains("not-a-uuid"),
            "{msg}"
        );
    }

    #[test]
    fn serde_is_transparent() {
        let id = EventId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<EventId>(&json).unwrap(), id);
        let bytes = postcard::to_allocvec(&id).unwrap();
        assert_eq!(postcard::from_bytes::<EventId>(&bytes).unwrap(), id);
    }
}
