//! Security: the schemes of `components.securitySchemes` (Swagger 2.0:
//! `securityDefinitions`) with their `x-gateway` verification settings, the `security`
//! requirements of documents and operations, the consumer key store and CORS.
//!
//! OpenAPI's semantics are kept exactly: the alternatives of a `security` array are OR-ed,
//! the schemes of one requirement object are AND-ed, `security: []` makes an operation
//! public, and the document's `security` is the default for operations that have none.
//!
//! A scheme the gateway cannot verify (HTTP basic, or a bearer scheme without
//! `x-gateway.jwt`) is an error in a document annotated for the gateway. In a document with
//! no `x-gateway` at all (a third-party description compiled with `--default-upstream`),
//! it is a warning instead: operations that accept it are passed to the upstream, which
//! checks the credential itself.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gatewayc_vocab::env::{self, Piece};
use gatewayc_vocab::jwt as jws;
use serde_json::Value;

use super::header;
use super::reader::{self, Obj, did_you_mean};
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::model::{
    ConsumerStore, Cors, Jwt, KeyLocation, KeySource, Scheme, SchemeKind, SchemeUse,
};
use crate::spec::Spec;
use crate::spec::source::child;

/// Default clock skew on `exp` and `nbf`.
const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// Every scheme declared by the documents, by name.
#[derive(Debug, Default)]
pub struct Schemes {
    decls: BTreeMap<String, Decl>,
    /// Requirement entries already reported, so that a document-level default shared by
    /// many operations is reported once.
    reported: BTreeSet<(usize, String)>,
}

