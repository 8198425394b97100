//! Commands: requests for a site to do something, sent down from the hub.
//!
//! A command travels as a [`Message<Command>`]: the envelope's id is the
//! command id, which the receiving agent deduplicates on (a redelivered
//! command does not act twice). Each [`Command`] variant fixes its own
//! service and action token, so its subject is `dv.<site>.<service>.cmd.<action>`
//! ([`Command::subject`]); a receiver checks the subject it read a command
//! from against the body ([`Command::matches`]).
//!
//! New variants go at the end: postcard numbers variants by position (see
//! `docs/adr/0003-envelope-and-codec.md`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::envelope::{Actor, Message};
use crate::id::MachineId;
use crate::subject::{CMD, ParsedSubject, ROOT, Subject, service};
use crate::token::SiteName;

/// What a site is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Provision an available machine (`dv.<site>.maskin.cmd.provision`).
    ProvisionMachine {
        /// The machine.
        machine: MachineId,
    },
    /// Wipe a machine and return it to the pool
    /// (`dv.<site>.maskin.cmd.deprovision`).
    DeprovisionMachine {
        /// The machine.
        machine: MachineId,
    },
}

impl Command {
    /// `(service, action)` of this command's subject.
    fn route(&self) -> (&'static str, &'static str) {
        match self {
            Self::ProvisionMachine { .. } => (service::MASKIN, "provision"),
            Self::DeprovisionMachine { .. } => (service::MASKIN, "deprovision"),
        }
    }

    /// The service token.
    pub fn service(&self) -> &'static str {
        self.route().0
    }

    /// The action token.
    pub fn action(&self) -> &'static str {
        self.route().1
    }

    /// The subject this command is sent on to `site`.
    pub fn subject(&self, site: &SiteName) -> Subject {
        let (service, action) = self.route();
        Subject::from_valid(format!("{ROOT}.{site}.{service}.{CMD}.{action}"))
    }

    /// Whether `subject` is this command's subject (any site): a command
    /// whose body and subject disagree is rejected, not guessed at.
    pub fn matches(&self, subject: &ParsedSubject) -> bool {
        match subject {
            ParsedSubject::Command {
                service, action, ..
            } => (service.as_str(), action.as_str()) == self.route(),
            _ => false,
        }
    }
}

impl Message<Command> {
    /// A command to `site`, starting a new conversation; the envelope id
    /// is the command id.
    pub fn command(site: SiteName, actor: Actor, command: Command) -> Self {
        Message::new(site, actor, command)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ProvisionMachine { machine } => write!(f, "provision machine {machine}"),
            Self::DeprovisionMachine { machine } => write!(f, "deprovision machine {machine}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::codec;

    fn all() -> Vec<Command> {
        let machine = MachineId::new();
        vec![
            Command::ProvisionMachine { machine },
            Command::DeprovisionMachine { machine },
        ]
    }

    #[test]
    fn subjects_parse_back_and_match() {
        let site = SiteName::new("lab").unwrap();
        for command in all() {
            let subject = command.subject(&site);
            let parsed = Subject::parse(subject.as_str()).unwrap();
            assert!(command.matches(&parsed), "{subject}");
            assert_eq!(parsed.site(), &site);
        }
        let provision = &all()[0];
        let other = Subject::parse("dv.lab.maskin.cmd.deprovision").unwrap();
        assert!(!provision.matches(&other));
        assert_eq!(
            provision.subject(&site).as_str(),
            "dv.lab.maskin.cmd.provision"
        );
    }

    #[test]
    fn round_trips_through_the_codec() {
        let site = SiteName::new("lab").unwrap();
        for command in all() {
            let message = Message::command(site.clone(), Actor::new("hub:api").unwrap(), command);
            let bytes = codec::encode(&message).unwrap();
            assert_eq!(codec::decode::<Command>(&bytes).unwrap(), message);
        }
    }
}
