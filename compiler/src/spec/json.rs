//! Positions of every node of a JSON file, by JSON pointer.
//!
//! serde_json parses the value; this scanner only runs when a diagnostic needs a line and a
//! column. It tracks line and column incrementally, so a minified multi-megabyte file costs
//! one pass.

use std::collections::HashMap;

use super::source::{NodeSpan, Pos, SpanMap, child};

/// Spans of every node of `text` by pointer; stops quietly at the first syntax error (the
/// parse itself reports it).
pub fn spans(text: &str) -> SpanMap {
    let mut s = Scanner {
        b: text.as_bytes(),
        text,
        i: 0,
        line: 1,
        line_start: 0,
        col_at: (0, 1),
        map: HashMap::new(),
    };
    s.ws();
    let _ = s.value(String::new(), None);
    s.map
}

struct Scanner<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
    line: usize,
    line_start: usize,
    /// Memo (byte offset, column) so columns are counted incrementally on long lines.
    col_at: (usize, usize),
    map: SpanMap,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'\n' => {
                    self.i += 1;
                    self.line += 1;
                    self.line_start = self.i;
                }
                b' ' | b'\t' | b'\r' => self.i += 1,
                _ => break,
            }
        }
    }

    fn pos_here(&mut self, len_bytes: usize) -> Pos {
        let (memo_off, memo_col) = self.col_at;
        let col = if memo_off >= self.line_start && memo_off <= self.i {
            memo_col + self.text[memo_off..self.i].chars().count()
        } else {
            1 + self.text[self.line_start..self.i].chars().count()
        };
        self.col_at = (self.i, col);
        let end = (self.i + len_bytes).min(self.b.len());
        let len = self
            .text
            .get(self.i..end)
            .map_or(1, |s| s.chars().count().max(1));
        Pos {
            line: self.line,
            col,
            len,
        }
    }

    fn string_end(&self, start: usize) -> Option<usize> {
        let mut j = start + 1;
        while let Some(&c) = self.b.get(j) {
            match c {
                b'\\' => j += 2,
                b'"' => return Some(j + 1),
                _ => j += 1,
            }
        }
        None
    }

    fn value(&mut self, pointer: String, key: Option<Pos>) -> Option<()> {
        let c = *self.b.get(self.i)?;
        match c {
            b'{' => {
                let pos = self.pos_here(1);
                self.map
                    .insert(pointer.clone(), NodeSpan { key, value: pos });
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return None;
                    }
                    let end = self.string_end(self.i)?;
                    let raw = &self.text[self.i..end];
                    let name: String = if raw.contains('\\') {
                        serde_json::from_str(raw).ok()?
                    } else {
                        raw[1..raw.len() - 1].to_owned()
                    };
                    let kpos = self.pos_here(end - self.i);
                    self.i = end;
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return None;
                    }
                    self.i += 1;
                    self.ws();
                    self.value(child(&pointer, &name), Some(kpos))?;
                    self.ws();
                    match self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                let pos = self.pos_here(1);
                self.map
                    .insert(pointer.clone(), NodeSpan { key, value: pos });
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Some(());
                }
                let mut n = 0usize;
                loop {
                    self.ws();
                    self.value(child(&pointer, &n.to_string()), None)?;
                    n += 1;
                    self.ws();
                    match self.b.get(self.i)? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => {
                let end = self.string_end(self.i)?;
                let pos = self.pos_here(end - self.i);
                self.map.insert(pointer, NodeSpan { key, value: pos });
                self.i = end;
                Some(())
            }
            _ => {
                let start = self.i;
                while let Some(&c) = self.b.get(self.i) {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                        break;
                    }
                    self.i += 1;
                }
                let len = self.i - start;
                self.i = start;
                let pos = self.pos_here(len);
                self.i = start + len;
                self.map.insert(pointer, NodeSpan { key, value: pos });
                Some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::spans;

    #[test]
    fn finds_keys_and_values() {
        let text = "{\n  \"paths\": {\n    \"/a~b/{x}\": {\"get\": 1}\n  },\n  \"k\\u00e9\": [true, \"x\"]\n}";
        let s = spans(text);
        let get = s
            .get("/paths/~1a~0b~1{x}/get")
            .map(|n| (n.key.map(|k| (k.line, k.col)), n.value.col));
        assert_eq!(get, Some((Some((3, 18)), 25)));
        let item = s
            .get("/k\u{e9}/1")
            .map(|n| (n.value.line, n.value.col, n.value.len));
        assert_eq!(item, Some((5, 21, 3)));
    }
}
