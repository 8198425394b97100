//! Where in the file a field is: field paths to line and column, and back.
//!
//! The file is parsed once into toml's spanned document tree
//! ([`toml::de::DeTable`]), and that tree answers both questions:
//! - a check reports `dhcp.subnets[0].pools[0].end`; [`Locator::problem`] walks
//!   the tree to that value and takes its position. A field that is not in the
//!   file (a missing key, a default that conflicts) falls back to the nearest
//!   parent that is, which for a `[table]` is its header line;
//! - serde reports a byte span; [`Locator::path_at`] finds the most specific
//!   key or value at that span, giving the field path toml itself does not
//!   expose with array indices.
//!
//! The alternative, `Spanned<T>` around every wire field, would put spans into
//! every check; keeping paths as plain strings leaves the checks about values.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::Problem;

/// One segment of a field path.
#[derive(Debug, PartialEq, Eq)]
enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

/// Splits `dhcp.subnets[1].pools` into keys and indices. Keys in this schema
/// never contain `.` or `[`, so no quoting is needed.
fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some((index, tail)) = rest.split_once(']') {
            if let Ok(i) = index.parse() {
                out.push(Segment::Index(i));
            }
            rest = tail.strip_prefix('[').unwrap_or(tail);
        }
    }
    out
}

/// Maps field paths and byte offsets of one file to positions.
#[derive(Debug)]
pub(crate) struct Locator<'t> {
    text: &'t str,
    root: Option<Spanned<DeValue<'t>>>,
}

impl<'t> Locator<'t> {
    /// A locator that knows only the text (for syntax errors, when there is no
    /// tree): every field maps to the start of the file.
    pub(crate) fn text_only(text: &'t str) -> Self {
        Locator { text, root: None }
    }

    /// A locator over a parsed document.
    pub(crate) fn new(text: &'t str, table: &Spanned<DeTable<'t>>) -> Self {
        let root = Spanned::new(table.span(), DeValue::Table(table.get_ref().clone()));
        Locator {
            text,
            root: Some(root),
        }
    }

    /// 1-based line and character column of byte `offset`.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        // Spans from toml sit on character boundaries; be safe anyway, since a
        // panic here would hide the very error being reported.
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// The span of `path`, or of its nearest ancestor present in the file.
    fn span_of(&self, path: &str) -> Range<usize> {
        let Some(mut node) = self.root.as_ref() else {
            return 0..0;
        };
        let mut span = node.span();
        for segment in segments(path) {
            let next = match (segment, node.get_ref()) {
                (Segment::Key(key), DeValue::Table(table)) => table.get(key),
                (Segment::Index(i), DeValue::Array(array)) => array.get(i),
                _ => None,
            };
            match next {
                Some(child) => {
                    node = child;
                    // An implicit table (`dhcp` in `[[dhcp.subnets]]`) has a
                    // span inside a header; any real span beats the root's.
                    span = child.span();
                }
                None => break,
            }
        }
        span
    }

    /// A problem about `field`, positioned at the field's value (or its
    /// nearest ancestor present in the file).
    pub(crate) fn problem(&self, field: String, message: String) -> Problem {
        let (line, column) = self.position(self.span_of(&field).start);
        Problem {
            line,
            column,
            field,
            message,
        }
    }

    /// The field path of the most specific key or value whose span holds
    /// `offset`; `None` when nothing does (the root, or no tree).
    pub(crate) fn path_at(&self, offset: usize) -> Option<String> {
        let root = self.root.as_ref()?;
        let mut best: Option<(usize, String)> = None;
        visit(root, String::new(), &mut |path, span| {
            let hit = span.contains(&offset) || (span.is_empty() && span.start == offset);
            if !hit || path.is_empty() {
                return;
            }
            let len = span.len();
            // Smaller spans are more specific; on a tie (a `[[header]]` is the
            // span of both the array and its element) the deeper path wins.
            let better = match &best {
                None => true,
                Some((best_len, best_path)) => {
                    len < *best_len || (len == *best_len && path.len() > best_path.len())
                }
            };
            if better {
                best = Some((len, path.to_owned()));
            }
        });
        best.map(|(_, path)| path)
    }
}

/// Calls `f` with the path and span of every key and value under `node`.
fn visit(node: &Spanned<DeValue<'_>>, path: String, f: &mut dyn FnMut(&str, Range<usize>)) {
    f(&path, node.span());
    match node.get_ref() {
        DeValue::Table(table) => {
            for (key, value) in table.iter() {
                let child = if path.is_empty() {
                    key.get_ref().to_string()
                } else {
                    format!("{path}.{}", key.get_ref())
                };
                f(&child, key.span());
                visit(value, child, f);
            }
        }
        DeValue::Array(array) => {
            for (i, value) in array.iter().enumerate() {
                visit(value, format!("{path}[{i}]"), f);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DOC: &str = "# comment\n[site]\nname = \"lab\"\n\n[[dhcp.subnets]]\nprefix = \"p\"\n\n[[dhcp.subnets.pools]]\nstart = \"a\"\nend = \"b\"\n\n[[dhcp.subnets]]\npools = [{ start = \"x\", end = \"ÿ\" }]\n";

    fn with<R>(f: impl FnOnce(&Locator<'_>) -> R) -> R {
        let table = DeTable::parse(DOC).unwrap();
        f(&Locator::new(DOC, &table))
    }

    #[test]
    fn splits_paths() {
        use Segment::*;
        assert_eq!(
            segments("dhcp.subnets[1].pools[0].end"),
            vec![
                Key("dhcp"),
                Key("subnets"),
                Index(1),
                Key("pools"),
                Index(0),
                Key("end")
            ]
        );
        assert_eq!(segments("a[1][2]"), vec![Key("a"), Index(1), Index(2)]);
    }

    #[test]
    fn finds_values_and_falls_back_to_headers() {
        with(|loc| {
            let at = |p: &str| {
                let problem = loc.problem(p.into(), String::new());
                (problem.line, problem.column)
            };
            assert_eq!(at("site.name"), (3, 8));
            assert_eq!(at("dhcp.subnets[0].pools[0].end"), (10, 7));
            assert_eq!(at("dhcp.subnets[1].pools[0].end"), (13, 31));
            // Missing key: its table's header. Missing section: the file start.
            assert_eq!(at("site.domain"), (2, 1));
            assert_eq!(at("dhcp.subnets[0].router"), (5, 1));
            assert_eq!(at("management.gateway"), (1, 1));
        });
    }

    #[test]
    fn maps_offsets_back_to_paths() {
        with(|loc| {
            let offset = |needle: &str| DOC.find(needle).unwrap();
            assert_eq!(
                loc.path_at(offset("\"b\"")).unwrap(),
                "dhcp.subnets[0].pools[0].end"
            );
            assert_eq!(
                loc.path_at(offset("end = \"b\"")).unwrap(),
                "dhcp.subnets[0].pools[0].end"
            );
            assert_eq!(
                loc.path_at(offset("[[dhcp.subnets.pools]]")).unwrap(),
                "dhcp.subnets[0].pools[0]"
            );
            assert_eq!(
                loc.path_at(offset("\"x\"")).unwrap(),
                "dhcp.subnets[1].pools[0].start"
            );
            assert_eq!(loc.path_at(0), None);
        });
    }

    #[test]
    fn columns_count_characters() {
        let loc = Locator::text_only("a = \"ÿÿ\" x");
        assert_eq!(loc.position("a = \"ÿÿ\" ".len()), (1, 10));
        assert_eq!(loc.position(999), (1, 11));
    }
}
