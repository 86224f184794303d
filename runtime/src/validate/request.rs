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
        if self.number
            && text.starts_with(|c: char| c == '-' || c.is_ascii_digit())
            && let Ok(n) = serde_json::from_str::<serde_json::Number>(text)
        {
            return Value::Number(n);
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
    /// An object with these declared properties (others are read as strings).
    Object(&'static [(&'static str, Coerce)]),
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
        let exact = itoa::Buffer::new().format(status).to_owned();
        let class = format!("{}XX", status / 100);
        [exact.as_str(), class.as_str(), "DEFAULT"]
            .iter()
            .find_map(|key| self.responses.iter().find(|r| r.status == *key))
            .map(|r| r.check)
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
        let mut out = Violations::new();
        out.push(&Path::ROOT, detail);
        self.take(location, name, out);
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
    let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> =
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
                .map(|(_, text)| text_value(p, &decode(text))),
            ParamIn::Header => header_text(headers, p.name).map(|t| text_value(p, &t)),
            ParamIn::Cookie => cookie(headers, p.name).map(|t| text_value(p, &t)),
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
fn query_value(
    p: &ParamDef,
    pairs: &[(Cow<'_, str>, Cow<'_, str>)],
) -> Option<Result<Value, Detail>> {
    fn named<'a>(
        pairs: &'a [(Cow<'_, str>, Cow<'_, str>)],
        name: &'a str,
    ) -> impl Iterator<Item = &'a str> {
        pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }
    match (p.shape, p.style) {
        (Shape::Array(c), Style::Form) if p.explode => {
            let items: Vec<Value> = named(pairs, p.name).map(|t| c.value(t)).collect();
            (!items.is_empty()).then_some(Ok(Value::Array(items)))
        }
        (Shape::Object(props), Style::DeepObject) => {
            let prefix = format!("{}[", p.name);
            let mut map = Map::new();
            for (k, v) in pairs {
                if let Some(member) = k.strip_prefix(&prefix).and_then(|r| r.strip_suffix(']')) {
                    map.insert(member.to_owned(), coerce_member(props, member).value(v));
                }
            }
            (!map.is_empty()).then_some(Ok(Value::Object(map)))
        }
        (Shape::Object(props), Style::Form) if p.explode => {
            // Each declared property is its own query parameter.
            let mut map = Map::new();
            for (name, c) in props {
                if let Some(v) = named(pairs, name).next() {
                    map.insert((*name).to_owned(), c.value(v));
                }
            }
            (!map.is_empty()).then_some(Ok(Value::Object(map)))
        }
        _ => named(pairs, p.name).next().map(|t| text_value(p, t)),
    }
}

/// The value of a parameter sent as one piece of text (a path segment, a header, a
/// cookie, a query parameter that is not exploded).
fn text_value(p: &ParamDef, text: &str) -> Result<Value, Detail> {
    match p.shape {
        Shape::Scalar(c) => Ok(c.value(text)),
        Shape::Json => serde_json::from_str(text).map_err(|_| Detail::NotJson),
        Shape::Array(c) => {
            let sep = match p.style {
                Style::SpaceDelimited => ' ',
                Style::PipeDelimited => '|',
                _ => ',',
            };
            Ok(Value::Array(if text.is_empty() {
                Vec::new()
            } else {
                text.split(sep).map(|t| c.value(t)).collect()
            }))
        }
        Shape::Object(props) => {
            let mut map = Map::new();
            if p.explode && p.style == Style::Simple {
                // `k1=v1,k2=v2`
                for member in text.split(',').filter(|m| !m.is_empty()) {
                    let (k, v) = member.split_once('=').unwrap_or((member, ""));
                    map.insert(k.to_owned(), coerce_member(props, k).value(v));
                }
            } else {
                // `k1,v1,k2,v2`
                let mut it = text.split(',').filter(|m| !m.is_empty());
                while let Some(k) = it.next() {
                    let v = it.next().unwrap_or_default();
                    map.insert(k.to_owned(), coerce_member(props, k).value(v));
                }
            }
            Ok(Value::Object(map))
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
fn form_pairs(query: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> Cow<'_, str> {
    if s.contains('+') {
        Cow::Owned(decode(&s.replace('+', " ")).into_owned())
    } else {
        decode(s)
    }
}

/// Percent-decodes `s`; bytes that are not UTF-8 become U+FFFD.
fn decode(s: &str) -> Cow<'_, str> {
    percent_decode_str(s).decode_utf8_lossy()
}

/// Every line of header `name`, joined with `, ` as HTTP allows; `None` without one.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for v in headers.get_all(name) {
        let text = String::from_utf8_lossy(v.as_bytes());
        match &mut out {
            None => out = Some(text.trim().to_owned()),
            Some(o) => {
                o.push(',');
                o.push_str(text.trim());
            }
        }
    }
    out
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| decode(v.trim_matches('"')).into_owned())
}

/// The text of each `{name}` of `template` in `path` (still percent-encoded), for a path
/// the router matched to it. A segment may hold literal text around its parameters
/// (`{id}.json`); a last parameter that takes the rest of the path gets the rest.
pub fn path_values<'t, 'p>(template: &'t str, path: &'p str) -> Vec<(&'t str, &'p str)> {
    let mut out = Vec::new();
    let t_segs: Vec<&str> = template.split('/').collect();
    let mut rest = path;
    for (i, t) in t_segs.iter().enumerate() {
        let last = i + 1 == t_segs.len();
        let seg = if last {
            rest
        } else {
            let (seg, after) = rest.split_once('/').unwrap_or((rest, ""));
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

/// Whether a `Content-Type` is JSON: `application/json` or a `+json` type, with any
/// parameters.
pub fn is_json(content_type: &str) -> bool {
    let m = content_type.split(';').next().unwrap_or_default().trim();
    m.eq_ignore_ascii_case("application/json")
        || m.len() > 5
            && m.is_char_boundary(m.len() - 5)
            && m[m.len() - 5..].eq_ignore_ascii_case("+json")
}

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
                Some("id=1%2C2,3"),
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
                    shape: Shape::Object(AGE),
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
                    shape: Shape::Object(&[("role", Coerce::STRING), ("age", INT)]),
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
                    shape: Shape::Object(AGE),
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
                    shape: Shape::Object(AGE),
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
