//! `x-gateway.upstreams.NAME`: where an upstream is (one `url`, or `targets` with weights),
//! how a request chooses a target (`balance`), its `timeout`, and what keeps its calls
//! going when targets fail: `outlier` (E0213), `health` (E0214), `retries` (E0215) and
//! `breaker` (E0216). Each of those four is written into the generated `UpstreamDef` only
//! when the spec has it, and each of their keys only when set: the runtime's defaults hold
//! for the rest.

use std::time::Duration;

use serde_json::Value;

use super::check_url_template;
use super::header;
use super::reader::{Obj, kind};
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::model::{
    Balance, Breaker, HashKey, Health, MAX_WEIGHT, Outlier, Resilience, Retries, RetryOn, Target,
};
use crate::spec::source::child;

/// What an upstream's entry says, once read.
#[derive(Debug, Default)]
pub(super) struct Read {
    /// `url`, or the shorthand string.
    pub url: Option<String>,
    /// `targets`.
    pub targets: Vec<Target>,
    /// `balance`.
    pub balance: Balance,
    /// `timeout`.
    pub timeout: Option<Duration>,
    /// `outlier`, `health`, `retries` and `breaker`.
    pub resilience: Resilience,
    /// `tls`: the CA and client certificate for HTTPS targets.
    pub tls: Option<crate::model::UpstreamTls>,
}

/// Reads the upstream at `ptr` in `file`: a URL string (the shorthand) or an object.
/// Reports every problem; returns `None` when the entry is not even an object.
pub(super) fn read(file: usize, ptr: String, value: &Value, d: &mut Diagnostics) -> Option<Read> {
    if let Value::String(url) = value {
        check_url_template(url, Location::value(file, ptr), d);
        return Some(Read {
            url: Some(url.clone()),
            ..Read::default()
        });
    }
    let mut up = Obj::new(file, ptr, value, "an upstream", d)?;
    let url = up.string("url", d);
    let url_loc = up.loc("url");
    let has_targets = up.has("targets");
    let targets = targets(&mut up, d);
    if url.is_some() && has_targets {
        d.push(
            Diagnostic::error(
                "E0210",
                Some(Location::key(up.file, child(&up.pointer, "targets"))),
                "an upstream has either `url` or `targets`, not both",
            )
            .hint("write one target as `url`, or list every target under `targets`"),
        );
    }
    let balance = balance(&mut up, d);
    let timeout = up.duration("timeout", d);
    let resilience = Resilience {
        outlier: outlier(&mut up, d),
        health: health(&mut up, d),
        retries: retries(&mut up, d),
        breaker: breaker(&mut up, d),
    };
    let tls = tls(&mut up, d);
    // REST to gRPC (issue 17) is designed but not built.
    up.unsupported(&["grpc"], d);
    up.finish(d);
    if let Some(u) = &url {
        check_url_template(u, url_loc, d);
    }
    Some(Read {
        url,
        targets,
        balance,
        timeout,
        resilience,
        tls,
    })
}

/// `tls: { ca, cert, key }`: files (paths may hold `${VAR}`) for HTTPS targets: the CA
/// bundle their certificates are verified against instead of the public roots, and the
/// gateway's client certificate and key for mutual TLS (both or neither, E0217).
fn tls(up: &mut Obj<'_>, d: &mut Diagnostics) -> Option<crate::model::UpstreamTls> {
    let loc = up.loc("tls");
    let mut t = up.object("tls", "an upstream's tls", d)?;
    let mut path = |key: &'static str, d: &mut Diagnostics| {
        let value = t.string(key, d)?;
        let at = t.loc(key);
        let malformed = value.trim().is_empty()
            || gatewayc_vocab::env::pieces(&value).any(|p| match p {
                gatewayc_vocab::env::Piece::Unclosed(_) => true,
                gatewayc_vocab::env::Piece::Ref { name, .. } => {
                    !gatewayc_vocab::env::is_var_name(name)
                }
                gatewayc_vocab::env::Piece::Text(_) => false,
            });
        if malformed {
            d.push(
                Diagnostic::error(
                    "E0217",
                    Some(at),
                    format!("`{key}` must be a file path (with `${{NAME}}` references if need be), found `{value}`"),
                )
                .hint("write a path: `/etc/gateway/ca.pem` or `${UPSTREAM_CA}`"),
            );
            return None;
        }
        Some(value)
    };
    let ca = path("ca", d);
    let cert = path("cert", d);
    let key = path("key", d);
    let (cert_loc, key_loc) = (t.loc("cert"), t.loc("key"));
    let has = (t.has("cert"), t.has("key"));
    let has_ca = t.has("ca");
    t.finish(d);
    match has {
        (true, false) | (false, true) => {
            d.push(
                Diagnostic::error(
                    "E0217",
                    Some(if has.0 { cert_loc } else { key_loc }),
                    "a client certificate needs both `cert` and `key`",
                )
                .hint("give the certificate chain (PEM) as `cert` and its private key as `key`"),
            );
            return None;
        }
        (false, false) if !has_ca => {
            d.push(
                Diagnostic::error("E0217", Some(loc), "`tls` sets nothing")
                    .hint("give `ca`, or `cert` and `key`, or remove `tls`"),
            );
            return None;
        }
        _ => {}
    }
    if has_ca && ca.is_none() {
        return None;
    }
    Some(crate::model::UpstreamTls { ca, cert, key })
}

