//! `x-gateway.transform`: header, query and JSON body edits and status mapping, checked
//! against the operation's schemas.
//!
//! Reading happens in two steps. [`read`] checks the syntax where the transform is written
//! (an operation's or a path item's `x-gateway`), once. [`lower`] then checks it against each
//! operation it applies to: every pointer that must exist (`pick`, `remove`, the source of
//! `rename` and `move`) is looked up in the operation's request or success-response JSON
//! schema with [`schema::resolve`]; a value set must have a type the schema admits (and be
//! one of the values it lists); a value a `rename` or `move` writes must fit where it ends
//! up as well: every type and listed value the schema of its source allows must be allowed
//! there; a request transform may not drop a member the client must send. For the
//! response, the schema clients see after the transform is computed for the published
//! contract.
//!
//! Body edits run in a fixed order, the same here and in the runtime: `pick`, then `rename`
//! and `move` (in the order written), then `remove`, then `set`.

use std::collections::BTreeSet;

use gatewayc_vocab::env::{self, Piece};
use serde_json::{Map, Value};

use super::header;
use super::reader::{self, Obj, did_you_mean};
use super::schema::{self, Lookup, SchemaRef, Types};
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::model::{
    BodyTransform, Edits, JsonValue, MessageTransform, Pointer, Template, TemplatePart, Transform,
};
use crate::spec::source::{child, escape_token};
use crate::spec::{Resolved, Spec};

/// A transform as written: syntax checked, entries with their places. Checks against
/// schemas wait for [`lower`], since a path item's transform applies to each of its
/// operations.
#[derive(Debug, Clone)]
pub(super) struct Written {
    request: Side,
    response: Side,
    status: Vec<(u16, u16)>,
    /// Where the `transform` key is.
    pub loc: Location,
}

#[derive(Debug, Clone, Default)]
struct Side {
    headers: Edits,
    query: Edits,
    body: Option<WrittenBody>,
}

#[derive(Debug, Clone)]
struct WrittenBody {
    /// The `body` object.
    loc: Location,
    pick: Vec<(Pointer, Location)>,
    /// Where `pick` is.
    pick_loc: Location,
    moves: Vec<Move>,
    remove: Vec<(Pointer, Location)>,
    set: Vec<Set>,
}

#[derive(Debug, Clone)]
struct Move {
    /// `rename` or `move`.
    key: &'static str,
    from: Pointer,
    to: Pointer,
    /// The entry's key (the source pointer).
    from_loc: Location,
    /// The entry's value (the target pointer).
    to_loc: Location,
}

#[derive(Debug, Clone)]
struct Set {
    to: Pointer,
    written: Value,
    value: JsonValue,
    /// The entry's key.
    key_loc: Location,
    /// The entry's value.
    value_loc: Location,
}

/// Which message a transform edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Request,
    Response,
}

/// Whether header `h` (lower case) is the gateway's own in direction `dir`, out of a
/// transform's reach: hop-by-hop headers, framing, `X-Request-Id`, and on requests the
/// headers the gateway sets when it forwards.
fn reserved(h: &str, dir: Dir) -> bool {
    header::HOP_BY_HOP.contains(&h)
        || ["content-length", header::X_REQUEST_ID].contains(&h)
        || (dir == Dir::Request && header::FORWARDING.contains(&h))
}

/// Reads the `transform` member of an `x-gateway` object, if there is one.
pub(super) fn read(obj: &mut Obj<'_>, d: &mut Diagnostics) -> Option<Written> {
    let loc = Location::key(obj.file, child(&obj.pointer, "transform"));
    let mut t = obj.object("transform", "`transform`", d)?;
    let (request, _) = read_side(&mut t, Dir::Request, d);
    let (response, status) = read_side(&mut t, Dir::Response, d);
    t.finish(d);
    Some(Written {
        request,
        response,
        status,
        loc,
    })
}

fn read_side(t: &mut Obj<'_>, dir: Dir, d: &mut Diagnostics) -> (Side, Vec<(u16, u16)>) {
    let (key, what, headers_what, body_what) = match dir {
        Dir::Request => (
            "request",
            "`transform.request`",
            "`transform.request.headers`",
            "`transform.request.body`",
        ),
        Dir::Response => (
            "response",
            "`transform.response`",
            "`transform.response.headers`",
            "`transform.response.body`",
        ),
    };
    let mut side = Side::default();
    let mut status = Vec::new();
    let Some(mut s) = t.object(key, what, d) else {
        return (side, status);
    };
    if let Some(mut h) = s.object("headers", headers_what, d) {
        side.headers = read_edits(&mut h, "set", Names::Header(dir), d);
        h.finish(d);
    }
    if dir == Dir::Request
        && let Some(mut q) = s.object("query", "`transform.request.query`", d)
    {
        side.query = read_edits(&mut q, "add", Names::Query, d);
        q.finish(d);
    }
    if let Some(mut b) = s.object("body", body_what, d) {
        side.body = Some(read_body(&mut b, d));
        b.finish(d);
    }
    if dir == Dir::Response {
        status = read_status(&mut s, d);
    }
    s.finish(d);
    (side, status)
}

#[derive(Debug, Clone, Copy)]
enum Names {
    Header(Dir),
    Query,
}

/// A header or query parameter name as the model keeps it (headers lower case).
fn name(names: Names, text: &str, loc: Location, d: &mut Diagnostics) -> Option<String> {
    match names {
        Names::Query => {
            if text.is_empty() {
                d.push(Diagnostic::error(
                    "E0805",
                    Some(loc),
                    "a query parameter name cannot be empty",
                ));
                return None;
            }
            Some(text.to_owned())
        }
        Names::Header(dir) => {
            let Some(lower) = header::name(text) else {
                d.push(
                    Diagnostic::error(
                        "E0805",
                        Some(loc),
                        format!("`{text}` is not a valid header name"),
                    )
                    .hint("a header name is letters, digits and ``!#$%&'*+-.^_`|~``"),
                );
                return None;
            };
            if reserved(&lower, dir) {
                d.push(
                    Diagnostic::error(
                        "E0805",
                        Some(loc),
                        format!("a transform cannot change the `{text}` header"),
                    )
                    .hint(
                        "the gateway manages connection and framing headers, the X-Forwarded-* headers and X-Request-Id itself",
                    ),
                );
                return None;
            }
            Some(lower)
        }
    }
}

/// A list of strings (a single string is a list of one), each with its location.
fn string_list(o: &mut Obj<'_>, key: &'static str, d: &mut Diagnostics) -> Vec<(String, Location)> {
    let ptr = child(&o.pointer, key);
    let file = o.file;
    match o.raw(key) {
        None => Vec::new(),
        Some(Value::String(s)) => vec![(s.clone(), Location::value(file, ptr))],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let loc = Location::value(file, child(&ptr, &i.to_string()));
                match v {
                    Value::String(s) => Some((s.clone(), loc)),
                    other => {
                        d.push(reader::type_error(loc, key, "a list of strings", other));
                        None
                    }
                }
            })
            .collect(),
        Some(other) => {
            d.push(reader::type_error(
                Location::value(file, ptr),
                key,
                "a list of strings",
                other,
            ));
            Vec::new()
        }
    }
}

fn read_edits(o: &mut Obj<'_>, set_key: &'static str, names: Names, d: &mut Diagnostics) -> Edits {
    let mut edits = Edits::default();
    for (text, loc) in string_list(o, "remove", d) {
        if let Some(n) = name(names, &text, loc, d) {
            edits.remove.push(n);
        }
    }
    let file = o.file;
    for (from, ptr, to) in o.entries("rename", d) {
        let Some(to) = to.as_str() else {
            d.push(reader::type_error(
                Location::value(file, ptr),
                &from,
                "a name",
                to,
            ));
            continue;
        };
        let from = name(names, &from, Location::key(file, ptr.clone()), d);
        let to = name(names, to, Location::value(file, ptr), d);
        if let (Some(from), Some(to)) = (from, to) {
            edits.rename.push((from, to));
        }
    }
    for (key, ptr, value) in o.entries(set_key, d) {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                d.push(reader::type_error(
                    Location::value(file, ptr),
                    &key,
                    "a string",
                    other,
                ));
                continue;
            }
        };
        let value_loc = Location::value(file, ptr.clone());
        let Some(n) = name(names, &key, Location::key(file, ptr), d) else {
            continue;
        };
        let template = template(&text, &value_loc, d);
        if matches!(names, Names::Header(_)) && !template_is_header_safe(&template) {
            d.push(Diagnostic::error(
                "E0805",
                Some(value_loc),
                format!(
                    "the value of header `{key}` holds a character a header value cannot carry"
                ),
            ));
            continue;
        }
        edits.set.push((n, template));
    }
    edits
}

/// Whether the literal parts of a header value are visible ASCII, spaces and tabs.
fn template_is_header_safe(t: &Template) -> bool {
    t.0.iter().all(|p| match p {
        TemplatePart::Lit(s) => s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)),
        TemplatePart::Env { default, .. } => default
            .as_deref()
            .unwrap_or("")
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b)),
        _ => true,
    })
}

