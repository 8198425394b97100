//! `dvke` (Kubernetes clusters), `dvapp` (apps) and `dvos` (buckets), also
//! `dv ke|app|os`: offerings without a backend yet. Every command asks the
//! hub for the project's offerings and says which prerequisites are unmet
//! and how to meet them (exit 1), or that this dv cannot request it yet;
//! nothing is ever pretended to succeed ([`crate::offerings::require`]).
//!
//! The three families have the same shape (`<noun> list|create`), so one
//! macro writes each; they differ only in names and words.

/// One family: its parser (`dvke`), its `dv` subcommand arguments, its
/// `<noun> list|create` commands and `run`.
macro_rules! unserved_family {
    (
        mod $module:ident; bin $bin:literal; dv $dv:literal;
        parser $parser:ident; args $args:ident;
        noun $noun:ident $word:literal;
        about $about:literal; many $many:literal; one $one:literal;
    ) => {
        pub mod $module {
            use std::process::ExitCode;

            use clap::{Args, Parser, Subcommand};

            use crate::scope::Scope;
            use crate::target::{Global, run_with};

            const EXAMPLES: &str = concat!(
                "Examples:\n  ", $bin, " ", $word, " list --tenant acme --project web\n  ",
                $bin, " ", $word, " create demo --env prod\n  ",
                "dv offerings                      (is the offering ready for the project, and what is missing)\n  ",
                "dv ", $dv, " ", $word, " list                  (the same as ", $bin, " ", $word, " list)"
            );

            /// The family as its own binary name.
            #[derive(Debug, Parser)]
            #[command(
                name = $bin,
                version,
                about = concat!($about, ": the offering is checked with the hub; no backend yet"),
                after_help = EXAMPLES
            )]
            pub struct $parser {
                #[command(flatten)]
                pub(crate) global: Global,
                #[command(flatten)]
                pub(crate) scope: Scope,
                #[command(subcommand)]
                pub(crate) command: Command,
            }

            /// The family as a `dv` subcommand (the global options are `dv`'s).
            #[derive(Debug, Args)]
            #[command(after_help = EXAMPLES)]
            pub struct $args {
                #[command(flatten)]
                pub(crate) scope: Scope,
                #[command(subcommand)]
                pub(crate) command: Command,
            }

            #[derive(Debug, Subcommand)]
            pub(crate) enum Command {
                #[command(
                    subcommand,
                    about = concat!($about, ": list and create"),
                    after_help = concat!("Examples:\n  ", $bin, " ", $word, " list\n  ", $bin, " ", $word, " create demo --env prod")
                )]
                $noun($noun),
            }

            #[derive(Debug, Subcommand)]
            pub(crate) enum $noun {
                #[command(
                    about = concat!("The project's ", $many),
                    after_help = concat!("Example:\n  ", $bin, " ", $word, " list --tenant acme --project web")
                )]
                List,
                #[command(
                    about = concat!("Create ", $one, " in an environment of the project"),
                    after_help = concat!("Example:\n  ", $bin, " ", $word, " create demo --env prod")
                )]
                Create {
                    /// Its name.
                    name: String,
                    /// The environment (dv env list).
                    #[arg(long)]
                    env: Option<String>,
                },
            }

            /// Runs a command of the family.
            pub fn run(args: $args, global: &Global) -> ExitCode {
                run_with(global, async |target, _format| {
                    let what = match &args.command {
                        Command::$noun($noun::List) => concat!("list ", $many).to_owned(),
                        Command::$noun($noun::Create { name, env }) => match env {
                            Some(env) => format!(concat!("create ", $one, " ({}) in environment {}"), name, env),
                            None => format!(concat!("create ", $one, " ({})"), name),
                        },
                    };
                    crate::offerings::require(target, &args.scope, $bin, $about, &what).await
                })
            }
        }
    };
}

unserved_family! {
    mod ke; bin "dvke"; dv "ke";
    parser DvKe; args KeArgs;
    noun Cluster "cluster";
    about "Kubernetes clusters"; many "Kubernetes clusters"; one "a Kubernetes cluster";
}

unserved_family! {
    mod app; bin "dvapp"; dv "app";
    parser DvApp; args AppArgs;
    noun App "app";
    about "Apps and web hosting"; many "apps"; one "an app";
}

unserved_family! {
    mod os; bin "dvos"; dv "os";
    parser DvOs; args OsArgs;
    noun Bucket "bucket";
    about "Buckets (S3-compatible object storage)"; many "buckets"; one "a bucket";
}