/// Member `key` of `o` as a whole number from `min` to `max`; an error with `code` and
/// `hint` otherwise. `None` when absent or malformed.
fn whole(
    o: &mut Obj<'_>,
    key: &'static str,
    (min, max): (u32, u32),
    code: &'static str,
    hint: &str,
    d: &mut Diagnostics,
) -> Option<u32> {
    let loc = o.loc(key);
    let v = o.raw(key)?;
    match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            d.push(
                Diagnostic::error(
                    code,
                    Some(loc),
                    format!(
                        "`{key}` must be a whole number from {min} to {max}, found {}",
                        found(v)
                    ),
                )
                .hint(hint.to_owned()),
            );
            None
        }
    }
}

/// Member `key` of `o` as a percentage: `20%` or `20`, from 0 to 100; an error with `code`
/// otherwise.
fn percent(
    o: &mut Obj<'_>,
    key: &'static str,
    code: &'static str,
    d: &mut Diagnostics,
) -> Option<u8> {
    let loc = o.loc(key);
    let v = o.raw(key)?;
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s
            .trim()
            .strip_suffix('%')
            .and_then(|n| n.trim().parse().ok()),
        _ => None,
    };
    match n.and_then(|n| u8::try_from(n).ok()) {
        Some(p) if p <= 100 => Some(p),
        _ => {
            d.push(
                Diagnostic::error(
                    code,
                    Some(loc),
                    format!(
                        "`{key}` must be a percentage from 0% to 100%, found {}",
                        found(v)
                    ),
                )
                .hint("write `20%` or `20`"),
            );
            None
        }
    }
}

/// A value as a message shows it: a number or string as written, another type by kind.
fn found(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("`{n}`"),
        Value::String(s) => format!("`{s}`"),
        other => kind(other).to_owned(),
    }
}

/// `outlier`: `consecutive_failures`, `base_ejection`, `max_ejection`,
/// `max_ejected_percent`, `panic_threshold` (E0213).
fn outlier(up: &mut Obj<'_>, d: &mut Diagnostics) -> Option<Outlier> {
    let mut o = up.object("outlier", "`outlier`", d)?;
    let consecutive_failures = whole(
        &mut o,
        "consecutive_failures",
        (0, 1000),
        "E0213",
        "failures in a row that eject a target; 0 never ejects",
        d,
    );
    let base_ejection = o.duration("base_ejection", d);
    let max_loc = o.loc("max_ejection");
    let max_ejection = o.duration("max_ejection", d);
    if let (Some(base), Some(max)) = (base_ejection, max_ejection)
        && max < base
    {
        d.push(
            Diagnostic::error(
                "E0213",
                Some(max_loc),
                "`max_ejection` is shorter than `base_ejection`",
            )
            .hint("an ejection lasts `base_ejection` times the number of ejections, at most `max_ejection`"),
        );
    }
    let out = Outlier {
        consecutive_failures,
        base_ejection,
        max_ejection,
        max_ejected_percent: percent(&mut o, "max_ejected_percent", "E0213", d),
        panic_threshold: percent(&mut o, "panic_threshold", "E0213", d),
    };
    o.finish(d);
    Some(out)
}