/// Parses text with `${NAME}`, `${NAME:-default}` (environment, read at start-up) and
/// `${request.id}`, `${request.consumer}`, `${request.claim.NAME}` (from the request).
/// `$$` is a literal `$`, as are other `$`s.
pub(super) fn template(text: &str, loc: &Location, d: &mut Diagnostics) -> Template {
    let mut parts = Vec::new();
    let mut lit = String::new();
    for piece in env::pieces(text) {
        match piece {
            Piece::Text(s) => lit.push_str(s),
            Piece::Unclosed(rest) => {
                d.push(
                    Diagnostic::error(
                        "E0807",
                        Some(loc.clone()),
                        format!("unclosed `${{` in `{text}`"),
                    )
                    .hint("write `$$` for a literal `$`"),
                );
                lit.push_str(rest);
            }
            Piece::Ref { raw, name, default } => match reference(name, default) {
                Ok(part) => {
                    if !lit.is_empty() {
                        parts.push(TemplatePart::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(part);
                }
                Err(why) => d.push(
                    Diagnostic::error(
                        "E0807",
                        Some(loc.clone()),
                        if raw == text {
                            format!("`{text}` {why}")
                        } else {
                            format!("`{raw}` in `{text}` {why}")
                        },
                    )
                    .hint(
                        "write `${NAME}` or `${NAME:-default}` for an environment variable, or `${request.id}`, `${request.consumer}`, `${request.claim.NAME}`",
                    ),
                ),
            },
        }
    }
    if !lit.is_empty() {
        parts.push(TemplatePart::Lit(lit));
    }
    Template(parts)
}

/// What `${name}` or `${name:-default}` stands for in a transform: an environment variable
/// (the syntax `gatewayc_vocab::env` defines) or one of the request values.
fn reference(name: &str, default: Option<&str>) -> Result<TemplatePart, &'static str> {
    if name.contains('.') {
        if default.is_some() {
            return Err("takes no default: only environment variables have one");
        }
        return match name {
            "request.id" => Ok(TemplatePart::RequestId),
            "request.consumer" => Ok(TemplatePart::Consumer),
            _ => match name.strip_prefix("request.claim.") {
                Some(claim) if !claim.is_empty() => Ok(TemplatePart::Claim(claim.to_owned())),
                _ => Err("is not a request value the gateway knows"),
            },
        };
    }
    if !env::is_var_name(name) {
        return Err("is not a variable reference");
    }
    Ok(TemplatePart::Env {
        name: name.to_owned(),
        default: default.map(str::to_owned),
    })
}

/// A body pointer; the empty pointer (the whole body) is refused.
fn pointer(text: &str, loc: Location, d: &mut Diagnostics) -> Option<Pointer> {
    match schema::tokens(text) {
        Some(t) if t.is_empty() => {
            d.push(
                Diagnostic::error(
                    "E0801",
                    Some(loc),
                    "the empty pointer names the whole body; a body transform names members",
                )
                .hint("name a member, as in `/owner/name`"),
            );
            None
        }
        Some(t) => Some(t),
        None => {
            d.push(
                Diagnostic::error("E0801", Some(loc), format!("`{text}` is not a JSON pointer"))
                    .hint("a pointer starts with `/`, as in `/owner/name`; in a member name write `~1` for `/` and `~0` for `~`"),
            );
            None
        }
    }
}

fn read_body(b: &mut Obj<'_>, d: &mut Diagnostics) -> WrittenBody {
    let file = b.file;
    let mut body = WrittenBody {
        loc: b.here(),
        pick: Vec::new(),
        pick_loc: b.loc("pick"),
        moves: Vec::new(),
        remove: Vec::new(),
        set: Vec::new(),
    };
    for (text, loc) in string_list(b, "pick", d) {
        if let Some(p) = pointer(&text, loc.clone(), d) {
            body.pick.push((p, loc));
        }
    }
    for key in ["rename", "move"] {
        for (from_text, ptr, to) in b.entries(key, d) {
            let from_loc = Location::key(file, ptr.clone());
            let to_loc = Location::value(file, ptr);
            let Some(to_text) = to.as_str() else {
                d.push(reader::type_error(to_loc, &from_text, "a JSON pointer", to));
                continue;
            };
            let from = pointer(&from_text, from_loc.clone(), d);
            let to = pointer(to_text, to_loc.clone(), d);
            let (Some(from), Some(to)) = (from, to) else {
                continue;
            };
            if from == to {
                d.push(Diagnostic::error(
                    "E0808",
                    Some(from_loc),
                    format!("`{key}` moves `{from_text}` onto itself"),
                ));
                continue;
            }
            if key == "rename" && from[..from.len() - 1] != to[..to.len() - 1] {
                d.push(
                    Diagnostic::error(
                        "E0808",
                        Some(to_loc),
                        format!("`rename` keeps a member in its place, but `{to_text}` is not beside `{from_text}`"),
                    )
                    .hint("use `move` to put a member elsewhere"),
                );
                continue;
            }
            let star = |p: &Pointer| p.iter().rposition(|t| t == "*");
            let (sf, st) = (star(&from), star(&to));
            if (sf.is_some() || st.is_some())
                && (sf != st || sf.is_some_and(|k| from[..=k] != to[..=k]))
            {
                d.push(
                    Diagnostic::error(
                        "E0808",
                        Some(to_loc),
                        format!("`{from_text}` → `{to_text}`: a `*` step must be the same in both pointers, so the member stays within each element"),
                    )
                    .hint("as in `/items/*/a` → `/items/*/b`"),
                );
                continue;
            }
            body.moves.push(Move {
                key,
                from,
                to,
                from_loc,
                to_loc,
            });
        }
    }
    for (text, loc) in string_list(b, "remove", d) {
        if let Some(p) = pointer(&text, loc.clone(), d) {
            body.remove.push((p, loc));
        }
    }
    for (text, ptr, value) in b.entries("set", d) {
        let key_loc = Location::key(file, ptr.clone());
        let value_loc = Location::value(file, ptr);
        let Some(to) = pointer(&text, key_loc.clone(), d) else {
            continue;
        };
        let json = json_value(value, &value_loc, d);
        body.set.push(Set {
            to,
            written: value.clone(),
            value: json,
            key_loc,
            value_loc,
        });
    }
    body
}

fn json_value(v: &Value, loc: &Location, d: &mut Diagnostics) -> JsonValue {
    match v {
        Value::Null => JsonValue::Null,
        Value::Bool(b) => JsonValue::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => JsonValue::UInt(u),
            (None, Some(i)) => JsonValue::Int(i),
            _ => JsonValue::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => JsonValue::Str(template(s, loc, d)),
        Value::Array(items) => {
            JsonValue::Array(items.iter().map(|i| json_value(i, loc, d)).collect())
        }
        Value::Object(m) => JsonValue::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), json_value(v, loc, d)))
                .collect(),
        ),
    }
}

