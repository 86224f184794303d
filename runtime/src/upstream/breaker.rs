//! The circuit breaker of an upstream (`breaker`): limits on the requests it has in flight,
//! on those waiting for a new connection, and on the connections open to it, counted with
//! atomics. A request over a limit
//! is not sent: it fails at once with [`UpstreamError::BreakerOpen`], a 503 with
//! `Retry-After: 1`, so that an upstream that slows down is not buried under requests that
//! pile up.
//!
//! What it costs: nothing for an upstream without `breaker`; otherwise a `fetch_add` and a
//! `fetch_sub` per request, and the same per new connection.
//!
//! [`UpstreamError::BreakerOpen`]: super::UpstreamError::BreakerOpen

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::gateway::BreakerDef;

/// The counts of one upstream against its limits.
#[derive(Debug)]
pub(crate) struct Breaker {
    def: BreakerDef,
    /// Requests in flight: from the call until the response body is done.
    requests: AtomicU32,
    /// Requests waiting for a new connection.
    pending: AtomicU32,
    /// Connections open.
    connections: AtomicU32,
}

/// Which limit refused a request, for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the circuit breaker is open: {0} reached")]
pub(crate) struct Open(pub(crate) &'static str);

/// A request counted in flight; dropping it (with the response body, or the failed call)
/// takes it off.
#[derive(Debug)]
pub struct Permit(Arc<Breaker>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request counted as waiting for a new connection while it lives.
#[derive(Debug)]
pub(crate) struct Pending<'a>(&'a Breaker);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection counted as open while it lives; it goes with the connection's task.
#[derive(Debug)]
pub(crate) struct Connection(Arc<Breaker>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Adds one to `count` unless it is at `max` already.
fn enter(count: &AtomicU32, max: u32) -> bool {
    count
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

impl Breaker {
    pub(crate) fn new(def: BreakerDef) -> Breaker {
        Breaker {
            def,
            requests: AtomicU32::new(0),
            pending: AtomicU32::new(0),
            connections: AtomicU32::new(0),
        }
    }

    /// A request may go out: a permit, unless `max_requests` are in flight already.
    pub(crate) fn admit(this: &Arc<Breaker>) -> Result<Permit, Open> {
        if enter(&this.requests, this.def.max_requests) {
            Ok(Permit(this.clone()))
        } else {
            Err(Open("max_requests"))
        }
    }

    /// Requests in flight now.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Permit {
    /// The request needs a new connection: counted as pending while the guard lives,
    /// unless `max_pending` requests are waiting for one already.
    pub(crate) fn connecting(&self) -> Result<Pending<'_>, Open> {
        let b = &*self.0;
        if enter(&b.pending, b.def.max_pending) {
            Ok(Pending(b))
        } else {
            Err(Open("max_pending"))
        }
    }

    /// The request opens a new connection: counted while it is open, unless
    /// `max_connections` are open already.
    pub(crate) fn opening(&self) -> Result<Connection, Open> {
        if enter(&self.0.connections, self.0.def.max_connections) {
            Ok(Connection(self.0.clone()))
        } else {
            Err(Open("max_connections"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_over_the_limits_are_refused_until_others_finish() {
        let b = Arc::new(Breaker::new(BreakerDef {
            max_requests: 2,
            max_pending: 1,
            max_connections: 1,
        }));
        let first = Breaker::admit(&b).unwrap_or_else(|e| panic!("{e}"));
        let second = Breaker::admit(&b).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.in_flight(), 2);
        assert_eq!(Breaker::admit(&b).map(|_| ()), Err(Open("max_requests")));
        assert_eq!(b.in_flight(), 2, "a refused request stayed counted");
        // One connection open at most: a second is refused until the first closes.
        let open = first.opening().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(second.opening().map(|_| ()), Err(Open("max_connections")));
        drop(open);
        assert!(
            second.opening().is_ok(),
            "a closed connection stayed counted"
        );
        let connecting = first.connecting().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(second.connecting().map(|_| ()), Err(Open("max_pending")));
        drop(connecting);
        assert!(second.connecting().is_ok());
        drop(first);
        assert_eq!(b.in_flight(), 1);
        let third = Breaker::admit(&b);
        assert!(third.is_ok());
        drop((second, third));
        assert_eq!(b.in_flight(), 0);
        // The defaults limit nothing.
        let open = Arc::new(Breaker::new(BreakerDef::DEFAULT));
        let permits: Vec<Permit> = (0..1_000)
            .filter_map(|_| Breaker::admit(&open).ok())
            .collect();
        assert_eq!(permits.len(), 1_000);
    }
}
