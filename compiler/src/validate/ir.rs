//! The validators' IR: what each schema asks of a value, keyword by keyword, with `$ref`s
//! turned into calls of other functions, and the reader that builds it from JSON.
//!
//! The reader is the one place that decides what a keyword means in each [`Dialect`]: every
//! keyword it meets is either compiled into a check, or is an identifier or annotation that
//! asserts nothing, or becomes an [`Unsupported`] entry saying why it is not enforced. It
//! never fails and never panics: a malformed keyword value is an entry too, and the rest of
//! the schema is still compiled.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Number, Value};

use super::{Dialect, Reason, Resolve, Unsupported, pattern};
use crate::lower::names::snake;
use crate::lower::schema::Types;
use crate::spec::source::child;

/// Index of a function in [`Builder::functions`].
pub(crate) type FnId = usize;

/// A schema: a boolean schema, or an object of keywords.
#[derive(Debug, Clone)]
pub(crate) enum Schema {
    /// `true` accepts every value, `false` none.
    Bool(bool),
    /// An object schema's checks.
    Node(Box<Node>),
}

impl Schema {
    /// Whether the schema accepts every value without looking at it.
    pub(crate) fn always_valid(&self) -> bool {
        match self {
            Schema::Bool(b) => *b,
            Schema::Node(n) => n.is_empty(),
        }
    }
}

/// A number as a schema wrote it: its value, and its text for messages.
#[derive(Debug, Clone)]
pub(crate) struct Literal {
    pub(crate) value: Number,
    pub(crate) text: String,
}

/// A check on numbers.
#[derive(Debug, Clone)]
pub(crate) enum NumberCheck {
    /// `maximum` (or, with `exclusive`, `exclusiveMaximum`, or draft 4's `maximum` with
    /// `exclusiveMaximum: true`).
    Max { limit: Literal, exclusive: bool },
    /// `minimum` and its exclusive forms.
    Min { limit: Literal, exclusive: bool },
    /// `multipleOf` a positive integer.
    MultipleOfInt { divisor: u64, text: String },
    /// `multipleOf` a positive fraction.
    MultipleOfFloat { divisor: f64, text: String },
    /// `format: int32` or `int64`.
    Format(Format),
}

/// A check on strings.
#[derive(Debug, Clone)]
pub(crate) enum StringCheck {
    /// `maxLength`, in code points.
    MaxLength(u64),
    /// `minLength`, in code points.
    MinLength(u64),
    /// `pattern`.
    Pattern(Pattern),
    /// A string `format`.
    Format(Format),
}

/// A `pattern`: the regex crate's syntax, and the text the schema wrote.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) regex: String,
    pub(crate) text: String,
}

/// The formats that are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    DateTime,
    Date,
    Uuid,
    Email,
    Uri,
    Ipv4,
    Ipv6,
    Int32,
    Int64,
}

impl Format {
    fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "date-time" => Format::DateTime,
            "date" => Format::Date,
            "uuid" => Format::Uuid,
            "email" => Format::Email,
            "uri" => Format::Uri,
            "ipv4" => Format::Ipv4,
            "ipv6" => Format::Ipv6,
            "int32" => Format::Int32,
            "int64" => Format::Int64,
            _ => return None,
        })
    }

    /// The name, as the schema writes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::DateTime => "date-time",
            Format::Date => "date",
            Format::Uuid => "uuid",
            Format::Email => "email",
            Format::Uri => "uri",
            Format::Ipv4 => "ipv4",
            Format::Ipv6 => "ipv6",
            Format::Int32 => "int32",
            Format::Int64 => "int64",
        }
    }

    /// The runtime function that checks it.
    pub(crate) fn checker(self) -> &'static str {
        match self {
            Format::DateTime => "is_date_time",
            Format::Date => "is_date",
            Format::Uuid => "is_uuid",
            Format::Email => "is_email",
            Format::Uri => "is_uri",
            Format::Ipv4 => "is_ipv4",
            Format::Ipv6 => "is_ipv6",
            Format::Int32 => "is_int32",
            Format::Int64 => "is_int64",
        }
    }

    fn is_numeric(self) -> bool {
        matches!(self, Format::Int32 | Format::Int64)
    }
}

/// `contains` with its bounds.
#[derive(Debug, Clone)]
pub(crate) struct Contains {
    pub(crate) schema: Schema,
    pub(crate) min: u64,
    pub(crate) max: Option<u64>,
}

