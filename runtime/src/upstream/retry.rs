//! Retries (`retries`): which requests may be sent again, on which failures, how long to
//! wait before each retry, and the retry budget that keeps retries from multiplying the
//! load on an upstream that is already failing.
//!
//! The loop itself is in [`crate::proxy::forward`]. Everything here is plain data and a
//! time in milliseconds passed in, so it is tested without a network or a clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::Method;

use super::UpstreamError;
use crate::gateway::RetryDef;

const RELAXED: Ordering = Ordering::Relaxed;

/// The budget's window, in seconds.
const WINDOW: u64 = 10;

/// Whether `method` is idempotent (RFC 9110 section 9.2.2): sending it twice has the effect
/// of sending it once.
pub(crate) fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Whether a try that failed with `e` is retried under `def`. A per-try timeout is
/// [`UpstreamError::Timeout`]; the client's body, an invalid answer, a reset after the
/// head and an open breaker are never retried.
pub(crate) fn on_error(def: &RetryDef, e: &UpstreamError) -> bool {
    match e {
        UpstreamError::Connect(_) => def.on_connect,
        UpstreamError::ResetBeforeHead(_) => def.on_reset,
        UpstreamError::Timeout(_) => def.on_timeout,
        UpstreamError::ResetAfterHead(_)
        | UpstreamError::InvalidResponse(_)
        | UpstreamError::BodyTooLarge(_)
        | UpstreamError::ClientBody(_)
        | UpstreamError::BreakerOpen(_) => false,
    }
}

/// Whether a try answered with `status` is retried under `def`.
pub(crate) fn on_status(def: &RetryDef, status: u16) -> bool {
    def.on_status.contains(&status)
}

