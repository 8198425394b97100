//! What loading a configuration file can go wrong with, and how it is shown.
//!
//! Every problem carries the line, column and field it is about, and
//! [`ConfigError`]'s `Display` prints one problem per line as
//! `FILE:LINE:COL: FIELD: MESSAGE`: the format compilers use, so an editor's
//! "next error" jumps straight to it. Following the project's error rule, an
//! underlying I/O error is a `#[source]` and never repeated in `Display`.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{}: cannot read the configuration file", path.display())]
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration.
    #[error("{}", Listing { path, problems })]
    Invalid {
        /// The file the problems are in.
        path: PathBuf,
        /// Every problem found, ordered by position in the file.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The exit code `dv-agent check-config` uses for this error: 1 when the
    /// file could not be read, 2 when it was read and is invalid.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfigError::Io { .. } => 1,
            ConfigError::Invalid { .. } => 2,
        }
    }

    /// The problems found, empty for an I/O error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Io { .. } => &[],
            ConfigError::Invalid { problems, .. } => problems,
        }
    }
}

/// One thing wrong with a configuration file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the file.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// The field's path, like `dhcp.subnets[1].pools[0].end`; empty for a
    /// TOML syntax error, which is about text rather than a field.
    pub field: String,
    /// What is wrong, in words an operator can act on.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Renders the problems of one file, one `FILE:LINE:COL: ...` line each.
struct Listing<'a> {
    path: &'a PathBuf,
    problems: &'a [Problem],
}

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}:{problem}", self.path.display())?;
        }
        Ok(())
    }
}

/// Problems found while checking, keyed by field path; positions are added
/// later by [`super::locate::Locator`], so the checks never deal with text.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) found: Vec<(String, String)>,
}

impl Report {
    /// Records that `field` is wrong because of `message`.
    pub(crate) fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.found.push((field.into(), message.into()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_compiler_style_line_per_problem() {
        let err = ConfigError::Invalid {
            path: PathBuf::from("site/agent.toml"),
            problems: vec![
                Problem {
                    line: 3,
                    column: 1,
                    field: String::new(),
                    message: "invalid key".into(),
                },
                Problem {
                    line: 23,
                    column: 7,
                    field: "dhcp.subnets[0].pools[0].end".into(),
                    message: "outside".into(),
                },
            ],
        };
        assert_eq!(
            err.to_string(),
            "site/agent.toml:3:1: invalid key\n\
             site/agent.toml:23:7: dhcp.subnets[0].pools[0].end: outside"
        );
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn io_display_names_the_file_but_not_the_source() {
        let err = ConfigError::Io {
            path: PathBuf::from("/nope/agent.toml"),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(
            err.to_string(),
            "/nope/agent.toml: cannot read the configuration file"
        );
        assert_eq!(err.exit_code(), 1);
    }
}
