//! `x-gateway.validate` and the request checks each operation gets from its schemas.
//!
//! For every operation whose requests are validated (the default where it declares a
//! schema), this reads its parameters (the path item's and its own, the operation's
//! winning by name and location) and its JSON request body, and adds their schemas to the
//! gateway's [`Validators`]: each schema becomes a generated function, and the operation
//! keeps only the functions' names and how each parameter is taken from the request
//! ([`crate::model::Validation`]). `response: report` adds the JSON response schemas too.
//! What the generated code cannot enforce is a warning where the keyword is written
//! ([`warn_unsupported`]).

use serde_json::Value;

use super::reader::{self, Obj};
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::model::{BodyCheck, Coerce, ParamCheck, ParamIn, ParamShape, ResponseCheck, Validation};
use crate::spec::source::child;
use crate::spec::{Resolved, Spec};
use crate::validate::{Dialect, Reason, Unsupported, Validators};

/// `x-gateway.validate` as written at one level; unset parts come from the level above.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Setting {
    /// Whether requests are checked (`request`, the default) or not (`none`).
    pub request: Option<bool>,
    /// Whether answers are checked and violations reported (`response: report`).
    pub response: Option<bool>,
}

impl Setting {
    /// This level's choices, the level above's where this one makes none.
    pub fn over(self, base: Setting) -> Setting {
        Setting {
            request: self.request.or(base.request),
            response: self.response.or(base.response),
        }
    }
}

/// Reads `validate`: `request`, `none`, or `{request: true|false, response: report|none}`.
pub(super) fn read(obj: &mut Obj<'_>, d: &mut Diagnostics) -> Option<Setting> {
    let loc = obj.loc("validate");
    let v = obj.raw("validate")?;
    let bad = |d: &mut Diagnostics, loc: Location, found: &Value| {
        d.push(
            Diagnostic::error(
                "E1101",
                Some(loc),
                format!(
                    "`validate` must be `request`, `none` or an object, found {}",
                    reader::kind(found)
                ),
            )
            .hint(
                "write `validate: none` to forward requests unchecked, or `validate: { response: report }` to also check answers",
            ),
        );
    };
    match v {
        Value::String(s) if s == "request" => Some(Setting {
            request: Some(true),
            response: None,
        }),
        Value::String(s) if s == "none" => Some(Setting {
            request: Some(false),
            response: Some(false),
        }),
        Value::Object(_) => {
            let mut o = Obj::new(obj.file, loc.pointer.clone(), v, "`validate`", d)?;
            let request = o.boolean("request", d);
            let response_loc = o.loc("response");
            let response = match o.raw("response") {
                None => None,
                Some(Value::String(s)) if s == "report" => Some(true),
                Some(Value::String(s)) if s == "none" => Some(false),
                Some(other) => {
                    d.push(
                        Diagnostic::error(
                            "E1101",
                            Some(response_loc),
                            format!(
                                "`validate.response` must be `report` or `none`, found {}",
                                reader::kind(other)
                            ),
                        )
                        .hint("`report` logs and counts answers that break their schema without changing them"),
                    );
                    None
                }
            };
            o.finish(d);
            Some(Setting { request, response })
        }
        other => {
            bad(d, loc, other);
            None
        }
    }
}

/// The schema dialect of a document: 2020-12 for OpenAPI 3.1, the 3.0 schema object for
/// 3.0 and Swagger 2.0.
pub(super) fn dialect(doc: &Value) -> Dialect {
    match doc.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.0") => Dialect::OpenApi30,
        Some(_) => Dialect::Draft2020,
        None => Dialect::OpenApi30,
    }
}

/// Where one operation's schemas are read from.
pub(super) struct Source<'a, 's> {
    pub spec: &'s Spec,
    pub doc: &'s Value,
    pub item: &'a Resolved<'s>,
    pub op: &'a Resolved<'s>,
    pub swagger2: bool,
    pub dialect: Dialect,
    /// Names the generated functions: the operationId, or the method and path.
    pub name: &'a str,
}

