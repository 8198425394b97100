//! Which API a command talks to, and how its failures are told: the
//! options every command takes (`--agent`, `--context`, `-o`), the choice
//! between them and the contexts file, the SDK client built from it, and
//! each failure's message, hint and exit code.
//!
//! Choice, first that applies: `--agent URL`, `--context NAME`,
//! `DV_AGENT`, `DV_CONTEXT`, the current context, the agent at
//! `http://127.0.0.1:8680`. Flags beat the environment, the environment
//! beats the file; an agent URL needs no context (how `dvce` reached an
//! agent before contexts existed).
//!
//! The bearer token, first that applies: `--token-file FILE`, `DV_TOKEN`,
//! the context's own token (its `token_file` or `token_env`), the login
//! `dvid login` stored for the context (`credentials/<context>.json`, or
//! `default.json` without a context), refreshed when it is about to expire.
//! An explicit token beats configuration, and configuration a login, so a
//! script's token is never replaced by whoever last logged in.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::context::{Context, Contexts, Kind};
use crate::output::Format;
use crate::{EXIT_API, EXIT_AUTH, EXIT_UNREACHABLE, EXIT_USAGE};

/// The agent commands talk to when nothing else is chosen.
pub const DEFAULT_AGENT: &str = "http://127.0.0.1:8680";

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// One site agent's API URL, instead of a context [env: DV_AGENT].
    #[arg(long, global = true, value_name = "URL")]
    pub agent: Option<String>,
    /// The context to use instead of the current one [env: DV_CONTEXT].
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Send the bearer token in this file instead of the context's or the
    /// login's [env: DV_TOKEN holds a token itself].
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Output format: a table on a terminal, JSON when piped.
    #[arg(short, long, value_enum, default_value = "auto", global = true)]
    pub output: Format,
}

/// What was chosen, and why.
#[derive(Debug)]
pub enum Choice {
    /// A bare agent URL.
    Agent {
        /// Its URL.
        url: String,
        /// What chose it.
        why: String,
    },
    /// A context.
    Context {
        /// The context.
        context: Context,
        /// What chose it.
        why: String,
    },
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Applies the order in the module doc. `load` reads the contexts file,
/// only when a context is needed (an agent URL works whatever the file
/// holds).
pub fn choose(
    global: &Global,
    load: impl FnOnce() -> Result<Contexts, String>,
) -> Result<Choice, String> {
    if let Some(url) = &global.agent {
        return Ok(Choice::Agent {
            url: url.clone(),
            why: "--agent".to_owned(),
        });
    }
    let agent_env = env("DV_AGENT");
    if global.context.is_none()
        && let Some(url) = agent_env
    {
        return Ok(Choice::Agent {
            url,
            why: "DV_AGENT".to_owned(),
        });
    }
    let all = load()?;
    let (name, why) = if let Some(name) = &global.context {
        (name.clone(), "--context")
    } else if let Some(name) = env("DV_CONTEXT") {
        (name, "DV_CONTEXT")
    } else if let Some(name) = &all.current {
        (name.clone(), "the current context")
    } else {
        return Ok(Choice::Agent {
            url: DEFAULT_AGENT.to_owned(),
            why: "the default (no context is current)".to_owned(),
        });
    };
    Ok(Choice::Context {
        context: all.get(&name)?.clone(),
        why: why.to_owned(),
    })
}

/// Where the bearer token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bearer {
    /// No token is sent.
    None,
    /// `--token-file` or `DV_TOKEN`.
    Explicit(String),
    /// The context's `token_file` or `token_env`.
    Context,
    /// `dvid login`'s stored credentials of this key.
    Login(String),
}

/// The API a command talks to.
#[derive(Debug)]
pub struct Target {
    /// The client.
    pub client: dv_sdk::Client,
    /// Hub or agent.
    pub kind: Kind,
    /// The context, if one was chosen.
    pub context: Option<Context>,
    /// Where its token came from.
    pub bearer: Bearer,
}

/// `--token-file` or `DV_TOKEN`, if given.
fn explicit_token(global: &Global) -> Result<Option<(String, String)>, Failure> {
    if let Some(f) = &global.token_file {
        let text = std::fs::read_to_string(f).map_err(|e| {
            Failure::Config(format!("cannot read the token file {}: {e}", f.display()))
        })?;
        return Ok(Some((
            text.trim().to_owned(),
            format!("--token-file {}", f.display()),
        )));
    }
    Ok(env("DV_TOKEN").map(|t| (t.trim().to_owned(), "DV_TOKEN".to_owned())))
}