#[derive(Debug)]
struct Decl {
    loc: Location,
    /// What the gateway does with it.
    kind: DeclKind,
    /// Scopes an OAuth2 scheme defines; `None` when any scope may be asked for (the scopes
    /// of a JWT come from the identity provider).
    scopes: Option<BTreeSet<String>>,
    /// Whether the declaring document has an `x-gateway` extension.
    annotated: bool,
    /// Set once a requirement uses it.
    used: bool,
    /// Index into the model's schemes, once used and verified.
    index: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum DeclKind {
    Verified(SchemeKind),
    /// The gateway cannot check it; the reason, for the diagnostic.
    Unverified(String),
    /// Settings were given but are wrong (already reported).
    Broken,
}

/// A `security` array as written: alternatives of (scheme, scopes, location of the entry).
#[derive(Debug, Clone)]
pub struct RawSecurity {
    alternatives: Vec<Vec<(String, Vec<String>, Location)>>,
}

/// Reads the schemes one document declares.
pub fn read_schemes(
    spec: &Spec,
    file: usize,
    doc: &Value,
    swagger2: bool,
    out: &mut Schemes,
    d: &mut Diagnostics,
) {
    let annotated = doc.get("x-gateway").is_some();
    let base = if swagger2 {
        "/securityDefinitions".to_owned()
    } else {
        "/components/securitySchemes".to_owned()
    };
    let Some(map) = spec.get(file, &base).and_then(Value::as_object) else {
        return;
    };
    for (name, raw) in map {
        let ptr = child(&base, name);
        let Some(node) = spec.deref(file, &ptr, raw) else {
            continue;
        };
        let loc = Location::key(file, ptr.clone());
        let (kind, scopes) = scheme(node.file, &node.pointer, node.value, swagger2, d);
        if let Some(prev) = out.decls.get(name) {
            // One gateway, one meaning per name: versions of an API share their schemes.
            if prev.kind != kind {
                d.push(
                    Diagnostic::error(
                        "E0506",
                        Some(loc),
                        format!(
                            "security scheme `{name}` is defined differently in another spec file"
                        ),
                    )
                    .related(prev.loc.clone(), "first defined here"),
                );
            }
            continue;
        }
        out.decls.insert(
            name.clone(),
            Decl {
                loc,
                kind,
                scopes,
                annotated,
                used: false,
                index: None,
            },
        );
    }
}

fn scheme(
    file: usize,
    pointer: &str,
    value: &Value,
    swagger2: bool,
    d: &mut Diagnostics,
) -> (DeclKind, Option<BTreeSet<String>>) {
    let ty = value.get("type").and_then(Value::as_str).unwrap_or("");
    let xg = value.get("x-gateway");
    let xg_ptr = child(pointer, "x-gateway");
    let mut jwt_settings = None;
    if let Some(xg) = xg
        && let Some(mut obj) = Obj::new(file, xg_ptr, xg, "a security scheme's x-gateway", d)
    {
        if ty != "apiKey" {
            jwt_settings = obj.object("jwt", "x-gateway.jwt", d);
        }
        obj.finish(d);
    }
    let oauth_scopes = || -> BTreeSet<String> {
        let mut scopes = BTreeSet::new();
        let mut take = |v: Option<&Value>| {
            if let Some(m) = v.and_then(Value::as_object) {
                scopes.extend(m.keys().cloned());
            }
        };
        if swagger2 {
            take(value.get("scopes"));
        } else if let Some(flows) = value.get("flows").and_then(Value::as_object) {
            for flow in flows.values() {
                take(flow.get("scopes"));
            }
        }
        scopes
    };
    match ty {
        "apiKey" => {
            let location = match value.get("in").and_then(Value::as_str) {
                Some("header") => KeyLocation::Header,
                Some("query") => KeyLocation::Query,
                Some("cookie") if !swagger2 => KeyLocation::Cookie,
                other => {
                    d.push(Diagnostic::error(
                        "E0503",
                        Some(Location::value(file, child(pointer, "in"))),
                        format!(
                            "an apiKey scheme must say `in: header`, `query` or `cookie`, found {}",
                            other.map_or("nothing".to_owned(), |o| format!("`{o}`"))
                        ),
                    ));
                    return (DeclKind::Broken, None);
                }
            };
            let Some(name) = value
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            else {
                d.push(Diagnostic::error(
                    "E0503",
                    Some(Location::value(file, pointer)),
                    "an apiKey scheme needs the `name` of its header, query parameter or cookie",
                ));
                return (DeclKind::Broken, None);
            };
            if location == KeyLocation::Header && header::name(name).is_none() {
                d.push(Diagnostic::error(
                    "E0503",
                    Some(Location::value(file, child(pointer, "name"))),
                    format!("`{name}` is not a valid header name"),
                ));
                return (DeclKind::Broken, None);
            }
            let name = if location == KeyLocation::Header {
                name.to_ascii_lowercase()
            } else {
                name.to_owned()
            };
            (
                DeclKind::Verified(SchemeKind::ApiKey { location, name }),
                Some(BTreeSet::new()),
            )
        }
        "http" | "oauth2" | "openIdConnect" => {
            let http_scheme = value.get("scheme").and_then(Value::as_str).unwrap_or("");
            if ty == "http" && !http_scheme.eq_ignore_ascii_case("bearer") {
                return (
                    DeclKind::Unverified(format!(
                        "the gateway does not verify HTTP `{http_scheme}` authentication"
                    )),
                    None,
                );
            }
            let scopes = (ty == "oauth2").then(oauth_scopes);
            let discovery = (ty == "openIdConnect")
                .then(|| value.get("openIdConnectUrl").and_then(Value::as_str))
                .flatten();
            match jwt_settings {
                Some(obj) => match jwt(obj, discovery, d) {
                    Some(j) => (DeclKind::Verified(SchemeKind::Jwt(j)), scopes),
                    None => (DeclKind::Broken, scopes),
                },
                None => (
                    DeclKind::Unverified("it has no `x-gateway.jwt` settings".to_owned()),
                    scopes,
                ),
            }
        }
        // The client certificate the TLS handshake verified (`GATEWAY_TLS_CLIENT_CA`).
        "mutualTLS" if !swagger2 => (
            DeclKind::Verified(SchemeKind::MutualTls),
            Some(BTreeSet::new()),
        ),
        // Swagger 2.0 `basic` and anything unknown.
        other => (
            DeclKind::Unverified(format!(
                "the gateway does not verify `{other}` security schemes"
            )),
            None,
        ),
    }
}

fn jwt(mut obj: Obj<'_>, discovery: Option<&str>, d: &mut Diagnostics) -> Option<Jwt> {
    let here = obj.here();
    let mut sources = Vec::new();
    if let Some(u) = obj.string("jwks_url", d) {
        sources.push(("jwks_url", KeySource::JwksUrl(u)));
    }
    if let Some(u) = obj.string("discovery_url", d) {
        sources.push(("discovery_url", KeySource::Discovery(u)));
    }
    if let Some(p) = obj.string("pem_file", d) {
        sources.push(("pem_file", KeySource::PemFile(p)));
    }
    let secret_loc = obj.loc("secret");
    if let Some(s) = obj.string("secret", d) {
        sources.push(("secret", KeySource::Secret(s)));
    }
    let mut ok = true;
    let keys = match sources.len() {
        0 => match discovery {
            Some(u) => KeySource::Discovery(u.to_owned()),
            None => {
                d.push(
                    Diagnostic::error(
                        "E0504",
                        Some(here.clone()),
                        "`x-gateway.jwt` says nothing about where the verification keys come from",
                    )
                    .hint("set one of `jwks_url`, `discovery_url`, `pem_file` or `secret`"),
                );
                return None;
            }
        },
        1 => sources.pop().map(|(_, s)| s)?,
        _ => {
            let names: Vec<_> = sources.iter().map(|(n, _)| format!("`{n}`")).collect();
            d.push(Diagnostic::error(
                "E0504",
                Some(here.clone()),
                format!(
                    "`x-gateway.jwt` sets {}; a scheme takes its keys from exactly one place",
                    names.join(" and ")
                ),
            ));
            return None;
        }
    };
    if let KeySource::Secret(s) = &keys
        && !is_one_reference(s)
    {
        ok = false;
        d.push(
            Diagnostic::error(
                "E0504",
                Some(secret_loc),
                "an HMAC secret written into the spec would be published with it",
            )
            .hint("take it from the environment: `secret: \"${JWT_SECRET}\"`"),
        );
    }
    let hmac_source = matches!(keys, KeySource::Secret(_));
    let algorithms = match obj.raw("algorithms") {
        None => vec![if hmac_source { "HS256" } else { "RS256" }.to_owned()],
        Some(v) => {
            let loc = obj.loc("algorithms");
            let list = string_list(v, &loc, "algorithms", d)?;
            if list.is_empty() {
                ok = false;
                d.push(Diagnostic::error(
                    "E0504",
                    Some(loc.clone()),
                    "`algorithms` is empty",
                ));
            }
            for alg in &list {
                if alg.eq_ignore_ascii_case("none") {
                    ok = false;
                    d.push(Diagnostic::error(
                        "E0504",
                        Some(loc.clone()),
                        "`none` would accept unsigned tokens; it can never be allowed",
                    ));
                } else if !jws::is_known(alg) {
                    ok = false;
                    let mut diag = Diagnostic::error(
                        "E0504",
                        Some(loc.clone()),
                        format!("unknown JWT algorithm `{alg}`"),
                    );
                    diag = match did_you_mean(alg, jws::ALGORITHMS) {
                        Some(best) => diag.hint(format!("did you mean `{best}`?")),
                        None => {
                            diag.hint(format!("known algorithms: {}", jws::ALGORITHMS.join(", ")))
                        }
                    };
                    d.push(diag);
                } else if jws::is_hmac(alg) != hmac_source {
                    ok = false;
                    d.push(Diagnostic::error(
                        "E0504",
                        Some(loc.clone()),
                        if hmac_source {
                            format!("`{alg}` needs a public key, but this scheme has an HMAC `secret`")
                        } else {
                            format!(
                                "`{alg}` is an HMAC algorithm; with public keys it would let anyone who has the public key sign tokens"
                            )
                        },
                    ));
                }
            }
            list
        }
    };
    let issuer = obj.string("issuer", d);
    let audience = match obj.raw("audience") {
        None => Vec::new(),
        Some(v) => string_list(v, &obj.loc("audience"), "audience", d)?,
    };
    let require_exp = boolean(&mut obj, "require_exp", d).unwrap_or(true);
    let leeway = match obj.raw("leeway") {
        None => DEFAULT_LEEWAY,
        Some(Value::String(s)) if s == "0s" || s == "0" => Duration::ZERO,
        Some(_) => obj.duration("leeway", d).unwrap_or(DEFAULT_LEEWAY),
    };
    let consumer_claim = obj
        .string("consumer", d)
        .unwrap_or_else(|| "sub".to_owned());
    let plan_claim = obj.string("plan", d);
    let mut forward_claims = Vec::new();
    for (claim, ptr, v) in obj.entries("forward_claims", d) {
        let Value::String(header) = v else {
            ok = false;
            d.push(reader::type_error(
                Location::value(here.file, ptr),
                &claim,
                "a header name",
                v,
            ));
            continue;
        };
        match header::name(header) {
            Some(h) if may_carry_claim(&h) => forward_claims.push((claim, h)),
            _ => {
                ok = false;
                d.push(Diagnostic::error(
                    "E0507",
                    Some(Location::value(here.file, ptr)),
                    format!("`{header}` cannot carry a claim: it is not a header name the gateway may set"),
                ));
            }
        }
    }
    obj.finish(d);
    ok.then_some(Jwt {
        keys,
        algorithms,
        issuer,
        audience,
        require_exp,
        leeway,
        consumer_claim,
        plan_claim,
        forward_claims,
    })
}

/// Whether a claim may be forwarded in header `h` (lower case): not a hop-by-hop header, not
/// one the gateway sets when it forwards, not framing, and not a credential.
fn may_carry_claim(h: &str) -> bool {
    !header::HOP_BY_HOP.contains(&h)
        && !header::FORWARDING.contains(&h)
        && !["content-length", "content-type", "authorization", "cookie"].contains(&h)
}

fn boolean(obj: &mut Obj<'_>, key: &'static str, d: &mut Diagnostics) -> Option<bool> {
    match obj.raw(key)? {
        Value::Bool(b) => Some(*b),
        other => {
            d.push(reader::type_error(
                obj.loc(key),
                key,
                "true or false",
                other,
            ));
            None
        }
    }
}

/// Whether `s` is one `${...}` reference and nothing else, as an HMAC secret must be.
fn is_one_reference(s: &str) -> bool {
    let mut pieces = env::pieces(s);
    matches!(
        (pieces.next(), pieces.next()),
        (Some(Piece::Ref { .. }), None)
    )
}

/// A string, or an array of strings.
fn string_list(v: &Value, loc: &Location, key: &str, d: &mut Diagnostics) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) if items.iter().all(Value::is_string) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        other => {
            d.push(reader::type_error(
                loc.clone(),
                key,
                "a string or a list of strings",
                other,
            ));
            None
        }
    }
}

