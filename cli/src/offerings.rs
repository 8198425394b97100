//! `dv offerings`: what a project may ask the platform for, whether it is
//! ready, and what to do about each unmet prerequisite; and [`require`],
//! the check the families without a backend yet (`dvke`, `dvapp`, `dvos`)
//! run so that they say what is missing instead of pretending to work.

use std::process::ExitCode;

use clap::Args;
use comfy_table::{Cell, Table};
use serde_json::Value;

use dv_protocol::api::OfferingStatus;

use crate::EXIT_API;
use crate::output::{self, Format};
use crate::scope::Scope;
use crate::target::{Failure, Global, Target, run_with};

const EXAMPLES: &str = "\
Examples:
  dv offerings --tenant acme --project web
  dv offerings -o json | jq '.[] | select(.ready | not) | .name'";

/// `dv offerings` (hub).
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct OfferingsArgs {
    #[command(flatten)]
    scope: Scope,
}

/// `dv offering enable|disable` (hub; a platform-operator's call).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  dv offering enable bare-metal --tenant acme --project web\n  dv offering disable bare-metal --tenant acme --project web"
)]
pub struct OfferingArgs {
    #[command(subcommand)]
    command: OfferingCommand,
}

#[derive(Debug, clap::Subcommand)]
enum OfferingCommand {
    /// Let the project request the offering (platform-operator).
    #[command(after_help = "Example:\n  dv offering enable bare-metal --tenant acme --project web")]
    Enable {
        /// The offering (dv offerings lists them).
        name: String,
        #[command(flatten)]
        scope: Scope,
    },
    /// Stop the project requesting the offering (what it holds stays).
    #[command(
        after_help = "Example:\n  dv offering disable bare-metal --tenant acme --project web"
    )]
    Disable {
        /// The offering.
        name: String,
        #[command(flatten)]
        scope: Scope,
    },
}