/// The key of a choice's login credentials: the context's name, or the
/// default for a bare agent URL.
pub fn login_key(context: Option<&Context>) -> String {
    context.map_or_else(
        || crate::credentials::DEFAULT_KEY.to_owned(),
        |c| c.name.clone(),
    )
}

impl Target {
    /// Chooses, finds the bearer token (refreshing a login's) and connects
    /// (no API call is made yet).
    pub async fn resolve(global: &Global) -> Result<Target, Failure> {
        Self::connect(global, true).await
    }

    /// [`Target::resolve`], sending no token at all when `with_token` is
    /// false (`dvid login` asks the server where to log in).
    pub async fn connect(global: &Global, with_token: bool) -> Result<Target, Failure> {
        let choice = choose(global, Contexts::load).map_err(Failure::Config)?;
        let context = match &choice {
            Choice::Agent { .. } => None,
            Choice::Context { context, .. } => Some(context),
        };
        let (token, bearer) = if !with_token {
            (None, Bearer::None)
        } else if let Some((token, why)) = explicit_token(global)? {
            (Some(token), Bearer::Explicit(why))
        } else if let Some(token) = context
            .map(Context::token)
            .transpose()
            .map_err(Failure::Config)?
            .flatten()
        {
            (Some(token), Bearer::Context)
        } else {
            let key = login_key(context);
            match crate::credentials::bearer(&key).await? {
                Some(token) => (Some(token), Bearer::Login(key)),
                None => (None, Bearer::None),
            }
        };
        match choice {
            Choice::Agent { url, .. } => Ok(Target {
                client: dv_sdk::Client::new(&url, token)?,
                kind: Kind::Agent,
                context: None,
                bearer,
            }),
            Choice::Context { context, .. } => {
                let mut builder = dv_sdk::Client::builder(&context.url).token(token);
                if let Some(ca) = &context.ca_file {
                    let pem = std::fs::read(ca).map_err(|e| {
                        Failure::Config(format!(
                            "context {:?}: cannot read its CA file {}: {e}",
                            context.name,
                            ca.display()
                        ))
                    })?;
                    builder = builder.ca_pem(pem);
                }
                Ok(Target {
                    client: builder.build()?,
                    kind: context.kind,
                    context: Some(context),
                    bearer,
                })
            }
        }
    }

    /// Refuses a call only a site's agent answers when the target is a hub.
    pub fn needs_agent(&self, what: &str) -> Result<(), Failure> {
        match self.kind {
            Kind::Agent => Ok(()),
            Kind::Hub => Err(Failure::Config(format!(
                "{what} is answered by a site's agent, not the hub\n\
                 hint: use an agent context (dv context add NAME --url URL --kind agent) or --agent URL"
            ))),
        }
    }

    /// Refuses a call only the hub answers when the target is an agent.
    pub fn needs_hub(&self, what: &str) -> Result<(), Failure> {
        match self.kind {
            Kind::Hub => Ok(()),
            Kind::Agent => Err(Failure::Config(format!(
                "{what} is answered by the hub, not a site's agent\n\
                 hint: use a hub context (dv context use NAME, or --context NAME), \
                 or add one: dv context add NAME --url https://HUB:7443 --token-file FILE"
            ))),
        }
    }

    /// Reports `failure` on stderr and returns its exit code.
    pub fn report(&self, failure: Failure) -> ExitCode {
        let e = match failure {
            Failure::Config(msg) => {
                eprint_error!("error: {msg}");
                return ExitCode::from(EXIT_USAGE);
            }
            Failure::Exit { message, code } => {
                eprintln!("error: {message}");
                return ExitCode::from(code);
            }
            Failure::Api(e) => e,
        };
        report_api(self, &e)
    }
}

