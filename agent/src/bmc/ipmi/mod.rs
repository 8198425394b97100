//! The IPMI v2.0 over LAN driver (RMCP+, what ipmitool calls "lanplus"),
//! written in-house on RustCrypto primitives (ADR 0008).
//!
//! Files, by what they own:
//! - [`rmcp`]: RMCP and session framing, the IPMI message inside; parsing
//!   of untrusted bytes ([`rmcp::decode`] is what the fuzz target drives).
//! - [`rakp`]: Open Session and RAKP 1-4 payloads.
//! - [`crypto`]: cipher suites 3 and 17: RAKP HMACs, SIK/K1/K2, AuthCodes,
//!   AES-CBC-128.
//! - [`session`]: one live session over UDP: handshake, timed and bounded
//!   retransmission, authenticated encrypted commands, Close Session.
//! - [`commands`]: the commands used and the parsing of their answers.
//! - this file: the [`Bmc`] driver on top.
//!
//! Each driver call opens a session, does its work and closes it, as
//! ipmitool does: BMCs have few session slots and drop idle ones, so a
//! session is not kept between calls.
//!
//! Power actions are confirmed by polling Get Chassis Status; boot
//! overrides by reading boot flags (parameter 5) back. The device selector
//! is what is checked, not the "boot flags valid" bit, which OpenIPMI's
//! ipmi_sim never sets.

pub mod commands;
pub mod crypto;
pub mod rakp;
pub mod rmcp;
pub mod session;

use std::time::Instant;

pub use crypto::CipherSuite;

use self::commands::{BootFlags, ChassisControl, DeviceId, device};
use self::session::Session;
use super::{Bmc, BmcError, BootTarget, Limits, PowerAction, PowerState, SystemInfo};

/// What a one-time boot override can name over IPMI, in this driver's words.
const BOOT_TARGETS: [&str; 2] = ["pxe", "disk"];

/// A BMC spoken to over IPMI v2.0 RMCP+.
pub struct Ipmi {
    /// `host:port` (port 623 unless the inventory says otherwise).
    endpoint: String,
    user: String,
    password: String,
    suite: CipherSuite,
    limits: Limits,
}

impl std::fmt::Debug for Ipmi {
    // By hand, so the password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ipmi")
            .field("endpoint", &self.endpoint)
            .field("user", &self.user)
            .field("suite", &self.suite)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Ipmi {
    /// A driver for the BMC at `endpoint` (`host:port`), cipher suite 3.
    pub fn new(endpoint: &str, user: &str, password: &str, limits: Limits) -> Ipmi {
        Ipmi {
            endpoint: endpoint.to_owned(),
            user: user.to_owned(),
            password: password.to_owned(),
            suite: CipherSuite::Suite3,
            limits,
        }
    }

    /// The same driver with another cipher suite.
    pub fn with_cipher_suite(mut self, suite: CipherSuite) -> Ipmi {
        self.suite = suite;
        self
    }

    async fn session(&self) -> Result<Session, BmcError> {
        Session::open(
            &self.endpoint,
            &self.user,
            &self.password,
            self.suite,
            self.limits.request,
        )
        .await
    }

    async fn power(&self, s: &mut Session) -> Result<PowerState, BmcError> {
        let data = s.command(commands::GET_CHASSIS_STATUS, &[], true).await?;
        let on = commands::power_is_on(&data).map_err(|e| BmcError::Protocol {
            endpoint: self.endpoint.clone(),
            path: commands::GET_CHASSIS_STATUS.name.into(),
            detail: e.to_string(),
        })?;
        Ok(if on { PowerState::On } else { PowerState::Off })
    }

    async fn boot_flags(&self, s: &mut Session) -> Result<BootFlags, BmcError> {
        let data = s
            .command(commands::GET_BOOT_OPTIONS, &BootFlags::get_request(), true)
            .await?;
        BootFlags::parse(&data).map_err(|e| BmcError::Protocol {
            endpoint: self.endpoint.clone(),
            path: commands::GET_BOOT_OPTIONS.name.into(),
            detail: e.to_string(),
        })
    }

    async fn info_in(&self, s: &mut Session) -> Result<SystemInfo, BmcError> {
        let data = s.command(commands::GET_DEVICE_ID, &[], true).await?;
        let dev = DeviceId::parse(&data).map_err(|e| BmcError::Protocol {
            endpoint: self.endpoint.clone(),
            path: commands::GET_DEVICE_ID.name.into(),
            detail: e.to_string(),
        })?;
        // Get System GUID is optional in the spec; its absence is no error.
        let uuid = match s.command(commands::GET_SYSTEM_GUID, &[], true).await {
            Ok(d) => commands::guid_text(&d).ok(),
            Err(BmcError::Completion { .. }) => None,
            Err(e) => return Err(e),
        };
        let power = self.power(s).await.ok();
        let manufacturer = commands::manufacturer_name(dev.manufacturer)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("IANA enterprise {}", dev.manufacturer));
        Ok(SystemInfo {
            id: uuid
                .clone()
                .unwrap_or_else(|| format!("ipmi:{}", self.endpoint)),
            manufacturer: Some(manufacturer),
            model: Some(format!(
                "product {:#06x} (BMC device {:#04x}, firmware {})",
                dev.product, dev.device_id, dev.firmware
            )),
            // The serial number lives in FRU data, which is not read yet.
            serial: None,
            uuid,
            power,
            boot_targets: BOOT_TARGETS.iter().map(|t| (*t).to_owned()).collect(),
        })
    }

