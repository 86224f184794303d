//! Traffic control: rates (GCRA) and calendar quotas per consumer, client IP, header or
//! claim, counted in this process or in a Redis shared by every replica.
//!
//! A request is checked once, against every limit that applies to it (its plan's rate and
//! quotas, its route's rates), and counts against them only when all of them let it
//! through: a request refused by one limit burns nothing of the others, so a client that
//! hits its rate keeps its monthly quota.
//!
//! - Memory store ([`LimitStoreDef::Memory`], and the fallback for `on_error: local`):
//!   governor keyed limiters for rates, a sharded map of counters for quotas; a background
//!   task evicts idle keys and past windows, so memory follows the active keys.
//! - Redis store: one Lua script per request (one round trip) evaluates every limit and
//!   writes only when all pass; every call is bounded by the configured timeout, and when
//!   Redis cannot answer, `on_error` decides.
//!
//! Headers follow the IETF draft "RateLimit header fields for HTTP"
//! (draft-ietf-httpapi-ratelimit-headers, structured-field syntax):
//!
//! - `RateLimit-Policy` lists one item per limit: a rate is named after its check's policy
//!   (`"gold";q=100;w=60`), a quota after the policy and its window
//!   (`"gold-day";q=1000;w=86400`). The draft's policies are quotas of `q` units per window
//!   of `w` seconds; a GCRA rate of `limit` per `period` is published as its sustained rate
//!   over the period rounded up to whole seconds (`q = floor(limit × w / period)`), since
//!   that is what a client pacing itself needs. The burst is not in the field (the draft has
//!   no parameter for it) but shows in `r`. A month quota's `w` is the length of the current
//!   month.
//! - `RateLimit` names the most restrictive limit (the one with the fewest requests left;
//!   on a tie, the later reset), with `r` the requests it still allows now and `t` the
//!   seconds until it is full again (a quota: the end of its window; a rate: until its
//!   bucket has refilled), rounded up. On a refusal it names the refusing limit with `r=0`
//!   and `t` equal to `Retry-After`.

mod memory;
mod proxies;
#[cfg(feature = "redis")]
mod shared;
mod window;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue};

#[cfg(feature = "redis")]
use crate::gateway::OnError;
use crate::gateway::{LimitStoreDef, LimitsDef, QuotaDef, RateDef};

pub use proxies::{TrustedProxies, client_ip};

use memory::MemoryStore;
#[cfg(feature = "redis")]
use shared::RedisStore;

/// The `RateLimit-Policy` header name.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// The `RateLimit` header name.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// One set of limits a request is counted against.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// The name shown in the headers: the plan name, or e.g. `route`. Checks with the same
    /// policy and key share their counters, so give each distinct limit its own policy.
    pub policy: &'static str,
    /// Who is counted (consumer name, `ip:1.2.3.4`, ...), already namespaced by the caller.
    pub key: &'a str,
    /// The rate, if any.
    pub rate: Option<RateDef>,
    /// The quotas.
    pub quotas: &'static [QuotaDef],
}

/// What [`Limiter::check`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let it through; set these headers on the response (`RateLimit-Policy` and
    /// `RateLimit`; none when no limit applied, or when Redis failed with `on_error: allow`).
    Allowed(Vec<(HeaderName, HeaderValue)>),
    /// Answer 429, with `Retry-After` set from `retry_after` (whole seconds, at least 1) and
    /// these headers (the refusing limit with `r=0`).
    Limited {
        /// How long the client should wait before retrying.
        retry_after: Duration,
        /// `RateLimit-Policy` and `RateLimit`.
        headers: Vec<(HeaderName, HeaderValue)>,
    },
    /// The store could not answer in time and `on_error` is `deny`: answer 503.
    Unavailable,
}

/// What a gateway built without the `redis` feature says when its spec asks for Redis
/// (`gatewayc build` turns the feature on for such specs, so only a hand-made build hits it).
#[cfg(not(feature = "redis"))]
const REDIS_MISSING: &str = "the limit store is Redis, but this gateway was built without the `redis` feature of gatewayc-runtime";

/// The limit state of a gateway, built once at start-up from its [`LimitsDef`].
pub struct Limiter {
    store: Store,
    trusted: TrustedProxies,
}

enum Store {
    Memory(Arc<MemoryStore>),
    #[cfg(feature = "redis")]
    Redis(RedisStore),
}

impl Limiter {
    /// Whether the store can answer: the memory store always, a Redis store when Redis
    /// answers a PING (readiness). `None` for the memory store, which has nothing to check.
    pub async fn ready(&self) -> Option<Result<(), String>> {
        match &self.store {
            Store::Memory(_) => None,
            #[cfg(feature = "redis")]
            Store::Redis(r) => Some(r.ping().await),
        }
    }