/// The checks of one operation, their schemas added to `validators`; `None` when it has
/// nothing to check or checks are off. What of its request the gateway forwards unchecked
/// goes to `unchecked`.
pub(super) fn collect(
    src: &Source<'_, '_>,
    setting: Setting,
    (validators, unchecked): (&mut Validators<'_, Spec>, &mut Unchecked),
    d: &mut Diagnostics,
) -> Option<Validation> {
    let request = setting.request.unwrap_or(true);
    let response = setting.response.unwrap_or(false);
    if !request && !response {
        return None;
    }
    let mut v = Validation::default();
    if request {
        let consumes = consumes(src);
        let mut form_data = Vec::new();
        for p in parameters(src) {
            match p.value.get("in").and_then(Value::as_str) {
                Some("body") => {
                    v.body = body_swagger2(src, &p, &consumes, validators);
                    if v.body.is_none()
                        && p.value.get("schema").is_some()
                        && let Some(media) = consumes.first()
                    {
                        unchecked.note(
                            media,
                            Location::value(p.file, p.pointer.clone()),
                            format!("`{}`", src.name),
                        );
                    }
                }
                Some("formData") => form_data.push(p),
                _ => {
                    if let Some(check) = parameter(src, &p, validators, d) {
                        v.params.push(check);
                    }
                }
            }
        }
        if let Some(first) = form_data.first() {
            let names: Vec<String> = form_data
                .iter()
                .filter_map(|p| p.value.get("name").and_then(Value::as_str))
                .map(|n| format!("`{n}`"))
                .collect();
            unchecked.note(
                FORM_DATA,
                Location::value(first.file, first.pointer.clone()),
                format!("`{}` ({})", src.name, names.join(", ")),
            );
        }
        if !src.swagger2 {
            v.body = request_body(src, validators, unchecked);
        }
    }
    if response {
        v.responses = responses(src, validators);
    }
    (!v.params.is_empty() || v.body.is_some() || !v.responses.is_empty()).then_some(v)
}

/// The path item's parameters and the operation's, the operation's replacing the path
/// item's of the same name and location.
fn parameters<'s>(src: &Source<'_, 's>) -> Vec<Resolved<'s>> {
    let mut out: Vec<Resolved<'s>> = Vec::new();
    for node in [src.item, src.op] {
        let Some(list) = node.value.get("parameters").and_then(Value::as_array) else {
            continue;
        };
        let list_ptr = child(&node.pointer, "parameters");
        for (i, p) in list.iter().enumerate() {
            let Some(p) = src
                .spec
                .deref(node.file, &child(&list_ptr, &i.to_string()), p)
            else {
                continue;
            };
            let key = |r: &Resolved<'_>| {
                (
                    r.value
                        .get("name")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    r.value.get("in").and_then(Value::as_str).map(str::to_owned),
                )
            };
            let k = key(&p);
            out.retain(|q| key(q) != k);
            out.push(p);
        }
    }
    out
}

