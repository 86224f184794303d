//! Finding things in an operation's JSON schemas, for checks that name fields by JSON
//! pointer (transforms, aggregation).
//!
//! [`resolve`] follows a pointer such as `/owner/name` or `/items/0/id` from a schema node
//! through `$ref`, `allOf` (members are combined: properties and `required` merge),
//! `oneOf`/`anyOf` (a member exists when it exists in every branch; when it exists in some
//! branches only, the answer is [`Lookup::Undecidable`]), OpenAPI 3.0 `nullable` and 3.1 type
//! arrays. Array steps are indexes (`0`, `12`) or `*` (every element) and go to `items`
//! (`prefixItems` for an index it covers).
//!
//! Internally a schema is held as alternatives (`oneOf`/`anyOf` branches) of conjunctions
//! (a node and its `allOf` members), each node with its `$ref`s followed; there is no
//! rewriting of the documents. [`request_body`] and [`success_response`] say where an
//! operation's JSON schemas are.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use crate::diagnostic::Location;
use crate::spec::source::{child, unescape_token};
use crate::spec::{Resolved, Spec};

/// Most alternatives a schema may expand to before lookups give up (`oneOf` inside `oneOf`
/// multiplies).
const MAX_ALTERNATIVES: usize = 64;
/// Deepest nesting of `allOf`/`oneOf`/`anyOf` followed; also stops schemas that contain
/// themselves through `allOf`.
const MAX_DEPTH: usize = 32;

/// The JSON types a schema admits, as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Types(u8);

impl Types {
    /// `null`.
    pub const NULL: Types = Types(1);
    /// `boolean`.
    pub const BOOLEAN: Types = Types(1 << 1);
    /// `object`.
    pub const OBJECT: Types = Types(1 << 2);
    /// `array`.
    pub const ARRAY: Types = Types(1 << 3);
    /// `integer`.
    pub const INTEGER: Types = Types(1 << 4);
    /// `number`; it includes the integers.
    pub const NUMBER: Types = Types(1 << 5 | 1 << 4);
    /// `string`.
    pub const STRING: Types = Types(1 << 6);
    /// Any JSON value: a schema without `type`.
    pub const ANY: Types = Types(0x7f);
    /// No value at all (contradictory `allOf` members).
    pub const NONE: Types = Types(0);

    /// The set for one `type` name; `None` for a name JSON Schema does not define.
    pub fn from_name(name: &str) -> Option<Types> {
        Some(match name {
            "null" => Types::NULL,
            "boolean" => Types::BOOLEAN,
            "object" => Types::OBJECT,
            "array" => Types::ARRAY,
            "integer" => Types::INTEGER,
            "number" => Types::NUMBER,
            "string" => Types::STRING,
            _ => return None,
        })
    }

    /// The type of a value (an integral number is both `integer` and `number`).
    pub fn of(value: &Value) -> Types {
        match value {
            Value::Null => Types::NULL,
            Value::Bool(_) => Types::BOOLEAN,
            Value::Object(_) => Types::OBJECT,
            Value::Array(_) => Types::ARRAY,
            Value::String(_) => Types::STRING,
            Value::Number(n) => {
                let integral =
                    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0);
                if integral {
                    Types::INTEGER
                } else {
                    Types(1 << 5)
                }
            }
        }
    }

    /// Whether the schema admits `value`'s type.
    pub fn admits(self, value: &Value) -> bool {
        self.0 & Types::of(value).0 != 0
    }

    /// Whether every type in `other` is in `self`.
    pub fn contains(self, other: Types) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the two sets share a type.
    pub fn intersects(self, other: Types) -> bool {
        self.0 & other.0 != 0
    }

    /// Both sets' types.
    #[must_use]
    pub fn union(self, other: Types) -> Types {
        Types(self.0 | other.0)
    }

    /// The types in both sets.
    #[must_use]
    pub fn intersect(self, other: Types) -> Types {
        Types(self.0 & other.0)
    }

    /// The types of `self` that are not in `other` (`number` without `integer` is the
    /// numbers with a fraction).
    #[must_use]
    pub fn without(self, other: Types) -> Types {
        Types(self.0 & !other.0)
    }

    /// The type names, as a schema would write them (`integer` is left out when `number`
    /// is there, since it is part of it). A number that is not an integer (the type of
    /// `1.5`) is a `number`.
    pub fn names(self) -> Vec<&'static str> {
        let fraction = Types::NUMBER.without(Types::INTEGER);
        let mut out = Vec::new();
        for (t, name) in [
            (Types::OBJECT, "object"),
            (Types::ARRAY, "array"),
            (Types::STRING, "string"),
            (fraction, "number"),
            (Types::INTEGER, "integer"),
            (Types::BOOLEAN, "boolean"),
            (Types::NULL, "null"),
        ] {
            if self.contains(t) && !(t == Types::INTEGER && self.intersects(fraction)) {
                out.push(name);
            }
        }
        out
    }
}