fn read_status(s: &mut Obj<'_>, d: &mut Diagnostics) -> Vec<(u16, u16)> {
    let file = s.file;
    let code = |v: &Value| -> Option<u16> {
        match v {
            Value::Number(n) => n.as_u64().and_then(|c| u16::try_from(c).ok()),
            Value::String(t) => t.trim().parse().ok(),
            _ => None,
        }
        .filter(|c| (100..=599).contains(c))
    };
    let mut out = Vec::new();
    for (from, ptr, to) in s.entries("status", d) {
        let from_code = code(&Value::String(from.clone()));
        if from_code.is_none() {
            d.push(
                Diagnostic::error(
                    "E0806",
                    Some(Location::key(file, ptr.clone())),
                    format!("`{from}` is not an HTTP status code"),
                )
                .hint("status codes are whole numbers from 100 to 599"),
            );
        }
        // A response cannot become informational: a 1xx (101 above all) would end it.
        let to_code = code(to).filter(|c| *c >= 200);
        if to_code.is_none() {
            d.push(
                Diagnostic::error(
                    "E0806",
                    Some(Location::value(file, ptr)),
                    if code(to).is_some() {
                        format!("a response cannot be mapped to `{}`: an informational status would end it", show(to))
                    } else {
                        format!("`{}` is not an HTTP status code", show(to))
                    },
                )
                .hint("a response can be mapped to a status from 200 to 599"),
            );
        }
        if let (Some(f), Some(t)) = (from_code, to_code) {
            out.push((f, t));
        }
    }
    out.sort_unstable();
    out
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A pointer as written (tokens escaped again).
fn display(p: &[String]) -> String {
    p.iter().map(|t| format!("/{}", escape_token(t))).collect()
}

/// What a body is called in messages.
fn whose(dir: Dir, op: &str) -> String {
    match dir {
        Dir::Request => format!("the request body of `{op}`"),
        Dir::Response => format!("the response body of `{op}`"),
    }
}

/// Checks a transform against the operation at `op` (in path item `item`; `label` is
/// `METHOD /path`) and returns it with the response schema clients see after it (when it
/// edits the response body and the operation declares a JSON response schema).
pub(super) fn lower(
    spec: &Spec,
    w: &Written,
    item: &Resolved<'_>,
    op: &Resolved<'_>,
    label: &str,
    d: &mut Diagnostics,
) -> (Transform, Option<Value>) {
    let mut transform = Transform {
        request: MessageTransform {
            headers: w.request.headers.clone(),
            query: w.request.query.clone(),
            body: None,
        },
        response: MessageTransform {
            headers: w.response.headers.clone(),
            query: Edits::default(),
            body: None,
        },
        status: w.status.clone(),
    };
    let mut published = None;
    if let Some(body) = &w.request.body {
        let schema = schema::request_body(spec, Some(item), op).map(|b| b.schema);
        transform.request.body = Some(check_body(
            spec,
            body,
            schema.as_ref(),
            Dir::Request,
            label,
            d,
        ));
    }
    if let Some(body) = &w.response.body {
        let schema = schema::success_response(spec, op).map(|b| b.schema);
        let checked = check_body(spec, body, schema.as_ref(), Dir::Response, label, d);
        published = schema.map(|s| publish(spec, &s, &checked));
        transform.response.body = Some(checked);
    }
    (transform, published)
}

fn check_body(
    spec: &Spec,
    b: &WrittenBody,
    schema: Option<&Resolved<'_>>,
    dir: Dir,
    label: &str,
    d: &mut Diagnostics,
) -> BodyTransform {
    let out = BodyTransform {
        pick: b.pick.iter().map(|(p, _)| p.clone()).collect(),
        moves: b
            .moves
            .iter()
            .map(|m| (m.from.clone(), m.to.clone()))
            .collect(),
        remove: b.remove.iter().map(|(p, _)| p.clone()).collect(),
        set: b
            .set
            .iter()
            .map(|s| (s.to.clone(), s.value.clone()))
            .collect(),
    };
    let whose = whose(dir, label);
    let Some(root) = schema else {
        let (key, what) = match dir {
            Dir::Request => ("request", "JSON request body schema"),
            Dir::Response => ("response", "JSON schema for its success response"),
        };
        d.push(
            Diagnostic::warning(
                "W0801",
                Some(b.loc.clone()),
                format!("`transform.{key}.body` cannot be checked for `{label}`: the operation declares no {what}"),
            )
            .hint("declare the body's schema so that gatewayc can check the pointers"),
        );
        return out;
    };
    let must_exist = b
        .pick
        .iter()
        .map(|(p, l)| ("pick", p, l))
        .chain(b.moves.iter().map(|m| ("move", &m.from, &m.from_loc)))
        .chain(b.remove.iter().map(|(p, l)| ("remove", p, l)));
    for (what, p, loc) in must_exist {
        let found = match schema::resolve_tokens(spec, root.clone(), p) {
            Lookup::Found(s) => s,
            Lookup::Missing {
                at_segment,
                known,
                parent,
            } => {
                d.push(missing(p, at_segment, &known, &parent, loc.clone(), &whose));
                continue;
            }
            Lookup::Undecidable { at_segment, reason } => {
                undecidable(p, at_segment, &reason, loc.clone(), &whose, d);
                continue;
            }
        };
        if dir == Dir::Request && what == "remove" && client_must_send(&found) {
            d.push(
                Diagnostic::error(
                    "E0803",
                    Some(loc.clone()),
                    format!(
                        "`remove` drops `{}`, which the client must send: {whose} requires it",
                        display(p)
                    ),
                )
                .related(found.loc(), "the member's schema")
                .hint("make the member optional in the schema, or stop removing it"),
            );
        }
    }
    if dir == Dir::Request && !b.pick.is_empty() {
        let picks: Vec<&Pointer> = b.pick.iter().map(|(p, _)| p).collect();
        for left_out in pick_leaves_out(spec, root, &picks) {
            d.push(
                Diagnostic::error(
                    "E0803",
                    Some(b.pick_loc.clone()),
                    format!(
                        "`pick` leaves out `{}`, which the client must send: {whose} requires it",
                        display(&left_out)
                    ),
                )
                .hint("pick it too, or make it optional in the schema"),
            );
        }
    }
    for (k, m) in b.moves.iter().enumerate() {
        check_target(spec, root, &m.to, None, &m.to_loc, &whose, d);
        check_moved(spec, root, b, k, dir, &whose, d);
    }
    for s in &b.set {
        let types = match &s.value {
            JsonValue::Str(_) => Types::STRING,
            _ => Types::of(&s.written),
        };
        let put = Put {
            types,
            literal: literal(&s.value),
            loc: &s.value_loc,
        };
        check_target(spec, root, &s.to, Some(put), &s.key_loc, &whose, d);
    }
    out
}

/// A required member the client sends (not `readOnly`, which only responses carry).
fn client_must_send(s: &SchemaRef<'_>) -> bool {
    s.is_required() && !s.flag("readOnly")
}

/// A value a `set` writes: its type, the value itself when it holds no `${...}`
/// reference, and where it is written.
struct Put<'a> {
    types: Types,
    literal: Option<Value>,
    loc: &'a Location,
}

/// Checks where a `set` or `move` puts a value: the member may be new, but each existing
/// step must be able to hold members, and a set value must have a type the schema admits
/// (and be one of its values, when it lists them).
fn check_target(
    spec: &Spec,
    root: &Resolved<'_>,
    to: &Pointer,
    value: Option<Put<'_>>,
    loc: &Location,
    whose: &str,
    d: &mut Diagnostics,
) {
    match schema::resolve_tokens(spec, root.clone(), to) {
        Lookup::Found(s) => {
            let Some(put) = value else { return };
            if !s.types().intersects(put.types) {
                d.push(
                    Diagnostic::error(
                        "E0804",
                        Some(put.loc.clone()),
                        format!(
                            "`{}` is {} in {whose}, but the value set is {}",
                            display(to),
                            article(s.types()),
                            article(put.types)
                        ),
                    )
                    .related(s.loc(), "the member's schema"),
                );
            } else if let (Some(v), Some(allowed)) = (&put.literal, listed(&s))
                && !v.is_null()
                && !allowed.iter().any(|a| same(v, a))
            {
                d.push(
                    Diagnostic::error(
                        "E0804",
                        Some(put.loc.clone()),
                        format!(
                            "`{}` is {} in {whose}, but the value set is `{v}`",
                            display(to),
                            one_of(&allowed),
                        ),
                    )
                    .related(s.loc(), "the member's schema"),
                );
            }
        }
        Lookup::Missing {
            at_segment,
            known,
            parent,
        } => {
            let parent_types = parent.types();
            if !parent_types.intersects(Types::OBJECT) {
                d.push(
                    Diagnostic::error(
                        "E0804",
                        Some(loc.clone()),
                        format!(
                            "`{}` cannot be written: `{}` is {} in {whose}, which has no members",
                            display(to),
                            display(&to[..at_segment]),
                            article(parent_types)
                        ),
                    )
                    .related(parent.loc(), "its schema"),
                );
            } else if value.is_some()
                && let Some(best) = did_you_mean(
                    &to[at_segment],
                    &known.iter().map(String::as_str).collect::<Vec<_>>(),
                )
            {
                // Only for `set`: a rename's target is meant to resemble its source.
                let mut fixed = to.clone();
                fixed[at_segment] = best.to_owned();
                d.push(
                    Diagnostic::warning(
                        "W0803",
                        Some(loc.clone()),
                        format!("`{}` is not in {whose}, so it is added", display(to)),
                    )
                    .hint(format!("did you mean `{}`?", display(&fixed))),
                );
            }
        }
        // A new member of a free-form object, or one a oneOf branch may hold: nothing to
        // check.
        Lookup::Undecidable { .. } => {}
    }
}

/// Where the value at `p` was in the body as it arrived, before `moves` ran (in order):
/// `None` when one of them took it away and none put anything back there.
fn origin(moves: &[Move], p: &[String]) -> Option<Pointer> {
    let mut at = p.to_vec();
    for m in moves.iter().rev() {
        if at.starts_with(&m.to) {
            let mut before = m.from.clone();
            before.extend_from_slice(&at[m.to.len()..]);
            at = before;
        } else if at.starts_with(&m.from) {
            return None;
        }
    }
    Some(at)
}

/// Where a value that move `k` puts down at `at` (its target, or a place inside it) is when
/// the body leaves the gateway: a later move may carry it, or its parent, elsewhere. `None`
/// when move `k` does not answer for it: a later move takes that value itself on (and is
/// checked in its place), or a later move, `remove` or `set` replaces or drops it.
fn destination(b: &WrittenBody, k: usize, mut at: Pointer) -> Option<Pointer> {
    for m in &b.moves[k + 1..] {
        if at.starts_with(&m.from) {
            if at.len() == m.from.len() {
                return None;
            }
            let mut after = m.to.clone();
            after.extend_from_slice(&at[m.from.len()..]);
            at = after;
        } else if at.starts_with(&m.to) {
            return None;
        }
    }
    let replaced = b
        .remove
        .iter()
        .map(|(p, _)| p)
        .chain(b.set.iter().map(|s| &s.to))
        .any(|p| at.starts_with(p));
    (!replaced).then_some(at)
}

