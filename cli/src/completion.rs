//! `completion bash|zsh|fish|...`: the shell completion script of the name
//! it runs under (`dvce completion bash` completes `dvce`, `dv completion
//! bash` completes `dv` and its families). Every name gets the subcommand
//! here, at parse time, so no family has to declare it.

use std::process::ExitCode;

use clap::{Arg, ArgMatches, Command, value_parser};
use clap_complete::Shell;

const NAME: &str = "completion";

/// `cmd` with the `completion` subcommand added.
pub fn with_completion(cmd: Command) -> Command {
    let name = cmd.get_name().to_owned();
    cmd.subcommand(
        Command::new(NAME)
            .about("Print the shell completion script for this command")
            .after_help(format!(
                "Examples:\n  \
                 {name} completion bash > ~/.local/share/bash-completion/completions/{name}\n  \
                 {name} completion zsh > ~/.zfunc/_{name}      (with fpath+=~/.zfunc before compinit)\n  \
                 {name} completion fish > ~/.config/fish/completions/{name}.fish"
            ))
            .arg(
                Arg::new("shell")
                    .required(true)
                    .value_parser(value_parser!(Shell))
                    .help("The shell"),
            ),
    )
}

/// The shell `completion` asked for, if that is the command.
pub fn requested(matches: &ArgMatches) -> Option<Shell> {
    match matches.subcommand() {
        Some((NAME, m)) => m.get_one::<Shell>("shell").copied(),
        _ => None,
    }
}

/// Prints `cmd`'s completion script for `shell` on stdout.
pub fn print(shell: Shell, cmd: Command) -> ExitCode {
    let mut cmd = with_completion(cmd);
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
    ExitCode::SUCCESS
}
