//! The offering catalog and prerequisite discovery: for one project,
//! which offerings exist, which are enabled, and what must hold before a
//! request for one can succeed (seed plan: "Prerequisite discovery").
//!
//! [`evaluate`] is pure: the API gathers a [`ProjectFacts`] from the
//! tenancy bucket and the read model, and this module turns it into
//! answers, each unmet prerequisite with the command or person that fixes
//! it. The same facts gate `POST .../machines`, so discovery and the real
//! request cannot disagree.

use std::collections::BTreeSet;

use dv_protocol::api::{OfferingStatus, Prerequisite};
use dv_protocol::{ProjectName, Quota, SiteName, TenantName};

/// One entry of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Offering {
    /// Its name, as in paths and `dv offerings`.
    pub name: &'static str,
    /// The CLI family that drives it.
    pub cli: &'static str,
    /// One line.
    pub description: &'static str,
    /// Whether this platform delivers it yet.
    pub available: bool,
    /// Whether requests name an environment.
    pub environment_scoped: bool,
    /// Whether a project member may request it without an operator.
    pub self_service: bool,
}

/// Every offering the platform names (phase 1 of the seed plan); only
/// those marked available can be requested today.
pub const CATALOG: &[Offering] = &[
    Offering {
        name: "bare-metal",
        cli: "dvce",
        description: "Whole machines, installed with Talos Linux at a site",
        available: true,
        environment_scoped: true,
        self_service: true,
    },
    Offering {
        name: "network",
        cli: "dvnet",
        description: "VLAN-backed logical networks with IPAM, created by a site's operators",
        available: true,
        environment_scoped: false,
        self_service: false,
    },
    Offering {
        name: "kubernetes",
        cli: "dvke",
        description: "Managed Kubernetes clusters",
        available: false,
        environment_scoped: true,
        self_service: true,
    },
    Offering {
        name: "vm",
        cli: "dvce",
        description: "Virtual machines",
        available: false,
        environment_scoped: true,
        self_service: true,
    },
    Offering {
        name: "object-storage",
        cli: "dvos",
        description: "S3-compatible buckets",
        available: false,
        environment_scoped: false,
        self_service: true,
    },
    Offering {
        name: "app",
        cli: "dvapp",
        description: "App and web hosting",
        available: false,
        environment_scoped: true,
        self_service: true,
    },
];

/// The catalog entry called `name`.
pub fn find(name: &str) -> Option<&'static Offering> {
    CATALOG.iter().find(|o| o.name == name)
}

/// What the hub knows about one project when it answers.
#[derive(Debug, Clone)]
pub struct ProjectFacts {
    /// The tenant.
    pub tenant: TenantName,
    /// The project.
    pub project: ProjectName,
    /// Offerings an operator enabled for it.
    pub enabled: BTreeSet<String>,
    /// How many environments it has.
    pub environments: usize,
    /// Its quota (zero everywhere when never set).
    pub quota: Quota,
    /// Machines it holds.
    pub machines_held: u32,
    /// Sites it may use: its `allowed_sites` that the hub federates, or
    /// every federated site.
    pub sites: Vec<SiteName>,
    /// Machines available and unclaimed at those sites.
    pub machines_free: usize,
}

fn check(name: &str, met: bool, detail: String, fix: Option<String>) -> Prerequisite {
    Prerequisite {
        name: name.to_owned(),
        met,
        detail,
        fix: if met { None } else { fix },
    }
}

