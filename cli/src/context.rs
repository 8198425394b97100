//! Contexts: named API endpoints (a hub, or one site's agent) with where
//! their token comes from, stored in `contexts.yaml`; and `dv context
//! add|use|list|show|remove`.
//!
//! The file holds no secrets, only references (`token_file`, `token_env`),
//! so a token is read when it is used and rotating it needs no `dv`
//! command. It is written 0600 all the same (its directory 0700): it names
//! where the secrets are. The directory is `$DV_CONFIG_DIR`, else
//! `~/.config/dv`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use comfy_table::Table;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::EXIT_USAGE;
use crate::output::{self, Format};

const EXAMPLES: &str = "\
Examples:
  dv context add prod --url https://hub.example:7443 --token-file ~/.dv/hub-token --ca-file ~/.dv/hub-ca.pem
  dv context add osl-1 --url http://10.77.0.1:8680 --kind agent
  dv context use prod --tenant acme --project web
  dv context set --project shop     (the current context's default project)
  dv context list
  dv context show               (what the next command talks to, and why)
  dv --context osl-1 ce machine list   (or DV_CONTEXT=osl-1)";

/// What a context points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A hub: every federated site.
    Hub,
    /// One site's agent.
    Agent,
}

impl Kind {
    /// `hub` or `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Hub => "hub",
            Kind::Agent => "agent",
        }
    }
}

/// One context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// Its name.
    pub name: String,
    /// The API's base URL.
    pub url: String,
    /// Hub or agent.
    pub kind: Kind,
    /// A file whose content (trimmed) is the bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// A PEM file of the CA certificates to trust for `https` (only these).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The tenant commands use unless `--tenant` names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The project commands use unless `--project` names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

impl Context {
    /// Where its token comes from, for messages.
    pub fn token_source(&self) -> String {
        match (&self.token_file, &self.token_env) {
            (Some(f), _) => format!("file {}", f.display()),
            (None, Some(v)) => format!("${v}"),
            // A login (dvid login) stored for this context, if any.
            (None, None) => match crate::credentials::path(&self.name) {
                Ok(p) if p.exists() => format!("login ({})", p.display()),
                _ => "none (dvid login, or --token-file)".to_owned(),
            },
        }
    }

    /// Reads its token, if it has one.
    pub fn token(&self) -> Result<Option<String>, String> {
        if let Some(f) = &self.token_file {
            let text = std::fs::read_to_string(f).map_err(|e| {
                format!(
                    "context {:?}: cannot read its token file {}: {e}\nhint: put the token there, or re-add the context with the right --token-file",
                    self.name,
                    f.display()
                )
            })?;
            return Ok(Some(text.trim().to_owned()));
        }
        if let Some(var) = &self.token_env {
            return match std::env::var(var) {
                Ok(t) => Ok(Some(t.trim().to_owned())),
                Err(_) => Err(format!(
                    "context {:?} takes its token from ${var}, which is not set\nhint: export {var}=<token>",
                    self.name
                )),
            };
        }
        Ok(None)
    }
}

/// The contexts file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contexts {
    /// The context commands use unless told otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Every context, in the order added.
    #[serde(default)]
    pub contexts: Vec<Context>,
}

/// `$DV_CONFIG_DIR`, else `~/.config/dv`.
pub fn config_dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("DV_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".config").join("dv"))
        .ok_or_else(|| "neither DV_CONFIG_DIR nor HOME is set: set DV_CONFIG_DIR".to_owned())
}

/// The contexts file's path.
pub fn file() -> Result<PathBuf, String> {
    Ok(config_dir()?.join("contexts.yaml"))
}

