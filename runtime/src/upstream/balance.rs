//! Choosing one of an upstream's targets for each request: weighted round robin, least
//! request (power of two random choices) and consistent hashing on a key.
//!
//! What a choice costs: nothing at all for an upstream with one target (no atomic, no
//! random number, no hash); one relaxed `fetch_add` and a table read for round robin; two
//! random draws and two loads for least request; for `hash`, one hash of the key and one
//! mix and logarithm per target (a request without the key goes round robin).
//!
//! While some target is ejected or unhealthy (`health.rs`), [`Balancer::pick_usable`]
//! chooses among the usable ones only: round robin and a hash without its key take the
//! next usable target after their turn, least request draws again among the usable, and a
//! hashed key goes to the next target in its rendezvous order.
//!
//! Everything here is plain data over target indices, so it is tested without a network.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How one upstream chooses a target. Built once at start-up; never fails to choose, since
/// an upstream with targets has at least one.
#[derive(Debug)]
pub(crate) enum Balancer {
    /// One target: nothing to choose.
    Single,
    /// Weighted round robin over a precomputed schedule.
    RoundRobin(Schedule),
    /// Power of two random choices on requests in flight per unit of weight.
    LeastRequest {
        /// Each target's weight.
        weights: Box<[u32]>,
    },
    /// Weighted rendezvous (highest random weight) hashing on a key; round robin for
    /// requests without one.
    Hash {
        /// Each target's weight.
        weights: Box<[u32]>,
        /// Each target's seed: a hash of its URL, so that a target's scores do not depend
        /// on its place in the list, and removing one moves only the keys it had.
        seeds: Box<[u64]>,
        /// For requests without the key.
        fallback: Schedule,
    },
}

/// What a [`Balancer`] is asked to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Weighted round robin.
    RoundRobin,
    /// Power of two random choices.
    LeastRequest,
    /// Consistent hashing on a key.
    Hash,
}

impl Balancer {
    /// A balancer over targets with these `weights` (each at least 1; a weight of 0 counts
    /// as 1) and hash `seeds` (one per target; read by [`Policy::Hash`] only).
    pub(crate) fn new(policy: Policy, weights: &[u32], seeds: &[u64]) -> Balancer {
        if weights.len() <= 1 {
            return Balancer::Single;
        }
        let weights: Box<[u32]> = weights.iter().map(|w| (*w).max(1)).collect();
        match policy {
            Policy::RoundRobin => Balancer::RoundRobin(Schedule::new(&weights)),
            Policy::LeastRequest => Balancer::LeastRequest { weights },
            Policy::Hash => Balancer::Hash {
                fallback: Schedule::new(&weights),
                seeds: seeds.into(),
                weights,
            },
        }
    }

    /// Whether choices read the targets' load (requests in flight), so that sends must
    /// count it.
    pub(crate) fn reads_load(&self) -> bool {
        matches!(self, Balancer::LeastRequest { .. })
    }

    /// Whether choices use a request key ([`Balancer::pick`]'s `key`).
    pub(crate) fn hashes(&self) -> bool {
        matches!(self, Balancer::Hash { .. })
    }

    /// The index of the target for a request. `key` is the hashed request key (read only
    /// by `hash`; `None` when the request has none); `load(i)` is the number of requests in
    /// flight on target `i` (read only by least request).
    pub(crate) fn pick(&self, key: Option<u64>, load: impl Fn(usize) -> usize) -> usize {
        match self {
            Balancer::Single => 0,
            Balancer::RoundRobin(schedule) => schedule.next(),
            Balancer::LeastRequest { weights } => {
                let n = weights.len();
                let a = fastrand::usize(..n);
                // A second, different target: an offset of 1 to n - 1 from the first.
                let b = (a + 1 + fastrand::usize(..n - 1)) % n;
                least_loaded(a, b, weights, &load)
            }
            Balancer::Hash {
                weights,
                seeds,
                fallback,
            } => match key {
                Some(key) => rendezvous(key, weights, seeds, |_| true).unwrap_or(0),
                None => fallback.next(),
            },
        }
    }

