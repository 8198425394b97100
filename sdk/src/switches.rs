//! A site agent's switch-port intent and switches: port profiles, port
//! assignments, LAGs, and plan, apply and drift of each configured switch
//! (agent only; a hub answers [`Error::NoEndpoint`]). The bodies are the
//! protocol's own types ([`dv_protocol::api`]).

use dv_protocol::api::{
    LagRequest, PortAssignRequest, ProfileRequest, SwitchApplied, SwitchList, SwitchPlan,
    SwitchView,
};
use dv_protocol::{Lag, PortAssignment, PortMode, PortProfile, SiteIntent};
use reqwest::Method;
use serde::Deserialize;

use crate::{Client, Error, decode, unreachable_error};

#[derive(Deserialize)]
struct ProfileList {
    profiles: Vec<PortProfile>,
}

/// A switch's assignments and LAGs, as the intent holds them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SwitchPorts {
    /// Ports with a profile of their own.
    pub assignments: Vec<PortAssignment>,
    /// LAGs.
    pub lags: Vec<Lag>,
}

impl Client {
    async fn put_json<T: serde::de::DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &impl serde::Serialize,
    ) -> Result<T, Error> {
        let url = self.url(segments);
        let req = self.request(Method::PUT, url.clone()).json(body);
        let resp = self.execute(req, &url).await?;
        decode(resp, &url).await
    }

    /// The site's whole network intent (agent).
    pub async fn intent(&self) -> Result<SiteIntent, Error> {
        self.get_json(self.url(&["v1", "intent"])).await
    }

    /// Every port profile (agent).
    pub async fn profile_list(&self) -> Result<Vec<PortProfile>, Error> {
        let list: ProfileList = self.get_json(self.url(&["v1", "port-profiles"])).await?;
        Ok(list.profiles)
    }

    /// Defines or changes a port profile (agent); [`Error::Invalid`] lists
    /// every rule the intent with it would break.
    pub async fn profile_set(&self, name: &str, mode: PortMode) -> Result<PortProfile, Error> {
        self.put_json(&["v1", "port-profiles", name], &ProfileRequest { mode })
            .await
    }

    /// Deletes a port profile (agent); [`Error::Conflict`] while ports use
    /// it.
    pub async fn profile_delete(&self, name: &str) -> Result<PortProfile, Error> {
        self.delete_json(&["v1", "port-profiles", name]).await
    }

    /// A switch's assignments and LAGs (agent).
    pub async fn switch_ports(&self, switch: &str) -> Result<SwitchPorts, Error> {
        self.get_json(self.url(&["v1", "switches", switch, "ports"]))
            .await
    }

    /// Gives a port a profile (agent). A `/` in the port name is sent
    /// percent-encoded.
    pub async fn port_assign(
        &self,
        switch: &str,
        port: &str,
        request: &PortAssignRequest,
    ) -> Result<PortAssignment, Error> {
        self.put_json(&["v1", "switches", switch, "ports", port], request)
            .await
    }

    /// Takes a port's assignment away (agent).
    pub async fn port_unassign(&self, switch: &str, port: &str) -> Result<PortAssignment, Error> {
        self.delete_json(&["v1", "switches", switch, "ports", port])
            .await
    }

    /// Defines or changes a LAG (agent).
    pub async fn lag_set(
        &self,
        switch: &str,
        name: &str,
        request: &LagRequest,
    ) -> Result<Lag, Error> {
        self.put_json(&["v1", "switches", switch, "lags", name], request)
            .await
    }

    /// Deletes a LAG (agent).
    pub async fn lag_delete(&self, switch: &str, name: &str) -> Result<Lag, Error> {
        self.delete_json(&["v1", "switches", switch, "lags", name])
            .await
    }

    /// The configured switches with their last apply and drift (agent).
    pub async fn switch_list(&self) -> Result<Vec<SwitchView>, Error> {
        let list: SwitchList = self.get_json(self.url(&["v1", "switches"])).await?;
        Ok(list.switches)
    }

    /// What applying the intent to `switch` would change (agent).
    pub async fn switch_plan(&self, switch: &str) -> Result<SwitchPlan, Error> {
        self.get_json(self.url(&["v1", "switches", switch, "plan"]))
            .await
    }

    /// Applies the intent to `switch` (agent). A failed step answers
    /// [`Error::Server`] with status 502 and says what was rolled back.
    pub async fn switch_apply(&self, switch: &str) -> Result<SwitchApplied, Error> {
        self.post_json(
            self.url(&["v1", "switches", switch, "apply"]),
            &serde_json::json!({}),
        )
        .await
    }

    /// The switch's port configuration rendered from the intent for
    /// `vendor` (`sonic`, `eos`, `nvue`), as text (agent).
    pub async fn switch_render(&self, switch: &str, vendor: &str) -> Result<String, Error> {
        let url = self.url(&["v1", "switches", switch, "config", vendor]);
        let resp = self
            .execute(self.request(Method::GET, url.clone()), &url)
            .await?;
        resp.text()
            .await
            .map_err(|source| unreachable_error(&url, source))
    }

    /// The switch read back against the intent (agent); empty when in sync.
    pub async fn switch_drift(&self, switch: &str) -> Result<SwitchPlan, Error> {
        self.get_json(self.url(&["v1", "switches", switch, "drift"]))
            .await
    }
}
