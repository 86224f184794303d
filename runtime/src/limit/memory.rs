//! The memory store: limits counted in this process.
//!
//! Rates are governor keyed limiters (GCRA), one per policy and rate, keyed by the caller's
//! key. Quotas are counters in a sharded map, one per policy, window kind and key, each
//! holding the window it counts. A request is counted only when every limit lets it
//! through: quotas are reserved first, then rates are checked in order; when one refuses,
//! the rates already passed and the quotas reserved are given back. Giving back a rate
//! moves its theoretical arrival time back by one emission interval through the governor
//! state store, which this module shares with the limiter (governor has no undo of its
//! own). So a refused request ends up counted nowhere; while it is being undone, a
//! concurrent request for the same key may see one request too many and be refused, but
//! never is one admitted too many.
//!
//! A background task evicts idle state every few seconds: rate keys whose bucket is full
//! again (`retain_recent`), and quota counters whose window has ended. Memory therefore
//! follows the keys active in the last few seconds for rates, and the keys seen in the
//! current window for quotas (a month quota keeps a counter per key until the month ends,
//! which exactness requires).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::{RateLimiter, StateStore};

use super::window;
use super::{Gcra, Item, Limit, Outcome};

/// How often idle state is evicted.
const EVICT_EVERY: Duration = Duration::from_secs(10);
/// Quota counters are spread over this many maps, each behind its own lock.
const SHARDS: usize = 16;

type Key = Box<str>;
/// A rate limiter's identity: the policy and its rate.
type RateId = (&'static str, Gcra);
type States = DashMapStateStore<Key>;
type Limiter = RateLimiter<Key, Shared, DefaultClock, StateInformationMiddleware>;

/// The counters of this process.
pub(crate) struct MemoryStore {
    /// One limiter per policy and rate; a handful per gateway, so a list.
    rates: RwLock<Vec<(RateId, Arc<Rate>)>>,
    quotas: [Mutex<HashMap<QuotaId, Counter>>; SHARDS],
    hasher: RandomState,
}

/// One governor limiter, and a second handle on its state for giving requests back.
struct Rate {
    limiter: Limiter,
    states: Arc<States>,
    t: Nanos,
    burst: u64,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct QuotaId {
    policy: &'static str,
    window: &'static str,
    key: Key,
}

/// Requests counted in the window `[start, end)` (Unix seconds).
struct Counter {
    start: u64,
    end: u64,
    count: u64,
}

/// What to give back when a later limit refuses the request.
enum Taken {
    Rate(Arc<Rate>, Key),
    Quota(QuotaId, u64),
}

impl MemoryStore {
    /// An empty store, with its eviction task spawned on the current Tokio runtime (none
    /// outside one: then only [`MemoryStore::evict_idle`] evicts).
    pub(crate) fn start() -> Arc<MemoryStore> {
        let store = Arc::new(MemoryStore {
            rates: RwLock::new(Vec::new()),
            quotas: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            hasher: RandomState::new(),
        });
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let weak: Weak<MemoryStore> = Arc::downgrade(&store);
                handle.spawn(async move {
                    let mut tick = tokio::time::interval(EVICT_EVERY);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    tick.tick().await;
                    loop {
                        tick.tick().await;
                        // Ends with the store.
                        let Some(store) = weak.upgrade() else { break };
                        store.evict_idle();
                    }
                });
            }
            Err(_) => tracing::warn!("no Tokio runtime: idle limit state is not evicted"),
        }
        store
    }

    /// Checks `items` and counts the request against all of them, or against none.
    pub(crate) fn check(&self, items: &[Item<'_>], now: Duration) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(items.len());
        let mut taken = Vec::with_capacity(items.len());
        let mut refused = false;
        // Quotas first: a refusal there leaves the rates untouched.
        for (i, item) in items.iter().enumerate() {
            let Limit::Quota(quota) = item.limit else {
                continue;
            };
            let span = window::span(quota.window, now.as_secs());
            let id = QuotaId {
                policy: item.policy,
                window: window::name(quota.window),
                key: item.key.into(),
            };
            let reset = Duration::from_secs(span.end).saturating_sub(now);
            let mut shard = self.shard(&id);
            let counter = shard.entry(id.clone()).or_insert(Counter {
                start: span.start,
                end: span.end,
                count: 0,
            });
            // A counter of a later window (a request racing the boundary) is left alone.
            if counter.start < span.start {
                *counter = Counter {
                    start: span.start,
                    end: span.end,
                    count: 0,
                };
            }
            let outcome = if counter.count >= quota.limit {
                refused = true;
                Outcome {
                    item: i,
                    remaining: 0,
                    reset,
                    refused: Some(reset),
                }
            } else {
                counter.count += 1;
                taken.push(Taken::Quota(id, counter.start));
                Outcome {
                    item: i,
                    remaining: quota.limit - counter.count,
                    reset,
                    refused: None,
                }
            };
            drop(shard);
            outcomes.push(outcome);
        }
        if !refused {
            for (i, item) in items.iter().enumerate() {
                let Limit::Rate(gcra) = item.limit else {
                    continue;
                };
                let rate = self.rate(item.policy, gcra);
                let key: Key = item.key.into();
                match rate.limiter.check_key(&key) {
                    Ok(state) => {
                        let remaining = u64::from(state.remaining_burst_capacity());
                        // The bucket is full again once the requests it lacks have been
                        // earned back (an upper bound, by less than one interval).
                        let lacking = rate.burst.saturating_sub(remaining);
                        let reset = gcra
                            .t
                            .saturating_mul(u32::try_from(lacking).unwrap_or(u32::MAX));
                        outcomes.push(Outcome {
                            item: i,
                            remaining,
                            reset,
                            refused: None,
                        });
                        taken.push(Taken::Rate(rate, key));
                    }
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(rate.limiter.clock().now());
                        outcomes.push(Outcome {
                            item: i,
                            remaining: 0,
                            reset: wait,
                            refused: Some(wait),
                        });
                        refused = true;
                        break;
                    }
                }
            }
        }
        if refused {
            for t in taken {
                self.give_back(t);
            }
        }
        outcomes
    }

    /// Drops rate keys whose bucket is full again and quota counters of past windows.
    pub(crate) fn evict_idle(&self) {
        self.evict_idle_at(super::unix_now().as_secs());
    }

    /// [`MemoryStore::evict_idle`], with quota windows judged at Unix second `now`.
    pub(crate) fn evict_idle_at(&self, now: u64) {
        let rates: Vec<Arc<Rate>> = self
            .rates
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(_, rate)| Arc::clone(rate))
            .collect();
        for rate in rates {
            rate.limiter.retain_recent();
            rate.limiter.shrink_to_fit();
        }
        for shard in &self.quotas {
            let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            map.retain(|_, c| c.end > now);
            map.shrink_to_fit();
        }
    }

    /// Rate keys plus quota counters held.
    pub(crate) fn len(&self) -> usize {
        let rates: usize = self
            .rates
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(_, r)| r.limiter.len())
            .sum();
        let quotas: usize = self
            .quotas
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum();
        rates + quotas
    }

    fn shard(&self, id: &QuotaId) -> std::sync::MutexGuard<'_, HashMap<QuotaId, Counter>> {
        let n = (self.hasher.hash_one(id) % SHARDS as u64) as usize;
        self.quotas[n]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The limiter of `policy` at `gcra`, made on first use.
    fn rate(&self, policy: &'static str, gcra: Gcra) -> Arc<Rate> {
        let id = (policy, gcra);
        let find = |rates: &[(RateId, Arc<Rate>)]| {
            rates
                .iter()
                .find(|(k, _)| *k == id)
                .map(|(_, rate)| Arc::clone(rate))
        };
        if let Some(rate) = find(&self.rates.read().unwrap_or_else(PoisonError::into_inner)) {
            return rate;
        }
        let mut rates = self.rates.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(rate) = find(&rates) {
            return rate;
        }
        let rate = Arc::new(Rate::new(gcra));
        rates.push((id, Arc::clone(&rate)));
        rate
    }

    fn give_back(&self, taken: Taken) {
        match taken {
            Taken::Quota(id, start) => {
                let mut shard = self.shard(&id);
                if let Some(c) = shard.get_mut(&id)
                    && c.start == start
                {
                    c.count = c.count.saturating_sub(1);
                }
            }
            Taken::Rate(rate, key) => {
                // Moves the theoretical arrival time back by the interval the request
                // added. An absent state (evicted meanwhile) is left absent.
                let _ = <States as StateStore>::measure_and_replace(&rate.states, &key, |tat| {
                    tat.map(|tat| ((), tat.saturating_sub(rate.t))).ok_or(())
                });
            }
        }
    }
}

