//! Request body validation by the validators gatewayc generates and by the jsonschema crate,
//! on the same schemas and the same bodies, for counting instructions with callgrind (see
//! `run.py`).
//!
//! ```text
//! validate-bench <github|stripe> check
//! validate-bench <github|stripe> <baseline|gatewayc|jsonschema|jsonschema-errors> <valid|invalid> [iterations]
//! ```
//!
//! Every operation of the document with a request body schema gives candidate bodies: the
//! document's own examples, and, for an operation none of whose examples both validators
//! accept, instances `build.rs` made from the schema. A candidate is kept as a valid body
//! only when both validators accept it. From each valid body up to two invalid ones are
//! made (a required member removed; a member, or the body itself, given a value of another
//! type), kept when both validators reject them. Every candidate on which the two disagree
//! is listed by `check` and measured by neither.
//!
//! jsonschema validators are built once per operation, before anything is measured, and
//! every body goes through both validators once before measuring (so lazily compiled
//! patterns are not counted). The measured work happens inside `measure_gatewayc`,
//! `measure_jsonschema_is_valid`, `measure_jsonschema_iter_errors` and `measure_baseline`
//! (never inlined, so callgrind's `--toggle-collect` can count just them); `baseline` runs
//! the same loop without validating, so its count is the loop's own cost, to subtract.
//!
//! * `gatewayc`: the generated function with a collecting `Violations`, as the gateway
//!   calls it (every violation with its pointer, up to the bound).
//! * `jsonschema`: `Validator::is_valid`, its cheapest answer (valid or not, no error).
//! * `jsonschema-errors`: `Validator::iter_errors`, every error with its location.

use std::hint::black_box;
use std::process::ExitCode;

use gatewayc_runtime::validate::{Path, Violations};
use serde_json::Value;

/// A generated validator.
pub type Validate = fn(&Value, &Path<'_>, &mut Violations);

/// A corpus document, as written by `build.rs`.
pub struct Corpus {
    pub name: &'static str,
    pub file: &'static str,
    /// The document's `openapi` version.
    pub openapi: &'static str,
    /// The draft jsonschema reads the schemas as.
    pub draft: jsonschema::Draft,
    /// The whole document, as JSON.
    pub document: &'static str,
    /// How many validator functions gatewayc generated (roots and `$ref` targets).
    pub functions: usize,
    /// (keyword, what the compiler says) for each keyword gatewayc does not enforce that
    /// lets values through which the schema rejects.
    pub weakening: &'static [(&'static str, &'static str)],
    pub ops: &'static [Op],
}

/// An operation with a request body schema.
pub struct Op {
    pub id: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub media: &'static str,
    pub validate: Validate,
    /// URI fragment (a percent-encoded JSON pointer) of the schema in the document.
    pub pointer: &'static str,
    /// The schema's required members, `allOf` parts' included.
    pub required: &'static [&'static str],
    /// The document's examples of the body, as JSON.
    pub examples: &'static [&'static str],
    /// Instances made from the schema (every property, then required members only).
    pub generated: &'static [&'static str],
}

mod corpora {
    include!(concat!(env!("OUT_DIR"), "/corpora.rs"));
}

const DEFAULT_ITERATIONS: u32 = 20;
/// The base URI jsonschema knows the document by.
const BASE: &str = "urn:gatewayc-bench:";

/// Where a body came from.
#[derive(Debug, Clone)]
enum Origin {
    Example(usize),
    Generated(usize),
    /// A required member removed.
    MissingRequired(String),
    /// The member at this pointer (`""`: the body) given a value of another type.
    WrongType(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Example(i) => write!(f, "example {i}"),
            Origin::Generated(0) => f.write_str("generated instance"),
            Origin::Generated(i) => write!(f, "generated instance {i}"),
            Origin::MissingRequired(name) => write!(f, "required `{name}` removed"),
            Origin::WrongType(at) if at.is_empty() => f.write_str("body of another type"),
            Origin::WrongType(at) => write!(f, "`{at}` of another type"),
        }
    }
}

