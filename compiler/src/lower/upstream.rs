//! `x-gateway.upstreams.NAME`: where an upstream is (one `url`, or `targets` with weights),
//! how a request chooses a target (`balance`), and its `timeout`.

use std::time::Duration;

use serde_json::Value;

use super::check_url_template;
use super::header;
use super::reader::{Obj, kind};
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::model::{Balance, HashKey, MAX_WEIGHT, Target};
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
    up.unsupported(&["health", "retries", "tls"], d);
    up.finish(d);
    if let Some(u) = &url {
        check_url_template(u, url_loc, d);
    }
    Some(Read {
        url,
        targets,
        balance,
        timeout,
    })
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
