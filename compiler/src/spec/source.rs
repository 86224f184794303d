//! The text of every file read, and the map from JSON pointer to line and column.
//!
//! The map is built on first use, by walking the file again with position tracking: a spec
//! that checks clean never builds it.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::diagnostic::Location;

/// A position in a file: 1-based line and column (in characters), and a length in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
    /// Length of the highlighted text, in characters.
    pub len: usize,
}

/// Where a node and, for a mapping member, its key are.
#[derive(Debug, Clone, Copy)]
pub struct NodeSpan {
    /// The key of the member (absent for array items and the root).
    pub key: Option<Pos>,
    /// The value.
    pub value: Pos,
}

/// Pointer → span, for one file.
pub type SpanMap = HashMap<String, NodeSpan>;

/// How a file is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.json` files.
    Json,
    /// Everything else.
    Yaml,
}

/// One file's text.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as shown to users.
    pub display: String,
    /// The full text.
    pub text: String,
    /// How it is parsed.
    pub format: Format,
    spans: OnceLock<SpanMap>,
}

/// Every file read by one compilation.
#[derive(Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    /// Adds a file and returns its index.
    pub fn add(&mut self, display: String, text: String, format: Format) -> usize {
        self.files.push(SourceFile {
            display,
            text,
            format,
            spans: OnceLock::new(),
        });
        self.files.len() - 1
    }

    /// The file at `index`.
    pub fn file(&self, index: usize) -> &SourceFile {
        &self.files[index]
    }

    /// The number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file was read.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The path of file `index` as shown to users.
    pub fn display(&self, index: usize) -> &str {
        self.files
            .get(index)
            .map_or("<unknown>", |f| f.display.as_str())
    }

    /// Line `line` (1-based) of file `index`, without its newline.
    pub fn line_text(&self, index: usize, line: usize) -> Option<&str> {
        self.files
            .get(index)?
            .text
            .lines()
            .nth(line.checked_sub(1)?)
    }

    /// The position a location points at, if the pointer exists in the file.
    pub fn locate(&self, loc: &Location) -> Option<Pos> {
        if let Some(pos) = loc.pos {
            return Some(pos);
        }
        let file = self.files.get(loc.file)?;
        let spans = file.spans.get_or_init(|| match file.format {
            Format::Json => super::json::spans(&file.text),
            Format::Yaml => super::yaml::spans(&file.text),
        });
        // A pointer to a member that does not exist points at its parent object instead,
        // so "missing key" diagnostics still show a place.
        let mut pointer = loc.pointer.as_str();
        loop {
            if let Some(span) = spans.get(pointer) {
                return Some(if loc.key && pointer == loc.pointer {
                    span.key.unwrap_or(span.value)
                } else {
                    span.value
                });
            }
            let cut = pointer.rfind('/')?;
            pointer = &pointer[..cut];
        }
    }
}

/// Escapes one reference token for an RFC 6901 pointer.
pub fn escape_token(token: &str) -> String {
    if token.contains(['~', '/']) {
        token.replace('~', "~0").replace('/', "~1")
    } else {
        token.to_owned()
    }
}

/// Unescapes one RFC 6901 reference token.
pub fn unescape_token(token: &str) -> String {
    if token.contains('~') {
        token.replace("~1", "/").replace("~0", "~")
    } else {
        token.to_owned()
    }
}

/// `pointer` extended by one token.
pub fn child(pointer: &str, token: &str) -> String {
    let mut p = String::with_capacity(pointer.len() + token.len() + 1);
    p.push_str(pointer);
    p.push('/');
    p.push_str(&escape_token(token));
    p
}