/// Reads a `security` array (of a document or an operation) at `pointer`.
pub fn read_requirements(
    file: usize,
    pointer: &str,
    value: &Value,
    d: &mut Diagnostics,
) -> Option<RawSecurity> {
    let Value::Array(items) = value else {
        d.push(reader::type_error(
            Location::value(file, pointer),
            "security",
            "a list of security requirement objects",
            value,
        ));
        return None;
    };
    let mut alternatives = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_ptr = child(pointer, &i.to_string());
        let Value::Object(map) = item else {
            d.push(reader::type_error(
                Location::value(file, item_ptr),
                "security",
                "a security requirement object",
                item,
            ));
            return None;
        };
        let mut all = Vec::new();
        for (name, scopes) in map {
            let entry_ptr = child(&item_ptr, name);
            let scopes = match scopes {
                Value::Array(s) if s.iter().all(Value::is_string) => s
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                other => {
                    d.push(reader::type_error(
                        Location::value(file, entry_ptr),
                        name,
                        "a list of scopes",
                        other,
                    ));
                    return None;
                }
            };
            all.push((name.clone(), scopes, Location::key(file, entry_ptr)));
        }
        alternatives.push(all);
    }
    Some(RawSecurity { alternatives })
}

impl Schemes {
    /// Checks that every scheme of `raw` exists and defines the scopes asked of it, without
    /// using the schemes: for a document's default requirements, which are reported even
    /// when every operation overrides them.
    pub fn check_default(&mut self, raw: &RawSecurity, d: &mut Diagnostics) {
        for alt in &raw.alternatives {
            for (name, scopes, loc) in alt {
                self.check_entry(name, scopes, loc, d);
            }
        }
    }

