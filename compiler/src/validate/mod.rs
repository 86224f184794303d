//! Request validators: JSON schemas compiled into Rust functions.
//!
//! Each schema becomes a function of the generated crate,
//!
//! ```ignore
//! pub fn NAME(v: &Value, at: &Path<'_>, out: &mut Violations)
//! ```
//!
//! (types from `gatewayc_runtime::validate`), written out keyword by keyword: no
//! interpreter runs at request time, nothing is allocated while a value is valid, and
//! every violation is pushed with its JSON pointer. A `$ref` target is its own function,
//! emitted once however many schemas use it, so recursive schemas work. [`Validators`] is
//! the entry point: add the schemas (roots) one by one, then [`Validators::finish`] gives
//! the code and the list of what was not enforced.
//!
//! # Dialects
//!
//! [`Dialect::Draft2020`] is JSON Schema 2020-12 (OpenAPI 3.1), [`Dialect::OpenApi30`]
//! the OpenAPI 3.0 schema object (and Swagger 2.0's, which is a subset: `nullable`, boolean
//! `exclusiveMaximum`/`exclusiveMinimum`, no type arrays, `$ref` replaces its siblings),
//! and [`Dialect::Draft4`] JSON Schema draft 4 (the test suite's nearest draft to 3.0).
//!
//! # What is enforced
//!
//! `type`, `enum`, `const`, `multipleOf`, `maximum`, `exclusiveMaximum`, `minimum`,
//! `exclusiveMinimum`, `maxLength`, `minLength` (in code points), `pattern` (ECMA-262
//! syntax, run by the `regex` crate, see [`pattern`]), `items`, `prefixItems`, `maxItems`,
//! `minItems`, `uniqueItems`, `contains`, `minContains`, `maxContains`, `maxProperties`,
//! `minProperties`, `required`, `properties`, `patternProperties`, `additionalProperties`,
//! `propertyNames`, `dependentRequired`, `dependentSchemas`, `allOf`, `anyOf`, `oneOf`,
//! `not`, `if`/`then`/`else`, boolean schemas, `$ref` to a JSON pointer in the same
//! document or another file of the spec (`#/components/schemas/X`, `#/definitions/X`,
//! `#/$defs/X`, `other.yaml#/X`), and `format` for `date-time`, `date`, `uuid`, `email`,
//! `uri`, `ipv4`, `ipv6`, `int32` and `int64`. OpenAPI 3.0 adds `nullable`, and drops a
//! `required` member whose schema is `readOnly` from requests' checks and one that is
//! `writeOnly` from answers' ([`Validators::add_response`]). Draft 4
//! adds `dependencies`, `items` as an array with `additionalItems`, and boolean
//! `exclusiveMaximum`/`exclusiveMinimum`, which OpenAPI 3.0 has too. A keyword outside
//! its dialect (`const` in 3.0) is treated as unknown.
//!
//! # What is reported instead
//!
//! Every keyword that is not enforced is an [`Unsupported`] entry with a [`Reason`]:
//! `unevaluatedProperties` and `unevaluatedItems` (not enforced), `$dynamicRef` and any
//! `$ref` that is not a JSON pointer into the spec's files (URLs, `$anchor` names,
//! references inside a subschema with its own `$id`; not followed, so the value is not
//! checked against them), formats other than the nine above, patterns the `regex` crate
//! cannot run (look-around, back-references), malformed keyword values, `$ref`s that lead
//! back to themselves without descending into the value (they would never end),
//! `contentMediaType`/`contentEncoding`/`contentSchema` (annotations in 2020-12), unknown
//! keywords (often typos, or 3.0's `nullable` in a 3.1 document) and, in 3.0 and draft 4,
//! assertions written beside a `$ref` (which those dialects ignore). Annotations that
//! assert nothing (`title`, `description`, `default`, `example(s)`, `readOnly`,
//! `writeOnly`, `deprecated`, `discriminator`, `xml`, `externalDocs`, `$comment`, `x-`
//! extensions) and identifiers (`$schema`, `$id`, `$anchor`, `$defs`) are not reported.
//! [`Reason::weakens`] tells the entries that let values through which the schema rejects.
//!
//! Nothing here panics on any input: a malformed schema is an entry, and the rest of it is
//! still compiled. Output is deterministic: the same schemas added in the same order give
//! the same code.

mod code;
mod ir;
pub mod pattern;

use std::fmt;

use proc_macro2::TokenStream;
use serde_json::Value;

use crate::spec::{Spec, decode_fragment, pointer_get};

