//! The upstream layer: per upstream, its targets, how a request chooses one, and one
//! connection pool per target; calls return a typed [`UpstreamError`].
//!
//! Forwarding ([`crate::proxy::forward`]) and aggregate parts ([`crate::aggregate`]) both
//! call upstreams through here: [`Upstream::pick`] chooses a target, then
//! [`Upstream::send`] (with the operation's timeout) or [`Upstream::get`] (an aggregate
//! part, timed by the aggregate) calls it. What they get back on failure is an
//! [`UpstreamError`], which becomes a problem response in one place (its `From` impl).
//!
//! An upstream with one target (every upstream written with `url`) pays nothing for the
//! choice: no atomic, no lock, no hash, no allocation, and nothing is recorded of its
//! answers (one target is never ejected). One with several pays what `balance.rs` says,
//! plus one relaxed load while all its targets are in and a load or two per answer
//! (`health.rs`). An upstream without targets serves the spec's examples (mock mode); the
//! caller checks [`Upstream::is_mock`] first.
//!
//! - `balance.rs`: round robin, least request and consistent hashing, over target indices.
//! - `health.rs`: passive outlier ejection and the verdict of active health checks: which
//!   targets balancing may choose.
//! - `probe.rs`: active health checks, a background task per upstream that has them.
//! - `retry.rs`: which failures are retried, the backoff, and the retry budget.
//! - `breaker.rs`: the circuit breaker's counts.
//! - `pool.rs`: the connection pools, and how a connection the upstream closed is retried.
//! - `target.rs`: a target's address and pool.
//! - `error.rs`: [`UpstreamError`] and its problem responses.

mod balance;
mod breaker;
mod error;
mod health;
mod pool;
mod probe;
mod retry;
mod target;

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use http::header::{self, HeaderMap};
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response};
use serde_json::{Map, Value};

pub use error::UpstreamError;
pub(crate) use error::find;
pub use pool::Lease;
pub use target::{Address, Resolved, Target};

use self::balance::{Balancer, Policy};
use self::breaker::Breaker;
use self::health::Outliers;
pub(crate) use self::health::now_ms;
use self::retry::Retry;
pub(crate) use self::retry::{
    backoff, idempotent, on_error as retries_on_error, on_status as retries_on_status,
};
use crate::body::Body;
use crate::gateway::{BalanceDef, HashKeyDef, HealthDef, RetryDef, UpstreamDef};
use crate::proxy::Connector;

/// Every upstream of the gateway, in the order operations index them. Built once at
/// start-up.
#[derive(Debug)]
pub struct Upstreams {
    list: Box<[Upstream]>,
}