    /// Whether scheme `name` exists and defines `scopes`; reports each faulty entry once.
    fn check_entry(
        &mut self,
        name: &str,
        scopes: &[String],
        loc: &Location,
        d: &mut Diagnostics,
    ) -> bool {
        let first_report = self.reported.insert((loc.file, loc.pointer.clone()));
        let Some(decl) = self.decls.get(name) else {
            if first_report {
                let known: Vec<&str> = self.decls.keys().map(String::as_str).collect();
                let mut diag = Diagnostic::error(
                    "E0501",
                    Some(loc.clone()),
                    format!("security scheme `{name}` is not defined"),
                );
                diag = match did_you_mean(name, &known) {
                    Some(best) => diag.hint(format!("did you mean `{best}`?")),
                    None if known.is_empty() => diag.hint(
                        "define it under `components.securitySchemes` (Swagger 2.0: `securityDefinitions`)",
                    ),
                    None => diag.hint(format!("defined schemes: {}", known.join(", "))),
                };
                d.push(diag);
            }
            return false;
        };
        let Some(defined) = &decl.scopes else {
            return true;
        };
        let mut ok = true;
        for scope in scopes {
            if defined.contains(scope) {
                continue;
            }
            ok = false;
            if !first_report {
                continue;
            }
            let msg = if matches!(decl.kind, DeclKind::Verified(SchemeKind::ApiKey { .. })) {
                format!(
                    "API key scheme `{name}` grants no scopes, so `{scope}` can never be satisfied"
                )
            } else {
                format!("scope `{scope}` is not defined by the flows of scheme `{name}`")
            };
            let list: Vec<&str> = defined.iter().map(String::as_str).collect();
            let mut diag = Diagnostic::error("E0502", Some(loc.clone()), msg)
                .related(decl.loc.clone(), "scheme defined here");
            if let Some(best) = did_you_mean(scope, &list) {
                diag = diag.hint(format!("did you mean `{best}`?"));
            }
            d.push(diag);
        }
        ok
    }

