//! Stage 2, `lower`: [`Spec`] → [`Model`], where every check lives.
//!
//! Lowering reads OpenAPI 3.0, 3.1 and Swagger 2.0 documents, the `x-gateway` extensions
//! at document, path-item and operation level (operation over path item over document
//! defaults), and collects every diagnostic before it gives up: a spec with five mistakes
//! gets five errors in one run. It never returns a half-built model.

mod aggregate;
mod cache;
mod example;
mod header;
mod limits;
pub mod names;
pub mod reader;
pub mod schema;
mod security;
mod transform;
mod upstream;
mod validation;
mod version;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use gatewayc_vocab::env;
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::model::{
    Balance, ConsumerStore, Cors, Method, Model, Operation, ParamType, PathParam, PathTemplate,
    Piece, Rewrite, Segment, Upstream,
};
use crate::spec::source::child;
use crate::spec::{Resolved, Spec};
use crate::validate::Validators;
use reader::{Obj, did_you_mean};

/// Choices that come from the command line rather than the spec.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--default-upstream URL`: where operations with no upstream of their own go.
    pub default_upstream: Option<String>,
}

/// The upstream name `--default-upstream` defines.
pub const CLI_UPSTREAM: &str = "default";
/// Upstream response deadline when nothing sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Request body limit when nothing sets one.
pub const DEFAULT_MAX_BODY: u64 = 10 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Swagger2,
    OpenApi3,
}

/// Settings that cascade from the document to path items to operations.
#[derive(Debug, Clone, Default)]
struct Cascade {
    upstream: Option<(String, Location)>,
    timeout: Option<Duration>,
    max_body: Option<u64>,
    /// `multi_segment`: path parameters that take the rest of the path.
    multi_segment: Option<(Vec<String>, Location)>,
    /// The document's `security`, for operations that have none of their own.
    security: Option<security::RawSecurity>,
    /// `rate_limit`.
    rate_limit: Option<(crate::model::RouteLimit, Location)>,
    /// `sunset`, in days since the epoch.
    sunset: Option<i64>,
    /// `deprecation`: when it is deprecated, in days since the epoch.
    deprecation: Option<i64>,
    /// The document's version, when it has one.
    version: Option<version::VersionDecl>,
    /// `aggregate`: an operation's own, never inherited.
    aggregate: Option<aggregate::Raw>,
    /// `transform`, checked against each operation's schemas later.
    transform: Option<transform::Written>,
    /// `health_check`: a route load balancers probe, never counted by limits.
    health_check: Option<bool>,
    /// `retryable`: the upstream's retries apply whatever the method.
    retryable: Option<bool>,
    /// `cache`, and where it is written.
    cache: Option<(crate::model::Cache, Location)>,
    /// `validate`.
    validate: validation::Setting,
}

impl Cascade {
    fn over(&self, base: &Cascade) -> Cascade {
        Cascade {
            upstream: self.upstream.clone().or_else(|| base.upstream.clone()),
            timeout: self.timeout.or(base.timeout),
            max_body: self.max_body.or(base.max_body),
            multi_segment: self
                .multi_segment
                .clone()
                .or_else(|| base.multi_segment.clone()),
            security: self.security.clone().or_else(|| base.security.clone()),
            rate_limit: self.rate_limit.clone().or_else(|| base.rate_limit.clone()),
            sunset: self.sunset.or(base.sunset),
            deprecation: self.deprecation.or(base.deprecation),
            version: self.version.clone().or_else(|| base.version.clone()),
            aggregate: self.aggregate.clone(),
            transform: self.transform.clone().or_else(|| base.transform.clone()),
            health_check: self.health_check.or(base.health_check),
            retryable: self.retryable.or(base.retryable),
            cache: self.cache.clone().or_else(|| base.cache.clone()),
            validate: self.validate.over(base.validate),
        }
    }
}

struct UpstreamDecl {
    upstream: Upstream,
    timeout: Option<Duration>,
    loc: Location,
}

/// An operation before names are made unique and upstreams are checked.
struct Draft {
    op: Operation,
    /// Its `security`, or the document's; `None` when neither has one.
    security: Option<security::RawSecurity>,
    /// Its route limits, with where each is written.
    rate_limits: Vec<(crate::model::RouteLimit, Location)>,
    operation_id: Option<String>,
    loc: Location,
    upstream_loc: Option<Location>,
    /// Whether the operation or its path item sets `timeout`. The timeout used is the first
    /// set of: operation, path item, the upstream's `timeout`, `defaults.timeout`, 30 s; so
    /// without one here, the upstream's replaces what the cascade gave.
    explicit_timeout: bool,
    /// Its `aggregate`, as written; resolved by [`aggregate::finish`].
    aggregate: Option<aggregate::Raw>,
    /// Where its `transform` is written.
    transform_loc: Option<Location>,
}

