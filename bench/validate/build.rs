//! Loads the benchmark's corpus documents with gatewayc and writes into OUT_DIR, for each:
//!
//! * `<name>_validators.rs`: the validators gatewayc generates for the request body schema of
//!   every operation that has one (one `Validators` per document, as in a generated gateway,
//!   so a `$ref` target is one function shared by every body that uses it);
//! * `<name>.json`: the whole document as JSON, which `src/main.rs` gives the jsonschema
//!   crate as the resource the same schemas' `$ref`s resolve in;
//! * and, in `corpora.rs` (included by `src/main.rs`), a table of those operations: the
//!   generated function, the schema's JSON pointer, the root's required members, and the
//!   candidate bodies: the document's own examples, and instances made from the schema.
//!
//! The documents are read from `<repo>/../shared/corpus`, or from the directory named by
//! `GATEWAYC_CORPUS`. Without them the build fails, saying where it looked.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gatewayc::diagnostic::Diagnostics;
use gatewayc::spec::Spec;
use gatewayc::spec::source::child;
use gatewayc::validate::{Dialect, Validators};
use serde_json::{Map, Value, json};

/// (module name, file name in the corpus directory)
const CORPORA: &[(&str, &str)] = &[
    ("github", "github-api-2021.json"),
    ("stripe", "stripe-spec3-2023-09.yaml"),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Object nesting down to which an instance made "full" (every property) still takes
/// optional properties; below it only required ones.
const FULL_DEPTH: usize = 3;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("run by cargo"));
    // bench/validate → repository root.
    let repo = manifest
        .parent()
        .and_then(Path::parent)
        .expect("bench/validate lies two levels below the repository root")
        .to_path_buf();
    println!("cargo:rerun-if-env-changed=GATEWAYC_CORPUS");
    let corpus_dir = match std::env::var_os("GATEWAYC_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => repo.join("..").join("shared").join("corpus"),
    };
    for &(_, file) in CORPORA {
        let path = corpus_dir.join(file);
        if !path.is_file() {
            panic!(
                "the validation benchmark needs the corpus document {} (looked in {}); \
                 put the shared corpus at ../shared/corpus beside the repository or set \
                 GATEWAYC_CORPUS to its directory",
                file,
                corpus_dir.display()
            );
        }
    }

    let mut tie = String::new();
    for &(name, file) in CORPORA {
        let path = corpus_dir.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        let spec = load(&path, &repo);
        let root = spec.roots[0];
        let doc = &spec.docs[root];
        let openapi = doc
            .get("openapi")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // As the compiler reads a document (lower/validation.rs): 3.0 is the OpenAPI 3.0
        // schema object, 3.1 JSON Schema 2020-12. jsonschema has no 3.0 dialect; draft 4 is
        // the draft 3.0's schema object is built on (see the README for what differs).
        let (dialect, draft) = if openapi.starts_with("3.0") {
            (Dialect::OpenApi30, "Draft4")
        } else {
            (Dialect::Draft2020, "Draft202012")
        };

        let mut validators = Validators::new(&spec);
        let mut ops = String::new();
        let mut count = 0usize;
        let paths = doc.get("paths").and_then(Value::as_object);
        for (template, item) in paths.into_iter().flatten() {
            let item_ptr = child("/paths", template);
            let Some(item) = spec.deref(root, &item_ptr, item) else {
                continue;
            };
            for &method in METHODS {
                let Some(op) = item.value.get(method) else {
                    continue;
                };
                let op_ptr = child(&item.pointer, method);
                let Some(body) = request_body(&spec, item.file, &op_ptr, op) else {
                    continue;
                };
                let id = op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{method} {template}"));
                let function = validators
                    .add(&format!("{id}_body"), body.file, &body.schema_ptr, dialect)
                    .unwrap_or_else(|e| panic!("{file}: {id}: {e}"));
                let schema = spec
                    .get(body.file, &body.schema_ptr)
                    .expect("the schema the validator was made from");
                let examples = examples(&spec, body.file, &body.media_ptr, schema);
                let mut generated = Vec::new();
                for full in [true, false] {
                    let mut g = Generator {
                        spec: &spec,
                        full,
                        stack: Vec::new(),
                    };
                    if let Some(v) = g.instance(body.file, schema, 0) {
                        if !generated.contains(&v) {
                            generated.push(v);
                        }
                    }
                }
                let required = root_required(&spec, body.file, schema);
                let strings = |vs: &[Value]| -> String {
                    vs.iter()
                        .map(|v| format!("{:?}, ", v.to_string()))
                        .collect()
                };
                let _ = writeln!(
                    ops,
                    "    crate::Op {{ id: {id:?}, method: {:?}, path: {template:?}, media: {:?}, \
                     validate: {name}_validators::{function}, pointer: {:?}, required: &[{}], \
                     examples: &[{}], generated: &[{}] }},",
                    method.to_ascii_uppercase(),
                    body.media,
                    fragment(&body.schema_ptr),
                    required
                        .iter()
                        .map(|r| format!("{r:?}, "))
                        .collect::<String>(),
                    strings(&examples),
                    strings(&generated),
                );
                count += 1;
            }
        }
        if count == 0 {
            panic!("{file}: no operation has a JSON or form request body schema");
        }

        let generated = validators.finish();
        let weakening: Vec<String> = generated
            .unsupported
            .iter()
            .filter(|u| u.reason.weakens())
            .map(|u| format!("({:?}, {:?}), ", u.keyword, u.detail))
            .collect();
        let validators_file = out.join(format!("{name}_validators.rs"));
        write_if_changed(&validators_file, &generated.source(Default::default()));
        let document_file = out.join(format!("{name}.json"));
        write_if_changed(
            &document_file,
            &serde_json::to_string(doc).expect("a parsed document serializes"),
        );

        let _ = writeln!(
            tie,
            "/// The request body validators gatewayc generates for `{file}`.\n\
             #[allow(dead_code, unused_qualifications, clippy::all)]\n\
             #[path = {:?}]\n\
             pub mod {name}_validators;\n",
            validators_file.display().to_string()
        );
        let _ = writeln!(
            tie,
            "/// `{file}` and its operations with a request body schema.\n\
             pub const {}: crate::Corpus = crate::Corpus {{\n    \
             name: {name:?},\n    file: {file:?},\n    openapi: {openapi:?},\n    \
             draft: jsonschema::Draft::{draft},\n    \
             document: include_str!({:?}),\n    \
             functions: {},\n    \
             weakening: &[{}],\n    \
             ops: &[\n{ops}    ],\n}};\n",
            name.to_uppercase(),
            document_file.display().to_string(),
            generated.functions.len(),
            weakening.concat(),
        );
    }
    write_if_changed(&out.join("corpora.rs"), &tie);
}

