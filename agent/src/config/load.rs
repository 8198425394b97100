//! Reading a file and running the pipeline: syntax, shape, values, rules.
//!
//! Also where toml's and serde's errors become [`Problem`]s: the span toml
//! gives is turned into a line, a column and the field path at that spot.

use std::path::Path;

use serde::Deserialize;

use super::error::Report;
use super::locate::Locator;
use super::{Config, ConfigError, Problem, convert, validate, wire};

impl Config {
    /// Reads and validates the file at `path`.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        match String::from_utf8(bytes) {
            Ok(text) => Config::parse(&text, path),
            Err(err) => {
                let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
                let valid = std::str::from_utf8(valid).unwrap_or_default();
                let (line, column) = Locator::text_only(valid).position(valid.len());
                Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    problems: vec![Problem {
                        line,
                        column,
                        field: String::new(),
                        message: "the file is not UTF-8 text, which TOML requires".into(),
                    }],
                })
            }
        }
    }

    /// Validates `text`; `path` names the file in errors, and a relative
    /// `data_dir` is resolved against its directory.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |problems| ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        };
        let table = match toml::de::DeTable::parse(text) {
            Ok(table) => table,
            Err(err) => return Err(invalid(vec![syntax_problem(text, &err)])),
        };
        let locator = Locator::new(text, &table);
        let wire = match wire::Config::deserialize(toml::de::Deserializer::from(table)) {
            Ok(wire) => wire,
            Err(err) => return Err(invalid(vec![shape_problem(&locator, &err)])),
        };

        let base_dir = path.parent().unwrap_or(Path::new(""));
        let mut report = Report::default();
        if let Some(config) = convert::convert(wire, base_dir, &mut report)
            && report.is_empty()
        {
            validate::validate(&config, &mut report);
            if report.is_empty() {
                return Ok(config);
            }
        }
        let mut problems: Vec<Problem> = (report.found.into_iter())
            .map(|(field, message)| locator.problem(field, message))
            .collect();
        if problems.is_empty() {
            // `convert` returns None only after reporting; keep that promise
            // visible rather than returning an error with no problems.
            problems.push(locator.problem(String::new(), "invalid configuration".into()));
        }
        problems.sort_by_key(|p| (p.line, p.column));
        Err(invalid(problems))
    }
}

/// A TOML syntax error: about text, so it has a position but no field.
fn syntax_problem(text: &str, err: &toml::de::Error) -> Problem {
    let offset = err.span().map_or(0, |span| span.start);
    let (line, column) = Locator::text_only(text).position(offset);
    Problem {
        line,
        column,
        field: String::new(),
        message: format!("TOML syntax: {}", err.message()),
    }
}

/// An unknown key, a wrong TOML type or a missing key, from serde.
fn shape_problem(locator: &Locator<'_>, err: &toml::de::Error) -> Problem {
    let offset = err.span().map_or(0, |span| span.start);
    let mut field = locator.path_at(offset).unwrap_or_default();
    // serde's message for a missing key names it, but the span is its table's
    // header: add the key so the field is the missing one, not its parent.
    let missing = (err.message().strip_prefix("missing field `"))
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    if let Some(name) = missing {
        field = if field.is_empty() {
            name.to_owned()
        } else {
            format!("{field}.{name}")
        };
    }
    let (line, column) = locator.position(offset);
    Problem {
        line,
        column,
        field,
        message: toml_words(err.message()),
    }
}

/// serde speaks of maps, sequences, `i64` and struct names; an operator
/// editing TOML knows tables, arrays and integers.
fn toml_words(message: &str) -> String {
    let mut out = message
        .replace("invalid type: map", "invalid type: table")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("expected a sequence", "expected an array")
        .replace("floating point", "float")
        .replace("expected i64", "expected an integer");
    if let Some(at) = out.find("expected struct ") {
        out.replace_range(at.., "expected a table");
    }
    out
}
