//! The validators' IR → Rust. Each function is straight-line code over the value: one
//! `match` on its JSON type with the checks of that type inline, object members walked
//! once with a `match` on the member name, `$ref`s as calls. Nothing is allocated and no
//! text is made while the value is valid; violations are pushed as data
//! (`gatewayc_runtime::validate::Detail`) and rendered only when kept.
//!
//! Inside a function the value is always `v`, its location `at` and the sink `out`; a
//! subschema's code is the same kind of statements in a block that rebinds them, so
//! subschemas are inlined rather than called. Subschemas whose validity is asked (`anyOf`,
//! `oneOf`, `not`, `if`, `contains`, `propertyNames`) run against a probe sink, which only
//! records that something failed.

use std::collections::BTreeSet;

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use serde_json::{Number, Value};

use super::ir::{Body, Function, Node, NumberCheck, Pattern, Schema, StringCheck};
use crate::lower::schema::Types;

/// Lints generated validators are allowed to trip: their shape follows the schema, not
/// taste, a binding may go unused when a subschema checks nothing, and a `$ref` target
/// may be called only from a branch that was found to accept everything.
fn allows() -> TokenStream {
    quote!(#[allow(
        dead_code,
        unused_variables,
        unused_mut,
        clippy::nonminimal_bool,
        clippy::collapsible_if,
        clippy::collapsible_else_if,
        clippy::collapsible_match,
        clippy::single_match,
        clippy::match_single_binding,
        clippy::needless_late_init,
        clippy::too_many_lines
    )])
}

fn rt() -> TokenStream {
    quote!(::gatewayc_runtime::validate)
}

/// Every function, in the order they were made.
pub(crate) fn functions(functions: &[Function], broken: &BTreeSet<usize>) -> TokenStream {
    let g = Gen { functions, broken };
    let rt = rt();
    let allows = allows();
    let items = functions.iter().map(|f| {
        let name = format_ident!("{}", f.name);
        let doc = format!(" Validates the schema at {}.", f.origin);
        let body = match &f.body {
            Body::Schema(s) => g.schema(s),
            Body::Alias(to) => {
                let to = format_ident!("{}", functions[*to].name);
                quote!(#to(v, at, out);)
            }
            Body::Pending => TokenStream::new(),
        };
        quote! {
            #[doc = #doc]
            #allows
            pub fn #name(v: &#rt::Value, at: &#rt::Path<'_>, out: &mut #rt::Violations) {
                #body
            }
        }
    });
    quote!(#(#items)*)
}

/// Whether a value is valid against a subschema.
enum Test {
    /// Always: the subschema checks nothing.
    Always,
    /// Never: the subschema is `false`.
    Never,
    /// Statements that check the value against a probe named `probe`.
    Probe(TokenStream),
}

struct Gen<'a> {
    functions: &'a [Function],
    broken: &'a BTreeSet<usize>,
}

