//! `dv-agent`: the site agent's command line.
//!
//! Exit codes: 0 success; 1 runtime failure (cannot open the store, cannot
//! bind, unreadable file); 2 invalid configuration or usage.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use dv_agent::config::{Config, ConfigError};
use dv_agent::serve::{self, Overrides};
use dv_agent::telemetry::{self, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "dv-agent",
    version,
    about = "The Dataverket site agent: DHCP, DNS, TFTP/HTTP boot, BMCs and switches for one site",
    after_help = "Examples:\n  dv-agent check-config /etc/dataverket/agent.toml\n  dv-agent serve --config /etc/dataverket/agent.toml\n  dv-agent nats-config --config agent.toml --hub nats-leaf://hub.example:7422 > leaf.conf\n  dv-agent openapi > docs/api/agent-openapi.json\n  DV_LOG=debug dv-agent serve --config agent.toml --log-format json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the site described by a config file until SIGTERM or Ctrl-C.
    Serve {
        /// The site's agent.toml.
        #[arg(long, short, env = "DV_AGENT_CONFIG")]
        config: PathBuf,
        /// Use this data directory instead of the config's site.data_dir.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Listen for HTTP here instead of the config's http.listen.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Serve DHCP even if another DHCP server answers on the segment.
        #[arg(long)]
        force_dhcp: bool,
        /// Listen for DNS here instead of the config's dns.listen (repeatable).
        #[arg(long)]
        dns_listen: Vec<SocketAddr>,
        /// Listen for TFTP here instead of the config's tftp.listen.
        #[arg(long)]
        tftp_listen: Option<SocketAddr>,
        /// Log format; auto is pretty on a terminal and JSON otherwise.
        #[arg(long, value_enum, default_value_t = LogFormat::Auto)]
        log_format: LogFormat,
    },
    /// Validate a config file and print what it describes (exit 2 if invalid).
    CheckConfig {
        /// The agent.toml to check.
        file: PathBuf,
    },
    /// Print the nats-server configuration of the site's leaf node, generated
    /// from the agent's [nats] section (exit 2 if the config is invalid or has
    /// no [nats] section).
    NatsConfig {
        /// The site's agent.toml.
        #[arg(long, short, env = "DV_AGENT_CONFIG")]
        config: PathBuf,
        /// A hub leaf-node URL (nats-leaf://host:port), instead of nats.hub
        /// (repeatable).
        #[arg(long)]
        hub: Vec<String>,
    },
    /// Print the `/v1` API's OpenAPI document (JSON);
    /// docs/api/agent-openapi.json is this output.
    ///
    /// Example: dv-agent openapi > docs/api/agent-openapi.json
    Openapi,
    /// Print the agent's version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("dv-agent {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::CheckConfig { file } => check_config(&file),
        Command::Openapi => match dv_agent::http::openapi().to_pretty_json() {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("dv-agent: cannot render the OpenAPI document: {e}");
                ExitCode::FAILURE
            }
        },
        Command::NatsConfig { config, hub } => nats_config(&config, &hub),
        Command::Serve {
            config,
            data_dir,
            listen,
            force_dhcp,
            dns_listen,
            tftp_listen,
            log_format,
        } => {
            telemetry::init_logging(log_format);
            let config = match Config::from_file(&config) {
                Ok(c) => c,
                Err(e) => return config_failure(&e),
            };
            match run_serve(
                config,
                Overrides {
                    data_dir,
                    listen,
                    force_dhcp,
                    dns_listen: (!dns_listen.is_empty()).then_some(dns_listen),
                    tftp_listen,
                },
            ) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let chain = format!("{e:#}");
                    tracing::error!(error = %chain, "agent failed");
                    eprintln!("dv-agent: {chain}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match Config::from_file(file) {
        Ok(config) => {
            println!("{}: ok", file.display());
            println!("{}", config.summary());
            ExitCode::SUCCESS
        }
        Err(e) => config_failure(&e),
    }
}

fn nats_config(file: &std::path::Path, hub: &[String]) -> ExitCode {
    let config = match Config::from_file(file) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let Some(nats) = &config.nats else {
        eprintln!(
            "{}: no [nats] section, so this site does not federate; add [nats] (see docs/config.md)",
            file.display()
        );
        return ExitCode::from(2);
    };
    let mut urls = Vec::with_capacity(hub.len());
    for (i, url) in hub.iter().enumerate() {
        match dv_agent::config::leaf_url(url) {
            Ok(u) => urls.push(u),
            Err(e) => {
                eprintln!("--hub[{i}]: {e}");
                return ExitCode::from(2);
            }
        }
    }
    match dv_agent::federation::leaf_config::render(&config, nats, &urls) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", telemetry::error_chain(&e));
            ExitCode::from(2)
        }
    }
}

fn config_failure(e: &ConfigError) -> ExitCode {
    eprintln!("{}", telemetry::error_chain(e));
    ExitCode::from(e.exit_code())
}

fn run_serve(config: Config, overrides: Overrides) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("dv-agent")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let metrics = telemetry::init_metrics().context("cannot install the metrics recorder")?;
        let shutdown = shutdown_signal()?;
        serve::run(config, overrides, metrics, shutdown).await?;
        Ok(())
    })
}

/// Resolves on the first SIGTERM or SIGINT. Installed before serving starts, so
/// a signal that arrives during start-up is not missed.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    Ok(async move {
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = which, "shutdown requested");
    })
}
