//! YAML 1.2 to `serde_json::Value`, on top of saphyr-parser's event stream.
//!
//! One walk builds the value; the same walk, asked to, records the span of every node by
//! JSON pointer. Scalars follow the YAML 1.2 core schema; mapping keys keep their source
//! text (`200:` stays the string `"200"`). Duplicate keys are errors. Anchors and aliases
//! are expanded, and `<<` merge keys are honoured, as most OpenAPI tools do.
//!
//! Bounded whatever the input: nesting deeper than [`MAX_DEPTH`] levels is an error (the
//! walk recurses once per level), and so are aliases that would expand to more than
//! [`ALIAS_BUDGET`] nodes in all ("billion laughs": a few hundred bytes of anchors
//! referring to anchors would otherwise build gigabytes). The size of every anchored node
//! is known before an alias to it is copied, so the budget is checked before the memory is
//! spent.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

use super::source::{NodeSpan, Pos, SpanMap, child};

/// Deepest nesting of sequences and mappings accepted: serde_json's limit for JSON specs
/// too. Real specs stay far below it (the deepest in the corpus is a few dozen levels).
pub const MAX_DEPTH: usize = 128;
/// Nodes that aliases may add in all, over the whole document.
pub const ALIAS_BUDGET: u64 = 1_000_000;

/// A problem found while reading YAML.
#[derive(Debug)]
pub struct YamlError {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub pos: Pos,
    /// The pointer of the node, when there is one.
    pub pointer: Option<String>,
    /// For a duplicate key: where the first one is.
    pub first: Option<Pos>,
}

/// Parses `text` into a value, collecting every duplicate key; a syntax error ends the walk.
pub fn parse(text: &str) -> Result<Value, Vec<YamlError>> {
    let mut w = Walker::new(text, false);
    let v = w.run();
    if w.errors.is_empty() {
        Ok(v.unwrap_or(Value::Null))
    } else {
        Err(w.errors)
    }
}

/// Spans of every node of `text` by pointer (empty when the text does not parse).
pub fn spans(text: &str) -> SpanMap {
    let mut w = Walker::new(text, true);
    let _ = w.run();
    w.spans
}

fn pos(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        col: span.start.col() + 1,
        len: span.len().max(1),
    }
}

struct Walker<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    record: bool,
    spans: SpanMap,
    /// Anchored nodes, with their sizes in nodes.
    anchors: HashMap<usize, (Value, u64)>,
    errors: Vec<YamlError>,
    /// Nodes aliases have added so far.
    expanded: u64,
}

impl<'a> Walker<'a> {
    fn new(text: &'a str, record: bool) -> Self {
        Walker {
            parser: Parser::new_from_str(text),
            record,
            spans: HashMap::new(),
            anchors: HashMap::new(),
            errors: Vec::new(),
            expanded: 0,
        }
    }

    fn next(&mut self) -> Option<(Event<'a>, Span)> {
        match self.parser.next() {
            Some(Ok(ev)) => Some(ev),
            Some(Err(e)) => {
                let m = e.marker();
                self.errors.push(YamlError {
                    message: format!("YAML syntax error: {}", e.info()),
                    pos: Pos {
                        line: m.line(),
                        col: m.col() + 1,
                        len: 1,
                    },
                    pointer: None,
                    first: None,
                });
                None
            }
            None => None,
        }
    }

    fn run(&mut self) -> Option<Value> {
        let mut doc = None;
        while let Some((ev, span)) = self.next() {
            match ev {
                Event::StreamStart
                | Event::DocumentStart(_)
                | Event::DocumentEnd
                | Event::Nothing => {}
                Event::StreamEnd => break,
                other => {
                    if doc.is_some() {
                        self.errors.push(YamlError {
                            message: "a spec file must hold exactly one YAML document".into(),
                            pos: pos(&span),
                            pointer: None,
                            first: None,
                        });
                        return doc;
                    }
                    doc = self
                        .node(other, span, String::new(), None, 0)
                        .map(|(v, _)| v);
                    doc.as_ref()?;
                }
            }
        }
        doc
    }

    fn note(&mut self, pointer: &str, key: Option<Pos>, span: &Span) {
        if self.record {
            self.spans.insert(
                pointer.to_owned(),
                NodeSpan {
                    key,
                    value: pos(span),
                },
            );
        }
    }