/// One body to validate, against its operation's validators.
struct Case {
    op: usize,
    value: Value,
    origin: Origin,
}

/// What both validators say about one value.
struct Verdict {
    gatewayc: Result<(), String>,
    jsonschema: Result<(), String>,
}

impl Verdict {
    fn agree(&self) -> bool {
        self.gatewayc.is_ok() == self.jsonschema.is_ok()
    }
}

struct Setup {
    corpus: &'static Corpus,
    /// jsonschema's validator per operation; `None` where it could not be built.
    validators: Vec<Option<jsonschema::Validator>>,
    valid: Vec<Case>,
    invalid: Vec<Case>,
    /// Operations jsonschema could not build a validator for, with its error.
    unbuilt: Vec<(usize, String)>,
    /// Candidates on which the validators disagree.
    disagreements: Vec<(Case, Verdict)>,
    /// Candidate valid bodies both reject, per operation (not measured).
    both_reject: Vec<Case>,
    /// Mutations both still accept (not invalid after all; not measured).
    still_valid: usize,
    /// Operations left with no valid body.
    no_body: Vec<usize>,
    examples_total: usize,
    generated_tried: usize,
}

fn verdict(op: &Op, validator: &jsonschema::Validator, value: &Value) -> Verdict {
    let mut out = Violations::new();
    (op.validate)(value, &Path::ROOT, &mut out);
    let mut probe = Violations::probe();
    (op.validate)(value, &Path::ROOT, &mut probe);
    assert_eq!(
        out.is_empty(),
        probe.is_empty(),
        "{}: gatewayc's collecting and probing runs differ on {value}",
        op.id
    );
    let gatewayc = match out.as_slice().first() {
        None => Ok(()),
        Some(v) => Err(format!("`{}`: {}", v.pointer, v.detail)),
    };
    let valid = validator.is_valid(value);
    let first = validator.iter_errors(value).next();
    assert_eq!(
        valid,
        first.is_none(),
        "{}: jsonschema's is_valid and iter_errors differ on {value}",
        op.id
    );
    let jsonschema = match first {
        None => Ok(()),
        Some(e) => Err(format!("`{}`: {e}", e.instance_path().as_str())),
    };
    Verdict {
        gatewayc,
        jsonschema,
    }
}