    async fn set_power_in(&self, s: &mut Session, action: PowerAction) -> Result<(), BmcError> {
        let want = action.settles_in();
        let now = self.power(s).await?;
        if action != PowerAction::ForceRestart && now == want {
            return Ok(());
        }
        let control = match action {
            PowerAction::On => ChassisControl::PowerUp,
            PowerAction::ForceOff => ChassisControl::PowerDown,
            PowerAction::GracefulShutdown => ChassisControl::SoftShutdown,
            // A reset of a system that is off is undefined in the spec (some
            // BMCs ignore it, some power up): power it up, which is the
            // fresh boot a restart is asked for.
            PowerAction::ForceRestart if now == PowerState::Off => ChassisControl::PowerUp,
            PowerAction::ForceRestart => ChassisControl::HardReset,
        };
        // Power up, down and soft shutdown are idempotent, so a lost answer
        // may be made up for by sending again; a second reset is not.
        let resend = control != ChassisControl::HardReset;
        s.command(commands::CHASSIS_CONTROL, &[control as u8], resend)
            .await?;
        tracing::info!(bmc = %self.endpoint, %action, control = control.name(), "IPMI chassis control sent");
        let started = Instant::now();
        let mut polls = 0u32;
        loop {
            tokio::time::sleep(self.limits.poll).await;
            polls += 1;
            let now = self.power(s).await?;
            if now == want {
                tracing::info!(bmc = %self.endpoint, %action, state = %now, waited = ?started.elapsed(), "BMC power state confirmed");
                return Ok(());
            }
            if started.elapsed() >= self.limits.power_settle {
                return Err(BmcError::NotApplied {
                    endpoint: self.endpoint.clone(),
                    asked: format!("power {action} (Chassis Control {})", control.name()),
                    found: format!("power {now}"),
                    attempts: polls,
                    waited: started.elapsed(),
                });
            }
        }
    }

    async fn boot_once_in(&self, s: &mut Session, selector: u8) -> Result<(), BmcError> {
        // Keep the BIOS/EFI boot type the BMC has: changing it would switch
        // the system's firmware mode for that boot.
        let efi = self.boot_flags(s).await?.efi;
        let started = Instant::now();
        let attempts = self.limits.override_attempts.max(1);
        let mut found = String::from("nothing");
        for attempt in 1..=attempts {
            s.command(
                commands::SET_BOOT_OPTIONS,
                &BootFlags::set_request(selector, efi),
                true,
            )
            .await?;
            let now = self.boot_flags(s).await?;
            if now.device == selector {
                if now.persistent {
                    tracing::warn!(bmc = %self.endpoint, device = commands::device_name(selector), "BMC applied the boot device but keeps it for every boot");
                }
                tracing::info!(bmc = %self.endpoint, device = commands::device_name(selector), attempt, "BMC boot override confirmed");
                return Ok(());
            }
            found = format!(
                "boot device selector {:#x} ({})",
                now.device,
                commands::device_name(now.device)
            );
            tracing::warn!(bmc = %self.endpoint, attempt, found, "BMC accepted a boot override but reads back otherwise");
            if attempt < attempts {
                tokio::time::sleep(self.limits.poll).await;
            }
        }
        Err(BmcError::NotApplied {
            endpoint: self.endpoint.clone(),
            asked: format!("one-time boot: {}", commands::device_name(selector)),
            found,
            attempts,
            waited: started.elapsed(),
        })
    }
}

impl Bmc for Ipmi {
    async fn system_info(&self) -> Result<SystemInfo, BmcError> {
        let mut s = self.session().await?;
        let r = self.info_in(&mut s).await;
        s.close().await;
        r
    }

    async fn power_state(&self) -> Result<PowerState, BmcError> {
        let mut s = self.session().await?;
        let r = self.power(&mut s).await;
        s.close().await;
        r
    }

    async fn set_power(&self, action: PowerAction) -> Result<(), BmcError> {
        let mut s = self.session().await?;
        let r = self.set_power_in(&mut s, action).await;
        s.close().await;
        r
    }

    async fn boot_once(&self, target: BootTarget) -> Result<(), BmcError> {
        let selector = match target {
            BootTarget::Pxe => device::PXE,
            BootTarget::Hdd => device::DISK,
            BootTarget::UefiHttp => {
                return Err(BmcError::Unsupported {
                    endpoint: self.endpoint.clone(),
                    wanted: "UEFI HTTP boot (IPMI boot flags have no such device)".into(),
                    allowed: "PXE, disk (boot device selectors Force PXE, Force Boot from default Hard-Drive)".into(),
                });
            }
        };
        let mut s = self.session().await?;
        let r = self.boot_once_in(&mut s, selector).await;
        s.close().await;
        r
    }
}
