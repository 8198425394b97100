//! The hub's tenancy tree below a tenant: projects, their environments and
//! quota, and the offerings a project sees. Every read of one record comes
//! back [`Versioned`], whose ETag a change sends back in `If-Match` (the
//! hub answers [`Error::PreconditionFailed`] when someone else wrote
//! first). Tenants themselves are in the crate root.

use dv_protocol::api::OfferingStatus;
use dv_protocol::{Environment, EnvironmentName, Project, ProjectName, Quota, TenantName};
use reqwest::Method;
use reqwest::header::IF_MATCH;
use serde::Serialize;

use crate::{Client, Error, IfMatch, Versioned, versioned};

impl Client {
    // ------------------------------------------------------------ projects

    /// The tenant's projects, by name (hub).
    pub async fn project_list(&self, tenant: &TenantName) -> Result<Vec<Project>, Error> {
        self.get_json(self.url(&["v1", "tenants", tenant.as_str(), "projects"]))
            .await
    }

    /// One project and its ETag (hub).
    pub async fn project_get(
        &self,
        tenant: &TenantName,
        project: &ProjectName,
    ) -> Result<Versioned<Project>, Error> {
        self.get_versioned(&[
            "v1",
            "tenants",
            tenant.as_str(),
            "projects",
            project.as_str(),
        ])
        .await
    }

    /// Creates a project (its quota is all zero until set) (hub);
    /// [`Error::Conflict`] if the name is taken.
    pub async fn project_create(
        &self,
        tenant: &TenantName,
        project: &Project,
    ) -> Result<Versioned<Project>, Error> {
        self.send_versioned(
            Method::POST,
            &["v1", "tenants", tenant.as_str(), "projects"],
            project,
            None,
        )
        .await
    }

    /// Replaces a project if it is still at `if_match` (hub).
    pub async fn project_replace(
        &self,
        tenant: &TenantName,
        project: &Project,
        if_match: &IfMatch,
    ) -> Result<Versioned<Project>, Error> {
        self.send_versioned(
            Method::PUT,
            &[
                "v1",
                "tenants",
                tenant.as_str(),
                "projects",
                project.name.as_str(),
            ],
            project,
            Some(if_match),
        )
        .await
    }

    /// Deletes a project and its quota (it must have no environments) if it
    /// is still at `if_match` (hub).
    pub async fn project_delete(
        &self,
        tenant: &TenantName,
        project: &ProjectName,
        if_match: &IfMatch,
    ) -> Result<(), Error> {
        self.delete_if(
            &[
                "v1",
                "tenants",
                tenant.as_str(),
                "projects",
                project.as_str(),
            ],
            if_match,
        )
        .await
    }

    // -------------------------------------------------------- environments

    /// The project's environments, by name (hub).
    pub async fn environment_list(
        &self,
        tenant: &TenantName,
        project: &ProjectName,
    ) -> Result<Vec<Environment>, Error> {
        self.get_json(self.url(&[
            "v1",
            "tenants",
            tenant.as_str(),
            "projects",
            project.as_str(),
            "environments",
        ]))
        .await
    }

    /// One environment and its ETag (hub).
    pub async fn environment_get(
        &self,
        tenant: &TenantName,
        project: &ProjectName,
        environment: &EnvironmentName,
    ) -> Result<Versioned<Environment>, Error> {
        self.get_versioned(&[
            "v1",
            "tenants",
            tenant.as_str(),
            "projects",
            project.as_str(),
            "environments",
            environment.as_str(),
        ])
        .await
    }

    /// Creates an environment (hub); [`Error::Conflict`] if the name is
    /// taken.
    pub async fn environment_create(
        &self,
        tenant: &TenantName,
        project: &ProjectName,
        environment: &Environment,
    ) -> Result<Versioned<Environment>, Error> {
        self.send_versioned(
            Method::POST,
            &[
                "v1",
                "tenants",
                tenant.as_str(),
                "projects",
                project.as_str(),
                "environments",
            ],
            environment,
            None,
        )
        .await
    }