/// The prerequisites of `offering` for the project.
pub fn prerequisites(offering: &Offering, f: &ProjectFacts) -> Vec<Prerequisite> {
    let (t, p) = (f.tenant.as_str(), f.project.as_str());
    let mut out = Vec::new();
    if !offering.available {
        out.push(check(
            "available",
            false,
            format!("{} is not offered by this platform yet", offering.name),
            Some("nothing to do in the project; watch the release notes".to_owned()),
        ));
        return out;
    }
    let on = f.enabled.contains(offering.name);
    out.push(check(
        "enabled",
        on,
        format!(
            "{} is {} for {t}/{p}",
            offering.name,
            if on { "enabled" } else { "not enabled" }
        ),
        Some(format!(
            "ask a platform operator: dv offering enable {} --tenant {t} --project {p}",
            offering.name
        )),
    ));
    if offering.environment_scoped {
        out.push(check(
            "environment",
            f.environments > 0,
            format!("the project has {} environment(s)", f.environments),
            Some(format!("dv env create dev --tenant {t} --project {p}")),
        ));
    }
    out.push(check(
        "placement",
        !f.sites.is_empty(),
        if f.sites.is_empty() {
            "no site the hub federates is in the project's allowed_sites".to_owned()
        } else {
            let names: Vec<&str> = f.sites.iter().map(|s| s.as_str()).collect();
            format!("may be placed at: {}", names.join(", "))
        },
        Some(format!(
            "a tenant-admin sets allowed_sites on the project: dv project show {p} --tenant {t}"
        )),
    ));
    match offering.name {
        "bare-metal" => {
            let q = f.quota.machines;
            out.push(check(
                "quota.machines",
                f.machines_held < q,
                format!("holds {} of {q} machine(s)", f.machines_held),
                Some(format!(
                    "ask a platform operator: dv quota set --machines {} --tenant {t} --project {p}",
                    f.machines_held + 1
                )),
            ));
            out.push(check(
                "capacity",
                f.machines_free > 0,
                format!(
                    "{} machine(s) available at the project's sites",
                    f.machines_free
                ),
                Some(
                    "ask a platform operator to add or free machines at an allowed site".to_owned(),
                ),
            ));
        }
        "network" => {
            out.push(check(
                "quota.networks",
                f.quota.networks > 0,
                format!("the quota allows {} network(s)", f.quota.networks),
                Some(format!(
                    "ask a platform operator: dv quota set --networks 1 --tenant {t} --project {p}"
                )),
            ));
        }
        _ => {}
    }
    out
}

/// Every offering as the project sees it.
pub fn evaluate(f: &ProjectFacts) -> Vec<OfferingStatus> {
    CATALOG
        .iter()
        .map(|o| {
            let prerequisites = prerequisites(o, f);
            OfferingStatus {
                name: o.name.to_owned(),
                cli: o.cli.to_owned(),
                description: o.description.to_owned(),
                available: o.available,
                enabled: f.enabled.contains(o.name),
                environment_scoped: o.environment_scoped,
                self_service: o.self_service,
                ready: prerequisites.iter().all(|p| p.met),
                prerequisites,
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn facts() -> ProjectFacts {
        ProjectFacts {
            tenant: "acme".parse().unwrap(),
            project: "web".parse().unwrap(),
            enabled: BTreeSet::new(),
            environments: 0,
            quota: Quota::default(),
            machines_held: 0,
            sites: vec!["osl-1".parse().unwrap()],
            machines_free: 2,
        }
    }

    fn bare_metal(f: &ProjectFacts) -> OfferingStatus {
        evaluate(f)
            .into_iter()
            .find(|o| o.name == "bare-metal")
            .unwrap()
    }

    fn unmet(o: &OfferingStatus) -> Vec<&str> {
        o.prerequisites
            .iter()
            .filter(|p| !p.met)
            .map(|p| p.name.as_str())
            .collect()
    }

    #[test]
    fn a_new_project_is_told_everything_it_lacks() {
        let o = bare_metal(&facts());
        assert!(!o.ready);
        assert_eq!(unmet(&o), ["enabled", "environment", "quota.machines"]);
        let fix = o.prerequisites[0].fix.as_deref().unwrap();
        assert!(fix.contains("dv offering enable bare-metal --tenant acme --project web"));
    }

    #[test]
    fn ready_once_each_prerequisite_holds_and_not_past_the_quota() {
        let mut f = facts();
        f.enabled.insert("bare-metal".into());
        f.environments = 1;
        f.quota.machines = 1;
        let o = bare_metal(&f);
        assert!(o.ready, "{o:?}");
        assert!(o.prerequisites.iter().all(|p| p.fix.is_none()));
        f.machines_held = 1;
        assert_eq!(unmet(&bare_metal(&f)), ["quota.machines"]);
        f.machines_held = 0;
        f.machines_free = 0;
        assert_eq!(unmet(&bare_metal(&f)), ["capacity"]);
        f.sites.clear();
        assert!(unmet(&bare_metal(&f)).contains(&"placement"));
    }

    #[test]
    fn unavailable_offerings_say_so_and_nothing_else() {
        let all = evaluate(&facts());
        let k = all.iter().find(|o| o.name == "kubernetes").unwrap();
        assert!(!k.available && !k.ready);
        assert_eq!(unmet(k), ["available"]);
        assert_eq!(all.len(), CATALOG.len());
    }
}