/// Which rules a schema is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dialect {
    /// JSON Schema 2020-12, the dialect of OpenAPI 3.1.
    Draft2020,
    /// The OpenAPI 3.0 schema object (also used for Swagger 2.0 schemas).
    OpenApi30,
    /// JSON Schema draft 4.
    Draft4,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Draft2020 => "JSON Schema 2020-12 (OpenAPI 3.1)",
            Dialect::OpenApi30 => "the OpenAPI 3.0 schema object",
            Dialect::Draft4 => "JSON Schema draft 4",
        })
    }
}

/// How `$ref`s are found: the documents schemas live in, by index.
pub trait Resolve {
    /// The node at `pointer` (RFC 6901, `""` for the root) in document `doc`, without
    /// following references; `None` when there is none.
    fn get(&self, doc: usize, pointer: &str) -> Option<&Value>;

    /// The document and pointer that `$ref: reference`, written in document `doc`, names;
    /// `None` when it names something this resolver cannot reach (another document's URL,
    /// an anchor, a file that was not loaded).
    fn resolve(&self, doc: usize, reference: &str) -> Option<(usize, String)>;
}

/// A loaded spec resolves `$ref`s the way `spec::load` followed them: relative file paths
/// and JSON pointer fragments.
impl Resolve for Spec {
    fn get(&self, doc: usize, pointer: &str) -> Option<&Value> {
        Spec::get(self, doc, pointer)
    }

    fn resolve(&self, doc: usize, reference: &str) -> Option<(usize, String)> {
        let (file, pointer) = self.target(doc, reference)?;
        (pointer.is_empty() || pointer.starts_with('/')).then_some((file, pointer))
    }
}

/// One standalone JSON Schema document (document index 0): `$ref`s are JSON pointer
/// fragments (`#`, `#/$defs/x`), optionally after the root's own `$id` (or draft 4 `id`).
#[derive(Debug, Clone, Copy)]
pub struct Document<'v> {
    root: &'v Value,
}

impl<'v> Document<'v> {
    /// The document whose root schema is `root`.
    pub fn new(root: &'v Value) -> Self {
        Document { root }
    }
}

impl Resolve for Document<'_> {
    fn get(&self, doc: usize, pointer: &str) -> Option<&Value> {
        if doc != 0 {
            return None;
        }
        pointer_get(self.root, pointer)
    }

    fn resolve(&self, doc: usize, reference: &str) -> Option<(usize, String)> {
        if doc != 0 {
            return None;
        }
        let (base, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let own_id = ["$id", "id"]
            .iter()
            .filter_map(|k| self.root.get(*k).and_then(Value::as_str))
            .any(|id| id.trim_end_matches('#') == base);
        if !base.is_empty() && !own_id {
            return None;
        }
        let pointer = decode_fragment(fragment);
        (pointer.is_empty() || pointer.starts_with('/')).then_some((0, pointer))
    }
}

/// Why a keyword is not enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// A keyword of the dialect the gateway does not check (`unevaluatedProperties`):
    /// values it would reject are accepted.
    NotEnforced,
    /// A `format` the gateway does not check.
    FormatNotChecked,
    /// A `$ref` (or `$dynamicRef`) that is not followed: the value is not checked against
    /// its target.
    RefNotFollowed,
    /// A keyword whose value the dialect does not allow (`minLength: "3"`, a pattern that
    /// cannot be compiled, a cycle of references): not enforced.
    InvalidValue,
    /// An annotation JSON Schema itself does not assert (`contentMediaType` in 2020-12);
    /// reported because it reads like a check.
    AnnotationOnly,
    /// Not a keyword of the dialect: the dialect says to ignore it, and it is ignored. Often
    /// a misspelling, or a keyword of another dialect.
    UnknownKeyword,
    /// An assertion beside `$ref` in OpenAPI 3.0 or draft 4, which ignore a reference's
    /// siblings: ignored, as the dialect says.
    IgnoredBesideRef,
}

impl Reason {
    /// Whether the generated validator accepts values that a validator of the dialect
    /// would reject. `false` for entries where the dialect itself says the keyword checks
    /// nothing (unknown keywords, annotations, siblings of `$ref` in 3.0 and draft 4).
    pub fn weakens(self) -> bool {
        matches!(
            self,
            Reason::NotEnforced
                | Reason::FormatNotChecked
                | Reason::RefNotFollowed
                | Reason::InvalidValue
        )
    }
}

/// A keyword the generated code does not enforce, and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The keyword (`unevaluatedProperties`, `format`, `$ref`); empty when the schema
    /// itself is malformed (neither an object nor a boolean).
    pub keyword: String,
    /// The document it is in, as the resolver numbers them (a file index of a [`Spec`]).
    pub doc: usize,
    /// The JSON pointer of the keyword's value (of the schema, when `keyword` is empty).
    pub pointer: String,
    /// Why it is not enforced.
    pub reason: Reason,
    /// A sentence for a diagnostic, naming the keyword and what happens instead.
    pub detail: String,
}