fn setup(corpus: &'static Corpus) -> Setup {
    let document: Value = serde_json::from_str(corpus.document).expect("build.rs wrote JSON");
    let uri = format!("{BASE}{}", corpus.name);
    let registry = jsonschema::Registry::new()
        .draft(corpus.draft)
        .add(&uri, corpus.draft.create_resource(document))
        .and_then(|b| b.prepare())
        .unwrap_or_else(|e| {
            panic!(
                "{}: jsonschema cannot register the document: {e}",
                corpus.file
            )
        });
    let mut setup = Setup {
        corpus,
        validators: Vec::new(),
        valid: Vec::new(),
        invalid: Vec::new(),
        unbuilt: Vec::new(),
        disagreements: Vec::new(),
        both_reject: Vec::new(),
        still_valid: 0,
        no_body: Vec::new(),
        examples_total: 0,
        generated_tried: 0,
    };
    for (i, op) in corpus.ops.iter().enumerate() {
        let wrapper = serde_json::json!({ "$ref": format!("{uri}#{}", op.pointer) });
        let built = jsonschema::options()
            .with_draft(corpus.draft)
            .with_registry(&registry)
            .should_validate_formats(true)
            .offline()
            .build(&wrapper);
        match built {
            Ok(v) => setup.validators.push(Some(v)),
            Err(e) => {
                setup.validators.push(None);
                setup.unbuilt.push((i, e.to_string()));
            }
        }
    }

    for (i, op) in corpus.ops.iter().enumerate() {
        if setup.validators[i].is_none() {
            continue;
        }
        let parse = |s: &str| serde_json::from_str::<Value>(s).expect("build.rs wrote JSON");
        let mut kept = 0;
        setup.examples_total += op.examples.len();
        for (k, text) in op.examples.iter().enumerate() {
            kept += usize::from(setup.keep(i, parse(text), Origin::Example(k)));
        }
        if kept == 0 {
            for (k, text) in op.generated.iter().enumerate() {
                setup.generated_tried += 1;
                if setup.keep(i, parse(text), Origin::Generated(k)) {
                    kept = 1;
                    break;
                }
            }
        }
        if kept == 0 {
            setup.no_body.push(i);
        }
    }

    let mut invalid = Vec::new();
    for case in &setup.valid {
        let op = &corpus.ops[case.op];
        let validator = setup.validators[case.op].as_ref().expect("built");
        if let Value::Object(map) = &case.value
            && let Some(name) = op.required.iter().find(|r| map.contains_key(**r))
        {
            let mut value = case.value.clone();
            value
                .as_object_mut()
                .expect("an object")
                .shift_remove(*name);
            invalid.push((
                Case {
                    op: case.op,
                    value,
                    origin: Origin::MissingRequired((*name).to_owned()),
                },
                None,
            ));
        }
        // The first member whose retyping one validator or the other rejects; the body
        // itself when it has no members.
        let mut retyped = None;
        if let Value::Object(map) = &case.value {
            for key in map.keys() {
                let mut value = case.value.clone();
                let member = value.get_mut(key.as_str()).expect("the member");
                *member = other_type(member);
                let v = verdict(op, validator, &value);
                if v.gatewayc.is_err() || v.jsonschema.is_err() {
                    retyped = Some((value, format!("/{key}"), v));
                    break;
                }
            }
        }
        let (value, at) = match retyped {
            Some((value, at, v)) => {
                invalid.push((
                    Case {
                        op: case.op,
                        value,
                        origin: Origin::WrongType(at),
                    },
                    Some(v),
                ));
                continue;
            }
            None => (other_type(&case.value), String::new()),
        };
        invalid.push((
            Case {
                op: case.op,
                value,
                origin: Origin::WrongType(at),
            },
            None,
        ));
    }
    for (case, known) in invalid {
        let op = &corpus.ops[case.op];
        let validator = setup.validators[case.op].as_ref().expect("built");
        let v = known.unwrap_or_else(|| verdict(op, validator, &case.value));
        if !v.agree() {
            setup.disagreements.push((case, v));
        } else if v.gatewayc.is_ok() {
            setup.still_valid += 1;
        } else {
            setup.invalid.push(case);
        }
    }
    setup
}

impl Setup {
    /// Checks a candidate valid body; keeps it when both accept it.
    fn keep(&mut self, op: usize, value: Value, origin: Origin) -> bool {
        let validator = self.validators[op].as_ref().expect("built");
        let v = verdict(&self.corpus.ops[op], validator, &value);
        let case = Case { op, value, origin };
        if !v.agree() {
            self.disagreements.push((case, v));
            false
        } else if v.gatewayc.is_ok() {
            self.valid.push(case);
            true
        } else {
            self.both_reject.push(case);
            false
        }
    }
}

/// A value of another JSON type than `v`.
fn other_type(v: &Value) -> Value {
    match v {
        Value::String(_) => Value::Bool(true),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_) => {
            Value::String("text".to_owned())
        }
    }
}

