//! `x-gateway.aggregate`: an operation answered by calling several upstreams and combining
//! their answers.
//!
//! Reading happens with the rest of an operation's `x-gateway` ([`read`]); everything that
//! needs other operations (a part's `response` names one by operationId) or the upstream
//! list happens once all documents are read ([`finish`]). The checks, each at the node that
//! causes it: part upstreams exist; a part's path uses only the operation's path
//! parameters and fields of other parts; parts depend on each other without a cycle, and a
//! required part never on an optional one; a referenced field exists in the referenced
//! part's response schema and is a scalar; under `shape: merge`, the parts' top-level keys
//! are known and do not collide.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use super::reader::{self, Obj, did_you_mean};
use super::schema::{self, Lookup, SchemaRef, Types};
use super::{CLI_UPSTREAM, Draft, Options, UpstreamDecl, example, is_pchar};
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::model::{Aggregation, Method, Part, PartPiece, PathParam, Rewrite, Shape};
use crate::spec::source::{child, escape_token};
use crate::spec::{Resolved, Spec};

/// Largest part response read when `max_response` is not set.
pub const DEFAULT_MAX_RESPONSE: u64 = 1 << 20;

/// An `aggregate` as written, before other operations and the upstreams are known.
#[derive(Debug, Clone)]
pub struct Raw {
    /// Where `aggregate` is written (its key).
    loc: Location,
    parts: Vec<RawPart>,
    deadline: Option<(Duration, Location)>,
    shape: Shape,
    shape_loc: Location,
    /// Whether reading it found an error: it is checked as far as it can be, and then not
    /// built.
    broken: bool,
}

#[derive(Debug, Clone)]
struct RawPart {
    name: String,
    /// The part's key.
    loc: Location,
    upstream: Option<(String, Location)>,
    path: (String, Location),
    response: Option<(String, Location)>,
    timeout: Option<(Duration, Location)>,
    optional: bool,
    max_response: Option<u64>,
}

/// Reads `aggregate` from an operation's (or, wrongly, a path item's) `x-gateway`. On an
/// operation, the result is `Some` whenever `aggregate` is there, errors or not, so that the
/// operation is never taken for one that forwards.
pub(super) fn read(obj: &mut Obj<'_>, on_operation: bool, d: &mut Diagnostics) -> Option<Raw> {
    let key_loc = Location::key(obj.file, child(&obj.pointer, "aggregate"));
    let mut agg = obj.object("aggregate", "an aggregate", d)?;
    if !on_operation {
        d.push(
            Diagnostic::error(
                "E0911",
                Some(key_loc),
                "`aggregate` belongs on an operation, not on a path item",
            )
            .hint("move it into the `x-gateway` of the GET operation it answers"),
        );
        return None;
    }
    if obj.has("path") {
        d.push(
            Diagnostic::error(
                "E0911",
                Some(Location::key(obj.file, child(&obj.pointer, "path"))),
                "`path` has no effect on an aggregate: each part has its own path",
            )
            .hint("remove `path`, or write it as a part's `path`"),
        );
    }
    let mut ok = true;
    let mut parts = Vec::new();
    let has_parts = agg.has("parts");
    for (name, ptr, value) in agg.entries("parts", d) {
        let loc = Location::key(agg.file, ptr.clone());
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            d.push(
                Diagnostic::error(
                    "E0901",
                    Some(loc.clone()),
                    format!("part name `{name}` must be letters, digits, `-` and `_`"),
                )
                .hint("a part's name is used in `{part.field}` references, so it cannot hold `.`, `{` or `}`"),
            );
            ok = false;
        }
        let Some(mut p) = Obj::new(agg.file, ptr, value, "an aggregate part", d) else {
            ok = false;
            continue;
        };
        let upstream = p.string("upstream", d).map(|u| (u, p.loc("upstream")));
        let path = p.string("path", d).map(|t| (t, p.loc("path")));
        let response = p.string("response", d).map(|r| (r, p.loc("response")));
        let timeout = p.duration("timeout", d).map(|t| (t, p.loc("timeout")));
        let optional = match p.raw("optional") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                d.push(reader::type_error(
                    p.loc("optional"),
                    "optional",
                    "`true` or `false`",
                    other,
                ));
                false
            }
        };
        let max_response = p.size("max_response", d);
        let here = p.here();
        p.finish(d);
        let Some(path) = path else {
            if !path_has_wrong_type(value) {
                d.push(
                    Diagnostic::error("E0901", Some(here), format!("part `{name}` has no `path`"))
                        .hint("write the upstream path it calls: `path: /pets/{petId}`"),
                );
            }
            ok = false;
            continue;
        };
        parts.push(RawPart {
            name,
            loc,
            upstream,
            path,
            response,
            timeout,
            optional,
            max_response,
        });
    }
    if parts.is_empty() && ok {
        let what = if has_parts {
            "`parts` is empty"
        } else {
            "an aggregate needs `parts`"
        };
        d.push(
            Diagnostic::error("E0901", Some(agg.here()), what.to_owned()).hint(
                "name each upstream call: `parts: { pet: { upstream: pets, path: /pets/{id} } }`",
            ),
        );
        ok = false;
    }
    // A malformed deadline is reported here; the checks below then use the default.
    let deadline = agg
        .duration("deadline", d)
        .map(|t| (t, agg.loc("deadline")));
    let shape_loc = agg.loc("shape");
    let shape = match agg.string("shape", d).as_deref() {
        None | Some("parts") => Shape::Parts,
        Some("merge") => Shape::Merge,
        Some(other) => {
            let mut diag = Diagnostic::error(
                "E0901",
                Some(shape_loc.clone()),
                format!("unknown `shape` `{other}`"),
            );
            diag = match did_you_mean(other, &["parts", "merge"]) {
                Some(best) => diag.hint(format!("did you mean `{best}`?")),
                None => diag.hint("`parts` keys the answer by part name; `merge` merges the parts' members into one object"),
            };
            d.push(diag);
            ok = false;
            Shape::Parts
        }
    };
    agg.finish(d);
    Some(Raw {
        loc: key_loc,
        parts,
        deadline,
        shape,
        shape_loc,
        broken: !ok,
    })
}

