//! An operation's request checks, as the generated crate declares them ([`ValidateDef`]),
//! and what turns a request's parameters into the JSON values its validators check.
//!
//! Parameters arrive as text. Each is decoded the way OpenAPI's `style` and `explode` say
//! (a list split on commas, spaces or pipes, or repeated; an object as `k,v` pairs, as
//! `k=v` members, or as `name[k]=v`), and each piece of text is read as the JSON type its
//! schema allows ([`Coerce`]): `null`, a boolean, a number, else a string. A piece that
//! fits none of the allowed types stays a string, so the validator reports the type the
//! schema wants. Violations are tagged with where the value was ([`Invalid`]).

use std::borrow::Cow;

use http::HeaderMap;
use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Detail, MAX_VIOLATIONS, Path, Violations};

/// A generated validator function.
pub type Check = fn(&Value, &Path<'_>, &mut Violations);

/// What an operation's requests (and, when reported, answers) are checked against.
#[derive(Debug)]
pub struct ValidateDef {
    /// Parameters with a schema.
    pub params: &'static [ParamDef],
    /// The JSON request body.
    pub body: Option<BodyDef>,
    /// Answers checked and reported, never changed (`validate.response: report`).
    pub responses: &'static [ResponseDef],
}

impl ValidateDef {
    /// Nothing to check.
    pub const DEFAULT: ValidateDef = ValidateDef {
        params: &[],
        body: None,
        responses: &[],
    };
}

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    /// The query string.
    Query,
    /// A request header.
    Header,
    /// A path segment.
    Path,
    /// The `Cookie` header.
    Cookie,
}

impl ParamIn {
    /// OpenAPI's name for it, as problem details report it.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamIn::Query => "query",
            ParamIn::Header => "header",
            ParamIn::Path => "path",
            ParamIn::Cookie => "cookie",
        }
    }
}

/// How a parameter is serialised (OpenAPI `style`), and `application/json` content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `form`: `a=1,2` or, exploded, `a=1&a=2`.
    Form,
    /// `simple`: `1,2` (paths and headers).
    Simple,
    /// `spaceDelimited`: `a=1%202`.
    SpaceDelimited,
    /// `pipeDelimited`: `a=1|2`.
    PipeDelimited,
    /// `deepObject`: `a[k]=v`.
    DeepObject,
    /// `content: application/json`: the text is a JSON document.
    Json,
}

/// The JSON types a piece of text may be read as, beside a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coerce {
    /// `integer` or `number`.
    pub number: bool,
    /// `boolean`.
    pub boolean: bool,
    /// `null` (the text `null`).
    pub null: bool,
}

impl Coerce {
    /// Text stays text.
    pub const STRING: Coerce = Coerce {
        number: false,
        boolean: false,
        null: false,
    };

    /// The JSON value `text` is read as.
    pub fn value(self, text: &str) -> Value {
        if self.null && text == "null" {
            return Value::Null;
        }
        if self.boolean {
            match text {
                "true" => return Value::Bool(true),
                "false" => return Value::Bool(false),
                _ => {}
            }
        }
        if self.number && text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            // Plain integers (the usual case) without the JSON parser; JSON's rules still
            // hold: no leading zeros, no `+`.
            let digits = text.strip_prefix('-').unwrap_or(text);
            if !digits.is_empty()
                && digits.len() < 19
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'))
                && let Ok(n) = text.parse::<i64>()
            {
                return Value::Number(n.into());
            }
            if let Ok(n) = serde_json::from_str::<serde_json::Number>(text) {
                return Value::Number(n);
            }
        }
        Value::String(text.to_owned())
    }
}

/// How a parameter's text becomes a JSON value.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// One value.
    Scalar(Coerce),
    /// A list, each item read as the types given.
    Array(Coerce),
    /// An object with these declared properties (others are read as strings); and the
    /// types a text standing for the whole value is read as, when the schema allows an
    /// object or something else (`deepObject` sent as `name=1`).
    Object(&'static [(&'static str, Coerce)], Coerce),
    /// A JSON document.
    Json,
}