impl Contexts {
    /// Reads the file; a missing file is no contexts.
    pub fn load() -> Result<Contexts, String> {
        let path = file()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => yaml_serde::from_str(&text).map_err(|e| {
                format!(
                    "{} is not a contexts file: {e}\nhint: fix or remove it",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Contexts::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes the file (0600, in a 0700 directory), replacing it whole so a
    /// crash leaves the old or the new file, never half of one.
    pub fn save(&self) -> Result<PathBuf, String> {
        let path = file()?;
        let text = yaml_serde::to_string(self).map_err(|e| e.to_string())?;
        crate::private_file::write(&path, &text)?;
        Ok(path)
    }

    /// The context named `name`.
    pub fn get(&self, name: &str) -> Result<&Context, String> {
        self.contexts
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.contexts.iter().map(|c| c.name.as_str()).collect();
                if known.is_empty() {
                    format!(
                        "no context {name:?}: there are none yet\nhint: dv context add {name} --url URL [--token-file FILE]"
                    )
                } else {
                    format!(
                        "no context {name:?} (there are: {})\nhint: dv context list",
                        known.join(", ")
                    )
                }
            })
    }
}

/// `dv context`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct ContextArgs {
    #[command(subcommand)]
    command: ContextCommand,
}

#[derive(Debug, Subcommand)]
enum ContextCommand {
    /// Add a context: a hub's or an agent's API and where its token is.
    #[command(after_help = "Examples:
  dv context add prod --url https://hub.example:7443 --token-file ~/.dv/hub-token --ca-file ~/.dv/hub-ca.pem
  dv context add lab --url http://127.0.0.1:7443 --token-env DV_TOKEN
  dv context add osl-1 --url http://10.77.0.1:8680 --kind agent
  dv context add acme-web --url https://hub.example:7443 --token-file ~/.dv/token --tenant acme --project web")]
    Add {
        /// Its name.
        name: String,
        /// The API's base URL.
        #[arg(long)]
        url: String,
        /// Read the bearer token from this file (when used, so it can be
        /// rotated in place).
        #[arg(long, conflicts_with = "token_env")]
        token_file: Option<PathBuf>,
        /// Read the bearer token from this environment variable.
        #[arg(long)]
        token_env: Option<String>,
        /// Trust only the CA certificates in this PEM file for https.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// A hub (every site) or one site's agent.
        #[arg(long, value_enum, default_value = "hub")]
        kind: Kind,
        #[command(flatten)]
        defaults: Defaults,
    },
    /// Make a context the current one (and set its default tenant and
    /// project).
    #[command(
        after_help = "Examples:\n  dv context use prod\n  dv context use prod --tenant acme --project web"
    )]
    Use {
        /// Its name.
        name: String,
        #[command(flatten)]
        defaults: Defaults,
    },
    /// Set a context's default tenant and project (an empty value clears
    /// one); without NAME, the current context's.
    #[command(
        after_help = "Examples:\n  dv context set --tenant acme --project web\n  dv context set lab --project shop\n  dv context set --project ''     (no default project)"
    )]
    Set {
        /// The context (default: the current one).
        name: Option<String>,
        #[command(flatten)]
        defaults: Defaults,
    },
    /// Every context; `*` marks the current one.
    #[command(after_help = "Example:\n  dv context list -o json")]
    List,
    /// What the next command talks to, and why (flag, environment or the
    /// current context).
    #[command(after_help = "Examples:\n  dv context show\n  dv --context osl-1 context show")]
    Show {
        /// Another context than the one in effect.
        name: Option<String>,
    },
    /// Remove a context.
    #[command(after_help = "Example:\n  dv context remove old-lab")]
    Remove {
        /// Its name.
        name: String,
    },
}

/// `--tenant` and `--project` of `use` and `set`.
#[derive(Debug, Args)]
struct Defaults {
    /// The default tenant of the context's commands.
    #[arg(long)]
    tenant: Option<String>,
    /// The default project of the context's commands.
    #[arg(long)]
    project: Option<String>,
}

impl Defaults {
    /// Applies the given values to `c` (empty clears); checked as names.
    fn apply(self, c: &mut Context) -> Result<(), String> {
        if let Some(t) = self.tenant {
            if !t.is_empty() {
                t.parse::<dv_protocol::TenantName>()
                    .map_err(|e| format!("{t:?} is not a tenant name: {e}"))?;
            }
            c.tenant = Some(t).filter(|t| !t.is_empty());
        }
        if let Some(p) = self.project {
            if !p.is_empty() {
                p.parse::<dv_protocol::ProjectName>()
                    .map_err(|e| format!("{p:?} is not a project name: {e}"))?;
            }
            c.project = Some(p).filter(|p| !p.is_empty());
        }
        Ok(())
    }

    fn given(&self) -> bool {
        self.tenant.is_some() || self.project.is_some()
    }
}

