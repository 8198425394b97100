//! The NATS subject taxonomy.
//!
//! ```text
//! dv.<site>.<service>.cmd.<action>            a command to a service
//! dv.<site>.<service>.evt.<entity>.<verb>     an event about an entity
//! dv.<site>.task.evt.<verb>                   an event about a task
//! dv.<site>.<service>.hb                      a liveness beat (core NATS, not stored)
//! ```
//!
//! Hub-level subjects use [`HUB`] as the site token. Every token obeys the
//! name-token rule of [`crate::token`] (a lower-case DNS label), so none can
//! hold `.`, `*`, `>` or whitespace and a token can never split a subject or
//! turn it into a wildcard. Builders validate every token; [`Subject::parse`]
//! classifies a received subject and rejects anything else with a reason.
//! Wildcard filters for subscriptions and stream sources are a separate type,
//! [`SubjectFilter`], so a filter can never be published to by mistake.
//!
//! The task service's events have no entity token (`dv.lab.task.evt.created`).
//! To keep the taxonomy unambiguous, [`event`] refuses the `task` service and
//! [`Subject::parse`] refuses a six-token task event. See
//! `docs/adr/0002-nats-subjects.md`.

use std::fmt;
use std::str::FromStr;

use crate::token::{ServiceName, SiteName, TokenError, validate_token};

pub use crate::token::HUB;

/// The first token of every Dataverket subject.
pub const ROOT: &str = "dv";
/// The kind token of commands.
pub const CMD: &str = "cmd";
/// The kind token of events.
pub const EVT: &str = "evt";
/// The kind token of heartbeats.
pub const HB: &str = "hb";

/// Service tokens used by the protocol's own events ([`crate::Event::subject`]).
pub mod service {
    /// Site registration and site-level facts.
    pub const SITE: &str = "site";
    /// Machines, racks and BMCs ("maskin" is Norwegian for machine).
    pub const MASKIN: &str = "maskin";
    /// Networks and prefixes ("nett": network).
    pub const NETT: &str = "nett";
    /// The DHCP server: leases.
    pub const DHCP: &str = "dhcp";
    /// The DNS server: records.
    pub const DNS: &str = "dns";
    /// Durable workflow tasks; its events have no entity token.
    pub const TASK: &str = "task";
}

/// Why a subject cannot be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectError {
    /// A token breaks the name-token rule.
    #[error("subject {subject:?} has an invalid {role} token")]
    Token {
        /// The subject (as far as it could be put together).
        subject: String,
        /// Which token: site, service, action, entity or verb.
        role: &'static str,
        /// What is wrong with it.
        #[source]
        source: TokenError,
    },
    /// The first token is not `dv`.
    #[error("subject {subject:?} does not start with \"dv.\"")]
    NotDataverket {
        /// The subject.
        subject: String,
    },
    /// Too few or too many tokens for any subject shape.
    #[error(
        "subject {subject:?} has {tokens} tokens; expected dv.<site>.<service>.cmd.<action>, \
         dv.<site>.<service>.evt.<entity>.<verb>, dv.<site>.task.evt.<verb> \
         or dv.<site>.<service>.hb"
    )]
    Shape {
        /// The subject.
        subject: String,
        /// How many dot-separated tokens it has.
        tokens: usize,
    },
    /// The fourth token is neither `cmd`, `evt` nor `hb`.
    #[error("subject {subject:?} has {found:?} where \"cmd\", \"evt\" or \"hb\" belongs")]
    Kind {
        /// The subject.
        subject: String,
        /// The token found in its place.
        found: String,
    },
    /// A task-service event with an entity token.
    #[error("subject {subject:?}: task events are dv.<site>.task.evt.<verb>, without an entity")]
    TaskEntity {
        /// The subject.
        subject: String,
    },
    /// A non-task event without an entity token.
    #[error("subject {subject:?}: events of a service other than task need <entity>.<verb>")]
    MissingEntity {
        /// The subject.
        subject: String,
    },
}

/// A concrete, valid subject to publish on.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject(String);