    /// [`Balancer::pick`] among the targets for which `usable(i)` holds; when none does,
    /// the target [`Balancer::pick`] would choose.
    pub(crate) fn pick_usable(
        &self,
        key: Option<u64>,
        load: impl Fn(usize) -> usize,
        usable: impl Fn(usize) -> bool,
    ) -> usize {
        match self {
            Balancer::Single => 0,
            Balancer::RoundRobin(schedule) => {
                next_usable(schedule.next(), schedule.targets, &usable)
            }
            Balancer::LeastRequest { weights } => {
                let n = weights.len();
                let a = fastrand::usize(..n);
                let b = (a + 1 + fastrand::usize(..n - 1)) % n;
                match (usable(a), usable(b)) {
                    (true, true) => least_loaded(a, b, weights, &load),
                    (true, false) => a,
                    (false, true) => b,
                    // Both drawn are out: the least loaded of those that are in.
                    (false, false) => (0..n)
                        .filter(|i| usable(*i))
                        .reduce(|x, y| least_loaded(x, y, weights, &load))
                        .unwrap_or(a),
                }
            }
            Balancer::Hash {
                weights,
                seeds,
                fallback,
            } => match key {
                Some(key) => rendezvous(key, weights, seeds, &usable)
                    .or_else(|| rendezvous(key, weights, seeds, |_| true))
                    .unwrap_or(0),
                None => next_usable(fallback.next(), fallback.targets, &usable),
            },
        }
    }
}

/// The first usable target of `n` from `i` on (`i` itself when it is usable), going round;
/// `i` when none is.
fn next_usable(i: usize, n: usize, usable: &impl Fn(usize) -> bool) -> usize {
    (0..n)
        .map(|k| (i + k) % n)
        .find(|j| usable(*j))
        .unwrap_or(i)
}

/// Of targets `a` and `b`, the one with fewer requests in flight per unit of weight
/// (`(load + 1) / weight`, so that weight counts on idle targets too); `a` on a tie.
fn least_loaded(a: usize, b: usize, weights: &[u32], load: &impl Fn(usize) -> usize) -> usize {
    let cost = |i: usize| {
        let w = u128::from(weights.get(i).copied().unwrap_or(1));
        (load(i) as u128 + 1, w)
    };
    let ((la, wa), (lb, wb)) = (cost(a), cost(b));
    // la / wa <= lb / wb, without division.
    if la * wb <= lb * wa { a } else { b }
}

/// The target with the highest weighted score for `key`: each target's score is
/// `weight / -ln(u)`, with `u` in (0, 1) a hash of the key and the target's seed. A target
/// keeps its keys as long as it is there, whatever else is added or removed, and gets a
/// share of the keys in proportion to its weight.
/// Only targets for which `usable(i)` holds compete, so that a key whose target is out goes
/// to its next target in the same order; `None` when none is usable.
fn rendezvous(
    key: u64,
    weights: &[u32],
    seeds: &[u64],
    usable: impl Fn(usize) -> bool,
) -> Option<usize> {
    let mut best = None;
    let mut best_score = f64::NEG_INFINITY;
    for (i, (w, seed)) in weights.iter().zip(seeds).enumerate() {
        if !usable(i) {
            continue;
        }
        let h = mix(key ^ seed);
        // The top 53 bits as a number in (0, 1): never 0, so the logarithm is finite.
        let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let score = f64::from(*w) / -u.ln();
        if best.is_none() || score > best_score {
            best = Some(i);
            best_score = score;
        }
    }
    best
}

/// A precomputed weighted round-robin order: as many slots as the weights add up to
/// (divided by their greatest common divisor), interleaved the way smooth weighted round
/// robin (NGINX's) interleaves them, so that a heavy target's turns are spread out. Each
/// request takes the next slot: one relaxed `fetch_add`.
#[derive(Debug)]
pub(crate) struct Schedule {
    order: Box<[u32]>,
    next: AtomicUsize,
    /// How many targets it is over.
    targets: usize,
}