/// One parameter's check, or `None` when it has no schema (or is malformed, which
/// lowering reports elsewhere) or is taken in a way the gateway cannot decode (a
/// warning).
fn parameter(
    src: &Source<'_, '_>,
    p: &Resolved<'_>,
    validators: &mut Validators<'_, Spec>,
    d: &mut Diagnostics,
) -> Option<ParamCheck> {
    let name = p.value.get("name").and_then(Value::as_str)?;
    let location = match p.value.get("in").and_then(Value::as_str)? {
        "query" => ParamIn::Query,
        "header" => ParamIn::Header,
        "path" => ParamIn::Path,
        "cookie" => ParamIn::Cookie,
        // Swagger 2.0 `formData` is a body, checked with it (not yet).
        _ => return None,
    };
    // Header names are case-insensitive, and these three are the protocol's own (OpenAPI
    // says to ignore such parameters).
    if location == ParamIn::Header
        && ["accept", "content-type", "authorization"].contains(&name.to_ascii_lowercase().as_str())
    {
        return None;
    }
    let required =
        location == ParamIn::Path || p.value.get("required").and_then(Value::as_bool) == Some(true);
    let label = format!("{}_{}_{}", src.name, location.as_str(), name);
    let warn = |d: &mut Diagnostics, key: &str, what: String| {
        d.push(
            Diagnostic::warning("W1103", Some(p.member_loc(key)), what)
                .hint("the parameter is forwarded unchecked; set `x-gateway.validate: none` on the operation to silence this"),
        );
    };
    if src.swagger2 {
        let (style, explode) = match p.value.get("collectionFormat").and_then(Value::as_str) {
            None | Some("csv") => (Style::Form, false),
            Some("multi") => (Style::Form, true),
            Some("ssv") => (Style::SpaceDelimited, false),
            Some("pipes") => (Style::PipeDelimited, false),
            Some(other) => {
                warn(
                    d,
                    "collectionFormat",
                    format!(
                        "parameter `{name}`: `collectionFormat: {other}` is not decoded by the gateway"
                    ),
                );
                return None;
            }
        };
        let shape = shape(src.spec, p.file, &p.pointer, p.value);
        let function = validators
            .add_swagger2_parameter(&label, p.file, &p.pointer)
            .ok()?;
        return Some(ParamCheck {
            name: name.to_owned(),
            location,
            style: style.name(location, explode),
            explode,
            required,
            shape,
            function,
        });
    }
    if let Some(content) = p.value.get("content").and_then(Value::as_object) {
        // A parameter sent as a serialised document: only JSON is decoded.
        let (media, _) = content.iter().next()?;
        if !is_json(media) {
            warn(
                d,
                "content",
                format!(
                    "parameter `{name}` is sent as `{media}`, which the gateway does not decode"
                ),
            );
            return None;
        }
        let ptr = child(&child(&child(&p.pointer, "content"), media), "schema");
        src.spec.get(p.file, &ptr)?;
        let function = validators.add(&label, p.file, &ptr, src.dialect).ok()?;
        return Some(ParamCheck {
            name: name.to_owned(),
            location,
            style: "json".to_owned(),
            explode: false,
            required,
            shape: ParamShape::Json,
            function,
        });
    }
    let schema_ptr = child(&p.pointer, "schema");
    let schema = src.spec.get(p.file, &schema_ptr)?;
    let style = p
        .value
        .get("style")
        .and_then(Value::as_str)
        .unwrap_or(location.default_style());
    let explode = p
        .value
        .get("explode")
        .and_then(Value::as_bool)
        .unwrap_or(style == "form");
    let supported = match location {
        ParamIn::Query => {
            ["form", "spaceDelimited", "pipeDelimited", "deepObject"].contains(&style)
        }
        ParamIn::Path => style == "simple",
        ParamIn::Header => style == "simple",
        ParamIn::Cookie => style == "form",
    };
    if !supported {
        warn(
            d,
            "style",
            format!(
                "parameter `{name}`: `style: {style}` in the {} is not decoded by the gateway",
                location.as_str()
            ),
        );
        return None;
    }
    let shape = shape(src.spec, p.file, &schema_ptr, schema);
    let function = validators
        .add(&label, p.file, &schema_ptr, src.dialect)
        .ok()?;
    Some(ParamCheck {
        name: name.to_owned(),
        location,
        style: style.to_owned(),
        explode,
        required,
        shape,
        function,
    })
}

/// Swagger 2.0 serialisations, named as OpenAPI 3 names them.
#[derive(Debug, Clone, Copy)]
enum Style {
    Form,
    SpaceDelimited,
    PipeDelimited,
}

impl Style {
    fn name(self, location: ParamIn, explode: bool) -> String {
        match self {
            // `csv` in a path or header is OpenAPI 3's `simple`.
            Style::Form if matches!(location, ParamIn::Path | ParamIn::Header) && !explode => {
                "simple"
            }
            Style::Form => "form",
            Style::SpaceDelimited => "spaceDelimited",
            Style::PipeDelimited => "pipeDelimited",
        }
        .to_owned()
    }
}