/// How a moved value may not fit where it lands.
enum Misfit {
    /// Values of types `left` (part of what the moved member may be) are not allowed there.
    Types(Types),
    /// These listed values of the moved member are not among the ones allowed there.
    Values(Vec<Value>),
}

/// A place inside a moved value that does not fit where it lands.
struct Landing<'s> {
    /// The place inside the moved value (empty: the value itself).
    sub: Pointer,
    /// Where it was in the body as it arrived.
    from: Pointer,
    /// Where it is when the body leaves.
    to: Pointer,
    src: SchemaRef<'s>,
    dst: SchemaRef<'s>,
    /// How it does not fit (`None` while it is being looked at).
    misfit: Option<Misfit>,
}

/// How deep inside a moved value (array items, object members) the schemas are compared.
const MOVED_DEPTH: usize = 4;
/// Most places inside one moved value whose schemas are compared.
const MOVED_BUDGET: usize = 64;

/// Checks that the value `rename`/`move` number `k` writes fits the schema where it ends
/// up, as a `set` value must: every type (and every listed value) that the schema of the
/// member it came from allows must be allowed there; the same for its array items and for
/// the members both objects declare, a few levels down. A member whose schema says nothing
/// of its type, and a place the target schema does not declare, are not checked.
fn check_moved(
    spec: &Spec,
    root: &Resolved<'_>,
    b: &WrittenBody,
    k: usize,
    dir: Dir,
    whose: &str,
    d: &mut Diagnostics,
) {
    let m = &b.moves[k];
    let mut budget = MOVED_BUDGET;
    let Some(l) = first_misfit(spec, root, b, k, &mut Vec::new(), None, &mut budget) else {
        return;
    };
    let Some(misfit) = &l.misfit else {
        return;
    };
    let (moved, allowed) = (describe(&l.src), describe(&l.dst));
    let sent = if l.from == [m.from.as_slice(), &l.sub].concat() {
        String::new()
    } else {
        format!("sent as `{}`, ", display(&l.from))
    };
    let lands = if l.to == [m.to.as_slice(), &l.sub].concat() {
        String::new()
    } else {
        format!(", which a later move takes to `{}`", display(&l.to))
    };
    let head = if l.sub.is_empty() {
        format!(
            "`{}` puts `{}` ({sent}{moved}) at `{}`{lands}",
            m.key,
            display(&m.from),
            display(&m.to)
        )
    } else {
        format!(
            "`{}` puts `{}` at `{}`, so `{}` ({sent}{moved}) lands at `{}`{lands}",
            m.key,
            display(&m.from),
            display(&m.to),
            display(&[m.from.as_slice(), &l.sub].concat()),
            display(&[m.to.as_slice(), &l.sub].concat()),
        )
    };
    let tail = match misfit {
        // Nothing the member may be fits: the types say it all.
        Misfit::Types(left) if *left == value_types(&l.src) => String::new(),
        Misfit::Types(left) if *left == Types::NUMBER.without(Types::INTEGER) => {
            ": a number with a fraction would not fit".to_owned()
        }
        Misfit::Types(left) => format!(": {} would not fit", article(*left)),
        Misfit::Values(left) if listed(&l.src).is_some_and(|all| all.len() == left.len()) => {
            String::new()
        }
        Misfit::Values(left) => {
            let shown: Vec<String> = left.iter().map(|v| format!("`{v}`")).collect();
            format!(": {} would not fit", shown.join(", "))
        }
    };
    let who = match dir {
        Dir::Request => "the upstream would receive a value its schema forbids",
        Dir::Response => "clients would receive a value the schema forbids",
    };
    d.push(
        Diagnostic::error(
            "E0804",
            Some(m.to_loc.clone()),
            format!(
                "{head}, but `{}` is {allowed} in {whose}{tail}",
                display(&l.to)
            ),
        )
        .related(l.src.loc(), "the moved member's schema")
        .related(l.dst.loc(), "the schema where it lands")
        .hint(format!(
            "{who}: move it to a member that admits it, or make the two schemas agree"
        )),
    );
}

/// The first place, `sub` or inside it, where what move `k` writes does not fit. `up` is
/// the place one step up (its pointers as arrived and as sent, and their schemas): a step
/// from there is cheaper than a lookup from the root.
fn first_misfit<'s>(
    spec: &'s Spec,
    root: &Resolved<'s>,
    b: &WrittenBody,
    k: usize,
    sub: &mut Pointer,
    up: Option<&Landing<'s>>,
    budget: &mut usize,
) -> Option<Landing<'s>> {
    if *budget == 0 {
        return None;
    }
    *budget -= 1;
    let m = &b.moves[k];
    let from = origin(&b.moves[..k], &[m.from.as_slice(), sub].concat())?;
    // `pick` runs first: a member it does not keep is not there to be moved.
    let picked = b
        .pick
        .iter()
        .any(|(p, _)| from.starts_with(p) || p.starts_with(&from));
    if !b.pick.is_empty() && !picked {
        return None;
    }
    let to = destination(b, k, [m.to.as_slice(), sub].concat())?;
    let below = |parent: &Pointer, here: &Pointer| {
        here.split_last()
            .is_some_and(|(_, head)| head == parent.as_slice())
    };
    let (src, dst) = match (up, sub.last()) {
        (Some(up), Some(token)) => {
            // Not one step below where its parent came from: an earlier move put it there,
            // and that move answers for it (see `destination`).
            if !below(&up.from, &from) || !below(&up.to, &to) {
                return None;
            }
            (up.src.member(spec, token)?, up.dst.member(spec, token)?)
        }
        _ => match (
            schema::resolve_tokens(spec, root.clone(), &from),
            schema::resolve_tokens(spec, root.clone(), &to),
        ) {
            (Lookup::Found(src), Lookup::Found(dst)) => (src, dst),
            _ => return None,
        },
    };
    let mut here = Landing {
        sub: sub.clone(),
        from,
        to,
        src,
        dst,
        misfit: None,
    };
    here.misfit = misfit(&here.src, &here.dst);
    if here.misfit.is_some() {
        return Some(here);
    }
    if sub.len() >= MOVED_DEPTH {
        return None;
    }
    let (moved, there) = (value_types(&here.src), here.dst.types());
    let mut steps = Vec::new();
    if moved.intersects(Types::ARRAY) && there.intersects(Types::ARRAY) {
        steps.push("*".to_owned());
    }
    if moved.intersects(Types::OBJECT) && there.intersects(Types::OBJECT) {
        steps.extend(here.src.property_names());
    }
    for step in steps {
        sub.push(step);
        let found = first_misfit(spec, root, b, k, sub, Some(&here), budget);
        sub.pop();
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Whether a value of schema `src` may break schema `dst`: a type `src` allows that `dst`
/// does not (an integer fits a number; anything fits a schema without `type`), or, when
/// both list their values (`enum`, `const`), a value of `src` that `dst` does not list.
/// `None` too when `src` says nothing of its type.
fn misfit(src: &SchemaRef<'_>, dst: &SchemaRef<'_>) -> Option<Misfit> {
    let moved = value_types(src);
    if moved == Types::ANY || dst.types() == Types::NONE {
        return None;
    }
    let left = moved.without(dst_types(dst));
    if left != Types::NONE {
        return Some(Misfit::Types(left));
    }
    let (Some(values), Some(allowed)) = (listed(src), listed(dst)) else {
        return None;
    };
    // `null` was decided by the types: a nullable member's list need not name it.
    let left: Vec<Value> = values
        .into_iter()
        .filter(|v| !v.is_null() && !allowed.iter().any(|a| same(v, a)))
        .cloned()
        .collect();
    (!left.is_empty()).then_some(Misfit::Values(left))
}

/// The types a moved member's values may have: those of its listed values when it lists
/// them, the types its schema admits otherwise.
fn value_types(s: &SchemaRef<'_>) -> Types {
    match listed(s) {
        Some(values) => values
            .iter()
            .map(|v| Types::of(v))
            .fold(Types::NONE, Types::union),
        None => s.types(),
    }
}

/// The types a schema lets a value be where it lands: those of its listed values (and
/// `null`, when it is nullable) when it lists them, the types it admits otherwise.
fn dst_types(s: &SchemaRef<'_>) -> Types {
    let declared = s.types();
    match listed(s) {
        Some(values) => values
            .iter()
            .map(|v| Types::of(v))
            .fold(declared.intersect(Types::NULL), Types::union),
        None => declared,
    }
}

/// A schema's type or values, for a message: `an integer`, `one of "a", "b"`.
fn describe(s: &SchemaRef<'_>) -> String {
    match listed(s) {
        Some(values) => one_of(&values),
        None => article(s.types()),
    }
}

/// `one of `"a"`, `"b"``, `always `"a"``: listed values in a message.
fn one_of(values: &[&Value]) -> String {
    const SHOWN: usize = 8;
    let shown: Vec<String> = values
        .iter()
        .take(SHOWN)
        .map(|v| format!("`{v}`"))
        .collect();
    match values.len() {
        0 => "no value at all".to_owned(),
        1 => format!("always {}", shown.join("")),
        n if n > SHOWN => format!("one of {}, ...", shown.join(", ")),
        _ => format!("one of {}", shown.join(", ")),
    }
}

/// The values a schema allows when it lists them (`enum`, `const`) in every alternative,
/// keeping those of a type it admits; `None` when some alternative allows values it does
/// not list.
fn listed<'s>(s: &SchemaRef<'s>) -> Option<Vec<&'s Value>> {
    let types = s.types();
    let mut out: Vec<&'s Value> = Vec::new();
    for conj in &s.alternatives {
        let mut alt: Option<Vec<&'s Value>> = None;
        for n in conj {
            let mut node: Option<Vec<&'s Value>> = n
                .value
                .get("enum")
                .and_then(Value::as_array)
                .map(|e| e.iter().collect());
            if let Some(c) = n.value.get("const") {
                node = Some(match node {
                    Some(e) => e.into_iter().filter(|v| same(v, c)).collect(),
                    None => vec![c],
                });
            }
            if let Some(node) = node {
                alt = Some(match alt {
                    None => node,
                    Some(a) => a
                        .into_iter()
                        .filter(|v| node.iter().any(|w| same(v, w)))
                        .collect(),
                });
            }
        }
        for v in alt? {
            if types.admits(v) && !out.iter().any(|o| same(o, v)) {
                out.push(v);
            }
        }
    }
    Some(out)
}

