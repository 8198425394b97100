//! The Redfish driver (DMTF DSP0266): one ComputerSystem behind a BMC's
//! service, spoken to with plain reqwest and serde types for the few
//! resources used (ADR 0008).
//!
//! What the BMC can do is read from what it reports, never assumed per
//! vendor: reset types from `ResetType@Redfish.AllowableValues`, boot
//! targets from `BootSourceOverrideTarget@Redfish.AllowableValues`. A BMC
//! that lists neither is taken at its word when it accepts the request,
//! and checked by reading back.
//!
//! Authentication is HTTP basic on every request (sessions are not used
//! yet). Certificates are verified against the system's roots; pinning a
//! BMC's self-signed certificate on first use is not built yet.

use std::sync::OnceLock;
use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Bmc, BmcError, BootTarget, Limits, PowerAction, PowerState, SystemInfo};

/// A Redfish service and the one system it manages.
#[derive(Debug)]
pub struct Redfish {
    /// Scheme, host and port, e.g. `https://10.0.0.5`.
    endpoint: String,
    user: String,
    password: String,
    client: reqwest::Client,
    limits: Limits,
    /// The system's resource path, found at first use unless given.
    system: OnceLock<String>,
}

impl Redfish {
    /// A driver for the BMC at `endpoint` (scheme, host, optional port).
    /// `system` names the ComputerSystem's id when the service has several;
    /// `None` takes the only (or first) member of `/redfish/v1/Systems`.
    pub fn new(
        endpoint: &str,
        user: &str,
        password: &str,
        system: Option<&str>,
        limits: Limits,
    ) -> Result<Redfish, BmcError> {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let client = reqwest::Client::builder()
            .connect_timeout(limits.request)
            .timeout(limits.request)
            .build()
            .map_err(|source| BmcError::Unreachable {
                endpoint: endpoint.clone(),
                source: source.into(),
            })?;
        let known = OnceLock::new();
        if let Some(id) = system {
            let _ = known.set(format!("/redfish/v1/Systems/{id}"));
        }
        Ok(Redfish {
            endpoint,
            user: user.to_owned(),
            password: password.to_owned(),
            client,
            limits,
            system: known,
        })
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response, BmcError> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.endpoint))
            .basic_auth(&self.user, Some(&self.password))
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|source| BmcError::Unreachable {
            endpoint: self.endpoint.clone(),
            source: source.into(),
        })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(BmcError::Auth {
                endpoint: self.endpoint.clone(),
                reason: format!("HTTP {}", status.as_u16()),
            });
        }
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(BmcError::Status {
                endpoint: self.endpoint.clone(),
                method: method_name(&method),
                path: path.to_owned(),
                status: status.as_u16(),
                message: redfish_message(&text),
            });
        }
        Ok(resp)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, BmcError> {
        let resp = self.request(Method::GET, path, None).await?;
        let bytes = resp.bytes().await.map_err(|source| BmcError::Unreachable {
            endpoint: self.endpoint.clone(),
            source: source.into(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| BmcError::Protocol {
            endpoint: self.endpoint.clone(),
            path: path.to_owned(),
            detail: e.to_string(),
        })
    }

    /// The system's resource path.
    async fn system_path(&self) -> Result<String, BmcError> {
        if let Some(p) = self.system.get() {
            return Ok(p.clone());
        }
        let systems: Collection = self.get("/redfish/v1/Systems").await?;
        let first = systems
            .members
            .into_iter()
            .next()
            .ok_or_else(|| BmcError::Protocol {
                endpoint: self.endpoint.clone(),
                path: "/redfish/v1/Systems".into(),
                detail: "the service lists no systems".into(),
            })?;
        let _ = self.system.set(first.id.clone());
        Ok(first.id)
    }

    async fn system(&self) -> Result<(String, System), BmcError> {
        let path = self.system_path().await?;
        let sys = self.get(&path).await?;
        Ok((path, sys))
    }

    fn power_of(&self, path: &str, sys: &System) -> Result<PowerState, BmcError> {
        match sys.power_state.as_deref() {
            Some("On") => Ok(PowerState::On),
            Some("Off") => Ok(PowerState::Off),
            Some("PoweringOn") => Ok(PowerState::PoweringOn),
            Some("PoweringOff") => Ok(PowerState::PoweringOff),
            other => Err(BmcError::Protocol {
                endpoint: self.endpoint.clone(),
                path: path.to_owned(),
                detail: format!("PowerState is {other:?}"),
            }),
        }
    }
}

impl Bmc for Redfish {
    async fn system_info(&self) -> Result<SystemInfo, BmcError> {
        let (path, sys) = self.system().await?;
        let power = self.power_of(&path, &sys).ok();
        Ok(SystemInfo {
            id: sys.id.clone().unwrap_or_else(|| path.clone()),
            manufacturer: sys.manufacturer,
            model: sys.model,
            serial: sys.serial_number,
            uuid: sys.uuid,
            power,
            boot_targets: sys.boot.and_then(|b| b.allowed_targets).unwrap_or_default(),
        })
    }

    async fn power_state(&self) -> Result<PowerState, BmcError> {
        let (path, sys) = self.system().await?;
        self.power_of(&path, &sys)
    }

    async fn set_power(&self, action: PowerAction) -> Result<(), BmcError> {
        let (path, sys) = self.system().await?;
        let want = action.settles_in();
        // Asking for the state the system is already in is done, not an
        // error (many BMCs answer "On" to an "On" system with 409).
        if action != PowerAction::ForceRestart && self.power_of(&path, &sys)? == want {
            return Ok(());
        }
        let reset_type = match action {
            PowerAction::On => "On",
            PowerAction::ForceOff => "ForceOff",
            PowerAction::GracefulShutdown => "GracefulShutdown",
            PowerAction::ForceRestart => "ForceRestart",
        };
        let reset = sys.actions.and_then(|a| a.reset);
        if let Some(allowed) = reset.as_ref().and_then(|r| r.allowed.as_ref())
            && !allowed.iter().any(|t| t == reset_type)
        {
            return Err(BmcError::Unsupported {
                endpoint: self.endpoint.clone(),
                wanted: format!("ResetType {reset_type}"),
                allowed: allowed.join(", "),
            });
        }
        let target = reset
            .map(|r| r.target)
            .unwrap_or_else(|| format!("{path}/Actions/ComputerSystem.Reset"));
        self.request(
            Method::POST,
            &target,
            Some(json!({ "ResetType": reset_type })),
        )
        .await?;
        tracing::info!(bmc = %self.endpoint, %action, "BMC power action sent");
        let started = Instant::now();
        let mut polls = 0u32;
        loop {
            tokio::time::sleep(self.limits.poll).await;
            polls += 1;
            let now = self.power_state().await?;
            if now == want {
                tracing::info!(bmc = %self.endpoint, %action, state = %now, waited = ?started.elapsed(), "BMC power state confirmed");
                return Ok(());
            }
            if started.elapsed() >= self.limits.power_settle {
                return Err(BmcError::NotApplied {
                    endpoint: self.endpoint.clone(),
                    asked: format!("power {action}"),
                    found: format!("power {now}"),
                    attempts: polls,
                    waited: started.elapsed(),
                });
            }
        }
    }

    async fn boot_once(&self, target: BootTarget) -> Result<(), BmcError> {
        let name = match target {
            BootTarget::Pxe => "Pxe",
            BootTarget::Hdd => "Hdd",
            BootTarget::UefiHttp => "UefiHttp",
        };
        let (path, sys) = self.system().await?;
        if let Some(allowed) = sys.boot.as_ref().and_then(|b| b.allowed_targets.as_ref())
            && !allowed.iter().any(|t| t == name)
        {
            return Err(BmcError::Unsupported {
                endpoint: self.endpoint.clone(),
                wanted: format!("BootSourceOverrideTarget {name}"),
                allowed: allowed.join(", "),
            });
        }
        let started = Instant::now();
        let mut found = String::from("nothing");
        for attempt in 1..=self.limits.override_attempts.max(1) {
            let body = json!({ "Boot": {
                "BootSourceOverrideTarget": name,
                "BootSourceOverrideEnabled": "Once",
            }});
            self.request(Method::PATCH, &path, Some(body)).await?;
            let sys: System = self.get(&path).await?;
            let boot = sys.boot.unwrap_or_default();
            let (t, e) = (
                boot.target.unwrap_or_default(),
                boot.enabled.unwrap_or_default(),
            );
            if t == name && e == "Once" {
                tracing::info!(bmc = %self.endpoint, %target, attempt, "BMC boot override confirmed");
                return Ok(());
            }
            // Some BMCs (sushy-tools' fake driver among them) apply the
            // target but keep the override persistent. The next boot still
            // goes where asked, and the provisioning workflow sets the disk
            // explicitly once the install is done, so this is a warning,
            // not a failure.
            if t == name && e == "Continuous" {
                tracing::warn!(bmc = %self.endpoint, %target, attempt, "BMC applied the boot target but keeps it for every boot (BootSourceOverrideEnabled Continuous)");
                return Ok(());
            }
            found = format!("BootSourceOverrideTarget {t:?}, BootSourceOverrideEnabled {e:?}");
            tracing::warn!(bmc = %self.endpoint, %target, attempt, found, "BMC accepted a boot override but reads back otherwise");
            if attempt < self.limits.override_attempts {
                tokio::time::sleep(self.limits.poll).await;
            }
        }
        Err(BmcError::NotApplied {
            endpoint: self.endpoint.clone(),
            asked: format!("one-time boot from {name}"),
            found,
            attempts: self.limits.override_attempts.max(1),
            waited: started.elapsed(),
        })
    }
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "request",
    }
}

