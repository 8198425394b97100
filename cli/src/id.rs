//! `dvid` (also `dv id`): log in with the OIDC device flow, see who the
//! server takes you for, mint service tokens for automation, and grant
//! roles (ADR 0013).
//!
//! `dvid login` asks the context's server where to log in (`GET
//! /v1/identity/oidc`) unless `--issuer` says, runs the device flow
//! against that issuer and stores the tokens for the context
//! ([`crate::credentials`]); later commands send them when neither
//! `--token-file`, `DV_TOKEN` nor the context names a token.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use comfy_table::Table;
use serde_json::Value;

use dv_protocol::api::NewServiceToken;
use dv_protocol::auth::{Role, RoleBinding, Scope};
use dv_protocol::token::{ProjectName, TenantName};
use dv_sdk::oidc::OidcClient;

use crate::credentials::{self, Credentials, oidc_failure};
use crate::output::{self, Format};
use crate::target::{Failure, Global, Target, login_key, run_with};
use crate::{EXIT_API, EXIT_USAGE};

const EXAMPLES: &str = "\
Examples:
  dvid login                               (where the current context's hub says)
  dvid login --issuer https://id.example --client-id dv-cli --no-browser
  dvid whoami
  dvid token create ci-deploy --role project-member --tenant acme --project web --days 30
  dvid token list
  dvid role grant user:alice@example.com --role tenant-admin --tenant acme
  dvid role list --subject user:alice@example.com
  dvid logout
  dv id whoami -o json           (the same, through dv)

Tokens, first that applies: --token-file FILE, DV_TOKEN, the context's own
token, this login (docs/cli.md).";

/// The scopes asked for when the server names none.
const DEFAULT_SCOPES: [&str; 4] = ["openid", "email", "profile", "offline_access"];

/// The client id when `--issuer` is given without `--client-id`.
const DEFAULT_CLIENT_ID: &str = "dv-cli";

/// `dvid`.
#[derive(Debug, Parser)]
#[command(name = "dvid", version, about = "Identity: log in, who am I, service tokens, roles", after_help = EXAMPLES)]
pub struct Dvid {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `dv id` (the global options are `dv`'s).
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct IdArgs {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Log in through your organisation's identity provider (OIDC device
    /// flow): open the URL shown, enter the code, and the tokens are stored
    /// for the context.
    #[command(after_help = "Examples:
  dvid login
  dvid --context prod login --no-browser
  dvid login --issuer https://id.example --client-id dv-cli

Without --issuer the context's server names the issuer and client
(GET /v1/identity/oidc). The tokens go to credentials/<context>.json in the
config directory (0600).")]
    Login {
        /// The OIDC issuer, instead of asking the server.
        #[arg(long, value_name = "URL")]
        issuer: Option<String>,
        /// The public client to log in as (with --issuer; default dv-cli).
        #[arg(long, value_name = "ID", requires = "issuer")]
        client_id: Option<String>,
        /// Only print the URL and code; do not try to open a browser.
        #[arg(long)]
        no_browser: bool,
    },
    /// Forget the context's login: revoke its refresh token at the issuer
    /// and delete its stored tokens.
    #[command(after_help = "Example:\n  dvid logout")]
    Logout,
    /// Who the server takes you for: subject, credential and role bindings.
    #[command(after_help = "Examples:\n  dvid whoami\n  dvid whoami -o yaml")]
    Whoami,
    /// Service tokens for automation (hub): create, list, revoke.
    #[command(
        subcommand,
        after_help = "Examples:\n  dvid token create ci --role project-member --tenant acme --project web\n  dvid token list\n  dvid token revoke 01JD3..."
    )]
    Token(TokenCommand),
    /// Role bindings (hub): grant, list, revoke.
    #[command(
        subcommand,
        after_help = "Examples:\n  dvid role grant user:alice@example.com --role tenant-admin --tenant acme\n  dvid role list --subject user:alice@example.com\n  dvid role revoke 5f0c..."
    )]
    Role(RoleCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Mint a token holding one role over one scope; it is printed once.
    #[command(after_help = "Examples:
  dvid token create ci-deploy --role project-member --tenant acme --project web
  dvid token create audit --role viewer --platform --days 365 -o json > audit-token.json")]
    Create {
        /// Its name; the subject becomes svc:<name>.
        name: String,
        /// platform-operator, tenant-admin, project-member or viewer.
        #[arg(long)]
        role: Role,
        #[command(flatten)]
        scope: ScopeArgs,
        /// Lifetime in days (default 90, at most 365).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Every service token you may see (never their secrets).
    #[command(after_help = "Example:\n  dvid token list -o json")]
    List,
    /// Revoke a token by id (it stops working at once).
    #[command(after_help = "Example:\n  dvid token revoke 01JD3...")]
    Revoke {
        /// The token's id (dvid token list).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RoleCommand {
    /// Grant a role over a scope to a user or a service token.
    #[command(after_help = "Examples:
  dvid role grant user:alice@example.com --role tenant-admin --tenant acme
  dvid role grant user:bob@example.com --role project-member --tenant acme --project web
  dvid role grant user:carol@example.com --role platform-operator --platform")]
    Grant {
        /// user:<email> or svc:<name>.
        subject: String,
        /// platform-operator, tenant-admin, project-member or viewer.
        #[arg(long)]
        role: Role,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// The role bindings you may see.
    #[command(
        after_help = "Examples:\n  dvid role list\n  dvid role list --subject user:alice@example.com"
    )]
    List {
        /// Only this subject's.
        #[arg(long)]
        subject: Option<String>,
    },
    /// Revoke a binding by id (dvid role list).
    #[command(after_help = "Example:\n  dvid role revoke 5f0c...")]
    Revoke {
        /// The binding's id.
        id: String,
    },
}

/// Where a role applies: `--platform`, `--tenant T` or `--tenant T
/// --project P`.
#[derive(Debug, Args)]
pub(crate) struct ScopeArgs {
    /// The whole platform.
    #[arg(long, conflicts_with_all = ["tenant", "project"])]
    platform: bool,
    /// One tenant (and all its projects).
    #[arg(long, required_unless_present = "platform")]
    tenant: Option<String>,
    /// One project of the tenant.
    #[arg(long, requires = "tenant")]
    project: Option<String>,
}

impl ScopeArgs {
    fn scope(&self) -> Result<Scope, Failure> {
        let bad = |e: &dyn std::fmt::Display| Failure::Config(e.to_string());
        match (&self.tenant, &self.project) {
            _ if self.platform => Ok(Scope::Platform),
            (Some(t), None) => Ok(Scope::tenant(&TenantName::new(t).map_err(|e| bad(&e))?)),
            (Some(t), Some(p)) => Ok(Scope::project(
                &TenantName::new(t).map_err(|e| bad(&e))?,
                &ProjectName::new(p).map_err(|e| bad(&e))?,
            )),
            (None, _) => Err(Failure::Config(
                "name a scope: --platform, --tenant T or --tenant T --project P".to_owned(),
            )),
        }
    }
}

/// Runs a `dvid` command.
pub fn run(command: Command, global: &Global) -> ExitCode {
    match command {
        Command::Login {
            issuer,
            client_id,
            no_browser,
        } => login(global, issuer, client_id, no_browser),
        Command::Logout => logout(global),
        other => run_with(global, async move |target, format| {
            api(other, target, format).await
        }),
    }
}

async fn api(command: Command, target: &Target, format: Format) -> Result<ExitCode, Failure> {
    let c = &target.client;
    match command {
        Command::Whoami => {
            let me = c.whoami().await?;
            output::print_typed(&me, format, whoami_table);
        }
        Command::Token(TokenCommand::Create {
            name,
            role,
            scope,
            days,
        }) => {
            let scope = scope.scope()?;
            check(&format!("svc:{name}"), role, &scope)?;
            let created = c
                .token_create(&NewServiceToken {
                    name,
                    role,
                    scope,
                    expires_in_days: days,
                })
                .await?;
            output::print_typed(&created, format, output::fields);
            eprintln!(
                "warning: this is the only time the token is shown (the hub keeps a digest): store it now, in a file only you can read (chmod 600)"
            );
        }
        Command::Token(TokenCommand::List) => {
            let tokens = c.token_list().await?;
            output::print_typed(&tokens, format, tokens_table);
        }
        Command::Token(TokenCommand::Revoke { id }) => {
            c.token_revoke(&id).await?;
            eprintln!("token {id} revoked");
        }
        Command::Role(RoleCommand::Grant {
            subject,
            role,
            scope,
        }) => {
            let scope = scope.scope()?;
            check(&subject, role, &scope)?;
            let grant = c
                .binding_grant(&RoleBinding {
                    subject,
                    role,
                    scope,
                })
                .await?;
            output::print_typed(&grant, format, output::fields);
        }
        Command::Role(RoleCommand::List { subject }) => {
            let mut grants = c.binding_list().await?;
            // Filtered here: the listing endpoint takes no filter.
            if let Some(s) = &subject {
                grants.retain(|g| &g.binding.subject == s);
            }
            output::print_typed(&grants, format, grants_table);
        }
        Command::Role(RoleCommand::Revoke { id }) => {
            c.binding_revoke(&id).await?;
            eprintln!("binding {id} revoked");
        }
        Command::Login { .. } | Command::Logout => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses a binding the server would refuse, before calling it.
fn check(subject: &str, role: Role, scope: &Scope) -> Result<(), Failure> {
    RoleBinding {
        subject: subject.to_owned(),
        role,
        scope: scope.clone(),
    }
    .validate()
    .map_err(|e| Failure::Config(e.to_string()))
}

/// `dvid login`.
fn login(
    global: &Global,
    issuer: Option<String>,
    client_id: Option<String>,
    no_browser: bool,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(EXIT_API);
        }
    };
    runtime.block_on(async {
        // The server is asked without a token: a stale login must not stand
        // in the way of a new one.
        let target = match Target::connect(global, false).await {
            Ok(t) => t,
            Err(f) => return report(f),
        };
        let result = login_flow(&target, issuer, client_id, no_browser).await;
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => target.report(f),
        }
    })
}