fn load(path: &Path, repo: &Path) -> Spec {
    let mut diags = Diagnostics::default();
    let spec = gatewayc::spec::load(&[path.to_path_buf()], repo, &mut diags);
    if diags.has_errors() || spec.roots.is_empty() {
        panic!(
            "{} does not load:\n{}",
            path.display(),
            diags.render_human(&spec.sources)
        );
    }
    spec
}

/// Where an operation's request body schema is.
struct Body {
    file: usize,
    media: String,
    /// `…/content/<media>`.
    media_ptr: String,
    /// `…/content/<media>/schema`.
    schema_ptr: String,
}

/// The operation's request body schema: the first JSON media type with a schema, else
/// `application/x-www-form-urlencoded` (whose schema describes the decoded form, an object:
/// all Stripe has).
fn request_body(spec: &Spec, file: usize, op_ptr: &str, op: &Value) -> Option<Body> {
    let raw = op.get("requestBody")?;
    let body = spec.deref(file, &child(op_ptr, "requestBody"), raw)?;
    let content = body.value.get("content").and_then(Value::as_object)?;
    let with_schema = |pick: &dyn Fn(&str) -> bool| {
        content
            .iter()
            .find(|(m, c)| pick(m) && c.get("schema").is_some())
            .map(|(m, _)| m.clone())
    };
    let media = with_schema(&is_json).or_else(|| {
        with_schema(&|m: &str| {
            m.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    })?;
    let media_ptr = child(&child(&body.pointer, "content"), &media);
    Some(Body {
        file: body.file,
        schema_ptr: child(&media_ptr, "schema"),
        media_ptr,
        media,
    })
}

/// `application/json` or `…+json`, as the compiler decides which bodies it validates.
fn is_json(media: &str) -> bool {
    let m = media.split(';').next().unwrap_or_default().trim();
    m.eq_ignore_ascii_case("application/json")
        || m.len() > 5 && m[m.len() - 5..].eq_ignore_ascii_case("+json")
}

/// The URI fragment for a JSON pointer: characters a URI may not carry (`{`, `}`, space,
/// `%` itself...) percent-encoded.
fn fragment(pointer: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + 8);
    for b in pointer.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The body examples the document gives: the media type's `example` and each of its
/// `examples` (following `$ref`s to `components/examples`), then the schema's own `example`.
fn examples(spec: &Spec, file: usize, media_ptr: &str, schema: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut push = |v: &Value| {
        if !out.contains(v) {
            out.push(v.clone());
        }
    };
    let media = spec.get(file, media_ptr).unwrap_or(&Value::Null);
    if let Some(v) = media.get("example") {
        push(v);
    }
    if let Some(map) = media.get("examples").and_then(Value::as_object) {
        let base = child(media_ptr, "examples");
        for (key, ex) in map {
            if let Some(ex) = spec.deref(file, &child(&base, key), ex)
                && let Some(v) = ex.value.get("value")
            {
                push(v);
            }
        }
    }
    if let Some(schema) = spec.deref(file, "", schema)
        && let Some(v) = schema.value.get("example")
    {
        push(v);
    }
    out
}

/// The root schema's `required` members, its `allOf` parts' included (following `$ref`s).
fn root_required(spec: &Spec, file: usize, schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(s) = spec.deref(file, "", schema) else {
        return out;
    };
    for r in s
        .value
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !out.iter().any(|o| o == r) {
            out.push(r.to_owned());
        }
    }
    for part in s
        .value
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for r in root_required(spec, s.file, part) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// Makes an instance of a schema, deterministically: the first `enum` value, the first
/// alternative of `oneOf`/`anyOf`, every `allOf` part merged, an object's required members
/// (with `full`, its other properties too, down to [`FULL_DEPTH`], `readOnly` ones left
/// out), `minItems` elements (with `full`, at least one), strings of the `format` asked for
/// and numbers inside the bounds. Nothing guarantees the instance is valid (a `pattern` is
/// met only where the schema gives an `example`); the benchmark keeps only instances both
/// validators accept.
struct Generator<'s> {
    spec: &'s Spec,
    full: bool,
    /// `$ref` targets being expanded, to stop at recursion.
    stack: Vec<(usize, String)>,
}

impl Generator<'_> {
    fn instance(&mut self, file: usize, schema: &Value, depth: usize) -> Option<Value> {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let target = self.spec.target(file, r)?;
            if self.stack.contains(&target) {
                return None;
            }
            let value = self.spec.get(target.0, &target.1)?;
            self.stack.push(target.clone());
            let made = self.instance(target.0, value, depth);
            self.stack.pop();
            return made;
        }
        let schema = match schema {
            Value::Object(o) => o,
            Value::Bool(true) => return Some(json!("text")),
            _ => return None,
        };
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            return values.iter().find(|v| !v.is_null()).cloned();
        }
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            let mut merged: Option<Value> = None;
            for part in parts {
                let v = self.instance(file, part, depth)?;
                merged = Some(match (merged, v) {
                    (Some(Value::Object(mut a)), Value::Object(b)) => {
                        a.extend(b);
                        Value::Object(a)
                    }
                    (Some(a), _) => a,
                    (None, v) => v,
                });
            }
            let own: Map<String, Value> = schema
                .iter()
                .filter(|(k, _)| *k != "allOf")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let own = if own.contains_key("type") || own.contains_key("properties") {
                self.instance(file, &Value::Object(own), depth)
            } else {
                None
            };
            return match (merged, own) {
                (Some(Value::Object(mut a)), Some(Value::Object(b))) => {
                    a.extend(b);
                    Some(Value::Object(a))
                }
                (Some(a), _) => Some(a),
                (None, b) => b,
            };
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(first) = schema
                .get(key)
                .and_then(Value::as_array)
                .and_then(|a| a.first())
            {
                return self.instance(file, first, depth);
            }
        }
        let ty = schema.get("type").and_then(Value::as_str).or_else(|| {
            if schema.contains_key("properties")
                || schema.contains_key("required")
                || schema.contains_key("additionalProperties")
            {
                Some("object")
            } else if schema.contains_key("items") {
                Some("array")
            } else {
                None
            }
        });
        match ty {
            Some("object") => self.object(file, schema, depth),
            Some("array") => {
                let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
                let n = if self.full { min.max(1) } else { min };
                let items = schema.get("items").unwrap_or(&Value::Bool(true));
                let mut out = Vec::new();
                for _ in 0..n {
                    match self.instance(file, items, depth + 1) {
                        Some(v) => out.push(v),
                        None if min == 0 => return Some(Value::Array(Vec::new())),
                        None => return None,
                    }
                }
                Some(Value::Array(out))
            }
            Some("string") => Some(Value::String(string(schema))),
            Some("integer") => Some(number(schema, true)),
            Some("number") => Some(number(schema, false)),
            Some("boolean") => Some(Value::Bool(true)),
            Some("null") => Some(Value::Null),
            _ => Some(json!("text")),
        }
    }

    fn object(&mut self, file: usize, schema: &Map<String, Value>, depth: usize) -> Option<Value> {
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let empty = Map::new();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let mut out = Map::new();
        for (name, prop) in properties {
            let needed = required.contains(&name.as_str());
            if !needed && !(self.full && depth < FULL_DEPTH) {
                continue;
            }
            if !needed && self.read_only(file, prop) {
                continue;
            }
            match self.instance(file, prop, depth + 1) {
                Some(v) => {
                    out.insert(name.clone(), v);
                }
                None if needed => return None,
                None => {}
            }
        }
        for name in required {
            if out.contains_key(name) {
                continue;
            }
            let extra = schema
                .get("additionalProperties")
                .unwrap_or(&Value::Bool(true));
            let v = self.instance(file, extra, depth + 1)?;
            out.insert(name.to_owned(), v);
        }
        Some(Value::Object(out))
    }

    fn read_only(&self, file: usize, prop: &Value) -> bool {
        self.spec
            .deref(file, "", prop)
            .is_some_and(|p| p.value.get("readOnly") == Some(&Value::Bool(true)))
    }
}

