//! Diagnostics: what `gatewayc check` reports, with a stable code, a location and a hint.
//!
//! Every stage pushes into one [`Diagnostics`] list instead of stopping at the first
//! problem. A location is a file and a JSON pointer; line and column are looked up only when
//! a diagnostic is rendered, so a clean check never pays for a position map.
//!
//! A finding is reported once per place: a setting that many operations inherit (a typo in
//! `defaults.upstream`) is checked for each of them, but the same code with the same
//! message at the same location is kept only the first time it is pushed.

use std::collections::HashSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::spec::source::{Pos, Sources};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The gateway cannot be generated.
    Error,
    /// The gateway can be generated, but the spec is probably not what its author meant.
    Warning,
}

/// Where in the sources a diagnostic points.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// Index into [`Sources`].
    pub file: usize,
    /// RFC 6901 pointer to the node (`""` for the document).
    pub pointer: String,
    /// Point at the mapping key rather than its value (for unknown or duplicate keys).
    pub key: bool,
    /// An exact position, when the pointer cannot express it (syntax errors).
    pub pos: Option<Pos>,
}

impl Location {
    /// The value at `pointer` in `file`.
    pub fn value(file: usize, pointer: impl Into<String>) -> Self {
        Location {
            file,
            pointer: pointer.into(),
            key: false,
            pos: None,
        }
    }

    /// The key of the member at `pointer` in `file`.
    pub fn key(file: usize, pointer: impl Into<String>) -> Self {
        Location {
            file,
            pointer: pointer.into(),
            key: true,
            pos: None,
        }
    }
}

/// One finding.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code, `E####` or `W####`; documented in `docs/diagnostics.md`.
    pub code: &'static str,
    /// What is wrong, without a trailing period.
    pub message: String,
    /// Where, when it has a place in a file.
    pub location: Option<Location>,
    /// How to fix it.
    pub hint: Option<String>,
    /// Other places that matter (the first definition of a duplicate, ...).
    pub related: Vec<(Location, String)>,
}

impl Diagnostic {
    /// An error at `location`.
    pub fn error(
        code: &'static str,
        location: Option<Location>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            location,
            hint: None,
            related: Vec::new(),
        }
    }

    /// A warning at `location`.
    pub fn warning(
        code: &'static str,
        location: Option<Location>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, location, message)
        }
    }

    /// Adds a hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a related location.
    #[must_use]
    pub fn related(mut self, location: Location, note: impl Into<String>) -> Self {
        self.related.push((location, note.into()));
        self
    }
}

/// The findings of one compilation.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    /// The code, message and location of each finding kept (see [`Diagnostics::push`]).
    seen: HashSet<(&'static str, String, Option<Location>)>,
}

impl Diagnostics {
    /// Records a finding, unless one with the same code and message was already recorded
    /// at the same location: then the first is kept (with its hint and related
    /// locations) and this one is dropped.
    pub fn push(&mut self, d: Diagnostic) {
        if self
            .seen
            .insert((d.code, d.message.clone(), d.location.clone()))
        {
            self.items.push(d);
        }
    }

    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// All findings, in the order they were found.
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    /// Number of errors and of warnings.
    pub fn counts(&self) -> (usize, usize) {
        let errors = self
            .items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        (errors, self.items.len() - errors)
    }

    /// Moves every finding of `other` into `self`, except those `self` already has.
    pub fn extend(&mut self, other: Diagnostics) {
        for d in other.items {
            self.push(d);
        }
    }