    /// Resolves one operation's requirements against the declared schemes; `op` names the
    /// operation for messages. Returns the alternatives the gateway enforces, empty when
    /// the operation is public at the gateway.
    pub fn resolve(
        &mut self,
        raw: &RawSecurity,
        have_consumers: bool,
        model: &mut Vec<Scheme>,
        d: &mut Diagnostics,
    ) -> Vec<Vec<SchemeUse>> {
        let mut out = Vec::new();
        let mut upstream_decides = false;
        let mut anonymous = false;
        for alt in &raw.alternatives {
            // `{}` among the alternatives: anonymous requests are allowed (the other
            // alternatives are still checked, for mistakes).
            if alt.is_empty() {
                anonymous = true;
                continue;
            }
            let mut uses = Vec::new();
            let mut usable = true;
            for (name, scopes, loc) in alt {
                if !self.check_entry(name, scopes, loc, d) {
                    usable = false;
                    continue;
                }
                let Some(decl) = self.decls.get_mut(name) else {
                    continue;
                };
                let first_use = !decl.used;
                decl.used = true;
                // A scheme the gateway cannot check: an error in a document annotated for
                // the gateway, a warning (the upstream checks) in a plain one.
                let unverifiable = match &decl.kind {
                    DeclKind::Unverified(why) => Some((
                        Diagnostic::error(
                            "E0503",
                            Some(decl.loc.clone()),
                            format!("operations require security scheme `{name}`, but the gateway cannot verify it: {why}"),
                        )
                        .hint("give it `x-gateway: { jwt: { ... } }` settings, or use a scheme the gateway verifies"),
                        format!("security scheme `{name}` is not verified by the gateway ({why})"),
                    )),
                    DeclKind::Verified(SchemeKind::ApiKey { .. }) if !have_consumers => Some((
                        Diagnostic::error(
                            "E0505",
                            Some(decl.loc.clone()),
                            format!("API key scheme `{name}` is used, but the gateway has no key store"),
                        )
                        .hint("add `consumers: { store: file, path: keys.toml }` to the document's `x-gateway`"),
                        format!("API key scheme `{name}` is not verified by the gateway (it has no key store)"),
                    )),
                    _ => None,
                };
                if let Some((error, unverified)) = unverifiable {
                    if first_use {
                        d.push(if decl.annotated {
                            error.related(loc.clone(), "required here")
                        } else {
                            Diagnostic::warning(
                                "W0503",
                                Some(decl.loc.clone()),
                                format!("{unverified}; requests that use it are passed to the upstream, which must check them"),
                            )
                        });
                    }
                    upstream_decides = true;
                    continue;
                }
                match &decl.kind {
                    DeclKind::Broken | DeclKind::Unverified(_) => usable = false,
                    DeclKind::Verified(kind) => {
                        let index = *decl.index.get_or_insert_with(|| {
                            model.push(Scheme {
                                name: name.clone(),
                                kind: kind.clone(),
                            });
                            model.len() - 1
                        });
                        uses.push(SchemeUse {
                            scheme: index,
                            scopes: scopes.clone(),
                        });
                    }
                }
            }
            if usable {
                out.push(uses);
            }
        }
        if upstream_decides || anonymous {
            // An alternative the gateway cannot check might be the one the client uses:
            // rejecting the request would be wrong, so the upstream decides.
            return Vec::new();
        }
        out
    }
}