/// Whether a part's `path` is present but was already reported as having the wrong type.
fn path_has_wrong_type(value: &Value) -> bool {
    value.get("path").is_some_and(|p| !p.is_string())
}

/// Resolves every operation's `aggregate`: its parts' upstreams, paths, dependencies and
/// schemas. Sets `Operation::aggregate`, and the operation's timeout to the deadline.
pub(super) fn finish(
    spec: &Spec,
    drafts: &mut [Draft],
    upstreams: &BTreeMap<String, UpstreamDecl>,
    opts: &Options,
    d: &mut Diagnostics,
) {
    let mut resolved = Vec::new();
    for (i, draft) in drafts.iter().enumerate() {
        let Some(raw) = &draft.aggregate else {
            continue;
        };
        if let Some(agg) = resolve(spec, drafts, draft, raw, upstreams, opts, d) {
            resolved.push((i, agg));
        }
    }
    // Assigned only once every aggregate is resolved: a part's `response` may name another
    // aggregate operation, whose example it then still sees.
    for (i, agg) in resolved {
        if let Some(draft) = drafts.get_mut(i) {
            draft.op.timeout = agg.deadline;
            // Mock mode answers from each part's example instead.
            draft.op.example = None;
            // The runtime reads the operation's path parameters back from the plan's path:
            // each one percent-encoded as one segment, in order.
            draft.op.rewrite = (0..draft.op.params.len())
                .flat_map(|p| [Rewrite::Lit("/".to_owned()), Rewrite::Param(p)])
                .collect();
            draft.op.upstream = String::new();
            draft.op.aggregate = Some(agg);
        }
    }
}

/// A `{part.field}` reference in a part's path, for the schema check.
struct FieldUse {
    /// The part it is written in.
    user: usize,
    /// The part whose answer it reads.
    part: usize,
    tokens: Vec<String>,
    /// As written, braces included.
    text: String,
}

/// What a part's `response` gives: a schema for checks, and a mock answer.
struct Response<'s> {
    described: Described<'s>,
    mock: Option<String>,
}

/// What describes a part's answer.
enum Described<'s> {
    /// This schema.
    Schema(Resolved<'s>),
    /// Nothing, for this reason (a phrase with the part as its subject).
    Nothing(String),
    /// Its `response` is wrong, and was reported.
    Reported,
}

impl Response<'_> {
    fn none() -> Self {
        Response {
            described: Described::Nothing("has no `response` to describe its answer".to_owned()),
            mock: None,
        }
    }
}

