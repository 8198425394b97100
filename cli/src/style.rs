//! Colours: only on a terminal, and never when `NO_COLOR` is set (any
//! non-empty value, <https://no-color.org>). Piped output is plain text
//! so scripts and logs never see escape codes.
//!
//! stdout and stderr are decided apart: `dv task list | jq` still gets a
//! red `error:` on the terminal's stderr, and `dv ... 2>log` a plain log.

use std::io::IsTerminal;

use anstyle::{AnsiColor, Style};
use comfy_table::{Cell, Color};

/// Prints an error message (`error: ...`, `error (404): ...`, with
/// `hint:` lines) on stderr, coloured when stderr is a terminal.
macro_rules! eprint_error {
    ($($arg:tt)*) => {
        $crate::style::print_error(&format!($($arg)*))
    };
}

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Whether stdout may be coloured.
pub fn stdout() -> bool {
    !no_color() && std::io::stdout().is_terminal()
}

/// Whether stderr may be coloured.
pub fn stderr() -> bool {
    !no_color() && std::io::stderr().is_terminal()
}

const ERROR: Style = AnsiColor::Red.on_default().bold();
const HINT: Style = AnsiColor::Cyan.on_default();

fn paint(text: &str, style: Style) -> String {
    format!("{}{text}{}", style.render(), style.render_reset())
}

/// Prints `message` on stderr: the leading `error...:` label in red and
/// each `hint:` label in cyan on a terminal; as it is otherwise.
pub fn print_error(message: &str) {
    if !stderr() {
        eprintln!("{message}");
        return;
    }
    let mut out = String::with_capacity(message.len() + 32);
    for (i, line) in message.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let label = if i == 0 && line.starts_with("error") {
            line.find(':').map(|end| (end, ERROR))
        } else if line.starts_with("hint:") {
            Some((4, HINT))
        } else {
            None
        };
        match label {
            Some((end, style)) => {
                out.push_str(&paint(&line[..end], style));
                out.push_str(&line[end..]);
            }
            None => out.push_str(line),
        }
    }
    eprintln!("{out}");
}

/// A table cell for a state (`ready`, `failed: ...`, `blocked on ...`),
/// coloured by what it means when stdout may be coloured.
pub fn state_cell(text: String) -> Cell {
    let color = stdout().then(|| state_color(&text)).flatten();
    match color {
        Some(c) => Cell::new(text).fg(c),
        None => Cell::new(text),
    }
}

/// Green for done, red for failed, yellow for waiting or blocked.
fn state_color(text: &str) -> Option<Color> {
    let word = text
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default();
    match word {
        "succeeded" | "ready" | "available" | "provisioned" | "yes" | "done" => Some(Color::Green),
        "failed" | "no" | "error" => Some(Color::Red),
        "blocked" | "pending" | "running" | "discovered" | "allocated" | "provisioning"
        | "deprovisioning" => Some(Color::Yellow),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_map_to_colours_by_their_first_word() {
        assert_eq!(state_color("failed: no BMC"), Some(Color::Red));
        assert_eq!(state_color("blocked on bmc 10.0.0.1"), Some(Color::Yellow));
        assert_eq!(state_color("succeeded"), Some(Color::Green));
        assert_eq!(state_color("whatever"), None);
    }
}
