//! The connection pools: one per target, over hyper's `client::conn::http1`, found by
//! index (the upstream's, then the target's), never by hashing a key.
//!
//! hyper-util's general-purpose pool hashed a `(scheme, authority)` key and raced a lazy
//! connect future against every checkout, which measured at a quarter of the proxy's
//! user-space instructions. A connection returns to its pool when the response body is
//! dropped, and is used again while it is idle for less than
//! `GATEWAY_UPSTREAM_IDLE_TIMEOUT`. A connection the upstream closed while it was idle is
//! never the client's problem; see [`send`] for how each case is told apart.
//!
//! Each pool also counts its target's requests in flight, for least-request balancing; an
//! upstream balanced otherwise never touches the count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::uri::Uri;
use http::{Method, Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use tower_service::Service;

use super::breaker::Permit;
use super::error::{ConnectFailed, find};
use crate::body::{Body, BoxError};
use crate::conns::clock;
use crate::proxy::{Connector, MAX_BUF, error_chain};

/// Idle connections kept per target.
const MAX_IDLE: usize = 512;
/// How long a connection is used at most, however busy: past it, it is closed when its
/// response is done, and the next one to the target is opened anew, its host name resolved
/// again. So a DNS change reaches a busy upstream within this time (and an idle one at
/// once: every new connection resolves).
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(60);
/// Idle connections to one target, most recently used last (so also in the order of the
/// time each went idle), and the target's requests in flight.
#[derive(Debug)]
pub struct Pool {
    /// Each with when it went idle and when it was opened.
    idle: Mutex<Vec<(http1::SendRequest<Body>, Instant, Instant)>>,
    /// Requests sent to the target whose response body is not done yet (including those
    /// still waiting for a head). Counted only for upstreams whose balancing reads it
    /// (least request); zero otherwise.
    in_flight: AtomicUsize,
    /// How long a connection may stay idle and still be used (`GATEWAY_UPSTREAM_IDLE_TIMEOUT`).
    /// Below the upstream's own keep-alive timeout, the gateway gives a connection up before
    /// the upstream closes it, so a request never meets the upstream's close. Zero keeps no
    /// connection: each request opens its own.
    idle_timeout: Duration,
}

/// A pooled connection, checked out for one request.
#[derive(Debug)]
struct Pooled {
    tx: http1::SendRequest<Body>,
    /// The tick clock moved on while the connection was idle. One idle for 100 ms (a tick)
    /// or more always has; one that has not was idle for less, too little for an
    /// upstream's idle timeout to have fired, so no copy of its request is made to send
    /// again ([`send`]). Under load nearly every reused connection is of that kind.
    rested: bool,
    /// When the connection was opened.
    born: Instant,
}

impl Pool {
    pub(crate) fn new(idle_timeout: Duration) -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            idle_timeout,
        }
    }

    /// The most recently used idle connection that is still open and has been idle for less
    /// than the idle timeout; older ones met on the way are dropped, which closes them.
    fn take(&self) -> Option<Pooled> {
        let mut idle = self.idle.lock().ok()?;
        let now = clock::recent();
        while let Some((tx, since, born)) = idle.pop() {
            if !tx.is_closed() && now.saturating_duration_since(since) < self.idle_timeout {
                return Some(Pooled {
                    tx,
                    rested: now > since,
                    born,
                });
            }
        }
        None
    }

    /// A connection ready for a request: taken from the pool ([`Pool::take`]) and done with
    /// its last response. Those still finishing one are left in the pool for a later
    /// request.
    ///
    /// Readiness is read without registering a waker (`is_ready`, not `poll_ready`): a
    /// connection that is not ready now is not waited for.
    fn checkout(&self) -> Option<Pooled> {
        let mut busy = Vec::new();
        let mut chosen = None;
        while let Some(pooled) = self.take() {
            if pooled.tx.is_ready() {
                chosen = Some(pooled);
                break;
            }
            if !pooled.tx.is_closed() {
                busy.push((pooled.tx, pooled.born));
            }
        }
        for (tx, born) in busy {
            self.put(tx, born);
        }
        chosen
    }

    /// Keeps `tx`, opened at `born`, for another request; a connection past
    /// [`MAX_LIFETIME`] is dropped instead, which closes it.
    fn put(&self, tx: http1::SendRequest<Body>, born: Instant) {
        if self.idle_timeout.is_zero() {
            return;
        }
        let now = clock::recent();
        if now.saturating_duration_since(born) >= MAX_LIFETIME {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            // The oldest come first: those past the idle timeout are dropped (which closes
            // them) rather than left open for the upstream to close. Usually the oldest is
            // not, and one comparison is all this costs.
            let expired = |(_, since, _): &(http1::SendRequest<Body>, Instant, Instant)| {
                now.saturating_duration_since(*since) >= self.idle_timeout
            };
            if idle.first().is_some_and(expired) {
                let n = idle.partition_point(expired);
                idle.drain(..n);
            }
            if idle.len() < MAX_IDLE {
                idle.push((tx, now, born));
            }
        }
    }
}

