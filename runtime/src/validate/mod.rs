//! What the request validators gatewayc generates call: the list of violations, the JSON
//! pointer of the value being checked, format checks and JSON Schema's comparisons.
//!
//! The compiler turns each schema of a spec into a Rust function (one per schema, written
//! out keyword by keyword; `compiler/src/validate/`), so there is no schema interpreter
//! here, only the pieces those functions share. Every generated function has the shape
//!
//! ```ignore
//! fn name(v: &Value, at: &Path<'_>, out: &mut Violations)
//! ```
//!
//! and costs nothing beyond its comparisons while a value is valid: [`Path`] is a chain of
//! borrowed segments on the stack, rendered to an RFC 6901 pointer only when a
//! [`Violation`] is pushed, and [`Detail`] is rendered to text at the same moment.
//! `Violations` has two modes: [`Violations::new`] collects up to [`MAX_VIOLATIONS`] for
//! the client's 400, and [`Violations::probe`] only records that something failed (for
//! `anyOf`, `oneOf`, `not`, `if` and `contains`, which ask whether a value is valid, not
//! why), so probing never allocates.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

pub mod request;

pub use regex::Regex;
pub use serde_json::{Map, Number, Value};
pub use std::sync::LazyLock;

/// Most violations one request collects; past it [`Violations::truncated`] is set.
pub const MAX_VIOLATIONS: usize = 32;

/// Where a value is in the document being validated: a chain of borrowed segments, from
/// the value back to the root. Building one costs a stack slot; the text of the pointer is
/// made only by [`Path::pointer`], when a violation is reported.
#[derive(Debug, Clone, Copy)]
pub enum Path<'a> {
    /// The root, under a pointer prefix already rendered (`""` for a body's root, or
    /// something like `/query/limit` for a parameter; the prefix is copied as it is).
    Root(&'a str),
    /// Member `key` of the object at the parent.
    Key(&'a Path<'a>, &'a str),
    /// Element `index` of the array at the parent.
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    /// The root of a document, with pointer `""`.
    pub const ROOT: Path<'static> = Path::Root("");

    /// The member `key` of this value.
    #[inline]
    pub fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    /// The element `index` of this value.
    #[inline]
    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    /// The RFC 6901 pointer (`/pets/0/name`; `~` and `/` in keys escaped as `~0`, `~1`).
    pub fn pointer(&self) -> String {
        let mut out = String::with_capacity(self.text_len());
        self.write(&mut out);
        out
    }

    /// The length of [`Path::pointer`]'s text when no key needs escaping (an index counted
    /// as up to four digits): the capacity to make it with.
    fn text_len(&self) -> usize {
        match self {
            Path::Root(prefix) => prefix.len(),
            Path::Key(parent, key) => parent.text_len() + 1 + key.len(),
            Path::Index(parent, _) => parent.text_len() + 5,
        }
    }

    /// Appends the pointer, root first.
    fn write(&self, out: &mut String) {
        match self {
            Path::Root(prefix) => out.push_str(prefix),
            Path::Key(parent, key) => {
                parent.write(out);
                out.push('/');
                if key.bytes().any(|b| b == b'~' || b == b'/') {
                    for c in key.chars() {
                        match c {
                            '~' => out.push_str("~0"),
                            '/' => out.push_str("~1"),
                            c => out.push(c),
                        }
                    }
                } else {
                    out.push_str(key);
                }
            }
            Path::Index(parent, index) => {
                parent.write(out);
                out.push('/');
                out.push_str(itoa::Buffer::new().format(*index));
            }
        }
    }
}

/// One way a value breaks its schema: where, and what is wrong, in words for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// RFC 6901 pointer to the value (for `required`, the object missing the member).
    pub pointer: String,
    /// What is wrong, as a sentence fragment without a trailing period.
    pub detail: Cow<'static, str>,
}

/// The violations found in one value, at most [`MAX_VIOLATIONS`] of them; or, made by
/// [`Violations::probe`], only whether there was one.
#[derive(Debug, Default)]
pub struct Violations {
    list: Vec<Violation>,
    failed: bool,
    probe: bool,
    truncated: bool,
}

impl Violations {
    /// An empty list that collects violations (allocates on the first push only).
    pub const fn new() -> Violations {
        Violations {
            list: Vec::new(),
            failed: false,
            probe: false,
            truncated: false,
        }
    }