    /// Builds the limiter for `def` (the gateway's `LIMITS`); `lookup` resolves `${VAR}`
    /// references in a Redis URL (the process environment in production).
    ///
    /// The memory store does no I/O. A Redis store connects lazily: when Redis does not
    /// answer now, that is logged and the gateway starts anyway, applying `on_error` until
    /// Redis is back. Errors: a missing variable, an invalid URL or trusted proxy entry, a
    /// zero timeout. Must run on a Tokio runtime (the eviction task and the Redis
    /// connection run there).
    pub async fn new(
        def: &'static LimitsDef,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Limiter, String> {
        let trusted = TrustedProxies::parse(def.trusted_proxies)?;
        let store = match &def.store {
            LimitStoreDef::Memory => Store::Memory(MemoryStore::start()),
            #[cfg(not(feature = "redis"))]
            LimitStoreDef::Redis { .. } => {
                let _ = lookup;
                return Err(REDIS_MISSING.to_owned());
            }
            #[cfg(feature = "redis")]
            LimitStoreDef::Redis {
                url,
                on_error,
                timeout,
            } => {
                let url = crate::env::resolve_with(url, lookup).map_err(|missing| {
                    let names: Vec<_> = missing.into_iter().collect();
                    format!(
                        "limit store: missing environment variables: {}",
                        names.join(", ")
                    )
                })?;
                Store::Redis(RedisStore::open(&url, *on_error, *timeout).await?)
            }
        };
        Ok(Limiter { store, trusted })
    }

    /// Checks a request against every limit of `checks` and, only if every one lets it
    /// through, counts it against all of them (atomically in Redis). Never waits longer
    /// than the Redis store's timeout (plus scheduling).
    pub async fn check(&self, checks: &[Check<'_>]) -> Decision {
        let items = items(checks);
        if items.is_empty() {
            return Decision::Allowed(Vec::new());
        }
        let now = unix_now();
        let outcomes = match &self.store {
            Store::Memory(memory) => memory.check(&items, now),
            #[cfg(feature = "redis")]
            Store::Redis(redis) => match redis.check(&items, now).await {
                Ok(outcomes) => outcomes,
                Err(()) => match (redis.on_error(), redis.local()) {
                    (OnError::Local, Some(local)) => local.check(&items, now),
                    (OnError::Deny, _) => return Decision::Unavailable,
                    _ => return Decision::Allowed(Vec::new()),
                },
            },
        };
        decide(&items, &outcomes, now)
    }

    /// The proxies whose `X-Forwarded-For` is believed, for [`client_ip`].
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted
    }

    /// Drops idle state from the memory store now (rate keys whose bucket is full again,
    /// quota counters of past windows) instead of waiting for the background task, which
    /// does this every few seconds. For tools and tests.
    pub fn evict_idle(&self) {
        if let Some(memory) = self.memory() {
            memory.evict_idle();
        }
    }

    /// How many keys the memory store holds (rate states plus quota counters). For tools
    /// and tests.
    pub fn memory_keys(&self) -> usize {
        self.memory().map_or(0, |m| m.len())
    }

    fn memory(&self) -> Option<&MemoryStore> {
        match &self.store {
            Store::Memory(memory) => Some(memory),
            #[cfg(feature = "redis")]
            Store::Redis(redis) => redis.local(),
        }
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the Redis URL: it may hold a password.
        let mut d = f.debug_struct("Limiter");
        match &self.store {
            Store::Memory(memory) => d.field("store", &"memory").field("keys", &memory.len()),
            #[cfg(feature = "redis")]
            Store::Redis(redis) => d
                .field("store", &"redis")
                .field("on_error", &redis.on_error()),
        };
        d.field("trusted_proxies", &self.trusted).finish()
    }
}

/// One limit of one check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item<'a> {
    policy: &'static str,
    key: &'a str,
    limit: Limit,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Limit {
    Rate(Gcra),
    Quota(QuotaDef),
}

/// A rate as GCRA sees it: one request per `t`, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Gcra {
    /// The rate as configured, made sane (every field at least 1).
    limit: u64,
    period: Duration,
    burst: u64,
    /// The emission interval, `period / limit`.
    t: Duration,
}