/// Why a root could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    /// Nothing is at the pointer.
    #[error("no schema at `{pointer}` in document {doc}")]
    Missing {
        /// The document index.
        doc: usize,
        /// The pointer.
        pointer: String,
    },
}

/// The validator functions of a set of schemas, built root by root.
pub struct Validators<'r, R: Resolve + ?Sized> {
    builder: ir::Builder<'r, R>,
}

impl<R: Resolve + ?Sized> fmt::Debug for Validators<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validators")
            .field("functions", &self.builder.functions.len())
            .field("unsupported", &self.builder.unsupported.len())
            .finish()
    }
}

impl<'r, R: Resolve + ?Sized> Validators<'r, R> {
    /// No functions yet; `$ref`s will be found through `resolver`.
    pub fn new(resolver: &'r R) -> Self {
        Validators {
            builder: ir::Builder::new(resolver),
        }
    }

    /// Adds a function checking the schema at `doc`/`pointer`, read as `dialect`, and
    /// returns its identifier: `name` as a snake-case identifier, with a numeric suffix
    /// when another function already has it. The functions of the schemas it references are
    /// added with it (once each). Fails only when nothing is at the pointer.
    pub fn add(
        &mut self,
        name: &str,
        doc: usize,
        pointer: &str,
        dialect: Dialect,
    ) -> Result<String, AddError> {
        self.builder
            .add_root(name, doc, pointer, (dialect, false), &[])
            .ok_or_else(|| AddError::Missing {
                doc,
                pointer: pointer.to_owned(),
            })
    }

    /// [`Validators::add`] for a response schema: in the OpenAPI 3.0 schema object a
    /// `required` member whose schema is `writeOnly` is not required in answers (and one
    /// that is `readOnly` is, unlike in requests).
    pub fn add_response(
        &mut self,
        name: &str,
        doc: usize,
        pointer: &str,
        dialect: Dialect,
    ) -> Result<String, AddError> {
        self.builder
            .add_root(name, doc, pointer, (dialect, true), &[])
            .ok_or_else(|| AddError::Missing {
                doc,
                pointer: pointer.to_owned(),
            })
    }

    /// [`Validators::add`] for a Swagger 2.0 parameter other than `in: body`: the
    /// parameter object itself holds its schema keywords (`type`, `format`, `items`,
    /// `enum`, `maximum`...), beside fields that are not schema keywords (`name`, `in`,
    /// `required`, `collectionFormat`, `allowEmptyValue`), which are left out. It is read
    /// as [`Dialect::OpenApi30`]; the parameter's `required` (whether it must be present)
    /// is for the caller.
    pub fn add_swagger2_parameter(
        &mut self,
        name: &str,
        doc: usize,
        pointer: &str,
    ) -> Result<String, AddError> {
        const NOT_SCHEMA: &[&str] = &[
            "name",
            "in",
            "required",
            "collectionFormat",
            "allowEmptyValue",
        ];
        self.builder
            .add_root(name, doc, pointer, (Dialect::OpenApi30, false), NOT_SCHEMA)
            .ok_or_else(|| AddError::Missing {
                doc,
                pointer: pointer.to_owned(),
            })
    }

    /// What was not enforced so far, in the order found.
    pub fn unsupported(&self) -> &[Unsupported] {
        &self.builder.unsupported
    }

    /// The functions' code and the list of what is not enforced. Calls that would recurse
    /// forever at the same value are left out here (and listed).
    pub fn finish(mut self) -> Generated {
        let broken = self.builder.break_cycles();
        let tokens = code::functions(&self.builder.functions, &broken);
        Generated {
            tokens,
            functions: self
                .builder
                .functions
                .iter()
                .map(|f| f.name.clone())
                .collect(),
            unsupported: self.builder.unsupported,
        }
    }
}

/// The generated validators.
#[derive(Debug, Clone)]
pub struct Generated {
    /// One `pub fn` per function, to place in a module of the generated crate; they refer
    /// to each other by bare name, so all must be in the same module.
    pub tokens: TokenStream,
    /// Every function's identifier, roots and `$ref` targets, in the order emitted.
    pub functions: Vec<String>,
    /// Every keyword not enforced.
    pub unsupported: Vec<Unsupported>,
}

impl Generated {
    /// The functions as formatted source (prettyplease), preceded by `header` items.
    pub fn source(&self, header: TokenStream) -> String {
        let tokens = &self.tokens;
        let all = quote::quote!(#header #tokens);
        match syn::parse2::<syn::File>(all.clone()) {
            Ok(file) => prettyplease::unparse(&file),
            // Unreachable unless the generator has a bug; the unformatted text still
            // compiles.
            Err(_) => all.to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