/// `if`/`then`/`else`.
#[derive(Debug, Clone)]
pub(crate) struct Conditional {
    pub(crate) condition: Schema,
    pub(crate) then: Option<Schema>,
    pub(crate) otherwise: Option<Schema>,
}

/// A call of another function (a `$ref`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    pub(crate) target: FnId,
    /// Index in [`Builder::edges`] when the call checks the same value its caller was
    /// given (no member or element step since the caller's start), for finding cycles
    /// that would never end.
    pub(crate) edge: Option<usize>,
}

/// What an object schema asks, grouped by the type of value each check applies to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    /// `type` (with OpenAPI 3.0 `nullable`); `None` when absent.
    pub(crate) types: Option<Types>,
    /// `enum`.
    pub(crate) enumeration: Option<Vec<Value>>,
    /// `const`.
    pub(crate) constant: Option<Value>,
    pub(crate) number: Vec<NumberCheck>,
    pub(crate) string: Vec<StringCheck>,
    pub(crate) max_items: Option<u64>,
    pub(crate) min_items: Option<u64>,
    pub(crate) unique_items: bool,
    /// `prefixItems` (draft 4: `items` as an array).
    pub(crate) prefix_items: Vec<Schema>,
    /// `items` for the elements after the prefix (draft 4: `additionalItems`).
    pub(crate) items: Option<Schema>,
    pub(crate) contains: Option<Contains>,
    pub(crate) max_properties: Option<u64>,
    pub(crate) min_properties: Option<u64>,
    pub(crate) required: Vec<String>,
    pub(crate) dependent_required: Vec<(String, Vec<String>)>,
    pub(crate) dependent_schemas: Vec<(String, Schema)>,
    pub(crate) properties: Vec<(String, Schema)>,
    pub(crate) pattern_properties: Vec<(Pattern, Schema)>,
    pub(crate) additional_properties: Option<Schema>,
    pub(crate) property_names: Option<Schema>,
    pub(crate) calls: Vec<Call>,
    pub(crate) all_of: Vec<Schema>,
    pub(crate) any_of: Vec<Schema>,
    pub(crate) one_of: Vec<Schema>,
    pub(crate) not: Option<Schema>,
    pub(crate) conditional: Option<Conditional>,
}

impl Node {
    /// Whether the node checks nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.types.is_none()
            && self.enumeration.is_none()
            && self.constant.is_none()
            && self.number.is_empty()
            && self.string.is_empty()
            && !self.has_array_checks()
            && !self.has_object_checks()
            && self.calls.is_empty()
            && self.all_of.iter().all(Schema::always_valid)
            && (self.any_of.is_empty() || self.any_of.iter().any(Schema::always_valid))
            && (self.one_of.is_empty() || (self.one_of.len() == 1 && self.one_of[0].always_valid()))
            && self.not.is_none()
            && self.conditional.is_none()
    }

    pub(crate) fn has_array_checks(&self) -> bool {
        self.max_items.is_some()
            || self.min_items.is_some()
            || self.unique_items
            || self.prefix_items.iter().any(|s| !s.always_valid())
            || self.items.as_ref().is_some_and(|s| !s.always_valid())
            || self.contains.is_some()
    }

    pub(crate) fn has_object_checks(&self) -> bool {
        self.max_properties.is_some()
            || self.min_properties.is_some()
            || !self.required.is_empty()
            || !self.dependent_required.is_empty()
            || self
                .dependent_schemas
                .iter()
                .any(|(_, s)| !s.always_valid())
            || self.has_member_checks()
    }

    /// Whether the members have to be walked.
    pub(crate) fn has_member_checks(&self) -> bool {
        self.properties.iter().any(|(_, s)| !s.always_valid())
            || self
                .pattern_properties
                .iter()
                .any(|(_, s)| !s.always_valid())
            || self
                .additional_properties
                .as_ref()
                .is_some_and(|s| !s.always_valid())
            || self
                .property_names
                .as_ref()
                .is_some_and(|s| !s.always_valid())
    }
}

/// One generated function.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    /// Its identifier.
    pub(crate) name: String,
    /// Where the schema is, for its doc comment (`file 0: /components/schemas/Pet`).
    pub(crate) origin: String,
    pub(crate) body: Body,
}

/// What a function does.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// Not compiled yet (only while building).
    Pending,
    /// Checks a schema.
    Schema(Schema),
    /// Calls another function that checks the same schema (a root that is also the target
    /// of a `$ref`, or that was added twice).
    Alias(FnId),
}