    /// A sink that keeps no violation, only the fact that one was pushed: for asking
    /// whether a value is valid. Never allocates.
    pub const fn probe() -> Violations {
        Violations {
            list: Vec::new(),
            failed: false,
            probe: true,
            truncated: false,
        }
    }

    /// Whether nothing was pushed.
    #[inline]
    pub fn is_empty(&self) -> bool {
        !self.failed
    }

    /// Whether more checking cannot change the outcome: a probe that failed, or a list that
    /// is full. Generated loops stop early on it.
    #[inline]
    pub fn done(&self) -> bool {
        self.failed && (self.probe || self.truncated)
    }

    /// Whether violations were dropped because the list was full.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The violations kept, in the order found (empty for a probe).
    pub fn as_slice(&self) -> &[Violation] {
        &self.list
    }

    /// The violations kept.
    pub fn into_vec(self) -> Vec<Violation> {
        self.list
    }

    /// Records that the value at `at` breaks `detail`. A probe only notes the failure; a
    /// full list notes that it was truncated. Cold: only failing values get here.
    #[cold]
    #[inline(never)]
    pub fn push(&mut self, at: &Path<'_>, detail: Detail) {
        self.failed = true;
        if self.probe {
            return;
        }
        if self.list.len() >= MAX_VIOLATIONS {
            self.truncated = true;
            return;
        }
        self.list.push(Violation {
            pointer: at.pointer(),
            detail: detail.text(),
        });
    }

    /// Where a violation pushed now would go, for [`Violations::insert`].
    #[inline]
    pub fn mark(&self) -> usize {
        self.list.len()
    }

    /// Records a violation at position `*mark` (taken with [`Violations::mark`]), ahead of
    /// those pushed since, and moves the mark past it: an object's missing members, found
    /// by walking its members, still come before what the walk found inside them. The list
    /// ends as if it had been pushed at the mark: past the bound the last one is dropped.
    #[cold]
    #[inline(never)]
    pub fn insert(&mut self, mark: &mut usize, at: &Path<'_>, detail: Detail) {
        self.failed = true;
        if self.probe {
            return;
        }
        if *mark >= MAX_VIOLATIONS {
            self.truncated = true;
            return;
        }
        if self.list.len() >= MAX_VIOLATIONS {
            self.list.pop();
            self.truncated = true;
        }
        let index = (*mark).min(self.list.len());
        self.list.insert(
            index,
            Violation {
                pointer: at.pointer(),
                detail: detail.text(),
            },
        );
        *mark = index + 1;
    }
}