/// One parameter's check.
#[derive(Debug, Clone, Copy)]
pub struct ParamDef {
    /// Its name (for headers, as the spec writes it; matched case-insensitively).
    pub name: &'static str,
    /// Where it is.
    pub location: ParamIn,
    /// How it is serialised.
    pub style: Style,
    /// OpenAPI's `explode`.
    pub explode: bool,
    /// Whether a request without it is refused.
    pub required: bool,
    /// How its text becomes JSON.
    pub shape: Shape,
    /// Its validator.
    pub check: Check,
}

/// The JSON request body's check.
#[derive(Debug, Clone, Copy)]
pub struct BodyDef {
    /// A request without a body is refused.
    pub required: bool,
    /// The operation declares only JSON media types: another `Content-Type` is 415.
    pub json_only: bool,
    /// Its validator.
    pub check: Check,
}

/// A declared response's schema.
#[derive(Debug, Clone, Copy)]
pub struct ResponseDef {
    /// `200`, `2XX` or `DEFAULT`, as the spec keys responses.
    pub status: &'static str,
    /// Its validator.
    pub check: Check,
}

impl ValidateDef {
    /// The schema of the response with `status`: its own, else its class's (`2XX`), else
    /// `default`.
    pub fn response(&self, status: u16) -> Option<Check> {
        let mut digits = itoa::Buffer::new();
        let exact = digits.format(status).as_bytes();
        let is_class = |key: &[u8]| {
            key.len() == 3 && key[1..] == *b"XX" && exact.len() == 3 && key[0] == exact[0]
        };
        let find = |hit: &dyn Fn(&[u8]) -> bool| {
            self.responses
                .iter()
                .find(|r| hit(r.status.as_bytes()))
                .map(|r| r.check)
        };
        find(&|key| key == exact)
            .or_else(|| find(&is_class))
            .or_else(|| find(&|key| key == b"DEFAULT"))
    }
}

/// One way a request breaks its operation's schemas, as the client's 400 lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invalid {
    /// `body`, `query`, `header`, `path` or `cookie`.
    #[serde(rename = "in")]
    pub location: &'static str,
    /// The parameter's name (none for the body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
    /// RFC 6901 pointer into the value (`""` for the whole value).
    pub pointer: String,
    /// What is wrong.
    pub detail: Cow<'static, str>,
}

/// The violations of one request, at most [`MAX_VIOLATIONS`].
#[derive(Debug, Default)]
pub struct Report {
    /// What was found, in order.
    pub invalid: Vec<Invalid>,
    /// Whether more were found than kept.
    pub truncated: bool,
}

impl Report {
    /// Whether the request passed.
    pub fn is_empty(&self) -> bool {
        self.invalid.is_empty()
    }

    fn take(&mut self, location: &'static str, name: Option<&'static str>, out: Violations) {
        if out.truncated() {
            self.truncated = true;
        }
        for v in out.into_vec() {
            if self.invalid.len() >= MAX_VIOLATIONS {
                self.truncated = true;
                return;
            }
            self.invalid.push(Invalid {
                location,
                name,
                pointer: v.pointer,
                detail: v.detail,
            });
        }
    }

    /// Checks `value` with `check`, reporting violations at `location`.
    pub fn check(
        &mut self,
        location: &'static str,
        name: Option<&'static str>,
        value: &Value,
        check: Check,
    ) {
        let mut out = Violations::new();
        check(value, &Path::ROOT, &mut out);
        if !out.is_empty() {
            self.take(location, name, out);
        }
    }

    /// Reports `detail` about the whole value at `location`.
    pub fn push(&mut self, location: &'static str, name: Option<&'static str>, detail: Detail) {
        if self.invalid.len() >= MAX_VIOLATIONS {
            self.truncated = true;
            return;
        }
        self.invalid.push(Invalid {
            location,
            name,
            pointer: String::new(),
            detail: detail.text(),
        });
    }
}