/// Tells an SDK error: the server's message, a hint, the exit code.
fn report_api(target: &Target, e: &dv_sdk::Error) -> ExitCode {
    use dv_sdk::Error as E;
    let (kind, context, base) = (
        target.kind,
        target.context.as_ref(),
        target.client.base_url(),
    );
    let named = context
        .map(|c| format!(" (context {})", c.name))
        .unwrap_or_default();
    match e {
        E::Unreachable { source, .. } => {
            let hint = match (kind, context) {
                (Kind::Agent, None) => "is dv-agent running there? Point the command at it with --agent URL or DV_AGENT=URL, or use a context (dv context list).".to_owned(),
                (Kind::Agent, Some(c)) => format!("is dv-agent running there? Check the URL of context {} (dv context show {}).", c.name, c.name),
                (Kind::Hub, _) => "is dv-hub running there? Check the context's URL (dv context show), or pick another (dv context use NAME).".to_owned(),
            };
            eprint_error!(
                "error: cannot reach the {} at {base}{named}: {}\nhint: {hint}",
                kind.as_str(),
                // The transport's own text names the URL it called.
                chain(source)
            );
            ExitCode::from(EXIT_UNREACHABLE)
        }
        E::Unauthorized { message } | E::Forbidden { message } => {
            let status = e.status().unwrap_or(401);
            let hint = match (&target.bearer, context) {
                (Bearer::Explicit(why), _) => format!("the token comes from {why}; check it is this {}'s", kind.as_str()),
                (Bearer::Login(key), _) => match crate::credentials::load(key) {
                    Ok(Some(c)) => format!(
                        "you are logged in as {} (issuer {}); if that is right, ask an operator for a role (dvid role grant user:{} ...), else dvid login again",
                        c.user(), c.issuer, c.user()
                    ),
                    _ => "log in again: dvid login".to_owned(),
                },
                (_, context) => match context {
                Some(c) if c.token_file.is_some() || c.token_env.is_some() => format!(
                    "context {} sends the token from {}; make that the {}'s token (for a hub, the file hub.toml names as token_file), \
                     or re-add the context: dv context remove {0} && dv context add {0} --url {} --token-file FILE",
                    c.name,
                    c.token_source(),
                    kind.as_str(),
                    c.url
                ),
                Some(c) => format!(
                    "context {} sends no token; re-add it with one: dv context remove {0} && dv context add {0} --url {} --token-file FILE",
                    c.name, c.url
                ),
                None => "log in (dvid login), or add a context with the token: dv context add NAME --url URL --token-file FILE, then dv context use NAME".to_owned(),
                },
            };
            eprint_error!("error ({status}): {message}\nhint: {hint}");
            ExitCode::from(EXIT_AUTH)
        }
        E::InvalidUrl { .. } | E::InvalidCa { .. } | E::Setup { .. } => {
            eprint_error!(
                "error: {}{named}\nhint: fix the context (dv context show), or the --agent URL",
                chain(e)
            );
            ExitCode::from(EXIT_USAGE)
        }
        E::NoEndpoint { url } => {
            let other = match kind {
                Kind::Hub => "a site's agent (--agent URL, or a context of --kind agent)",
                Kind::Agent => "a hub (a context of --kind hub)",
            };
            eprint_error!(
                "error: the {} at {base}{named} has no endpoint {url}\nhint: this call may be answered by {other}; or the {0} is older than this dv",
                kind.as_str()
            );
            ExitCode::from(EXIT_API)
        }
        E::Decode { .. } => {
            eprint_error!(
                "error: {}\nhint: is {base} a Dataverket {} of this version?",
                chain(e),
                kind.as_str()
            );
            ExitCode::from(EXIT_API)
        }
        other => {
            match other.status() {
                Some(status) => eprint_error!("error ({status}): {other}"),
                None => eprint_error!("error: {}", chain(other)),
            }
            ExitCode::from(EXIT_API)
        }
    }
}

/// An error and its causes, `: `-separated (the SDK never repeats a cause
/// in its own text).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Why a command did not complete.
#[derive(Debug)]
pub enum Failure {
    /// The API call failed.
    Api(dv_sdk::Error),
    /// The command line or the local configuration is wrong (exit 2).
    Config(String),
    /// Anything else, with its exit code (a login that cannot be renewed,
    /// an issuer that cannot be reached).
    Exit {
        /// What happened and what to do.
        message: String,
        /// The exit code.
        code: u8,
    },
}

impl From<dv_sdk::Error> for Failure {
    fn from(e: dv_sdk::Error) -> Self {
        Failure::Api(e)
    }
}

/// Runs `f` against the chosen target on a one-thread runtime.
pub fn run_with<F>(global: &Global, f: F) -> ExitCode
where
    F: AsyncFnOnce(&Target, Format) -> Result<ExitCode, Failure>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprint_error!("error: cannot start: {e}");
            return ExitCode::from(EXIT_API);
        }
    };
    let target = match runtime.block_on(Target::resolve(global)) {
        Ok(t) => t,
        Err(Failure::Config(msg)) => {
            eprint_error!("error: {msg}");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(Failure::Exit { message, code }) => {
            eprintln!("error: {message}");
            return ExitCode::from(code);
        }
        Err(Failure::Api(e)) => {
            eprint_error!(
                "error: {}\nhint: fix the context (dv context show), or the --agent URL",
                chain(&e)
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match runtime.block_on(f(&target, global.output)) {
        Ok(code) => code,
        Err(failure) => target.report(failure),
    }
}
