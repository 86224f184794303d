//! Which targets of an upstream are in use: passive outlier ejection (a target that fails
//! several times in a row is left out for a while) and the verdict of active health checks
//! (`probe.rs`), read by every balancer through [`Outliers::usable`].
//!
//! What it costs: an upstream with one target never ejects it and records nothing, so its
//! requests pay nothing. With several, a pick pays one relaxed load ([`Outliers::all_in`])
//! while every target is in, and a scan of the targets (a few loads each) while one is out;
//! each answer pays a relaxed load or two (a success) or a `fetch_add` (a failure).
//!
//! Everything here is plain data over target indices and a time in milliseconds passed in,
//! so it is tested without a network or a clock.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::gateway::OutlierDef;

const RELAXED: Ordering = Ordering::Relaxed;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the first call in this process: the clock ejections and the retry
/// budget read. Never 0 after the first millisecond, and never goes back.
pub(crate) fn now_ms() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One target's state.
#[derive(Debug, Default)]
struct State {
    /// Failures in a row (reset by a success and by an ejection).
    failures: AtomicU32,
    /// Ejections since the target last answered well after coming back: the ejection time
    /// grows with it.
    ejections: AtomicU32,
    /// Ejected until this time (see [`now_ms`]); 0: not ejected. A time in the past that
    /// is not 0 is an ejection over but not yet cleared ([`Outliers::refresh`]).
    until: AtomicU64,
    /// Active health checks found it unhealthy.
    down: AtomicBool,
}

/// The health of an upstream's targets, by index.
#[derive(Debug)]
pub(crate) struct Outliers {
    def: OutlierDef,
    /// Whether answers are recorded and targets ejected: several targets, and ejection on.
    eject: bool,
    /// Targets that are ejected (over or not, until cleared) or down: 0 is the fast path.
    out: AtomicUsize,
    states: Box<[State]>,
}

impl Outliers {
    /// The state of `n` targets, all in. With `n` below 2, or `consecutive_failures` 0,
    /// nothing is ever ejected.
    pub(crate) fn new(def: OutlierDef, n: usize) -> Outliers {
        Outliers {
            def,
            eject: n > 1 && def.consecutive_failures > 0,
            out: AtomicUsize::new(0),
            states: (0..n).map(|_| State::default()).collect(),
        }
    }

    /// Whether answers are worth recording ([`Outliers::success`], [`Outliers::failure`]).
    pub(crate) fn records(&self) -> bool {
        self.eject
    }

    /// Whether every target is in (no ejection, none down): one relaxed load.
    pub(crate) fn all_in(&self) -> bool {
        self.out.load(RELAXED) == 0
    }

    /// Whether target `i` may be chosen at `now`: not ejected and not down. An index out of
    /// range is not usable.
    pub(crate) fn usable(&self, i: usize, now: u64) -> bool {
        self.states
            .get(i)
            .is_some_and(|s| s.until.load(RELAXED) <= now && !s.down.load(RELAXED))
    }

    /// Clears ejections that are over at `now`, and says whether the upstream is in panic:
    /// fewer than `panic_threshold` percent of its targets usable, so that every target is
    /// to be used.
    pub(crate) fn refresh(&self, now: u64) -> bool {
        let mut usable = 0usize;
        for (i, s) in self.states.iter().enumerate() {
            let until = s.until.load(RELAXED);
            if until != 0
                && until <= now
                && s.until.compare_exchange(until, 0, RELAXED, RELAXED).is_ok()
            {
                self.out.fetch_sub(1, RELAXED);
            }
            if self.usable(i, now) {
                usable += 1;
            }
        }
        usable * 100 < usize::from(self.def.panic_threshold) * self.states.len()
    }

    /// Target `i` answered well: its failures in a row are forgotten, and so are its past
    /// ejections once it is back.
    pub(crate) fn success(&self, i: usize) {
        if !self.eject {
            return;
        }
        let Some(s) = self.states.get(i) else {
            return;
        };
        if s.failures.load(RELAXED) != 0 {
            s.failures.store(0, RELAXED);
        }
        if s.ejections.load(RELAXED) != 0 && s.until.load(RELAXED) == 0 {
            s.ejections.store(0, RELAXED);
        }
    }

    /// Target `i` failed at `now`; returns whether that ejected it. It is ejected after
    /// `consecutive_failures` failures in a row, unless that would put more than
    /// `max_ejected_percent` of the targets out at once (it is then ejected by a later
    /// failure, once there is room), for `base_ejection` times the number of its
    /// ejections, at most `max_ejection`.
    pub(crate) fn failure(&self, i: usize, now: u64) -> bool {
        if !self.eject {
            return false;
        }
        let Some(s) = self.states.get(i) else {
            return false;
        };
        let failures = s.failures.fetch_add(1, RELAXED).saturating_add(1);
        if failures < self.def.consecutive_failures {
            return false;
        }
        let until = s.until.load(RELAXED);
        if until > now {
            return false;
        }
        let ejected = self
            .states
            .iter()
            .filter(|s| s.until.load(RELAXED) > now)
            .count();
        let n = self.states.len();
        if (ejected + 1) * 100 > usize::from(self.def.max_ejected_percent) * n {
            return false;
        }
        let times = s.ejections.fetch_add(1, RELAXED).saturating_add(1);
        let length = self
            .def
            .base_ejection
            .saturating_mul(times)
            .min(self.def.max_ejection);
        let length = u64::try_from(length.as_millis()).unwrap_or(u64::MAX).max(1);
        if s.until
            .compare_exchange(until, now.saturating_add(length), RELAXED, RELAXED)
            .is_err()
        {
            // Another failure ejected it at the same moment.
            return false;
        }
        if until == 0 {
            self.out.fetch_add(1, RELAXED);
        }
        s.failures.store(0, RELAXED);
        true
    }