/// Whether two JSON values are equal as JSON Schema compares them (`1` and `1.0` are).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            x.as_f64() == y.as_f64()
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// A `set` value as JSON, when it holds no `${...}` reference.
fn literal(v: &JsonValue) -> Option<Value> {
    Some(match v {
        JsonValue::Null => Value::Null,
        JsonValue::Bool(b) => Value::Bool(*b),
        JsonValue::Int(i) => Value::from(*i),
        JsonValue::UInt(u) => Value::from(*u),
        JsonValue::Float(f) => Value::Number(serde_json::Number::from_f64(*f)?),
        JsonValue::Str(t) => Value::String(
            t.0.iter()
                .map(|p| match p {
                    TemplatePart::Lit(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect::<Option<String>>()?,
        ),
        JsonValue::Array(items) => {
            Value::Array(items.iter().map(literal).collect::<Option<Vec<_>>>()?)
        }
        JsonValue::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, v)| Some((k.clone(), literal(v)?)))
                .collect::<Option<Map<String, Value>>>()?,
        ),
    })
}

/// `an integer`, `a string or null`, `null`, `any type`: a schema's types in a message.
fn article(t: Types) -> String {
    let text = t.to_string();
    if t == Types::ANY || t == Types::NONE || t == Types::NULL {
        return text;
    }
    if text.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {text}")
    } else {
        format!("a {text}")
    }
}

fn missing(
    p: &Pointer,
    at: usize,
    known: &[String],
    parent: &SchemaRef<'_>,
    loc: Location,
    whose: &str,
) -> Diagnostic {
    let step = &p[at];
    let parent_name = if at == 0 {
        "the body".to_owned()
    } else {
        format!("`{}`", display(&p[..at]))
    };
    let message = if known.is_empty() && !parent.types().intersects(Types::OBJECT) {
        format!(
            "`{}` names nothing in {whose}: {parent_name} is {}, which has no members",
            display(p),
            article(parent.types())
        )
    } else {
        format!(
            "`{}` names nothing in {whose}: {parent_name} has no member `{step}`",
            display(p)
        )
    };
    let names: Vec<&str> = known.iter().map(String::as_str).collect();
    let mut diag =
        Diagnostic::error("E0802", Some(loc), message).related(parent.loc(), "the schema");
    if let Some(best) = did_you_mean(step, &names) {
        let mut fixed = p.clone();
        fixed[at] = best.to_owned();
        diag = diag.hint(format!("did you mean `{}`?", display(&fixed)));
    } else if !names.is_empty() {
        let shown: Vec<&str> = names.iter().take(12).copied().collect();
        let more = if names.len() > shown.len() {
            ", ..."
        } else {
            ""
        };
        diag = diag.hint(format!("its members are: {}{more}", shown.join(", ")));
    }
    diag
}

fn undecidable(
    p: &Pointer,
    at: usize,
    reason: &str,
    loc: Location,
    whose: &str,
    d: &mut Diagnostics,
) {
    let upto = if at + 1 < p.len() {
        format!(" at `{}`", display(&p[..=at]))
    } else {
        String::new()
    };
    d.push(Diagnostic::warning(
        "W0802",
        Some(loc),
        format!(
            "`{}` cannot be checked against {whose}{upto}: {reason}",
            display(p)
        ),
    ));
}

/// The members the client must send that a request `pick` does not keep: for each object
/// the picks go through, its required members that no pick names.
fn pick_leaves_out(spec: &Spec, root: &Resolved<'_>, picks: &[&Pointer]) -> Vec<Pointer> {
    let mut prefixes: BTreeSet<Pointer> = BTreeSet::new();
    for p in picks {
        for i in 0..p.len() {
            let prefix = p[..i].to_vec();
            // A pick of the prefix itself (or of one of its parents) keeps it whole.
            if picks.iter().any(|q| prefix.starts_with(q)) {
                continue;
            }
            prefixes.insert(prefix);
        }
    }
    let mut out = Vec::new();
    for prefix in prefixes {
        let Lookup::Found(s) = schema::resolve_tokens(spec, root.clone(), &prefix) else {
            continue;
        };
        for name in required_names(&s) {
            let mut member = prefix.clone();
            member.push(name);
            if picks.iter().any(|q| q.starts_with(&member)) {
                continue;
            }
            let must = match schema::resolve_tokens(spec, root.clone(), &member) {
                Lookup::Found(m) => !m.flag("readOnly"),
                _ => true,
            };
            if must {
                out.push(member);
            }
        }
    }
    out
}

/// The members every alternative of a schema requires.
fn required_names(s: &SchemaRef<'_>) -> Vec<String> {
    let mut common: Option<BTreeSet<String>> = None;
    for alt in &s.alternatives {
        let names: BTreeSet<String> = alt
            .iter()
            .filter_map(|n| n.value.get("required").and_then(Value::as_array))
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        common = Some(match common {
            None => names,
            Some(c) => c.intersection(&names).cloned().collect(),
        });
    }
    common.unwrap_or_default().into_iter().collect()
}

/// Warns when a transform builds values from the caller (`${request.consumer}`, a claim)
/// on an operation no security scheme protects: they are always missing there.
pub(super) fn check_caller(
    t: &Transform,
    security: &[Vec<crate::model::SchemeUse>],
    loc: &Location,
    d: &mut Diagnostics,
) {
    if !security.is_empty() {
        return;
    }
    let templates = [&t.request, &t.response].into_iter().flat_map(|m| {
        m.headers
            .set
            .iter()
            .chain(&m.query.set)
            .map(|(_, t)| t.names_caller())
            .chain(
                m.body
                    .iter()
                    .flat_map(|b| b.set.iter().map(|(_, v)| names_caller(v))),
            )
    });
    let mut uses = false;
    for u in templates {
        uses |= u;
    }
    if uses {
        d.push(
            Diagnostic::warning(
                "W0804",
                Some(loc.clone()),
                "this transform uses `${request.consumer}` or a claim, but the operation is public: the value is always missing, so what it would set is removed instead",
            )
            .hint("require a security scheme, or set a fixed value"),
        );
    }
}

// The published response schema.
//
// The schema is copied with its `$ref`s inlined (a schema that contains itself keeps its
// `$ref` where it recurs), then edited the way the body is: `pick` prunes properties, moves
// take a member's schema to its new place, `remove` deletes properties (and their
// `required` entries), `set` adds a property of the value's type. A member the gateway
// always sets becomes required; one built from the caller (`${request.consumer}`, a claim)
// does not, since an anonymous request lacks it.

/// Most schema nodes inlined for one published schema.
const INLINE_BUDGET: usize = 5_000;

fn publish(spec: &Spec, root: &Resolved<'_>, body: &BodyTransform) -> Value {
    let mut budget = INLINE_BUDGET;
    let mut stack = vec![(root.file, root.pointer.clone())];
    let mut schema = inline(spec, root, &mut stack, &mut budget);
    apply_to_schema(&mut schema, body);
    schema
}