/// How a parameter's text becomes JSON: from the types its schema allows (after `$ref`s,
/// and across `allOf`, `anyOf` and `oneOf` branches), and its items' or properties'.
fn shape(spec: &Spec, file: usize, pointer: &str, schema: &Value) -> ParamShape {
    let flat = Flat::of(spec, file, pointer, schema);
    let has = |t: &str| flat.types.iter().any(|x| x == t);
    if has("array") {
        let items = flat
            .items
            .map(|(f, ptr, v)| Flat::of(spec, f, &ptr, v).coerce())
            .unwrap_or_default();
        return ParamShape::Array(items);
    }
    if has("object") {
        let props = flat
            .props
            .iter()
            .map(|(k, f, ptr, v)| (k.clone(), Flat::of(spec, *f, ptr, v).coerce()))
            .collect();
        // What a text alone is read as, for a schema that is an object or something else
        // (Stripe's `created`: a range object, or one integer).
        return ParamShape::Object(props, flat.coerce());
    }
    ParamShape::Scalar(flat.coerce())
}

/// What a schema says about the types of its values, its branches included.
#[derive(Default)]
struct Flat<'s> {
    /// Declared `type`s (empty: any).
    types: Vec<String>,
    /// OpenAPI 3.0 `nullable: true`.
    nullable: bool,
    /// Some branch gives no `type`, so any value may pass it.
    untyped: bool,
    /// The first `items` found.
    items: Option<(usize, String, &'s Value)>,
    /// `properties` from every branch, the first of each name kept.
    props: Vec<(String, usize, String, &'s Value)>,
}

impl<'s> Flat<'s> {
    fn of(spec: &'s Spec, file: usize, pointer: &str, schema: &'s Value) -> Flat<'s> {
        let mut flat = Flat::default();
        flat.add(spec, file, pointer, schema, 0);
        flat
    }

    fn add(&mut self, spec: &'s Spec, file: usize, pointer: &str, schema: &'s Value, depth: u32) {
        let Some(s) = spec.deref(file, pointer, schema) else {
            self.untyped = true;
            return;
        };
        if depth > 8 {
            self.untyped = true;
            return;
        }
        let own = types(s.value);
        let mut branched = false;
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(list) = s.value.get(key).and_then(Value::as_array) {
                branched = true;
                let base = child(&s.pointer, key);
                for (i, b) in list.iter().enumerate() {
                    self.add(spec, s.file, &child(&base, &i.to_string()), b, depth + 1);
                }
            }
        }
        if own.is_empty() && !branched {
            self.untyped = true;
        }
        self.types.extend(own);
        self.nullable |= s.value.get("nullable") == Some(&Value::Bool(true));
        if self.items.is_none()
            && let Some(items) = s.value.get("items")
        {
            self.items = Some((s.file, child(&s.pointer, "items"), items));
        }
        if let Some(map) = s.value.get("properties").and_then(Value::as_object) {
            let base = child(&s.pointer, "properties");
            for (k, v) in map {
                if !self.props.iter().any(|(n, ..)| n == k) {
                    self.props.push((k.clone(), s.file, child(&base, k), v));
                }
            }
        }
    }

    /// Which JSON types a text may be read as.
    fn coerce(&self) -> Coerce {
        let has = |t: &str| self.types.iter().any(|x| x == t);
        Coerce {
            number: has("integer") || has("number"),
            boolean: has("boolean"),
            null: has("null") || self.nullable,
            string: self.untyped || has("string"),
        }
    }
}