/// A subscription or stream filter, possibly with wildcards (`*`, `>`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectFilter(String);

/// What a received subject says, its tokens validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ParsedSubject {
    /// `dv.<site>.<service>.cmd.<action>`
    Command {
        /// The site the command is for.
        site: SiteName,
        /// The service that handles it.
        service: ServiceName,
        /// What to do.
        action: String,
    },
    /// `dv.<site>.<service>.evt.<entity>.<verb>`
    Event {
        /// The site it happened in.
        site: SiteName,
        /// The service that reports it.
        service: ServiceName,
        /// What kind of thing it happened to.
        entity: String,
        /// What happened.
        verb: String,
    },
    /// `dv.<site>.task.evt.<verb>`
    TaskEvent {
        /// The site the task runs in.
        site: SiteName,
        /// What happened.
        verb: String,
    },
    /// `dv.<site>.<service>.hb`
    Heartbeat {
        /// The site whose service beats.
        site: SiteName,
        /// The service that is alive.
        service: ServiceName,
    },
}

fn check(subject: &str, role: &'static str, token: &str) -> Result<(), SubjectError> {
    validate_token(role, token).map_err(|source| SubjectError::Token {
        subject: subject.to_owned(),
        role,
        source,
    })
}

/// `dv.<site>.<service>.cmd.<action>`
pub fn command(site: &SiteName, service: &str, action: &str) -> Result<Subject, SubjectError> {
    let subject = format!("{ROOT}.{site}.{service}.{CMD}.{action}");
    check(&subject, "service", service)?;
    check(&subject, "action", action)?;
    Ok(Subject(subject))
}

/// `dv.<site>.<service>.evt.<entity>.<verb>`; the `task` service uses [`task_event`].
pub fn event(
    site: &SiteName,
    service: &str,
    entity: &str,
    verb: &str,
) -> Result<Subject, SubjectError> {
    let subject = format!("{ROOT}.{site}.{service}.{EVT}.{entity}.{verb}");
    check(&subject, "service", service)?;
    check(&subject, "entity", entity)?;
    check(&subject, "verb", verb)?;
    if service == service::TASK {
        return Err(SubjectError::TaskEntity { subject });
    }
    Ok(Subject(subject))
}

/// `dv.<site>.task.evt.<verb>`
pub fn task_event(site: &SiteName, verb: &str) -> Result<Subject, SubjectError> {
    let subject = format!("{ROOT}.{site}.{}.{EVT}.{verb}", service::TASK);
    check(&subject, "verb", verb)?;
    Ok(Subject(subject))
}

/// `dv.<site>.<service>.hb`: a service's liveness beat, published on core
/// NATS (no stream captures it: a missed beat is news, a stored one is not).
pub fn heartbeat(site: &SiteName, service: &str) -> Result<Subject, SubjectError> {
    let subject = format!("{ROOT}.{site}.{service}.{HB}");
    check(&subject, "service", service)?;
    Ok(Subject(subject))
}

/// Every heartbeat of every site: `dv.*.*.hb`.
pub fn all_heartbeats() -> SubjectFilter {
    SubjectFilter(format!("{ROOT}.*.*.{HB}"))
}

/// Every event of a site, task events included: `dv.<site>.*.evt.>`.
pub fn site_events(site: &SiteName) -> SubjectFilter {
    SubjectFilter(format!("{ROOT}.{site}.*.{EVT}.>"))
}

/// Every command to a site: `dv.<site>.*.cmd.>`.
pub fn site_commands(site: &SiteName) -> SubjectFilter {
    SubjectFilter(format!("{ROOT}.{site}.*.{CMD}.>"))
}

/// Every command to one service of a site: `dv.<site>.<service>.cmd.*`.
pub fn service_commands(site: &SiteName, service: &ServiceName) -> SubjectFilter {
    SubjectFilter(format!("{ROOT}.{site}.{service}.{CMD}.*"))
}

