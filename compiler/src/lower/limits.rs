//! Traffic control: `x-gateway.plans`, `x-gateway.limits` and route-level `rate_limit`.
//!
//! Rates are written `N/unit` with unit `s`, `min`, `h` or `day` (long forms too) and an
//! optional `burst` (default: `N`); quotas are `N/window` with window `minute`, `hour`,
//! `day` or `month` (UTC calendar windows).

use std::time::Duration;

use gatewayc_vocab::net::Net;
use serde_json::Value;

use super::header;
use super::reader::{self, Obj, did_you_mean};
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::model::{
    LimitKey, LimitStore, Limits, OnError, Plan, Quota, Rate, RouteLimit, Scheme, SchemeKind,
    SchemeUse, Window,
};

/// Default time a request waits for the Redis limit store.
const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(50);

/// `N/unit` → (N, period).
fn parse_rate(s: &str) -> Option<(u64, Duration)> {
    let (n, unit) = s.split_once('/')?;
    let n: u64 = n.trim().parse().ok().filter(|&n| n > 0)?;
    let secs = match unit.trim() {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        "d" | "day" => 86_400,
        _ => return None,
    };
    Some((n, Duration::from_secs(secs)))
}

/// `N/window` → quota.
fn parse_quota(s: &str) -> Option<Quota> {
    let (n, unit) = s.split_once('/')?;
    let limit: u64 = n.trim().parse().ok().filter(|&n| n > 0)?;
    let window = match unit.trim() {
        "min" | "minute" => Window::Minute,
        "h" | "hour" => Window::Hour,
        "d" | "day" => Window::Day,
        "month" => Window::Month,
        _ => return None,
    };
    Some(Quota { limit, window })
}

fn bad_value(loc: Location, key: &str, found: &Value, hint: &str) -> Diagnostic {
    let shown = match found {
        Value::String(s) => format!("`{s}`"),
        Value::Number(n) => format!("`{n}`"),
        other => reader::kind(other).to_owned(),
    };
    Diagnostic::error(
        "E0601",
        Some(loc),
        format!("`{key}` is malformed: found {shown}"),
    )
    .hint(hint.to_owned())
}

/// Reads `rate` and `burst` of `obj`.
fn rate(obj: &mut Obj<'_>, d: &mut Diagnostics) -> Option<Option<Rate>> {
    let Some(v) = obj.raw("rate") else {
        if obj.raw("burst").is_some() {
            d.push(
                Diagnostic::error("E0601", Some(obj.loc("burst")), "`burst` without a `rate`")
                    .hint("a burst is how far a `rate` may be exceeded at once: add `rate: 10/s`"),
            );
            return None;
        }
        return Some(None);
    };
    let Some((limit, period)) = v.as_str().and_then(parse_rate) else {
        d.push(bad_value(
            obj.loc("rate"),
            "rate",
            v,
            "write requests per unit: `10/s`, `600/min`, `10000/h`, `100000/day`",
        ));
        return None;
    };
    let burst = match obj.raw("burst") {
        None => limit,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|b| b > 0) => n.as_u64()?,
        Some(other) => {
            d.push(bad_value(
                obj.loc("burst"),
                "burst",
                other,
                "`burst` is how many requests may come at once: a whole number, at least 1",
            ));
            return None;
        }
    };
    Some(Some(Rate {
        limit,
        period,
        burst,
    }))
}

/// Reads `x-gateway.plans`: (name, plan, location of the name).
pub fn read_plans(obj: &mut Obj<'_>, d: &mut Diagnostics) -> Vec<(Plan, Location)> {
    let file = obj.file;
    let mut plans = Vec::new();
    for (name, ptr, value) in obj.entries("plans", d) {
        let loc = Location::key(file, ptr.clone());
        if name == "route" {
            d.push(Diagnostic::error(
                "E0601",
                Some(loc.clone()),
                "`route` names the route limits in rate-limit headers; choose another plan name",
            ));
            continue;
        }
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            d.push(Diagnostic::error(
                "E0601",
                Some(loc.clone()),
                format!("plan name `{name}` must be letters, digits, `-`, `_` and `.`"),
            ));
            continue;
        }
        let Some(mut p) = Obj::new(file, ptr, value, "a plan", d) else {
            continue;
        };
        let rate = rate(&mut p, d);
        let mut quotas = Vec::new();
        let mut ok = rate.is_some();
        if let Some(v) = p.raw("quota") {
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for item in items {
                match item.as_str().and_then(parse_quota) {
                    Some(q) if quotas.iter().all(|o: &Quota| o.window != q.window) => {
                        quotas.push(q);
                    }
                    Some(_) => {
                        ok = false;
                        d.push(bad_value(
                            p.loc("quota"),
                            "quota",
                            item,
                            "one quota per window",
                        ));
                    }
                    None => {
                        ok = false;
                        d.push(bad_value(
                            p.loc("quota"),
                            "quota",
                            item,
                            "write requests per window: `1000/minute`, `10000/day`, `5000000/month`",
                        ));
                    }
                }
            }
        }
        quotas.sort_by_key(|q| q.window);
        p.finish(d);
        if let (true, Some(rate)) = (ok, rate) {
            plans.push((Plan { name, rate, quotas }, loc));
        }
    }
    plans
}