fn resolve(
    spec: &Spec,
    drafts: &[Draft],
    draft: &Draft,
    raw: &Raw,
    upstreams: &BTreeMap<String, UpstreamDecl>,
    opts: &Options,
    d: &mut Diagnostics,
) -> Option<Aggregation> {
    let mut ok = !raw.broken;
    if draft.op.transform.is_some() {
        d.push(
            Diagnostic::error(
                "E0911",
                Some(raw.loc.clone()),
                "`aggregate` and `transform` on one operation: an aggregate's answer is not transformed, so the transform would not apply",
            )
            .hint("remove the transform (or the path item's) from this operation, or shape the parts' answers with `shape`"),
        );
        ok = false;
    }
    if draft.op.method != Method::Get {
        d.push(
            Diagnostic::error(
                "E0911",
                Some(raw.loc.clone()),
                format!(
                    "`aggregate` on a {} operation: parts are GET requests, and the request body would be dropped",
                    draft.op.method.as_str()
                ),
            )
            .hint("aggregate only GET operations"),
        );
        ok = false;
    }
    let deadline = raw.deadline.as_ref().map_or(draft.op.timeout, |(t, _)| *t);
    let names: Vec<&str> = raw.parts.iter().map(|p| p.name.as_str()).collect();
    let upstream_names: Vec<&str> = upstreams.keys().map(String::as_str).collect();
    // Aligned with `raw.parts`; a part that cannot be built is `None` and needs nothing.
    let mut parts: Vec<Option<Part>> = Vec::new();
    let mut needs: Vec<Vec<usize>> = Vec::new();
    let mut uses = Vec::new();
    let mut responses = Vec::new();
    for (index, rp) in raw.parts.iter().enumerate() {
        let upstream = part_upstream(rp, draft, upstreams, &upstream_names, opts, d);
        let template = parse_path(&rp.path.0, &rp.path.1, &draft.op.params, &names, index, d);
        let response = match &rp.response {
            Some((text, loc)) => part_response(spec, drafts, draft, text, loc, d),
            None => Response::none(),
        };
        let timeout = match &rp.timeout {
            Some((t, loc)) => {
                if *t > deadline {
                    d.push(
                        Diagnostic::warning(
                            "W0902",
                            Some(loc.clone()),
                            format!(
                                "part `{}` may take {}, longer than the aggregate's deadline of {}: the deadline cuts it short",
                                rp.name,
                                show(*t),
                                show(deadline)
                            ),
                        )
                        .hint("shorten the part's `timeout` or lengthen `deadline`"),
                    );
                }
                Some(*t)
            }
            None => None,
        };
        let mock = response.mock.clone();
        responses.push(response);
        let (Some(upstream), Some((path, query, fields))) = (upstream, template) else {
            ok = false;
            parts.push(None);
            needs.push(Vec::new());
            continue;
        };
        let timeout = timeout
            .or_else(|| upstreams.get(&upstream).and_then(|u| u.timeout))
            .unwrap_or(deadline);
        let part_needs: Vec<usize> = fields
            .iter()
            .map(|f| f.part)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        uses.extend(fields);
        needs.push(part_needs.clone());
        parts.push(Some(Part {
            name: rp.name.clone(),
            upstream,
            path,
            query,
            needs: part_needs,
            timeout: timeout.min(deadline),
            optional: rp.optional,
            max_response: rp.max_response.unwrap_or(DEFAULT_MAX_RESPONSE),
            mock,
        }));
    }
    if !check_graph(raw, &needs, d) {
        ok = false;
    }
    for f in &uses {
        if !check_field(spec, raw, &responses, f, d) {
            ok = false;
        }
    }
    if raw.shape == Shape::Merge && !check_merge(spec, raw, &responses, d) {
        ok = false;
    }
    let parts: Option<Vec<Part>> = parts.into_iter().collect();
    Some(Aggregation {
        parts: parts.filter(|_| ok)?,
        deadline,
        shape: raw.shape,
    })
}

fn show(t: Duration) -> String {
    if t.subsec_millis() == 0 {
        format!("{}s", t.as_secs())
    } else {
        format!("{}ms", t.as_millis())
    }
}