/// Lowers the spec; `None` when any error was found (all of them are in `d`).
pub fn lower(spec: &Spec, opts: &Options, d: &mut Diagnostics) -> Option<Model> {
    let mut upstreams: BTreeMap<String, UpstreamDecl> = BTreeMap::new();
    let mut drafts = Vec::new();
    let mut schemes = security::Schemes::default();
    let mut doc_level = DocLevel::default();
    let mut versions = Vec::new();
    let mut unversioned = Vec::new();
    let mut validators = Validators::new(spec);

    for &root in &spec.roots {
        let doc = &spec.docs[root];
        let Some(version) = version(spec, root, doc, d) else {
            continue;
        };
        let mut defaults = Cascade::default();
        if let Some(xg) = doc.get("x-gateway") {
            read_document(
                root,
                xg,
                &mut upstreams,
                &mut defaults,
                &mut doc_level,
                doc.pointer("/info/version").and_then(Value::as_str),
                d,
            );
        }
        if let Some(v) = &mut defaults.version {
            v.index = versions.len();
            versions.push(v.clone());
        } else {
            unversioned.push(root);
        }
        security::read_schemes(
            spec,
            root,
            doc,
            version == Version::Swagger2,
            &mut schemes,
            d,
        );
        let doc_security = doc
            .get("security")
            .and_then(|v| security::read_requirements(root, "/security", v, d));
        if let Some(raw) = &doc_security {
            schemes.check_default(raw, d);
        }
        defaults.security = doc_security;
        if doc_level.name.is_none() {
            // The same rule as an explicit name: a crate name must start with a letter.
            doc_level.name = doc
                .pointer("/info/title")
                .and_then(Value::as_str)
                .map(names::kebab)
                .filter(|n| !n.is_empty())
                .map(|n| {
                    if n.starts_with(|c: char| c.is_ascii_lowercase()) {
                        n
                    } else {
                        format!("api-{n}")
                    }
                });
        }
        let first = drafts.len();
        operations(
            spec,
            root,
            doc,
            version,
            &defaults,
            (&mut drafts, &mut validators),
            d,
        );
        let uncovered: Vec<(String, Location)> = drafts[first..]
            .iter()
            .filter(|dr| dr.security.is_none())
            .map(|dr| {
                (
                    format!("{} {}", dr.op.method.as_str(), dr.op.path.raw),
                    dr.loc.clone(),
                )
            })
            .collect();
        security::warn_uncovered(&uncovered, drafts.len() - first, d);
    }

    let model_versions = version::check_versions(&versions, d);
    if !model_versions.is_empty() {
        for &root in &unversioned {
            d.push(Diagnostic::error(
                "E0705",
                Some(Location::value(root, "")),
                format!(
                    "`{}` has no `x-gateway.version`, but the other spec files choose their version by a header or media type; every file needs one",
                    spec.sources.display(root)
                ),
            ));
        }
    }
    let mut model_schemes = Vec::new();
    for draft in &mut drafts {
        if let Some(raw) = &draft.security {
            draft.op.security =
                schemes.resolve(raw, doc_level.consumers.is_some(), &mut model_schemes, d);
        }
        limits::check_claim_keys(
            &draft.rate_limits,
            &draft.op.security,
            &model_schemes,
            &format!("{} {}", draft.op.method.as_str(), draft.op.path.raw),
            d,
        );
        if let (Some(t), Some(loc)) = (&draft.op.transform, &draft.transform_loc) {
            transform::check_caller(t, &draft.op.security, loc, d);
        }
    }
    // Once every scheme in use is known: a transform on any operation may not write the
    // header of a claim some scheme forwards.
    for draft in &drafts {
        if let (Some(t), Some(loc)) = (&draft.op.transform, &draft.transform_loc) {
            transform::check_claim_headers(t, &model_schemes, loc, d);
        }
    }
    let any_route_limit = drafts.iter().any(|dr| !dr.rate_limits.is_empty());
    let (plans, limits) = limits::finish(
        doc_level.plans.take().map(|(p, _)| p).unwrap_or_default(),
        doc_level.limits.take().map(|(l, _)| l),
        any_route_limit,
        d,
    );

    if let Some(url) = &opts.default_upstream {
        if let Some(decl) = upstreams.get(CLI_UPSTREAM) {
            d.push(Diagnostic::error(
                "E0206",
                Some(decl.loc.clone()),
                format!("`--default-upstream` defines the upstream `{CLI_UPSTREAM}`, which the spec defines too"),
            ));
        } else {
            upstreams.insert(
                CLI_UPSTREAM.to_owned(),
                UpstreamDecl {
                    upstream: Upstream {
                        name: CLI_UPSTREAM.to_owned(),
                        url: Some(url.clone()),
                        targets: Vec::new(),
                        balance: Balance::RoundRobin,
                        resilience: crate::model::Resilience::default(),
                        tls: None,
                    },
                    timeout: None,
                    loc: Location::value(spec.roots.first().copied().unwrap_or(0), ""),
                },
            );
        }
    }

    let generated = validators.finish();
    validation::warn_unsupported(&generated.unsupported, d);
    let validators = if generated.functions.is_empty() {
        String::new()
    } else {
        generated.source(quote::quote! {
            #![doc = " The request validators: one function per schema that an operation's"]
            #![doc = " parameters, body or answers are checked against. Generated by gatewayc; do not edit."]
            #![allow(clippy::all)]
        })
    };
    aggregate::finish(spec, &mut drafts, &upstreams, opts, d);
    let operations = finish_operations(drafts, &upstreams, opts, d);

    if d.has_errors() {
        return None;
    }
    Some(Model {
        name: doc_level
            .name
            .take()
            .unwrap_or_else(|| "gateway".to_owned()),
        sources: spec
            .roots
            .iter()
            .map(|&f| spec.sources.display(f).to_owned())
            .collect(),
        spec_digest: spec_digest(spec),
        upstreams: upstreams
            .into_iter()
            .map(|(k, v)| (k, v.upstream))
            .collect(),
        operations,
        schemes: model_schemes,
        consumers: doc_level.consumers.map(|(c, _)| c),
        cors: doc_level.cors.map(|(c, _)| c),
        plans,
        limits,
        versions: model_versions,
        validators,
    })
}

/// The model of a one-document spec held in memory, for unit tests; panics when the spec
/// has an error.
#[cfg(test)]
pub(crate) fn test_model(yaml: &str) -> Model {
    let mut d = Diagnostics::default();
    let model = lower(&crate::spec::from_yaml(yaml), &Options::default(), &mut d);
    model.unwrap_or_else(|| panic!("the test spec has errors: {:?}", d.items()))
}

/// Document-level settings that exist once per gateway.
#[derive(Debug, Default)]
struct DocLevel {
    /// The gateway's name, from the first file that gives one.
    name: Option<String>,
    consumers: Option<(ConsumerStore, Location)>,
    cors: Option<(Cors, Location)>,
    plans: Option<(Vec<(crate::model::Plan, Location)>, Location)>,
    limits: Option<(limits::LimitsDecl, Location)>,
}

/// Keeps the first definition of a once-per-gateway setting; a different one in a later
/// spec file is an error.
fn once<T: PartialEq>(
    slot: &mut Option<(T, Location)>,
    value: Option<T>,
    loc: Location,
    what: &str,
    d: &mut Diagnostics,
) {
    let Some(value) = value else { return };
    match slot {
        Some((prev, prev_loc)) => {
            if *prev != value {
                d.push(
                    Diagnostic::error(
                        "E0205",
                        Some(loc),
                        format!("`{what}` differs from the one given in an earlier spec file"),
                    )
                    .related(prev_loc.clone(), "first given here"),
                );
            }
        }
        None => *slot = Some((value, loc)),
    }
}

fn version(spec: &Spec, file: usize, doc: &Value, d: &mut Diagnostics) -> Option<Version> {
    if let Some(v) = doc.get("openapi") {
        let text = v.as_str().unwrap_or_default();
        if text.starts_with("3.0") || text.starts_with("3.1") {
            return Some(Version::OpenApi3);
        }
        d.push(
            Diagnostic::error(
                "E0110",
                Some(Location::value(file, "/openapi")),
                format!(
                    "unsupported OpenAPI version `{}`",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                ),
            )
            .hint("gatewayc reads OpenAPI 3.0.x, 3.1.x and Swagger 2.0"),
        );
        return None;
    }
    if let Some(v) = doc.get("swagger") {
        if v.as_str() == Some("2.0") {
            return Some(Version::Swagger2);
        }
        d.push(Diagnostic::error(
            "E0110",
            Some(Location::value(file, "/swagger")),
            "unsupported Swagger version; only `2.0` exists",
        ));
        return None;
    }
    if doc.is_object() {
        d.push(
            Diagnostic::error(
                "E0110",
                Some(Location::value(file, "")),
                format!(
                    "`{}` is not an OpenAPI document: it has no `openapi` or `swagger` field",
                    spec.sources.display(file)
                ),
            )
            .hint("add `openapi: 3.1.0` (or the version the document follows) at the top"),
        );
    } else {
        d.push(Diagnostic::error(
            "E0110",
            Some(Location::value(file, "")),
            "an OpenAPI document must be an object",
        ));
    }
    None
}