/// Reads `x-gateway.consumers`.
pub fn read_consumers(obj: &mut Obj<'_>, d: &mut Diagnostics) -> Option<ConsumerStore> {
    let mut c = obj.object("consumers", "x-gateway.consumers", d)?;
    let store = c.string("store", d);
    let path = c.string("path", d);
    let url = c.string("url", d);
    let here = c.here();
    c.finish(d);
    match (store.as_deref(), path, url) {
        (Some("file"), Some(p), None) => Some(ConsumerStore::File(p)),
        (Some("file") | None, None, None) => Some(ConsumerStore::File("keys.toml".to_owned())),
        (None, Some(p), None) => Some(ConsumerStore::File(p)),
        (Some("redis") | None, None, Some(u)) => Some(ConsumerStore::Redis(u)),
        (Some("redis"), _, None) => {
            d.push(Diagnostic::error(
                "E0511",
                Some(here),
                "a Redis key store needs a `url` (for example `\"${REDIS_URL}\"`)",
            ));
            None
        }
        (Some(other), _, _) if other != "file" && other != "redis" => {
            d.push(Diagnostic::error(
                "E0511",
                Some(here),
                format!("unknown key store `{other}`; use `file` or `redis`"),
            ));
            None
        }
        _ => {
            d.push(Diagnostic::error(
                "E0511",
                Some(here),
                "a key store is either a file (`path`) or Redis (`url`), not both",
            ));
            None
        }
    }
}