impl Upstreams {
    /// The upstreams of `defs`, with the targets start-up resolved for each (`resolved`,
    /// in the same order; an empty list is mock mode). Idle connections are kept for
    /// `idle_timeout`.
    ///
    /// Fails when the connector cannot be set up (TLS roots).
    pub fn new(
        defs: &'static [UpstreamDef],
        resolved: Vec<Vec<Resolved>>,
        idle_timeout: Duration,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Upstreams, String> {
        let connector = crate::proxy::connector(Duration::from_secs(5), true)?;
        let mut list = Vec::with_capacity(defs.len());
        for (def, targets) in defs.iter().zip(resolved) {
            // An upstream with `tls` settings gets a connector of its own (its CA, its
            // client certificate); the others share one.
            let connector = match &def.tls {
                #[cfg(feature = "tls")]
                Some(tls) => {
                    crate::proxy::connector_with_tls(def.name, tls, Duration::from_secs(5), lookup)?
                }
                #[cfg(not(feature = "tls"))]
                Some(_) => {
                    let _ = lookup;
                    return Err(format!(
                        "upstream `{}` has `tls` settings, but this gateway was built without the `tls` feature",
                        def.name
                    ));
                }
                None => connector.clone(),
            };
            list.push(Upstream::new(def, targets, idle_timeout, connector));
        }
        Ok(Upstreams {
            list: list.into_boxed_slice(),
        })
    }

    /// Upstream `index`; `None` only for an index the compiler never writes.
    pub fn get(&self, index: usize) -> Option<&Upstream> {
        self.list.get(index)
    }

    /// Every upstream.
    pub fn iter(&self) -> impl Iterator<Item = &Upstream> {
        self.list.iter()
    }

    /// Starts the active health checks of every upstream that has them: one task each,
    /// running as long as the process. Needs a Tokio runtime.
    pub fn start_health_checks(&'static self) {
        for upstream in self.list.iter() {
            if let Some(def) = upstream.health
                && !upstream.targets.is_empty()
            {
                tokio::spawn(probe::run(upstream, def));
            }
        }
    }
}

/// One upstream: its targets, its balancing, its connector.
#[derive(Debug)]
pub struct Upstream {
    /// Its name in the spec.
    pub name: &'static str,
    targets: Box<[Target]>,
    balancer: Balancer,
    /// What `balance: hash` hashes.
    hash_key: Option<HashKeyDef>,
    connector: Connector,
    /// Which targets are ejected or unhealthy.
    outliers: Outliers,
    /// Retries and their budget, when the upstream has `retries`.
    retry: Option<Retry>,
    /// The circuit breaker, when the upstream has `breaker`.
    breaker: Option<Arc<Breaker>>,
    /// Active health checks, when the upstream has `health`.
    health: Option<&'static HealthDef>,
}

/// What a request offers to choose a target by: read only by upstreams balanced by
/// `hash`, and built only for them ([`Upstream::pick`] takes a closure).
#[derive(Debug, Clone, Copy)]
pub struct Affinity<'a> {
    /// The client's request headers.
    pub headers: &'a HeaderMap,
    /// The client's request path (no query).
    pub path: &'a str,
    /// The operation's path template as written in the spec (with its version prefix),
    /// for `path_param` keys.
    pub template: &'static str,
    /// The authenticated consumer.
    pub consumer: Option<&'a str>,
    /// The claims of the verified JWT.
    pub claims: Option<&'a Map<String, Value>>,
}

impl Upstream {
    fn new(
        def: &'static UpstreamDef,
        resolved: Vec<Resolved>,
        idle_timeout: Duration,
        connector: Connector,
    ) -> Upstream {
        let weights: Vec<u32> = resolved.iter().map(|r| r.weight).collect();
        // A target's seed hashes where it is, not its place in the list.
        let seeds: Vec<u64> = resolved
            .iter()
            .map(|r| {
                let a = &r.address;
                balance::hash(format!("{}{}", a.connect_uri, a.base_path).as_bytes())
            })
            .collect();
        let (policy, hash_key) = match def.balance {
            BalanceDef::RoundRobin => (Policy::RoundRobin, None),
            BalanceDef::LeastRequest => (Policy::LeastRequest, None),
            BalanceDef::Hash(key) => (Policy::Hash, Some(key)),
        };
        Upstream {
            name: def.name,
            outliers: Outliers::new(def.outlier, resolved.len()),
            targets: resolved
                .into_iter()
                .enumerate()
                .map(|(i, r)| Target::new(r.address, idle_timeout, i))
                .collect(),
            balancer: Balancer::new(policy, &weights, &seeds),
            hash_key,
            connector,
            retry: def.retries.as_ref().map(|d| Retry {
                def: d,
                budget: retry::Budget::new(d),
            }),
            breaker: def.breaker.map(|b| Arc::new(Breaker::new(b))),
            health: def.health.as_ref(),
        }
    }

    /// Whether the upstream has no target and serves the spec's examples instead.
    pub fn is_mock(&self) -> bool {
        self.targets.is_empty()
    }