/// The human part of a Redfish error body (`error.@Message.ExtendedInfo`
/// or `error.message`), else the body itself, shortened.
fn redfish_message(body: &str) -> String {
    #[derive(Deserialize)]
    struct Wrapper {
        error: ErrorBody,
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Option<String>,
        #[serde(rename = "@Message.ExtendedInfo", default)]
        extended: Vec<Extended>,
    }
    #[derive(Deserialize)]
    struct Extended {
        #[serde(rename = "Message")]
        message: Option<String>,
    }
    if let Ok(w) = serde_json::from_str::<Wrapper>(body) {
        let extended: Vec<String> = w
            .error
            .extended
            .into_iter()
            .filter_map(|e| e.message)
            .collect();
        if !extended.is_empty() {
            return extended.join("; ");
        }
        if let Some(m) = w.error.message {
            return m;
        }
    }
    let trimmed = body.trim();
    trimmed.chars().take(200).collect()
}

/// A Redfish collection.
#[derive(Debug, Deserialize)]
struct Collection {
    #[serde(rename = "Members", default)]
    members: Vec<Link>,
}

#[derive(Debug, Deserialize)]
struct Link {
    #[serde(rename = "@odata.id")]
    id: String,
}

/// The subset of a ComputerSystem the driver reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct System {
    id: Option<String>,
    manufacturer: Option<String>,
    model: Option<String>,
    serial_number: Option<String>,
    #[serde(rename = "UUID")]
    uuid: Option<String>,
    power_state: Option<String>,
    boot: Option<Boot>,
    actions: Option<Actions>,
}

#[derive(Debug, Default, Deserialize)]
struct Boot {
    #[serde(rename = "BootSourceOverrideTarget")]
    target: Option<String>,
    #[serde(rename = "BootSourceOverrideEnabled")]
    enabled: Option<String>,
    #[serde(rename = "BootSourceOverrideTarget@Redfish.AllowableValues")]
    allowed_targets: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct Actions {
    #[serde(rename = "#ComputerSystem.Reset")]
    reset: Option<ResetAction>,
}

#[derive(Debug, Deserialize)]
struct ResetAction {
    target: String,
    #[serde(rename = "ResetType@Redfish.AllowableValues")]
    allowed: Option<Vec<String>>,
}