    /// A problem that ends the walk, at `span`.
    fn fatal(&mut self, message: String, span: &Span, pointer: &str) -> Option<(Value, u64)> {
        self.errors.push(YamlError {
            message,
            pos: pos(span),
            pointer: Some(pointer.to_owned()),
            first: None,
        });
        None
    }

    /// Builds the node that starts with `ev`, `depth` levels down, and its size in nodes;
    /// `None` after a syntax error or when a bound is passed.
    fn node(
        &mut self,
        ev: Event<'a>,
        span: Span,
        pointer: String,
        key: Option<Pos>,
        depth: usize,
    ) -> Option<(Value, u64)> {
        self.note(&pointer, key, &span);
        if depth > MAX_DEPTH {
            return self.fatal(
                format!("the document nests deeper than {MAX_DEPTH} levels"),
                &span,
                &pointer,
            );
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let v = scalar(&text, style, tag.as_deref().map(|t| t.suffix.as_str()));
                if anchor > 0 {
                    self.anchors.insert(anchor, (v.clone(), 1));
                }
                Some((v, 1))
            }
            Event::Alias(id) => {
                let size = self.anchors.get(&id).map_or(1, |(_, size)| *size);
                self.expanded = self.expanded.saturating_add(size);
                if self.expanded > ALIAS_BUDGET {
                    return self.fatal(
                        format!(
                            "aliases expand to more than {ALIAS_BUDGET} nodes (anchors that refer to anchors, as in a \"billion laughs\" document)"
                        ),
                        &span,
                        &pointer,
                    );
                }
                Some(self.anchors.get(&id).cloned().unwrap_or((Value::Null, 1)))
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                let mut size = 1u64;
                loop {
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    let p = child(&pointer, &items.len().to_string());
                    let (item, n) = self.node(ev, span, p, None, depth + 1)?;
                    size = size.saturating_add(n);
                    items.push(item);
                }
                let v = Value::Array(items);
                if anchor > 0 {
                    self.anchors.insert(anchor, (v.clone(), size));
                }
                Some((v, size))
            }
            Event::MappingStart(anchor, _) => {
                let mut map = Map::new();
                let mut size = 1u64;
                let mut key_pos: HashMap<String, Pos> = HashMap::new();
                let mut merges = Vec::new();
                loop {
                    let (kev, kspan) = self.next()?;
                    let key = match kev {
                        Event::MappingEnd => break,
                        Event::Scalar(text, ..) => text.into_owned(),
                        other => {
                            // A complex key: read it to stay in step, then report it.
                            let _ = self.node(other, kspan, String::new(), None, depth + 1)?;
                            self.errors.push(YamlError {
                                message: "mapping keys must be plain scalars".into(),
                                pos: pos(&kspan),
                                pointer: Some(pointer.clone()),
                                first: None,
                            });
                            let (vev, vspan) = self.next()?;
                            let _ = self.node(vev, vspan, String::new(), None, depth + 1)?;
                            continue;
                        }
                    };
                    let kp = pos(&kspan);
                    let (vev, vspan) = self.next()?;
                    let p = child(&pointer, &key);
                    let (value, n) = self.node(vev, vspan, p.clone(), Some(kp), depth + 1)?;
                    size = size.saturating_add(n);
                    if key == "<<" {
                        merges.push(value);
                        continue;
                    }
                    if let Some(first) = key_pos.get(&key) {
                        self.errors.push(YamlError {
                            message: format!("duplicate key `{key}`"),
                            pos: kp,
                            pointer: Some(p),
                            first: Some(*first),
                        });
                        continue;
                    }
                    key_pos.insert(key.clone(), kp);
                    map.insert(key, value);
                }
                for merge in merges {
                    let sources = match merge {
                        Value::Array(items) => items,
                        other => vec![other],
                    };
                    for src in sources {
                        if let Value::Object(src) = src {
                            for (k, v) in src {
                                map.entry(k).or_insert(v);
                            }
                        }
                    }
                }
                let v = Value::Object(map);
                if anchor > 0 {
                    self.anchors.insert(anchor, (v.clone(), size));
                }
                Some((v, size))
            }
            _ => Some((Value::Null, 1)),
        }
    }
}

