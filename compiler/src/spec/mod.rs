//! Stage 1, `load`: files → [`Spec`], the parsed documents with `$ref`s checked.
//!
//! `.json` files are read as JSON, everything else as YAML 1.2. Every `$ref` is followed to
//! the file it names (relative to the referring file), transitively, so that all files a
//! spec needs are read here and nowhere else. Every reference is checked: a missing file, a
//! pointer that names nothing, and a cycle of references that never reaches a value are
//! each reported at the `$ref` that causes them.

pub mod json;
pub mod source;
pub mod yaml;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use source::{Format, Pos, Sources, child, unescape_token};

/// A node in one of the spec's files.
#[derive(Debug, Clone, Copy)]
pub struct Node<'s> {
    /// File index in [`Spec::sources`].
    pub file: usize,
    /// JSON pointer within the file.
    pub pointer: &'s str,
    /// The value.
    pub value: &'s Value,
}

/// A node found by following references: the pointer is owned because it was computed.
#[derive(Debug, Clone)]
pub struct Resolved<'s> {
    /// File index.
    pub file: usize,
    /// Pointer within that file.
    pub pointer: String,
    /// The value (never itself a `$ref` object).
    pub value: &'s Value,
}

impl Resolved<'_> {
    /// The location of this node, for diagnostics.
    pub fn loc(&self) -> Location {
        Location::value(self.file, self.pointer.clone())
    }

    /// The location of member `key` of this node.
    pub fn key_loc(&self, key: &str) -> Location {
        Location::key(self.file, child(&self.pointer, key))
    }

    /// The location of member `key`'s value.
    pub fn member_loc(&self, key: &str) -> Location {
        Location::value(self.file, child(&self.pointer, key))
    }
}

/// Every document read, and how their `$ref`s connect.
#[derive(Debug, Default)]
pub struct Spec {
    /// The text of each file, for diagnostics.
    pub sources: Sources,
    /// The parsed value of each file, by file index.
    pub docs: Vec<Value>,
    /// The files named on the command line, in order.
    pub roots: Vec<usize>,
    /// (referring file, file part of a `$ref`) → file index.
    links: HashMap<(usize, String), usize>,
}

impl Spec {
    /// Follows `$ref`s from `value` (found at `file`/`pointer`) until a value that is not a
    /// reference. Returns `None` for a broken reference; `load` has already reported it.
    pub fn deref<'s>(
        &'s self,
        file: usize,
        pointer: &str,
        value: &'s Value,
    ) -> Option<Resolved<'s>> {
        let mut cur = Resolved {
            file,
            pointer: pointer.to_owned(),
            value,
        };
        for _ in 0..64 {
            let Some(r) = cur.value.get("$ref").and_then(Value::as_str) else {
                return Some(cur);
            };
            let (f, p) = self.target(cur.file, r)?;
            let v = pointer_get(&self.docs[f], &p)?;
            cur = Resolved {
                file: f,
                pointer: p,
                value: v,
            };
        }
        None
    }

    /// The file and pointer a `$ref` string names, seen from `file`.
    pub fn target(&self, file: usize, reference: &str) -> Option<(usize, String)> {
        let (path, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let f = if path.is_empty() {
            file
        } else {
            *self.links.get(&(file, path.to_owned()))?
        };
        Some((f, decode_fragment(fragment)))
    }

    /// A node by file and pointer, without following references.
    pub fn get(&self, file: usize, pointer: &str) -> Option<&Value> {
        pointer_get(self.docs.get(file)?, pointer)
    }
}