/// Checks every parameter of `def` in a request with this path (as received, still
/// percent-encoded), query and headers, routed to the operation with path `template`.
pub fn check_params(
    def: &ValidateDef,
    template: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    report: &mut Report,
) {
    if def.params.is_empty() {
        return;
    }
    let pairs: Vec<(Cow<'_, str>, &str)> =
        if def.params.iter().any(|p| p.location == ParamIn::Query) {
            query.map(form_pairs).unwrap_or_default()
        } else {
            Vec::new()
        };
    let segments = if def.params.iter().any(|p| p.location == ParamIn::Path) {
        path_values(template, path)
    } else {
        Vec::new()
    };
    for p in def.params {
        let value = match p.location {
            ParamIn::Query => query_value(p, &pairs),
            ParamIn::Path => segments
                .iter()
                .find(|(name, _)| *name == p.name)
                .map(|(_, text)| text_value(p, text, decode)),
            ParamIn::Header => header_text(headers, p.name).map(|t| text_value(p, &t, verbatim)),
            ParamIn::Cookie => cookie(headers, p.name).map(|t| text_value(p, t, decode)),
        };
        let location = p.location.as_str();
        match value {
            None if p.required => report.push(location, Some(p.name), Detail::Missing),
            None => {}
            Some(Err(detail)) => report.push(location, Some(p.name), detail),
            Some(Ok(v)) => report.check(location, Some(p.name), &v, p.check),
        }
    }
}

/// The value of a query parameter, or `None` when the query does not carry it.
fn query_value(p: &ParamDef, pairs: &[(Cow<'_, str>, &str)]) -> Option<Result<Value, Detail>> {
    fn named<'a>(
        pairs: &'a [(Cow<'_, str>, &'a str)],
        name: &'a str,
    ) -> impl Iterator<Item = &'a str> {
        pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }
    match (p.shape, p.style) {
        // Exploded, the list is the parameter repeated (for any delimiter style).
        (Shape::Array(c), Style::Form | Style::SpaceDelimited | Style::PipeDelimited)
            if p.explode =>
        {
            let items: Vec<Value> = named(pairs, p.name)
                .map(|t| c.value(&form_decode(t)))
                .collect();
            (!items.is_empty()).then_some(Ok(Value::Array(items)))
        }
        (Shape::Object(props, scalar), Style::DeepObject) => {
            let mut map = Map::new();
            for (k, v) in pairs {
                if let Some(member) = k
                    .strip_prefix(p.name)
                    .and_then(|r| r.strip_prefix('['))
                    .and_then(|r| r.strip_suffix(']'))
                {
                    let value = coerce_member(props, member).value(&form_decode(v));
                    map.insert(member.to_owned(), value);
                }
            }
            if map.is_empty() {
                // `name=value`: the whole value as one text.
                return named(pairs, p.name)
                    .next()
                    .map(|t| Ok(scalar.value(&form_decode(t))));
            }
            Some(Ok(Value::Object(map)))
        }
        (Shape::Object(props, _), Style::Form) if p.explode => {
            // Each declared property is its own query parameter.
            let mut map = Map::new();
            for (name, c) in props {
                if let Some(v) = named(pairs, name).next() {
                    map.insert((*name).to_owned(), c.value(&form_decode(v)));
                }
            }
            (!map.is_empty()).then_some(Ok(Value::Object(map)))
        }
        _ => named(pairs, p.name)
            .next()
            .map(|t| text_value(p, t, form_decode)),
    }
}

/// How a parameter's raw text is decoded: percent-decoding for paths and cookies, form
/// decoding for queries, none for headers.
type Decode = fn(&str) -> Cow<'_, str>;

fn verbatim(s: &str) -> Cow<'_, str> {
    Cow::Borrowed(s)
}

/// The value of a parameter sent as one piece of raw text (a path segment, a header, a
/// cookie, a query parameter that is not exploded). Lists and objects are split on their
/// delimiters before the pieces are decoded, so an encoded delimiter (`%2C`) stays in its
/// piece.
fn text_value(p: &ParamDef, raw: &str, dec: Decode) -> Result<Value, Detail> {
    match p.shape {
        Shape::Scalar(c) => Ok(c.value(&dec(raw))),
        Shape::Json => serde_json::from_str(&dec(raw)).map_err(|_| Detail::NotJson),
        Shape::Array(c) => {
            let items = match p.style {
                // Raw, a space is `%20` or `+` and a pipe `|` or `%7C`.
                Style::SpaceDelimited => split_any(raw, &["%20", "+", " "]),
                Style::PipeDelimited => split_any(raw, &["|", "%7C", "%7c"]),
                _ => split_any(raw, &[","]),
            };
            Ok(Value::Array(
                items.into_iter().map(|t| c.value(&dec(t))).collect(),
            ))
        }
        Shape::Object(props, _) => {
            let mut map = Map::new();
            let mut member = |k: &str, v: &str| {
                let k = dec(k);
                let value = coerce_member(props, &k).value(&dec(v));
                map.insert(k.into_owned(), value);
            };
            if p.explode && p.style == Style::Simple {
                // `k1=v1,k2=v2`
                for m in raw.split(',').filter(|m| !m.is_empty()) {
                    let (k, v) = m.split_once('=').unwrap_or((m, ""));
                    member(k, v);
                }
            } else {
                // `k1,v1,k2,v2`
                let mut it = raw.split(',').filter(|m| !m.is_empty());
                while let Some(k) = it.next() {
                    member(k, it.next().unwrap_or_default());
                }
            }
            Ok(Value::Object(map))
        }
    }
}