impl Gen<'_> {
    /// Statements checking `v` against `s`, pushing into `out`.
    fn schema(&self, s: &Schema) -> TokenStream {
        let rt = rt();
        match s {
            Schema::Bool(true) => TokenStream::new(),
            Schema::Bool(false) => quote!(out.push(at, #rt::Detail::False);),
            Schema::Node(n) => self.node(n),
        }
    }

    /// Whether `v` is valid against `s`: known when the schema is written, or statements
    /// that run it against a probe, after which `probe.is_empty()` says.
    fn valid(&self, s: &Schema) -> Test {
        if s.always_valid() {
            return Test::Always;
        }
        if let Schema::Bool(false) = s {
            return Test::Never;
        }
        let rt = rt();
        let body = self.schema(s);
        Test::Probe(quote! {
            let mut probe = #rt::Violations::probe();
            {
                let out = &mut probe;
                #body
            }
        })
    }

    fn node(&self, n: &Node) -> TokenStream {
        let rt = rt();
        let mut out = Vec::new();
        if let Some(t) = n.types {
            out.push(type_check(t));
        }
        if let Some(values) = &n.enumeration {
            let (statics, test) = one_of_values(values);
            out.push(quote!({ #statics if !(#test) { out.push(at, #rt::Detail::Enum); } }));
        }
        if let Some(value) = &n.constant {
            let (statics, test) = one_of_values(std::slice::from_ref(value));
            out.push(quote!({ #statics if !(#test) { out.push(at, #rt::Detail::Const); } }));
        }
        let admits = |t: Types| n.types.is_none_or(|x| x.intersects(t));
        let mut arms = Vec::new();
        if admits(Types::NUMBER) && !n.number.is_empty() {
            let checks = n.number.iter().map(number_check);
            arms.push((quote!(#rt::Value::Number(n)), quote!(#(#checks)*)));
        }
        if admits(Types::STRING) && !n.string.is_empty() {
            let checks = n.string.iter().map(string_check);
            arms.push((quote!(#rt::Value::String(s)), quote!(#(#checks)*)));
        }
        if admits(Types::ARRAY) && n.has_array_checks() {
            arms.push((quote!(#rt::Value::Array(a)), self.array(n)));
        }
        if admits(Types::OBJECT) && n.has_object_checks() {
            arms.push((quote!(#rt::Value::Object(m)), self.object(n)));
        }
        match arms.len() {
            0 => {}
            1 => {
                let (pat, body) = &arms[0];
                out.push(quote!(if let #pat = v { #body }));
            }
            _ => {
                let arms = arms.iter().map(|(pat, body)| quote!(#pat => { #body }));
                out.push(quote!(match v { #(#arms)* _ => {} }));
            }
        }
        for call in &n.calls {
            if call.edge.is_some_and(|e| self.broken.contains(&e)) {
                continue;
            }
            let f = format_ident!("{}", self.functions[call.target].name);
            out.push(quote!(#f(v, at, out);));
        }
        for s in &n.all_of {
            let body = self.schema(s);
            if !body.is_empty() {
                out.push(quote!({ #body }));
            }
        }
        if !n.any_of.is_empty() && !n.any_of.iter().any(Schema::always_valid) {
            // Branches in order, stopping at the first that matches.
            let tests: Vec<TokenStream> = n
                .any_of
                .iter()
                .filter_map(|s| match self.valid(s) {
                    Test::Probe(probe) => Some(quote!(if !any {
                        #probe
                        any = probe.is_empty();
                    })),
                    _ => None,
                })
                .collect();
            out.push(if tests.is_empty() {
                quote!(out.push(at, #rt::Detail::AnyOf);)
            } else {
                quote!({
                    let mut any = false;
                    #(#tests)*
                    if !any { out.push(at, #rt::Detail::AnyOf); }
                })
            });
        }
        if !n.one_of.is_empty() {
            let steps = n.one_of.iter().filter_map(|s| match self.valid(s) {
                Test::Always => Some(quote!(if matched < 2 {
                    matched += 1;
                })),
                Test::Never => None,
                Test::Probe(probe) => Some(quote!(if matched < 2 {
                    #probe
                    if probe.is_empty() { matched += 1; }
                })),
            });
            out.push(quote!({
                let mut matched = 0u32;
                #(#steps)*
                if matched == 0 {
                    out.push(at, #rt::Detail::OneOfNone);
                } else if matched > 1 {
                    out.push(at, #rt::Detail::OneOfMany);
                }
            }));
        }
        if let Some(s) = &n.not {
            match self.valid(s) {
                Test::Always => out.push(quote!(out.push(at, #rt::Detail::Not);)),
                Test::Never => {}
                Test::Probe(probe) => out.push(quote!({
                    #probe
                    if probe.is_empty() { out.push(at, #rt::Detail::Not); }
                })),
            }
        }
        if let Some(c) = &n.conditional {
            let then = c.then.as_ref().map(|s| self.schema(s)).unwrap_or_default();
            let otherwise = c
                .otherwise
                .as_ref()
                .map(|s| self.schema(s))
                .unwrap_or_default();
            if !then.is_empty() || !otherwise.is_empty() {
                match self.valid(&c.condition) {
                    Test::Always => out.push(quote!({ #then })),
                    Test::Never => out.push(quote!({ #otherwise })),
                    Test::Probe(probe) => {
                        let branch = match (then.is_empty(), otherwise.is_empty()) {
                            (false, true) => quote!(if probe.is_empty() { #then }),
                            (true, false) => quote!(if !probe.is_empty() { #otherwise }),
                            _ => quote!(if probe.is_empty() { #then } else { #otherwise }),
                        };
                        out.push(quote!({ #probe #branch }));
                    }
                }
            }
        }
        quote!(#(#out)*)
    }

    fn array(&self, n: &Node) -> TokenStream {
        let rt = rt();
        let mut out = Vec::new();
        if let Some(max) = n.max_items {
            out.push(
                quote!(if a.len() as u64 > #max { out.push(at, #rt::Detail::MaxItems(#max)); }),
            );
        }
        if let Some(min) = n.min_items.filter(|m| *m > 0) {
            out.push(
                quote!(if (a.len() as u64) < #min { out.push(at, #rt::Detail::MinItems(#min)); }),
            );
        }
        if n.unique_items {
            out.push(
                quote!(if let ::core::option::Option::Some((i, j)) = #rt::duplicate(a) {
                    out.push(at, #rt::Detail::UniqueItems(i, j));
                }),
            );
        }
        for (i, s) in n.prefix_items.iter().enumerate() {
            let body = self.schema(s);
            if body.is_empty() {
                continue;
            }
            let get = if i == 0 {
                quote!(a.first())
            } else {
                quote!(a.get(#i))
            };
            out.push(quote!(if let ::core::option::Option::Some(v) = #get {
                let at = &at.index(#i);
                #body
            }));
        }
        let skip = n.prefix_items.len();
        if let Some(items) = &n.items {
            let elements = if skip == 0 {
                quote!(a.iter().enumerate())
            } else {
                quote!(a.iter().enumerate().skip(#skip))
            };
            match items {
                Schema::Bool(true) => {}
                Schema::Bool(false) => {
                    let beyond = if skip == 0 {
                        quote!(!a.is_empty())
                    } else {
                        quote!(a.len() > #skip)
                    };
                    out.push(quote!(if #beyond {
                        out.push(&at.index(#skip), #rt::Detail::AdditionalItem);
                    }));
                }
                s => {
                    let body = self.schema(s);
                    out.push(quote!(for (i, v) in #elements {
                        let at = &at.index(i);
                        #body
                        if out.done() { break; }
                    }));
                }
            }
        }
        if let Some(c) = &n.contains {
            let count = match self.valid(&c.schema) {
                Test::Always => quote!(found += 1;),
                Test::Never => TokenStream::new(),
                Test::Probe(probe) => quote! {
                    #probe
                    if probe.is_empty() { found += 1; }
                },
            };
            let min = c.min;
            let stop = if c.max.is_none() {
                quote!(if found >= #min { break; })
            } else {
                TokenStream::new()
            };
            let mut checks = Vec::new();
            if min > 0 {
                let detail = if min == 1 {
                    quote!(#rt::Detail::Contains)
                } else {
                    quote!(#rt::Detail::MinContains(#min))
                };
                checks.push(quote!(if found < #min { out.push(at, #detail); }));
            }
            if let Some(max) = c.max {
                checks.push(
                    quote!(if found > #max { out.push(at, #rt::Detail::MaxContains(#max)); }),
                );
            }
            if !checks.is_empty() {
                out.push(quote!({
                    let mut found = 0u64;
                    for (i, v) in a.iter().enumerate() {
                        let at = &at.index(i);
                        #count
                        #stop
                    }
                    #(#checks)*
                }));
            }
        }
        quote!(#(#out)*)
    }

    fn object(&self, n: &Node) -> TokenStream {
        let rt = rt();
        let mut out = Vec::new();
        if let Some(max) = n.max_properties {
            out.push(quote!(if m.len() as u64 > #max { out.push(at, #rt::Detail::MaxProperties(#max)); }));
        }
        if let Some(min) = n.min_properties.filter(|m| *m > 0) {
            out.push(quote!(if (m.len() as u64) < #min { out.push(at, #rt::Detail::MinProperties(#min)); }));
        }
        // `required` is answered by the walk over the members (a bit per name, set by its
        // arm of the `match`), so a valid object costs no lookup by name; a missing member is
        // confirmed with `contains_key` (the walk stops early once the outcome is settled)
        // and recorded where this check stands, ahead of what the walk found inside.
        let required = required_bits(&n.required);
        if required.is_some() {
            out.push(quote!(let mut required_at = out.mark();));
        } else {
            for name in &n.required {
                out.push(
                    quote!(if !m.contains_key(#name) { out.push(at, #rt::Detail::Required(#name)); }),
                );
            }
        }
        for (property, required) in &n.dependent_required {
            if required.is_empty() {
                continue;
            }
            let checks = required.iter().map(|r| {
                quote!(if !m.contains_key(#r) {
                    out.push(at, #rt::Detail::DependentRequired { property: #property, required: #r });
                })
            });
            out.push(quote!(if m.contains_key(#property) { #(#checks)* }));
        }
        for (property, s) in &n.dependent_schemas {
            let body = self.schema(s);
            if !body.is_empty() {
                out.push(quote!(if m.contains_key(#property) { #body }));
            }
        }
        if let Some(bits) = &required {
            out.push(quote!(let mut seen = 0u64;));
            out.push(self.members(n, bits));
            let all = bits.iter().fold(0u64, |all, (_, bit)| all | bit);
            let checks = n.required.iter().map(|name| {
                let bit = bit_of(bits, name);
                quote!(if seen & #bit == 0 && !m.contains_key(#name) {
                    out.insert(&mut required_at, at, #rt::Detail::Required(#name));
                })
            });
            out.push(quote!(if seen != #all { #(#checks)* }));
        } else if n.has_member_checks() {
            out.push(self.members(n, &[]));
        }
        quote!(#(#out)*)
    }

    /// The loop over an object's members: `propertyNames`, then each member against its
    /// `properties` entry (a `match` on the name), the `patternProperties` it matches, and
    /// `additionalProperties` when neither applies. A member named in `required` sets its
    /// bit in `seen`.
    fn members(&self, n: &Node, required: &[(&str, u64)]) -> TokenStream {
        let rt = rt();
        let mut body = Vec::new();
        if let Some(names) = n.property_names.as_ref() {
            match self.valid(names) {
                Test::Always => {}
                Test::Never => body.push(quote!(out.push(at, #rt::Detail::PropertyName);)),
                // The name is checked as a JSON string: this copy is the one allocation a
                // valid value costs, and only with `propertyNames`.
                Test::Probe(probe) => body.push(quote!({
                    let key = #rt::Value::String(::std::string::String::from(k.as_str()));
                    let v = &key;
                    #probe
                    if !probe.is_empty() { out.push(at, #rt::Detail::PropertyName); }
                })),
            }
        }
        let additional = n
            .additional_properties
            .as_ref()
            .filter(|s| !s.always_valid())
            .map(|s| match s {
                Schema::Bool(false) => quote!(out.push(at, #rt::Detail::AdditionalProperty);),
                s => self.schema(s),
            });
        let patterns = !n.pattern_properties.is_empty();
        let flag = additional.is_some() && patterns;
        let declared = if flag {
            quote!(matched = true;)
        } else {
            TokenStream::new()
        };
        let fallback = match (&additional, flag) {
            (Some(a), false) => a.clone(),
            _ => TokenStream::new(),
        };
        let mut arms: Vec<TokenStream> = Vec::new();
        for (name, s) in &n.properties {
            let check = self.schema(s);
            let seen = required
                .iter()
                .find(|(r, _)| r == name)
                .map(|(_, bit)| quote!(seen |= #bit;));
            if check.is_empty() && additional.is_none() && seen.is_none() {
                continue;
            }
            arms.push(quote!(#name => { #seen #declared #check }));
        }
        // Required names without a `properties` entry: the bit, then what any other name gets.
        for (name, bit) in required {
            if !n.properties.iter().any(|(p, _)| p == name) {
                arms.push(quote!(#name => { seen |= #bit; #fallback }));
            }
        }
        if !arms.is_empty() {
            body.push(quote!(match k.as_str() { #(#arms)* _ => { #fallback } }));
        } else if !fallback.is_empty() {
            body.push(fallback);
        }
        for (p, s) in &n.pattern_properties {
            let check = self.schema(s);
            if check.is_empty() && !flag {
                continue;
            }
            let (re, test) = pattern_test(p, quote!(k));
            body.push(quote!({ #re if #test { #declared #check } }));
        }
        if flag && let Some(a) = &additional {
            body.push(quote!(if !matched { #a }));
        }
        let init = if flag {
            quote!(let mut matched = false;)
        } else {
            TokenStream::new()
        };
        quote!(for (k, v) in m {
            let at = &at.key(k);
            #init
            #(#body)*
            if out.done() { break; }
        })
    }
}

/// A bit for each distinct name of `required`, when there is at least one and at most 64.
fn required_bits(required: &[String]) -> Option<Vec<(&str, u64)>> {
    let mut bits: Vec<(&str, u64)> = Vec::new();
    for name in required {
        if !bits.iter().any(|(b, _)| b == name) {
            let bit = 1u64.checked_shl(u32::try_from(bits.len()).ok()?)?;
            bits.push((name.as_str(), bit));
        }
    }
    (!bits.is_empty()).then_some(bits)
}

fn bit_of(bits: &[(&str, u64)], name: &str) -> u64 {
    bits.iter()
        .find(|(b, _)| *b == name)
        .map_or(0, |(_, bit)| *bit)
}

/// `if` the value's type is not in `t`, push a violation.
fn type_check(t: Types) -> TokenStream {
    let rt = rt();
    let mut pats = Vec::new();
    for (bit, pat) in [
        (Types::NULL, quote!(#rt::Value::Null)),
        (Types::BOOLEAN, quote!(#rt::Value::Bool(_))),
        (Types::OBJECT, quote!(#rt::Value::Object(_))),
        (Types::ARRAY, quote!(#rt::Value::Array(_))),
        (Types::STRING, quote!(#rt::Value::String(_))),
    ] {
        if t.contains(bit) {
            pats.push(pat);
        }
    }
    let number = t.contains(Types::NUMBER);
    if number {
        pats.push(quote!(#rt::Value::Number(_)));
    }
    let integer = !number && t.contains(Types::INTEGER);
    let name = t.to_string();
    let test = match (pats.is_empty(), integer) {
        (true, false) => quote!(false),
        (true, true) => quote!(matches!(v, #rt::Value::Number(n) if #rt::is_integer(n))),
        (false, false) => quote!(matches!(v, #(#pats)|*)),
        (false, true) => quote!(
            matches!(v, #(#pats)|*) || matches!(v, #rt::Value::Number(n) if #rt::is_integer(n))
        ),
    };
    quote!(if !(#test) { out.push(at, #rt::Detail::Type(#name)); })
}

/// Statics and a boolean expression over them: `v` equals one of `values` (JSON
/// equality). Arrays and objects are `Lit` statics, `LIT0`, `LIT1`...
fn one_of_values(values: &[Value]) -> (TokenStream, TokenStream) {
    let rt = rt();
    let mut statics = Vec::new();
    let strings: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
    let mut tests = Vec::new();
    if !strings.is_empty() {
        tests.push(quote!(
            matches!(v.as_str(), ::core::option::Option::Some(#(#strings)|*))
        ));
    }
    for value in values {
        match value {
            Value::String(_) => {}
            Value::Null => tests.push(quote!(v.is_null())),
            Value::Bool(b) => tests.push(quote!(v.as_bool() == ::core::option::Option::Some(#b))),
            Value::Number(n) => {
                let lit = num(n);
                tests.push(quote!(
                    matches!(v, #rt::Value::Number(n) if #rt::eq(n, #lit))
                ));
            }
            Value::Array(_) | Value::Object(_) => {
                let lit = lit(value);
                let name = format_ident!("LIT{}", statics.len());
                statics.push(quote!(static #name: #rt::Lit = #lit;));
                tests.push(quote!(#rt::is(v, &#name)));
            }
        }
    }
    let statics = quote!(#(#statics)*);
    if tests.is_empty() {
        return (statics, quote!(false));
    }
    (statics, quote!(#(#tests)||*))
}

/// A `Lit` constant expression for a JSON value.
fn lit(value: &Value) -> TokenStream {
    let rt = rt();
    match value {
        Value::Null => quote!(#rt::Lit::Null),
        Value::Bool(b) => quote!(#rt::Lit::Bool(#b)),
        Value::Number(n) => {
            let n = num(n);
            quote!(#rt::Lit::Num(#n))
        }
        Value::String(s) => quote!(#rt::Lit::Str(#s)),
        Value::Array(items) => {
            let items = items.iter().map(lit);
            quote!(#rt::Lit::Array(&[#(#items),*]))
        }
        Value::Object(members) => {
            let members = members.iter().map(|(k, v)| {
                let v = lit(v);
                quote!((#k, #v))
            });
            quote!(#rt::Lit::Object(&[#(#members),*]))
        }
    }
}

/// A `Num` for a JSON number, exact: integers as integers, other numbers by their bits
/// (which also keeps float literals away from lints about approximate constants).
fn num(n: &Number) -> TokenStream {
    let rt = rt();
    if let Some(i) = n.as_i64() {
        let lit: TokenStream = format!("{i}i64").parse().unwrap_or_default();
        quote!(#rt::Num::I(#lit))
    } else if let Some(u) = n.as_u64() {
        let lit = Literal::u64_suffixed(u);
        quote!(#rt::Num::U(#lit))
    } else {
        let bits = Literal::u64_suffixed(n.as_f64().unwrap_or(0.0).to_bits());
        quote!(#rt::Num::F(f64::from_bits(#bits)))
    }
}

fn number_check(c: &NumberCheck) -> TokenStream {
    let rt = rt();
    match c {
        NumberCheck::Max { limit, exclusive } => {
            let l = num(&limit.value);
            let text = &limit.text;
            if *exclusive {
                quote!(if !#rt::lt(n, #l) { out.push(at, #rt::Detail::ExclusiveMaximum(#text)); })
            } else {
                quote!(if !#rt::le(n, #l) { out.push(at, #rt::Detail::Maximum(#text)); })
            }
        }
        NumberCheck::Min { limit, exclusive } => {
            let l = num(&limit.value);
            let text = &limit.text;
            if *exclusive {
                quote!(if !#rt::gt(n, #l) { out.push(at, #rt::Detail::ExclusiveMinimum(#text)); })
            } else {
                quote!(if !#rt::ge(n, #l) { out.push(at, #rt::Detail::Minimum(#text)); })
            }
        }
        NumberCheck::MultipleOfInt { divisor, text } => {
            quote!(if !#rt::multiple_of_int(n, #divisor) { out.push(at, #rt::Detail::MultipleOf(#text)); })
        }
        NumberCheck::MultipleOfFloat { divisor, text } => {
            let bits = Literal::u64_suffixed(divisor.to_bits());
            quote!(if !#rt::multiple_of_float(n, f64::from_bits(#bits)) {
                out.push(at, #rt::Detail::MultipleOf(#text));
            })
        }
        NumberCheck::Format(f) => format_check(f.name(), f.checker(), quote!(n)),
    }
}

fn string_check(c: &StringCheck) -> TokenStream {
    let rt = rt();
    match c {
        StringCheck::MaxLength(max) => {
            quote!(if !#rt::len_at_most(s, #max) { out.push(at, #rt::Detail::MaxLength(#max)); })
        }
        StringCheck::MinLength(min) => {
            quote!(if !#rt::len_at_least(s, #min) { out.push(at, #rt::Detail::MinLength(#min)); })
        }
        StringCheck::Pattern(p) => {
            let (re, test) = pattern_test(p, quote!(s));
            let text = &p.text;
            quote!({ #re if !#test { out.push(at, #rt::Detail::Pattern(#text)); } })
        }
        StringCheck::Format(f) => format_check(f.name(), f.checker(), quote!(s)),
    }
}

fn format_check(name: &str, checker: &str, arg: TokenStream) -> TokenStream {
    let rt = rt();
    let checker = format_ident!("{checker}");
    quote!(if !#rt::#checker(#arg) { out.push(at, #rt::Detail::Format(#name)); })
}

/// The static `RE` holding the pattern's regex (compiled on first use), and the
/// expression: whether `subject` matches it.
fn pattern_test(p: &Pattern, subject: TokenStream) -> (TokenStream, TokenStream) {
    let rt = rt();
    let regex = &p.regex;
    (
        quote! {
            static RE: #rt::LazyLock<::core::option::Option<#rt::Regex>> =
                #rt::LazyLock::new(|| #rt::regex(#regex));
        },
        quote!(#rt::matches(&RE, #subject)),
    )
}