/// The upstream a part calls: its own `upstream`, else the operation's.
fn part_upstream(
    rp: &RawPart,
    draft: &Draft,
    upstreams: &BTreeMap<String, UpstreamDecl>,
    names: &[&str],
    opts: &Options,
    d: &mut Diagnostics,
) -> Option<String> {
    let (name, loc) = match &rp.upstream {
        Some((u, loc)) => (u.clone(), loc.clone()),
        None if !draft.op.upstream.is_empty() => (
            draft.op.upstream.clone(),
            draft.upstream_loc.clone().unwrap_or_else(|| rp.loc.clone()),
        ),
        None if opts.default_upstream.is_some() => (CLI_UPSTREAM.to_owned(), rp.loc.clone()),
        None => {
            d.push(
                Diagnostic::error(
                    "E0902",
                    Some(rp.loc.clone()),
                    format!("part `{}` reaches no upstream", rp.name),
                )
                .hint("give the part an `upstream`, or the operation or document a default one"),
            );
            return None;
        }
    };
    if upstreams.contains_key(&name) {
        return Some(name);
    }
    let mut diag = Diagnostic::error(
        "E0902",
        Some(loc),
        format!(
            "part `{}` calls upstream `{name}`, which is not defined in `x-gateway.upstreams`",
            rp.name
        ),
    );
    diag = match did_you_mean(&name, names) {
        Some(best) => diag.hint(format!("did you mean `{best}`?")),
        None if names.is_empty() => {
            diag.hint("define it under `x-gateway.upstreams` at the top of the document")
        }
        None => diag.hint(format!("defined upstreams: {}", names.join(", "))),
    };
    d.push(diag);
    None
}

type Template = (Vec<PartPiece>, Vec<PartPiece>, Vec<FieldUse>);

/// Parses a part's `path`: `/owners/{pet.ownerId}`, `/reviews?pet={petId}`.
fn parse_path(
    text: &str,
    loc: &Location,
    params: &[PathParam],
    parts: &[&str],
    user: usize,
    d: &mut Diagnostics,
) -> Option<Template> {
    let err = |d: &mut Diagnostics, msg: String, hint: &str| {
        let mut diag = Diagnostic::error("E0903", Some(loc.clone()), msg);
        if !hint.is_empty() {
            diag = diag.hint(hint.to_owned());
        }
        d.push(diag);
    };
    if !text.starts_with('/') {
        err(d, format!("part path `{text}` must start with `/`"), "");
        return None;
    }
    if text.contains('#') {
        err(
            d,
            format!("part path `{text}` holds a fragment"),
            "a fragment is never sent to a server; remove it",
        );
        return None;
    }
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, q),
        None => (text, ""),
    };
    let mut ok = true;
    let mut fields = Vec::new();
    let mut out = [Vec::new(), Vec::new()];
    for (slot, (section, in_query)) in [(path, false), (query, true)].into_iter().enumerate() {
        let mut pieces = Vec::new();
        let mut rest = section;
        while !rest.is_empty() {
            let (lit, after) = match rest.find(['{', '}']) {
                None => (rest, None),
                Some(i) if rest.as_bytes()[i] == b'}' => {
                    err(d, format!("unmatched `}}` in part path `{text}`"), "");
                    return None;
                }
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            };
            if !lit
                .bytes()
                .all(|b| is_pchar(b) || b == b'/' || (in_query && b == b'?'))
            {
                err(
                    d,
                    format!("part path `{text}` contains characters that are not allowed in a URL"),
                    "percent-encode them, as in `%20` for a space",
                );
                ok = false;
            }
            if !lit.is_empty() {
                pieces.push(PartPiece::Lit(lit.to_owned()));
            }
            let Some(after) = after else { break };
            let Some(end) = after.find('}') else {
                err(d, format!("unclosed `{{` in part path `{text}`"), "");
                return None;
            };
            let inner = &after[..end];
            rest = &after[end + 1..];
            if inner.is_empty() || inner.contains('{') {
                err(
                    d,
                    format!("empty or nested `{{}}` in part path `{text}`"),
                    "write `{petId}` for a path parameter or `{pet.ownerId}` for a field of part `pet`",
                );
                return None;
            }
            match reference(inner, text, loc, params, parts, d) {
                Some(Reference::Param(i)) => pieces.push(PartPiece::Param(i)),
                Some(Reference::Field(part, tokens)) => {
                    let pointer: String = tokens
                        .iter()
                        .map(|t| format!("/{}", escape_token(t)))
                        .collect();
                    fields.push(FieldUse {
                        user,
                        part,
                        tokens,
                        text: format!("{{{inner}}}"),
                    });
                    pieces.push(PartPiece::Field { part, pointer });
                }
                None => ok = false,
            }
        }
        out[slot] = pieces;
    }
    let [path, query] = out;
    ok.then_some((path, query, fields))
}

enum Reference {
    Param(usize),
    Field(usize, Vec<String>),
}