    /// Active health checks found target `i` unhealthy (`down`) or healthy again.
    pub(crate) fn set_down(&self, i: usize, down: bool) {
        let Some(s) = self.states.get(i) else {
            return;
        };
        if s.down.swap(down, RELAXED) != down {
            if down {
                self.out.fetch_add(1, RELAXED);
            } else {
                self.out.fetch_sub(1, RELAXED);
            }
        }
    }

    /// Targets usable at `now`.
    pub(crate) fn usable_count(&self, now: u64) -> usize {
        (0..self.states.len())
            .filter(|i| self.usable(*i, now))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn outliers(n: usize) -> Outliers {
        Outliers::new(OutlierDef::DEFAULT, n)
    }

    #[test]
    fn consecutive_failures_eject_and_a_success_resets_the_count() {
        let o = outliers(3);
        for _ in 0..4 {
            assert!(!o.failure(0, 1_000));
        }
        o.success(0);
        for _ in 0..4 {
            assert!(!o.failure(0, 1_000), "the success did not reset the count");
        }
        assert!(o.all_in() && o.usable(0, 1_000));
        assert!(
            o.failure(0, 1_000),
            "the fifth failure in a row did not eject"
        );
        assert!(!o.all_in());
        assert!(!o.usable(0, 1_000) && o.usable(1, 1_000));
        // Back after the base time of 30 s.
        assert!(!o.usable(0, 30_999));
        assert!(o.usable(0, 31_000));
        assert!(!o.refresh(31_000));
        assert!(o.all_in(), "an ejection that is over was not cleared");
    }

    #[test]
    fn ejections_grow_with_repeats_up_to_the_cap() {
        let o = outliers(4);
        let mut now = 0;
        let mut lengths = Vec::new();
        for _ in 0..12 {
            for _ in 0..4 {
                o.failure(1, now);
            }
            assert!(o.failure(1, now));
            let start = now;
            while !o.usable(1, now) {
                now += 1_000;
            }
            lengths.push((now - start) / 1_000);
            o.refresh(now);
        }
        assert_eq!(
            lengths,
            [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300]
        );
        // A success after it came back forgets the past ejections.
        o.success(1);
        for _ in 0..5 {
            o.failure(1, now);
        }
        assert!(!o.usable(1, now + 29_000) && o.usable(1, now + 30_000));
    }

    #[test]
    fn at_most_the_maximum_share_is_ejected_at_once() {
        let o = outliers(3);
        for _ in 0..5 {
            o.failure(0, 0);
            o.failure(1, 0);
        }
        // One of three is 33%; two would be 67%, over 50%.
        assert!(!o.usable(0, 0));
        assert!(o.usable(1, 0), "a second target of three was ejected");
        // Once the first is back, the second is ejected by its next failure.
        assert!(!o.failure(1, 1_000));
        assert!(o.failure(1, 30_000));
        assert!(o.usable(0, 30_000) && !o.usable(1, 30_000));
        // Two targets: one of them may go.
        let o = outliers(2);
        for _ in 0..5 {
            o.failure(0, 0);
        }
        assert!(!o.usable(0, 0));
    }

    #[test]
    fn below_the_panic_threshold_every_target_is_used() {
        let o = outliers(4);
        o.set_down(0, true);
        assert!(!o.refresh(0), "3 of 4 healthy is not panic");
        o.set_down(1, true);
        assert!(!o.refresh(0), "2 of 4 healthy is exactly 50%: not panic");
        o.set_down(2, true);
        assert!(o.refresh(0), "1 of 4 healthy is panic");
        o.set_down(2, false);
        o.set_down(1, false);
        o.set_down(0, false);
        assert!(o.all_in());
    }

    #[test]
    fn one_target_is_never_ejected() {
        let o = outliers(1);
        assert!(!o.records());
        for _ in 0..100 {
            assert!(!o.failure(0, 0));
        }
        assert!(o.all_in() && o.usable(0, 0));
        let off = Outliers::new(
            OutlierDef {
                consecutive_failures: 0,
                ..OutlierDef::DEFAULT
            },
            3,
        );
        assert!(!off.records());
        let short = Outliers::new(
            OutlierDef {
                consecutive_failures: 1,
                base_ejection: Duration::from_millis(10),
                ..OutlierDef::DEFAULT
            },
            3,
        );
        assert!(short.failure(2, 5) && !short.usable(2, 14) && short.usable(2, 15));
    }
}