    /// Its targets, in the order of the spec.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The target for a request; `None` in mock mode. `request` is called only when the
    /// upstream balances by `hash`.
    ///
    /// Targets that are ejected or unhealthy are skipped (see `balance.rs` for how each
    /// policy does it), unless fewer than the panic threshold are usable: then every
    /// target is.
    pub fn pick<'r>(&self, request: impl FnOnce() -> Affinity<'r>) -> Option<&Target> {
        if let [only] = &*self.targets {
            return Some(only);
        }
        let key = if self.balancer.hashes() {
            self.hash_key.and_then(|k| request_key(k, &request()))
        } else {
            None
        };
        let load = |i: usize| self.targets.get(i).map_or(0, |t| t.pool.in_flight());
        let i = if self.outliers.all_in() {
            self.balancer.pick(key, load)
        } else {
            let now = now_ms();
            if self.outliers.refresh(now) {
                self.balancer.pick(key, load)
            } else {
                self.balancer
                    .pick_usable(key, load, |i| self.outliers.usable(i, now))
            }
        };
        self.targets.get(i)
    }

    /// The target for a retry after a try at `last`, with `tried` the bit set of the
    /// targets tried so far (bit `i` for target `i`, the first 64 only): the next target
    /// in the spec's order after `last` that is usable and not tried yet; else the next
    /// one not tried yet; else `last` again (an upstream with one target).
    pub fn retry_target<'a>(&'a self, last: &'a Target, tried: u64) -> &'a Target {
        let n = self.targets.len();
        let now = now_ms();
        let untried = |i: usize| i >= 64 || tried & (1 << i) == 0;
        let after = (1..n).map(|k| (last.index + k) % n);
        let pick = after
            .clone()
            .find(|i| untried(*i) && self.outliers.usable(*i, now))
            .or_else(|| after.clone().find(|i| untried(*i)));
        pick.and_then(|i| self.targets.get(i)).unwrap_or(last)
    }

    /// The upstream's retry settings, when it has `retries`.
    pub fn retries(&self) -> Option<&'static RetryDef> {
        self.retry.as_ref().map(|r| r.def)
    }

    /// Counts a request (its first try) in the retry budget; nothing without `retries`.
    pub(crate) fn budget_request(&self, now: u64) {
        if let Some(r) = &self.retry {
            r.budget.request(now);
        }
    }

    /// Whether the retry budget allows one more retry now (and counts it when it does).
    pub(crate) fn budget_retry(&self, now: u64) -> bool {
        self.retry.as_ref().is_some_and(|r| r.budget.try_retry(now))
    }

    /// Whether some target may be chosen: not every one ejected or found unhealthy. An
    /// upstream in mock mode always is.
    pub fn has_usable_target(&self) -> bool {
        self.targets.is_empty() || self.outliers.usable_count(now_ms()) > 0
    }

    /// Records the answer of a try at `target` for outlier ejection: a 5xx status or a
    /// failure that says something about the target counts against it, anything else
    /// for it. Nothing is recorded for an upstream with one target.
    fn record(&self, target: &Target, outcome: &Result<Response<Body>, UpstreamError>) {
        if !self.outliers.records() {
            return;
        }
        let failed = match outcome {
            Ok(resp) => resp.status().is_server_error(),
            Err(e) => e.counts_against_target(),
        };
        if failed {
            if self.outliers.failure(target.index, now_ms()) {
                tracing::warn!(
                    upstream = self.name,
                    target = %target.address.connect_uri,
                    "target ejected after failing repeatedly"
                );
            }
        } else if outcome.is_ok() {
            self.outliers.success(target.index);
        }
    }

    /// A place under the circuit breaker, when the upstream has one.
    fn admit(&self) -> Result<Option<breaker::Permit>, UpstreamError> {
        match &self.breaker {
            None => Ok(None),
            Some(b) => Breaker::admit(b)
                .map(Some)
                .map_err(|open| UpstreamError::BreakerOpen(open.0)),
        }
    }

    /// Sends `req` (its URI in origin form, its `Host` set) to `target` and waits at most
    /// `timeout` for the response head. The response body streams; its connection goes
    /// back to the target's pool when the body is dropped.
    ///
    /// Fails with [`UpstreamError::Timeout`] when no head arrives in time, with
    /// [`UpstreamError::BreakerOpen`] (the request not sent) when the upstream's circuit
    /// breaker is open, and with the other variants as they say. A request that meets a
    /// pooled connection the upstream closed while it was idle goes out again on a new
    /// connection when that is safe (`pool::send` says when). The outcome is recorded for
    /// outlier ejection.
    pub async fn send(
        &self,
        target: &Target,
        req: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<Body>, UpstreamError> {
        let outcome = self.send_once(target, req, timeout).await;
        self.record(target, &outcome);
        outcome
    }

    async fn send_once(
        &self,
        target: &Target,
        req: Request<Body>,
        timeout: Duration,
    ) -> Result<Response<Body>, UpstreamError> {
        let permit = self.admit()?;
        let counted = self.balancer.reads_load();
        // The call's future is polled where it lies: `tokio::time::timeout` would move it
        // (about a kilobyte) into a wrapper on every request.
        let mut sent = std::pin::pin!(pool::send(
            &target.pool,
            &self.connector,
            &target.address.connect_uri,
            req,
            counted,
            permit,
        ));
        let mut deadline = std::pin::pin!(tokio::time::sleep(timeout));
        let outcome = std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = sent.as_mut().poll(cx) {
                return Poll::Ready(Some(r));
            }
            deadline.as_mut().poll(cx).map(|()| None)
        })
        .await;
        match outcome {
            None => Err(UpstreamError::Timeout(timeout)),
            Some(result) => result.map_err(UpstreamError::from),
        }
    }

    /// Sends a GET for `path_and_query` (the target's base path already in front, see
    /// [`Address::base_path`]) with exactly `headers` plus `Host`: an aggregate part's
    /// call. No timeout here; the aggregate times its parts.
    ///
    /// Fails as [`Upstream::send`] does, except that it never times out; its outcome is
    /// recorded for outlier ejection too. Aggregate parts are not retried.
    pub async fn get(
        &self,
        target: &Target,
        path_and_query: PathAndQuery,
        headers: HeaderMap,
    ) -> Result<Response<Body>, UpstreamError> {
        let mut req = Request::new(Body::Empty);
        *req.uri_mut() = Uri::from(path_and_query);
        *req.headers_mut() = headers;
        req.headers_mut()
            .insert(header::HOST, target.address.host.clone());
        let outcome = match self.admit() {
            Err(e) => Err(e),
            Ok(permit) => pool::send(
                &target.pool,
                &self.connector,
                &target.address.connect_uri,
                req,
                self.balancer.reads_load(),
                permit,
            )
            .await
            .map_err(UpstreamError::from),
        };
        self.record(target, &outcome);
        outcome
    }
}