impl Schedule {
    fn new(weights: &[u32]) -> Schedule {
        let g = weights.iter().copied().fold(0, gcd).max(1);
        let reduced: Vec<i64> = weights.iter().map(|w| i64::from(w / g)).collect();
        let total: i64 = reduced.iter().sum();
        let mut current = vec![0i64; reduced.len()];
        let mut order = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for _ in 0..total {
            for (c, w) in current.iter_mut().zip(&reduced) {
                *c += w;
            }
            // The first target with the largest current weight.
            let best =
                (1..current.len()).fold(0, |b, i| if current[i] > current[b] { i } else { b });
            current[best] -= total;
            order.push(u32::try_from(best).unwrap_or(0));
        }
        if order.is_empty() {
            order.push(0);
        }
        Schedule {
            order: order.into(),
            next: AtomicUsize::new(0),
            targets: weights.len().max(1),
        }
    }

    /// The next slot's target.
    fn next(&self) -> usize {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.order.len();
        self.order.get(slot).map_or(0, |t| *t as usize)
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// A 64-bit finaliser (splitmix64's): every input bit affects every output bit.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// FNV-1a over `bytes`, then [`mix`]ed: the same in every process and on every machine, so
/// that replicas of a gateway send a key to the same target.
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `picks` choices went to each of `n` targets.
    fn tally(n: usize, picks: impl Iterator<Item = usize>) -> Vec<usize> {
        let mut counts = vec![0; n];
        for i in picks {
            counts[i] += 1;
        }
        counts
    }

    fn seeds(n: usize) -> Vec<u64> {
        (0..n)
            .map(|i| hash(format!("http://10.0.0.{i}:8080").as_bytes()))
            .collect()
    }

    #[test]
    fn one_target_needs_no_choice() {
        let b = Balancer::new(Policy::LeastRequest, &[7], &seeds(1));
        assert!(matches!(b, Balancer::Single));
        assert!(!b.reads_load() && !b.hashes());
        assert_eq!(b.pick(Some(42), |_| 0), 0);
    }

    #[test]
    fn round_robin_is_exact_and_spreads_heavy_targets() {
        let b = Balancer::new(Policy::RoundRobin, &[1, 1, 2], &seeds(3));
        let order: Vec<usize> = (0..4).map(|_| b.pick(None, |_| 0)).collect();
        assert_eq!(
            order,
            [2, 0, 1, 2],
            "the heavy target's turns are not spread out"
        );
        let b = Balancer::new(Policy::RoundRobin, &[1, 1, 2], &seeds(3));
        assert_eq!(
            tally(3, (0..400).map(|_| b.pick(None, |_| 0))),
            [100, 100, 200]
        );
        // Weights with a common divisor: a short schedule, the same shares.
        let b = Balancer::new(Policy::RoundRobin, &[50, 30, 20], &seeds(3));
        let Balancer::RoundRobin(schedule) = &b else {
            panic!("not round robin: {b:?}");
        };
        assert_eq!(schedule.order.len(), 10);
        assert_eq!(
            tally(3, (0..10_000).map(|_| b.pick(None, |_| 0))),
            [5_000, 3_000, 2_000]
        );
    }

    #[test]
    fn least_request_prefers_the_less_loaded_target() {
        let b = Balancer::new(Policy::LeastRequest, &[1, 1, 1], &seeds(3));
        assert!(b.reads_load());
        let load = [10, 0, 10];
        let counts = tally(3, (0..3_000).map(|_| b.pick(None, |i| load[i])));
        // Target 1 wins every draw it is in: two of the three possible pairs.
        assert!(
            (1_800..2_200).contains(&counts[1]),
            "the idle target got {counts:?}"
        );
        // Two targets: both are always drawn, and the idle one always wins.
        let b = Balancer::new(Policy::LeastRequest, &[1, 1], &seeds(2));
        let load = [3, 2];
        assert_eq!(
            tally(2, (0..100).map(|_| b.pick(None, |i| load[i]))),
            [0, 100]
        );
    }

    #[test]
    fn least_request_weighs_load_by_weight() {
        // Weight 3 with 5 in flight is less loaded than weight 1 with 2: 6/3 < 3/1.
        let b = Balancer::new(Policy::LeastRequest, &[1, 3], &seeds(2));
        let load = [2, 5];
        assert_eq!(
            tally(2, (0..100).map(|_| b.pick(None, |i| load[i]))),
            [0, 100]
        );
        // In a closed loop where requests finish at a rate proportional to the weight, the
        // shares follow the weights.
        let mut in_flight = [0usize; 2];
        let mut counts = [0usize; 2];
        for step in 0..40_000 {
            let i = b.pick(None, |i| in_flight[i]);
            in_flight[i] += 1;
            counts[i] += 1;
            // Target 1 finishes three requests for each one target 0 finishes.
            let done = if step % 4 == 0 { 0 } else { 1 };
            in_flight[done] = in_flight[done].saturating_sub(1);
        }
        let share = counts[1] as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.03, "{counts:?}");
    }