impl fmt::Display for Types {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Types::ANY {
            return f.write_str("any type");
        }
        let names = self.names();
        match names.as_slice() {
            [] => f.write_str("no type"),
            [one] => f.write_str(one),
            [init @ .., last] => write!(f, "{} or {last}", init.join(", ")),
        }
    }
}

/// A schema found by [`resolve`]: every node that describes the value, `$ref`s followed.
#[derive(Debug, Clone)]
pub struct SchemaRef<'s> {
    /// Alternatives (from `oneOf`/`anyOf`), each a conjunction of nodes that all hold (a
    /// node and its `allOf` members, or a property as declared by several `allOf`
    /// members). Never empty, and no alternative is empty.
    pub alternatives: Vec<Vec<Resolved<'s>>>,
    /// For each pointer step taken to get here: whether the parent requires that member
    /// (in every alternative). Array steps are not required.
    pub required: Vec<bool>,
}

impl<'s> SchemaRef<'s> {
    /// The schema at `node` (following `$ref`s, expanding `allOf`/`oneOf`/`anyOf`).
    /// `Err` says why the schema cannot be read (a broken `$ref`, too deep, too many
    /// alternatives).
    pub fn new(spec: &'s Spec, node: Resolved<'s>) -> Result<SchemaRef<'s>, String> {
        Ok(SchemaRef {
            alternatives: expand(spec, node, 0)?,
            required: Vec::new(),
        })
    }

    /// Where the schema is written (its first node), for diagnostics.
    pub fn loc(&self) -> Location {
        self.alternatives
            .first()
            .and_then(|a| a.first())
            .map_or_else(|| Location::value(0, ""), Resolved::loc)
    }

    /// The JSON types it admits: the union over alternatives of what all nodes of an
    /// alternative admit.
    pub fn types(&self) -> Types {
        self.alternatives
            .iter()
            .map(|conj| conj_types(conj))
            .fold(Types::NONE, Types::union)
    }

    /// Whether the last step is a member its parent requires (in every alternative).
    /// `false` for the root.
    pub fn is_required(&self) -> bool {
        self.required.last().copied().unwrap_or(false)
    }

    /// Whether some node sets `key` to `true` (`readOnly`, `writeOnly`, `deprecated`).
    pub fn flag(&self, key: &str) -> bool {
        self.nodes()
            .any(|n| n.value.get(key).and_then(Value::as_bool) == Some(true))
    }

    /// Every node, across alternatives.
    pub fn nodes(&self) -> impl Iterator<Item = &Resolved<'s>> {
        self.alternatives.iter().flatten()
    }

    /// The schema of member `token` (a property name, an index or `*`): one step of
    /// [`resolve`], from a schema already found. `None` when the step is not
    /// [`Lookup::Found`].
    pub fn member(&self, spec: &'s Spec, token: &str) -> Option<SchemaRef<'s>> {
        match step(spec, self, token) {
            Step::Found(alternatives, required) => {
                let mut required_steps = self.required.clone();
                required_steps.push(required);
                Some(SchemaRef {
                    alternatives,
                    required: required_steps,
                })
            }
            Step::Missing(_) | Step::Undecidable(_) => None,
        }
    }

    /// The names of the declared properties (of every alternative), sorted.
    pub fn property_names(&self) -> Vec<String> {
        let mut out = BTreeSet::new();
        for n in self.nodes() {
            if let Some(props) = n.value.get("properties").and_then(Value::as_object) {
                out.extend(props.keys().cloned());
            }
        }
        out.into_iter().collect()
    }
}