fn read_document(
    file: usize,
    xg: &Value,

    upstreams: &mut BTreeMap<String, UpstreamDecl>,
    defaults: &mut Cascade,
    doc_level: &mut DocLevel,
    info_version: Option<&str>,
    d: &mut Diagnostics,
) {
    let Some(mut obj) = Obj::new(file, "/x-gateway".into(), xg, "the document's x-gateway", d)
    else {
        return;
    };
    if let Some(n) = obj.string("name", d) {
        let valid = n.starts_with(|c: char| c.is_ascii_lowercase())
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            d.push(
                Diagnostic::error(
                    "E0204",
                    Some(obj.loc("name")),
                    format!("gateway name `{n}` must be lower-case letters, digits and dashes"),
                )
                .hint(format!("try `{}`", names::kebab(&n))),
            );
        } else if doc_level.name.as_ref().is_some_and(|prev| prev != &n) {
            d.push(Diagnostic::error(
                "E0205",
                Some(obj.loc("name")),
                format!("gateway name `{n}` differs from the name given in an earlier spec file"),
            ));
        } else {
            doc_level.name = Some(n);
        }
    }
    let mut own = Vec::new();
    for (up_name, ptr, value) in obj.entries("upstreams", d) {
        let loc = Location::key(file, ptr.clone());
        if !up_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            || up_name.is_empty()
        {
            d.push(Diagnostic::error(
                "E0207",
                Some(loc.clone()),
                format!("upstream name `{up_name}` must be letters, digits, `-` and `_`"),
            ));
        }
        let Some(read) = upstream::read(file, ptr, value, d) else {
            continue;
        };
        if let Some(prev) = upstreams.get(&up_name) {
            d.push(
                Diagnostic::error(
                    "E0208",
                    Some(loc.clone()),
                    format!("upstream `{up_name}` is defined twice"),
                )
                .related(prev.loc.clone(), "first defined here"),
            );
            continue;
        }
        own.push((up_name.clone(), loc.clone()));
        upstreams.insert(
            up_name.clone(),
            UpstreamDecl {
                upstream: Upstream {
                    name: up_name,
                    url: read.url,
                    targets: read.targets,
                    balance: read.balance,
                    resilience: read.resilience,
                    tls: read.tls,
                },
                timeout: read.timeout,
                loc,
            },
        );
    }
    // A document with a single upstream needs no `defaults.upstream`.
    if let [(only, loc)] = own.as_slice() {
        defaults.upstream = Some((only.clone(), loc.clone()));
    }
    if let Some(mut def) = obj.object("defaults", "x-gateway.defaults", d) {
        if let Some(u) = def.string("upstream", d) {
            defaults.upstream = Some((u, def.loc("upstream")));
        }
        defaults.timeout = def.duration("timeout", d);
        defaults.max_body = def.size("max_body", d);
        def.finish(d);
    }
    let consumers_loc = obj.loc("consumers");
    let consumers = security::read_consumers(&mut obj, d);
    once(
        &mut doc_level.consumers,
        consumers,
        consumers_loc,
        "consumers",
        d,
    );
    let cors_loc = obj.loc("cors");
    let cors = security::read_cors(&mut obj, d);
    once(&mut doc_level.cors, cors, cors_loc, "cors", d);
    let has_plans = obj.has("plans");
    let plans_loc = obj.loc("plans");
    let plans = limits::read_plans(&mut obj, d);
    if has_plans {
        match &doc_level.plans {
            Some((prev, prev_loc)) => {
                let same = prev.len() == plans.len()
                    && prev.iter().zip(&plans).all(|((a, _), (b, _))| a == b);
                if !same {
                    d.push(
                        Diagnostic::error(
                            "E0205",
                            Some(plans_loc),
                            "`plans` differs from the one given in an earlier spec file",
                        )
                        .related(prev_loc.clone(), "first given here"),
                    );
                }
            }
            None => doc_level.plans = Some((plans, plans_loc)),
        }
    }
    let limits_loc = obj.loc("limits");
    let limits_decl = limits::read_limits(&mut obj, d);
    once(&mut doc_level.limits, limits_decl, limits_loc, "limits", d);
    if let Some((v, sunset)) = version::read_version(&mut obj, info_version, d) {
        defaults.version = Some(v);
        defaults.sunset = sunset;
    }
    if let Some(s) = version::read_sunset(&mut obj, d) {
        defaults.sunset = Some(s);
    }
    defaults.deprecation = version::read_deprecation_date(&mut obj, d);
    defaults.validate = validation::read(&mut obj, d).unwrap_or_default();
    obj.finish(d);
}

/// An upstream URL: `${VAR}` references are fine; a literal URL must parse.
fn check_url_template(url: &str, loc: Location, d: &mut Diagnostics) {
    let mut literal_url = !url.is_empty();
    for piece in env::pieces(url) {
        match piece {
            env::Piece::Text(_) => {}
            env::Piece::Unclosed(_) => {
                d.push(Diagnostic::error(
                    "E0209",
                    Some(loc),
                    format!("unclosed `${{` in upstream URL `{url}`"),
                ));
                return;
            }
            env::Piece::Ref { raw, name, .. } => {
                literal_url = false;
                if !env::is_var_name(name) {
                    d.push(
                        Diagnostic::error(
                            "E0209",
                            Some(loc.clone()),
                            format!("`{raw}` in upstream URL `{url}` is not a variable reference"),
                        )
                        .hint("write `${NAME}` or `${NAME:-default}`"),
                    );
                }
            }
        }
    }
    if literal_url && !url.starts_with("http://") && !url.starts_with("https://") {
        d.push(Diagnostic::error(
            "E0209",
            Some(loc),
            format!("upstream URL `{url}` must start with http:// or https://"),
        ));
    }
}

