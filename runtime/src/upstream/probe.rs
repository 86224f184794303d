//! Active health checks (`health`): one background task per upstream that has them sends
//! `GET path` to each of its targets every `interval`; `unhealthy` failures in a row (no
//! answer within `timeout`, or a status outside 200 to 399) mark a target unhealthy, and
//! balancing skips it (`health.rs`) until `healthy` successes in a row mark it healthy
//! again. Targets start healthy.
//!
//! Probes go straight to the target's pool: they are neither counted by the circuit
//! breaker nor recorded for outlier ejection. The targets are probed one after the other,
//! so a round takes at most `timeout` per target.

use http::header;
use http::uri::{PathAndQuery, Uri};
use http::{Request, StatusCode};

use super::{Target, Upstream, pool};
use crate::body::Body;
use crate::gateway::HealthDef;

/// What the checks have seen of one target.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Found unhealthy.
    pub(crate) down: bool,
    ok_in_a_row: u32,
    failed_in_a_row: u32,
}

impl Counts {
    /// Counts a probe that succeeded (`ok`) or not; returns the new verdict when it
    /// changed (`Some(true)`: now unhealthy).
    pub(crate) fn step(&mut self, ok: bool, def: &HealthDef) -> Option<bool> {
        if ok {
            self.ok_in_a_row = self.ok_in_a_row.saturating_add(1);
            self.failed_in_a_row = 0;
            if self.down && self.ok_in_a_row >= def.healthy {
                self.down = false;
                return Some(false);
            }
        } else {
            self.failed_in_a_row = self.failed_in_a_row.saturating_add(1);
            self.ok_in_a_row = 0;
            if !self.down && self.failed_in_a_row >= def.unhealthy {
                self.down = true;
                return Some(true);
            }
        }
        None
    }
}

/// Probes every target of `upstream` every `def.interval`, for as long as the process
/// runs, and tells the upstream which are unhealthy.
pub(super) async fn run(upstream: &'static Upstream, def: &'static HealthDef) {
    let mut counts = vec![Counts::default(); upstream.targets.len()];
    let mut tick = tokio::time::interval(def.interval.max(std::time::Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (target, seen) in upstream.targets.iter().zip(counts.iter_mut()) {
            let ok = probe(upstream, target, def).await;
            if let Some(down) = seen.step(ok, def) {
                upstream.outliers.set_down(target.index, down);
                if down {
                    tracing::warn!(
                        upstream = upstream.name,
                        target = %target.address.connect_uri,
                        "target unhealthy: its health check failed {} times in a row",
                        def.unhealthy
                    );
                } else {
                    tracing::info!(
                        upstream = upstream.name,
                        target = %target.address.connect_uri,
                        "target healthy again"
                    );
                }
            }
        }
    }
}

/// Whether `target` answers `GET path` with a status from 200 to 399 within the timeout.
/// Any failure (no connection, a reset, the timeout, a path that is not a URI) is `false`.
async fn probe(upstream: &Upstream, target: &Target, def: &HealthDef) -> bool {
    let path = format!("{}{}", target.address.base_path, def.path);
    let Ok(pq) = PathAndQuery::from_maybe_shared(path) else {
        return false;
    };
    let mut req = Request::new(Body::Empty);
    *req.uri_mut() = Uri::from(pq);
    req.headers_mut()
        .insert(header::HOST, target.address.host.clone());
    let call = pool::send(
        &target.pool,
        &upstream.connector,
        &target.address.connect_uri,
        req,
        false,
        None,
    );
    match tokio::time::timeout(def.timeout, call).await {
        Ok(Ok(resp)) => healthy_status(resp.status()),
        Ok(Err(_)) | Err(_) => false,
    }
}

fn healthy_status(status: StatusCode) -> bool {
    (200..400).contains(&status.as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_flip_a_target_both_ways() {
        let def = HealthDef::DEFAULT;
        let mut c = Counts::default();
        // Two failures, a success, then three failures: unhealthy at the third in a row.
        let verdicts: Vec<Option<bool>> = [false, false, true, false, false, false]
            .iter()
            .map(|ok| c.step(*ok, &def))
            .collect();
        assert_eq!(verdicts, [None, None, None, None, None, Some(true)]);
        assert!(c.down);
        // A success, a failure, then two successes: healthy at the second in a row.
        let verdicts: Vec<Option<bool>> = [true, false, true, true, true]
            .iter()
            .map(|ok| c.step(*ok, &def))
            .collect();
        assert_eq!(verdicts, [None, None, None, Some(false), None]);
        assert!(!c.down);
        assert!(healthy_status(StatusCode::NO_CONTENT));
        assert!(healthy_status(StatusCode::MOVED_PERMANENTLY));
        assert!(!healthy_status(StatusCode::SERVICE_UNAVAILABLE));
    }
}