/// A call at the same value: (caller, callee, where the `$ref` is written).
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub(crate) from: FnId,
    pub(crate) to: FnId,
    pub(crate) doc: usize,
    pub(crate) pointer: String,
}

/// Where the reader is: the document, dialect, function and what has been crossed.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    doc: usize,
    dialect: Dialect,
    func: FnId,
    /// Inside a subschema that has its own `$id`: `$ref`s there resolve against it.
    rebased: bool,
    /// Whether a member or element step was taken since the function's start.
    descended: bool,
    /// Whether the value is an answer (OpenAPI 3.0's `readOnly` and `writeOnly` differ).
    response: bool,
}

/// Builds the IR of every function: roots as they are added, `$ref` targets from a work
/// list, each compiled once per (document, pointer, dialect, whether for answers).
pub(crate) struct Builder<'r, R: Resolve + ?Sized> {
    resolver: &'r R,
    pub(crate) functions: Vec<Function>,
    by_key: HashMap<(usize, String, Dialect, bool), FnId>,
    names: BTreeSet<String>,
    pending: Vec<(FnId, usize, String, Dialect, bool)>,
    pub(crate) edges: Vec<Edge>,
    pub(crate) unsupported: Vec<Unsupported>,
}

impl<'r, R: Resolve + ?Sized> Builder<'r, R> {
    pub(crate) fn new(resolver: &'r R) -> Self {
        Builder {
            resolver,
            functions: Vec::new(),
            by_key: HashMap::new(),
            // The generated code's own bindings: a function named like one would be shadowed
            // where it is called.
            names: RESERVED.iter().map(|n| (*n).to_owned()).collect(),
            pending: Vec::new(),
            edges: Vec::new(),
            unsupported: Vec::new(),
        }
    }

    /// A function name from `base` that no other function has.
    fn unique_name(&mut self, base: &str) -> String {
        let base = snake(base);
        let mut name = base.clone();
        let mut n = 2;
        while self.names.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.names.insert(name.clone());
        name
    }

    /// Adds a root function named after `name` for the schema at `doc`/`pointer`, with
    /// `skip` keys of the root object left out (a Swagger 2.0 parameter's own fields),
    /// checking answers when `response` is set. `None` when nothing is at the pointer.
    pub(crate) fn add_root(
        &mut self,
        name: &str,
        doc: usize,
        pointer: &str,
        (dialect, response): (Dialect, bool),
        skip: &[&str],
    ) -> Option<String> {
        let value = self.resolver.get(doc, pointer)?;
        let fn_name = self.unique_name(name);
        let id = self.functions.len();
        // Only the 3.0 schema object reads differently for answers.
        let response = response && dialect == Dialect::OpenApi30;
        let key = (doc, pointer.to_owned(), dialect, response);
        let body = match self.by_key.get(&key) {
            Some(&existing) if skip.is_empty() => Body::Alias(existing),
            _ => Body::Pending,
        };
        let pending = matches!(body, Body::Pending);
        self.functions.push(Function {
            name: fn_name.clone(),
            origin: origin(doc, pointer),
            body,
        });
        if pending {
            if skip.is_empty() {
                self.by_key.insert(key, id);
            }
            let cx = Ctx {
                doc,
                dialect,
                func: id,
                rebased: false,
                descended: false,
                response,
            };
            let schema = self.schema_skipping(cx, value, pointer, skip);
            self.functions[id].body = Body::Schema(schema);
        }
        self.drain();
        Some(fn_name)
    }

    /// Compiles every `$ref` target found so far (which may find more).
    fn drain(&mut self) {
        while let Some((id, doc, pointer, dialect, response)) = self.pending.pop() {
            let Some(value) = self.resolver.get(doc, &pointer) else {
                self.functions[id].body = Body::Schema(Schema::Bool(true));
                continue;
            };
            let cx = Ctx {
                doc,
                dialect,
                func: id,
                rebased: false,
                descended: false,
                response,
            };
            let schema = self.schema(cx, value, &pointer);
            self.functions[id].body = Body::Schema(schema);
        }
    }

    fn report(&mut self, cx: Ctx, pointer: String, keyword: &str, reason: Reason, detail: String) {
        self.unsupported.push(Unsupported {
            keyword: keyword.to_owned(),
            doc: cx.doc,
            pointer,
            reason,
            detail,
        });
    }