/// A connection lent to one response; it goes back to its pool when the response body is
/// dropped, unless the connection has closed.
///
/// The connection may still be finishing the response at that moment; checkout checks it
/// is ready before use (see [`send`]). Returning it here instead of waiting in
/// a task of its own keeps the hot path free of spawns and cross-thread wake-ups.
#[derive(Debug)]
pub struct Lease {
    tx: Option<http1::SendRequest<Body>>,
    /// When the connection was opened.
    born: Instant,
    pool: Arc<Pool>,
    /// Whether the request is counted in the pool's `in_flight` until now.
    counted: bool,
    /// The request's place under its upstream's circuit breaker, given up with the body.
    _permit: Option<Permit>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.counted {
            self.pool.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(tx) = self.tx.take()
            && !tx.is_closed()
        {
            self.pool.put(tx, self.born);
        }
    }
}

/// A request counted in its pool's requests in flight while it waits for a response head;
/// [`Busy::keep`] hands the count to the response's [`Lease`]. Dropped before that (an
/// error, or the caller's timeout dropping the call), it takes the request off the count.
#[derive(Debug)]
struct Busy<'a> {
    pool: Option<&'a Pool>,
}

impl<'a> Busy<'a> {
    fn enter(pool: &'a Pool, counted: bool) -> Busy<'a> {
        if !counted {
            return Busy { pool: None };
        }
        pool.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy { pool: Some(pool) }
    }

    /// Whether the request is counted; from now on its lease takes it off the count.
    fn keep(mut self) -> bool {
        self.pool.take().is_some()
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool {
            pool.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A new connection to `connect_uri`, driven by its own task, which keeps `slot` (its
/// place under the breaker's `max_connections`) until the connection closes.
async fn connect(
    connector: &Connector,
    connect_uri: &Uri,
    slot: Option<super::breaker::Connection>,
) -> Result<http1::SendRequest<Body>, BoxError> {
    let mut connector = connector.clone();
    let io = connector
        .call(connect_uri.clone())
        .await
        .map_err(|e| ConnectFailed(error_chain(&*Into::<BoxError>::into(e))))?;
    // Single-buffer writes, as towards clients (`server::serve`).
    let (tx, conn) = http1::Builder::new()
        .writev(false)
        .max_buf_size(MAX_BUF)
        .handshake(io)
        .await?;
    tokio::spawn(async move {
        let _slot = slot;
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection closed with an error");
        }
    });
    Ok(tx)
}

/// Sends `req` on a connection from `pool`, or a new one to `connect_uri`. With `counted`,
/// the request counts in the pool's requests in flight until its response body is done (or
/// the call fails, or its future is dropped).
///
/// A pooled connection may have been closed by the upstream while it was idle, and the
/// gateway may not know it yet. That is never the client's problem:
/// - Closed before the request was written to it: hyper hands the request back
///   (`TrySendError::take_message`), and it goes out on a new connection, whatever its
///   method. Its body has not been read, so it goes out whole.
/// - Closed, or reset, by the upstream just as the request was written (its idle
///   timeout fired at that moment), before any answer: the upstream may have read the
///   request, so it is sent again on a new connection only when that is safe, for a GET,
///   HEAD, OPTIONS or TRACE without a body (RFC 9110 section 9.2.1), and only when the
///   connection had rested ([`Pooled::rested`]), which is when the copy is made. Any
///   other request gets the error (502).
///
/// A request sent on a new connection is sent once: its failure is the upstream's.
///
/// `permit`, the request's place under the upstream's circuit breaker, is kept until the
/// response body is done. A request that needs a new connection is counted as pending
/// while it connects, and fails with the breaker's `Open` error (before anything is sent)
/// when `max_pending` requests are connecting already.
pub(crate) async fn send(
    pool: &Arc<Pool>,
    connector: &Connector,
    connect_uri: &Uri,
    req: Request<Body>,
    counted: bool,
    permit: Option<Permit>,
) -> Result<Response<Body>, BoxError> {
    let busy = Busy::enter(pool, counted);
    let mut req = req;
    if let Some(Pooled {
        mut tx,
        rested,
        born,
    }) = pool.checkout()
    {
        let again = if rested { replayable(&req) } else { None };
        match tx.try_send_request(req).await {
            Ok(resp) => return Ok(lease(resp, (tx, born), pool, busy.keep(), permit)),
            Err(mut e) => match (e.take_message(), again) {
                (Some(back), _) => req = back,
                (None, Some(copy)) if closed_unanswered(e.error()) => {
                    tracing::debug!(
                        error = %e.error(),
                        "an idle upstream connection closed under a request; sending it again on a new one"
                    );
                    req = *copy;
                }
                (None, _) => return Err(e.into_error().into()),
            },
        }
    }
    // Boxed: connecting is rare, and its future would otherwise set the size (and the
    // cost of every move) of each request's future.
    let (pending, slot) = match &permit {
        Some(p) => (Some(p.connecting()?), Some(p.opening()?)),
        None => (None, None),
    };
    let born = clock::recent();
    let mut tx = Box::pin(connect(connector, connect_uri, slot)).await?;
    drop(pending);
    let resp = tx.send_request(req).await?;
    Ok(lease(resp, (tx, born), pool, busy.keep(), permit))
}

/// The upstream's response, with the connection lent to its body.
fn lease(
    resp: Response<Incoming>,
    (tx, born): (http1::SendRequest<Body>, Instant),
    pool: &Arc<Pool>,
    counted: bool,
    permit: Option<Permit>,
) -> Response<Body> {
    let lease = Lease {
        tx: Some(tx),
        born,
        pool: pool.clone(),
        counted,
        _permit: permit,
    };
    resp.map(|inner| Body::Stream {
        inner,
        remaining: u64::MAX,
        limit: u64::MAX,
        lease: Some(lease),
        counted: None,
    })
}

/// A copy of `req` to send again should its connection close under it, when that is safe:
/// a safe method (RFC 9110 section 9.2.1: GET, HEAD, OPTIONS, TRACE) and no body. The
/// copy has no extensions (hyper reads none from a request it sends).
fn replayable(req: &Request<Body>) -> Option<Box<Request<Body>>> {
    let safe = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if !safe || !req.body().is_end_stream() {
        return None;
    }
    let mut copy = Request::new(Body::Empty);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(Box::new(copy))
}

/// Whether a call failed because its connection was closed or reset before any answer:
/// not a malformed answer, a timeout, or an error of the request's own body.
fn closed_unanswered(e: &hyper::Error) -> bool {
    if e.is_parse()
        || e.is_parse_status()
        || e.is_parse_too_large()
        || e.is_user()
        || e.is_timeout()
    {
        return false;
    }
    e.is_incomplete_message()
        || e.is_closed()
        || e.is_canceled()
        || find::<std::io::Error>(e).is_some()
}

impl Pool {
    /// Requests in flight to its target (counted only under least-request balancing).
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use http::header;
    use tokio::io::AsyncReadExt;

    /// A connection over an in-memory pipe, ready for a request, and the upstream's end.
    async fn connection() -> (http1::SendRequest<Body>, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(4096);
        let (mut tx, conn) = http1::handshake::<_, Body>(hyper_util::rt::TokioIo::new(ours))
            .await
            .unwrap_or_else(|e| panic!("handshake: {e}"));
        tokio::spawn(conn);
        tx.ready().await.unwrap_or_else(|e| panic!("ready: {e}"));
        (tx, theirs)
    }

    /// Whether the gateway closed its end of `theirs` within a second.
    async fn closed_by_the_gateway(theirs: &mut tokio::io::DuplexStream) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(1), theirs.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn a_pooled_connection_is_used_until_the_idle_timeout_then_closed() {
        let pool = Pool::new(Duration::from_millis(100));
        let (tx, mut theirs) = connection().await;
        pool.put(tx, clock::recent());
        let Some(pooled) = pool.checkout() else {
            panic!("a connection idle for less than the timeout was not used");
        };
        pool.put(pooled.tx, pooled.born);
        // Several ticks of the tick clock past the timeout, whichever clock it reads.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(pool.checkout().is_none(), "an expired connection was used");
        assert!(
            closed_by_the_gateway(&mut theirs).await,
            "an expired connection was left open"
        );
    }

    #[tokio::test]
    async fn an_expired_connection_is_closed_when_another_goes_idle() {
        let pool = Pool::new(Duration::from_millis(100));
        let (old, mut old_end) = connection().await;
        pool.put(old, clock::recent());
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (new, _new_end) = connection().await;
        pool.put(new, clock::recent());
        assert!(
            closed_by_the_gateway(&mut old_end).await,
            "an expired connection was kept open"
        );
        assert!(
            pool.checkout().is_some(),
            "the fresh connection was not kept"
        );
    }

    #[tokio::test]
    async fn a_connection_past_its_lifetime_is_closed_instead_of_kept() {
        let pool = Pool::new(Duration::from_secs(600));
        let (tx, mut theirs) = connection().await;
        let born = clock::recent()
            .checked_sub(MAX_LIFETIME)
            .unwrap_or_else(|| panic!("the clock is too young"));
        pool.put(tx, born);
        assert!(pool.checkout().is_none(), "an old connection was kept");
        assert!(closed_by_the_gateway(&mut theirs).await);
    }

    #[tokio::test]
    async fn an_idle_timeout_of_zero_keeps_no_connection() {
        let pool = Pool::new(Duration::ZERO);
        let (tx, mut theirs) = connection().await;
        pool.put(tx, clock::recent());
        assert!(pool.checkout().is_none());
        assert!(closed_by_the_gateway(&mut theirs).await);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_while_idle_is_not_used() {
        let pool = Pool::new(Duration::from_secs(60));
        let (tx, theirs) = connection().await;
        pool.put(tx, clock::recent());
        drop(theirs);
        // The connection's task reads the end of the stream and closes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(pool.checkout().is_none());
    }

    #[test]
    fn only_safe_requests_without_a_body_are_copied_to_send_again() {
        let request = |method: Method, body: Body| {
            let mut req = Request::new(body);
            *req.method_mut() = method;
            *req.uri_mut() = Uri::from_static("/items/1?x=2");
            req.headers_mut()
                .insert(header::HOST, HeaderValue::from_static("up.test"));
            req
        };
        for method in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            let copy = replayable(&request(method.clone(), Body::Empty));
            let copy = copy.unwrap_or_else(|| panic!("{method} without a body is not copied"));
            assert_eq!(*copy.method(), method);
            assert_eq!(copy.uri(), "/items/1?x=2");
            assert_eq!(
                copy.headers().get(header::HOST).map(HeaderValue::as_bytes),
                Some(&b"up.test"[..])
            );
        }
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(
                replayable(&request(method.clone(), Body::Empty)).is_none(),
                "{method}"
            );
        }
        assert!(replayable(&request(Method::GET, Body::full("a body"))).is_none());
    }

    #[tokio::test]
    async fn a_counted_request_is_in_flight_until_its_response_is_done() {
        let pool = Arc::new(Pool::new(Duration::from_secs(60)));
        // Not counted (any balancing but least request): the count is never touched.
        let busy = Busy::enter(&pool, false);
        assert_eq!(pool.in_flight(), 0);
        assert!(!busy.keep());
        // A call that fails, or whose future is dropped, leaves the count.
        let busy = Busy::enter(&pool, true);
        assert_eq!(pool.in_flight(), 1);
        drop(busy);
        assert_eq!(pool.in_flight(), 0);
        // A call that got its head stays counted until the response body is dropped.
        let (tx, _theirs) = connection().await;
        let busy = Busy::enter(&pool, true);
        let lease = Lease {
            tx: Some(tx),
            born: clock::recent(),
            pool: pool.clone(),
            counted: busy.keep(),
            _permit: None,
        };
        assert_eq!(pool.in_flight(), 1);
        drop(lease);
        assert_eq!(pool.in_flight(), 0);
    }
}