fn read_cascade(
    file: usize,
    pointer: String,
    xg: &Value,
    what: &'static str,
    d: &mut Diagnostics,
) -> (Cascade, Option<String>, Option<Location>) {
    let mut c = Cascade::default();
    let Some(mut obj) = Obj::new(file, pointer, xg, what, d) else {
        return (c, None, None);
    };
    if let Some(u) = obj.string("upstream", d) {
        c.upstream = Some((u, obj.loc("upstream")));
    }
    let rewrite = obj.string("path", d);
    let rewrite_loc = rewrite.as_ref().map(|_| obj.loc("path"));
    c.timeout = obj.duration("timeout", d);
    c.max_body = obj.size("max_body", d);
    if let Some(v) = obj.raw("multi_segment") {
        let names = match v {
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect(),
            Value::String(one) => Some(vec![one.clone()]),
            _ => None,
        };
        match names {
            Some(names) => c.multi_segment = Some((names, obj.loc("multi_segment"))),
            None => d.push(reader::type_error(
                obj.loc("multi_segment"),
                "multi_segment",
                "a list of path parameter names",
                v,
            )),
        }
    }
    c.rate_limit = limits::read_rate_limit(&mut obj, d);
    c.sunset = version::read_sunset(&mut obj, d);
    c.deprecation = version::read_deprecation_date(&mut obj, d);
    c.aggregate = aggregate::read(&mut obj, what.starts_with("an operation"), d);
    c.transform = transform::read(&mut obj, d);
    c.health_check = obj.boolean("health_check", d);
    c.cache = cache::read(&mut obj, d);
    c.validate = validation::read(&mut obj, d).unwrap_or_default();
    c.retryable = obj.boolean("retryable", d);
    obj.finish(d);
    (c, rewrite, rewrite_loc)
}

