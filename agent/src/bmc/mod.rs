//! Baseboard management controllers: the `Bmc` driver trait and what every
//! driver shares (power states, boot targets, errors, and the rule that an
//! action counts only once the BMC reads back as changed).
//!
//! A BMC that answers 200 to a boot override and then boots the old device
//! anyway is a known field failure, so no driver reports success on the
//! strength of a status code: [`Bmc::set_power`] and [`Bmc::boot_once`]
//! read the state back, retry within [`Limits`], and fail with
//! [`BmcError::NotApplied`] naming what was asked and what the BMC says.
//! Every call has a timeout; every retry loop is bounded.
//!
//! Drivers: [`redfish`] (DMTF Redfish over HTTPS, one file) and [`ipmi`]
//! (IPMI v2.0 RMCP+ over UDP, a directory of small files).

pub mod ipmi;
pub mod machine;
pub mod redfish;

use std::fmt;
use std::future::Future;
use std::time::Duration;

/// A system's power as its BMC reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    /// Running.
    On,
    /// Off (soft-off included).
    Off,
    /// On its way up.
    PoweringOn,
    /// On its way down.
    PoweringOff,
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::PoweringOn => "powering on",
            PowerState::PoweringOff => "powering off",
        })
    }
}

/// What to do to a system's power.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// Power on.
    On,
    /// Cut power now.
    ForceOff,
    /// Ask the OS to shut down.
    GracefulShutdown,
    /// Reset now (power cycle as seen by the OS).
    ForceRestart,
}

impl PowerAction {
    /// The state the system must reach for the action to count as done.
    pub fn settles_in(self) -> PowerState {
        match self {
            PowerAction::On | PowerAction::ForceRestart => PowerState::On,
            PowerAction::ForceOff | PowerAction::GracefulShutdown => PowerState::Off,
        }
    }
}

impl fmt::Display for PowerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerAction::On => "on",
            PowerAction::ForceOff => "force off",
            PowerAction::GracefulShutdown => "graceful shutdown",
            PowerAction::ForceRestart => "force restart",
        })
    }
}

/// Where the next boot goes (a one-time override).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootTarget {
    /// The network, by PXE.
    Pxe,
    /// The first hard disk.
    Hdd,
    /// The network, by UEFI HTTP boot.
    UefiHttp,
}

impl fmt::Display for BootTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BootTarget::Pxe => "pxe",
            BootTarget::Hdd => "disk",
            BootTarget::UefiHttp => "uefi http",
        })
    }
}

/// What the BMC tells about its system (inventory facts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemInfo {
    /// The BMC's id for the system.
    pub id: String,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// SMBIOS UUID.
    pub uuid: Option<String>,
    /// Power now.
    pub power: Option<PowerState>,
    /// Boot override targets the BMC says it accepts, in its own words.
    pub boot_targets: Vec<String>,
}

/// Time limits for one driver's calls and read-back checks.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// One request, connection included.
    pub request: Duration,
    /// How long a power action may take to show in the read-back state.
    pub power_settle: Duration,
    /// Pause between two read-backs.
    pub poll: Duration,
    /// Attempts at a boot override before giving up.
    pub override_attempts: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request: Duration::from_secs(15),
            // Real BMCs take seconds to tens of seconds; emulators too.
            power_settle: Duration::from_secs(120),
            poll: Duration::from_secs(1),
            override_attempts: 3,
        }
    }
}

/// Everything a BMC driver can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BmcError {
    /// No answer (connection refused, timeout, TLS failure).
    #[error("BMC {endpoint} cannot be reached")]
    Unreachable {
        /// Where.
        endpoint: String,
        /// Why (the HTTP client's error, or the UDP exchange that went unanswered).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The BMC refused the credentials.
    #[error(
        "BMC {endpoint} refused the credentials ({reason}); check the machine's BMC user and password"
    )]
    Auth {
        /// Where.
        endpoint: String,
        /// How it said so, in the protocol's terms (e.g. "HTTP 401").
        reason: String,
    },
    /// An IPMI command answered with a non-zero completion code.
    #[error("BMC {endpoint}: {command} answered completion code {code:#04x} ({meaning})")]
    Completion {
        /// Where.
        endpoint: String,
        /// The command, as the IPMI spec names it.
        command: &'static str,
        /// The completion code.
        code: u8,
        /// What the spec says it means.
        meaning: &'static str,
    },
    /// The BMC answered with an error status.
    #[error("BMC {endpoint} answered {method} {path} with HTTP {status}: {message}")]
    Status {
        /// Where.
        endpoint: String,
        /// Method.
        method: &'static str,
        /// Resource.
        path: String,
        /// Status code.
        status: u16,
        /// The BMC's own message (Redfish extended info) or the body.
        message: String,
    },
    /// The answer is not what the protocol says it should be.
    #[error("BMC {endpoint}: unexpected answer to {path}: {detail}")]
    Protocol {
        /// Where.
        endpoint: String,
        /// Resource.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The BMC says it does not support what was asked.
    #[error("BMC {endpoint} does not offer {wanted} (it allows: {allowed})")]
    Unsupported {
        /// Where.
        endpoint: String,
        /// What was asked, in the BMC's vocabulary.
        wanted: String,
        /// What the BMC lists as allowed.
        allowed: String,
    },
    /// The BMC accepted the request, but reading back shows it was not applied.
    #[error(
        "BMC {endpoint} accepted {asked} but did not apply it: it still reports {found} after {attempts} attempt(s) over {waited:?}"
    )]
    NotApplied {
        /// Where.
        endpoint: String,
        /// What was asked.
        asked: String,
        /// What the BMC reports.
        found: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        waited: Duration,
    },
}

/// A BMC driver. Every method talks to the BMC; none trusts a status code
/// alone for a change of state.
pub trait Bmc: Send + Sync {
    /// The system's facts, read now.
    fn system_info(&self) -> impl Future<Output = Result<SystemInfo, BmcError>> + Send;

    /// The system's power, read now.
    fn power_state(&self) -> impl Future<Output = Result<PowerState, BmcError>> + Send;

    /// Performs `action` and waits (within [`Limits::power_settle`]) until
    /// the BMC reports the state it leads to.
    fn set_power(&self, action: PowerAction) -> impl Future<Output = Result<(), BmcError>> + Send;

    /// Makes the next boot (only) go to `target`, and checks that the BMC
    /// now reports that override.
    fn boot_once(&self, target: BootTarget) -> impl Future<Output = Result<(), BmcError>> + Send;
}