/// `x-gateway.limits` as written, before plan names are resolved.
#[derive(Debug, Clone)]
pub struct LimitsDecl {
    store: LimitStore,
    default_plan: Option<(String, Location)>,
    anonymous_plan: Option<(String, Location)>,
    trusted_proxies: Vec<String>,
}

/// Reads `x-gateway.limits`.
pub fn read_limits(obj: &mut Obj<'_>, d: &mut Diagnostics) -> Option<LimitsDecl> {
    let mut l = obj.object("limits", "x-gateway.limits", d)?;
    let here = l.here();
    let store = l.string("store", d);
    let url = l.string("url", d);
    let on_error_loc = l.loc("on_error");
    let on_error = l.string("on_error", d);
    let timeout = l.duration("timeout", d);
    let default_plan = l
        .string("default_plan", d)
        .map(|p| (p, l.loc("default_plan")));
    let anonymous_plan = l
        .string("anonymous_plan", d)
        .map(|p| (p, l.loc("anonymous_plan")));
    let proxies_loc = l.loc("trusted_proxies");
    let trusted_proxies = match l.raw("trusted_proxies") {
        None => Vec::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(other) => {
            d.push(reader::type_error(
                proxies_loc.clone(),
                "trusted_proxies",
                "a list of addresses or CIDR ranges",
                other,
            ));
            Vec::new()
        }
    };
    l.finish(d);
    for p in &trusted_proxies {
        if Net::parse(p).is_none() {
            d.push(
                Diagnostic::error(
                    "E0605",
                    Some(proxies_loc.clone()),
                    format!("`{p}` is not an IP address or a CIDR range"),
                )
                .hint("write `10.0.0.0/8`, `192.168.1.10` or `fd00::/8`"),
            );
        }
    }
    let store = match (store.as_deref(), url) {
        (None | Some("memory"), None) => {
            if on_error.is_some() {
                d.push(Diagnostic::error(
                    "E0604",
                    Some(on_error_loc),
                    "`on_error` applies to a Redis store only",
                ));
            }
            LimitStore::Memory
        }
        (None | Some("redis"), Some(url)) => {
            let on_error = match on_error.as_deref() {
                Some("allow") => OnError::Allow,
                Some("deny") => OnError::Deny,
                Some("local") => OnError::Local,
                Some(other) => {
                    d.push(Diagnostic::error(
                        "E0604",
                        Some(on_error_loc),
                        format!("`on_error` must be `allow`, `deny` or `local`, found `{other}`"),
                    ));
                    OnError::Deny
                }
                None => {
                    d.push(
                        Diagnostic::error(
                            "E0604",
                            Some(here),
                            "a Redis limit store needs `on_error`: what requests get when Redis cannot answer",
                        )
                        .hint("`allow` lets them through, `deny` answers 503, `local` counts in each replica until Redis is back"),
                    );
                    // Reported; keep reading so plan names are checked too.
                    OnError::Deny
                }
            };
            LimitStore::Redis {
                url,
                on_error,
                timeout: timeout.unwrap_or(DEFAULT_REDIS_TIMEOUT),
            }
        }
        (Some("memory"), Some(_)) => {
            d.push(Diagnostic::error(
                "E0604",
                Some(here),
                "the memory store takes no `url`; did you mean `store: redis`?",
            ));
            return None;
        }
        (Some("redis"), None) => {
            d.push(Diagnostic::error(
                "E0604",
                Some(here),
                "a Redis limit store needs a `url` (for example `\"${REDIS_URL}\"`)",
            ));
            return None;
        }
        (Some(other), _) => {
            d.push(Diagnostic::error(
                "E0604",
                Some(here),
                format!("unknown limit store `{other}`; use `memory` or `redis`"),
            ));
            return None;
        }
    };
    Some(LimitsDecl {
        store,
        default_plan,
        anonymous_plan,
        trusted_proxies,
    })
}

impl PartialEq for LimitsDecl {
    /// The same settings, wherever they are written.
    fn eq(&self, other: &Self) -> bool {
        let name = |p: &Option<(String, Location)>| p.as_ref().map(|(n, _)| n.clone());
        self.store == other.store
            && name(&self.default_plan) == name(&other.default_plan)
            && name(&self.anonymous_plan) == name(&other.anonymous_plan)
            && self.trusted_proxies == other.trusted_proxies
    }
}