/// Runs `dv offering`.
pub fn run_switch(args: OfferingArgs, global: &Global) -> ExitCode {
    run_with(global, async |target, format| {
        let (name, scope, enabled) = match &args.command {
            OfferingCommand::Enable { name, scope } => (name, scope, true),
            OfferingCommand::Disable { name, scope } => (name, scope, false),
        };
        target.needs_hub("dv offering")?;
        let (tenant, project) = scope.project(target)?;
        let status = target
            .client
            .offering_set(tenant.as_str(), project.as_str(), name, enabled)
            .await?;
        output::print_typed(&[status], format, table);
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `dv offerings`.
pub fn run(args: OfferingsArgs, global: &Global) -> ExitCode {
    run_with(global, async |target, format| {
        list(target, &args.scope, format).await
    })
}

async fn list(target: &Target, scope: &Scope, format: Format) -> Result<ExitCode, Failure> {
    target.needs_hub("dv offerings")?;
    let (tenant, project) = scope.project(target)?;
    match target.client.offering_list(&tenant, &project).await {
        Ok(offerings) => {
            output::print_typed(&offerings, format, table);
            Ok(ExitCode::SUCCESS)
        }
        Err(dv_sdk::Error::NoEndpoint { url }) => {
            eprint_error!(
                "error: this hub does not offer an offerings list ({url} is not one of its endpoints)\n\
                 hint: it is older than this dv; ask its operator which offerings project {tenant}/{project} has"
            );
            Ok(ExitCode::from(EXIT_API))
        }
        Err(e) => Err(e.into()),
    }
}

fn table(v: &Value) -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(vec![
        "OFFERING",
        "CLI",
        "ENABLED",
        "READY",
        "UNMET PREREQUISITES",
    ]);
    for o in v.as_array().into_iter().flatten() {
        let unmet: Vec<String> = o["prerequisites"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["met"] == false)
            .map(|p| match p["fix"].as_str() {
                Some(fix) => format!(
                    "{}: {} (fix: {fix})",
                    output::cell(&p["name"]),
                    output::cell(&p["detail"])
                ),
                None => format!(
                    "{}: {}",
                    output::cell(&p["name"]),
                    output::cell(&p["detail"])
                ),
            })
            .collect();
        let ready = if o["available"] == false {
            "unavailable".to_owned()
        } else {
            yes_no(&o["ready"])
        };
        t.add_row(vec![
            Cell::new(output::cell(&o["name"])),
            Cell::new(output::cell(&o["cli"])),
            crate::style::state_cell(yes_no(&o["enabled"])),
            crate::style::state_cell(ready),
            Cell::new(unmet.join("\n")),
        ]);
    }
    t
}

fn yes_no(v: &Value) -> String {
    if v == true { "yes" } else { "no" }.to_owned()
}

/// Checks with the hub that the project may use the offering driven by
/// `cli` (`dvke`, ...; `noun` names what it delivers: `Kubernetes
/// clusters`), for `what` (`create a Kubernetes cluster`). Always
/// ends the command: these offerings have no backend in the CLI yet, so
/// even a ready offering is reported as such, and nothing is pretended.
/// Exit 1 with the unmet prerequisites and their fixes, or with why the
/// hub cannot tell.
pub async fn require(
    target: &Target,
    scope: &Scope,
    cli: &str,
    noun: &str,
    what: &str,
) -> Result<ExitCode, Failure> {
    target.needs_hub(cli)?;
    let (tenant, project) = scope.project(target)?;
    let offerings = match target.client.offering_list(&tenant, &project).await {
        Ok(o) => o,
        Err(dv_sdk::Error::NoEndpoint { .. }) => {
            eprint_error!(
                "error: cannot {what}: this hub does not offer {noun} (it has no offerings endpoint to say whether project {tenant}/{project} may use them)\n\
                 hint: nothing was created; {cli} needs a hub that lists offerings (dv offerings); ask the platform operator"
            );
            return Ok(ExitCode::from(EXIT_API));
        }
        Err(e) => return Err(e.into()),
    };
    let Some(o) = offerings.iter().find(|o| o.cli == cli) else {
        let known: Vec<&str> = offerings.iter().map(|o| o.name.as_str()).collect();
        eprint_error!(
            "error: cannot {what}: this hub does not offer {noun} (it offers: {})\n\
             hint: nothing was created; see dv offerings --tenant {tenant} --project {project}",
            if known.is_empty() {
                "nothing".to_owned()
            } else {
                known.join(", ")
            }
        );
        return Ok(ExitCode::from(EXIT_API));
    };
    eprint_error!("{}", explain(o, what, &format!("{tenant}/{project}")));
    Ok(ExitCode::from(EXIT_API))
}

/// Why `o` cannot serve `what` for `project`: unavailable, or each unmet
/// prerequisite and its fix, or (ready) that this dv cannot drive it yet.
fn explain(o: &OfferingStatus, what: &str, project: &str) -> String {
    if !o.available {
        return format!(
            "error: cannot {what}: {} is not available on this platform yet ({})\nhint: nothing was created",
            o.name, o.description
        );
    }
    let unmet: Vec<_> = o.prerequisites.iter().filter(|p| !p.met).collect();
    if o.ready && o.enabled && unmet.is_empty() {
        return format!(
            "error: cannot {what}: the hub reports {} ready for project {project}, but this version of {} cannot request it yet\nhint: nothing was created",
            o.name, o.cli
        );
    }
    let mut text = format!(
        "error: cannot {what}: {} is not ready for project {project}",
        o.name
    );
    if !o.enabled && !unmet.iter().any(|p| p.name == "enabled") {
        text.push_str("\n  - enabled: the offering is not enabled for the project");
    }
    for p in &unmet {
        text.push_str(&format!("\n  - {}: {}", p.name, p.detail));
        if let Some(fix) = &p.fix {
            text.push_str(&format!("\n    fix: {fix}"));
        }
    }
    text.push_str("\nhint: nothing was created; fix the prerequisites above, then run it again");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use dv_protocol::api::Prerequisite;

    fn offering(ready: bool, prerequisites: Vec<Prerequisite>) -> OfferingStatus {
        OfferingStatus {
            name: "kubernetes".into(),
            cli: "dvke".into(),
            description: "Managed Kubernetes clusters".into(),
            available: true,
            enabled: true,
            environment_scoped: true,
            self_service: true,
            prerequisites,
            ready,
        }
    }

    #[test]
    fn unmet_prerequisites_are_listed_with_their_fixes() {
        let o = offering(
            false,
            vec![
                Prerequisite {
                    name: "environment".into(),
                    met: false,
                    detail: "the project has no environment".into(),
                    fix: Some("dv env create prod".into()),
                },
                Prerequisite {
                    name: "network".into(),
                    met: true,
                    detail: "ok".into(),
                    fix: None,
                },
            ],
        );
        let text = explain(&o, "create a Kubernetes cluster", "acme/web");
        assert!(
            text.contains("kubernetes is not ready for project acme/web"),
            "{text}"
        );
        assert!(
            text.contains("- environment: the project has no environment"),
            "{text}"
        );
        assert!(text.contains("fix: dv env create prod"), "{text}");
        assert!(!text.contains("network"), "{text}");
    }

    #[test]
    fn the_table_shows_each_unmet_prerequisite_with_its_fix() {
        let o = offering(
            false,
            vec![Prerequisite {
                name: "environment".into(),
                met: false,
                detail: "none yet".into(),
                fix: Some("dv env create prod".into()),
            }],
        );
        let v = serde_json::to_value(vec![o]).unwrap_or_default();
        let text = table(&v).to_string();
        assert!(text.contains("OFFERING"), "{text}");
        assert!(text.contains("kubernetes"), "{text}");
        assert!(
            text.contains("environment: none yet (fix: dv env create prod)"),
            "{text}"
        );
    }

    #[test]
    fn unavailable_and_ready_never_pretend() {
        let mut o = offering(true, vec![]);
        let text = explain(&o, "create a Kubernetes cluster", "acme/web");
        assert!(text.contains("cannot request it yet"), "{text}");
        o.available = false;
        let text = explain(&o, "create a Kubernetes cluster", "acme/web");
        assert!(
            text.contains("not available on this platform yet"),
            "{text}"
        );
    }
}