/// `health`: `path`, `interval`, `timeout`, `healthy`, `unhealthy` (E0214).
fn health(up: &mut Obj<'_>, d: &mut Diagnostics) -> Option<Health> {
    let mut h = up.object("health", "`health`", d)?;
    let path_loc = h.loc("path");
    let path = h.string("path", d);
    if let Some(p) = &path
        && (!p.starts_with('/') || !p.bytes().all(|b| b.is_ascii_graphic()) || p.contains('#'))
    {
        d.push(
            Diagnostic::error(
                "E0214",
                Some(path_loc),
                format!("the health check `path` must be a path starting with `/`, found `{p}`"),
            )
            .hint("write `path: /healthz`; it is requested under each target's base path"),
        );
    }
    let hint = "probes in a row that flip a target's health";
    let out = Health {
        path,
        interval: h.duration("interval", d),
        timeout: h.duration("timeout", d),
        healthy: whole(&mut h, "healthy", (1, 100), "E0214", hint, d),
        unhealthy: whole(&mut h, "unhealthy", (1, 100), "E0214", hint, d),
    };
    h.finish(d);
    Some(out)
}

/// `retries`: `attempts`, `on`, `backoff`, `per_try_timeout`, `budget`, `min_per_second`
/// (E0215).
fn retries(up: &mut Obj<'_>, d: &mut Diagnostics) -> Option<Retries> {
    let mut r = up.object("retries", "`retries`", d)?;
    let out = Retries {
        attempts: whole(
            &mut r,
            "attempts",
            (0, 10),
            "E0215",
            "retries after the first try, at most",
            d,
        ),
        on: retry_on(&mut r, d),
        backoff: r.duration("backoff", d),
        per_try_timeout: r.duration("per_try_timeout", d),
        budget: percent(&mut r, "budget", "E0215", d),
        min_per_second: whole(
            &mut r,
            "min_per_second",
            (0, 1000),
            "E0215",
            "retries a second allowed whatever the budget",
            d,
        ),
    };
    r.finish(d);
    Some(out)
}

/// `retries.on`: a non-empty list of `connect`, `reset`, `timeout` and statuses from 500
/// to 599.
fn retry_on(r: &mut Obj<'_>, d: &mut Diagnostics) -> Option<RetryOn> {
    let loc = r.loc("on");
    let value = r.raw("on")?;
    let hint =
        "list `connect`, `reset`, `timeout` and statuses from 500 to 599: `on: [connect, 503]`";
    let Value::Array(items) = value else {
        d.push(
            Diagnostic::error(
                "E0215",
                Some(loc),
                format!("`on` must be a list, found {}", kind(value)),
            )
            .hint(hint),
        );
        return None;
    };
    if items.is_empty() {
        d.push(Diagnostic::error("E0215", Some(loc), "`on` is empty").hint(hint));
        return None;
    }
    let list = child(&r.pointer, "on");
    let mut on = RetryOn::default();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let status = match item {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        match (item.as_str(), status) {
            (Some("connect"), _) => on.connect = true,
            (Some("reset"), _) => on.reset = true,
            (Some("timeout"), _) => on.timeout = true,
            (_, Some(s)) if (500..=599).contains(&s) => {
                let s = u16::try_from(s).unwrap_or(503);
                if !on.statuses.contains(&s) {
                    on.statuses.push(s);
                }
            }
            _ => {
                ok = false;
                d.push(
                    Diagnostic::error(
                        "E0215",
                        Some(Location::value(r.file, child(&list, &i.to_string()))),
                        format!("`on` cannot retry {}", found(item)),
                    )
                    .hint(hint),
                );
            }
        }
    }
    ok.then_some(on)
}

/// `breaker`: `max_requests`, `max_pending` (E0216); `max_connections` is not supported
/// yet (E0299).
fn breaker(up: &mut Obj<'_>, d: &mut Diagnostics) -> Option<Breaker> {
    let mut b = up.object("breaker", "`breaker`", d)?;
    let hint = "a limit of at least 1; leave it out for none";
    let out = Breaker {
        max_requests: whole(&mut b, "max_requests", (1, 1_000_000), "E0216", hint, d),
        max_pending: whole(&mut b, "max_pending", (1, 1_000_000), "E0216", hint, d),
        max_connections: whole(&mut b, "max_connections", (1, 1_000_000), "E0216", hint, d),
    };
    b.finish(d);
    Some(out)
}