/// Runs `dv context`; `global` carries `--agent` and `--context`.
pub fn run(args: ContextArgs, global: &crate::target::Global) -> ExitCode {
    match execute(args.command, global.output, global) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprint_error!("error: {msg}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn execute(
    command: ContextCommand,
    format: Format,
    global: &crate::target::Global,
) -> Result<(), String> {
    let mut all = Contexts::load()?;
    match command {
        ContextCommand::Add {
            name,
            url,
            token_file,
            token_env,
            ca_file,
            kind,
            defaults,
        } => {
            if all.contexts.iter().any(|c| c.name == name) {
                return Err(format!(
                    "context {name:?} exists\nhint: dv context remove {name}, then add it again"
                ));
            }
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                return Err(format!("{name:?} is not a context name (no spaces)"));
            }
            // Checked now rather than at first use, with the reason.
            dv_sdk::Client::new(&url, None).map_err(|e| e.to_string())?;
            let token_file = token_file.map(absolute).transpose()?;
            let ca_file = ca_file.map(absolute).transpose()?;
            let mut context = Context {
                name: name.clone(),
                url,
                kind,
                token_file,
                token_env,
                ca_file,
                tenant: None,
                project: None,
            };
            defaults.apply(&mut context)?;
            if let Err(why) = context.token() {
                eprintln!("warning: {why}");
            }
            let first = all.current.is_none();
            all.contexts.push(context);
            if first {
                all.current = Some(name.clone());
            }
            let path = all.save()?;
            eprintln!("context {name} added to {}", path.display());
            if first {
                eprintln!("it is the current context (no other was)");
            }
        }
        ContextCommand::Use { name, defaults } => {
            all.get(&name)?;
            let given = defaults.given();
            if let Some(c) = all.contexts.iter_mut().find(|c| c.name == name) {
                defaults.apply(c)?;
            }
            all.current = Some(name.clone());
            all.save()?;
            eprintln!("current context: {name}");
            if given {
                let c = all.get(&name)?;
                eprintln!("{}", defaults_line(c));
            }
        }
        ContextCommand::Set { name, defaults } => {
            let name = match name.or_else(|| all.current.clone()) {
                Some(n) => n,
                None => {
                    return Err("no context is current\nhint: name one: dv context set NAME --tenant T --project P".to_owned());
                }
            };
            all.get(&name)?;
            if !defaults.given() {
                return Err(
                    "nothing to set\nhint: dv context set --tenant T --project P".to_owned(),
                );
            }
            if let Some(c) = all.contexts.iter_mut().find(|c| c.name == name) {
                defaults.apply(c)?;
            }
            all.save()?;
            let c = all.get(&name)?;
            eprintln!("{}", defaults_line(c));
        }
        ContextCommand::List => {
            let rows: Vec<Value> = all
                .contexts
                .iter()
                .map(|c| {
                    let mut v = serde_json::to_value(c).unwrap_or_default();
                    v["current"] = Value::Bool(all.current.as_deref() == Some(c.name.as_str()));
                    v
                })
                .collect();
            output::print(&Value::Array(rows), format, list_table);
        }
        ContextCommand::Show { name } => {
            let v = match name {
                Some(n) => {
                    let c = all.get(&n)?;
                    shown(c, "named on the command line")
                }
                None => match crate::target::choose(global, || Ok(std::mem::take(&mut all)))? {
                    crate::target::Choice::Agent { url, why } => serde_json::json!({
                        "name": null, "url": url, "kind": "agent", "token": "none", "chosen_by": why,
                    }),
                    crate::target::Choice::Context { context, why } => shown(&context, &why),
                },
            };
            output::print(&v, format, output::fields);
        }
        ContextCommand::Remove { name } => {
            all.get(&name)?;
            all.contexts.retain(|c| c.name != name);
            if all.current.as_deref() == Some(name.as_str()) {
                all.current = None;
            }
            all.save()?;
            eprintln!("context {name} removed");
        }
    }
    Ok(())
}

fn defaults_line(c: &Context) -> String {
    format!(
        "context {}: tenant {}, project {}",
        c.name,
        c.tenant.as_deref().unwrap_or("(none)"),
        c.project.as_deref().unwrap_or("(none)")
    )
}

fn shown(c: &Context, why: &str) -> Value {
    let mut v = serde_json::json!({
        "name": c.name, "url": c.url, "kind": c.kind.as_str(), "token": c.token_source(),
    });
    if let Some(ca) = &c.ca_file {
        v["ca_file"] = Value::String(ca.display().to_string());
    }
    if let Some(t) = &c.tenant {
        v["tenant"] = Value::String(t.clone());
    }
    if let Some(p) = &c.project {
        v["project"] = Value::String(p.clone());
    }
    v["chosen_by"] = Value::String(why.to_owned());
    v
}

/// `path` made absolute against the working directory, so the context works
/// from anywhere.
fn absolute(path: PathBuf) -> Result<PathBuf, String> {
    std::path::absolute(&path).map_err(|e| format!("{}: {e}", path.display()))
}

fn list_table(v: &Value) -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(vec![
        "", "NAME", "KIND", "URL", "TOKEN", "TENANT", "PROJECT",
    ]);
    for c in v.as_array().into_iter().flatten() {
        let token = match (&c["token_file"], &c["token_env"]) {
            (Value::String(f), _) => format!("file {f}"),
            (_, Value::String(e)) => format!("${e}"),
            _ => "none".to_owned(),
        };
        t.add_row(vec![
            if c["current"] == true { "*" } else { "" }.to_owned(),
            output::cell(&c["name"]),
            output::cell(&c["kind"]),
            output::cell(&c["url"]),
            token,
            output::cell(&c["tenant"]),
            output::cell(&c["project"]),
        ]);
    }
    t
}