impl Gcra {
    fn new(rate: RateDef) -> Gcra {
        let limit = rate.limit.max(1);
        let period = rate.period.max(Duration::from_nanos(1));
        let t = period.as_nanos() / u128::from(limit);
        let t = Duration::from_nanos(u64::try_from(t.max(1)).unwrap_or(u64::MAX));
        Gcra {
            limit,
            period,
            burst: rate.burst.max(1),
            t,
        }
    }

    /// `q` and `w` of the rate's `RateLimit-Policy` item (see the module docs).
    fn policy(self) -> (u64, u64) {
        let w = self.period.as_nanos().div_ceil(1_000_000_000).max(1);
        let q = u128::from(self.limit) * w * 1_000_000_000 / self.period.as_nanos().max(1);
        (
            u64::try_from(q.max(1)).unwrap_or(u64::MAX),
            u64::try_from(w).unwrap_or(u64::MAX),
        )
    }
}

/// What one limit said about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Index into the request's items.
    item: usize,
    /// Requests it still allows now (after this one, when it was let through).
    remaining: u64,
    /// Until it is full again.
    reset: Duration,
    /// How long to wait, when it refused the request.
    refused: Option<Duration>,
}

fn items<'a>(checks: &[Check<'a>]) -> Vec<Item<'a>> {
    let mut items = Vec::new();
    for check in checks {
        let item = |limit| Item {
            policy: check.policy,
            key: check.key,
            limit,
        };
        if let Some(rate) = check.rate {
            items.push(item(Limit::Rate(Gcra::new(rate))));
        }
        items.extend(check.quotas.iter().map(|q| item(Limit::Quota(*q))));
    }
    items
}

/// The time as a duration since the Unix epoch (zero before it).
fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Whole seconds, rounded up.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The decision and its headers from every limit's outcome.
fn decide(items: &[Item<'_>], outcomes: &[Outcome], now: Duration) -> Decision {
    let refusal = outcomes
        .iter()
        .filter_map(|o| o.refused.map(|wait| (o, wait)))
        .max_by_key(|(_, wait)| *wait);
    match refusal {
        Some((outcome, wait)) => {
            let retry = ceil_secs(wait).max(1);
            Decision::Limited {
                retry_after: Duration::from_secs(retry),
                headers: headers(items, now, outcome.item, 0, retry),
            }
        }
        None => {
            let tightest = outcomes
                .iter()
                .min_by(|a, b| a.remaining.cmp(&b.remaining).then(b.reset.cmp(&a.reset)));
            match tightest {
                Some(o) => {
                    Decision::Allowed(headers(items, now, o.item, o.remaining, ceil_secs(o.reset)))
                }
                None => Decision::Allowed(Vec::new()),
            }
        }
    }
}

/// `RateLimit-Policy` for every item, `RateLimit` for item `shown`.
fn headers(
    items: &[Item<'_>],
    now: Duration,
    shown: usize,
    remaining: u64,
    reset: u64,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut policy = String::with_capacity(32 * items.len());
    let mut current = String::with_capacity(48);
    let mut n = itoa::Buffer::new();
    for (i, item) in items.iter().enumerate() {
        let (q, w) = match item.limit {
            Limit::Rate(gcra) => gcra.policy(),
            Limit::Quota(quota) => (
                quota.limit,
                window::span(quota.window, now.as_secs()).seconds(),
            ),
        };
        if i > 0 {
            policy.push_str(", ");
        }
        push_name(&mut policy, item);
        policy.push_str(";q=");
        policy.push_str(n.format(q));
        policy.push_str(";w=");
        policy.push_str(n.format(w));
        if i == shown {
            push_name(&mut current, item);
            current.push_str(";r=");
            current.push_str(n.format(remaining));
            current.push_str(";t=");
            current.push_str(n.format(reset));
        }
    }
    let mut out = Vec::with_capacity(2);
    for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, current)] {
        // Every byte is visible ASCII or a space by construction; skip rather than panic.
        // The text becomes the value without a copy.
        if let Ok(value) = HeaderValue::from_maybe_shared(bytes::Bytes::from(value)) {
            out.push((name, value));
        }
    }
    out
}

/// The item's policy name as a structured-field string: the policy, with `-<window>` for a
/// quota. Quotes and backslashes are escaped; other characters outside visible ASCII become
/// `?`.
fn push_name(out: &mut String, item: &Item<'_>) {
    match item.limit {
        Limit::Quota(quota) => gatewayc_vocab::headers::push_quoted(
            out,
            &[item.policy, "-", window::name(quota.window)],
        ),
        Limit::Rate(_) => gatewayc_vocab::headers::push_quoted(out, &[item.policy]),
    }
}

#[cfg(test)]
#[cfg(feature = "redis")]
mod tests;
