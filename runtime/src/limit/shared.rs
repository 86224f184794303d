//! The Redis store: limits shared by every replica, exact across them.
//!
//! One request is one call of the script in `check.lua` (EVALSHA; EVAL after a NOSCRIPT,
//! e.g. when Redis restarted): it reads every limit's state, decides, and writes only when
//! all pass, atomically, in one round trip. Rates are GCRA on Redis's clock (`TIME`): the
//! theoretical arrival time at `gatewayc:rl:<policy>:<key>`, expiring once the bucket is
//! full again. Quotas are counters at `gatewayc:q:<policy>:<window>:<key>`, where
//! `<window>` names the calendar window (`2026-05`, `2026-05-01`, `2026-05-01T10`,
//! `2026-05-01T10:42`) computed here, in UTC; each expires a minute after its window ends.
//!
//! Every call is bounded by the configured timeout. When Redis does not answer in time or
//! fails, `on_error` decides (in [`super::Limiter::check`]); the connection manager
//! reconnects by itself, and the outage and the recovery are logged once each.
//!
//! A call the gateway gave up on may still run later: Redis frozen (SIGSTOP, a long fork,
//! a saturated core) queues it and runs it when it resumes. So every call carries its
//! deadline on Redis's clock, and the script does nothing once it has passed: a request
//! the gateway answered without Redis (503, let through, or counted locally, as
//! `on_error` says) is never counted in Redis afterwards. Redis's clock is estimated from
//! the `TIME` each call returns: the offset from this machine's clock is the smallest seen
//! (the call that waited least), allowed to drift up by a millisecond a second; it is
//! first read at start-up, and until Redis has answered once, calls carry no deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;

use super::memory::MemoryStore;
use super::window::{self, Span};
use super::{Item, Limit, Outcome};
use crate::gateway::OnError;

/// How long a quota counter outlives its window, so that replicas whose clocks run a
/// little behind still find it.
const QUOTA_GRACE_SECS: u64 = 60;
/// Longest GCRA interval or tolerance sent to the script, in microseconds (about 35
/// years): Lua numbers are doubles, exact below 2^53.
const MAX_MICROS: u128 = 1 << 50;

pub(crate) struct RedisStore {
    conn: ConnectionManager,
    timeout: Duration,
    on_error: OnError,
    /// The fallback for `on_error: local`.
    local: Option<Arc<MemoryStore>>,
    script: redis::Script,
    /// Whether the last call reached Redis, so that an outage is logged once when it
    /// starts and once when it ends.
    reachable: AtomicBool,
    /// Redis's clock less this machine's, in microseconds; `i64::MIN` while unknown.
    offset: AtomicI64,
    /// When `offset` was last lowered or confirmed (this machine's Unix microseconds).
    offset_at: AtomicU64,
}

/// This machine's clock, Unix microseconds.
fn local_micros() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

impl RedisStore {
    /// Sets up the connection (lazily) and logs whether Redis answers now; never fails for
    /// an unreachable Redis.
    pub(crate) async fn open(
        url: &str,
        on_error: OnError,
        timeout: Duration,
    ) -> Result<RedisStore, String> {
        if timeout.is_zero() {
            return Err("the limit store's Redis timeout must be above 0".to_owned());
        }
        let conn = crate::redis_conn::connect(url, timeout, "the limit store")?;
        let store = RedisStore {
            conn,
            timeout,
            on_error,
            local: (on_error == OnError::Local).then(MemoryStore::start),
            script: redis::Script::new(include_str!("check.lua")),
            reachable: AtomicBool::new(true),
            offset: AtomicI64::new(i64::MIN),
            offset_at: AtomicU64::new(0),
        };
        store.probe().await;
        Ok(store)
    }

    pub(crate) fn on_error(&self) -> OnError {
        self.on_error
    }

    pub(crate) fn local(&self) -> Option<&MemoryStore> {
        self.local.as_deref()
    }