    #[test]
    fn hash_sends_a_key_to_one_target_in_proportion_to_weights() {
        let seeds = seeds(3);
        let b = Balancer::new(Policy::Hash, &[1, 1, 2], &seeds);
        assert!(b.hashes());
        let key = hash(b"tenant-42");
        let first = b.pick(Some(key), |_| 0);
        for _ in 0..100 {
            assert_eq!(b.pick(Some(key), |_| 0), first);
        }
        let counts = tally(
            3,
            (0..40_000u32).map(|k| b.pick(Some(hash(&k.to_le_bytes())), |_| 0)),
        );
        for (got, want) in counts.iter().zip([10_000.0, 10_000.0, 20_000.0]) {
            assert!(
                (*got as f64 - want).abs() < want * 0.05,
                "shares {counts:?} do not follow the weights 1, 1, 2"
            );
        }
        // Requests without the key go round robin.
        assert_eq!(tally(3, (0..4).map(|_| b.pick(None, |_| 0))), [1, 1, 2]);
    }

    #[test]
    fn targets_that_are_out_are_skipped_by_every_policy() {
        let out = |i: usize| i != 1;
        // Round robin: target 1's turns go to the next target.
        let b = Balancer::new(Policy::RoundRobin, &[1, 1, 1], &seeds(3));
        assert_eq!(
            tally(3, (0..300).map(|_| b.pick_usable(None, |_| 0, out))),
            [100, 0, 200]
        );
        // Least request: never target 1, however idle.
        let b = Balancer::new(Policy::LeastRequest, &[1, 1, 1], &seeds(3));
        let load = [5, 0, 9];
        let counts = tally(3, (0..300).map(|_| b.pick_usable(None, |i| load[i], out)));
        assert_eq!(counts[1], 0, "{counts:?}");
        assert!(counts[0] > counts[2], "{counts:?}");
        // Hash: a key on target 1 moves to its next target in rendezvous order; the other
        // keys stay where they were.
        let seeds = seeds(3);
        let b = Balancer::new(Policy::Hash, &[1, 1, 1], &seeds);
        for k in 0..3_000u32 {
            let key = hash(&k.to_le_bytes());
            let was = b.pick(Some(key), |_| 0);
            let now = b.pick_usable(Some(key), |_| 0, out);
            assert_ne!(now, 1);
            if was != 1 {
                assert_eq!(now, was, "key {k} moved from a target that is in");
            } else {
                let second = rendezvous(key, &[1, 1, 1], &seeds, |i| i != was);
                assert_eq!(Some(now), second, "key {k}");
            }
        }
        // Nothing usable: the usual choice.
        let b = Balancer::new(Policy::RoundRobin, &[1, 1], &seeds[..2]);
        assert_eq!(
            tally(2, (0..10).map(|_| b.pick_usable(None, |_| 0, |_| false))),
            [5, 5]
        );
    }

    #[test]
    fn removing_a_target_moves_only_its_keys() {
        let all = seeds(4);
        let weights = [1, 2, 1, 1];
        let before = Balancer::new(Policy::Hash, &weights, &all);
        // Target 1 goes: the others keep their seeds (they hash their URLs), in a new order.
        let kept = [0usize, 2, 3];
        let after = Balancer::new(
            Policy::Hash,
            &kept.map(|i| weights[i]),
            &kept.map(|i| all[i]),
        );
        let mut moved = 0;
        for k in 0..20_000u32 {
            let key = hash(&k.to_le_bytes());
            let was = before.pick(Some(key), |_| 0);
            let now = kept[after.pick(Some(key), |_| 0)];
            if was != 1 {
                assert_eq!(now, was, "key {k} moved from a target that stayed");
            } else {
                moved += 1;
            }
        }
        // Target 1 had 2/5 of the keys.
        assert!(
            (7_000..9_000).contains(&moved),
            "{moved} keys were on target 1"
        );
    }
}