fn report(setup: &Setup) {
    let corpus = setup.corpus;
    let ops = corpus.ops;
    println!(
        "{}: openapi {}, {} operations with a request body schema ({}), {} generated functions; jsonschema reads them as {:?}",
        corpus.file,
        corpus.openapi,
        ops.len(),
        media_summary(ops),
        corpus.functions,
        corpus.draft,
    );
    for (i, e) in &setup.unbuilt {
        println!("  jsonschema cannot build {}: {e}", ops[*i].id);
    }
    let from = |f: fn(&Origin) -> bool| setup.valid.iter().filter(|c| f(&c.origin)).count();
    println!(
        "  valid bodies: {} ({} examples of {} given, {} generated of {} tried); operations without one: {}",
        setup.valid.len(),
        from(|o| matches!(o, Origin::Example(_))),
        setup.examples_total,
        from(|o| matches!(o, Origin::Generated(_))),
        setup.generated_tried,
        setup.no_body.len(),
    );
    let (bytes, values) = sizes(&setup.valid);
    println!("  valid bodies are {bytes:.0} bytes and {values:.1} JSON values on average");
    let count = |v: &[Case], f: fn(&Origin) -> bool| v.iter().filter(|c| f(&c.origin)).count();
    println!(
        "  invalid bodies: {} ({} with a required member removed, {} with a value of another type); mutations both still accept: {}",
        setup.invalid.len(),
        count(&setup.invalid, |o| matches!(o, Origin::MissingRequired(_))),
        count(&setup.invalid, |o| matches!(o, Origin::WrongType(_))),
        setup.still_valid,
    );
    println!(
        "  candidates both reject (dropped): {} ({} examples, {} generated)",
        setup.both_reject.len(),
        count(&setup.both_reject, |o| matches!(o, Origin::Example(_))),
        count(&setup.both_reject, |o| matches!(o, Origin::Generated(_))),
    );
    for c in &setup.both_reject {
        let op = &ops[c.op];
        let v = verdict(
            op,
            setup.validators[c.op].as_ref().expect("built"),
            &c.value,
        );
        println!(
            "    rejected {} {} ({}), {}: gatewayc {}",
            op.method,
            op.path,
            op.id,
            c.origin,
            v.gatewayc.err().unwrap_or_default()
        );
    }
    println!("  disagreements: {}", setup.disagreements.len());
    for (c, v) in &setup.disagreements {
        let op = &ops[c.op];
        let say = |r: &Result<(), String>| match r {
            Ok(()) => "accepts".to_owned(),
            Err(e) => format!("rejects ({e})"),
        };
        println!(
            "    DISAGREE {} {} ({}), {}: gatewayc {}; jsonschema {}",
            op.method,
            op.path,
            op.id,
            c.origin,
            say(&v.gatewayc),
            say(&v.jsonschema)
        );
    }
    for &i in &setup.no_body {
        println!(
            "    no valid body: {} {} ({})",
            ops[i].method, ops[i].path, ops[i].id
        );
    }
    println!(
        "  keywords gatewayc does not enforce that let values through: {}",
        corpus.weakening.len()
    );
    let mut kinds: Vec<(&str, &str, usize)> = Vec::new();
    for &(keyword, detail) in corpus.weakening {
        match kinds.iter_mut().find(|(_, d, _)| *d == detail) {
            Some((_, _, n)) => *n += 1,
            None => kinds.push((keyword, detail, 1)),
        }
    }
    for (keyword, detail, n) in kinds {
        println!("    {n} x {keyword}: {detail}");
    }
}

/// (bytes of compact JSON, JSON values) in `cases`, on average.
fn sizes(cases: &[Case]) -> (f64, f64) {
    fn values(v: &Value) -> usize {
        match v {
            Value::Array(a) => 1 + a.iter().map(values).sum::<usize>(),
            Value::Object(m) => 1 + m.values().map(values).sum::<usize>(),
            _ => 1,
        }
    }
    if cases.is_empty() {
        return (0.0, 0.0);
    }
    let n = cases.len() as f64;
    let bytes: usize = cases.iter().map(|c| c.value.to_string().len()).sum();
    let count: usize = cases.iter().map(|c| values(&c.value)).sum();
    (bytes as f64 / n, count as f64 / n)
}