/// What `{inner}` in a part path stands for: a path parameter of the operation (an exact
/// name wins), or `part.field.field...`.
fn reference(
    inner: &str,
    text: &str,
    loc: &Location,
    params: &[PathParam],
    parts: &[&str],
    d: &mut Diagnostics,
) -> Option<Reference> {
    if let Some(i) = params.iter().position(|p| p.name == inner) {
        return Some(Reference::Param(i));
    }
    let param_names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    let Some((part, field)) = inner.split_once('.') else {
        let mut diag = Diagnostic::error(
            "E0904",
            Some(loc.clone()),
            format!(
                "part path `{text}` uses `{{{inner}}}`, which is not a path parameter of this operation"
            ),
        );
        diag = if parts.contains(&inner) {
            diag.hint(format!(
                "to use a field of part `{inner}`, write `{{{inner}.field}}`"
            ))
        } else {
            match did_you_mean(inner, &param_names) {
                Some(best) => diag.hint(format!("did you mean `{{{best}}}`?")),
                None if param_names.is_empty() => {
                    diag.hint("this operation has no path parameters")
                }
                None => diag.hint(format!(
                    "its path parameters are: {}",
                    param_names.join(", ")
                )),
            }
        };
        d.push(diag);
        return None;
    };
    let Some(index) = parts.iter().position(|p| *p == part) else {
        let mut diag = Diagnostic::error(
            "E0905",
            Some(loc.clone()),
            format!("part path `{text}` uses `{{{inner}}}`, but there is no part `{part}`"),
        );
        diag = match did_you_mean(part, parts) {
            Some(best) => diag.hint(format!("did you mean `{{{best}.{field}}}`?")),
            None => diag.hint(format!("the parts are: {}", parts.join(", "))),
        };
        d.push(diag);
        return None;
    };
    let tokens: Vec<String> = field.split('.').map(str::to_owned).collect();
    if tokens.iter().any(|t| t.is_empty() || t == "*") {
        d.push(
            Diagnostic::error(
                "E0903",
                Some(loc.clone()),
                format!("`{{{inner}}}` in part path `{text}` has an empty or `*` field name"),
            )
            .hint(
                "name one scalar field: `{pet.owner.id}`, or `{pet.tags.0}` for an array element",
            ),
        );
        return None;
    }
    Some(Reference::Field(index, tokens))
}

/// Dependencies form a DAG, and a required part needs only required parts.
fn check_graph(raw: &Raw, needs: &[Vec<usize>], d: &mut Diagnostics) -> bool {
    let parts = &raw.parts;
    let mut ok = true;
    for cycle in cycles(needs) {
        ok = false;
        let names: Vec<String> = cycle
            .iter()
            .map(|&i| format!("`{}`", parts[i].name))
            .collect();
        let first = cycle[0];
        let mut diag = Diagnostic::error(
            "E0906",
            Some(parts[first].path.1.clone()),
            if cycle.len() == 2 {
                format!(
                    "part `{}` uses a field of its own answer",
                    parts[first].name
                )
            } else {
                format!(
                    "parts depend on each other in a cycle: {} uses {}",
                    names[0],
                    names[1..].join(", which uses ")
                )
            },
        )
        .hint("a part can use fields only of parts that do not, directly or not, use it");
        for &i in cycle.iter().skip(1).take(cycle.len().saturating_sub(2)) {
            diag = diag.related(
                parts[i].path.1.clone(),
                format!("`{}` is part of the cycle", parts[i].name),
            );
        }
        d.push(diag);
    }
    for (i, p) in parts.iter().enumerate() {
        if p.optional {
            continue;
        }
        for &j in needs.get(i).map_or(&[][..], Vec::as_slice) {
            if parts[j].optional {
                ok = false;
                d.push(
                    Diagnostic::error(
                        "E0912",
                        Some(parts[i].path.1.clone()),
                        format!(
                            "required part `{}` uses a field of optional part `{}`",
                            p.name, parts[j].name
                        ),
                    )
                    .related(parts[j].loc.clone(), "the optional part")
                    .hint(format!(
                        "when `{}` fails, `{}` cannot be called: mark `{}` `optional: true`, or make `{}` required",
                        parts[j].name, p.name, p.name, parts[j].name
                    )),
                );
            }
        }
    }
    ok
}

