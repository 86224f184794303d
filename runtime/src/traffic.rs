//! Phase 6: limit. Each request is counted against its consumer's plan (rate and quotas)
//! and against the route's own limit, all in one [`Limiter::check`]: one Redis round trip
//! when the store is Redis, and a request refused by any limit counts against none.
//!
//! Who is counted: an authenticated consumer by name, on the plan its credential names
//! (or the default plan when that plan is missing or unknown); anonymous requests by client
//! IP, on the anonymous plan. The client IP is the peer's address, or the `X-Forwarded-For`
//! hop before the first untrusted one when the peer is a trusted proxy.

use std::net::IpAddr;

use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, StatusCode};

use crate::access::Principal;
use crate::gateway::{Gateway, LimitKey, OperationDef, PlanDef};
use crate::limit::{Check, Decision, Limiter, TrustedProxies, client_ip};
use crate::problem::{Kind, Problem};

static X_FORWARDED_FOR: HeaderName =
    HeaderName::from_static(gatewayc_vocab::headers::X_FORWARDED_FOR);

/// The limit phase's state, built once at start-up.
#[derive(Debug)]
pub struct Limits {
    limiter: Limiter,
    /// Every key starts with the gateway's name, so gateways sharing a Redis never share
    /// counters.
    gateway: &'static str,
    plans: &'static [PlanDef],
    default_plan: Option<usize>,
    anonymous_plan: Option<usize>,
    trusted: TrustedProxies,
}

impl Limits {
    /// `G`'s limits, or `None` when it limits nothing.
    pub async fn build<G: Gateway>(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Limits>, String> {
        let Some(def) = &G::LIMITS else {
            return Ok(None);
        };
        let trusted = TrustedProxies::parse(def.trusted_proxies)?;
        let limiter = Limiter::new(def, lookup).await?;
        Ok(Some(Limits {
            limiter,
            gateway: G::NAME,
            plans: G::PLANS,
            default_plan: def.default_plan,
            anonymous_plan: def.anonymous_plan,
            trusted,
        }))
    }

    /// Whether the limit store can answer (readiness); `None` when it is in memory.
    pub async fn readiness(&self) -> Option<Result<(), String>> {
        self.limiter.ready().await
    }

    /// Counts the request; the headers to add to its response, or the 429/503 problem.
    /// `counted_on` is set to the plan it was counted on (a plan's name, or `anonymous`
    /// for the anonymous plan).
    pub async fn check(
        &self,
        op: &OperationDef,
        principal: Option<&Principal>,
        peer: IpAddr,
        headers: &HeaderMap,
        counted_on: &mut Option<&'static str>,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, Problem> {
        let consumer = principal.and_then(|p| p.consumer.as_deref());
        let g = self.gateway;
        // Who is counted: `c:NAME` for a consumer, `ip:ADDR` otherwise; the gateway's name
        // (and, for a route limit, the operation) goes in front. The client address is
        // worked out only when a limit counts by it.
        let ip_who = || {
            // Proxies append: the last line holds the hops nearest to us.
            let xff = headers.get_all(&X_FORWARDED_FOR).iter().next_back();
            format!("ip:{}", client_ip(peer, xff, &self.trusted))
        };
        let consumer_who = |c: &str| {
            let mut who = String::with_capacity(2 + c.len());
            who.push_str("c:");
            who.push_str(c);
            who
        };
        let key = |parts: &[&str]| {
            let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    key.push(':');
                }
                key.push_str(part);
            }
            key
        };
        let (plan, plan_key) = match consumer {
            Some(c) => {
                let named = principal
                    .and_then(|p| p.plan.as_deref())
                    .and_then(|p| self.plans.iter().position(|def| def.name == p));
                (named.or(self.default_plan), key(&[g, "c", c]))
            }
            None => (self.anonymous_plan, key(&[g, &ip_who()])),
        };
        let route_keys: Vec<String> = op
            .rate_limits
            .iter()
            .map(|l| {
                let who = match l.key {
                    LimitKey::Consumer => consumer.map_or_else(ip_who, consumer_who),
                    LimitKey::Ip => ip_who(),
                    // Header and claim values may be credentials: only a digest of them
                    // becomes a key, in memory or in Redis.
                    LimitKey::Header(h) => format!(
                        "h:{}",
                        digest(headers.get(h).map_or(&[][..], |v| v.as_bytes()))
                    ),
                    LimitKey::Claim(c) => format!(
                        "j:{}",
                        digest(
                            principal
                                .and_then(|p| p.token.as_ref())
                                .and_then(|t| t.claims.get(c))
                                .map(claim_text)
                                .unwrap_or_default()
                                .as_bytes()
                        )
                    ),
                };
                key(&[g, op.id, &who])
            })
            .collect();
        let mut checks = Vec::with_capacity(1 + route_keys.len());
        let plan_def = plan.and_then(|i| self.plans.get(i));
        let plan_name = match plan_def {
            Some(p) if consumer.is_some() => p.name,
            Some(_) => "anonymous",
            None => "none",
        };
        if plan_def.is_some() {
            *counted_on = Some(plan_name);
        }
        let limit = match (plan_def.is_some(), op.rate_limits.is_empty()) {
            (true, true) => "plan",
            (true, false) => "plan+route",
            (false, _) => "route",
        };
        if let Some(p) = plan_def {
            checks.push(Check {
                policy: p.name,
                key: &plan_key,
                rate: p.rate,
                quotas: p.quotas,
            });
        }
        for (l, key) in op.rate_limits.iter().zip(&route_keys) {
            checks.push(Check {
                policy: "route",
                key,
                rate: Some(l.rate),
                quotas: &[],
            });
        }
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        match self.limiter.check(&checks).await {
            Decision::Allowed(h) => {
                crate::observe::metrics::limit_decision(plan_name, limit, "allowed");
                Ok(h)
            }
            Decision::Limited {
                retry_after,
                headers,
            } => {
                crate::observe::metrics::limit_decision(plan_name, limit, "limited");
                let secs = retry_after.as_secs().max(1);
                // Which limit refused is in the `RateLimit-Policy` the client gets too.
                let policy = headers
                    .iter()
                    .find(|(n, _)| n.as_str() == "ratelimit")
                    .and_then(|(_, v)| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let mut p = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many requests; retry in {secs} s"),
                )
                .with_header(RETRY_AFTER, HeaderValue::from(secs))
                .because(
                    Kind::RateLimited,
                    format!("plan {plan_name}, {limit} limit: {policy}; retry in {secs} s"),
                );
                for (n, v) in headers {
                    p = p.with_header(n, v);
                }
                Err(p)
            }
            Decision::Unavailable => {
                crate::observe::metrics::limit_decision(plan_name, limit, "unavailable");
                Err(Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "limits cannot be checked right now; try again later",
                )
                .with_header(RETRY_AFTER, HeaderValue::from_static("1"))
                .because(
                    Kind::LimitStoreUnavailable,
                    "the limit store did not answer (on_error: deny)",
                ))
            }
        }
    }
}

/// The first 16 bytes of a value's SHA-256, in hex: a bucket name that does not reveal the
/// value.
fn digest(value: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(value)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A claim as a bucket name: strings as they are, other values as JSON.
fn claim_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