/// How long to wait before retry number `retry` (1 for the first): `base` doubled for each
/// retry after the first, at most ten times `base`, of which the upper half is random
/// (`unit` in [0, 1] says where in it), so that clients that failed together do not retry
/// together. The wait is between half that and that.
pub(crate) fn backoff(base: Duration, retry: u32, unit: f64) -> Duration {
    let doublings = retry.saturating_sub(1).min(16);
    let full = base
        .saturating_mul(1u32 << doublings)
        .min(base.saturating_mul(10));
    let half = full / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// One second of the budget's window.
#[derive(Debug, Default)]
struct Second {
    /// Which second (since [`super::health::now_ms`]'s start) the counts are for.
    at: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

/// The retry budget of one upstream: over the last [`WINDOW`] seconds, retries may be at
/// most `percent` percent of the requests, plus `min_per_second` a second.
///
/// Counts are kept per second in a ring; a second's slot is reset when it is first used
/// again. Two requests that reset one slot at the same moment may lose a count or two:
/// the budget is approximate by that much, never by more.
#[derive(Debug)]
pub(crate) struct Budget {
    percent: u64,
    min_per_second: u64,
    seconds: [Second; WINDOW as usize],
}

impl Budget {
    pub(crate) fn new(def: &RetryDef) -> Budget {
        Budget {
            percent: u64::from(def.budget_percent),
            min_per_second: u64::from(def.min_per_second),
            seconds: Default::default(),
        }
    }

    /// The slot of `second`, reset when it last held an older second.
    fn slot(&self, second: u64) -> Option<&Second> {
        let slot = self.seconds.get(usize::try_from(second % WINDOW).ok()?)?;
        let at = slot.at.load(RELAXED);
        if at != second
            && slot
                .at
                .compare_exchange(at, second, RELAXED, RELAXED)
                .is_ok()
        {
            slot.requests.store(0, RELAXED);
            slot.retries.store(0, RELAXED);
        }
        Some(slot)
    }

    /// A request (its first try) went out at `now_ms`.
    pub(crate) fn request(&self, now_ms: u64) {
        if let Some(slot) = self.slot(now_ms / 1000) {
            slot.requests.fetch_add(1, RELAXED);
        }
    }

    /// Whether a retry may go out at `now_ms`; when it may, it is counted.
    pub(crate) fn try_retry(&self, now_ms: u64) -> bool {
        let second = now_ms / 1000;
        let (mut requests, mut retries) = (0u64, 0u64);
        for slot in &self.seconds {
            let at = slot.at.load(RELAXED);
            if at <= second && at + WINDOW > second {
                requests += slot.requests.load(RELAXED);
                retries += slot.retries.load(RELAXED);
            }
        }
        let allowed = requests * self.percent / 100 + self.min_per_second * WINDOW;
        if retries >= allowed {
            return false;
        }
        if let Some(slot) = self.slot(second) {
            slot.retries.fetch_add(1, RELAXED);
        }
        true
    }
}

/// An upstream's retry settings and budget.
#[derive(Debug)]
pub(crate) struct Retry {
    pub(crate) def: &'static RetryDef,
    pub(crate) budget: Budget,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idempotent_methods_are_retried() {
        for m in [
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::PUT,
            Method::DELETE,
            Method::TRACE,
        ] {
            assert!(idempotent(&m), "{m}");
        }
        for m in [Method::POST, Method::PATCH, Method::CONNECT] {
            assert!(!idempotent(&m), "{m}");
        }
    }

    #[test]
    fn failures_and_statuses_retried_by_default() {
        let def = RetryDef::DEFAULT;
        assert!(on_error(&def, &UpstreamError::Connect("refused".into())));
        assert!(on_error(
            &def,
            &UpstreamError::ResetBeforeHead("eof".into())
        ));
        assert!(!on_error(
            &def,
            &UpstreamError::Timeout(Duration::from_secs(1))
        ));
        assert!(!on_error(
            &def,
            &UpstreamError::ResetAfterHead("eof".into())
        ));
        assert!(!on_error(&def, &UpstreamError::BreakerOpen("max_requests")));
        assert!(!on_error(&def, &UpstreamError::ClientBody("bad".into())));
        for s in [502, 503, 504] {
            assert!(on_status(&def, s));
        }
        for s in [200, 404, 500, 501] {
            assert!(!on_status(&def, s));
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_within_bounds() {
        let base = Duration::from_millis(25);
        for (retry, full) in [(1, 25), (2, 50), (3, 100), (4, 200), (5, 250), (40, 250)] {
            let full = Duration::from_millis(full);
            assert_eq!(backoff(base, retry, 0.0), full / 2, "retry {retry}");
            assert_eq!(backoff(base, retry, 1.0), full, "retry {retry}");
            for _ in 0..100 {
                let wait = backoff(base, retry, fastrand::f64());
                assert!(wait >= full / 2 && wait <= full, "retry {retry}: {wait:?}");
            }
        }
        assert_eq!(backoff(Duration::ZERO, 3, 0.5), Duration::ZERO);
    }

    #[test]
    fn the_budget_allows_a_share_of_requests_plus_a_minimum() {
        let def = RetryDef {
            budget_percent: 20,
            min_per_second: 1,
            ..RetryDef::DEFAULT
        };
        let budget = Budget::new(&def);
        // No requests yet: the minimum, 1 a second over 10 seconds.
        let t = 100_000;
        let free = (0..100).filter(|_| budget.try_retry(t)).count();
        assert_eq!(free, 10);
        // 100 requests: 20 more.
        for _ in 0..100 {
            budget.request(t);
        }
        assert_eq!((0..100).filter(|_| budget.try_retry(t + 1)).count(), 20);
        // Ten seconds later the window has forgotten them all.
        let later = t + 10_000;
        assert_eq!((0..100).filter(|_| budget.try_retry(later)).count(), 10);
        // Requests spread over the window all count.
        let budget = Budget::new(&def);
        for s in 0..10 {
            for _ in 0..50 {
                budget.request(t + s * 1_000);
            }
        }
        let now = t + 9_500;
        assert_eq!((0..1_000).filter(|_| budget.try_retry(now)).count(), 110);
    }
}