/// `text` split at every occurrence of any of `seps`; empty text is no item.
fn split_any<'t>(text: &'t str, seps: &[&str]) -> Vec<&'t str> {
    let mut out = Vec::new();
    if text.is_empty() {
        return out;
    }
    let mut rest = text;
    loop {
        let next = seps
            .iter()
            .filter_map(|sep| rest.find(sep).map(|at| (at, sep.len())))
            .min_by_key(|(at, _)| *at);
        match next {
            Some((at, len)) => {
                out.push(&rest[..at]);
                rest = &rest[at + len..];
            }
            None => {
                out.push(rest);
                return out;
            }
        }
    }
}

fn coerce_member(props: &[(&'static str, Coerce)], name: &str) -> Coerce {
    props
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(Coerce::STRING, |(_, c)| *c)
}

/// The query's `key=value` pairs, decoded as HTML forms encode them (`+` is a space).
/// The query's `key=value` pairs, keys decoded as HTML forms encode them (`+` is a
/// space), values still raw: their delimiters are found before they are decoded.
fn form_pairs(query: &str) -> Vec<(Cow<'_, str>, &str)> {
    query
        .split(is_amp)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = split_at_byte(pair, b'=').unwrap_or((pair, ""));
            (form_decode(k), v)
        })
        .collect()
}

fn form_decode(s: &str) -> Cow<'_, str> {
    // One pass over the bytes: most keys and values need no decoding at all.
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    if s.contains('+') {
        Cow::Owned(decode(&s.replace('+', " ")).into_owned())
    } else {
        decode(s)
    }
}

/// Percent-decodes `s`; bytes that are not UTF-8 become U+FFFD. Text without `%` (most
/// of it) is borrowed as it is.
fn decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%') {
        return Cow::Borrowed(s);
    }
    percent_decode_str(s).decode_utf8_lossy()
}

/// Every line of header `name`, joined with `,` as HTTP allows; `None` without one. A
/// single line of visible ASCII (the usual case) is borrowed.
fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<Cow<'h, str>> {
    let mut out: Option<Cow<'h, str>> = None;
    for v in headers.get_all(name) {
        let text = match v.to_str() {
            Ok(t) => Cow::Borrowed(t.trim()),
            Err(_) => Cow::Owned(String::from_utf8_lossy(v.as_bytes()).trim().to_owned()),
        };
        match &mut out {
            None => out = Some(text),
            Some(o) => {
                let o = o.to_mut();
                o.push(',');
                o.push_str(&text);
            }
        }
    }
    out
}

/// The value of cookie `name` in the request's `Cookie` headers, still encoded.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The text of each `{name}` of `template` in `path` (still percent-encoded), for a path
/// the router matched to it. A segment may hold literal text around its parameters
/// (`{id}.json`); a last parameter that takes the rest of the path gets the rest.
pub fn path_values<'t, 'p>(template: &'t str, path: &'p str) -> Vec<(&'t str, &'p str)> {
    let mut out = Vec::new();
    let mut t_segs = template.split(is_slash).peekable();
    let mut rest = path;
    while let Some(t) = t_segs.next() {
        let last = t_segs.peek().is_none();
        let seg = if last {
            rest
        } else {
            let (seg, after) = split_at_byte(rest, b'/').unwrap_or((rest, ""));
            rest = after;
            seg
        };
        if !t.contains('{') {
            continue;
        }
        segment_values(t, seg, &mut out);
    }
    out
}