/// What [`resolve`] found.
#[derive(Debug, Clone)]
pub enum Lookup<'s> {
    /// The pointer names this schema.
    Found(SchemaRef<'s>),
    /// The step at index `at_segment` (0-based, of the pointer's tokens) names no member
    /// of `parent`, the schema reached by the steps before it. `known` lists the member
    /// names `parent` declares, for a did-you-mean; it is empty when `parent` is not an
    /// object.
    Missing {
        /// Index of the token that was not found.
        at_segment: usize,
        /// The property names the parent declares.
        known: Vec<String>,
        /// The schema of the parent.
        parent: SchemaRef<'s>,
    },
    /// The schema does not say whether the step at `at_segment` exists: it exists in some
    /// `oneOf`/`anyOf` branches only, the parent is a free-form object, or the schema
    /// cannot be read.
    Undecidable {
        /// Index of the token that could not be decided.
        at_segment: usize,
        /// Why, as a phrase for a message.
        reason: String,
    },
}

/// The reference tokens of an RFC 6901 pointer (`""` is the root, `/a~1b` is `["a/b"]`);
/// `None` when it does not start with `/` or holds a `~` not followed by `0` or `1`.
pub fn tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    rest.split('/')
        .map(|t| {
            let bad = t
                .match_indices('~')
                .any(|(i, _)| !matches!(t.as_bytes().get(i + 1), Some(b'0' | b'1')));
            (!bad).then(|| unescape_token(t))
        })
        .collect()
}

/// Whether a token is an array index (`0`, `12`; no sign, no leading zero).
pub fn is_index(token: &str) -> bool {
    !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'))
}

/// Follows `pointer` from the schema at `node`. A pointer that is not RFC 6901 syntax is
/// [`Lookup::Undecidable`] at step 0; check the syntax with [`tokens`] first.
pub fn resolve<'s>(spec: &'s Spec, node: Resolved<'s>, pointer: &str) -> Lookup<'s> {
    let Some(tokens) = tokens(pointer) else {
        return Lookup::Undecidable {
            at_segment: 0,
            reason: format!("`{pointer}` is not a JSON pointer"),
        };
    };
    resolve_tokens(spec, node, &tokens)
}

/// [`resolve`] with the pointer already split into tokens.
pub fn resolve_tokens<'s>(spec: &'s Spec, node: Resolved<'s>, tokens: &[String]) -> Lookup<'s> {
    let mut cur = match SchemaRef::new(spec, node) {
        Ok(s) => s,
        Err(reason) => {
            return Lookup::Undecidable {
                at_segment: 0,
                reason,
            };
        }
    };
    for (i, token) in tokens.iter().enumerate() {
        match step(spec, &cur, token) {
            Step::Found(alternatives, required) => {
                let mut required_steps = cur.required.clone();
                required_steps.push(required);
                cur = SchemaRef {
                    alternatives,
                    required: required_steps,
                };
            }
            Step::Missing(known) => {
                return Lookup::Missing {
                    at_segment: i,
                    known,
                    parent: cur,
                };
            }
            Step::Undecidable(reason) => {
                return Lookup::Undecidable {
                    at_segment: i,
                    reason,
                };
            }
        }
    }
    Lookup::Found(cur)
}

/// An operation's JSON body schema, as found by [`request_body`] or [`success_response`].
#[derive(Debug, Clone)]
pub struct Body<'s> {
    /// The schema node, `$ref`s followed.
    pub schema: Resolved<'s>,
    /// The response's status key (`200`, `2XX`); `None` for a request body.
    pub status: Option<String>,
    /// The media type key (`application/json`); `None` for Swagger 2.0.
    pub media: Option<String>,
}

/// Whether a media type is JSON: `application/json` or any `+json` type, parameters
/// (`; charset=utf-8`) ignored. The gateway decides which bodies to transform the same way.
pub use gatewayc_vocab::media::is_json as is_json_media;

/// The JSON schema of an operation's request body: `requestBody.content.<json>.schema`
/// (OpenAPI 3; `application/json` preferred over other JSON types), or the `schema` of the
/// `in: body` parameter of the operation or, failing that, of its path item `item`
/// (Swagger 2.0). `None` when the operation declares no JSON body schema.
pub fn request_body<'s>(
    spec: &'s Spec,
    item: Option<&Resolved<'s>>,
    op: &Resolved<'s>,
) -> Option<Body<'s>> {
    if let Some(rb) = op.value.get("requestBody") {
        let rb = spec.deref(op.file, &child(&op.pointer, "requestBody"), rb)?;
        return json_content(spec, &rb, None);
    }
    for node in std::iter::once(op).chain(item) {
        if let Some(body) = body_param(spec, node) {
            return Some(body);
        }
    }
    None
}