/// What a violation says, kept as data until a violation is really recorded. Numbers from
/// the schema (limits) are carried as the schema wrote them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Detail {
    /// The value's type is not one of these (`"string"`, `"integer or null"`).
    Type(&'static str),
    /// A `false` schema: no value is allowed here.
    False,
    /// Not one of the `enum` values.
    Enum,
    /// Not the `const` value.
    Const,
    /// Not a multiple of the number.
    MultipleOf(&'static str),
    /// Greater than `maximum`.
    Maximum(&'static str),
    /// Not less than `exclusiveMaximum`.
    ExclusiveMaximum(&'static str),
    /// Less than `minimum`.
    Minimum(&'static str),
    /// Not greater than `exclusiveMinimum`.
    ExclusiveMinimum(&'static str),
    /// Longer than `maxLength` characters.
    MaxLength(u64),
    /// Shorter than `minLength` characters.
    MinLength(u64),
    /// Does not match `pattern` (the pattern as the schema wrote it).
    Pattern(&'static str),
    /// Not a valid value of the `format`.
    Format(&'static str),
    /// More than `maxItems` elements.
    MaxItems(u64),
    /// Fewer than `minItems` elements.
    MinItems(u64),
    /// Elements at these two indexes are equal.
    UniqueItems(usize, usize),
    /// An element past the ones the schema allows (`items: false`, `additionalItems`).
    AdditionalItem,
    /// No element matches `contains`.
    Contains,
    /// Fewer than `minContains` elements match `contains`.
    MinContains(u64),
    /// More than `maxContains` elements match `contains`.
    MaxContains(u64),
    /// More than `maxProperties` members.
    MaxProperties(u64),
    /// Fewer than `minProperties` members.
    MinProperties(u64),
    /// The required member is missing.
    Required(&'static str),
    /// A member the schema does not allow (`additionalProperties`).
    AdditionalProperty,
    /// A member name that breaks `propertyNames`.
    PropertyName,
    /// Member `property` is present, so member `required` must be too.
    DependentRequired {
        /// The member present.
        property: &'static str,
        /// The member missing.
        required: &'static str,
    },
    /// Matches none of the `anyOf` schemas.
    AnyOf,
    /// Matches none of the `oneOf` schemas.
    OneOfNone,
    /// Matches more than one of the `oneOf` schemas.
    OneOfMany,
    /// Matches the `not` schema.
    Not,
    /// A required parameter or request body is missing.
    Missing,
    /// A parameter declared as `application/json` content is not JSON.
    NotJson,
}

impl Detail {
    /// The text a client reads.
    pub fn text(self) -> Cow<'static, str> {
        match self {
            Detail::False => Cow::Borrowed("no value is allowed here"),
            Detail::Enum => Cow::Borrowed("must be one of the allowed values"),
            Detail::Const => Cow::Borrowed("must be the one allowed value"),
            Detail::AdditionalItem => Cow::Borrowed("no element is allowed at this index"),
            Detail::Contains => Cow::Borrowed("must contain a matching element"),
            Detail::AdditionalProperty => Cow::Borrowed("the member is not allowed"),
            Detail::PropertyName => Cow::Borrowed("the member name is not allowed"),
            Detail::AnyOf => Cow::Borrowed("must match at least one of the allowed schemas"),
            Detail::OneOfNone => {
                Cow::Borrowed("must match exactly one of the schemas, matches none")
            }
            Detail::OneOfMany => {
                Cow::Borrowed("must match exactly one of the schemas, matches several")
            }
            Detail::Not => Cow::Borrowed("must not match the excluded schema"),
            Detail::Missing => Cow::Borrowed("is required"),
            Detail::NotJson => Cow::Borrowed("must be a JSON document"),
            other => {
                // Sized for most messages at once: no growing through reallocations.
                let mut text = String::with_capacity(64);
                let _ = fmt::Write::write_fmt(&mut text, format_args!("{other}"));
                Cow::Owned(text)
            }
        }
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::Type(t) => write!(f, "must be of type {t}"),
            Detail::MultipleOf(n) => write!(f, "must be a multiple of {n}"),
            Detail::Maximum(n) => write!(f, "must be at most {n}"),
            Detail::ExclusiveMaximum(n) => write!(f, "must be less than {n}"),
            Detail::Minimum(n) => write!(f, "must be at least {n}"),
            Detail::ExclusiveMinimum(n) => write!(f, "must be greater than {n}"),
            Detail::MaxLength(n) => write!(f, "must be at most {n} characters long"),
            Detail::MinLength(n) => write!(f, "must be at least {n} characters long"),
            Detail::Pattern(p) => write!(f, "must match the pattern `{p}`"),
            Detail::Format(name) => write!(f, "must be a valid {name}"),
            Detail::MaxItems(n) => write!(f, "must have at most {n} elements"),
            Detail::MinItems(n) => write!(f, "must have at least {n} elements"),
            Detail::UniqueItems(a, b) => write!(f, "elements {a} and {b} are equal"),
            Detail::MinContains(n) => write!(f, "at least {n} elements must match `contains`"),
            Detail::MaxContains(n) => write!(f, "at most {n} elements may match `contains`"),
            Detail::MaxProperties(n) => write!(f, "must have at most {n} members"),
            Detail::MinProperties(n) => write!(f, "must have at least {n} members"),
            Detail::Required(name) => write!(f, "the member `{name}` is required"),
            Detail::DependentRequired { property, required } => {
                write!(
                    f,
                    "the member `{required}` is required when `{property}` is present"
                )
            }
            other => f.write_str(&other.text()),
        }
    }
}

/// A number from a schema, kept exactly as JSON gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// A negative integer (or any that fits `i64`).
    I(i64),
    /// A non-negative integer past `i64`.
    U(u64),
    /// Anything else.
    F(f64),
}

/// How a JSON number compares with a schema's number. `None` only when a float is NaN,
/// which JSON cannot write.
pub fn compare(n: &Number, limit: Num) -> Option<Ordering> {
    if let Some(i) = n.as_i64() {
        match limit {
            Num::I(l) => return Some(i.cmp(&l)),
            Num::U(l) => return Some(i128::from(i).cmp(&i128::from(l))),
            Num::F(_) => {}
        }
    } else if let Some(u) = n.as_u64() {
        match limit {
            Num::I(l) => return Some(i128::from(u).cmp(&i128::from(l))),
            Num::U(l) => return Some(u.cmp(&l)),
            Num::F(_) => {}
        }
    }
    let l = match limit {
        Num::I(l) => l as f64,
        Num::U(l) => l as f64,
        Num::F(l) => l,
    };
    n.as_f64()?.partial_cmp(&l)
}

/// `n == lit` by value (`1` equals `1.0`).
#[inline]
pub fn eq(n: &Number, lit: Num) -> bool {
    compare(n, lit) == Some(Ordering::Equal)
}

/// A JSON value written into generated code as a constant (`enum` and `const` members
/// that are arrays or objects), compared with [`is`] without building a [`Value`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lit {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Num(Num),
    /// A string.
    Str(&'static str),
    /// An array.
    Array(&'static [Lit]),
    /// An object; its member names are distinct.
    Object(&'static [(&'static str, Lit)]),
}

/// Whether `v` equals `lit` as [`json_eq`] defines it.
pub fn is(v: &Value, lit: &Lit) -> bool {
    match (v, lit) {
        (Value::Null, Lit::Null) => true,
        (Value::Bool(a), Lit::Bool(b)) => a == b,
        (Value::Number(n), Lit::Num(l)) => eq(n, *l),
        (Value::String(a), Lit::Str(b)) => a == b,
        (Value::Array(a), Lit::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| is(x, y))
        }
        (Value::Object(m), Lit::Object(members)) => {
            m.len() == members.len()
                && members
                    .iter()
                    .all(|(k, l)| m.get(*k).is_some_and(|x| is(x, l)))
        }
        _ => false,
    }
}

/// `n <= limit` (`maximum`).
#[inline]
pub fn le(n: &Number, limit: Num) -> bool {
    matches!(compare(n, limit), Some(Ordering::Less | Ordering::Equal))
}

/// `n < limit` (`exclusiveMaximum`).
#[inline]
pub fn lt(n: &Number, limit: Num) -> bool {
    compare(n, limit) == Some(Ordering::Less)
}

/// `n >= limit` (`minimum`).
#[inline]
pub fn ge(n: &Number, limit: Num) -> bool {
    matches!(compare(n, limit), Some(Ordering::Greater | Ordering::Equal))
}

/// `n > limit` (`exclusiveMinimum`).
#[inline]
pub fn gt(n: &Number, limit: Num) -> bool {
    compare(n, limit) == Some(Ordering::Greater)
}

/// Whether a number is an integer in JSON Schema's sense: no fractional part, so `1.0` is
/// one.
#[inline]
pub fn is_integer(n: &Number) -> bool {
    n.is_i64()
        || n.is_u64()
        || n.as_f64()
            .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

/// `multipleOf` with an integer divisor (`divisor > 0`): exact for integers, and for
/// floats exact whenever the quotient is representable.
pub fn multiple_of_int(n: &Number, divisor: u64) -> bool {
    if divisor == 0 {
        return false;
    }
    if let Some(u) = n.as_u64() {
        return u % divisor == 0;
    }
    if let Some(i) = n.as_i64() {
        return i.unsigned_abs() % divisor == 0;
    }
    n.as_f64()
        .is_some_and(|f| f.is_finite() && (f / divisor as f64).fract() == 0.0 && f.fract() == 0.0)
}

/// `multipleOf` with a fractional divisor (`divisor > 0`). Binary floats cannot hold most
/// decimal fractions, so the quotient is accepted when it is within a few units in the
/// last place of an integer (`0.0075` is a multiple of `0.0001`, `0.00751` is not). An
/// integer is a multiple of a divisor whose reciprocal is an integer (`0.5`, `1e-8`) even
/// where the quotient overflows; otherwise an infinite quotient is not a multiple.
pub fn multiple_of_float(n: &Number, divisor: f64) -> bool {
    let Some(f) = n.as_f64() else {
        return false;
    };
    if divisor.is_nan() || divisor <= 0.0 || !f.is_finite() {
        return false;
    }
    let reciprocal = 1.0 / divisor;
    if is_integer(n) && reciprocal.is_finite() && reciprocal.fract() == 0.0 {
        return true;
    }
    let q = f / divisor;
    if !q.is_finite() {
        return false;
    }
    let r = q.round();
    (q - r).abs() <= 4.0 * f64::EPSILON * q.abs().max(1.0)
}

/// JSON equality as JSON Schema defines it (`enum`, `const`, `uniqueItems`): numbers are
/// equal by value (`1` equals `1.0`), objects regardless of member order.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => num_eq(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| json_eq(p, q)))
        }
        _ => false,
    }
}

fn num_eq(x: &Number, y: &Number) -> bool {
    match (as_int(x), as_int(y)) {
        (Some(a), Some(b)) => a == b,
        _ => match (x.as_f64(), y.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    }
}

fn as_int(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// The first two equal elements (`uniqueItems`), by index. Short arrays are compared pair
/// by pair; longer ones are sorted by a hash of each element first (numbers hashed by
/// value), so a large body costs `n log n`, not `n²`.
pub fn duplicate(items: &[Value]) -> Option<(usize, usize)> {
    if items.len() <= 16 {
        for (i, a) in items.iter().enumerate() {
            for (j, b) in items.iter().enumerate().skip(i + 1) {
                if json_eq(a, b) {
                    return Some((i, j));
                }
            }
        }
        return None;
    }
    let mut hashed: Vec<(u64, usize)> = items
        .iter()
        .enumerate()
        .map(|(i, v)| (json_hash(v), i))
        .collect();
    hashed.sort_unstable();
    let mut found: Option<(usize, usize)> = None;
    let mut start = 0;
    while start < hashed.len() {
        let mut end = start + 1;
        while end < hashed.len() && hashed[end].0 == hashed[start].0 {
            end += 1;
        }
        for a in start..end {
            for b in a + 1..end {
                let (i, j) = (hashed[a].1, hashed[b].1);
                if json_eq(&items[i], &items[j]) {
                    let pair = (i.min(j), i.max(j));
                    if found.is_none_or(|f| pair < f) {
                        found = Some(pair);
                    }
                }
            }
        }
        start = end;
    }
    found
}

/// A hash that agrees with [`json_eq`]: equal values hash alike (members in any order,
/// numbers by value).
fn json_hash(v: &Value) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mix = |h: u64, x: u64| (h ^ x).wrapping_mul(K).rotate_left(29);
    match v {
        Value::Null => 1,
        Value::Bool(b) => 2 + u64::from(*b),
        Value::Number(n) => {
            let bits = match as_int(n) {
                // Integers that f64 holds exactly hash as that f64, so `1` and `1.0` meet.
                Some(i) if i.unsigned_abs() < (1 << 53) => (i as f64).to_bits(),
                Some(i) => i as u64 ^ (i >> 64) as u64,
                None => n
                    .as_f64()
                    .map_or(0, |f| if f == 0.0 { 0 } else { f.to_bits() }),
            };
            mix(4, if bits == (0.0f64).to_bits() { 0 } else { bits })
        }
        Value::String(s) => s.bytes().fold(5, |h, b| mix(h, u64::from(b))),
        Value::Array(a) => a.iter().fold(6, |h, x| mix(h, json_hash(x))),
        // Members in any order: combine member hashes with a commutative sum.
        Value::Object(m) => m.iter().fold(7u64, |h, (k, x)| {
            h.wrapping_add(mix(
                k.bytes().fold(8, |h, b| mix(h, u64::from(b))),
                json_hash(x),
            ))
        }),
    }
}

/// Whether `s` has at most `max` Unicode code points (`maxLength`).
#[inline]
pub fn len_at_most(s: &str, max: u64) -> bool {
    // A code point takes at least one byte.
    s.len() as u64 <= max || s.chars().count() as u64 <= max
}

/// Whether `s` has at least `min` Unicode code points (`minLength`).
#[inline]
pub fn len_at_least(s: &str, min: u64) -> bool {
    // A code point takes at most four bytes.
    s.len() as u64 >= min.saturating_mul(4) || s.chars().count() as u64 >= min
}

/// Whether `s` matches a `pattern` (not anchored: a match anywhere counts, as in
/// ECMA-262). The regex is compiled on first use; the compiler has already checked that it
/// compiles, so `None` (a pattern that did not) never matches.
#[inline]
pub fn matches(re: &LazyLock<Option<Regex>>, s: &str) -> bool {
    re.as_ref().is_some_and(|re| re.is_match(s))
}

/// Compiles a pattern for [`matches`]; `None` when it does not compile.
pub fn regex(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

// ---------------------------------------------------------------------------------------
// Formats.

/// `format: int32`: an integer from -2³¹ to 2³¹-1.
pub fn is_int32(n: &Number) -> bool {
    n.as_i64().is_some_and(|i| i32::try_from(i).is_ok())
        || (!n.is_u64()
            && n.as_f64().is_some_and(|f| {
                f.fract() == 0.0 && f >= f64::from(i32::MIN) && f <= f64::from(i32::MAX)
            }))
}

/// `format: int64`: an integer from -2⁶³ to 2⁶³-1.
pub fn is_int64(n: &Number) -> bool {
    // 2⁶³ is exact in f64: the first value past the range, and minus it the first in it.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    n.is_i64()
        || (!n.is_u64()
            && n.as_f64()
                .is_some_and(|f| f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f)))
}

/// `n` ASCII digits at the start of `b`, as a number.
fn digits(b: &[u8], n: usize) -> Option<u32> {
    let d = b.get(..n)?;
    d.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// `format: date`: RFC 3339 `full-date`, `YYYY-MM-DD` with a day that exists in that month.
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && date(b).is_some()
}

/// The date at the start of `b` (10 bytes), checked.
fn date(b: &[u8]) -> Option<()> {
    let year = digits(b, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(&b[5..], 2)?;
    let day = digits(&b[8..], 2)?;
    let max = gatewayc_vocab::calendar::days_in_month(i64::from(year), month);
    (1..=max).contains(&day).then_some(())
}

/// `format: date-time`: RFC 3339 `date-time` (`T` and `Z` in either case, fraction of any
/// length, offset `Z` or `±HH:MM`). Second 60 is a leap second, valid only at 23:59 UTC.
pub fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || date(b).is_none() || !matches!(b[10], b'T' | b't') {
        return false;
    }
    let t = &b[11..];
    let (Some(hour), Some(minute), Some(second)) =
        (digits(t, 2), digits(&t[3..], 2), digits(&t[6..], 2))
    else {
        return false;
    };
    if t[2] != b':' || t[5] != b':' || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut rest = &t[8..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    let offset_minutes: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (Some(h), Some(m)) = (digits(&[*h1, *h2], 2), digits(&[*m1, *m2], 2)) else {
                return false;
            };
            if h > 23 || m > 59 {
                return false;
            }
            let total = i64::from(h * 60 + m);
            if *sign == b'+' { total } else { -total }
        }
        _ => return false,
    };
    if second == 60 {
        // The leap second is 23:59:60 UTC: local time minus the offset.
        let utc = (i64::from(hour * 60 + minute) - offset_minutes).rem_euclid(24 * 60);
        return utc == 23 * 60 + 59;
    }
    true
}

/// `format: uuid`: RFC 4122 text, 8-4-4-4-12 hexadecimal digits in either case.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `format: ipv4`: four decimal octets, no leading zeros (`std::net` parsing).
pub fn is_ipv4(s: &str) -> bool {
    s.parse::<std::net::Ipv4Addr>().is_ok()
}

/// `format: ipv6`: RFC 4291 text, with `::` and an embedded IPv4 tail; no zone, no
/// brackets, no prefix length (`std::net` parsing).
pub fn is_ipv6(s: &str) -> bool {
    s.parse::<std::net::Ipv6Addr>().is_ok()
}

/// `format: email`: RFC 5321 `Mailbox`: a dot-atom or quoted local part, `@`, and a
/// domain name or an address literal (`[192.0.2.1]`, `[IPv6:...]`).
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let local_ok = if let Some(quoted) = local.strip_prefix('"') {
        let Some(inner) = quoted.strip_suffix('"') else {
            return false;
        };
        let mut chars = inner.chars();
        let mut ok = true;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if !chars.next().is_some_and(|e| (' '..='~').contains(&e)) {
                        ok = false;
                    }
                }
                '"' => ok = false,
                c if (' '..='~').contains(&c) => {}
                _ => ok = false,
            }
        }
        ok
    } else {
        !local.is_empty()
            && local.split('.').all(|atom| {
                !atom.is_empty()
                    && atom
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c))
            })
    };
    if !local_ok {
        return false;
    }
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        return match literal.strip_prefix("IPv6:") {
            Some(v6) => is_ipv6(v6),
            None => is_ipv4(literal),
        };
    }
    is_hostname(domain)
}