impl Rate {
    fn new(gcra: Gcra) -> Rate {
        let burst = u32::try_from(gcra.burst).unwrap_or(u32::MAX);
        let quota = Quota::with_period(gcra.t)
            .unwrap_or_else(|| Quota::per_second(std::num::NonZeroU32::MIN))
            .allow_burst(std::num::NonZeroU32::new(burst).unwrap_or(std::num::NonZeroU32::MIN));
        let states = Arc::new(States::default());
        let limiter: Limiter =
            RateLimiter::new(quota, Shared(Arc::clone(&states)), DefaultClock::default());
        Rate {
            limiter,
            states,
            t: Nanos::from(gcra.t),
            burst: u64::from(burst),
        }
    }
}

/// Governor's DashMap state store behind an `Arc`, so that the limiter and
/// [`MemoryStore::give_back`] share it.
struct Shared(Arc<States>);

impl StateStore for Shared {
    type Key = Key;

    fn measure_and_replace<T, F, E>(&self, key: &Key, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        <States as StateStore>::measure_and_replace(&self.0, key, f)
    }
}

impl ShrinkableKeyedStateStore<Key> for Shared {
    fn retain_recent(&self, drop_below: Nanos) {
        <States as ShrinkableKeyedStateStore<Key>>::retain_recent(&self.0, drop_below);
    }

    fn shrink_to_fit(&self) {
        <States as ShrinkableKeyedStateStore<Key>>::shrink_to_fit(&self.0);
    }

    fn len(&self) -> usize {
        <States as ShrinkableKeyedStateStore<Key>>::len(&self.0)
    }

    fn is_empty(&self) -> bool {
        <States as ShrinkableKeyedStateStore<Key>>::is_empty(&self.0)
    }
}