/// `targets`: a non-empty list of `{url, weight}` objects, or of URL strings (weight 1).
fn targets(up: &mut Obj<'_>, d: &mut Diagnostics) -> Vec<Target> {
    let loc = up.loc("targets");
    let Some(value) = up.raw("targets") else {
        return Vec::new();
    };
    let Value::Array(items) = value else {
        d.push(super::reader::type_error(
            loc,
            "targets",
            "a list of targets",
            value,
        ));
        return Vec::new();
    };
    if items.is_empty() {
        d.push(
            Diagnostic::error("E0210", Some(loc), "`targets` is empty")
                .hint("list at least one target: `targets: [{ url: \"http://a:8080\" }]`"),
        );
        return Vec::new();
    }
    let list = child(&up.pointer, "targets");
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ptr = child(&list, &i.to_string());
        if let Value::String(url) = item {
            check_url_template(url, Location::value(up.file, ptr), d);
            out.push(Target {
                url: url.clone(),
                weight: 1,
            });
            continue;
        }
        let Some(mut t) = Obj::new(up.file, ptr, item, "a target", d) else {
            continue;
        };
        let url = t.string("url", d);
        match &url {
            Some(u) => check_url_template(u, t.loc("url"), d),
            None if !t.has("url") => d.push(
                Diagnostic::error("E0210", Some(t.here()), "a target has no `url`")
                    .hint("write `{ url: \"http://host:port\", weight: 1 }`"),
            ),
            None => {}
        }
        let weight = weight(&mut t, d);
        t.finish(d);
        if let (Some(url), Some(weight)) = (url, weight) {
            out.push(Target { url, weight });
        }
    }
    out
}

/// A target's `weight`: an integer from 1 to [`MAX_WEIGHT`]; 1 when absent.
fn weight(t: &mut Obj<'_>, d: &mut Diagnostics) -> Option<u32> {
    let loc = t.loc("weight");
    let Some(v) = t.raw("weight") else {
        return Some(1);
    };
    match v.as_u64().and_then(|w| u32::try_from(w).ok()) {
        Some(w) if (1..=MAX_WEIGHT).contains(&w) => Some(w),
        _ => {
            let found = match v {
                Value::Number(n) => format!("`{n}`"),
                other => kind(other).to_owned(),
            };
            d.push(
                Diagnostic::error(
                    "E0211",
                    Some(loc),
                    format!(
                        "`weight` must be a whole number from 1 to {MAX_WEIGHT}, found {found}"
                    ),
                )
                .hint("a target of weight 2 gets twice the requests of one of weight 1"),
            );
            None
        }
    }
}

/// `balance`: `round_robin` (the default), `least_request`, or `{ hash: KEY }` with KEY
/// one of `consumer`, `header:NAME`, `claim:NAME`, `path_param:NAME`.
fn balance(up: &mut Obj<'_>, d: &mut Diagnostics) -> Balance {
    let loc = up.loc("balance");
    let Some(value) = up.raw("balance") else {
        return Balance::RoundRobin;
    };
    let malformed = |what: String| {
        Diagnostic::error("E0212", Some(loc.clone()), what).hint(
            "write `round_robin`, `least_request`, or `{ hash: KEY }` with KEY `consumer`, \
             `header:NAME`, `claim:NAME` or `path_param:NAME`",
        )
    };
    match value {
        Value::String(s) if s == "round_robin" => Balance::RoundRobin,
        Value::String(s) if s == "least_request" => Balance::LeastRequest,
        Value::String(s) if s == "hash" => {
            d.push(malformed("`balance: hash` needs a key to hash".to_owned()));
            Balance::RoundRobin
        }
        Value::String(s) => {
            d.push(malformed(format!("unknown balancing `{s}`")));
            Balance::RoundRobin
        }
        Value::Object(_) => {
            let file = up.file;
            let ptr = child(&up.pointer, "balance");
            let Some(mut b) = Obj::new(file, ptr, value, "`balance`", d) else {
                return Balance::RoundRobin;
            };
            let key_loc = b.loc("hash");
            let key = b.string("hash", d);
            b.finish(d);
            let Some(key) = key else {
                if value.get("hash").is_none() {
                    d.push(malformed("`balance` as an object takes `hash`".to_owned()));
                }
                return Balance::RoundRobin;
            };
            match hash_key(&key) {
                Some(k) => Balance::Hash(k),
                None => {
                    d.push(
                        Diagnostic::error(
                            "E0212",
                            Some(key_loc),
                            format!("`hash` key is malformed: found `{key}`"),
                        )
                        .hint("use `consumer`, `header:NAME`, `claim:NAME` or `path_param:NAME`"),
                    );
                    Balance::RoundRobin
                }
            }
        }
        other => {
            d.push(malformed(format!(
                "`balance` must be a string or an object, found {}",
                kind(other)
            )));
            Balance::RoundRobin
        }
    }
}