/// The cycles a depth-first search over `needs` (part → the parts it uses) meets, each
/// once, starting and ending at the same part (`[a, b, a]`; `[a, a]` for a part that uses
/// itself).
fn cycles(needs: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = needs.len();
    // 0: not seen, 1: on the current path, 2: done.
    let mut state = vec![0u8; n];
    let mut found: Vec<Vec<usize>> = Vec::new();
    let mut seen: BTreeSet<Vec<usize>> = BTreeSet::new();
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        // An explicit stack of (part, next dependency to look at): a spec cannot overflow
        // the compiler's stack with a long chain of parts.
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let Some(&dep) = needs[node].get(*next) else {
                state[node] = 2;
                stack.pop();
                continue;
            };
            *next += 1;
            match state.get(dep).copied() {
                Some(0) => {
                    state[dep] = 1;
                    stack.push((dep, 0));
                }
                Some(1) => {
                    let from = stack.iter().position(|&(p, _)| p == dep).unwrap_or(0);
                    let mut cycle: Vec<usize> = stack[from..].iter().map(|&(p, _)| p).collect();
                    // Rotated to start at its smallest part, so each cycle is kept once.
                    let min = cycle
                        .iter()
                        .enumerate()
                        .min_by_key(|&(_, p)| *p)
                        .map_or(0, |(i, _)| i);
                    cycle.rotate_left(min);
                    if seen.insert(cycle.clone()) {
                        let first = cycle[0];
                        cycle.push(first);
                        found.push(cycle);
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// Finds what a part's `response` names: an operationId, or a schema by `$ref`-style
/// pointer (`#/components/schemas/Pet`).
fn part_response<'s>(
    spec: &'s Spec,
    drafts: &[Draft],
    draft: &Draft,
    text: &str,
    loc: &Location,
    d: &mut Diagnostics,
) -> Response<'s> {
    let reported = Response {
        described: Described::Reported,
        mock: None,
    };
    if text.contains('#') {
        let file = draft.loc.file;
        let node = spec
            .target(file, text)
            .and_then(|(f, p)| spec.get(f, &p).map(|v| (f, p, v)))
            .and_then(|(f, p, v)| spec.deref(f, &p, v));
        let Some(node) = node else {
            d.push(
                Diagnostic::error(
                    "E0908",
                    Some(loc.clone()),
                    format!("`response: {text}` points at nothing"),
                )
                .hint("name a schema in this document, as in `#/components/schemas/Pet`, or an operationId"),
            );
            return reported;
        };
        let mock = serde_json::to_string(&example::for_schema(spec, &node)).ok();
        return Response {
            described: Described::Schema(node),
            mock,
        };
    }
    let Some(target) = drafts
        .iter()
        .find(|dr| dr.operation_id.as_deref() == Some(text))
    else {
        let ids: Vec<&str> = drafts
            .iter()
            .filter_map(|dr| dr.operation_id.as_deref())
            .collect();
        let mut diag = Diagnostic::error(
            "E0908",
            Some(loc.clone()),
            format!("`response: {text}` names no operation"),
        );
        diag = match did_you_mean(text, &ids) {
            Some(best) => diag.hint(format!("did you mean `{best}`?")),
            None => diag.hint(
                "name the operationId whose success response describes this part, or a schema as `#/components/schemas/Name`",
            ),
        };
        d.push(diag);
        return reported;
    };
    let op = spec
        .get(target.loc.file, &target.loc.pointer)
        .map(|value| Resolved {
            file: target.loc.file,
            pointer: target.loc.pointer.clone(),
            value,
        });
    let described = match op.and_then(|op| schema::success_response(spec, &op)) {
        Some(body) => Described::Schema(body.schema),
        None => Described::Nothing(format!(
            "is described by operation `{text}`, which declares no JSON success response schema"
        )),
    };
    let mock = target
        .op
        .example
        .as_ref()
        .filter(|ex| ex.content_type.contains("json"))
        .and_then(|ex| serde_json::from_str::<Value>(&ex.body).ok())
        .and_then(|v| serde_json::to_string(&v).ok());
    Response { described, mock }
}

/// A `{part.field}` reference names a scalar that the part's response schema declares.
fn check_field(
    spec: &Spec,
    raw: &Raw,
    responses: &[Response<'_>],
    f: &FieldUse,
    d: &mut Diagnostics,
) -> bool {
    let loc = raw.parts[f.user].path.1.clone();
    let part = &raw.parts[f.part].name;
    let node = match responses.get(f.part).map(|r| &r.described) {
        Some(Described::Schema(n)) => n.clone(),
        Some(Described::Reported) | None => return true,
        Some(Described::Nothing(why)) => {
            d.push(
                Diagnostic::warning(
                    "W0901",
                    Some(loc),
                    format!("`{}` is not checked: part `{part}` {why}", f.text),
                )
                .hint(format!(
                    "give part `{part}` `response: <operationId>` or a schema `#/components/schemas/...` so that the field can be checked"
                )),
            );
            return true;
        }
    };
    match schema::resolve_tokens(spec, node, &f.tokens) {
        Lookup::Found(s) => check_scalar(&s, f, part, loc, d),
        Lookup::Missing {
            at_segment,
            known,
            parent,
        } => {
            let token = f.tokens.get(at_segment).map_or("", String::as_str);
            let whole = if at_segment == 0 {
                format!("part `{part}`'s response")
            } else {
                format!("`{part}.{}`", f.tokens[..at_segment].join("."))
            };
            let mut diag = Diagnostic::error(
                "E0907",
                Some(loc),
                format!("`{}`: {whole} has no field `{token}`", f.text),
            )
            .related(parent.loc(), "the schema it is looked up in");
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            diag = match did_you_mean(token, &known) {
                Some(best) => diag.hint(format!("did you mean `{best}`?")),
                None if known.is_empty() => diag,
                None => diag.hint(format!("its fields are: {}", known.join(", "))),
            };
            d.push(diag);
            false
        }
        Lookup::Undecidable { reason, .. } => {
            d.push(Diagnostic::warning(
                "W0901",
                Some(loc),
                format!("`{}` is not checked: {reason}", f.text),
            ));
            true
        }
    }
}

/// A referenced field must be able to hold a string, number or boolean: an object or an
/// array has no place in a URL.
fn check_scalar(
    s: &SchemaRef<'_>,
    f: &FieldUse,
    part: &str,
    loc: Location,
    d: &mut Diagnostics,
) -> bool {
    let scalar = Types::STRING.union(Types::NUMBER).union(Types::BOOLEAN);
    let types = s.types();
    if types.intersects(scalar) {
        return true;
    }
    d.push(
        Diagnostic::error(
            "E0913",
            Some(loc),
            format!(
                "`{}` is {} in part `{part}`'s response; only a string, number or boolean can go in a URL",
                f.text,
                article(types)
            ),
        )
        .related(s.loc(), "declared here"),
    );
    false
}

/// `an object`, `a string or null`, `null`, `of no type`: a schema's types after a verb.
fn article(types: Types) -> String {
    match types.to_string() {
        t if types == Types::NONE => format!("of {t}"),
        t if t == "null" => t,
        t if t.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {t}"),
        t => format!("a {t}"),
    }
}

/// Under `shape: merge`, each part's top-level keys are known and no two parts share one.
fn check_merge(spec: &Spec, raw: &Raw, responses: &[Response<'_>], d: &mut Diagnostics) -> bool {
    let mut ok = true;
    // key → (part index) of the first part that declares it.
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    for (i, rp) in raw.parts.iter().enumerate() {
        let node = match responses.get(i).map(|r| &r.described) {
            Some(Described::Schema(n)) => n.clone(),
            Some(Described::Reported) | None => {
                ok = false;
                continue;
            }
            Some(Described::Nothing(why)) => {
                d.push(
                    Diagnostic::error(
                        "E0910",
                        Some(rp.loc.clone()),
                        format!(
                            "`shape: merge` needs the keys of part `{}`, which {why}",
                            rp.name
                        ),
                    )
                    .hint("give the part `response: <operationId>` or a schema `#/components/schemas/...` that declares its properties")
                    .related(raw.shape_loc.clone(), "merge asked for here"),
                );
                ok = false;
                continue;
            }
        };
        let keys = match SchemaRef::new(spec, node) {
            Ok(s) if !s.types().intersects(Types::OBJECT) => Err(format!(
                "its response is {}, not an object",
                article(s.types())
            )),
            Ok(s) if s.property_names().is_empty() => {
                Err("its response schema declares no properties".to_owned())
            }
            Ok(s) => Ok(s.property_names()),
            Err(e) => Err(e),
        };
        let keys = match keys {
            Ok(k) => k,
            Err(why) => {
                d.push(
                    Diagnostic::error(
                        "E0910",
                        Some(rp.loc.clone()),
                        format!("`shape: merge` cannot merge part `{}`: {why}", rp.name),
                    )
                    .related(raw.shape_loc.clone(), "merge asked for here"),
                );
                ok = false;
                continue;
            }
        };
        for key in keys {
            match owners.get(&key) {
                Some(&first) => {
                    ok = false;
                    d.push(
                        Diagnostic::error(
                            "E0909",
                            Some(rp.loc.clone()),
                            format!(
                                "`shape: merge`: parts `{}` and `{}` both answer with `{key}`",
                                raw.parts[first].name, rp.name
                            ),
                        )
                        .related(raw.parts[first].loc.clone(), "the other part")
                        .hint("use `shape: parts`, which keys each answer by part name, or call one of them through an operation that leaves the key out"),
                    );
                }
                None => {
                    owners.insert(key, i);
                }
            }
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(needs: &[&[usize]]) -> Vec<Vec<usize>> {
        cycles(&needs.iter().map(|n| n.to_vec()).collect::<Vec<_>>())
    }

    #[test]
    fn aggregate_cycles_are_found_once_each() {
        assert!(graph(&[&[], &[0], &[0, 1]]).is_empty());
        assert_eq!(graph(&[&[0]]), vec![vec![0, 0]]);
        assert_eq!(graph(&[&[2], &[0], &[1], &[]]), vec![vec![0, 2, 1, 0]]);
        // Two cycles sharing a part, and a part that leads into a cycle without being in it.
        assert_eq!(
            graph(&[&[1], &[0, 2], &[1], &[2]]),
            vec![vec![0, 1, 0], vec![1, 2, 1]]
        );
        // A long chain does not need a deep stack.
        let chain: Vec<Vec<usize>> = (0..100_000)
            .map(|i| if i == 0 { Vec::new() } else { vec![i - 1] })
            .collect();
        assert!(cycles(&chain).is_empty());
    }

    fn params(names: &[&str]) -> Vec<PathParam> {
        names
            .iter()
            .map(|n| PathParam {
                name: (*n).to_owned(),
                ident: (*n).to_owned(),
                ty: crate::model::ParamType::String,
            })
            .collect()
    }

    #[test]
    fn aggregate_paths_split_into_parameters_fields_and_query() {
        let mut d = Diagnostics::default();
        let loc = Location::value(0, "/x");
        let ps = params(&["petId", "a.b"]);
        let parts = ["pet", "owner"];
        let (path, query, fields) = parse_path(
            "/owners/{pet.owner.id}/x-{petId}.json?pet={petId}&t={pet.tags.0}&z={a.b}",
            &loc,
            &ps,
            &parts,
            1,
            &mut d,
        )
        .unwrap_or_else(|| panic!("{:?}", d.items()));
        assert!(d.items().is_empty());
        assert_eq!(
            path,
            vec![
                PartPiece::Lit("/owners/".into()),
                PartPiece::Field {
                    part: 0,
                    pointer: "/owner/id".into()
                },
                PartPiece::Lit("/x-".into()),
                PartPiece::Param(0),
                PartPiece::Lit(".json".into()),
            ]
        );
        assert_eq!(
            query,
            vec![
                PartPiece::Lit("pet=".into()),
                PartPiece::Param(0),
                PartPiece::Lit("&t=".into()),
                PartPiece::Field {
                    part: 0,
                    pointer: "/tags/0".into()
                },
                PartPiece::Lit("&z=".into()),
                // A parameter whose name has a dot: the exact name wins.
                PartPiece::Param(1),
            ]
        );
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].tokens, ["owner", "id"]);

        let codes = |text: &str| {
            let mut d = Diagnostics::default();
            let r = parse_path(text, &loc, &ps, &parts, 0, &mut d);
            assert!(r.is_none(), "{text} parsed");
            d.items().iter().map(|x| x.code).collect::<Vec<_>>()
        };
        assert_eq!(codes("pets"), ["E0903"]);
        assert_eq!(codes("/a#frag"), ["E0903"]);
        assert_eq!(codes("/a/{petId"), ["E0903"]);
        assert_eq!(codes("/a/}"), ["E0903"]);
        assert_eq!(codes("/a/{}"), ["E0903"]);
        assert_eq!(codes("/a b"), ["E0903"]);
        assert_eq!(codes("/a/{pet..x}"), ["E0903"]);
        assert_eq!(codes("/a/{petid}"), ["E0904"]);
        assert_eq!(codes("/a/{pet}"), ["E0904"]);
        assert_eq!(codes("/a/{pets.id}"), ["E0905"]);
    }
}