/// Every task event of a site: `dv.<site>.task.evt.*`.
pub fn task_events(site: &SiteName) -> SubjectFilter {
    SubjectFilter(format!("{ROOT}.{site}.{}.{EVT}.*", service::TASK))
}

/// Every event of every site and of the hub: `dv.*.*.evt.>`.
pub fn all_events() -> SubjectFilter {
    SubjectFilter(format!("{ROOT}.*.*.{EVT}.>"))
}

impl Subject {
    /// Builds a subject from tokens the caller guarantees valid (the crate's
    /// own constants and already-validated names). Tests check every caller.
    pub(crate) fn from_valid(subject: String) -> Self {
        debug_assert!(Self::parse(&subject).is_ok(), "{subject}");
        Self(subject)
    }

    /// Classifies a received subject, validating every token.
    pub fn parse(subject: &str) -> Result<ParsedSubject, SubjectError> {
        let tokens: Vec<&str> = subject.split('.').collect();
        if tokens.first() != Some(&ROOT) {
            return Err(SubjectError::NotDataverket {
                subject: subject.to_owned(),
            });
        }
        let shape = || SubjectError::Shape {
            subject: subject.to_owned(),
            tokens: tokens.len(),
        };
        let &[_, site, service, kind, ref rest @ ..] = tokens.as_slice() else {
            return Err(shape());
        };
        let site = SiteName::new(site).map_err(|source| SubjectError::Token {
            subject: subject.to_owned(),
            role: "site",
            source,
        })?;
        let service = ServiceName::new(service).map_err(|source| SubjectError::Token {
            subject: subject.to_owned(),
            role: "service",
            source,
        })?;
        let is_task = service.as_str() == service::TASK;
        match (kind, rest) {
            (HB, []) => Ok(ParsedSubject::Heartbeat { site, service }),
            (CMD, [action]) => {
                check(subject, "action", action)?;
                Ok(ParsedSubject::Command {
                    site,
                    service,
                    action: (*action).to_owned(),
                })
            }
            (EVT, [verb]) if is_task => {
                check(subject, "verb", verb)?;
                Ok(ParsedSubject::TaskEvent {
                    site,
                    verb: (*verb).to_owned(),
                })
            }
            (EVT, [_]) => Err(SubjectError::MissingEntity {
                subject: subject.to_owned(),
            }),
            (EVT, [_, _]) if is_task => Err(SubjectError::TaskEntity {
                subject: subject.to_owned(),
            }),
            (EVT, [entity, verb]) => {
                check(subject, "entity", entity)?;
                check(subject, "verb", verb)?;
                Ok(ParsedSubject::Event {
                    site,
                    service,
                    entity: (*entity).to_owned(),
                    verb: (*verb).to_owned(),
                })
            }
            (CMD | EVT | HB, _) => Err(shape()),
            (other, _) => Err(SubjectError::Kind {
                subject: subject.to_owned(),
                found: other.to_owned(),
            }),
        }
    }

    /// The subject as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The subject as an owned string (for a NATS client call).
    pub fn into_string(self) -> String {
        self.0
    }
}

impl ParsedSubject {
    /// The site token.
    pub fn site(&self) -> &SiteName {
        match self {
            Self::Command { site, .. }
            | Self::Event { site, .. }
            | Self::TaskEvent { site, .. }
            | Self::Heartbeat { site, .. } => site,
        }
    }

    /// The subject this was parsed from.
    pub fn to_subject(&self) -> Subject {
        Subject(match self {
            Self::Command {
                site,
                service,
                action,
            } => format!("{ROOT}.{site}.{service}.{CMD}.{action}"),
            Self::Event {
                site,
                service,
                entity,
                verb,
            } => format!("{ROOT}.{site}.{service}.{EVT}.{entity}.{verb}"),
            Self::TaskEvent { site, verb } => {
                format!("{ROOT}.{site}.{}.{EVT}.{verb}", service::TASK)
            }
            Self::Heartbeat { site, service } => format!("{ROOT}.{site}.{service}.{HB}"),
        })
    }
}

impl FromStr for ParsedSubject {
    type Err = SubjectError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Subject::parse(s)
    }
}