/// A `hash` key: `consumer`, `header:NAME`, `claim:NAME` or `path_param:NAME`.
fn hash_key(key: &str) -> Option<HashKey> {
    if key == "consumer" {
        return Some(HashKey::Consumer);
    }
    match key.split_once(':')? {
        ("header", h) => header::name(h).map(HashKey::Header),
        ("claim", c) if !c.is_empty() => Some(HashKey::Claim(c.to_owned())),
        ("path_param", p) if !p.is_empty() => Some(HashKey::PathParam(p.to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_keys() {
        assert_eq!(hash_key("consumer"), Some(HashKey::Consumer));
        assert_eq!(
            hash_key("header:X-Tenant"),
            Some(HashKey::Header("x-tenant".to_owned()))
        );
        assert_eq!(
            hash_key("claim:org"),
            Some(HashKey::Claim("org".to_owned()))
        );
        assert_eq!(
            hash_key("path_param:petId"),
            Some(HashKey::PathParam("petId".to_owned()))
        );
        for bad in [
            "",
            "ip",
            "header:",
            "header:a b",
            "claim:",
            "cookie:x",
            "path_param:",
        ] {
            assert_eq!(hash_key(bad), None, "{bad}");
        }
    }

    /// The model of a spec with these `upstreams` (one operation on the first), and the
    /// code and pointer of every error.
    fn lowered(upstreams: &str) -> (Option<crate::model::Model>, Vec<(&'static str, String)>) {
        let yaml = format!(
            "openapi: 3.1.0\ninfo: {{ title: t, version: \"1\" }}\nsecurity: []\n\
             x-gateway:\n  defaults: {{ upstream: a }}\n  upstreams:\n{upstreams}\n\
             paths:\n  /p:\n    get:\n      operationId: p\n      \
             responses: {{ \"200\": {{ description: ok }} }}\n"
        );
        let mut d = Diagnostics::default();
        let model = super::super::lower(
            &crate::spec::from_yaml(&yaml),
            &super::super::Options::default(),
            &mut d,
        );
        let errors = d
            .items()
            .iter()
            .filter(|e| e.severity == crate::diagnostic::Severity::Error)
            .map(|e| {
                let at = e.location.as_ref().map(|l| l.pointer.clone());
                (e.code, at.unwrap_or_default())
            })
            .collect();
        (model, errors)
    }

    #[test]
    fn targets_weights_and_balancing_reach_the_model() {
        let (model, errors) = lowered(
            r#"    a:
      targets: ["${A1}", { url: "http://a2:8080", weight: 3 }]
      balance: { hash: "header:X-Tenant" }
    b: { targets: ["http://b1"], balance: least_request }
    c: "http://c""#,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let model = model.unwrap_or_else(|| panic!("no model"));
        let a = &model.upstreams["a"];
        assert_eq!(a.url, None);
        assert_eq!(
            a.targets,
            [
                Target {
                    url: "${A1}".to_owned(),
                    weight: 1
                },
                Target {
                    url: "http://a2:8080".to_owned(),
                    weight: 3
                },
            ]
        );
        assert_eq!(
            a.balance,
            Balance::Hash(HashKey::Header("x-tenant".to_owned()))
        );
        assert_eq!(model.upstreams["b"].balance, Balance::LeastRequest);
        let c = &model.upstreams["c"];
        assert_eq!((c.url.as_deref(), c.targets.len()), (Some("http://c"), 0));
        assert_eq!(c.balance, Balance::RoundRobin);
    }

    #[test]
    fn resilience_settings_reach_the_model_as_written() {
        let (model, errors) = lowered(
            r#"    a:
      targets: ["http://a1", "http://a2"]
      outlier: { consecutive_failures: 3, base_ejection: 10s, max_ejected_percent: 34% }
      health: { path: /healthz, interval: 2s, unhealthy: 2 }
      retries: { attempts: 2, on: [connect, reset, 502, "503"], backoff: 25ms, budget: 20% }
      breaker: { max_requests: 100, max_pending: 10, max_connections: 50 }
    b: "http://b""#,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let model = model.unwrap_or_else(|| panic!("no model"));
        let a = &model.upstreams["a"].resilience;
        assert_eq!(
            a.outlier,
            Some(Outlier {
                consecutive_failures: Some(3),
                base_ejection: Some(Duration::from_secs(10)),
                max_ejected_percent: Some(34),
                ..Outlier::default()
            })
        );
        assert_eq!(
            a.health,
            Some(Health {
                path: Some("/healthz".to_owned()),
                interval: Some(Duration::from_secs(2)),
                unhealthy: Some(2),
                ..Health::default()
            })
        );
        assert_eq!(
            a.retries,
            Some(Retries {
                attempts: Some(2),
                on: Some(RetryOn {
                    connect: true,
                    reset: true,
                    timeout: false,
                    statuses: vec![502, 503],
                }),
                backoff: Some(Duration::from_millis(25)),
                budget: Some(20),
                ..Retries::default()
            })
        );
        assert_eq!(
            a.breaker,
            Some(Breaker {
                max_requests: Some(100),
                max_pending: Some(10),
                max_connections: Some(50),
            })
        );
        assert_eq!(model.upstreams["b"].resilience, Resilience::default());
    }

    #[test]
    fn malformed_resilience_settings_are_located_errors() {
        let (model, errors) = lowered(
            r#"    a:
      url: "http://a"
      outlier: { consecutive_failures: -1, base_ejection: 1m, max_ejection: 10s, panic_threshold: 150% }
      health: { path: healthz, healthy: 0 }
      retries: { attempts: 20, on: [connect, 404, sometimes], budget: lots }
      breaker: { max_requests: 0, max_connections: 0 }
    b: { url: "http://b", retries: { on: [] } }"#,
        );
        assert!(model.is_none());
        let a = "/x-gateway/upstreams/a";
        assert_eq!(
            errors,
            [
                ("E0213", format!("{a}/outlier/consecutive_failures")),
                ("E0213", format!("{a}/outlier/max_ejection")),
                ("E0213", format!("{a}/outlier/panic_threshold")),
                ("E0214", format!("{a}/health/path")),
                ("E0214", format!("{a}/health/healthy")),
                ("E0215", format!("{a}/retries/attempts")),
                ("E0215", format!("{a}/retries/on/1")),
                ("E0215", format!("{a}/retries/on/2")),
                ("E0215", format!("{a}/retries/budget")),
                ("E0216", format!("{a}/breaker/max_requests")),
                ("E0216", format!("{a}/breaker/max_connections")),
                ("E0215", "/x-gateway/upstreams/b/retries/on".to_owned()),
            ]
        );
    }

    #[test]
    fn malformed_targets_and_balancing_are_located_errors() {
        let (model, errors) = lowered(
            r#"    a: { url: "http://a", targets: ["http://b"] }
    e: { targets: [] }
    n: { targets: [{ weight: 2 }] }
    w: { targets: [{ url: "http://w", weight: 0 }, { url: "w:1", weight: 5000 }] }
    h: { targets: ["http://h"], balance: hash }
    k: { targets: ["http://k"], balance: { hash: "cookie:sid" } }
    t: { targets: ["http://t"], balance: round-robin }"#,
        );
        assert!(model.is_none());
        let u = "/x-gateway/upstreams";
        assert_eq!(
            errors,
            [
                ("E0210", format!("{u}/a/targets")),
                ("E0210", format!("{u}/e/targets")),
                ("E0210", format!("{u}/n/targets/0")),
                ("E0211", format!("{u}/w/targets/0/weight")),
                ("E0209", format!("{u}/w/targets/1/url")),
                ("E0211", format!("{u}/w/targets/1/weight")),
                ("E0212", format!("{u}/h/balance")),
                ("E0212", format!("{u}/k/balance/hash")),
                ("E0212", format!("{u}/t/balance")),
            ]
        );
    }
}