fn report(f: Failure) -> ExitCode {
    match f {
        Failure::Config(m) => {
            eprintln!("error: {m}");
            ExitCode::from(EXIT_USAGE)
        }
        Failure::Exit { message, code } => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
        Failure::Api(e) => {
            eprintln!("error: {}", crate::target::chain(&e));
            ExitCode::from(EXIT_API)
        }
    }
}

async fn login_flow(
    target: &Target,
    issuer: Option<String>,
    client_id: Option<String>,
    no_browser: bool,
) -> Result<(), Failure> {
    let key = login_key(target.context.as_ref());
    // Checked before the flow, so a bad name fails before a person signs in.
    credentials::path(&key).map_err(Failure::Config)?;
    let (issuer, client_id, scopes) = match issuer {
        Some(i) => (
            i,
            client_id.unwrap_or_else(|| DEFAULT_CLIENT_ID.to_owned()),
            Vec::new(),
        ),
        None => match target.client.oidc_config().await {
            Ok(c) => (c.issuer, c.client_id, c.scopes),
            Err(dv_sdk::Error::NotFound { .. }) => {
                return Err(Failure::Exit {
                    message: format!(
                        "the server at {} has no OIDC issuer configured\nhint: configure [identity] on the hub, or name the issuer: dvid login --issuer URL --client-id ID",
                        target.client.base_url()
                    ),
                    code: EXIT_API,
                });
            }
            Err(e) => return Err(e.into()),
        },
    };
    let mut scopes = if scopes.is_empty() {
        DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        scopes
    };
    // The server names the scopes its tokens need; the CLI also needs a
    // refresh token, or every login would last one ID token's lifetime.
    if !scopes.iter().any(|s| s == "offline_access") {
        scopes.push("offline_access".to_owned());
    }
    let oidc = OidcClient::discover(&issuer, &client_id)
        .await
        .map_err(|e| oidc_failure(&e, &issuer))?;
    let device = oidc
        .device_authorization(&scopes)
        .await
        .map_err(|e| oidc_failure(&e, &issuer))?;
    // Written, not println!-ed: whoever reads the code may close the pipe
    // before the login ends, and that must not end the login.
    let mut shown = format!(
        "To log in, open {}\nand enter the code: {}\n",
        device.verification_uri, device.user_code
    );
    if let Some(complete) = &device.verification_uri_complete {
        shown.push_str(&format!("(or open {complete}, which fills in the code)\n"));
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(shown.as_bytes()).and_then(|()| out.flush());
    drop(out);
    if !no_browser {
        open_browser(
            device
                .verification_uri_complete
                .as_deref()
                .unwrap_or(&device.verification_uri),
        );
    }
    eprintln!(
        "waiting for the sign-in to be approved (the code expires in {} min; Ctrl-C to give up)...",
        device.expires_in.div_ceil(60)
    );
    let tokens = oidc
        .wait_for_token(&device)
        .await
        .map_err(|e| oidc_failure(&e, &issuer))?;
    let creds =
        Credentials::from_tokens(&issuer, &client_id, tokens, None).map_err(Failure::Config)?;
    if creds.refresh_token.is_none() {
        eprintln!(
            "warning: the issuer granted no refresh token: log in again when this login expires ({})",
            creds.expires_at
        );
    }
    let path = credentials::save(&key, &creds).map_err(Failure::Config)?;
    let context = target
        .context
        .as_ref()
        .map(|c| format!(" for context {}", c.name))
        .unwrap_or_default();
    eprintln!(
        "logged in as {} at {issuer}{context}; tokens stored in {}",
        creds.user(),
        path.display()
    );
    Ok(())
}

/// Tries to show `url` in a browser; a desktop-less host just has the
/// printed URL.
fn open_browser(url: &str) {
    let has_display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    if !has_display {
        return;
    }
    let _ = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// `dvid logout`.
fn logout(global: &Global) -> ExitCode {
    let context = match crate::target::choose(global, crate::context::Contexts::load) {
        Ok(crate::target::Choice::Context { context, .. }) => Some(context),
        Ok(crate::target::Choice::Agent { .. }) => None,
        Err(m) => {
            eprintln!("error: {m}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let key = login_key(context.as_ref());
    // Revoked first (best effort): a copy of the file must not outlive the
    // logout. A file others could read is still removed, unrevoked.
    if let Ok(Some(creds)) = credentials::load(&key)
        && let Some(refresh) = &creds.refresh_token
    {
        match revoke(&creds.issuer, &creds.client_id, refresh) {
            Ok(true) => eprintln!("revoked the refresh token at {}", creds.issuer),
            Ok(false) => {}
            Err(why) => eprintln!(
                "warning: could not revoke the refresh token at {} ({why}); it stays valid until it expires",
                creds.issuer
            ),
        }
    }
    match credentials::remove(&key) {
        Ok(Some(path)) => {
            eprintln!("logged out: removed {}", path.display());
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("not logged in (context {key}): nothing to remove");
            ExitCode::SUCCESS
        }
        Err(m) => {
            eprintln!("error: {m}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Revokes a refresh token at its issuer (RFC 7009); `Ok(false)` if the
/// issuer offers no revocation.
fn revoke(issuer: &str, client_id: &str, refresh_token: &str) -> Result<bool, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let revoked = async {
            let oidc = OidcClient::discover(issuer, client_id).await?;
            oidc.revoke(refresh_token).await
        };
        // Logging out must not hang on an issuer that is down.
        match tokio::time::timeout(std::time::Duration::from_secs(10), revoked).await {
            Ok(r) => r.map_err(|e| crate::target::chain(&e)),
            Err(_) => Err("no answer within 10 s".to_owned()),
        }
    })
}

/// A scope as a short cell: `platform`, `acme`, `acme/web`.
fn scope_cell(v: &Value) -> String {
    match v["kind"].as_str() {
        Some("platform") => "platform".to_owned(),
        Some("tenant") => output::cell(&v["tenant"]),
        Some("project") => format!(
            "{}/{}",
            output::cell(&v["tenant"]),
            output::cell(&v["project"])
        ),
        _ => output::cell(v),
    }
}

fn whoami_table(v: &Value) -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    let bindings: Vec<String> = v["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            format!(
                "{} on {}",
                output::cell(&b["role"]),
                scope_cell(&b["scope"])
            )
        })
        .collect();
    t.add_row(vec!["subject".to_owned(), output::cell(&v["subject"])]);
    t.add_row(vec![
        "credential".to_owned(),
        output::cell(&v["credential"]),
    ]);
    t.add_row(vec![
        "bindings".to_owned(),
        if bindings.is_empty() {
            "(none: ask an operator for a role)".to_owned()
        } else {
            bindings.join("\n")
        },
    ]);
    t
}

fn tokens_table(v: &Value) -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(vec!["ID", "NAME", "ROLE", "SCOPE", "EXPIRES", "CREATED BY"]);
    for r in v.as_array().into_iter().flatten() {
        t.add_row(vec![
            output::cell(&r["id"]),
            output::cell(&r["name"]),
            output::cell(&r["role"]),
            scope_cell(&r["scope"]),
            output::cell(&r["expires_at"]),
            output::cell(&r["created_by"]),
        ]);
    }
    t
}

fn grants_table(v: &Value) -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(vec!["ID", "SUBJECT", "ROLE", "SCOPE", "GRANTED BY"]);
    for g in v.as_array().into_iter().flatten() {
        t.add_row(vec![
            output::cell(&g["id"]),
            output::cell(&g["subject"]),
            output::cell(&g["role"]),
            scope_cell(&g["scope"]),
            output::cell(&g["granted_by"]),
        ]);
    }
    t
}