/// Percent-decodes a URI fragment (`#/a%25b` names member `a%b`).
pub(crate) fn decode_fragment(fragment: &str) -> String {
    if !fragment.contains('%') {
        return fragment.to_owned();
    }
    let bytes = fragment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = fragment.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(h, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Looks up an RFC 6901 pointer.
pub fn pointer_get<'v>(root: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() {
        return Some(root);
    }
    let mut cur = root;
    for token in pointer.strip_prefix('/')?.split('/') {
        let token = unescape_token(token);
        cur = match cur {
            Value::Object(m) => m.get(&token)?,
            Value::Array(a) => a.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// A spec of one YAML document held in memory (`t.yaml`), for unit tests.
#[cfg(test)]
pub(crate) fn from_yaml(yaml: &str) -> Spec {
    let mut spec = Spec::default();
    let value = yaml::parse(yaml).expect("test YAML parses");
    spec.sources.add("t.yaml".into(), yaml.into(), Format::Yaml);
    spec.docs.push(value);
    spec.roots.push(0);
    spec
}

/// Reads the spec files named in `paths` and every file they reference.
///
/// Paths are shown relative to `base` when they are under it.
pub fn load(paths: &[PathBuf], base: &Path, diags: &mut Diagnostics) -> Spec {
    let mut spec = Spec::default();
    let mut by_path: HashMap<PathBuf, usize> = HashMap::new();
    let mut queue = VecDeque::new();
    let mut refs: Vec<(usize, String, String)> = Vec::new();
    for path in paths {
        match read(path, base, &mut spec, diags) {
            Some(f) => {
                if let Ok(c) = std::fs::canonicalize(path) {
                    by_path.insert(c, f);
                }
                spec.roots.push(f);
                queue.push_back((f, path.clone()));
            }
            None => continue,
        }
    }
    while let Some((file, path)) = queue.pop_front() {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut found = Vec::new();
        collect_refs(&spec.docs[file], String::new(), &mut found);
        for (pointer, reference) in found {
            let file_part = reference
                .split_once('#')
                .map_or(reference.as_str(), |(p, _)| p);
            if !file_part.is_empty() && !spec.links.contains_key(&(file, file_part.to_owned())) {
                if file_part.contains("://") {
                    // A warning here: most such references are schemas routing never reads.
                    // Lowering makes it an error (E0105) where the gateway needs the content.
                    diags.push(
                        Diagnostic::warning(
                            "W0105",
                            Some(Location::value(file, child(&pointer, "$ref"))),
                            format!("`$ref` to `{file_part}` is not followed: gatewayc reads only local files"),
                        )
                        .hint("download the document next to the spec and refer to it by relative path"),
                    );
                    continue;
                }
                let target = dir.join(file_part);
                let Ok(canon) = std::fs::canonicalize(&target) else {
                    diags.push(Diagnostic::error(
                        "E0103",
                        Some(Location::value(file, child(&pointer, "$ref"))),
                        format!("`$ref` names `{file_part}`, which cannot be read"),
                    ));
                    continue;
                };
                let f = match by_path.get(&canon) {
                    Some(&f) => f,
                    None => match read(&target, base, &mut spec, diags) {
                        Some(f) => {
                            by_path.insert(canon, f);
                            queue.push_back((f, target.clone()));
                            f
                        }
                        None => continue,
                    },
                };
                spec.links.insert((file, file_part.to_owned()), f);
            }
            refs.push((file, pointer, reference));
        }
    }
    for (file, pointer, reference) in refs {
        check_ref(&spec, file, &pointer, &reference, diags);
    }
    spec
}

fn check_ref(spec: &Spec, file: usize, pointer: &str, reference: &str, diags: &mut Diagnostics) {
    let loc = || Some(Location::value(file, child(pointer, "$ref")));
    let Some((mut f, mut p)) = spec.target(file, reference) else {
        return;
    };
    let mut seen = vec![(file, pointer.to_owned())];
    loop {
        if !p.is_empty() && !p.starts_with('/') {
            diags.push(
                Diagnostic::error(
                    "E0104",
                    loc(),
                    format!("`$ref: {reference}` is not a JSON pointer fragment"),
                )
                .hint("a fragment starts with `#/`, as in `#/components/schemas/Pet`"),
            );
            return;
        }
        let Some(v) = spec.get(f, &p) else {
            diags.push(Diagnostic::error(
                "E0104",
                loc(),
                format!(
                    "`$ref: {reference}` points at nothing in `{}`",
                    spec.sources.display(f)
                ),
            ));
            return;
        };
        if seen.contains(&(f, p.clone())) {
            diags.push(Diagnostic::error("E0106", loc(), format!("`$ref: {reference}` is part of a cycle of references that never reaches a value")));
            return;
        }
        seen.push((f, p.clone()));
        match v.get("$ref").and_then(Value::as_str) {
            Some(next) => match spec.target(f, next) {
                Some((nf, np)) => {
                    f = nf;
                    p = np;
                }
                None => return,
            },
            None => return,
        }
    }
}

/// Every `$ref` string below `value`, with the pointer of the object holding it. Literal
/// example values and extension values are not searched: a `$ref` key there is data.
fn collect_refs(value: &Value, pointer: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push((pointer.clone(), r.clone()));
            }
            let in_examples = pointer.rsplit('/').nth(1) == Some("examples");
            for (k, v) in map {
                if k == "example" || k.starts_with("x-") || (in_examples && k == "value") {
                    continue;
                }
                if v.is_object() || v.is_array() {
                    collect_refs(v, child(&pointer, k), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                if v.is_object() || v.is_array() {
                    collect_refs(v, child(&pointer, &i.to_string()), out);
                }
            }
        }
        _ => {}
    }
}

fn display_path(path: &Path, base: &Path) -> String {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    let norm = normalize(&abs);
    let base = normalize(base);
    match norm.strip_prefix(&base) {
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => norm.to_string_lossy().into_owned(),
    }
}

/// Removes `.` and `..` components without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn read(path: &Path, base: &Path, spec: &mut Spec, diags: &mut Diagnostics) -> Option<usize> {
    let display = display_path(path, base);
    let text = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                diags.push(Diagnostic::error(
                    "E0101",
                    None,
                    format!("{display}: the file is not UTF-8 text"),
                ));
                return None;
            }
        },
        Err(e) => {
            diags.push(Diagnostic::error(
                "E0101",
                None,
                format!("cannot read `{display}`: {e}"),
            ));
            return None;
        }
    };
    let format = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        Format::Json
    } else {
        Format::Yaml
    };
    let parsed = match format {
        Format::Json => serde_json::from_str::<Value>(&text).map_err(|e| {
            let pos = Pos {
                line: e.line(),
                col: e.column().max(1),
                len: 1,
            };
            vec![(format!("JSON syntax error: {e}"), pos, None, None)]
        }),
        Format::Yaml => yaml::parse(&text).map_err(|errs| {
            errs.into_iter()
                .map(|e| (e.message, e.pos, e.pointer, e.first))
                .collect()
        }),
    };
    let file = spec.sources.add(display, text, format);
    match parsed {
        Ok(v) => {
            spec.docs.push(v);
            Some(file)
        }
        Err(errors) => {
            spec.docs.push(Value::Null);
            for (message, pos, pointer, first) in errors {
                let pointer = pointer.unwrap_or_default();
                let mut loc = Location::value(file, pointer.clone());
                loc.pos = Some(pos);
                let mut d = Diagnostic::error("E0102", Some(loc), message);
                if let Some(first) = first {
                    let mut floc = Location::value(file, pointer);
                    floc.pos = Some(first);
                    d = d.related(floc, "first defined here");
                }
                diags.push(d);
            }
            None
        }
    }
}
