//! `dvce machine request|held|release`: a project's bare-metal machines,
//! through the hub. The hub places a request on an available machine of a
//! site the project may use, claims it and provisions it; `--wait` follows
//! the provisioning task at the site until the machine is ready (exit 4
//! failed or refused, 5 blocked).

use std::process::ExitCode;

use comfy_table::{Cell, Table};
use serde_json::Value;

use dv_protocol::api::{CommandAccepted, MachineRequest};
use dv_protocol::{Command, EnvironmentName, SiteName};

use crate::output::{self, Format};
use crate::scope::Scope;
use crate::target::{Failure, Target};

/// `dvce machine request`.
pub(crate) async fn request(
    target: &Target,
    scope: &Scope,
    env: &str,
    site: Option<&str>,
    wait: bool,
    format: Format,
) -> Result<ExitCode, Failure> {
    target.needs_hub("dvce machine request")?;
    let (tenant, project) = scope.project(target)?;
    let environment: EnvironmentName = env
        .parse()
        .map_err(|e| Failure::Config(format!("{env:?} is not an environment name: {e}")))?;
    let site: Option<SiteName> = site
        .map(|s| {
            s.parse()
                .map_err(|e| Failure::Config(format!("{s:?} is not a site name: {e}")))
        })
        .transpose()?;
    let position = if wait {
        crate::task::event_position(&target.client).await
    } else {
        None
    };
    let claim = target
        .client
        .project_machine_request(
            tenant.as_str(),
            project.as_str(),
            &MachineRequest { environment, site },
        )
        .await?;
    if !wait {
        output::print_typed(&claim, format, output::fields);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "machine {} at site {} claimed for {tenant}/{project} ({}); command {}",
        claim.machine, claim.site, claim.environment, claim.command
    );
    let command = Command::ProvisionMachine {
        machine: claim.machine,
    };
    // What the follower needs of the hub's 202: the command and its site.
    let accepted = CommandAccepted {
        command: claim.command.clone(),
        site: claim.site.clone(),
        machine: claim.machine,
        action: command.action().to_owned(),
        subject: command.subject(&claim.site).as_str().to_owned(),
        correlation_id: String::new(),
        stream_seq: 0,
    };
    crate::task::follow_command(&target.client, &accepted, position).await
}

/// `dvce machine held`.
pub(crate) async fn held(
    target: &Target,
    scope: &Scope,
    format: Format,
) -> Result<ExitCode, Failure> {
    target.needs_hub("dvce machine held")?;
    let (tenant, project) = scope.project(target)?;
    let machines = target
        .client
        .project_machine_list(tenant.as_str(), project.as_str())
        .await?;
    output::print_typed(&machines, format, table);
    Ok(ExitCode::SUCCESS)
}

/// `dvce machine release`.
pub(crate) async fn release(
    target: &Target,
    scope: &Scope,
    machine: &str,
    wait: bool,
    format: Format,
) -> Result<ExitCode, Failure> {
    target.needs_hub("dvce machine release")?;
    let (tenant, project) = scope.project(target)?;
    let position = if wait {
        crate::task::event_position(&target.client).await
    } else {
        None
    };
    let accepted = target
        .client
        .project_machine_release(tenant.as_str(), project.as_str(), machine)
        .await?;
    if !wait {
        output::print_typed(&accepted, format, output::fields);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "machine {} released by {tenant}/{project}; command {} sent to site {}",
        accepted.machine, accepted.command, accepted.site
    );
    crate::task::follow_command(&target.client, &accepted, position).await
}

fn table(v: &Value) -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(vec![
        "MACHINE",
        "SERIAL",
        "SITE",
        "ENV",
        "STATE",
        "CLAIMED BY",
    ]);
    for m in v.as_array().into_iter().flatten() {
        t.add_row(vec![
            Cell::new(output::cell(&m["machine"])),
            Cell::new(output::cell(&m["serial"])),
            Cell::new(output::cell(&m["site"])),
            Cell::new(output::cell(&m["environment"])),
            crate::style::state_cell(output::cell(&m["state"])),
            Cell::new(output::cell(&m["claimed_by"])),
        ]);
    }
    t
}