    fn schema(&mut self, cx: Ctx, value: &'r Value, pointer: &str) -> Schema {
        self.schema_skipping(cx, value, pointer, &[])
    }

    fn schema_skipping(
        &mut self,
        cx: Ctx,
        value: &'r Value,
        pointer: &str,
        skip: &[&str],
    ) -> Schema {
        match value {
            Value::Bool(b) => Schema::Bool(*b),
            Value::Object(map) => Schema::Node(Box::new(self.node(cx, map, pointer, skip))),
            _ => {
                self.report(
                    cx,
                    pointer.to_owned(),
                    "",
                    Reason::InvalidValue,
                    "a schema must be an object or a boolean; this one accepts every value"
                        .to_owned(),
                );
                Schema::Bool(true)
            }
        }
    }

    /// A subschema one member or element down from the value.
    fn below(&mut self, cx: Ctx, value: &'r Value, pointer: &str) -> Schema {
        let cx = Ctx {
            descended: true,
            ..cx
        };
        self.schema(cx, value, pointer)
    }

    fn node(&mut self, cx: Ctx, map: &'r Map<String, Value>, pointer: &str, skip: &[&str]) -> Node {
        let mut node = Node::default();
        let id_key = match cx.dialect {
            Dialect::Draft4 => "id",
            Dialect::Draft2020 => "$id",
            Dialect::OpenApi30 => "",
        };
        let mut cx = cx;
        // A subschema's own `$id` changes what its `$ref`s are relative to (in draft 4, an
        // `id` beside `$ref` is ignored like every other sibling).
        let ignored_beside_ref = cx.dialect == Dialect::Draft4 && map.contains_key("$ref");
        if !pointer.is_empty()
            && !id_key.is_empty()
            && !ignored_beside_ref
            && map.get(id_key).is_some_and(Value::is_string)
        {
            cx.rebased = true;
        }
        if let Some(reference) = map.get("$ref") {
            let at = child(pointer, "$ref");
            match reference.as_str() {
                Some(r) => {
                    if let Some(call) = self.reference(cx, r, at) {
                        node.calls.push(call);
                    }
                }
                None => self.report(
                    cx,
                    at,
                    "$ref",
                    Reason::InvalidValue,
                    "`$ref` must be a string".to_owned(),
                ),
            }
            if cx.dialect != Dialect::Draft2020 {
                for key in map.keys() {
                    if key != "$ref" && is_assertion(cx.dialect, key) {
                        self.report(
                            cx,
                            child(pointer, key),
                            key,
                            Reason::IgnoredBesideRef,
                            format!("`{key}` beside `$ref` is ignored: in this dialect a reference replaces its siblings; wrap both in `allOf` to apply it"),
                        );
                    }
                }
                return node;
            }
        }
        let mut nullable = false;
        let mut exclusive_max_flag = false;
        let mut exclusive_min_flag = false;
        let mut maximum = None;
        let mut minimum = None;
        let mut items_is_array = false;
        let mut additional_items = None;
        let mut min_contains = None;
        let mut max_contains = None;
        let mut condition: Option<(Schema, Option<Schema>, Option<Schema>)> = None;
        let (mut then_schema, mut else_schema) = (None, None);
        let draft2020 = cx.dialect == Dialect::Draft2020;
        let draft4 = cx.dialect == Dialect::Draft4;
        for (key, value) in map {
            if skip.contains(&key.as_str()) {
                continue;
            }
            let at = child(pointer, key);
            let k = key.as_str();
            match k {
                "$ref" => {}
                "type" => node.types = self.types(cx, value, at),
                "enum" => match value.as_array() {
                    Some(values) => node.enumeration = Some(values.clone()),
                    None => self.invalid(cx, at, k, "an array"),
                },
                "const" if draft2020 => node.constant = Some(value.clone()),
                "multipleOf" => match value.as_number() {
                    Some(n) if n.as_u64().is_some_and(|u| u > 0) => {
                        node.number.push(NumberCheck::MultipleOfInt {
                            divisor: n.as_u64().unwrap_or(1),
                            text: n.to_string(),
                        });
                    }
                    Some(n) if n.as_f64().is_some_and(|f| f > 0.0 && f.is_finite()) => {
                        let f = n.as_f64().unwrap_or(1.0);
                        let check = if f.fract() == 0.0 && f < 9_007_199_254_740_992.0 {
                            NumberCheck::MultipleOfInt {
                                divisor: f as u64,
                                text: n.to_string(),
                            }
                        } else {
                            NumberCheck::MultipleOfFloat {
                                divisor: f,
                                text: n.to_string(),
                            }
                        };
                        node.number.push(check);
                    }
                    _ => self.invalid(cx, at, k, "a number greater than 0"),
                },
                "maximum" | "minimum" => match value.as_number() {
                    Some(n) => {
                        let lit = literal(n);
                        if k == "maximum" {
                            maximum = Some(lit);
                        } else {
                            minimum = Some(lit);
                        }
                    }
                    None => self.invalid(cx, at, k, "a number"),
                },
                "exclusiveMaximum" | "exclusiveMinimum" => {
                    let max = k == "exclusiveMaximum";
                    match value {
                        Value::Number(n) if !draft4 => {
                            let limit = literal(n);
                            node.number.push(if max {
                                NumberCheck::Max {
                                    limit,
                                    exclusive: true,
                                }
                            } else {
                                NumberCheck::Min {
                                    limit,
                                    exclusive: true,
                                }
                            });
                        }
                        Value::Bool(b) if !draft2020 => {
                            if max {
                                exclusive_max_flag = *b;
                            } else {
                                exclusive_min_flag = *b;
                            }
                        }
                        _ => self.invalid(
                            cx,
                            at,
                            k,
                            if draft2020 { "a number" } else { "a boolean" },
                        ),
                    }
                }
                "maxLength" | "minLength" | "maxItems" | "minItems" | "maxProperties"
                | "minProperties" | "minContains" | "maxContains"
                    if draft2020 || !k.ends_with("Contains") =>
                {
                    let Some(n) = count(value) else {
                        self.invalid(cx, at, k, "a non-negative integer");
                        continue;
                    };
                    match k {
                        "maxLength" => node.string.push(StringCheck::MaxLength(n)),
                        "minLength" => node.string.push(StringCheck::MinLength(n)),
                        "maxItems" => node.max_items = Some(n),
                        "minItems" => node.min_items = Some(n),
                        "maxProperties" => node.max_properties = Some(n),
                        "minProperties" => node.min_properties = Some(n),
                        "minContains" => min_contains = Some(n),
                        _ => max_contains = Some(n),
                    }
                }
                "pattern" => match value.as_str() {
                    Some(text) => match pattern::translate(text) {
                        Ok(regex) => node.string.push(StringCheck::Pattern(Pattern {
                            regex,
                            text: text.to_owned(),
                        })),
                        Err(why) => self.report(cx, at, k, Reason::InvalidValue, why),
                    },
                    None => self.invalid(cx, at, k, "a string"),
                },
                "format" => match value.as_str() {
                    Some(name) => match Format::from_name(name) {
                        Some(f) if f.is_numeric() => node.number.push(NumberCheck::Format(f)),
                        Some(f) => node.string.push(StringCheck::Format(f)),
                        None => self.report(
                            cx,
                            at,
                            k,
                            Reason::FormatNotChecked,
                            format!("`format: {name}` is not checked (checked: date-time, date, uuid, email, uri, ipv4, ipv6, int32, int64)"),
                        ),
                    },
                    None => self.invalid(cx, at, k, "a string"),
                },
                "items" => match value {
                    Value::Array(list) if draft4 => {
                        items_is_array = true;
                        node.prefix_items = self.list(cx, list, &at, true);
                    }
                    Value::Array(_) => self.invalid(
                        cx,
                        at,
                        k,
                        "a schema (use `prefixItems` for a schema per position)",
                    ),
                    _ => node.items = Some(self.below(cx, value, &at)),
                },
                "additionalItems" if draft4 => {
                    additional_items = Some(self.below(cx, value, &at));
                }
                "prefixItems" if draft2020 => match value.as_array() {
                    Some(list) => node.prefix_items = self.list(cx, list, &at, true),
                    None => self.invalid(cx, at, k, "an array of schemas"),
                },
                "uniqueItems" => match value.as_bool() {
                    Some(b) => node.unique_items = b,
                    None => self.invalid(cx, at, k, "a boolean"),
                },
                "contains" if draft2020 => {
                    node.contains = Some(Contains {
                        schema: self.below(cx, value, &at),
                        min: 1,
                        max: None,
                    });
                }
                "required" => match string_list(value) {
                    Some(names) => node.required = names,
                    None => self.invalid(cx, at, k, "an array of strings"),
                },
                "properties" => match value.as_object() {
                    Some(props) => {
                        for (name, sub) in props {
                            let s = self.below(cx, sub, &child(&at, name));
                            node.properties.push((name.clone(), s));
                        }
                    }
                    None => self.invalid(cx, at, k, "an object of schemas"),
                },
                "patternProperties" if cx.dialect != Dialect::OpenApi30 => {
                    match value.as_object() {
                        Some(props) => {
                            for (text, sub) in props {
                                let sub_at = child(&at, text);
                                match pattern::translate(text) {
                                    Ok(regex) => {
                                        let s = self.below(cx, sub, &sub_at);
                                        node.pattern_properties.push((
                                            Pattern {
                                                regex,
                                                text: text.clone(),
                                            },
                                            s,
                                        ));
                                    }
                                    Err(why) => {
                                        self.report(cx, sub_at, k, Reason::InvalidValue, why)
                                    }
                                }
                            }
                        }
                        None => self.invalid(cx, at, k, "an object of schemas"),
                    }
                }
                "additionalProperties" => {
                    node.additional_properties = Some(self.below(cx, value, &at));
                }
                "propertyNames" if draft2020 => {
                    node.property_names = Some(self.below(cx, value, &at));
                }
                "dependentRequired" if draft2020 => match value.as_object() {
                    Some(deps) => {
                        for (name, list) in deps {
                            match string_list(list) {
                                Some(names) => node.dependent_required.push((name.clone(), names)),
                                None => self.invalid(cx, child(&at, name), k, "an array of strings"),
                            }
                        }
                    }
                    None => self.invalid(cx, at, k, "an object of string arrays"),
                },
                "dependentSchemas" if draft2020 => match value.as_object() {
                    Some(deps) => {
                        for (name, sub) in deps {
                            let s = self.schema(cx, sub, &child(&at, name));
                            node.dependent_schemas.push((name.clone(), s));
                        }
                    }
                    None => self.invalid(cx, at, k, "an object of schemas"),
                },
                "dependencies" if draft4 => match value.as_object() {
                    Some(deps) => {
                        for (name, dep) in deps {
                            match dep {
                                Value::Array(_) => match string_list(dep) {
                                    Some(names) => {
                                        node.dependent_required.push((name.clone(), names));
                                    }
                                    None => self.invalid(
                                        cx,
                                        child(&at, name),
                                        k,
                                        "an array of strings or a schema",
                                    ),
                                },
                                _ => {
                                    let s = self.schema(cx, dep, &child(&at, name));
                                    node.dependent_schemas.push((name.clone(), s));
                                }
                            }
                        }
                    }
                    None => self.invalid(cx, at, k, "an object"),
                },
                "allOf" | "anyOf" | "oneOf" => match value.as_array() {
                    Some(list) if !list.is_empty() => {
                        let schemas = self.list(cx, list, &at, false);
                        match k {
                            "allOf" => node.all_of = schemas,
                            "anyOf" => node.any_of = schemas,
                            _ => node.one_of = schemas,
                        }
                    }
                    _ => self.invalid(cx, at, k, "a non-empty array of schemas"),
                },
                "not" => node.not = Some(self.schema(cx, value, &at)),
                "if" if draft2020 => {
                    condition = Some((self.schema(cx, value, &at), None, None));
                }
                "then" if draft2020 => then_schema = Some(self.schema(cx, value, &at)),
                "else" if draft2020 => else_schema = Some(self.schema(cx, value, &at)),
                "nullable" if cx.dialect == Dialect::OpenApi30 => match value.as_bool() {
                    Some(b) => nullable = b,
                    None => self.invalid(cx, at, k, "a boolean"),
                },
                "unevaluatedProperties" | "unevaluatedItems" if draft2020 => self.report(
                    cx,
                    at,
                    k,
                    Reason::NotEnforced,
                    format!("`{k}` is not enforced: values it would reject are accepted"),
                ),
                "$dynamicRef" if draft2020 => self.report(
                    cx,
                    at,
                    k,
                    Reason::RefNotFollowed,
                    "`$dynamicRef` is not followed: the value is not checked against it".to_owned(),
                ),
                "contentMediaType" | "contentEncoding" | "contentSchema" if draft2020 => {
                    self.report(
                        cx,
                        at,
                        k,
                        Reason::AnnotationOnly,
                        format!("`{k}` is an annotation in JSON Schema 2020-12: the string's content is not decoded or checked"),
                    )
                }
                _ if is_silent(cx.dialect, k) => {}
                _ => {
                    let hint = if k == "nullable" {
                        " (`nullable` is OpenAPI 3.0; in 3.1 write `type: [T, \"null\"]`)"
                    } else {
                        ""
                    };
                    self.report(
                        cx,
                        at,
                        k,
                        Reason::UnknownKeyword,
                        format!("`{k}` is not a keyword of {}, so it checks nothing{hint}", cx.dialect),
                    );
                }
            }
        }
        if let Some(lit) = maximum {
            node.number.insert(
                0,
                NumberCheck::Max {
                    limit: lit,
                    exclusive: exclusive_max_flag,
                },
            );
        }
        if let Some(lit) = minimum {
            node.number.insert(
                0,
                NumberCheck::Min {
                    limit: lit,
                    exclusive: exclusive_min_flag,
                },
            );
        }
        if draft4 && items_is_array {
            node.items = additional_items;
        }
        if let Some(contains) = &mut node.contains {
            if let Some(min) = min_contains {
                contains.min = min;
            }
            contains.max = max_contains;
        }
        if let Some((condition, _, _)) = condition {
            node.conditional = Some(Conditional {
                condition,
                then: then_schema,
                otherwise: else_schema,
            });
        }
        if cx.dialect == Dialect::OpenApi30 {
            if nullable && let Some(t) = node.types {
                node.types = Some(t.union(Types::NULL));
            }
            // OpenAPI 3.0: a required property that is `readOnly` is required in
            // answers only, one that is `writeOnly` in requests only.
            let props = map.get("properties").and_then(Value::as_object);
            let only = if cx.response { "writeOnly" } else { "readOnly" };
            node.required.retain(|name| {
                props
                    .and_then(|p| p.get(name))
                    .and_then(|s| self.follow(cx.doc, s))
                    .is_none_or(|s| s.get(only).and_then(Value::as_bool) != Some(true))
            });
        }
        node
    }