fn media_summary(ops: &[Op]) -> String {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for op in ops {
        match seen.iter_mut().find(|(m, _)| *m == op.media) {
            Some((_, n)) => *n += 1,
            None => seen.push((op.media, 1)),
        }
    }
    seen.iter()
        .map(|(m, n)| format!("{n} {m}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[inline(never)]
fn measure_gatewayc(ops: &[Op], cases: &[Case], iterations: u32) {
    for _ in 0..iterations {
        for case in cases {
            let mut out = Violations::new();
            (ops[case.op].validate)(black_box(&case.value), &Path::ROOT, &mut out);
            black_box(&out);
        }
    }
}

#[inline(never)]
fn measure_jsonschema_is_valid(
    validators: &[Option<jsonschema::Validator>],
    cases: &[Case],
    iterations: u32,
) {
    for _ in 0..iterations {
        for case in cases {
            let validator = validators[case.op].as_ref().expect("built");
            black_box(validator.is_valid(black_box(&case.value)));
        }
    }
}

#[inline(never)]
fn measure_jsonschema_iter_errors(
    validators: &[Option<jsonschema::Validator>],
    cases: &[Case],
    iterations: u32,
) {
    for _ in 0..iterations {
        for case in cases {
            let validator = validators[case.op].as_ref().expect("built");
            black_box(validator.iter_errors(black_box(&case.value)).count());
        }
    }
}

#[inline(never)]
fn measure_baseline(
    ops: &[Op],
    validators: &[Option<jsonschema::Validator>],
    cases: &[Case],
    iterations: u32,
) {
    for _ in 0..iterations {
        for case in cases {
            black_box(ops[case.op].validate);
            black_box(&validators[case.op]);
            black_box(&case.value);
        }
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: validate-bench <github|stripe> check\n       \
         validate-bench <github|stripe> <baseline|gatewayc|jsonschema|jsonschema-errors> <valid|invalid> [iterations]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let corpus = match args.first().map(String::as_str) {
        Some("github") => &corpora::GITHUB,
        Some("stripe") => &corpora::STRIPE,
        _ => return usage(),
    };
    let Some(mode) = args.get(1).map(String::as_str) else {
        return usage();
    };
    if !matches!(
        mode,
        "check" | "baseline" | "gatewayc" | "jsonschema" | "jsonschema-errors"
    ) {
        return usage();
    }
    let set = args.get(2).map(String::as_str);
    if mode != "check" && !matches!(set, Some("valid" | "invalid")) {
        return usage();
    }
    let iterations = match args.get(3).map(|s| s.parse::<u32>()) {
        None => DEFAULT_ITERATIONS,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return usage(),
    };

    let setup = setup(corpus);
    if mode == "check" {
        report(&setup);
    }
    let cases = if set == Some("invalid") {
        &setup.invalid
    } else {
        &setup.valid
    };
    match mode {
        "gatewayc" => measure_gatewayc(corpus.ops, cases, iterations),
        "jsonschema" => measure_jsonschema_is_valid(&setup.validators, cases, iterations),
        "jsonschema-errors" => measure_jsonschema_iter_errors(&setup.validators, cases, iterations),
        "baseline" => measure_baseline(corpus.ops, &setup.validators, cases, iterations),
        _ => {}
    }

    // One machine-readable line for run.py.
    println!(
        "corpus={} mode={mode} set={} operations={} unbuilt={} valid={} invalid={} dropped={} still_valid={} disagreements={} no_body={} iterations={iterations}",
        corpus.name,
        set.unwrap_or("-"),
        corpus.ops.len(),
        setup.unbuilt.len(),
        setup.valid.len(),
        setup.invalid.len(),
        setup.both_reject.len(),
        setup.still_valid,
        setup.disagreements.len(),
        setup.no_body.len(),
    );
    ExitCode::SUCCESS
}