impl SubjectFilter {
    /// The filter as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The filter as an owned string (for a NATS client call).
    pub fn into_string(self) -> String {
        self.0
    }
}

macro_rules! text_impls {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}
text_impls!(Subject);
text_impls!(SubjectFilter);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lab() -> SiteName {
        SiteName::new("lab").unwrap()
    }

    #[test]
    fn builds_the_three_shapes() {
        assert_eq!(
            command(&lab(), "maskin", "provision").unwrap().as_str(),
            "dv.lab.maskin.cmd.provision"
        );
        assert_eq!(
            event(&lab(), "dhcp", "lease", "bound").unwrap().as_str(),
            "dv.lab.dhcp.evt.lease.bound"
        );
        assert_eq!(
            task_event(&SiteName::hub(), "created").unwrap().as_str(),
            "dv.hub.task.evt.created"
        );
    }

    #[test]
    fn heartbeats_build_and_parse() {
        let hb = heartbeat(&lab(), "site").unwrap();
        assert_eq!(hb.as_str(), "dv.lab.site.hb");
        assert_eq!(
            Subject::parse(hb.as_str()).unwrap(),
            ParsedSubject::Heartbeat {
                site: lab(),
                service: ServiceName::new("site").unwrap(),
            }
        );
        assert_eq!(Subject::parse("dv.lab.site.hb").unwrap().to_subject(), hb);
        assert!(heartbeat(&lab(), "A").is_err());
        assert!(matches!(
            Subject::parse("dv.lab.site.hb.x"),
            Err(SubjectError::Shape { tokens: 5, .. })
        ));
        assert_eq!(all_heartbeats().as_str(), "dv.*.*.hb");
    }

    #[test]
    fn builds_filters() {
        assert_eq!(site_events(&lab()).as_str(), "dv.lab.*.evt.>");
        assert_eq!(site_commands(&lab()).as_str(), "dv.lab.*.cmd.>");
        assert_eq!(task_events(&lab()).as_str(), "dv.lab.task.evt.*");
        let dhcp = ServiceName::new("dhcp").unwrap();
        assert_eq!(
            service_commands(&lab(), &dhcp).as_str(),
            "dv.lab.dhcp.cmd.*"
        );
        assert_eq!(all_events().as_str(), "dv.*.*.evt.>");
    }

    #[test]
    fn builders_reject_bad_tokens() {
        for bad in ["", "*", ">", "a.b", "A", "a b", "-a", "lease\n"] {
            assert!(command(&lab(), bad, "x").is_err(), "service {bad:?}");
            assert!(command(&lab(), "x", bad).is_err(), "action {bad:?}");
            assert!(event(&lab(), "x", bad, "y").is_err(), "entity {bad:?}");
            assert!(event(&lab(), "x", "y", bad).is_err(), "verb {bad:?}");
            assert!(task_event(&lab(), bad).is_err(), "verb {bad:?}");
        }
        let err = command(&lab(), "maskin", "Provision").unwrap_err();
        assert_eq!(
            err.to_string(),
            "subject \"dv.lab.maskin.cmd.Provision\" has an invalid action token"
        );
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("'P'"), "{source}");
    }

    #[test]
    fn task_service_events_have_no_entity() {
        assert!(matches!(
            event(&lab(), "task", "task", "created"),
            Err(SubjectError::TaskEntity { .. })
        ));
        assert!(matches!(
            Subject::parse("dv.lab.task.evt.task.created"),
            Err(SubjectError::TaskEntity { .. })
        ));
        assert!(matches!(
            Subject::parse("dv.lab.dhcp.evt.bound"),
            Err(SubjectError::MissingEntity { .. })
        ));
    }

    #[test]
    fn parses_the_three_shapes() {
        assert_eq!(
            Subject::parse("dv.lab.maskin.cmd.provision").unwrap(),
            ParsedSubject::Command {
                site: lab(),
                service: ServiceName::new("maskin").unwrap(),
                action: "provision".into(),
            }
        );
        assert_eq!(
            Subject::parse("dv.hub.dns.evt.record.upserted").unwrap(),
            ParsedSubject::Event {
                site: SiteName::hub(),
                service: ServiceName::new("dns").unwrap(),
                entity: "record".into(),
                verb: "upserted".into(),
            }
        );
        let parsed: ParsedSubject = "dv.lab.task.evt.state-changed".parse().unwrap();
        assert_eq!(
            parsed,
            ParsedSubject::TaskEvent {
                site: lab(),
                verb: "state-changed".into()
            }
        );
        assert_eq!(parsed.site(), &lab());
    }

    #[test]
    fn parse_rejects_everything_else_with_a_reason() {
        type Check = fn(&SubjectError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, SubjectError::NotDataverket { .. })),
            ("nats.lab.x.cmd.y", |e| {
                matches!(e, SubjectError::NotDataverket { .. })
            }),
            ("dv.lab.x.cmd", |e| {
                matches!(e, SubjectError::Shape { tokens: 4, .. })
            }),
            ("dv.lab.x.cmd.y.z", |e| {
                matches!(e, SubjectError::Shape { tokens: 6, .. })
            }),
            ("dv.lab.x.evt.a.b.c", |e| {
                matches!(e, SubjectError::Shape { tokens: 7, .. })
            }),
            ("dv.lab.x.req.y", |e| matches!(e, SubjectError::Kind { .. })),
            ("dv.*.x.cmd.y", |e| {
                matches!(e, SubjectError::Token { role: "site", .. })
            }),
            ("dv.lab.>", |e| matches!(e, SubjectError::Shape { .. })),
            ("dv.lab.*.evt.>", |e| {
                matches!(
                    e,
                    SubjectError::Token {
                        role: "service",
                        ..
                    }
                )
            }),
            ("dv.lab.x.cmd.Y", |e| {
                matches!(e, SubjectError::Token { role: "action", .. })
            }),
            ("dv.lab.x.evt..y", |e| {
                matches!(e, SubjectError::Token { role: "entity", .. })
            }),
            ("dv.lab.x.cmd.y.", |e| {
                matches!(e, SubjectError::Shape { .. })
            }),
        ];
        for (subject, is_expected) in cases {
            let err = Subject::parse(subject).unwrap_err();
            assert!(is_expected(&err), "{subject:?}: {err:?}");
            assert!(err.to_string().contains(&format!("{subject:?}")), "{err}");
        }
    }

    const TOKEN: &str = "[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?";

    proptest! {
        #[test]
        fn build_parse_round_trip(
            site in TOKEN, service in TOKEN, a in TOKEN, b in TOKEN,
        ) {
            let site = SiteName::new(site).unwrap();
            let cmd = command(&site, &service, &a).unwrap();
            let parsed = Subject::parse(cmd.as_str()).unwrap();
            prop_assert_eq!(&parsed.to_subject(), &cmd);
            let is_command = matches!(parsed, ParsedSubject::Command { .. });
            prop_assert!(is_command);

            let tev = task_event(&site, &b).unwrap();
            prop_assert_eq!(Subject::parse(tev.as_str()).unwrap().to_subject(), tev);

            if service != service::TASK {
                let ev = event(&site, &service, &a, &b).unwrap();
                let parsed = Subject::parse(ev.as_str()).unwrap();
                prop_assert_eq!(&parsed.to_subject(), &ev);
                prop_assert_eq!(parsed, ParsedSubject::Event {
                    site,
                    service: ServiceName::new(service).unwrap(),
                    entity: a,
                    verb: b,
                });
            }
        }

        #[test]
        fn parse_never_panics(subject in "\\PC{0,80}") {
            let _ = Subject::parse(&subject);
        }

        #[test]
        fn parse_never_panics_on_dotted_noise(subject in "dv(\\.[a-z*>A-Z0-9 -]{0,6}){0,8}") {
            if let Ok(parsed) = Subject::parse(&subject) {
                prop_assert_eq!(parsed.to_subject().into_string(), subject);
            }
        }
    }
}