fn types(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

use gatewayc_vocab::media::is_json;

/// A Swagger 2.0 operation's `consumes`, or its document's.
fn consumes(src: &Source<'_, '_>) -> Vec<String> {
    src.op
        .value
        .get("consumes")
        .or_else(|| src.doc.get("consumes"))
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn body_swagger2(
    src: &Source<'_, '_>,
    p: &Resolved<'_>,
    consumes: &[String],
    validators: &mut Validators<'_, Spec>,
) -> Option<BodyCheck> {
    // No `consumes` anywhere: JSON, which is what Swagger 2.0 documents mostly take.
    if !consumes.is_empty() && !consumes.iter().any(|c| is_json(c)) {
        return None;
    }
    let ptr = child(&p.pointer, "schema");
    src.spec.get(p.file, &ptr)?;
    let function = validators
        .add(&format!("{}_body", src.name), p.file, &ptr, src.dialect)
        .ok()?;
    Some(BodyCheck {
        required: p.value.get("required").and_then(Value::as_bool) == Some(true),
        json_only: consumes.iter().all(|c| is_json(c)),
        function,
    })
}

fn request_body(
    src: &Source<'_, '_>,
    validators: &mut Validators<'_, Spec>,
    unchecked: &mut Unchecked,
) -> Option<BodyCheck> {
    let raw = src.op.value.get("requestBody")?;
    let body = src
        .spec
        .deref(src.op.file, &child(&src.op.pointer, "requestBody"), raw)?;
    let content = body.value.get("content").and_then(Value::as_object)?;
    // A body in another media type whose schema says more than "some text" (a form's
    // fields, a multipart's parts) is forwarded unchecked: a warning.
    for (media, c) in content.iter().filter(|(m, _)| !is_json(m)) {
        let media_ptr = child(&child(&body.pointer, "content"), media);
        let Some(schema) = c.get("schema") else {
            continue;
        };
        let schema = src
            .spec
            .deref(body.file, &child(&media_ptr, "schema"), schema)
            .map(|r| r.value);
        let text = schema.is_some_and(|s| s.get("type").and_then(Value::as_str) == Some("string"));
        if !text {
            unchecked.note(
                media,
                Location::key(body.file, media_ptr),
                format!("`{}`", src.name),
            );
        }
    }
    let (media, _) = content
        .iter()
        .find(|(m, c)| is_json(m) && c.get("schema").is_some())?;
    let ptr = child(&child(&child(&body.pointer, "content"), media), "schema");
    let function = validators
        .add(&format!("{}_body", src.name), body.file, &ptr, src.dialect)
        .ok()?;
    Some(BodyCheck {
        required: body.value.get("required").and_then(Value::as_bool) == Some(true),
        json_only: content.keys().all(|m| is_json(m)),
        function,
    })
}

/// The JSON schemas of the declared responses, by status (`200`, `2XX`, `default`).
fn responses(src: &Source<'_, '_>, validators: &mut Validators<'_, Spec>) -> Vec<ResponseCheck> {
    let mut out = Vec::new();
    let Some(map) = src.op.value.get("responses").and_then(Value::as_object) else {
        return out;
    };
    let base = child(&src.op.pointer, "responses");
    for (status, r) in map {
        let Some(r) = src.spec.deref(src.op.file, &child(&base, status), r) else {
            continue;
        };
        let ptr = if src.swagger2 {
            Some(child(&r.pointer, "schema")).filter(|_| r.value.get("schema").is_some())
        } else {
            r.value
                .get("content")
                .and_then(Value::as_object)
                .and_then(|c| {
                    c.iter()
                        .find(|(m, c)| is_json(m) && c.get("schema").is_some())
                })
                .map(|(m, _)| child(&child(&child(&r.pointer, "content"), m), "schema"))
        };
        let Some(ptr) = ptr else { continue };
        let name = format!("{}_response_{status}", src.name);
        if let Ok(function) = validators.add_response(&name, r.file, &ptr, src.dialect) {
            out.push(ResponseCheck {
                status: status.to_ascii_uppercase(),
                function,
            });
        }
    }
    out
}

/// What [`Unchecked`] calls Swagger 2.0's `formData` parameters.
const FORM_DATA: &str = "formData";

/// The request bodies and Swagger 2.0 `formData` parameters of one file's validated
/// operations that the gateway forwards without checking, by media type (or
/// [`FORM_DATA`]): each with the places and operations, in the order met.
#[derive(Debug, Default)]
pub(super) struct Unchecked {
    by_kind: Vec<(String, Vec<(Location, String)>)>,
}

impl Unchecked {
    /// `operation` is how the message names it: `` `createPet` ``, with the `formData`
    /// parameters' names after it.
    fn note(&mut self, kind: &str, loc: Location, operation: String) {
        let i = match self.by_kind.iter().position(|(k, _)| k == kind) {
            Some(i) => i,
            None => {
                self.by_kind.push((kind.to_owned(), Vec::new()));
                self.by_kind.len() - 1
            }
        };
        let places = &mut self.by_kind[i].1;
        // A `requestBody` shared by `$ref` is one place.
        if !places.iter().any(|(l, _)| *l == loc) {
            places.push((loc, operation));
        }
    }

    /// One W1104 per kind, where it is first written, naming the operations (a few, and
    /// how many more) and pointing at the next places; so a spec whose hundreds of
    /// operations take forms gets one warning for them, not hundreds.
    pub(super) fn warn(self, d: &mut Diagnostics) {
        const NAMED: usize = 3;
        const RELATED: usize = 5;
        for (kind, places) in self.by_kind {
            let Some((first, _)) = places.first() else {
                continue;
            };
            let what = if kind == FORM_DATA {
                "`formData` parameters are".to_owned()
            } else {
                format!("request bodies sent as `{kind}` are")
            };
            let mut names: Vec<String> = places
                .iter()
                .take(NAMED)
                .cloned()
                .map(|(_, op)| op)
                .collect();
            if places.len() > NAMED {
                names.push(format!("{} more", places.len() - NAMED));
            }
            let operations = if places.len() == 1 {
                format!("operation {}", names.join(""))
            } else {
                format!("{} operations: {}", places.len(), names.join(", "))
            };
            let mut diag = Diagnostic::warning(
                "W1104",
                Some(first.clone()),
                format!("{what} not checked by the gateway ({operations})"),
            )
            .hint(
                "only JSON bodies are checked: these are forwarded as sent, and the upstream must check them; set `x-gateway.validate: none` on an operation to silence this",
            );
            for (loc, op) in places.iter().skip(1).take(RELATED) {
                diag = diag.related(loc.clone(), format!("also {op}"));
            }
            d.push(diag);
        }
    }
}

/// A warning for each keyword the generated validators do not enforce, where it is
/// written: W1101 when values the schema forbids get through, W1102 when the schema's own
/// dialect ignores it too (an unknown keyword, often a typo).
pub(super) fn warn_unsupported(unsupported: &[Unsupported], d: &mut Diagnostics) {
    for u in unsupported {
        let loc = Some(Location::value(u.doc, u.pointer.clone()));
        let diag = if u.reason.weakens() {
            Diagnostic::warning("W1101", loc, u.detail.clone()).hint(match u.reason {
                Reason::FormatNotChecked => {
                    "the gateway checks date-time, date, uuid, email, uri, ipv4, ipv6, int32 and int64; the upstream must check this one"
                }
                Reason::RefNotFollowed => {
                    "only references into the spec's own files are followed; the upstream must check this value"
                }
                _ => "requests the schema forbids can reach the upstream; it must check them",
            })
        } else {
            Diagnostic::warning("W1102", loc, u.detail.clone())
        };
        d.push(diag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The W1104 warnings of a spec, as (message, pointer, related pointers).
    fn unchecked_bodies(yaml: &str) -> Vec<(String, String, Vec<String>)> {
        let mut d = Diagnostics::default();
        let spec = crate::spec::from_yaml(yaml);
        let model = super::super::lower(&spec, &super::super::Options::default(), &mut d);
        assert!(model.is_some(), "{:?}", d.items());
        d.items()
            .iter()
            .filter(|w| w.code == "W1104")
            .map(|w| {
                (
                    w.message.clone(),
                    w.location
                        .as_ref()
                        .map(|l| l.pointer.clone())
                        .unwrap_or_default(),
                    w.related.iter().map(|(l, _)| l.pointer.clone()).collect(),
                )
            })
            .collect()
    }

    const HEAD: &str = "x-gateway:\n  upstreams: { up: { url: \"http://127.0.0.1:9\" } }\npaths:\n";

    #[test]
    fn bodies_not_checked_are_one_warning_per_media_type_and_file() {
        let mut yaml = format!("openapi: 3.0.3\ninfo: {{ title: t, version: \"1\" }}\n{HEAD}");
        for i in 0..6 {
            yaml.push_str(&format!(
                "  /f{i}:\n    post:\n      operationId: form{i}\n      requestBody:\n        content:\n          application/x-www-form-urlencoded:\n            schema: {{ type: object, properties: {{ a: {{ type: integer }} }} }}\n          text/plain:\n            schema: {{ type: string }}\n      responses: {{ \"200\": {{ description: ok }} }}\n"
            ));
        }
        yaml.push_str("  /up:\n    post:\n      operationId: upload\n      requestBody: { $ref: \"#/components/requestBodies/Upload\" }\n      responses: { \"200\": { description: ok } }\n    put:\n      operationId: replace\n      requestBody: { $ref: \"#/components/requestBodies/Upload\" }\n      responses: { \"200\": { description: ok } }\n");
        yaml.push_str("  /off:\n    post:\n      operationId: off\n      x-gateway: { validate: none }\n      requestBody:\n        content:\n          multipart/form-data:\n            schema: { type: object }\n      responses: { \"200\": { description: ok } }\n");
        yaml.push_str("components:\n  requestBodies:\n    Upload:\n      content:\n        multipart/form-data:\n          schema: { type: object, properties: { file: { type: string, format: binary } } }\n");
        let found = unchecked_bodies(&yaml);
        assert_eq!(
            found,
            [
                (
                    "request bodies sent as `application/x-www-form-urlencoded` are not checked by the gateway (6 operations: `form0`, `form1`, `form2`, 3 more)".to_owned(),
                    "/paths/~1f0/post/requestBody/content/application~1x-www-form-urlencoded".to_owned(),
                    (1..6)
                        .map(|i| format!("/paths/~1f{i}/post/requestBody/content/application~1x-www-form-urlencoded"))
                        .collect::<Vec<_>>(),
                ),
                (
                    // One place, however many operations share it; `validate: none` is silent.
                    "request bodies sent as `multipart/form-data` are not checked by the gateway (operation `upload`)".to_owned(),
                    "/components/requestBodies/Upload/content/multipart~1form-data".to_owned(),
                    Vec::new(),
                ),
            ]
        );
    }

    #[test]
    fn swagger_2_form_data_parameters_are_named() {
        let yaml = format!(
            "swagger: \"2.0\"\ninfo: {{ title: t, version: \"1\" }}\n{HEAD}  /pets:\n    post:\n      operationId: addPet\n      consumes: [application/x-www-form-urlencoded]\n      parameters:\n        - {{ name: limit, in: query, type: integer }}\n        - {{ name: name, in: formData, type: string, required: true }}\n        - {{ name: age, in: formData, type: integer }}\n      responses: {{ \"200\": {{ description: ok }} }}\n"
        );
        assert_eq!(
            unchecked_bodies(&yaml),
            [(
                "`formData` parameters are not checked by the gateway (operation `addPet` (`name`, `age`))".to_owned(),
                "/paths/~1pets/post/parameters/1".to_owned(),
                Vec::new(),
            )]
        );
    }

    #[test]
    fn types_are_read_across_refs_and_branches() {
        let spec = crate::spec::from_yaml(
            r##"
openapi: 3.0.3
components:
  schemas:
    Range: { type: object, properties: { gt: { type: integer }, lt: { allOf: [{ $ref: "#/components/schemas/Int" }] } } }
    Int: { type: integer }
    created: { anyOf: [{ $ref: "#/components/schemas/Range" }, { type: integer }] }
    maybe: { type: string, nullable: true }
    wrapped: { allOf: [{ $ref: "#/components/schemas/Int" }] }
    free: { description: anything }
    list: { type: array, items: { oneOf: [{ type: integer }, { type: boolean }] } }
"##,
        );
        let shape_of = |name: &str| {
            let ptr = format!("/components/schemas/{name}");
            let v = spec.get(0, &ptr).unwrap_or_else(|| panic!("{name}"));
            shape(&spec, 0, &ptr, v)
        };
        let int = Coerce {
            number: true,
            ..Coerce::default()
        };
        assert_eq!(
            shape_of("created"),
            ParamShape::Object(vec![("gt".into(), int), ("lt".into(), int)], int),
            "an object or an integer: `created=1` is read as a number"
        );
        assert_eq!(shape_of("wrapped"), ParamShape::Scalar(int));
        assert_eq!(
            shape_of("maybe"),
            ParamShape::Scalar(Coerce {
                null: true,
                string: true,
                ..Coerce::default()
            })
        );
        assert_eq!(
            shape_of("free"),
            ParamShape::Scalar(Coerce {
                string: true,
                ..Coerce::default()
            })
        );
        assert_eq!(
            shape_of("list"),
            ParamShape::Array(Coerce {
                number: true,
                boolean: true,
                ..Coerce::default()
            })
        );
    }
}