fn body_param<'s>(spec: &'s Spec, node: &Resolved<'s>) -> Option<Body<'s>> {
    let list_ptr = child(&node.pointer, "parameters");
    let list = node.value.get("parameters")?.as_array()?;
    for (i, p) in list.iter().enumerate() {
        let Some(p) = spec.deref(node.file, &child(&list_ptr, &i.to_string()), p) else {
            continue;
        };
        if p.value.get("in").and_then(Value::as_str) != Some("body") {
            continue;
        }
        let schema = p.value.get("schema")?;
        return Some(Body {
            schema: spec.deref(p.file, &child(&p.pointer, "schema"), schema)?,
            status: None,
            media: None,
        });
    }
    None
}

/// The JSON schema of an operation's success response: the lowest `2xx` code that has a
/// JSON schema (then `2XX`), from `content.<json>.schema` (OpenAPI 3) or `schema`
/// (Swagger 2.0). `default` is not a success response here.
pub fn success_response<'s>(spec: &'s Spec, op: &Resolved<'s>) -> Option<Body<'s>> {
    let responses_ptr = child(&op.pointer, "responses");
    let responses = spec.deref(op.file, &responses_ptr, op.value.get("responses")?)?;
    let map = responses.value.as_object()?;
    let mut codes: Vec<(u16, &String)> = map
        .keys()
        .filter_map(|k| match k.as_str() {
            // A range comes after every exact code.
            "2XX" | "2xx" => Some((300, k)),
            other => other
                .parse::<u16>()
                .ok()
                .filter(|c| (200..300).contains(c))
                .map(|c| (c, k)),
        })
        .collect();
    codes.sort();
    for (_, key) in codes {
        let Some(resp) = map
            .get(key)
            .and_then(|r| spec.deref(responses.file, &child(&responses.pointer, key), r))
        else {
            continue;
        };
        let found = if resp.value.get("content").is_some() {
            json_content(spec, &resp, Some(key))
        } else {
            resp.value.get("schema").and_then(|s| {
                Some(Body {
                    schema: spec.deref(resp.file, &child(&resp.pointer, "schema"), s)?,
                    status: Some(key.clone()),
                    media: None,
                })
            })
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// `content.<json media type>.schema` of a request body or response.
fn json_content<'s>(
    spec: &'s Spec,
    node: &Resolved<'s>,
    status: Option<&String>,
) -> Option<Body<'s>> {
    let content = node.value.get("content")?.as_object()?;
    let (media, mt) = content
        .iter()
        .filter(|(k, _)| is_json_media(k))
        .min_by_key(|(k, _)| !k.to_ascii_lowercase().starts_with("application/json"))?;
    let mt_ptr = child(&child(&node.pointer, "content"), media);
    let schema = mt.get("schema")?;
    Some(Body {
        schema: spec.deref(node.file, &child(&mt_ptr, "schema"), schema)?,
        status: status.cloned(),
        media: Some(media.clone()),
    })
}

/// The types one node admits: `type` (a name or, in 3.1, a list), widened by `nullable`
/// (3.0) and `x-nullable` (Swagger 2.0).
fn node_types(node: &Value) -> Types {
    let declared = match node.get("type") {
        Some(Value::String(t)) => Types::from_name(t).unwrap_or(Types::ANY),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(|t| Types::from_name(t).unwrap_or(Types::ANY))
            .fold(Types::NONE, Types::union),
        _ => return Types::ANY,
    };
    let nullable = ["nullable", "x-nullable"]
        .iter()
        .any(|k| node.get(*k).and_then(Value::as_bool) == Some(true));
    if nullable {
        declared.union(Types::NULL)
    } else {
        declared
    }
}

fn conj_types(conj: &[Resolved<'_>]) -> Types {
    conj.iter()
        .map(|n| node_types(n.value))
        .fold(Types::ANY, Types::intersect)
}

type Alternatives<'s> = Vec<Vec<Resolved<'s>>>;

/// Every alternative of `a` combined with every alternative of `b`.
fn product<'s>(a: Alternatives<'s>, b: &Alternatives<'s>) -> Result<Alternatives<'s>, String> {
    if a.len().saturating_mul(b.len()) > MAX_ALTERNATIVES {
        return Err("the schema combines too many `oneOf`/`anyOf` branches to decide".to_owned());
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in &a {
        for y in b {
            let mut c = x.clone();
            c.extend(y.iter().cloned());
            out.push(c);
        }
    }
    Ok(out)
}

/// A node as alternatives of conjunctions: its `allOf` members join it, its `oneOf` and
/// `anyOf` branches multiply the alternatives.
fn expand<'s>(
    spec: &'s Spec,
    node: Resolved<'s>,
    depth: usize,
) -> Result<Alternatives<'s>, String> {
    if depth > MAX_DEPTH {
        return Err(
            "the schema nests `allOf`/`oneOf`/`anyOf` too deeply (or contains itself)".to_owned(),
        );
    }
    let node = spec
        .deref(node.file, &node.pointer, node.value)
        .ok_or_else(|| "the schema has a broken `$ref`".to_owned())?;
    let mut alts = vec![vec![node.clone()]];
    for key in ["allOf", "oneOf", "anyOf"] {
        let Some(list) = node.value.get(key).and_then(Value::as_array) else {
            continue;
        };
        let list_ptr = child(&node.pointer, key);
        let mut members = Vec::new();
        for (i, m) in list.iter().enumerate() {
            let ptr = child(&list_ptr, &i.to_string());
            let m = spec
                .deref(node.file, &ptr, m)
                .ok_or_else(|| "the schema has a broken `$ref`".to_owned())?;
            members.push(expand(spec, m, depth + 1)?);
        }
        if key == "allOf" {
            for m in &members {
                alts = product(alts, m)?;
            }
        } else if !members.is_empty() {
            let either: Alternatives<'s> = members.into_iter().flatten().collect();
            alts = product(alts, &either)?;
        }
    }
    Ok(alts)
}

enum Step<'s> {
    Found(Alternatives<'s>, bool),
    Missing(Vec<String>),
    Undecidable(String),
}

/// One step from a schema: a member of each alternative.
fn step<'s>(spec: &'s Spec, cur: &SchemaRef<'s>, token: &str) -> Step<'s> {
    let mut found: Alternatives<'s> = Vec::new();
    let mut required = true;
    let mut missing_in = 0;
    let mut known = BTreeSet::new();
    let mut live = 0;
    for conj in &cur.alternatives {
        let types = conj_types(conj);
        // A branch that can only be null (`oneOf: [{$ref: ...}, {type: "null"}]`) has no
        // members: a transform does nothing there, so it does not count.
        if !types.intersects(Types::OBJECT.union(Types::ARRAY))
            && types.contains(Types::NULL)
            && cur.alternatives.len() > 1
        {
            continue;
        }
        live += 1;
        match member(spec, conj, types, token) {
            Member::Found(alts, req) => {
                found.extend(alts);
                required &= req;
            }
            Member::Missing(names) => {
                missing_in += 1;
                known.extend(names);
            }
            Member::Undecidable(reason) => return Step::Undecidable(reason),
        }
        if found.len() > MAX_ALTERNATIVES {
            return Step::Undecidable(
                "the schema combines too many `oneOf`/`anyOf` branches to decide".to_owned(),
            );
        }
    }
    if live == 0 || missing_in == live {
        return Step::Missing(known.into_iter().collect());
    }
    if missing_in > 0 {
        return Step::Undecidable(format!(
            "`{token}` is declared in some `oneOf`/`anyOf` branches only"
        ));
    }
    Step::Found(found, required)
}

enum Member<'s> {
    Found(Alternatives<'s>, bool),
    Missing(Vec<String>),
    Undecidable(String),
}

/// Member `token` of one conjunction of nodes.
fn member<'s>(spec: &'s Spec, conj: &[Resolved<'s>], types: Types, token: &str) -> Member<'s> {
    let arrayish = token == "*" || is_index(token);
    let has = |key: &str| conj.iter().any(|n| n.value.get(key).is_some());
    if arrayish
        && types.contains(Types::ARRAY)
        && (!types.intersects(Types::OBJECT) || has("items") || has("prefixItems"))
    {
        return array_item(spec, conj, token);
    }
    if !types.intersects(Types::OBJECT) {
        return Member::Missing(Vec::new());
    }
    let mut parts: Alternatives<'s> = vec![Vec::new()];
    let mut any = false;
    let mut required = false;
    let mut names = Vec::new();
    let mut closed = false;
    let mut declares = false;
    let mut extra = None;
    for n in conj {
        let v = n.value;
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            declares = true;
            names.extend(props.keys().cloned());
            if let Some(p) = props.get(token) {
                let ptr = child(&child(&n.pointer, "properties"), token);
                match expand(
                    spec,
                    Resolved {
                        file: n.file,
                        pointer: ptr,
                        value: p,
                    },
                    0,
                ) {
                    Ok(alts) => match product(parts, &alts) {
                        Ok(p) => parts = p,
                        Err(e) => return Member::Undecidable(e),
                    },
                    Err(e) => return Member::Undecidable(e),
                }
                any = true;
            }
        }
        if v.get("required")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(token)))
        {
            required = true;
        }
        match v.get("additionalProperties") {
            Some(Value::Bool(false)) => closed = true,
            Some(ap @ Value::Object(_)) if extra.is_none() => {
                extra = Some(Resolved {
                    file: n.file,
                    pointer: child(&n.pointer, "additionalProperties"),
                    value: ap,
                });
            }
            _ => {}
        }
        if v.get("patternProperties").is_some() {
            declares = true;
        }
    }
    if any {
        return Member::Found(parts, required);
    }
    if let Some(ap) = extra.filter(|_| !closed) {
        return match expand(spec, ap, 0) {
            Ok(alts) => Member::Found(alts, required),
            Err(e) => Member::Undecidable(e),
        };
    }
    let pattern = conj
        .iter()
        .any(|n| n.value.get("patternProperties").is_some());
    if pattern {
        return Member::Undecidable(format!(
            "`{token}` may match the schema's `patternProperties`"
        ));
    }
    if !declares && !closed {
        return Member::Undecidable("the object's schema declares no properties".to_owned());
    }
    Member::Missing(names)
}

