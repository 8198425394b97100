//! How results are printed: a table on a terminal, JSON otherwise, or what
//! `-o` asks for. Colours are never used off a terminal (there are none yet).
//! Typed answers are printed through their JSON form, so `-o json` is
//! exactly the API's body.

use std::io::IsTerminal;

use clap::ValueEnum;
use comfy_table::Table;
use serde_json::Value;

/// `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table on a terminal, JSON when piped.
    Auto,
    /// Aligned columns.
    Table,
    /// JSON, for scripts.
    Json,
    /// YAML.
    Yaml,
}

impl Format {
    /// `Auto` decided.
    pub fn resolve(self) -> Format {
        match self {
            Format::Auto if std::io::stdout().is_terminal() => Format::Table,
            Format::Auto => Format::Json,
            f => f,
        }
    }
}

/// Prints `value` as `format`; `table` renders the table form.
pub fn print(value: &Value, format: Format, table: impl FnOnce(&Value) -> Table) {
    match format.resolve() {
        Format::Table | Format::Auto => println!("{}", table(value)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Format::Yaml => print!("{}", yaml_serde::to_string(value).unwrap_or_default()),
    }
}

/// Prints a typed API answer as `format` (tables are drawn from its JSON
/// form, which is the API's own).
pub fn print_typed<T: serde::Serialize>(
    value: &T,
    format: Format,
    table: impl FnOnce(&Value) -> Table,
) {
    let v = serde_json::to_value(value).unwrap_or(Value::Null);
    print(&v, format, table);
}

/// A value as a cell: strings bare, null empty, the rest as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A two-column table of an object's fields.
pub fn fields(v: &Value) -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    if let Some(map) = v.as_object() {
        for (k, val) in map {
            let shown = match val {
                Value::Object(_) => serde_json::to_string(val).unwrap_or_default(),
                other => cell(other),
            };
            t.add_row(vec![k.clone(), shown]);
        }
    }
    t
}