/// The SHA-256 (hex) of every file the specs were read from, names and contents, in the
/// order they were read: `gateway_build_info` says which specs a running gateway came from.
fn spec_digest(spec: &Spec) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for i in 0..spec.sources.len() {
        let f = spec.sources.file(i);
        h.update(f.display.as_bytes());
        h.update([0]);
        h.update(f.text.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3986 `pchar` (with `%` for text that is already percent-encoded).
fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%".contains(&b)
}

fn operations(
    spec: &Spec,
    file: usize,
    doc: &Value,
    version: Version,
    defaults: &Cascade,
    (out, validators): (&mut Vec<Draft>, &mut Validators<'_, Spec>),
    d: &mut Diagnostics,
) {
    let dialect = validation::dialect(doc);
    let mut unchecked = validation::Unchecked::default();
    let Some(paths) = doc.get("paths") else {
        let what = if doc.get("webhooks").is_some() {
            "has webhooks but no `paths`"
        } else {
            "has no `paths`"
        };
        d.push(Diagnostic::warning(
            "W0101",
            Some(Location::value(file, "")),
            format!(
                "`{}` {what}: it adds no routes to the gateway",
                spec.sources.display(file)
            ),
        ));
        return;
    };
    let Some(paths) = paths.as_object() else {
        d.push(reader::type_error(
            Location::value(file, "/paths"),
            "paths",
            "an object",
            paths,
        ));
        return;
    };
    for (template, item) in paths {
        let item_ptr = child("/paths", template);
        let Some(item) = spec.deref(file, &item_ptr, item) else {
            remote_ref(item, file, &item_ptr, "path item", d);
            continue;
        };
        let Some(item_map) = item.value.as_object() else {
            d.push(reader::type_error(
                item.loc(),
                template,
                "a path item object",
                item.value,
            ));
            continue;
        };
        let Some(path) = parse_template(template, Location::key(file, item_ptr.clone()), d) else {
            continue;
        };
        let (item_cascade, item_rewrite, item_rewrite_loc) = match item_map.get("x-gateway") {
            Some(xg) => read_cascade(
                item.file,
                child(&item.pointer, "x-gateway"),
                xg,
                "a path item's x-gateway",
                d,
            ),
            None => (Cascade::default(), None, None),
        };
        // An upstream's `timeout` ranks between the path item's and the document's
        // `defaults.timeout`, so whether the path item sets one itself is kept before the
        // defaults are folded in (see `finish_operations`).
        let item_timeout = item_cascade.timeout;
        let item_cascade = item_cascade.over(defaults);
        let item_params = params_of(spec, &item, version, d);
        for method in Method::ALL {
            let Some(op) = item_map.get(method.key()) else {
                continue;
            };
            let op_ptr = child(&item.pointer, method.key());
            let Some(op) = spec.deref(item.file, &op_ptr, op) else {
                remote_ref(op, item.file, &op_ptr, "operation", d);
                continue;
            };
            if !op.value.is_object() {
                d.push(reader::type_error(
                    op.loc(),
                    method.key(),
                    "an operation object",
                    op.value,
                ));
                continue;
            }
            let (op_cascade, op_rewrite, op_rewrite_loc) = match op.value.get("x-gateway") {
                Some(xg) => read_cascade(
                    op.file,
                    child(&op.pointer, "x-gateway"),
                    xg,
                    "an operation's x-gateway",
                    d,
                ),
                None => (Cascade::default(), None, None),
            };
            let cascade = op_cascade.over(&item_cascade);
            let explicit_timeout = op_cascade.timeout.or(item_timeout).is_some();
            // Operation parameters override path-item parameters with the same name.
            let mut declared = item_params.clone();
            for p in params_of(spec, &op, version, d) {
                declared.retain(|q: &DeclaredParam| q.name != p.name);
                declared.push(p);
            }
            let mut path = path.clone();
            let mut params = path_params(&path, &declared, &op, d);
            multi_segment(
                &mut path,
                &mut params,
                &declared,
                cascade.multi_segment.as_ref(),
                d,
            );
            let (rewrite_text, rewrite_loc) = match (op_rewrite, op_rewrite_loc) {
                (Some(r), l) => (Some(r), l),
                _ => (item_rewrite.clone(), item_rewrite_loc.clone()),
            };
            let rewrite = match rewrite_text {
                Some(text) => {
                    parse_rewrite(&text, &params, rewrite_loc.unwrap_or_else(|| op.loc()), d)
                }
                None => Some(default_rewrite(&path, &params)),
            };
            let Some(rewrite) = rewrite else { continue };
            // A version's prefix selects it; the upstream path is the template without it.
            let api_version = cascade.version.as_ref();
            if let Some(crate::model::VersionSelector::Prefix(prefix)) =
                api_version.map(|v| &v.selector)
            {
                version::prefix_template(prefix, &mut path);
            }
            let link = op
                .value
                .pointer("/externalDocs/url")
                .or_else(|| doc.pointer("/externalDocs/url"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let deprecation = version::deprecation(
                op.value.get("deprecated") == Some(&Value::Bool(true)),
                api_version.is_some_and(|v| v.deprecated),
                cascade.deprecation,
                cascade.sunset,
                link,
            );
            let operation_id = op
                .value
                .get("operationId")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let example = example::pick(spec, &op, version == Version::Swagger2);
            let label = format!("{} {}", method.as_str(), path.raw);
            let (transform, published_response_schema) = match &cascade.transform {
                Some(w) => {
                    let (t, published) = transform::lower(spec, w, &item, &op, &label, d);
                    (Some(t), published)
                }
                None => (None, None),
            };
            let security = match op.value.get("security") {
                Some(v) => {
                    security::read_requirements(op.file, &child(&op.pointer, "security"), v, d)
                }
                None => cascade.security.clone(),
            };
            let validation = validation::collect(
                &validation::Source {
                    spec,
                    doc,
                    item: &item,
                    op: &op,
                    swagger2: version == Version::Swagger2,
                    dialect,
                    name: operation_id.as_deref().unwrap_or(&label),
                },
                cascade.validate,
                (&mut *validators, &mut unchecked),
                d,
            );
            out.push(Draft {
                rate_limits: cascade.rate_limit.clone().into_iter().collect(),
                security,
                op: Operation {
                    id: String::new(),
                    variant: String::new(),
                    method,
                    path: path.clone(),
                    params,
                    upstream: cascade
                        .upstream
                        .as_ref()
                        .map(|(u, _)| u.clone())
                        .unwrap_or_default(),
                    rewrite,
                    timeout: cascade.timeout.unwrap_or(DEFAULT_TIMEOUT),
                    max_body: cascade.max_body.unwrap_or(DEFAULT_MAX_BODY),
                    example,
                    security: Vec::new(),
                    rate_limits: cascade.rate_limit.iter().map(|(l, _)| l.clone()).collect(),
                    deprecation,
                    version: api_version
                        .filter(|v| !matches!(v.selector, crate::model::VersionSelector::Prefix(_)))
                        .map(|v| v.index),
                    transform,
                    published_response_schema,
                    source: format!("{}#{}", spec.sources.display(op.file), op.pointer),
                    aggregate: None,
                    health_check: cascade.health_check.unwrap_or(false),
                    retryable: cascade.retryable.unwrap_or(false),
                    cache: match &cascade.cache {
                        Some((c, _)) if method == Method::Get => Some(c.clone()),
                        // Written on this operation itself: an error; on its path item:
                        // meant for the item's GET.
                        Some((_, loc)) if loc.pointer.starts_with(&format!("{}/", op.pointer)) => {
                            d.push(cache::not_get(method.as_str(), loc.clone()));
                            None
                        }
                        _ => None,
                    },
                    validation,
                },
                operation_id,
                loc: Location::key(op.file, op.pointer.clone()),
                upstream_loc: cascade.upstream.map(|(_, l)| l),
                explicit_timeout,
                aggregate: cascade.aggregate,
                transform_loc: cascade.transform.as_ref().map(|w| w.loc.clone()),
            });
        }
    }
    unchecked.warn(d);
}

/// A path item or operation given by a `$ref` to a URL cannot be read offline: an error,
/// since the gateway needs its content. (Local references that point at nothing were
/// reported when the spec was loaded.)
fn remote_ref(value: &Value, file: usize, pointer: &str, what: &str, d: &mut Diagnostics) {
    if let Some(r) = value.get("$ref").and_then(Value::as_str)
        && r.split('#').next().is_some_and(|f| f.contains("://"))
    {
        d.push(
            Diagnostic::error(
                "E0105",
                Some(Location::value(file, child(pointer, "$ref"))),
                format!(
                    "this {what} is defined by `$ref: {r}`, which gatewayc cannot read offline"
                ),
            )
            .hint("download the document next to the spec and refer to it by relative path"),
        );
    }
}

#[derive(Debug, Clone)]
struct DeclaredParam {
    name: String,
    ty: ParamType,
    loc: Location,
    /// GitHub's `x-multi-segment: true`: the value may contain `/`.
    multi: bool,
}

/// Turns the template's last segment into a rest-of-path segment when its parameter is
/// declared multi-segment (`x-gateway.multi_segment`, or `x-multi-segment: true` on the
/// parameter as GitHub writes it). Such a parameter must be the whole last segment.
fn multi_segment(
    path: &mut PathTemplate,
    params: &mut [PathParam],
    declared: &[DeclaredParam],
    option: Option<&(Vec<String>, Location)>,
    d: &mut Diagnostics,
) {
    // (name, where it was asked for, asked for by x-gateway rather than a vendor hint)
    let mut wanted: Vec<(String, Location, bool)> = declared
        .iter()
        .filter(|p| p.multi && params.iter().any(|q| q.name == p.name))
        .map(|p| (p.name.clone(), p.loc.clone(), false))
        .collect();
    if let Some((names, loc)) = option {
        for name in names {
            if params.iter().any(|p| &p.name == name) {
                wanted.push((name.clone(), loc.clone(), true));
            } else {
                let known: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
                let mut diag = Diagnostic::error(
                    "E0325",
                    Some(loc.clone()),
                    format!(
                        "`multi_segment` names `{name}`, which is not a path parameter of `{}`",
                        path.raw
                    ),
                );
                if let Some(best) = did_you_mean(name, &known) {
                    diag = diag.hint(format!("did you mean `{best}`?"));
                }
                d.push(diag);
            }
        }
    }
    for (name, loc, explicit) in wanted {
        let last = path.segments.len() - 1;
        let whole_last = matches!(path.segments.last(), Some(Segment::Pattern(p)) if p.len() == 1 && p[0] == Piece::Param(name.clone()));
        if matches!(path.segments.last(), Some(Segment::Rest(n)) if *n == name) {
            continue;
        }
        if !whole_last && !explicit {
            d.push(
                Diagnostic::warning(
                    "W0204",
                    Some(loc),
                    format!("`x-multi-segment` on `{name}` is not applied: it is not the last segment of `{}`, so it matches one segment", path.raw),
                )
                .hint("gatewayc takes the rest of the path only for a trailing parameter"),
            );
            continue;
        }
        if !whole_last {
            d.push(
                Diagnostic::error(
                    "E0313",
                    Some(loc),
                    format!(
                        "multi-segment parameter `{name}` must be the whole last segment of `{}`",
                        path.raw
                    ),
                )
                .hint("only a trailing `{name}` can take the rest of the path"),
            );
            continue;
        }
        path.segments[last] = Segment::Rest(name.clone());
        if let Some(p) = params.iter_mut().find(|p| p.name == name) {
            p.ty = ParamType::Path;
        }
    }
}

/// The `in: path` parameters of a path item or operation.
fn params_of(
    spec: &Spec,
    node: &Resolved<'_>,
    version: Version,
    d: &mut Diagnostics,
) -> Vec<DeclaredParam> {
    let Some(list) = node.value.get("parameters") else {
        return Vec::new();
    };
    let list_ptr = child(&node.pointer, "parameters");
    let Some(items) = list.as_array() else {
        d.push(reader::type_error(
            Location::value(node.file, list_ptr),
            "parameters",
            "an array",
            list,
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, p) in items.iter().enumerate() {
        let Some(p) = spec.deref(node.file, &child(&list_ptr, &i.to_string()), p) else {
            continue;
        };
        if p.value.get("in").and_then(Value::as_str) != Some("path") {
            continue;
        }
        let Some(name) = p.value.get("name").and_then(Value::as_str) else {
            d.push(Diagnostic::error(
                "E0302",
                Some(p.loc()),
                "a parameter has no `name`",
            ));
            continue;
        };
        let ty = match version {
            Version::Swagger2 => Some(param_type(p.value)),
            Version::OpenApi3 => p.value.get("schema").map(|s| {
                let ptr = child(&p.pointer, "schema");
                spec.deref(p.file, &ptr, s)
                    .map_or(ParamType::String, |s| param_type(s.value))
            }),
        };
        let multi = p.value.get("x-multi-segment").and_then(Value::as_bool) == Some(true);
        out.push(DeclaredParam {
            multi,
            name: name.to_owned(),
            ty: ty.unwrap_or(ParamType::String),
            loc: p.loc(),
        });
    }
    out
}

/// The parameter type a schema (or a Swagger 2.0 parameter) describes.
fn param_type(schema: &Value) -> ParamType {
    let ty = match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        // OpenAPI 3.1: `type: [integer, "null"]`; null never arrives in a path.
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    };
    let format = schema.get("format").and_then(Value::as_str);
    match ty {
        Some("integer") if format == Some("int32") => ParamType::Int32,
        Some("integer") => ParamType::Int64,
        Some("number") => ParamType::Number,
        Some("boolean") => ParamType::Boolean,
        Some("string") | None => {
            let values: Option<Vec<String>> =
                schema.get("enum").and_then(Value::as_array).map(|e| {
                    e.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                });
            match values {
                Some(v) if !v.is_empty() => ParamType::Enum(v),
                _ if format == Some("uuid") => ParamType::Uuid,
                _ => ParamType::String,
            }
        }
        Some(_) => ParamType::String,
    }
}

/// Splits a path template into segments and checks its braces.
/// A literal path segment as it travels in a URL: every byte that may not appear raw in a
/// path segment (RFC 3986 `pchar`) percent-encoded, uppercase hex; `%` followed by two
/// hex digits is kept as an escape already made.
fn wire_form(seg: &str) -> String {
    let bytes = seg.as_bytes();
    let mut out = String::with_capacity(seg.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escaped = b == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) || escaped {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
        i += 1;
    }
    out
}

fn parse_template(raw: &str, loc: Location, d: &mut Diagnostics) -> Option<PathTemplate> {
    let mut text = raw;
    if let Some(i) = text.find(['#', '?']) {
        d.push(
            Diagnostic::warning(
                "W0201",
                Some(loc.clone()),
                format!(
                    "path `{raw}` contains `{}`; the part from there on is ignored",
                    &text[i..i + 1]
                ),
            )
            .hint(
                "a path template holds only the path; query and fragment are not part of routing",
            ),
        );
        text = &text[..i];
    }
    let Some(body) = text.strip_prefix('/') else {
        d.push(Diagnostic::error(
            "E0310",
            Some(loc),
            format!("path `{raw}` must start with `/`"),
        ));
        return None;
    };
    let mut segments = Vec::new();
    let mut names = HashSet::new();
    let mut repeated = HashSet::new();
    for seg in body.split('/') {
        match parse_pattern(seg) {
            Ok(pieces) => {
                for p in &pieces {
                    if let Piece::Param(n) = p
                        && !names.insert(n.clone())
                        && repeated.insert(n.clone())
                    {
                        d.push(
                            Diagnostic::warning(
                                "W0206",
                                Some(loc.clone()),
                                format!("path `{raw}` uses the parameter `{n}` more than once; a request whose values for it differ is answered 400"),
                            )
                            .hint("the gateway checks every occurrence and passes the first to policies and transforms, so none of them can read one value while the upstream acts on another"),
                        );
                    }
                }
                segments.push(if pieces.iter().all(|p| matches!(p, Piece::Lit(_))) {
                    let wire = wire_form(seg);
                    if wire != seg {
                        d.push(
                            Diagnostic::warning(
                                "W0205",
                                Some(loc.clone()),
                                format!(
                                    "path `{raw}`: the segment `{seg}` holds characters a client must percent-encode; requests for it arrive as `{wire}`, and that is what is matched and sent upstream"
                                ),
                            )
                            .hint("if the segment is a placeholder, write it as a `{parameter}`"),
                        );
                    }
                    Segment::Literal(wire)
                } else {
                    Segment::Pattern(pieces)
                });
            }
            Err(why) => {
                let mut diag =
                    Diagnostic::error("E0312", Some(loc), format!("path `{raw}`: {why}"));
                if why.starts_with(ADJACENT) {
                    diag = diag.hint(
                        "put literal text between the parameters, as in `{id}.{format}`, or declare one operation per fixed ending (`/files/{id}.json`, `/files/{id}.xml`)",
                    );
                }
                d.push(diag);
                return None;
            }
        }
    }
    Some(PathTemplate {
        raw: text.to_owned(),
        segments,
    })
}

/// Splits one segment into literal text and `{name}` parameters.
/// How [`parse_pattern`] starts its message for `{a}{b}`.
const ADJACENT: &str = "two parameters with nothing between them";

fn parse_pattern(seg: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = seg;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                pieces.push(Piece::Lit(rest.to_owned()));
                break;
            }
            Some(i) if rest.as_bytes()[i] == b'}' => {
                return Err(format!("unmatched `}}` in segment `{seg}`"));
            }
            Some(i) => {
                if i > 0 {
                    pieces.push(Piece::Lit(rest[..i].to_owned()));
                }
                let after = &rest[i + 1..];
                let Some(end) = after.find('}') else {
                    return Err(format!("unclosed `{{` in segment `{seg}`"));
                };
                let name = &after[..end];
                if name.is_empty() || name.contains('{') {
                    return Err(format!("empty or nested parameter in segment `{seg}`"));
                }
                if matches!(pieces.last(), Some(Piece::Param(_))) {
                    return Err(format!(
                        "{ADJACENT} in segment `{seg}` cannot be told apart"
                    ));
                }
                pieces.push(Piece::Param(name.to_owned()));
                rest = &after[end + 1..];
            }
        }
    }
    if pieces.is_empty() {
        pieces.push(Piece::Lit(String::new()));
    }
    Ok(pieces)
}

/// The typed path parameters of an operation, in template order.
fn path_params(
    path: &PathTemplate,
    declared: &[DeclaredParam],
    op: &Resolved<'_>,
    d: &mut Diagnostics,
) -> Vec<PathParam> {
    let mut out = Vec::new();
    let mut idents = HashSet::new();
    for seg in &path.segments {
        let Segment::Pattern(pieces) = seg else {
            continue;
        };
        for piece in pieces {
            let Piece::Param(name) = piece else { continue };
            // A parameter the template repeats (W0206) is one parameter; the router checks
            // that its occurrences agree.
            if out.iter().any(|q: &PathParam| &q.name == name) {
                continue;
            }
            let ty = match declared.iter().find(|p| &p.name == name) {
                Some(p) => p.ty.clone(),
                None => {
                    d.push(
                        Diagnostic::warning("W0202", Some(Location::key(op.file, op.pointer.clone())), format!("path parameter `{name}` of `{}` is not declared; it is treated as a string", path.raw))
                            .hint(format!("declare it: `- {{ name: {name}, in: path, required: true, schema: {{ type: string }} }}`")),
                    );
                    ParamType::String
                }
            };
            let ident = names::unique(names::snake(name), &mut idents, "_");
            out.push(PathParam {
                name: name.clone(),
                ident,
                ty,
            });
        }
    }
    for p in declared {
        if !out.iter().any(|q| q.name == p.name) {
            d.push(Diagnostic::warning(
                "W0203",
                Some(p.loc.clone()),
                format!(
                    "`{}` is declared `in: path` but `{}` has no `{{{}}}`",
                    p.name, path.raw, p.name
                ),
            ));
        }
    }
    out
}

fn default_rewrite(path: &PathTemplate, params: &[PathParam]) -> Vec<Rewrite> {
    let mut out = Vec::new();
    for seg in &path.segments {
        out.push(Rewrite::Lit("/".to_owned()));
        match seg {
            Segment::Literal(l) => out.push(Rewrite::Lit(l.clone())),
            Segment::Rest(n) => out.push(Rewrite::Param(
                params.iter().position(|q| &q.name == n).unwrap_or(0),
            )),
            Segment::Pattern(pieces) => {
                for p in pieces {
                    out.push(match p {
                        Piece::Lit(l) => Rewrite::Lit(l.clone()),
                        Piece::Param(n) => {
                            Rewrite::Param(params.iter().position(|q| &q.name == n).unwrap_or(0))
                        }
                    });
                }
            }
        }
    }
    merge_lits(out)
}

fn merge_lits(parts: Vec<Rewrite>) -> Vec<Rewrite> {
    let mut out: Vec<Rewrite> = Vec::new();
    for p in parts {
        match (out.last_mut(), p) {
            (Some(Rewrite::Lit(prev)), Rewrite::Lit(l)) => prev.push_str(&l),
            (_, Rewrite::Lit(l)) if l.is_empty() => {}
            (_, p) => out.push(p),
        }
    }
    out
}

/// Parses an `x-gateway.path` rewrite such as `/internal/pets/{petId}`.
fn parse_rewrite(
    text: &str,
    params: &[PathParam],
    loc: Location,
    d: &mut Diagnostics,
) -> Option<Vec<Rewrite>> {
    if !text.starts_with('/') {
        d.push(Diagnostic::error(
            "E0320",
            Some(loc),
            format!("rewrite `{text}` must start with `/`"),
        ));
        return None;
    }
    if text.contains(['?', '#']) {
        d.push(Diagnostic::error("E0321", Some(loc), format!("rewrite `{text}` may hold only a path; the client's query string is passed on as sent")));
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for seg in text.split('/') {
        out.push(Rewrite::Lit("/".to_owned()));
        let pieces = match parse_pattern(seg) {
            Ok(p) => p,
            Err(why) => {
                d.push(Diagnostic::error(
                    "E0322",
                    Some(loc.clone()),
                    format!("rewrite `{text}`: {why}"),
                ));
                return None;
            }
        };
        for piece in pieces {
            match piece {
                Piece::Lit(l) => {
                    if !l.bytes().all(is_pchar) {
                        d.push(Diagnostic::error("E0323", Some(loc.clone()), format!("rewrite `{text}` contains characters that are not allowed in a URL path")));
                        ok = false;
                    }
                    out.push(Rewrite::Lit(l));
                }
                Piece::Param(n) => match params.iter().position(|p| p.name == n) {
                    Some(i) => out.push(Rewrite::Param(i)),
                    None => {
                        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
                        let mut diag = Diagnostic::error(
                            "E0324",
                            Some(loc.clone()),
                            format!(
                                "rewrite `{text}` uses `{{{n}}}`, which is not a path parameter of this operation"
                            ),
                        );
                        diag = match did_you_mean(&n, &names) {
                            Some(best) => diag.hint(format!("did you mean `{{{best}}}`?")),
                            None if names.is_empty() => {
                                diag.hint("this operation has no path parameters")
                            }
                            None => {
                                diag.hint(format!("its path parameters are: {}", names.join(", ")))
                            }
                        };
                        d.push(diag);
                        ok = false;
                    }
                },
            }
        }
    }
    // `split` yields an empty first segment for the leading `/`; drop that extra slash.
    out.remove(0);
    ok.then(|| merge_lits(out))
}

/// Assigns unique ids and identifiers, resolves upstreams, and sorts operations.
fn finish_operations(
    mut drafts: Vec<Draft>,
    upstreams: &BTreeMap<String, UpstreamDecl>,
    opts: &Options,
    d: &mut Diagnostics,
) -> Vec<Operation> {
    drafts.sort_by(|a, b| (&a.op.path.raw, a.op.method).cmp(&(&b.op.path.raw, b.op.method)));
    // First come, first served for operationIds, in the order of path templates.
    let mut first_at: HashMap<String, Location> = HashMap::new();
    let mut ids = HashSet::new();
    let mut variants = HashSet::new();
    let names: Vec<&str> = upstreams.keys().map(String::as_str).collect();
    for draft in &mut drafts {
        let id = match &draft.operation_id {
            Some(id) if !id.is_empty() => {
                if let Some(first) = first_at.get(id) {
                    let new = names::unique(id.clone(), &mut ids, "_");
                    d.push(
                        Diagnostic::warning(
                            "W0301",
                            Some(Location::value(
                                draft.loc.file,
                                child(&draft.loc.pointer, "operationId"),
                            )),
                            format!(
                                "operationId `{id}` is used twice; this operation is named `{new}`"
                            ),
                        )
                        .related(first.clone(), "first used here"),
                    );
                    new
                } else {
                    first_at.insert(
                        id.clone(),
                        Location::value(draft.loc.file, child(&draft.loc.pointer, "operationId")),
                    );
                    names::unique(id.clone(), &mut ids, "_")
                }
            }
            _ => {
                let generated = names::unique(
                    format!(
                        "{}{}",
                        draft.op.method.key(),
                        names::pascal(&draft.op.path.raw)
                    ),
                    &mut ids,
                    "_",
                );
                d.push(Diagnostic::warning(
                    "W0302",
                    Some(draft.loc.clone()),
                    format!(
                        "operation `{} {}` has no operationId; it is named `{generated}`",
                        draft.op.method.as_str(),
                        draft.op.path.raw
                    ),
                ));
                generated
            }
        };
        draft.op.variant = names::unique(names::pascal(&id), &mut variants, "");
        draft.op.id = id;

        // An aggregate's parts name their upstreams; `aggregate::finish` checked them.
        if draft.aggregate.is_some() {
            continue;
        }
        if draft.op.upstream.is_empty() {
            if opts.default_upstream.is_some() {
                draft.op.upstream = CLI_UPSTREAM.to_owned();
            } else {
                d.push(
                    Diagnostic::error("E0301", Some(draft.loc.clone()), format!("operation `{}` reaches no upstream", draft.op.id))
                        .hint("set `x-gateway.defaults.upstream` in the document, `x-gateway.upstream` on the operation, or pass `--default-upstream URL`"),
                );
                continue;
            }
        }
        match upstreams.get(&draft.op.upstream) {
            Some(decl) => {
                if !draft.explicit_timeout
                    && let Some(t) = decl.timeout
                {
                    draft.op.timeout = t;
                }
            }
            None => {
                let mut diag = Diagnostic::error(
                    "E0303",
                    draft
                        .upstream_loc
                        .clone()
                        .or_else(|| Some(draft.loc.clone())),
                    format!(
                        "upstream `{}` is not defined in `x-gateway.upstreams`",
                        draft.op.upstream
                    ),
                );
                diag = match did_you_mean(&draft.op.upstream, &names) {
                    Some(best) => diag.hint(format!("did you mean `{best}`?")),
                    None if names.is_empty() => diag
                        .hint("define it under `x-gateway.upstreams` at the top of the document"),
                    None => diag.hint(format!("defined upstreams: {}", names.join(", "))),
                };
                d.push(diag);
            }
        }
    }
    check_ambiguity(&drafts, d);
    drafts.into_iter().map(|dr| dr.op).collect()
}

/// Two templates of the same shape (the same segments once parameter names are erased)
/// match exactly the same requests: that is fine when their methods differ, and an error
/// naming both when a method appears on both. A literal and a parameter at the same
/// position are not ambiguous: the literal wins (see docs/routing.md).
fn check_ambiguity(drafts: &[Draft], d: &mut Diagnostics) {
    // Versions chosen by a header or media type each have their own routes.
    let mut seen: HashMap<(Vec<String>, Method, Option<usize>), &Draft> = HashMap::new();
    for draft in drafts {
        let shape: Vec<String> = draft.op.path.segments.iter().map(Segment::shape).collect();
        let key = (shape, draft.op.method, draft.op.version);
        match seen.get(&key) {
            Some(first) => d.push(
                Diagnostic::error(
                    "E0401",
                    Some(draft.loc.clone()),
                    format!(
                        "`{} {}` matches exactly the same requests as `{} {}`",
                        draft.op.method.as_str(),
                        draft.op.path.raw,
                        first.op.method.as_str(),
                        first.op.path.raw
                    ),
                )
                .related(first.loc.clone(), "the other operation")
                .hint("the two templates differ only in parameter names; merge them or give one a literal segment"),
            ),
            None => {
                seen.insert(key, draft);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each operation's id and timeout in milliseconds, in path order.
    fn timeouts(yaml: &str) -> Vec<(String, u128)> {
        let mut d = Diagnostics::default();
        let model = lower(&crate::spec::from_yaml(yaml), &Options::default(), &mut d)
            .unwrap_or_else(|| panic!("the test spec has errors: {:?}", d.items()));
        model
            .operations
            .iter()
            .map(|op| (op.id.clone(), op.timeout.as_millis()))
            .collect()
    }

    fn ids_and(pairs: &[(&str, u128)]) -> Vec<(String, u128)> {
        pairs.iter().map(|(id, t)| ((*id).to_owned(), *t)).collect()
    }

    #[test]
    fn timeout_is_operation_then_path_item_then_upstream_then_defaults() {
        let spec = r#"
openapi: 3.0.3
info: { title: t, version: "1" }
x-gateway:
  upstreams:
    pets: { url: "http://127.0.0.1:9", timeout: 5s }
    owners: "http://127.0.0.1:9"
  defaults: { upstream: pets, timeout: 10s }
paths:
  /a:
    get: { operationId: upstreamOverDefaults, responses: { "200": { description: ok } } }
  /b:
    get:
      operationId: operationOverAll
      x-gateway: { timeout: 2s }
      responses: { "200": { description: ok } }
  /c:
    x-gateway: { timeout: 3s }
    get: { operationId: pathItemOverUpstream, responses: { "200": { description: ok } } }
  /d:
    get:
      operationId: defaultsWithoutUpstreamTimeout
      x-gateway: { upstream: owners }
      responses: { "200": { description: ok } }
"#;
        assert_eq!(
            timeouts(spec),
            ids_and(&[
                ("upstreamOverDefaults", 5_000),
                ("operationOverAll", 2_000),
                ("pathItemOverUpstream", 3_000),
                ("defaultsWithoutUpstreamTimeout", 10_000),
            ])
        );
    }

    #[test]
    fn without_defaults_timeout_the_upstream_s_or_30_s() {
        let spec = r#"
openapi: 3.0.3
info: { title: t, version: "1" }
x-gateway:
  upstreams:
    pets: { url: "http://127.0.0.1:9", timeout: 5s }
    owners: "http://127.0.0.1:9"
  defaults: { upstream: pets }
paths:
  /a:
    get: { operationId: upstreamTimeout, responses: { "200": { description: ok } } }
  /b:
    get:
      operationId: noTimeoutAnywhere
      x-gateway: { upstream: owners }
      responses: { "200": { description: ok } }
"#;
        assert_eq!(
            timeouts(spec),
            ids_and(&[("upstreamTimeout", 5_000), ("noTimeoutAnywhere", 30_000)])
        );
    }
}