// Byte searches for the short texts of one request: the `char` pattern searchers cost
// more to set up than these loops take to run.
fn is_amp(c: char) -> bool {
    c == '&'
}

fn is_slash(c: char) -> bool {
    c == '/'
}

/// `s` split around the first `b` (an ASCII byte), which is left out.
fn split_at_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let at = s.bytes().position(|x| x == b)?;
    Some((&s[..at], &s[at + 1..]))
}

/// Matches one template segment (`{a}.{b}`, `v{n}`) against one path segment.
fn segment_values<'t, 'p>(template: &'t str, mut seg: &'p str, out: &mut Vec<(&'t str, &'p str)>) {
    let mut t = template;
    while !t.is_empty() {
        if let Some(after_open) = t.strip_prefix('{') {
            let Some((name, after)) = after_open.split_once('}') else {
                return;
            };
            // The parameter runs to the next literal text of the template, or to the end.
            let literal = after.split('{').next().unwrap_or_default();
            let end = if literal.is_empty() {
                seg.len()
            } else {
                match seg.find(literal) {
                    Some(i) => i,
                    None => return,
                }
            };
            out.push((name, &seg[..end]));
            seg = &seg[end..];
            t = after;
        } else {
            let literal_len = t.find('{').unwrap_or(t.len());
            let literal = &t[..literal_len];
            let Some(after) = seg.strip_prefix(literal) else {
                return;
            };
            seg = after;
            t = &t[literal_len..];
        }
    }
}