/// Reads a route-level `rate_limit` from a path item's or operation's `x-gateway`.
pub fn read_rate_limit(obj: &mut Obj<'_>, d: &mut Diagnostics) -> Option<(RouteLimit, Location)> {
    let loc = obj.loc("rate_limit");
    let mut r = obj.object("rate_limit", "x-gateway.rate_limit", d)?;
    let rate = rate(&mut r, d);
    let key_loc = r.loc("key");
    let key = match r.string("key", d).as_deref() {
        None | Some("consumer") => Some(LimitKey::Consumer),
        Some("ip") => Some(LimitKey::Ip),
        Some(k) => match k.split_once(':') {
            Some(("header", h)) if header::is_token(h) => {
                Some(LimitKey::Header(h.to_ascii_lowercase()))
            }
            Some(("claim", c)) if !c.is_empty() => Some(LimitKey::Claim(c.to_owned())),
            _ => {
                d.push(
                    Diagnostic::error(
                        "E0601",
                        Some(key_loc),
                        format!("`key` is malformed: found `{k}`"),
                    )
                    .hint("use `consumer`, `ip`, `header:NAME` or `claim:NAME`"),
                );
                None
            }
        },
    };
    r.finish(d);
    match (rate?, key?) {
        (Some(rate), key) => Some((RouteLimit { rate, key }, loc)),
        (None, _) => {
            d.push(Diagnostic::error(
                "E0601",
                Some(loc),
                "`rate_limit` needs a `rate`",
            ));
            None
        }
    }
}

/// Resolves plan names; `None` plans/limits are fine. Returns the model's plans (sorted by
/// name) and limits, present when anything is limited.
pub fn finish(
    plans: Vec<(Plan, Location)>,
    decl: Option<LimitsDecl>,
    any_route_limit: bool,
    d: &mut Diagnostics,
) -> (Vec<Plan>, Option<Limits>) {
    let mut plans: Vec<Plan> = plans.into_iter().map(|(p, _)| p).collect();
    plans.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
    let resolve = |p: Option<(String, Location)>, d: &mut Diagnostics| -> Option<usize> {
        let (name, loc) = p?;
        let found = names.iter().position(|n| *n == name);
        if found.is_none() {
            let mut diag = Diagnostic::error(
                "E0602",
                Some(loc),
                format!("plan `{name}` is not defined in `x-gateway.plans`"),
            );
            diag = match did_you_mean(&name, &names) {
                Some(best) => diag.hint(format!("did you mean `{best}`?")),
                None if names.is_empty() => diag.hint("define it under `x-gateway.plans`"),
                None => diag.hint(format!("defined plans: {}", names.join(", "))),
            };
            d.push(diag);
        }
        found
    };
    let limits = match decl {
        Some(decl) => Some(Limits {
            store: decl.store,
            default_plan: resolve(decl.default_plan, d),
            anonymous_plan: resolve(decl.anonymous_plan, d),
            trusted_proxies: decl.trusted_proxies,
        }),
        None if !plans.is_empty() || any_route_limit => Some(Limits {
            store: LimitStore::Memory,
            default_plan: None,
            anonymous_plan: None,
            trusted_proxies: Vec::new(),
        }),
        None => None,
    };
    (plans, limits)
}

/// A route limit keyed by a claim needs every way into the route to carry a JWT.
pub fn check_claim_keys(
    limits: &[(RouteLimit, Location)],
    security: &[Vec<SchemeUse>],
    schemes: &[Scheme],
    op: &str,
    d: &mut Diagnostics,
) {
    for (limit, loc) in limits {
        let LimitKey::Claim(claim) = &limit.key else {
            continue;
        };
        let with_jwt = security
            .iter()
            .filter(|alt| {
                alt.iter().any(|u| {
                    matches!(
                        schemes.get(u.scheme).map(|s| &s.kind),
                        Some(SchemeKind::Jwt(_))
                    )
                })
            })
            .count();
        if with_jwt == 0 {
            d.push(
                Diagnostic::error(
                    "E0603",
                    Some(loc.clone()),
                    format!("operation `{op}` is limited per claim `{claim}`, but its security has no JWT scheme to take the claim from"),
                )
                .hint("key the limit by `consumer`, `ip` or `header:NAME`, or require a JWT scheme"),
            );
        } else if with_jwt < security.len() {
            d.push(Diagnostic::warning(
                "W0601",
                Some(loc.clone()),
                format!("operation `{op}` is limited per claim `{claim}`, but some of its security alternatives carry no JWT; those requests share one bucket"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_quotas_parse() {
        assert_eq!(parse_rate("10/s"), Some((10, Duration::from_secs(1))));
        assert_eq!(parse_rate("600/min"), Some((600, Duration::from_secs(60))));
        assert_eq!(
            parse_rate("5 / day"),
            Some((5, Duration::from_secs(86_400)))
        );
        assert_eq!(parse_rate("0/s"), None);
        assert_eq!(parse_rate("10/week"), None);
        assert_eq!(parse_rate("ten/s"), None);
        assert_eq!(
            parse_quota("5000000/month"),
            Some(Quota {
                limit: 5_000_000,
                window: Window::Month
            })
        );
        assert_eq!(parse_quota("10/s"), None);
    }
}
