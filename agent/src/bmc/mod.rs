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
//! Drivers: [`redfish`] (DMTF Redfish over HTTPS, one file; sessions, TLS
//! certificates pinned by [`Fingerprint`] through the verifier in
//! `tls_pin`, vendor [`quirks`] as data) and
//! [`ipmi`] (IPMI v2.0 RMCP+ over UDP, a directory of small files).
//! [`machine`] builds the driver for an inventory machine and keeps its
//! BMC's certificate pin in the store.

pub mod ipmi;
pub mod machine;
pub mod quirks;
pub mod redfish;
mod tls_pin;

use std::fmt;
use std::future::Future;
use std::str::FromStr;
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

/// The SHA-256 of a certificate's DER encoding: what a BMC's TLS
/// certificate is pinned by. Shown as colon-separated upper-case hex, as
/// `openssl x509 -noout -fingerprint -sha256` prints it; parsed from that
/// or from plain hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of `der` (one certificate, DER-encoded).
    pub fn of(der: &[u8]) -> Fingerprint {
        use sha2::Digest;
        Fingerprint(sha2::Sha256::digest(der).into())
    }

    /// Lower-case hex without separators (the store's form).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Why a fingerprint did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 fingerprint (64 hex digits, colons allowed): {0:?}")]
pub struct BadFingerprint(String);

impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: String = s.trim().chars().filter(|c| *c != ':').collect();
        let mut out = [0u8; 32];
        hex::decode_to_slice(&digits, &mut out).map_err(|_| BadFingerprint(s.to_owned()))?;
        Ok(Fingerprint(out))
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
    /// The BMC presented a TLS certificate other than the one pinned for it.
    #[error(
        "BMC {endpoint} presented TLS certificate SHA-256 {presented}, but {expected} is pinned for it; \
         if the BMC's certificate was replaced on purpose, re-pin it \
         (POST /v1/machines/<id, serial or MAC>/bmc/repin, optionally with {{\"sha256\": \"{presented}\"}}); \
         otherwise something else answers at the BMC's address"
    )]
    CertificateChanged {
        /// Where.
        endpoint: String,
        /// The pinned certificate's fingerprint.
        expected: Fingerprint,
        /// The fingerprint of the certificate presented now.
        presented: Fingerprint,
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