/// Reads `x-gateway.cors`.
pub fn read_cors(obj: &mut Obj<'_>, d: &mut Diagnostics) -> Option<Cors> {
    let mut c = obj.object("cors", "x-gateway.cors", d)?;
    let mut ok = true;
    let mut list = |c: &mut Obj<'_>, key: &'static str, d: &mut Diagnostics| -> Vec<String> {
        match c.raw(key) {
            None => Vec::new(),
            Some(v) => string_list(v, &c.loc(key), key, d).unwrap_or_else(|| {
                ok = false;
                Vec::new()
            }),
        }
    };
    let origins = list(&mut c, "origins", d);
    let methods = list(&mut c, "methods", d);
    let headers = list(&mut c, "headers", d);
    let expose = list(&mut c, "expose_headers", d);
    let credentials = boolean(&mut c, "credentials", d).unwrap_or(false);
    let max_age = c.duration("max_age", d).map(|t| t.as_secs());
    let origins_loc = c.loc("origins");
    let here = c.here();
    c.finish(d);
    if origins.is_empty() {
        d.push(Diagnostic::error(
            "E0510",
            Some(here.clone()),
            "`cors` needs `origins`: the sites whose scripts may call the gateway",
        ));
        ok = false;
    }
    for o in &origins {
        if o == "*" {
            if credentials {
                d.push(
                    Diagnostic::error(
                        "E0510",
                        Some(origins_loc.clone()),
                        "`*` cannot be used with `credentials: true` (browsers refuse it)",
                    )
                    .hint("list the origins that may send credentials"),
                );
                ok = false;
            }
            continue;
        }
        let valid = o.split_once("://").is_some_and(|(scheme, rest)| {
            (scheme == "http" || scheme == "https")
                && !rest.is_empty()
                && !rest.contains(['/', '?', '#', ' '])
        });
        if !valid {
            d.push(
                Diagnostic::error(
                    "E0510",
                    Some(origins_loc.clone()),
                    format!("`{o}` is not an origin"),
                )
                .hint(
                    "an origin is a scheme, a host and an optional port: `https://app.example.com`",
                ),
            );
            ok = false;
        }
    }
    let mut methods_upper = Vec::new();
    for m in methods {
        let up = m.to_ascii_uppercase();
        if header::name(&up).is_none() {
            d.push(Diagnostic::error(
                "E0510",
                Some(here.clone()),
                format!("`{m}` is not an HTTP method"),
            ));
            ok = false;
        }
        methods_upper.push(up);
    }
    let mut lower = |names: Vec<String>, d: &mut Diagnostics| -> Vec<String> {
        names
            .into_iter()
            .filter_map(|h| {
                let t = header::name(&h);
                if t.is_none() {
                    d.push(Diagnostic::error(
                        "E0510",
                        Some(here.clone()),
                        format!("`{h}` is not a header name"),
                    ));
                    ok = false;
                }
                t
            })
            .collect()
    };
    let headers = lower(headers, d);
    let expose = lower(expose, d);
    ok.then_some(Cors {
        origins,
        methods: methods_upper,
        headers,
        expose,
        credentials,
        max_age,
    })
}

/// Warns once per document about operations no `security` covers.
pub fn warn_uncovered(uncovered: &[(String, Location)], total: usize, d: &mut Diagnostics) {
    let Some((first, loc)) = uncovered.first() else {
        return;
    };
    let message = if uncovered.len() == 1 {
        format!("operation `{first}` has no `security`: anyone can call it")
    } else {
        format!(
            "{} of {total} operations have no `security` (the first is `{first}`): anyone can call them",
            uncovered.len()
        )
    };
    d.push(
        Diagnostic::warning("W0501", Some(loc.clone()), message).hint(
            "set `security` on the document or the operation; `security: []` marks an operation public on purpose",
        ),
    );
}