/// The hashed key of a request for `balance: hash`; `None` when the request has none (an
/// absent header, claim, consumer or parameter), which sends it round robin.
fn request_key(key: HashKeyDef, request: &Affinity<'_>) -> Option<u64> {
    match key {
        HashKeyDef::Header(name) => {
            let mut lines = request.headers.get_all(name).iter();
            let first = balance::hash(lines.next()?.as_bytes());
            Some(lines.fold(first, |h, v| balance::mix(h ^ balance::hash(v.as_bytes()))))
        }
        HashKeyDef::Claim(name) => match request.claims?.get(name)? {
            Value::String(s) => Some(balance::hash(s.as_bytes())),
            v @ (Value::Number(_) | Value::Bool(_)) => {
                Some(balance::hash(v.to_string().as_bytes()))
            }
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        },
        HashKeyDef::Consumer => request.consumer.map(|c| balance::hash(c.as_bytes())),
        HashKeyDef::PathParam(name) => {
            path_param(request.template, request.path, name).map(|v| balance::hash(v.as_bytes()))
        }
    }
}

/// What parameter `name` of `template` matched in `path`, as sent: the whole segment at
/// the parameter's place (a segment such as `{sid}.json` keeps its literal text, which is
/// the same for every request), or, when the parameter is in the template's last segment,
/// the rest of the path from there (a multi-segment parameter takes several segments). A
/// template's segments and the path's line up: only a last parameter can span segments.
/// `None` when the template has no such parameter.
fn path_param<'p>(template: &str, path: &'p str, name: &str) -> Option<&'p str> {
    let holds = |segment: &str| {
        segment.match_indices('{').any(|(i, _)| {
            segment
                .get(i + 1..)
                .and_then(|rest| rest.strip_prefix(name))
                .is_some_and(|rest| rest.starts_with('}'))
        })
    };
    let at = template.split('/').position(holds)?;
    let last = template.split('/').count() - 1;
    // The byte offset of segment `at` of `path`.
    let mut start = 0;
    for _ in 0..at {
        start += path.get(start..)?.find('/')? + 1;
    }
    let rest = path.get(start..)?;
    if at == last {
        Some(rest)
    } else {
        Some(rest.split('/').next().unwrap_or(rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_path_parameter_is_found_at_its_place_in_the_template() {
        let cases = [
            ("/pets/{petId}", "/pets/42", "petId", Some("42")),
            (
                "/v1/pets/{petId}/toys",
                "/v1/pets/7/toys",
                "petId",
                Some("7"),
            ),
            (
                "/Accounts/{sid}.json",
                "/Accounts/AC1.json",
                "sid",
                Some("AC1.json"),
            ),
            (
                "/files/{path}",
                "/files/a/b/c.txt",
                "path",
                Some("a/b/c.txt"),
            ),
            ("/pets/{petId}", "/pets/42", "ownerId", None),
            ("/pets/{petIdentifier}", "/pets/42", "petId", None),
        ];
        for (template, path, name, want) in cases {
            assert_eq!(path_param(template, path, name), want, "{template} {path}");
        }
    }

    #[test]
    fn keys_come_from_headers_claims_consumers_and_parameters() {
        let mut headers = HeaderMap::new();
        headers.insert("x-tenant", HeaderValue::from_static("acme"));
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"org": "acme", "n": 7, "list": [1]}"#).unwrap_or_default();
        let request = Affinity {
            headers: &headers,
            path: "/pets/acme",
            template: "/pets/{petId}",
            consumer: Some("acme"),
            claims: Some(&claims),
        };
        let acme = balance::hash(b"acme");
        assert_eq!(
            request_key(HashKeyDef::Header("x-tenant"), &request),
            Some(acme)
        );
        assert_eq!(request_key(HashKeyDef::Claim("org"), &request), Some(acme));
        assert_eq!(request_key(HashKeyDef::Consumer, &request), Some(acme));
        assert_eq!(
            request_key(HashKeyDef::PathParam("petId"), &request),
            Some(acme)
        );
        assert_eq!(
            request_key(HashKeyDef::Claim("n"), &request),
            Some(balance::hash(b"7"))
        );
        // Absent keys, and claims that are not scalars, send the request round robin.
        assert_eq!(request_key(HashKeyDef::Header("x-other"), &request), None);
        assert_eq!(request_key(HashKeyDef::Claim("list"), &request), None);
        assert_eq!(request_key(HashKeyDef::Claim("missing"), &request), None);
        let anonymous = Affinity {
            consumer: None,
            claims: None,
            ..request
        };
        assert_eq!(request_key(HashKeyDef::Consumer, &anonymous), None);
        assert_eq!(request_key(HashKeyDef::Claim("org"), &anonymous), None);
    }
}