/// Element `token` (an index or `*`) of an array conjunction.
fn array_item<'s>(spec: &'s Spec, conj: &[Resolved<'s>], token: &str) -> Member<'s> {
    let index = token.parse::<usize>().ok();
    let mut parts: Alternatives<'s> = vec![Vec::new()];
    let mut any = false;
    for n in conj {
        let prefix = index.and_then(|i| {
            let list = n.value.get("prefixItems")?.as_array()?;
            let item = list.get(i)?;
            Some(Resolved {
                file: n.file,
                pointer: child(&child(&n.pointer, "prefixItems"), &i.to_string()),
                value: item,
            })
        });
        let items = prefix.or_else(|| {
            let item = n.value.get("items").filter(|i| i.is_object())?;
            Some(Resolved {
                file: n.file,
                pointer: child(&n.pointer, "items"),
                value: item,
            })
        });
        if let Some(item) = items {
            match expand(spec, item, 0).and_then(|alts| product(parts, &alts)) {
                Ok(p) => parts = p,
                Err(e) => return Member::Undecidable(e),
            }
            any = true;
        }
    }
    if any {
        Member::Found(parts, false)
    } else {
        Member::Undecidable("the array's schema has no `items`".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> Spec {
        crate::spec::from_yaml(yaml)
    }

    fn node<'s>(spec: &'s Spec, pointer: &str) -> Resolved<'s> {
        Resolved {
            file: 0,
            pointer: pointer.to_owned(),
            value: spec.get(0, pointer).expect("pointer exists"),
        }
    }

    const DOC: &str = r##"
components:
  schemas:
    Pet:
      type: object
      required: [id, owner]
      properties:
        id: { type: integer }
        name: { type: [string, "null"] }
        owner: { $ref: "#/components/schemas/Owner" }
        tags: { type: array, items: { type: object, properties: { label: { type: string } } } }
        meta: { type: object, additionalProperties: { type: string } }
        free: { type: object }
        "a/b": { type: string }
    Owner:
      type: object
      nullable: true
      required: [name]
      properties:
        name: { type: string }
        age: { type: integer }
    Dog:
      allOf:
        - $ref: "#/components/schemas/Pet"
        - type: object
          required: [bark]
          properties: { bark: { type: boolean } }
    Shape:
      oneOf:
        - { type: object, required: [kind], properties: { kind: { type: string }, r: { type: number } } }
        - { type: object, properties: { kind: { type: string }, w: { type: number } } }
    MaybePet:
      anyOf:
        - $ref: "#/components/schemas/Pet"
        - type: "null"
    Closed: { type: object, additionalProperties: false }
    Loop: { allOf: [ { $ref: "#/components/schemas/Loop" } ] }
"##;

    fn found<'s>(l: Lookup<'s>) -> SchemaRef<'s> {
        match l {
            Lookup::Found(s) => s,
            other => panic!("expected Found, got {other:?}"),
        }
    }

    #[test]
    fn pointers_follow_refs_and_arrays() {
        let s = spec(DOC);
        let pet = node(&s, "/components/schemas/Pet");
        let name = found(resolve(&s, pet.clone(), "/owner/name"));
        assert_eq!(name.types(), Types::STRING);
        assert_eq!(name.required, vec![true, true]);
        assert!(name.is_required());
        assert_eq!(
            name.loc().pointer,
            "/components/schemas/Owner/properties/name"
        );

        let owner = found(resolve(&s, pet.clone(), "/owner"));
        assert_eq!(owner.types(), Types::OBJECT.union(Types::NULL));
        assert_eq!(owner.types().to_string(), "object or null");
        // A step from a schema already found is the same as a lookup from the root.
        let step = owner.member(&s, "name").expect("a member of owner");
        assert_eq!(step.loc(), name.loc());
        assert_eq!(step.required, name.required);
        assert!(owner.member(&s, "nope").is_none());

        let label = found(resolve(&s, pet.clone(), "/tags/0/label"));
        assert_eq!(label.types(), Types::STRING);
        assert_eq!(label.required, vec![false, false, false]);
        assert!(matches!(
            resolve(&s, pet.clone(), "/tags/*/label"),
            Lookup::Found(_)
        ));
        assert_eq!(
            found(resolve(&s, pet.clone(), "/name")).types().names(),
            vec!["string", "null"]
        );
        assert_eq!(
            found(resolve(&s, pet.clone(), "/a~1b")).types(),
            Types::STRING
        );
        assert_eq!(found(resolve(&s, pet.clone(), "")).types(), Types::OBJECT);
        // A map's values.
        assert_eq!(
            found(resolve(&s, pet.clone(), "/meta/anything")).types(),
            Types::STRING
        );
    }

    #[test]
    fn missing_members_name_the_known_ones() {
        let s = spec(DOC);
        let pet = node(&s, "/components/schemas/Pet");
        match resolve(&s, pet.clone(), "/owner/nmae") {
            Lookup::Missing {
                at_segment,
                known,
                parent,
            } => {
                assert_eq!(at_segment, 1);
                assert_eq!(known, vec!["age", "name"]);
                assert_eq!(parent.loc().pointer, "/components/schemas/Owner");
            }
            other => panic!("{other:?}"),
        }
        // A string has no members.
        match resolve(&s, pet.clone(), "/owner/name/first") {
            Lookup::Missing {
                at_segment: 2,
                known,
                ..
            } => assert!(known.is_empty()),
            other => panic!("{other:?}"),
        }
        let closed = node(&s, "/components/schemas/Closed");
        assert!(matches!(
            resolve(&s, closed, "/x"),
            Lookup::Missing { at_segment: 0, .. }
        ));
        // A free-form object cannot say.
        assert!(matches!(
            resolve(&s, pet.clone(), "/free/x"),
            Lookup::Undecidable { at_segment: 1, .. }
        ));
        assert!(matches!(
            resolve(&s, pet, "owner"),
            Lookup::Undecidable { at_segment: 0, .. }
        ));
    }

    #[test]
    fn all_of_merges_and_one_of_needs_every_branch() {
        let s = spec(DOC);
        let dog = node(&s, "/components/schemas/Dog");
        let bark = found(resolve(&s, dog.clone(), "/bark"));
        assert!(bark.is_required());
        assert_eq!(bark.types(), Types::BOOLEAN);
        assert!(found(resolve(&s, dog.clone(), "/id")).is_required());
        assert!(!found(resolve(&s, dog.clone(), "/name")).is_required());
        let mut names = SchemaRef::new(&s, dog).expect("readable").property_names();
        names.sort();
        assert!(names.contains(&"bark".to_owned()) && names.contains(&"owner".to_owned()));

        let shape = node(&s, "/components/schemas/Shape");
        let kind = found(resolve(&s, shape.clone(), "/kind"));
        // Required in one branch only: not required.
        assert!(!kind.is_required());
        assert!(matches!(
            resolve(&s, shape.clone(), "/r"),
            Lookup::Undecidable { .. }
        ));
        assert!(matches!(resolve(&s, shape, "/zz"), Lookup::Missing { .. }));

        // A null branch does not hide the other's members.
        let maybe = node(&s, "/components/schemas/MaybePet");
        let m = found(resolve(&s, maybe.clone(), "/owner/age"));
        assert_eq!(m.types(), Types::INTEGER);
        let whole = SchemaRef::new(&s, maybe).expect("readable");
        assert!(whole.types().contains(Types::NULL) && whole.types().contains(Types::OBJECT));

        let looped = node(&s, "/components/schemas/Loop");
        assert!(matches!(
            resolve(&s, looped, "/x"),
            Lookup::Undecidable { .. }
        ));
    }

    #[test]
    fn types_admit_values() {
        assert!(Types::NUMBER.admits(&serde_json::json!(1)));
        assert!(Types::NUMBER.admits(&serde_json::json!(1.5)));
        assert!(Types::INTEGER.admits(&serde_json::json!(2.0)));
        assert!(!Types::INTEGER.admits(&serde_json::json!(2.5)));
        assert!(!Types::STRING.admits(&serde_json::json!(1)));
        assert!(Types::ANY.admits(&Value::Null));
        assert_eq!(Types::NUMBER.intersect(Types::INTEGER), Types::INTEGER);
        assert_eq!(
            Types::STRING.union(Types::INTEGER).to_string(),
            "string or integer"
        );
        assert_eq!(Types::of(&serde_json::json!(1.5)).to_string(), "number");
        assert_eq!(
            Types::NUMBER.union(Types::NULL).to_string(),
            "number or null"
        );
        let fraction = Types::NUMBER.without(Types::INTEGER);
        assert!(!fraction.intersects(Types::INTEGER) && Types::NUMBER.contains(fraction));
        assert_eq!(fraction.to_string(), "number");
        assert_eq!(
            Types::STRING.union(Types::NULL).without(Types::STRING),
            Types::NULL
        );
        assert_eq!(
            tokens("/a~1b/~0c/0"),
            Some(vec!["a/b".into(), "~c".into(), "0".into()])
        );
        assert_eq!(tokens("/a~2"), None);
        assert_eq!(tokens("a"), None);
        assert!(is_index("0") && is_index("12") && !is_index("01") && !is_index("-1"));
    }

    #[test]
    fn bodies_are_found_in_all_versions() {
        let s = spec(
            r##"
paths:
  /a:
    post:
      requestBody:
        content:
          text/plain: { schema: { type: string } }
          application/merge-patch+json: { schema: { type: object, title: patch } }
          application/json; charset=utf-8: { schema: { $ref: "#/components/schemas/X" } }
      responses:
        "204": { description: none }
        "201": { content: { application/hal+json: { schema: { type: array } } } }
        "200": { content: { text/html: { schema: { type: string } } } }
        default: { content: { application/json: { schema: { type: object } } } }
  /b:
    parameters:
      - { in: body, name: b, schema: { type: object, title: item } }
    put:
      responses:
        "200": { schema: { type: integer } }
components:
  schemas:
    X: { type: object, title: x }
"##,
        );
        let a = node(&s, "/paths/~1a/post");
        let req = request_body(&s, None, &a).expect("request body");
        assert_eq!(req.schema.pointer, "/components/schemas/X");
        assert_eq!(
            req.media.as_deref(),
            Some("application/json; charset=utf-8")
        );
        let resp = success_response(&s, &a).expect("response");
        assert_eq!(resp.status.as_deref(), Some("201"));
        assert_eq!(
            resp.schema.value.get("type").and_then(Value::as_str),
            Some("array")
        );

        let item = node(&s, "/paths/~1b");
        let b = node(&s, "/paths/~1b/put");
        let req = request_body(&s, Some(&item), &b).expect("body parameter");
        assert_eq!(
            req.schema.value.get("title").and_then(Value::as_str),
            Some("item")
        );
        assert!(request_body(&s, None, &b).is_none());
        let resp = success_response(&s, &b).expect("2.0 response");
        assert_eq!(resp.status.as_deref(), Some("200"));
        assert!(resp.media.is_none());
    }
}