/// Applies body edits to a schema with no `$ref`s, in the runtime's order.
fn apply_to_schema(schema: &mut Value, body: &BodyTransform) {
    if !body.pick.is_empty() {
        let picks: Vec<&[String]> = body.pick.iter().map(Vec::as_slice).collect();
        prune(schema, &picks);
    }
    for (from, to) in &body.moves {
        let Some((last, parent)) = from.split_last() else {
            continue;
        };
        let parents = walk(schema, parent);
        let subs: Vec<Value> = parents
            .iter()
            .flat_map(|p| members(p, last))
            .cloned()
            .collect();
        let required = parents.iter().any(|p| requires(p, last));
        if subs.is_empty() {
            continue;
        }
        let sub = if subs.len() == 1 {
            subs.into_iter().next().unwrap_or_default()
        } else {
            serde_json::json!({ "allOf": subs })
        };
        remove_from_schema(schema, from);
        insert_into_schema(schema, to, sub, required, true);
    }
    for p in &body.remove {
        remove_from_schema(schema, p);
    }
    for (p, v) in &body.set {
        let always = !names_caller(v);
        insert_into_schema(schema, p, schema_of(v), always, false);
    }
}

fn names_caller(v: &JsonValue) -> bool {
    match v {
        JsonValue::Str(t) => t.names_caller(),
        JsonValue::Array(items) => items.iter().any(names_caller),
        JsonValue::Object(m) => m.iter().any(|(_, v)| names_caller(v)),
        _ => false,
    }
}

/// The schema of a value a transform sets.
fn schema_of(v: &JsonValue) -> Value {
    use serde_json::json;
    match v {
        JsonValue::Null => json!({ "type": "null" }),
        JsonValue::Bool(_) => json!({ "type": "boolean" }),
        JsonValue::Int(_) | JsonValue::UInt(_) => json!({ "type": "integer" }),
        JsonValue::Float(_) => json!({ "type": "number" }),
        JsonValue::Str(_) => json!({ "type": "string" }),
        JsonValue::Array(items) => match items.first() {
            Some(first) => json!({ "type": "array", "items": schema_of(first) }),
            None => json!({ "type": "array" }),
        },
        JsonValue::Object(members) => {
            let props: Map<String, Value> = members
                .iter()
                .map(|(k, v)| (k.clone(), schema_of(v)))
                .collect();
            json!({ "type": "object", "properties": props })
        }
    }
}

/// Keywords whose value is a schema, a list of schemas, or a map of schemas.
fn inline(
    spec: &Spec,
    node: &Resolved<'_>,
    stack: &mut Vec<(usize, String)>,
    budget: &mut usize,
) -> Value {
    if let Some(r) = node.value.get("$ref").and_then(Value::as_str) {
        let Some(target) = spec.deref(node.file, &node.pointer, node.value) else {
            return node.value.clone();
        };
        let key = (target.file, target.pointer.clone());
        if stack.contains(&key) || *budget == 0 {
            return serde_json::json!({ "$ref": r });
        }
        stack.push(key);
        let v = inline(spec, &target, stack, budget);
        stack.pop();
        return v;
    }
    let Value::Object(map) = node.value else {
        return node.value.clone();
    };
    *budget = budget.saturating_sub(1);
    let mut out = Map::new();
    for (k, v) in map {
        let copied = match (k.as_str(), v) {
            (
                "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas",
                Value::Object(m),
            ) => {
                let base = child(&node.pointer, k);
                Value::Object(
                    m.iter()
                        .map(|(name, s)| {
                            let r = Resolved {
                                file: node.file,
                                pointer: child(&base, name),
                                value: s,
                            };
                            (name.clone(), inline(spec, &r, stack, budget))
                        })
                        .collect(),
                )
            }
            ("allOf" | "oneOf" | "anyOf" | "prefixItems" | "items", Value::Array(items)) => {
                let base = child(&node.pointer, k);
                Value::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, s)| {
                            let r = Resolved {
                                file: node.file,
                                pointer: child(&base, &i.to_string()),
                                value: s,
                            };
                            inline(spec, &r, stack, budget)
                        })
                        .collect(),
                )
            }
            (
                "items"
                | "additionalProperties"
                | "not"
                | "contains"
                | "propertyNames"
                | "if"
                | "then"
                | "else"
                | "unevaluatedProperties"
                | "unevaluatedItems"
                | "additionalItems",
                Value::Object(_),
            ) => {
                let r = Resolved {
                    file: node.file,
                    pointer: child(&node.pointer, k),
                    value: v,
                };
                inline(spec, &r, stack, budget)
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), copied);
    }
    Value::Object(out)
}

fn is_array_step(token: &str) -> bool {
    token == "*" || schema::is_index(token)
}

/// The schemas describing member `token` of a value described by `schema` (its own
/// declaration and those of its `allOf`/`oneOf`/`anyOf` members).
fn members<'v>(schema: &'v Value, token: &str) -> Vec<&'v Value> {
    let mut out = Vec::new();
    collect_members(schema, token, &mut out);
    out
}

fn collect_members<'v>(schema: &'v Value, token: &str, out: &mut Vec<&'v Value>) {
    let Value::Object(map) = schema else { return };
    if is_array_step(token) && (map.contains_key("items") || map.contains_key("prefixItems")) {
        let prefix = token
            .parse::<usize>()
            .ok()
            .and_then(|i| map.get("prefixItems")?.get(i));
        if let Some(item) = prefix.or_else(|| map.get("items").filter(|i| i.is_object())) {
            out.push(item);
        }
    } else if let Some(p) = map.get("properties").and_then(|p| p.get(token)) {
        out.push(p);
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        for m in map.get(key).and_then(Value::as_array).into_iter().flatten() {
            collect_members(m, token, out);
        }
    }
}

fn collect_members_mut<'v>(schema: &'v mut Value, token: &str, out: &mut Vec<&'v mut Value>) {
    let Value::Object(map) = schema else { return };
    let array =
        is_array_step(token) && (map.contains_key("items") || map.contains_key("prefixItems"));
    let index = token.parse::<usize>().ok();
    let in_prefix = index.is_some_and(|i| {
        map.get("prefixItems")
            .and_then(Value::as_array)
            .is_some_and(|a| i < a.len())
    });
    for (k, v) in map.iter_mut() {
        match k.as_str() {
            "prefixItems" if array && in_prefix => {
                if let Some(item) = index.and_then(|i| v.get_mut(i)) {
                    out.push(item);
                }
            }
            "items" if array && !in_prefix && v.is_object() => out.push(v),
            "properties" if !array => {
                if let Some(p) = v.get_mut(token) {
                    out.push(p);
                }
            }
            "allOf" | "oneOf" | "anyOf" => {
                for m in v.as_array_mut().into_iter().flatten() {
                    collect_members_mut(m, token, out);
                }
            }
            _ => {}
        }
    }
}

fn walk<'v>(schema: &'v Value, tokens: &[String]) -> Vec<&'v Value> {
    let mut cur = vec![schema];
    for t in tokens {
        cur = cur.into_iter().flat_map(|s| members(s, t)).collect();
    }
    cur
}

fn walk_mut<'v>(schema: &'v mut Value, tokens: &[String]) -> Vec<&'v mut Value> {
    let mut cur = vec![schema];
    for t in tokens {
        let mut next = Vec::new();
        for s in cur {
            collect_members_mut(s, t, &mut next);
        }
        cur = next;
    }
    cur
}

/// Whether `schema` (or one of its `allOf` members) requires member `name`.
fn requires(schema: &Value, name: &str) -> bool {
    schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|n| n.as_str() == Some(name)))
        || schema
            .get("allOf")
            .and_then(Value::as_array)
            .is_some_and(|all| all.iter().any(|m| requires(m, name)))
}

fn remove_from_schema(schema: &mut Value, p: &[String]) {
    let Some((last, parent)) = p.split_last() else {
        return;
    };
    for s in walk_mut(schema, parent) {
        remove_member(s, last);
    }
}

fn remove_member(schema: &mut Value, name: &str) {
    let Value::Object(map) = schema else { return };
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        props.shift_remove(name);
    }
    if let Some(Value::Array(req)) = map.get_mut("required") {
        req.retain(|n| n.as_str() != Some(name));
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(list)) = map.get_mut(key) {
            for m in list {
                remove_member(m, name);
            }
        }
    }
}