    /// Sorts findings by file and position so output is stable and reads top to bottom.
    pub fn sort(&mut self, sources: &Sources) {
        let mut keyed: Vec<_> = std::mem::take(&mut self.items)
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                let key = d
                    .location
                    .as_ref()
                    .map(|l| (l.file, sources.locate(l).map(|p| (p.line, p.col))));
                (key, i, d)
            })
            .collect();
        keyed.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        self.items = keyed.into_iter().map(|(_, _, d)| d).collect();
    }

    /// Renders every finding the way rustc does, with the source line and a summary.
    pub fn render_human(&self, sources: &Sources) -> String {
        let mut out = String::new();
        for d in &self.items {
            render_one(&mut out, d, sources);
        }
        let (errors, warnings) = self.counts();
        let plural = |n: usize, w: &str| {
            if n == 1 {
                format!("1 {w}")
            } else {
                format!("{n} {w}s")
            }
        };
        match (errors, warnings) {
            (0, 0) => {}
            (0, w) => {
                let _ = writeln!(out, "warning: {} emitted", plural(w, "warning"));
            }
            (e, w) => {
                let _ = write!(
                    out,
                    "error: could not compile the gateway due to {}",
                    plural(e, "error")
                );
                if w > 0 {
                    let _ = write!(out, "; {} emitted", plural(w, "warning"));
                }
                out.push('\n');
            }
        }
        out
    }

    /// Renders every finding as a JSON array (the `diagnostics` of
    /// `gatewayc check --format json`).
    pub fn render_json(&self, sources: &Sources) -> String {
        serde_json::to_string_pretty(&self.to_json(sources)).unwrap_or_else(|_| "[]".to_owned())
    }

    /// Every finding as a JSON array: `severity`, `code`, `message`, `location` (`file`,
    /// `pointer`, `line`, `column`), `hint`, `related`.
    pub fn to_json<'a>(&'a self, sources: &'a Sources) -> serde_json::Value {
        #[derive(Serialize)]
        struct Loc<'a> {
            file: &'a str,
            pointer: &'a str,
            line: Option<usize>,
            column: Option<usize>,
        }
        #[derive(Serialize)]
        struct Related<'a> {
            location: Loc<'a>,
            message: &'a str,
        }
        #[derive(Serialize)]
        struct Wire<'a> {
            severity: Severity,
            code: &'a str,
            message: &'a str,
            location: Option<Loc<'a>>,
            hint: Option<&'a str>,
            related: Vec<Related<'a>>,
        }
        let loc = |l: &'a Location| -> Loc<'a> {
            let pos = sources.locate(l);
            Loc {
                file: sources.display(l.file),
                pointer: &l.pointer,
                line: pos.map(|p| p.line),
                column: pos.map(|p| p.col),
            }
        };
        let wire: Vec<Wire<'_>> = self
            .items
            .iter()
            .map(|d| Wire {
                severity: d.severity,
                code: d.code,
                message: &d.message,
                location: d.location.as_ref().map(loc),
                hint: d.hint.as_deref(),
                related: d
                    .related
                    .iter()
                    .map(|(l, m)| Related {
                        location: loc(l),
                        message: m,
                    })
                    .collect(),
            })
            .collect();
        serde_json::to_value(&wire).unwrap_or_else(|_| serde_json::Value::Array(Vec::new()))
    }
}

fn render_one(out: &mut String, d: &Diagnostic, sources: &Sources) {
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let _ = writeln!(out, "{sev}[{}]: {}", d.code, d.message);
    // One gutter width for every snippet of the diagnostic, as rustc does.
    let gutter = d
        .location
        .iter()
        .chain(d.related.iter().map(|(l, _)| l))
        .filter_map(|l| sources.locate(l))
        .map(|p| p.line.to_string().len())
        .max()
        .unwrap_or(1);
    if let Some(loc) = &d.location {
        render_snippet(out, loc, None, gutter, sources);
    }
    for (loc, note) in &d.related {
        render_snippet(out, loc, Some(note), gutter, sources);
    }
    if let Some(hint) = &d.hint {
        let _ = writeln!(out, "{} = help: {hint}", " ".repeat(gutter));
    }
    out.push('\n');
}

fn render_snippet(
    out: &mut String,
    loc: &Location,
    note: Option<&str>,
    gutter: usize,
    sources: &Sources,
) {
    let file = sources.display(loc.file);
    let pointer = if loc.pointer.is_empty() {
        "#".to_owned()
    } else {
        format!("#{}", loc.pointer)
    };
    let Some(pos) = sources.locate(loc) else {
        let _ = writeln!(out, "{}--> {file} (at {pointer})", " ".repeat(gutter));
        if let Some(note) = note {
            let _ = writeln!(out, "{} = note: {note}", " ".repeat(gutter));
        }
        return;
    };
    let _ = writeln!(
        out,
        "{}--> {file}:{}:{} (at {pointer})",
        " ".repeat(gutter),
        pos.line,
        pos.col
    );
    let Some(line) = sources.line_text(loc.file, pos.line) else {
        return;
    };
    // Long lines (minified JSON) are shown as a window around the column.
    let chars: Vec<char> = line.chars().collect();
    let start = pos.col.saturating_sub(1).saturating_sub(40);
    let end = (start + 100).min(chars.len());
    let shown: String = chars[start.min(chars.len())..end].iter().collect();
    let prefix = if start > 0 { "..." } else { "" };
    let pad = " ".repeat(gutter);
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{:>gutter$} | {prefix}{}", pos.line, shown.trim_end());
    let caret_col = pos.col.saturating_sub(1) - start + prefix.len();
    let width = pos
        .len
        .clamp(1, end.saturating_sub(pos.col.saturating_sub(1)).max(1));
    let label = note.map(|n| format!(" {n}")).unwrap_or_default();
    let _ = writeln!(
        out,
        "{pad} | {}{}{label}",
        " ".repeat(caret_col),
        "^".repeat(width)
    );
}