fn string(schema: &Map<String, Value>) -> String {
    if schema.contains_key("pattern")
        && let Some(Value::String(example)) = schema.get("example")
    {
        return example.clone();
    }
    let mut s = match schema.get("format").and_then(Value::as_str) {
        Some("date-time") => "2021-06-01T12:00:00Z".to_owned(),
        Some("date") => "2021-06-01".to_owned(),
        Some("uuid") => "0b5c3a9e-4f21-4d8e-9a77-2c1e6f0d3b48".to_owned(),
        Some("email") => "octocat@example.com".to_owned(),
        Some("uri") => "https://example.com/hooks".to_owned(),
        Some("ipv4") => "192.0.2.1".to_owned(),
        Some("ipv6") => "2001:db8::1".to_owned(),
        _ => "text".to_owned(),
    };
    let len = |s: &str| s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
        while len(&s) < min {
            s.push('x');
        }
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        s = s
            .chars()
            .take(usize::try_from(max).unwrap_or(usize::MAX))
            .collect();
    }
    s
}

/// 1, or the least value the bounds allow (OpenAPI 3.0's boolean `exclusiveMinimum`),
/// rounded up to `multipleOf` where that is an integer.
fn number(schema: &Map<String, Value>, integer: bool) -> Value {
    let exclusive = |k: &str| schema.get(k) == Some(&Value::Bool(true));
    let mut v: f64 = 1.0;
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        v = if exclusive("exclusiveMinimum") {
            if integer {
                min.floor() + 1.0
            } else {
                min + 1.0
            }
        } else {
            min.ceil()
        };
    } else if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && max < v
    {
        v = if exclusive("exclusiveMaximum") {
            max - 1.0
        } else {
            max
        };
    }
    if let Some(m) = schema.get("multipleOf").and_then(Value::as_f64)
        && m >= 1.0
        && m.fract() == 0.0
    {
        v = (v / m).ceil() * m;
    }
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// Leaves an unchanged file alone, so cargo does not recompile the big generated modules.
fn write_if_changed(path: &Path, contents: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}