    /// Evaluates every item in one script call. `Err` when Redis did not answer in time or
    /// failed (already logged).
    pub(crate) async fn check(
        &self,
        items: &[Item<'_>],
        now: Duration,
    ) -> Result<Vec<Outcome>, ()> {
        let mut call = self.script.prepare_invoke();
        let sent = local_micros();
        call.arg(self.deadline(sent));
        let mut spans = Vec::with_capacity(items.len());
        for item in items {
            match item.limit {
                Limit::Rate(gcra) => {
                    let t = gcra.t.as_micros().clamp(1, MAX_MICROS);
                    let tau = (t * u128::from(gcra.burst - 1)).min(MAX_MICROS);
                    call.key(format!("gatewayc:rl:{}:{}", item.policy, item.key))
                        .arg("r")
                        .arg(t.to_string())
                        .arg(tau.to_string());
                    spans.push(None);
                }
                Limit::Quota(quota) => {
                    let span = window::span(quota.window, now.as_secs());
                    let label = window::label(quota.window, span.start);
                    call.key(format!("gatewayc:q:{}:{label}:{}", item.policy, item.key))
                        .arg("q")
                        .arg(quota.limit)
                        .arg(span.end + QUOTA_GRACE_SECS);
                    spans.push(Some(span));
                }
            }
        }
        let mut conn = self.conn.clone();
        let reply =
            tokio::time::timeout(self.timeout, call.invoke_async::<Vec<i64>>(&mut conn)).await;
        let values = match reply {
            Ok(Ok(values)) => values,
            Ok(Err(e)) => {
                self.down(&e.to_string());
                return Err(());
            }
            Err(_) => {
                self.down("timed out");
                return Err(());
            }
        };
        if let Some(&redis_now) = values.get(1) {
            self.learn_offset(redis_now, sent);
        }
        if values.first() == Some(&-1) {
            // Ran after its deadline: nothing was counted, and this request is already
            // answered or about to be, without Redis.
            self.down("the limit script ran after the request's deadline");
            return Err(());
        }
        let Some(outcomes) = parse(&values, &spans, now) else {
            self.down("the limit script returned an unexpected reply");
            return Err(());
        };
        self.up();
        Ok(outcomes)
    }

    /// The deadline of a call sent at `sent` (this machine's clock), on Redis's clock; 0
    /// (none) while Redis's clock is unknown.
    fn deadline(&self, sent: i64) -> i64 {
        match self.offset.load(Ordering::Relaxed) {
            i64::MIN => 0,
            offset => {
                let timeout = i64::try_from(self.timeout.as_micros()).unwrap_or(i64::MAX);
                sent.saturating_add(offset).saturating_add(timeout).max(1)
            }
        }
    }

    /// Takes in Redis's clock at `redis_now` for a call sent at `sent`: the smallest offset
    /// seen (the call queued least), allowed to grow by a millisecond a second since it was
    /// last lowered, so that a drifting clock is followed and a call held up in a queue
    /// does not push deadlines later.
    fn learn_offset(&self, redis_now: i64, sent: i64) {
        let sample = redis_now.saturating_sub(sent);
        let old = self.offset.load(Ordering::Relaxed);
        let elapsed_s = sent
            .saturating_sub(i64::try_from(self.offset_at.load(Ordering::Relaxed)).unwrap_or(0))
            / 1_000_000;
        let allowed = if old == i64::MIN {
            i64::MAX
        } else {
            old.saturating_add(elapsed_s.max(0).saturating_mul(1000))
        };
        if sample <= allowed {
            self.offset.store(sample, Ordering::Relaxed);
            self.offset_at
                .store(u64::try_from(sent).unwrap_or(0), Ordering::Relaxed);
        }
    }

    /// Whether Redis answers a PING within the timeout (readiness).
    pub(crate) async fn ping(&self) -> Result<(), String> {
        crate::redis_conn::ping(&self.conn, self.timeout).await
    }

    /// Logs whether Redis answers now, and learns its clock (`TIME`); never fails.
    async fn probe(&self) {
        let mut conn = self.conn.clone();
        let time = redis::cmd("TIME");
        let sent = local_micros();
        match tokio::time::timeout(self.timeout, time.query_async::<(i64, i64)>(&mut conn)).await {
            Ok(Ok((secs, micros))) => {
                self.learn_offset(secs.saturating_mul(1_000_000).saturating_add(micros), sent);
                tracing::info!("limit store: Redis answers");
            }
            Ok(Err(e)) => self.down(&e.to_string()),
            Err(_) => self.down("timed out"),
        }
    }

    fn up(&self) {
        if !self.reachable.swap(true, Ordering::Relaxed) {
            tracing::info!("limit store: Redis answers again");
        }
    }

    fn down(&self, why: &str) {
        crate::observe::metrics::limit_store_error("redis");
        if self.reachable.swap(false, Ordering::Relaxed) {
            let then = match self.on_error {
                OnError::Allow => "requests are let through unlimited",
                OnError::Deny => "requests get 503",
                OnError::Local => "requests are counted in this process",
            };
            tracing::warn!(
                error = why,
                "limit store: Redis does not answer; {then} until it does"
            );
        } else {
            tracing::debug!(error = why, "limit store: Redis still does not answer");
        }
    }
}

/// The script's reply as outcomes: `{ok, now, (refused, remaining, reset_us, retry_us)...}`.
/// Quotas' resets come from the window computed here.
fn parse(values: &[i64], spans: &[Option<Span>], now: Duration) -> Option<Vec<Outcome>> {
    let rest = values.get(2..)?;
    if rest.len() != spans.len() * 4 {
        return None;
    }
    let micros = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
    let outcomes = rest
        .chunks_exact(4)
        .zip(spans)
        .enumerate()
        .map(|(item, (v, span))| {
            let refused = v[0] != 0;
            let remaining = u64::try_from(v[1]).unwrap_or(0);
            let (reset, wait) = match span {
                Some(span) => {
                    let reset = Duration::from_secs(span.end).saturating_sub(now);
                    (reset, reset)
                }
                None => (micros(v[2]), micros(v[3])),
            };
            Outcome {
                item,
                remaining,
                reset,
                refused: refused.then_some(wait),
            }
        })
        .collect();
    Some(outcomes)
}