/// A DNS host name: dot-separated labels of letters, digits and inner hyphens, 1 to 63
/// characters each, 253 in all.
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// `format: uri`: an RFC 3986 `URI` (absolute: a scheme is required; a fragment is
/// allowed), checked against the grammar: characters, percent escapes, the authority's
/// user information, host (IPv6 and IPvFuture literals included) and port.
pub fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let sb = scheme.as_bytes();
    if sb.is_empty()
        || !sb[0].is_ascii_alphabetic()
        || !sb
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    {
        return false;
    }
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (hier, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let extra = |c: u8| matches!(c, b'/' | b'?');
    if !query.is_none_or(|q| uri_chars(q, extra)) || !fragment.is_none_or(|f| uri_chars(f, extra)) {
        return false;
    }
    let path = if let Some(after) = hier.strip_prefix("//") {
        let (authority, path) = match after.find('/') {
            Some(i) => after.split_at(i),
            None => (after, ""),
        };
        if !is_authority(authority) {
            return false;
        }
        path
    } else {
        hier
    };
    uri_chars(path, |c| c == b'/')
}

/// The authority of a URI: `[userinfo@]host[:port]`.
fn is_authority(authority: &str) -> bool {
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if !userinfo.is_none_or(|u| uri_chars_strict(u, |c| c == b':')) {
        return false;
    }
    let (host, port) = if let Some(literal) = hostport.strip_prefix('[') {
        let Some((inside, after)) = literal.split_once(']') else {
            return false;
        };
        let ok = if let Some(future) = inside.strip_prefix(['v', 'V']) {
            let Some((version, text)) = future.split_once('.') else {
                return false;
            };
            !version.is_empty()
                && version.bytes().all(|c| c.is_ascii_hexdigit())
                && !text.is_empty()
                && text
                    .bytes()
                    .all(|c| is_unreserved(c) || is_sub_delim(c) || c == b':')
        } else {
            is_ipv6(inside)
        };
        if !ok {
            return false;
        }
        match after {
            "" => ("", None),
            a => match a.strip_prefix(':') {
                Some(p) => ("", Some(p)),
                None => return false,
            },
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    uri_chars_strict(host, |_| false) && port.is_none_or(|p| p.bytes().all(|c| c.is_ascii_digit()))
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(c: u8) -> bool {
    matches!(
        c,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// Whether `s` is made of `pchar`s (unreserved, sub-delims, `:`, `@`, percent escapes) and
/// the characters `extra` allows.
fn uri_chars(s: &str, extra: impl Fn(u8) -> bool) -> bool {
    uri_chars_strict(s, |c| c == b':' || c == b'@' || extra(c))
}

/// Whether `s` is made of unreserved characters, sub-delims, percent escapes and the
/// characters `extra` allows.
fn uri_chars_strict(s: &str, extra: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
            continue;
        }
        if !(is_unreserved(c) || is_sub_delim(c) || extra(c)) {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_and_prefix() {
        let root = Path::Root("/query/filter");
        let a = root.key("a/b");
        let b = a.index(3);
        let c = b.key("~x");
        assert_eq!(c.pointer(), "/query/filter/a~1b/3/~0x");
        assert_eq!(Path::ROOT.pointer(), "");
    }

    #[test]
    fn violations_are_bounded_and_probes_keep_nothing() {
        let mut out = Violations::new();
        for _ in 0..MAX_VIOLATIONS + 3 {
            out.push(&Path::ROOT, Detail::Enum);
        }
        assert_eq!(out.as_slice().len(), MAX_VIOLATIONS);
        assert!(out.truncated() && out.done());
        let mut probe = Violations::probe();
        assert!(probe.is_empty() && !probe.done());
        probe.push(&Path::ROOT, Detail::MinLength(3));
        assert!(!probe.is_empty() && probe.done() && probe.as_slice().is_empty());
    }

    #[test]
    fn details_read_as_sentences() {
        assert_eq!(
            Detail::MaxLength(3).text(),
            "must be at most 3 characters long"
        );
        assert_eq!(
            Detail::DependentRequired {
                property: "a",
                required: "b"
            }
            .text(),
            "the member `b` is required when `a` is present"
        );
        assert_eq!(
            Detail::AnyOf.text(),
            "must match at least one of the allowed schemas"
        );
    }

    fn num(text: &str) -> Number {
        serde_json::from_str(text).expect("a number")
    }

    #[test]
    fn numbers_compare_exactly_across_representations() {
        assert!(le(&num("18446744073709551615"), Num::U(u64::MAX)));
        assert!(!lt(
            &num("9.727837981879871e26"),
            Num::F(9.727837981879871e26)
        ));
        assert!(gt(&num("-1"), Num::I(-2)));
        assert!(json_eq(
            &serde_json::json!([1, {"a": 2.0}]),
            &serde_json::json!([1.0, {"a": 2}])
        ));
        assert!(!json_eq(&serde_json::json!(false), &serde_json::json!(0)));
    }

    #[test]
    fn multiples() {
        assert!(multiple_of_float(&num("0.0075"), 0.0001));
        assert!(!multiple_of_float(&num("0.00751"), 0.0001));
        assert!(multiple_of_float(&num("1e308"), 0.5));
        assert!(!multiple_of_float(&num("1e308"), 0.123456789));
        assert!(multiple_of_int(&num("-10"), 5) && !multiple_of_int(&num("7"), 2));
        assert!(multiple_of_int(&num("4.0"), 2) && !multiple_of_int(&num("4.5"), 2));
    }

    #[test]
    fn duplicates_found_in_long_arrays() {
        let mut items: Vec<Value> = (0..40).map(|i| serde_json::json!({"i": i})).collect();
        assert_eq!(duplicate(&items), None);
        items.push(serde_json::json!({"i": 7.0}));
        assert_eq!(duplicate(&items), Some((7, 40)));
    }

    #[test]
    fn literals_compare_like_values() {
        static L: Lit = Lit::Object(&[("a", Lit::Array(&[Lit::Num(Num::I(1)), Lit::Null]))]);
        assert!(is(&serde_json::json!({"a": [1.0, null]}), &L));
        assert!(!is(&serde_json::json!({"a": [1, null], "b": 1}), &L));
        assert!(!is(&serde_json::json!({"a": [true, null]}), &L));
    }

    #[test]
    fn lengths_count_code_points() {
        assert!(len_at_most("💩💩", 2) && !len_at_least("💩💩", 3) && len_at_least("ab", 2));
    }

    #[test]
    fn formats() {
        assert!(is_date_time("1998-12-31T15:59:60.123-08:00"));
        assert!(!is_date_time("1998-12-31T23:58:60Z"));
        assert!(!is_date_time("1985-04-12T23:20:50Z\n"));
        assert!(is_date("2020-02-29") && !is_date("2021-02-29") && !is_date("2020-01-0:"));
        assert!(
            is_uuid("2EB8AA08-AA98-11EA-B4AA-73B441D16380")
                && !is_uuid("2eb8aa08aa9811eab4aa73b441d16380")
        );
        assert!(is_email("\"joe bloggs\"@example.com") && is_email("joe@[IPv6:::1]"));
        assert!(!is_email("te..st@example.com") && !is_email("joe.bloggs@invalid=domain.com"));
        assert!(is_uri("http://-.~_!$&'()*+,;=:%40:80%2f::::::@example.com"));
        assert!(is_uri(
            "urn:oasis:names:specification:docbook:dtd:xml:4.1.2"
        ));
        assert!(!is_uri("//foo.bar/?baz=qux#quux") && !is_uri("http:/[::1]"));
        assert!(!is_uri("http://[::ffff:01.2.3.4]") && !is_uri("http://example.com:abc/path"));
        assert!(is_ipv4("0.0.0.0") && !is_ipv4("127.0.1") && !is_ipv4("192.168.0.01"));
        assert!(is_ipv6("1::d6:192.168.0.1") && !is_ipv6("fe80::a%eth1"));
        assert!(is_int32(&num("-2147483648")) && !is_int32(&num("2147483648")));
        assert!(is_int64(&num("9223372036854775807")) && !is_int64(&num("9223372036854775808")));
    }
}
