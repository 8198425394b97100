//! Live progress of a followed task (`--wait`, `dv task watch`): every
//! transition is one line on stdout; on a terminal a spinner under them
//! shows the current step and how long the wait has taken so far.
//!
//! The spinner draws on stderr, and only when stdout and stderr are both
//! a terminal: piped or redirected output gets the transition lines alone,
//! with no cursor movement or escape codes in them.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How a followed task is shown.
#[derive(Debug)]
pub struct Progress {
    spinner: Option<ProgressBar>,
}

impl Progress {
    /// A spinner on a terminal, plain lines otherwise.
    pub fn new() -> Progress {
        let live = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let spinner = live.then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress { spinner }
    }

    /// Prints one transition line on stdout (above the spinner).
    pub fn line(&self, text: &str) {
        match &self.spinner {
            Some(s) => s.suspend(|| println!("{text}")),
            None => println!("{text}"),
        }
    }

    /// What the spinner says is going on now (nothing off a terminal: the
    /// lines already told it).
    pub fn status(&self, text: impl Into<String>) {
        if let Some(s) = &self.spinner {
            s.set_message(text.into());
        }
    }

    /// Prints a notice on stderr (above the spinner).
    pub fn suspend_eprintln(&self, text: String) {
        match &self.spinner {
            Some(s) => s.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// Removes the spinner, before the final messages.
    pub fn finish(&self) {
        if let Some(s) = &self.spinner {
            s.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