/// Puts `sub` at `p`, creating object schemas for missing parents. An existing declaration
/// is replaced when `replace`, kept otherwise (a `set` value was checked against it). When
/// `required`, the member and every parent on the way are marked required: the value is
/// always there afterwards.
fn insert_into_schema(schema: &mut Value, p: &[String], sub: Value, required: bool, replace: bool) {
    let Some((last, parent)) = p.split_last() else {
        return;
    };
    let mut cur = vec![schema];
    for t in parent {
        let mut next = Vec::new();
        for s in cur {
            if required {
                mark_required(s, t);
            }
            let mut found = Vec::new();
            // Look first, then create: the borrow of `s` ends with the look.
            if !members(s, t).is_empty() {
                collect_members_mut(s, t, &mut found);
                next.extend(found);
            } else if let Some(created) = create_member(s, t) {
                next.push(created);
            }
        }
        cur = next;
    }
    for s in cur {
        if !members(s, last).is_empty() {
            if replace {
                let mut found = Vec::new();
                collect_members_mut(s, last, &mut found);
                for f in found {
                    *f = sub.clone();
                }
            }
        } else if !is_array_step(last)
            && let Some(props) = properties_mut(s)
        {
            props.insert(last.clone(), sub.clone());
        }
        if required {
            mark_required(s, last);
        }
    }
}

fn mark_required(schema: &mut Value, name: &str) {
    if is_array_step(name) || requires(schema, name) {
        return;
    }
    if let Value::Object(map) = schema
        && let Value::Array(list) = map
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()))
    {
        list.push(Value::String(name.to_owned()));
    }
}

fn properties_mut(schema: &mut Value) -> Option<&mut Map<String, Value>> {
    let Value::Object(map) = schema else {
        return None;
    };
    map.entry("properties")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
}

/// A new object property `token` of `schema`, for a `set` or `move` into a missing parent.
fn create_member<'v>(schema: &'v mut Value, token: &str) -> Option<&'v mut Value> {
    if is_array_step(token) {
        return None;
    }
    let props = properties_mut(schema)?;
    props.insert(
        token.to_owned(),
        serde_json::json!({ "type": "object", "properties": {} }),
    );
    props.get_mut(token)
}

/// `pick`: keeps only the picked members' declarations along the picked paths.
fn prune(schema: &mut Value, picks: &[&[String]]) {
    if picks.iter().any(|p| p.is_empty()) {
        return;
    }
    let Value::Object(map) = schema else { return };
    let names: BTreeSet<&str> = picks
        .iter()
        .filter_map(|p| p.first())
        .filter(|t| {
            !is_array_step(t) || !(map.contains_key("items") || map.contains_key("prefixItems"))
        })
        .map(String::as_str)
        .collect();
    let array = picks
        .iter()
        .any(|p| p.first().is_some_and(|t| is_array_step(t)))
        && (map.contains_key("items") || map.contains_key("prefixItems"));
    for (k, v) in map.iter_mut() {
        match k.as_str() {
            "properties" => {
                if let Value::Object(props) = v {
                    props.retain(|name, _| names.contains(name.as_str()));
                    for (name, sub) in props.iter_mut() {
                        let rest: Vec<&[String]> = picks
                            .iter()
                            .filter(|p| p.first().is_some_and(|t| t == name))
                            .map(|p| &p[1..])
                            .collect();
                        prune(sub, &rest);
                    }
                }
            }
            "required" => {
                if let Value::Array(req) = v {
                    req.retain(|n| n.as_str().is_some_and(|n| names.contains(n)));
                }
            }
            "items" if array => {
                let rest: Vec<&[String]> = picks
                    .iter()
                    .filter(|p| p.first().is_some_and(|t| is_array_step(t)))
                    .map(|p| &p[1..])
                    .collect();
                prune(v, &rest);
            }
            "allOf" | "oneOf" | "anyOf" => {
                for m in v.as_array_mut().into_iter().flatten() {
                    prune(m, picks);
                }
            }
            _ => {}
        }
    }
}