    /// A schema with its `$ref`s followed (a few steps), for reading a flag.
    fn follow(&self, doc: usize, value: &'r Value) -> Option<&'r Value> {
        let (mut doc, mut value) = (doc, value);
        for _ in 0..8 {
            let Some(r) = value.get("$ref").and_then(Value::as_str) else {
                return Some(value);
            };
            let (d, p) = self.resolver.resolve(doc, r)?;
            value = self.resolver.get(d, &p)?;
            doc = d;
        }
        None
    }

    fn list(&mut self, cx: Ctx, list: &'r [Value], at: &str, below: bool) -> Vec<Schema> {
        list.iter()
            .enumerate()
            .map(|(i, s)| {
                let p = child(at, &i.to_string());
                if below {
                    self.below(cx, s, &p)
                } else {
                    self.schema(cx, s, &p)
                }
            })
            .collect()
    }

    fn invalid(&mut self, cx: Ctx, at: String, keyword: &str, expected: &str) {
        self.report(
            cx,
            at,
            keyword,
            Reason::InvalidValue,
            format!("`{keyword}` must be {expected}; it is not enforced"),
        );
    }

    fn types(&mut self, cx: Ctx, value: &Value, at: String) -> Option<Types> {
        let names: Vec<&Value> = match value {
            Value::Array(list) if cx.dialect != Dialect::OpenApi30 => list.iter().collect(),
            Value::String(_) => vec![value],
            _ => {
                let expected = if cx.dialect == Dialect::OpenApi30 {
                    "a type name (OpenAPI 3.0 has no type arrays: use `nullable`)"
                } else {
                    "a type name or an array of them"
                };
                self.invalid(cx, at, "type", expected);
                return None;
            }
        };
        let mut types = Types::NONE;
        for name in names {
            match name.as_str().and_then(Types::from_name) {
                Some(t) => types = types.union(t),
                None => {
                    self.invalid(
                        cx,
                        at,
                        "type",
                        "made of null, boolean, object, array, number, string and integer",
                    );
                    return None;
                }
            }
        }
        Some(types)
    }

    /// A call for `$ref: reference`, written at `at`; `None` (and an entry) when it cannot
    /// be followed.
    fn reference(&mut self, cx: Ctx, reference: &str, at: String) -> Option<Call> {
        if cx.rebased {
            self.report(
                cx,
                at,
                "$ref",
                Reason::RefNotFollowed,
                format!("`$ref: {reference}` is inside a subschema with its own base URI (`$id`), which gatewayc does not resolve against: the value is not checked against it"),
            );
            return None;
        }
        let target = self
            .resolver
            .resolve(cx.doc, reference)
            .filter(|(d, p)| self.resolver.get(*d, p).is_some());
        let Some((doc, pointer)) = target else {
            self.report(
                cx,
                at,
                "$ref",
                Reason::RefNotFollowed,
                format!("`$ref: {reference}` is not followed (only JSON pointers into the spec's own files are): the value is not checked against it"),
            );
            return None;
        };
        let key = (doc, pointer.clone(), cx.dialect, cx.response);
        let target = match self.by_key.get(&key) {
            Some(&id) => id,
            None => {
                let base = pointer.rsplit('/').next().unwrap_or_default();
                let base = crate::spec::source::unescape_token(base);
                let name = self.unique_name(&format!("schema_{base}"));
                let id = self.functions.len();
                self.functions.push(Function {
                    name,
                    origin: origin(doc, &pointer),
                    body: Body::Pending,
                });
                self.by_key.insert(key, id);
                self.pending
                    .push((id, doc, pointer, cx.dialect, cx.response));
                id
            }
        };
        let edge = (!cx.descended).then(|| {
            self.edges.push(Edge {
                from: cx.func,
                to: target,
                doc: cx.doc,
                pointer: at,
            });
            self.edges.len() - 1
        });
        Some(Call { target, edge })
    }

    /// The edges that lie on a cycle of calls at the same value: such a cycle never ends,
    /// so those calls are not made, and each is reported.
    pub(crate) fn break_cycles(&mut self) -> BTreeSet<usize> {
        let mut next: HashMap<FnId, Vec<FnId>> = HashMap::new();
        for e in &self.edges {
            next.entry(e.from).or_default().push(e.to);
        }
        // Roots and aliases call their target at the same value too.
        for (id, f) in self.functions.iter().enumerate() {
            if let Body::Alias(to) = f.body {
                next.entry(id).or_default().push(to);
            }
        }
        let reaches = |from: FnId, goal: FnId| {
            let mut seen = BTreeSet::new();
            let mut stack = vec![from];
            while let Some(f) = stack.pop() {
                if f == goal {
                    return true;
                }
                if seen.insert(f) {
                    stack.extend(next.get(&f).into_iter().flatten().copied());
                }
            }
            false
        };
        let mut broken = BTreeSet::new();
        for (i, e) in self.edges.iter().enumerate() {
            if reaches(e.to, e.from) {
                broken.insert(i);
            }
        }
        for &i in &broken {
            let e = &self.edges[i];
            self.unsupported.push(Unsupported {
                keyword: "$ref".to_owned(),
                doc: e.doc,
                pointer: e.pointer.clone(),
                reason: Reason::InvalidValue,
                detail: "this `$ref` leads back to itself without a step into a member or element, so checking it would never end; it is not followed".to_owned(),
            });
        }
        broken
    }
}

/// The local names generated code binds (see `code.rs`).
const RESERVED: &[&str] = &[
    "v", "at", "out", "m", "a", "s", "n", "k", "i", "j", "probe", "matched", "any", "found", "key",
];

fn origin(doc: usize, pointer: &str) -> String {
    format!("file {doc}, `#{pointer}`")
}

fn literal(n: &Number) -> Literal {
    Literal {
        value: n.clone(),
        text: n.to_string(),
    }
}

/// A non-negative integer (`2.0` counts as `2`).
fn count(value: &Value) -> Option<u64> {
    let n = value.as_number()?;
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19)
            .map(|f| f as u64)
    })
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Keywords that check something: reported when `$ref` makes them ignored.
fn is_assertion(dialect: Dialect, key: &str) -> bool {
    !is_silent(dialect, key) && !matches!(key, "definitions" | "$defs" | "id" | "$id")
}

/// Identifiers, containers and annotations: they assert nothing, so they need no word.
fn is_silent(dialect: Dialect, key: &str) -> bool {
    key.starts_with("x-")
        || matches!(
            key,
            "$schema"
                | "$comment"
                | "title"
                | "description"
                | "default"
                | "examples"
                | "example"
                | "deprecated"
                | "readOnly"
                | "writeOnly"
                | "discriminator"
                | "xml"
                | "externalDocs"
        )
        || match dialect {
            Dialect::Draft2020 => matches!(
                key,
                "$id" | "$anchor" | "$dynamicAnchor" | "$defs" | "$vocabulary"
            ),
            Dialect::Draft4 => matches!(key, "id" | "definitions"),
            Dialect::OpenApi30 => false,
        }
}
