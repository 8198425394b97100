//! The `dv-hub` binary: `serve` one replica, print a hub node's
//! nats-server configuration (`nats-config`), print the API's OpenAPI
//! document (`openapi`), or create the hub's PKI (`pki init`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dv_hub::config::HubConfig;

#[derive(Debug, Parser)]
#[command(
    name = "dv-hub",
    version,
    about = "The Dataverket hub: every site's inventory, tasks and commands"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run one hub replica.
    ///
    /// Example: dv-hub serve --config /etc/dv-hub/hub.toml --replica hub-1
    Serve {
        /// hub.toml
        #[arg(long, default_value = "/etc/dv-hub/hub.toml")]
        config: PathBuf,
        /// Which [[replicas]] entry this process is.
        #[arg(long)]
        replica: String,
        /// Where to keep the read model (default <data_dir>/replicas/<name>).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print the nats-server configuration of one hub node.
    ///
    /// Example: dv-hub nats-config --config hub.toml --node hub-2 > hub-2.conf
    NatsConfig {
        /// hub.toml
        #[arg(long, default_value = "/etc/dv-hub/hub.toml")]
        config: PathBuf,
        /// Which [[nats]] node.
        #[arg(long)]
        node: String,
    },
    /// Print the API's OpenAPI document (JSON); docs/api/hub-openapi.json
    /// is this output.
    ///
    /// Example: dv-hub openapi > docs/api/hub-openapi.json
    Openapi,
    /// The hub's certificate authority and identities.
    Pki {
        #[command(subcommand)]
        command: PkiCmd,
    },
    /// Check hub.toml and exit (0 when valid).
    CheckConfig {
        /// hub.toml
        #[arg(long, default_value = "/etc/dv-hub/hub.toml")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PkiCmd {
    /// Create a CA and, signed by it, a certificate for every nats node and
    /// replica, and a NATS user (password, client certificate) per site.
    ///
    /// Example: dv-hub pki init --config hub.toml --out /etc/dv-hub/pki
    Init {
        /// hub.toml
        #[arg(long, default_value = "/etc/dv-hub/hub.toml")]
        config: PathBuf,
        /// The directory to write (then name it in hub.toml's [tls] dir).
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing CA (re-issues everything; every site needs
        /// its new files).
        #[arg(long)]
        force: bool,
    },
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn load(path: &std::path::Path) -> Result<HubConfig, ExitCode> {
    HubConfig::from_file(path).map_err(|e| {
        eprintln!("dv-hub: {}", error_chain(&e));
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Openapi => match dv_hub::api::openapi().to_pretty_json() {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("dv-hub: cannot render the OpenAPI document: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::CheckConfig { config } => match load(&config) {
            Ok(c) => {
                let identity = match &c.identity {
                    Some(i) => format!(
                        "OIDC issuer {} (audience {}, {} bootstrap operators)",
                        i.issuer,
                        i.audience,
                        i.platform_operators.len()
                    ),
                    None => "no OIDC issuer".to_owned(),
                };
                println!(
                    "{}: ok ({} nats nodes, {} replicas, {} sites; {identity}; \
                     limits {}/s, burst {})",
                    config.display(),
                    c.nats.len(),
                    c.replicas.len(),
                    c.sites.len(),
                    c.limits.requests_per_second,
                    c.limits.burst
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Cmd::NatsConfig { config, node } => {
            let c = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let Some(n) = c.node(&node) else {
                let names: Vec<&str> = c.nats.iter().map(|n| n.name.as_str()).collect();
                eprintln!(
                    "dv-hub: {} has no [[nats]] node {node:?}; it lists {}",
                    config.display(),
                    names.join(", ")
                );
                return ExitCode::from(2);
            };
            match dv_hub::nats_config::render(&c, n) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dv-hub: {}", error_chain(&e));
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Pki {
            command: PkiCmd::Init { config, out, force },
        } => {
            let c = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match dv_hub::pki::init(&c, &out, force) {
                Ok(written) => {
                    println!(
                        "{}: CA, {} node and {} replica certificates, {} site identities ({} files)",
                        out.display(),
                        c.nats.len(),
                        c.replicas.len(),
                        c.sites.len(),
                        written.files.len()
                    );
                    if c.tls.is_none() {
                        println!(
                            "hub.toml has no [tls] yet: add `[tls]\ndir = \"{}\"` to use it",
                            out.display()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dv-hub: {}", error_chain(&e));
                    // 2: refused (an existing CA), as for a bad config.
                    ExitCode::from(if matches!(e, dv_hub::pki::PkiError::CaExists(_)) {
                        2
                    } else {
                        1
                    })
                }
            }
        }
        Cmd::Serve {
            config,
            replica,
            data_dir,
        } => {
            init_logging();
            let c = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let metrics =
                match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
                    Ok(h) => h,
                    Err(e) => {
                        eprintln!("dv-hub: cannot install the metrics recorder: {e}");
                        return ExitCode::FAILURE;
                    }
                };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("dv-hub: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let options = dv_hub::serve::Options { replica, data_dir };
            match runtime.block_on(dv_hub::serve::run(c, options, metrics)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "dv-hub stopped");
                    eprintln!("dv-hub: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("DV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder.json().init();
    }
}