/// A request transform may not touch a header that carries a forwarded JWT claim: the
/// upstream trusts those headers to come from the gateway's verification, and a `rename`
/// from a client header (or a `set`) would let a client put its own value there.
pub(super) fn check_claim_headers(
    t: &Transform,
    schemes: &[crate::model::Scheme],
    loc: &Location,
    d: &mut Diagnostics,
) {
    let claim_headers: Vec<&str> = schemes
        .iter()
        .filter_map(|s| match &s.kind {
            crate::model::SchemeKind::Jwt(j) => Some(j),
            crate::model::SchemeKind::ApiKey { .. } | crate::model::SchemeKind::MutualTls => None,
        })
        .flat_map(|j| j.forward_claims.iter().map(|(_, h)| h.as_str()))
        .collect();
    let edits = &t.request.headers;
    let touched = edits
        .remove
        .iter()
        .map(String::as_str)
        .chain(
            edits
                .rename
                .iter()
                .flat_map(|(a, b)| [a.as_str(), b.as_str()]),
        )
        .chain(edits.set.iter().map(|(n, _)| n.as_str()));
    let mut reported = Vec::new();
    for name in touched {
        if claim_headers.contains(&name) && !reported.contains(&name) {
            reported.push(name);
            d.push(
                Diagnostic::error(
                    "E0805",
                    Some(loc.clone()),
                    format!(
                        "a request transform cannot change `{name}`: it carries a forwarded JWT claim, which the upstream trusts to come from the gateway"
                    ),
                )
                .hint("forward the claim with the scheme's `forward_claims`, or use another header"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(yaml: &str) -> Spec {
        crate::spec::from_yaml(yaml)
    }

    fn ptr(p: &str) -> Pointer {
        schema::tokens(p).expect("pointer")
    }

    fn lit(s: &str) -> Template {
        Template(vec![TemplatePart::Lit(s.into())])
    }

    /// The E0804 messages for an operation whose `side` (`request` or `response`) body
    /// is an object with `properties` (YAML flow) and is edited by `body` (YAML flow).
    fn e0804_on(side: &str, properties: &str, body: &str) -> Vec<String> {
        let yaml = format!(
            r##"
openapi: 3.1.0
info: {{ title: t, version: "1" }}
x-gateway:
  upstreams: {{ up: "http://127.0.0.1:9" }}
security: []
paths:
  /a:
    post:
      operationId: a
      x-gateway: {{ transform: {{ {side}: {{ body: {body} }} }} }}
      requestBody:
        content:
          application/json:
            schema: {{ type: object, properties: {properties} }}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {{ type: object, properties: {properties} }}
components:
  schemas:
    Int: {{ type: integer }}
"##
        );
        let mut d = Diagnostics::default();
        super::super::lower(&spec(&yaml), &super::super::Options::default(), &mut d);
        d.items()
            .iter()
            .filter(|x| x.code == "E0804")
            .map(|x| x.message.clone())
            .collect()
    }

    fn e0804(properties: &str, body: &str) -> Vec<String> {
        e0804_on("request", properties, body)
    }

    /// Whether `rename: { /a: /b }` is refused with `a` and `b` of these schemas.
    fn refused(a: &str, b: &str) -> bool {
        !e0804(&format!("{{ a: {a}, b: {b} }}"), "{ rename: { /a: /b } }").is_empty()
    }

    #[test]
    fn a_moved_value_must_have_a_type_its_target_admits() {
        for (a, b) in [
            ("{ type: string }", "{ type: integer }"),
            ("{ type: number }", "{ type: integer }"),
            ("{ type: [string, \"null\"] }", "{ type: string }"),
            (
                "{ oneOf: [{ type: integer }, { type: \"null\" }] }",
                "{ type: integer }",
            ),
            ("{ type: object }", "{ type: array }"),
            ("{ enum: [a, b] }", "{ type: integer }"),
            (
                "{ type: string, enum: [a, b, c] }",
                "{ type: string, enum: [a, b] }",
            ),
            ("{ const: x }", "{ enum: [a, b] }"),
            ("{ type: string }", "{ enum: [1, 2] }"),
            (
                "{ type: array, items: { type: string } }",
                "{ type: array, items: { type: integer } }",
            ),
            (
                "{ type: object, properties: { n: { type: string } } }",
                "{ type: object, properties: { n: { type: boolean } } }",
            ),
        ] {
            assert!(refused(a, b), "{a} onto {b} was accepted");
        }
        for (a, b) in [
            ("{ type: integer }", "{ type: number }"),
            ("{ $ref: \"#/components/schemas/Int\" }", "{ type: number }"),
            ("{ type: string }", "{ type: [string, \"null\"] }"),
            (
                "{ type: [string, \"null\"] }",
                "{ type: [\"null\", string] }",
            ),
            ("{ type: string }", "{}"),
            // Nothing is known of the moved member's type.
            ("{}", "{ type: integer }"),
            ("{ description: anything }", "{ type: string }"),
            (
                "{ type: string, enum: [a] }",
                "{ type: string, enum: [a, b] }",
            ),
            ("{ const: a }", "{ type: string }"),
            (
                "{ enum: [1, 2] }",
                "{ type: number, enum: [1.0, 2.0, 3.0] }",
            ),
            // A list of values constrains; a value not listed is not a type error.
            ("{ type: string }", "{ type: string, enum: [a, b] }"),
            (
                "{ type: object, properties: { n: { type: string }, m: { type: string } } }",
                "{ type: object, properties: { n: { type: [string, \"null\"] } } }",
            ),
            (
                "{ type: array, items: { type: integer } }",
                "{ type: array }",
            ),
            // Branches that only some alternatives declare cannot be decided.
            (
                "{ oneOf: [{ type: string }, { type: integer }] }",
                "{ oneOf: [{ type: string }, { type: integer }] }",
            ),
        ] {
            assert!(!refused(a, b), "{a} onto {b} was refused");
        }
    }

    #[test]
    fn moved_value_messages_name_both_places_and_types() {
        let props = "{ code: { type: string }, id: { type: integer }, nick: { type: [string, \"null\"] }, name: { type: string }, tags: { type: array, items: { type: string } }, ids: { type: array, items: { type: integer } }, price: { type: number }, count: { type: integer } }";
        assert_eq!(
            e0804(
                props,
                "{ rename: { /code: /id, /nick: /name, /tags: /ids, /price: /count } }"
            ),
            vec![
                "`rename` puts `/code` (a string) at `/id`, but `/id` is an integer in the request body of `POST /a`",
                "`rename` puts `/nick` (a string or null) at `/name`, but `/name` is a string in the request body of `POST /a`: null would not fit",
                "`rename` puts `/tags` at `/ids`, so `/tags/*` (a string) lands at `/ids/*`, but `/ids/*` is an integer in the request body of `POST /a`",
                "`rename` puts `/price` (a number) at `/count`, but `/count` is an integer in the request body of `POST /a`: a number with a fraction would not fit",
            ]
        );
        assert_eq!(
            e0804_on("response", props, "{ move: { /code: /id } }"),
            vec![
                "`move` puts `/code` (a string) at `/id`, but `/id` is an integer in the response body of `POST /a`"
            ]
        );
    }

    #[test]
    fn a_moved_value_is_checked_where_it_ends_up() {
        let props = "{ s: { type: string }, i: { type: integer }, j: { type: integer }, t: { type: string }, o: { type: object, properties: { s: { type: string } } }, p: { type: object, properties: { s: { type: integer } } } }";
        // Taken on by a later move: checked once, from where it was sent to where it ends.
        assert_eq!(
            e0804(props, "{ rename: { /i: /s }, move: { /s: /t } }"),
            vec![
                "`move` puts `/s` (sent as `/i`, an integer) at `/t`, but `/t` is a string in the request body of `POST /a`"
            ]
        );
        // Its parent carried on by a later move: checked where the parent lands (an integer
        // fits `/p/s`, a string does not), and once, by the move that put it there.
        assert_eq!(
            e0804(props, "{ move: { /i: /o/s, /o: /p } }"),
            Vec::<String>::new()
        );
        assert_eq!(
            e0804(props, "{ move: { /s: /o/s, /o: /p } }"),
            vec![
                "`move` puts `/s` (a string) at `/o/s`, which a later move takes to `/p/s`, but `/p/s` is an integer in the request body of `POST /a`"
            ]
        );
        // Replaced or dropped before the body leaves: nothing lands.
        for body in [
            "{ rename: { /s: /i }, set: { /i: 1 } }",
            "{ rename: { /s: /i }, remove: [/i] }",
            "{ rename: { /s: /i }, move: { /j: /i } }",
            "{ rename: { /o: /p }, set: { /p/s: 2 } }",
            // `pick` runs first: what it leaves out is not there to move.
            "{ pick: [/i, /t], rename: { /s: /i } }",
            "{ pick: [/o/s], rename: { /s: /i } }",
        ] {
            assert_eq!(e0804(props, body), Vec::<String>::new(), "{body}");
        }
        assert_eq!(
            e0804(props, "{ pick: [/s, /i], rename: { /s: /i } }").len(),
            1
        );
    }

    #[test]
    fn a_value_set_must_be_one_the_schema_lists() {
        let props = "{ state: { type: string, enum: [open, closed] }, kind: { const: pet }, n: { type: [integer, \"null\"], enum: [1, 2] } }";
        assert_eq!(
            e0804(props, "{ set: { /state: bogus, /kind: toy, /n: 3 } }"),
            vec![
                "`/state` is one of `\"open\"`, `\"closed\"` in the request body of `POST /a`, but the value set is `\"bogus\"`",
                "`/kind` is always `\"pet\"` in the request body of `POST /a`, but the value set is `\"toy\"`",
                "`/n` is one of `1`, `2` in the request body of `POST /a`, but the value set is `3`",
            ]
        );
        // Listed values, `null` where the type admits it, and `${...}` values (known at run
        // time only) pass.
        assert_eq!(
            e0804(props, "{ set: { /state: closed, /kind: pet, /n: 2.0 } }"),
            Vec::<String>::new()
        );
        assert_eq!(
            e0804(props, "{ set: { /n: null, /state: \"${STATE}\" } }"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn templates_split_environment_and_request_values() {
        let mut d = Diagnostics::default();
        let loc = Location::value(0, "");
        let t = template(
            "a-${request.id}-${HOME:-/root}$$-${request.claim.tenant}$",
            &loc,
            &mut d,
        );
        assert_eq!(
            t.0,
            vec![
                TemplatePart::Lit("a-".into()),
                TemplatePart::RequestId,
                TemplatePart::Lit("-".into()),
                TemplatePart::Env {
                    name: "HOME".into(),
                    default: Some("/root".into())
                },
                TemplatePart::Lit("$-".into()),
                TemplatePart::Claim("tenant".into()),
                TemplatePart::Lit("$".into()),
            ]
        );
        assert!(!d.has_errors());
        assert!(t.names_caller());
        for bad in [
            "${request.nope}",
            "${a b}",
            "${unclosed",
            "${request.consumer:-x}",
            "${}",
        ] {
            let mut d = Diagnostics::default();
            template(bad, &loc, &mut d);
            assert!(d.has_errors(), "{bad} was accepted");
            assert_eq!(d.items()[0].code, "E0807");
        }
    }

    #[test]
    fn the_published_schema_follows_the_edits() {
        let s = spec(
            r##"
components:
  schemas:
    Pet:
      type: object
      required: [id, internalId, ownerRef]
      properties:
        id: { type: integer }
        internalId: { type: string }
        ownerRef: { $ref: "#/components/schemas/Owner" }
        tags: { type: array, items: { type: object, properties: { label: { type: string }, secret: { type: string } } } }
    Owner:
      type: object
      properties: { name: { type: string }, email: { type: string } }
"##,
        );
        let root = Resolved {
            file: 0,
            pointer: "/components/schemas/Pet".into(),
            value: s.get(0, "/components/schemas/Pet").expect("schema"),
        };
        let body = BodyTransform {
            pick: vec![],
            moves: vec![(ptr("/ownerRef"), ptr("/owner"))],
            remove: vec![
                ptr("/internalId"),
                ptr("/tags/*/secret"),
                ptr("/owner/email"),
            ],
            set: vec![
                (ptr("/meta/source"), JsonValue::Str(lit("gateway"))),
                (
                    ptr("/meta/tenant"),
                    JsonValue::Str(Template(vec![TemplatePart::Claim("tenant".into())])),
                ),
            ],
        };
        let published = publish(&s, &root, &body);
        assert_eq!(
            published,
            json!({
                "type": "object",
                "required": ["id", "owner", "meta"],
                "properties": {
                    "id": { "type": "integer" },
                    "tags": { "type": "array", "items": { "type": "object", "properties": { "label": { "type": "string" } } } },
                    "owner": { "type": "object", "properties": { "name": { "type": "string" } } },
                    "meta": {
                        "type": "object",
                        "properties": { "source": { "type": "string" }, "tenant": { "type": "string" } },
                        "required": ["source"]
                    }
                }
            })
        );

        let picked = publish(
            &s,
            &root,
            &BodyTransform {
                pick: vec![ptr("/id"), ptr("/ownerRef/name"), ptr("/tags/*/label")],
                ..BodyTransform::default()
            },
        );
        assert_eq!(
            picked,
            json!({
                "type": "object",
                "required": ["id", "ownerRef"],
                "properties": {
                    "id": { "type": "integer" },
                    "ownerRef": { "type": "object", "properties": { "name": { "type": "string" } } },
                    "tags": { "type": "array", "items": { "type": "object", "properties": { "label": { "type": "string" } } } }
                }
            })
        );
    }

    #[test]
    fn recursive_schemas_keep_their_ref() {
        let s = spec(
            r##"
components:
  schemas:
    Node:
      type: object
      properties:
        children: { type: array, items: { $ref: "#/components/schemas/Node" } }
        secret: { type: string }
"##,
        );
        let root = Resolved {
            file: 0,
            pointer: "/components/schemas/Node".into(),
            value: s.get(0, "/components/schemas/Node").expect("schema"),
        };
        let published = publish(
            &s,
            &root,
            &BodyTransform {
                remove: vec![ptr("/secret")],
                ..BodyTransform::default()
            },
        );
        assert_eq!(
            published,
            json!({
                "type": "object",
                "properties": {
                    "children": { "type": "array", "items": { "$ref": "#/components/schemas/Node" } }
                }
            })
        );
    }
}