/// Resolves a scalar by the YAML 1.2 core schema (quoted scalars are always strings).
fn scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("str") => return Value::String(text.to_owned()),
        Some("int") | Some("float") => {
            if let Some(n) = number(text) {
                return n;
            }
        }
        Some("bool") => {
            if let Some(b) = boolean(text) {
                return Value::Bool(b);
            }
        }
        Some("null") => return Value::Null,
        _ => {}
    }
    if style != ScalarStyle::Plain {
        return Value::String(text.to_owned());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        _ => {}
    }
    if let Some(b) = boolean(text) {
        return Value::Bool(b);
    }
    number(text).unwrap_or_else(|| Value::String(text.to_owned()))
}

fn boolean(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn number(text: &str) -> Option<Value> {
    let b = text.as_bytes();
    let first = *b.first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(Value::from);
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return u64::from_str_radix(oct, 8).ok().map(Value::from);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return Some(Value::from(i));
        }
        if let Ok(u) = text.trim_start_matches('+').parse::<u64>() {
            return Some(Value::from(u));
        }
        // Integers beyond 64 bits keep their magnitude as a float.
        return text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number);
    }
    match digits {
        ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN" => {
            return Some(Value::String(text.to_owned()));
        }
        _ => {}
    }
    let valid = digits
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+'))
        && digits.bytes().any(|c| c.is_ascii_digit());
    if !valid {
        return None;
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema_and_spans() {
        let text = "a: 1\nb: '1'\nc: [x, 2.5, true, ~]\n200:\n  d: 9999999999999999999999\n";
        let v = parse(text).unwrap_or_default();
        assert_eq!(v["a"], Value::from(1));
        assert_eq!(v["b"], Value::from("1"));
        assert_eq!(v["c"], serde_json::json!(["x", 2.5, true, null]));
        assert!(v["200"]["d"].is_f64());
        let s = spans(text);
        let d = s
            .get("/200/d")
            .map(|n| (n.key.map(|k| (k.line, k.col)), n.value.line, n.value.col));
        assert_eq!(d, Some((Some((5, 3)), 5, 6)));
    }

    #[test]
    fn duplicate_keys_are_reported_with_both_places() {
        let errs = parse("a: 1\nb: 2\na: 3\n").err().unwrap_or_default();
        assert_eq!(errs.len(), 1);
        assert_eq!(
            (errs[0].pos.line, errs[0].first.map(|p| p.line)),
            (3, Some(1))
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for text in [
            format!("{}x", "- ".repeat(5_000)),
            format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)),
            format!("{}1{}", "{a: ".repeat(5_000), "}".repeat(5_000)),
        ] {
            let errors = parse(&text).expect_err("refused");
            // Ours, or saphyr-parser's own limit for flow collections.
            assert!(
                errors
                    .iter()
                    .any(|e| e.message.contains("nests deeper than 128 levels")
                        || e.message.contains("recursion limit exceeded")),
                "{:?}",
                errors.iter().map(|e| &e.message).collect::<Vec<_>>()
            );
        }
        // 128 levels are fine.
        let ok = format!("{}x", "- ".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn an_alias_bomb_is_an_error_before_it_takes_the_memory() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..=9 {
            let prev = (b'a' + level - 1) as char;
            let name = (b'a' + level) as char;
            let refs = vec![format!("*{prev}"); 10].join(", ");
            text.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        let started = std::time::Instant::now();
        let errors = parse(&text).expect_err("refused");
        assert!(
            errors
                .iter()
                .any(|e| e.message.contains("aliases expand to more than")),
            "{:?}",
            errors.iter().map(|e| &e.message).collect::<Vec<_>>()
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Ordinary reuse of anchors is fine.
        let fine = "base: &b {type: string}\nx: *b\ny: *b\nz: {<<: *b, format: email}\n";
        let v = parse(fine)
            .unwrap_or_else(|e| panic!("{:?}", e.iter().map(|e| &e.message).collect::<Vec<_>>()));
        assert_eq!(v["z"]["format"], "email");
        assert_eq!(v["y"]["type"], "string");
    }
}
