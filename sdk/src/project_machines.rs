//! A project's bare-metal machines and its offering switches (hub):
//! `/v1/tenants/{t}/projects/{p}/machines` and `.../offerings/{name}`.

use dv_protocol::api::{
    CommandAccepted, MachineClaim, MachineRequest, OfferingStatus, OfferingToggle, ProjectMachine,
};
use reqwest::Method;

use crate::{Client, Error};

impl Client {
    /// The machines project `t/p` holds, with their current state (hub).
    pub async fn project_machine_list(
        &self,
        t: &str,
        p: &str,
    ) -> Result<Vec<ProjectMachine>, Error> {
        self.get_json(self.url(&["v1", "tenants", t, "projects", p, "machines"]))
            .await
    }

    /// Asks for a machine for project `t/p` (hub): the hub places it on an
    /// available machine of a site the project may use, claims it and queues
    /// its provisioning; follow [`MachineClaim::command`] with
    /// [`Client::command_get`]. [`Error::Conflict`] names the prerequisite
    /// that does not hold (offering, quota, placement, capacity) and its fix.
    pub async fn project_machine_request(
        &self,
        t: &str,
        p: &str,
        request: &MachineRequest,
    ) -> Result<MachineClaim, Error> {
        self.post_json(
            self.url(&["v1", "tenants", t, "projects", p, "machines"]),
            request,
        )
        .await
    }

    /// Gives machine `machine` of project `t/p` back (hub): its site
    /// deprovisions it.
    pub async fn project_machine_release(
        &self,
        t: &str,
        p: &str,
        machine: &str,
    ) -> Result<CommandAccepted, Error> {
        let url = self.url(&["v1", "tenants", t, "projects", p, "machines", machine]);
        let resp = self
            .execute(self.request(Method::DELETE, url.clone()), &url)
            .await?;
        crate::decode(resp, &url).await
    }

    /// Turns offering `name` on or off for project `t/p` (hub; a
    /// platform-operator's call); the offering as the project now sees it.
    pub async fn offering_set(
        &self,
        t: &str,
        p: &str,
        name: &str,
        enabled: bool,
    ) -> Result<OfferingStatus, Error> {
        let url = self.url(&["v1", "tenants", t, "projects", p, "offerings", name]);
        let req = self
            .request(Method::PUT, url.clone())
            .json(&OfferingToggle { enabled });
        let resp = self.execute(req, &url).await?;
        crate::decode(resp, &url).await
    }
}