pub use gatewayc_vocab::media::is_json;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fail_above_10(v: &Value, at: &Path<'_>, out: &mut Violations) {
        match v {
            Value::Number(n) if n.as_i64().is_some_and(|n| n <= 10) => {}
            Value::Number(_) => out.push(at, Detail::Maximum("10")),
            _ => out.push(at, Detail::Type("integer")),
        }
    }

    /// A validator that accepts only `expected`, so a test sees the decoded value.
    macro_rules! expect_value {
        ($name:ident, $expected:expr) => {
            fn $name(v: &Value, at: &Path<'_>, out: &mut Violations) {
                if *v != $expected {
                    out.push(at, Detail::Const);
                }
            }
        };
    }

    const INT: Coerce = Coerce {
        number: true,
        boolean: false,
        null: false,
    };

    fn def(params: &'static [ParamDef]) -> ValidateDef {
        ValidateDef {
            params,
            ..ValidateDef::DEFAULT
        }
    }

    fn run(
        def: &ValidateDef,
        template: &str,
        path: &str,
        query: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Report {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
                http::HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        let mut report = Report::default();
        check_params(def, template, path, query, &map, &mut report);
        report
    }

    #[test]
    fn text_is_read_as_the_types_the_schema_allows() {
        let any = Coerce {
            number: true,
            boolean: true,
            null: true,
        };
        assert_eq!(any.value("12"), json!(12));
        assert_eq!(any.value("-1.5e3"), json!(-1500.0));
        assert_eq!(any.value("true"), json!(true));
        assert_eq!(any.value("null"), json!(null));
        assert_eq!(
            INT.value("abc"),
            json!("abc"),
            "left a string for the validator"
        );
        assert_eq!(INT.value("+1"), json!("+1"), "not a JSON number");
        assert_eq!(INT.value("Infinity"), json!("Infinity"));
        assert_eq!(Coerce::STRING.value("12"), json!("12"));
    }

    #[test]
    fn a_missing_required_parameter_and_a_wrong_type_are_both_reported() {
        static PARAMS: &[ParamDef] = &[
            ParamDef {
                name: "limit",
                location: ParamIn::Query,
                style: Style::Form,
                explode: true,
                required: false,
                shape: Shape::Scalar(INT),
                check: fail_above_10,
            },
            ParamDef {
                name: "X-Tenant",
                location: ParamIn::Header,
                style: Style::Simple,
                explode: false,
                required: true,
                shape: Shape::Scalar(INT),
                check: fail_above_10,
            },
        ];
        let r = run(&def(PARAMS), "/pets", "/pets", Some("limit=abc"), &[]);
        let got: Vec<_> = r
            .invalid
            .iter()
            .map(|i| (i.location, i.name, i.detail.as_ref()))
            .collect();
        assert_eq!(
            got,
            [
                ("query", Some("limit"), "must be of type integer"),
                ("header", Some("X-Tenant"), "is required"),
            ]
        );
        let ok = run(
            &def(PARAMS),
            "/pets",
            "/pets",
            Some("limit=10"),
            &[("x-tenant", "3")],
        );
        assert!(ok.is_empty(), "{ok:?}");
        let big = run(
            &def(PARAMS),
            "/pets",
            "/pets",
            Some("limit=11&limit=1"),
            &[("x-tenant", "3")],
        );
        assert_eq!(
            big.invalid[0].detail, "must be at most 10",
            "the first of repeated values"
        );
    }

    #[test]
    fn styles_decode_lists_and_objects() {
        expect_value!(ids, json!([1, 2, 3]));
        expect_value!(obj, json!({"role": "admin", "age": 7}));
        expect_value!(words, json!(["a+b", "c"]));
        const AGE: &[(&str, Coerce)] = &[("age", INT)];
        // (the parameter, the query, the headers)
        type Case<'a> = (ParamDef, Option<&'a str>, &'a [(&'a str, &'a str)]);
        let cases: &[Case<'_>] = &[
            (
                ParamDef {
                    name: "id",
                    location: ParamIn::Query,
                    style: Style::Form,
                    explode: true,
                    required: true,
                    shape: Shape::Array(INT),
                    check: ids,
                },
                Some("id=1&x=0&id=2&id=3"),
                &[],
            ),
            (
                ParamDef {
                    name: "id",
                    location: ParamIn::Query,
                    style: Style::Form,
                    explode: false,
                    required: true,
                    shape: Shape::Array(INT),
                    check: ids,
                },
                Some("id=1,2,3"),
                &[],
            ),
            (
                ParamDef {
                    name: "id",
                    location: ParamIn::Query,
                    style: Style::PipeDelimited,
                    explode: false,
                    required: true,
                    shape: Shape::Array(INT),
                    check: ids,
                },
                Some("id=1|2|3"),
                &[],
            ),
            (
                ParamDef {
                    name: "q",
                    location: ParamIn::Query,
                    style: Style::SpaceDelimited,
                    explode: false,
                    required: true,
                    shape: Shape::Array(Coerce::STRING),
                    check: words,
                },
                Some("q=a%2Bb+c"),
                &[],
            ),
            (
                ParamDef {
                    name: "f",
                    location: ParamIn::Query,
                    style: Style::DeepObject,
                    explode: true,
                    required: true,
                    shape: Shape::Object(AGE, Coerce::STRING),
                    check: obj,
                },
                Some("f%5Brole%5D=admin&f[age]=7"),
                &[],
            ),
            (
                ParamDef {
                    name: "f",
                    location: ParamIn::Query,
                    style: Style::Form,
                    explode: true,
                    required: true,
                    shape: Shape::Object(&[("role", Coerce::STRING), ("age", INT)], Coerce::STRING),
                    check: obj,
                },
                Some("role=admin&age=7"),
                &[],
            ),
            (
                ParamDef {
                    name: "f",
                    location: ParamIn::Query,
                    style: Style::Form,
                    explode: false,
                    required: true,
                    shape: Shape::Object(AGE, Coerce::STRING),
                    check: obj,
                },
                Some("f=role,admin,age,7"),
                &[],
            ),
            (
                ParamDef {
                    name: "x-ids",
                    location: ParamIn::Header,
                    style: Style::Simple,
                    explode: false,
                    required: true,
                    shape: Shape::Array(INT),
                    check: ids,
                },
                None,
                &[("x-ids", "1,2"), ("x-ids", "3")],
            ),
            (
                ParamDef {
                    name: "x-f",
                    location: ParamIn::Header,
                    style: Style::Simple,
                    explode: true,
                    required: true,
                    shape: Shape::Object(AGE, Coerce::STRING),
                    check: obj,
                },
                None,
                &[("x-f", "role=admin,age=7")],
            ),
            (
                ParamDef {
                    name: "f",
                    location: ParamIn::Cookie,
                    style: Style::Json,
                    explode: false,
                    required: true,
                    shape: Shape::Json,
                    check: obj,
                },
                None,
                &[(
                    "cookie",
                    "a=1; f=%7B%22role%22%3A%22admin%22%2C%22age%22%3A7%7D",
                )],
            ),
        ];
        for (i, (p, query, headers)) in cases.iter().enumerate() {
            let params: &'static [ParamDef] = Box::leak(Box::new([*p]));
            let r = run(&def(params), "/x", "/x", *query, headers);
            assert!(r.is_empty(), "case {i}: {r:?}");
        }
    }

    #[test]
    fn a_deep_object_sent_as_one_value_is_read_as_its_other_types() {
        expect_value!(number, json!(1700000000));
        expect_value!(range, json!({"gt": 1}));
        static P: &[ParamDef] = &[ParamDef {
            name: "created",
            location: ParamIn::Query,
            style: Style::DeepObject,
            explode: true,
            required: true,
            shape: Shape::Object(&[("gt", INT)], INT),
            check: number,
        }];
        assert!(run(&def(P), "/x", "/x", Some("created=1700000000"), &[]).is_empty());
        static Q: &[ParamDef] = &[ParamDef {
            check: range,
            ..P[0]
        }];
        assert!(run(&def(Q), "/x", "/x", Some("created%5Bgt%5D=1"), &[]).is_empty());
        assert!(
            !run(&def(Q), "/x", "/x", Some("created_at[gt]=1"), &[]).is_empty(),
            "another parameter's brackets"
        );
    }

    #[test]
    fn delimiters_are_found_before_pieces_are_decoded() {
        expect_value!(pieces, json!(["a,b", "c d", "e+f"]));
        static P: &[ParamDef] = &[ParamDef {
            name: "q",
            location: ParamIn::Query,
            style: Style::Form,
            explode: false,
            required: true,
            shape: Shape::Array(Coerce::STRING),
            check: pieces,
        }];
        assert!(run(&def(P), "/x", "/x", Some("q=a%2Cb,c+d,e%2Bf"), &[]).is_empty());
        expect_value!(words, json!(["a|b", "c", "d"]));
        static W: &[ParamDef] = &[ParamDef {
            style: Style::SpaceDelimited,
            check: words,
            ..P[0]
        }];
        assert!(run(&def(W), "/x", "/x", Some("q=a|b%20c+d"), &[]).is_empty());
    }

    #[test]
    fn path_values_come_from_the_template() {
        assert_eq!(path_values("/pets/{id}", "/pets/7"), [("id", "7")]);
        assert_eq!(
            path_values("/v1/{owner}/{repo}/file.{ext}", "/v1/a%20b/c/file.json"),
            [("owner", "a%20b"), ("repo", "c"), ("ext", "json")]
        );
        assert_eq!(
            path_values("/files/{path}", "/files/a/b/c.txt"),
            [("path", "a/b/c.txt")],
            "a last parameter takes the rest of the path"
        );
        assert_eq!(
            path_values("/r/{a}-{b}", "/r/x-y"),
            [("a", "x"), ("b", "y")]
        );
    }

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json("json"));
    }

    #[test]
    fn responses_are_found_by_status_then_class_then_default() {
        fn a(_: &Value, at: &Path<'_>, out: &mut Violations) {
            out.push(at, Detail::Enum);
        }
        fn b(_: &Value, at: &Path<'_>, out: &mut Violations) {
            out.push(at, Detail::Const);
        }
        fn c(_: &Value, at: &Path<'_>, out: &mut Violations) {
            out.push(at, Detail::False);
        }
        let def = ValidateDef {
            responses: &[
                ResponseDef {
                    status: "201",
                    check: a,
                },
                ResponseDef {
                    status: "2XX",
                    check: b,
                },
                ResponseDef {
                    status: "DEFAULT",
                    check: c,
                },
            ],
            ..ValidateDef::DEFAULT
        };
        let which = |status: u16| {
            let mut r = Report::default();
            if let Some(check) = def.response(status) {
                r.check("body", None, &Value::Null, check);
            }
            r.invalid.first().map(|i| i.detail.clone())
        };
        assert_eq!(which(201), Some(Detail::Enum.text()));
        assert_eq!(which(200), Some(Detail::Const.text()));
        assert_eq!(which(404), Some(Detail::False.text()));
    }
}