    /// Replaces an environment if it is still at `if_match` (hub).
    pub async fn environment_replace(
        &self,
        tenant: &TenantName,
        project: &ProjectName,
        environment: &Environment,
        if_match: &IfMatch,
    ) -> Result<Versioned<Environment>, Error> {
        self.send_versioned(
            Method::PUT,
            &[
                "v1",
                "tenants",
                tenant.as_str(),
                "projects",
                project.as_str(),
                "environments",
                environment.name.as_str(),
            ],
            environment,
            Some(if_match),
        )
        .await
    }

    /// Deletes an environment if it is still at `if_match` (hub).
    pub async fn environment_delete(
        &self,
        tenant: &TenantName,
        project: &ProjectName,
        environment: &EnvironmentName,
        if_match: &IfMatch,
    ) -> Result<(), Error> {
        self.delete_if(
            &[
                "v1",
                "tenants",
                tenant.as_str(),
                "projects",
                project.as_str(),
                "environments",
                environment.as_str(),
            ],
            if_match,
        )
        .await
    }

    // --------------------------------------------------------------- quota

    /// The project's quota and its ETag (hub). A quota never set is all
    /// zero with ETag `"0"`, which [`Client::quota_set`] accepts for the
    /// first one.
    pub async fn quota_get(
        &self,
        tenant: &TenantName,
        project: &ProjectName,
    ) -> Result<Versioned<Quota>, Error> {
        self.get_versioned(&[
            "v1",
            "tenants",
            tenant.as_str(),
            "projects",
            project.as_str(),
            "quota",
        ])
        .await
    }

    /// Sets the project's quota if it is still at `if_match` (hub).
    pub async fn quota_set(
        &self,
        tenant: &TenantName,
        project: &ProjectName,
        quota: &Quota,
        if_match: &IfMatch,
    ) -> Result<Versioned<Quota>, Error> {
        self.send_versioned(
            Method::PUT,
            &[
                "v1",
                "tenants",
                tenant.as_str(),
                "projects",
                project.as_str(),
                "quota",
            ],
            quota,
            Some(if_match),
        )
        .await
    }

    // ----------------------------------------------------------- offerings

    /// Every offering as the project sees it: enabled, ready, and each
    /// prerequisite with what to do when it does not hold (hub).
    pub async fn offering_list(
        &self,
        tenant: &TenantName,
        project: &ProjectName,
    ) -> Result<Vec<OfferingStatus>, Error> {
        self.get_json(self.url(&[
            "v1",
            "tenants",
            tenant.as_str(),
            "projects",
            project.as_str(),
            "offerings",
        ]))
        .await
    }

    // ------------------------------------------------------------ plumbing

    async fn get_versioned<T: serde::de::DeserializeOwned>(
        &self,
        segments: &[&str],
    ) -> Result<Versioned<T>, Error> {
        let url = self.url(segments);
        let resp = self
            .execute(self.request(Method::GET, url.clone()), &url)
            .await?;
        versioned(resp, &url).await
    }

    async fn send_versioned<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: &impl Serialize,
        if_match: Option<&IfMatch>,
    ) -> Result<Versioned<T>, Error> {
        let url = self.url(segments);
        let mut req = self.request(method, url.clone()).json(body);
        if let Some(m) = if_match {
            req = req.header(IF_MATCH, m.header());
        }
        let resp = self.execute(req, &url).await?;
        versioned(resp, &url).await
    }

    async fn delete_if(&self, segments: &[&str], if_match: &IfMatch) -> Result<(), Error> {
        let url = self.url(segments);
        let req = self
            .request(Method::DELETE, url.clone())
            .header(IF_MATCH, if_match.header());
        self.execute(req, &url).await.map(drop)
    }
}
