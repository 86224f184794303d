//! The client connections a gateway serves: the HTTP/1 head timeout and the drain at
//! shutdown, with no timer and no clock read per request.
//!
//! hyper's own `header_read_timeout` arms a tokio timer for every request head (a boxed
//! sleep, a timer-wheel insert and removal, a clock read) and polls the connection once
//! more after each request: measured with `bench/proxy_instructions.py`, 4% of the
//! gateway's instructions per proxied request. hyper-util's graceful-shutdown watcher
//! polled a channel on every wake-up of every connection, another 1%.
//!
//! Here a connection only notes, in two atomic stores, when it starts and stops waiting
//! for a request head, counted in ticks of one background task ([`Connections::run`],
//! every 100 ms). Twice a second that task looks over the open connections and closes the
//! ones that have waited for a head longer than `GATEWAY_HEADER_TIMEOUT`: a client that
//! sends nothing, or sends its head too slowly. A connection with a request in flight (a
//! slow upstream, a long download or upload) is never closed by it.
//!
//! HTTP/2 connections are held to the same rule, counted by streams: one with no request
//! in flight for longer than the timeout is closed (with a GOAWAY when it has been served,
//! so a client finishing a request does not lose it). So a client that sends the preface,
//! or part of it, and nothing more, or a HEADERS frame that never ends (no END_HEADERS),
//! holds a connection no longer than an HTTP/1 client sending half a head. A request whose
//! handler is dropped before it answers (an HTTP/2 client resetting its stream) ends its
//! stream's count all the same ([`InFlight`]).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper_util::server::graceful::GracefulConnection;

use crate::body::{Body, BoxError};
use crate::phase::Finish;
use crate::proxy::Peer;

/// One tick of the connections' clock.
const TICK: Duration = Duration::from_millis(100);
/// Ticks between two looks over the connections.
const SWEEP_EVERY: u64 = 5;
/// An HTTP/2 client may reset this many streams before the gateway has answered them; past
/// it, once they are half of its requests, its connection is closed. Each reset stream has
/// cost a task and the phases up to the reset (CVE-2023-44487, "rapid reset"); hyper's own
/// limit covers only streams reset before they are handed to the gateway. Browsers cancel
/// a few requests on navigation, far below this.
const RESETS_TOLERATED: u64 = 100;

/// Every connection being served, and the shutdown flag.
#[derive(Debug)]
pub(crate) struct Connections {
    /// The connections, as weak references; closed ones are pruned at each sweep.
    list: Mutex<Vec<Weak<Conn>>>,
    /// Ticks since start: the only clock a connection reads.
    ticks: AtomicU64,
    /// The head timeout in ticks; 0 for none.
    limit: u64,
    /// Shutdown has begun: connections finish their request in flight and close.
    stopping: AtomicBool,
    /// Connections accepted and not finished yet.
    live: AtomicUsize,
    /// Told when a connection ends, for [`Connections::room`].
    freed: tokio::sync::Notify,
}

/// One client connection.
#[derive(Debug)]
pub(crate) struct Conn {
    /// The client.
    pub(crate) peer: Peer,
    conns: &'static Connections,
    /// HTTP/1 (the head timeout applies) rather than HTTP/2.
    h1: bool,
    /// No request in flight: the connection waits for a request head (HTTP/1).
    idle: AtomicBool,
    /// Requests in flight (HTTP/2, where streams run side by side).
    streams: AtomicUsize,
    /// Requests received, and those whose handler was dropped before it answered (HTTP/2:
    /// the client reset the stream), for [`RESETS_TOLERATED`].
    requests: AtomicU64,
    cancelled: AtomicU64,
    /// Closed at once for resetting too many of its streams.
    abusive: AtomicBool,
    /// To be closed once idle, to make room for new connections ([`Connections::room`]).
    shed: AtomicBool,
    /// It has received at least one request head.
    served: AtomicBool,
    /// The tick at which it last became idle.
    since: AtomicU64,
    /// Set by the sweep: idle for longer than the head timeout.
    expired: AtomicBool,
    /// Wakes the connection's task, for the sweep and for shutdown.
    waker: Mutex<Option<Waker>>,
}

impl Connections {
    /// The registry for a server whose clients have `head_timeout` to send a request head
    /// (`Duration::ZERO`: no limit). It lives as long as the process.
    pub(crate) fn new(head_timeout: Duration) -> &'static Connections {
        let limit = head_timeout.as_millis().div_ceil(TICK.as_millis());
        Box::leak(Box::new(Connections {
            list: Mutex::new(Vec::new()),
            ticks: AtomicU64::new(0),
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
            stopping: AtomicBool::new(false),
            live: AtomicUsize::new(0),
            freed: tokio::sync::Notify::new(),
        }))
    }

    /// Counts a newly accepted connection until the returned guard is dropped.
    pub(crate) fn enter(&'static self) -> Live {
        self.live.fetch_add(1, Ordering::SeqCst);
        Live(self)
    }

    /// Registers a plain-TCP connection about to be served.
    #[cfg(test)]
    pub(crate) fn open(&'static self, addr: std::net::SocketAddr, h1: bool) -> Arc<Conn> {
        self.open_peer(Peer::new(addr), h1)
    }

    /// Registers a connection about to be served.
    pub(crate) fn open_peer(&'static self, peer: Peer, h1: bool) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            peer,
            conns: self,
            h1,
            idle: AtomicBool::new(true),
            streams: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            abusive: AtomicBool::new(false),
            shed: AtomicBool::new(false),
            served: AtomicBool::new(false),
            since: AtomicU64::new(self.ticks.load(Ordering::Relaxed)),
            expired: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        if let Ok(mut list) = self.list.lock() {
            list.push(Arc::downgrade(&conn));
        }
        conn
    }

    /// Connections accepted and not finished.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Returns once fewer than `max` connections are live. Meanwhile the connections idle
    /// for longest (waiting for a request head) are closed, a few at a time: a client
    /// holding many idle keep-alive connections gives way to new clients. When every
    /// connection has a request in flight, it waits for one to end.
    pub(crate) async fn room(&self, max: usize) {
        let batch = 1 + max / 100;
        while self.live() >= max {
            self.shed(batch);
            // Woken when a connection ends; a look again every tick in case none of those
            // shed has ended yet.
            let _ = tokio::time::timeout(TICK, self.freed.notified()).await;
        }
    }

    /// Closes the `n` connections idle for longest that are not closing already.
    fn shed(&self, n: usize) {
        let Ok(list) = self.list.lock() else {
            return;
        };
        let mut idle: Vec<Arc<Conn>> = list
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|c| c.is_idle() && !c.shed.load(Ordering::Relaxed))
            .collect();
        drop(list);
        idle.sort_by_key(|c| c.since.load(Ordering::Relaxed));
        for conn in idle.into_iter().take(n) {
            conn.shed.store(true, Ordering::Relaxed);
            conn.wake();
        }
    }

    /// Tells every connection to finish its request in flight and close.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Ok(list) = self.list.lock() {
            for conn in list.iter().filter_map(Weak::upgrade) {
                conn.wake();
            }
        }
    }

    /// The clock and the sweep; runs for the life of the server.
    ///
    /// Its 100 ms timer also keeps tokio's timer driver from waking early: tokio writes to
    /// an eventfd and makes an extra `epoll_wait` whenever a new timer is due before the
    /// driver's next planned wake-up. With this timer always nearer, a request's upstream
    /// timeout (seconds away) never moves the wake-up earlier.
    pub(crate) async fn run(&'static self) {
        // When this task ends, the tick clock falls back to the system clock.
        struct Stopped;
        impl Drop for Stopped {
            fn drop(&mut self) {
                clock::stop();
            }
        }
        let _stopped = Stopped;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            clock::tick();
            crate::observe::log::flush();
            let now = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
            if now.is_multiple_of(SWEEP_EVERY) {
                self.sweep(now);
            }
        }
    }

    /// Closes the connections that have waited for a head for too long, and forgets closed
    /// ones.
    fn sweep(&self, now: u64) {
        let Ok(mut list) = self.list.lock() else {
            return;
        };
        list.retain(|weak| {
            let Some(conn) = weak.upgrade() else {
                return false;
            };
            if conn.is_idle() && conn.stale(now) && !conn.expired.swap(true, Ordering::Relaxed) {
                conn.wake();
            }
            true
        });
    }
}

impl Conn {
    /// A request head has arrived: the head timeout stops until the returned guard is
    /// dropped, with the response's body ([`Reply`]) or, when the request's handler is
    /// dropped before it answers, with the handler.
    pub(crate) fn busy(self: Arc<Self>) -> InFlight {
        if self.h1 {
            self.idle.store(false, Ordering::Relaxed);
        } else {
            self.streams.fetch_add(1, Ordering::Relaxed);
            self.requests.fetch_add(1, Ordering::Relaxed);
        }
        self.served.store(true, Ordering::Relaxed);
        InFlight {
            conn: self,
            answered: false,
        }
    }

    /// A request's handler was dropped before it answered: an HTTP/2 stream reset by the
    /// client (an HTTP/1 client that goes away closes the whole connection anyway).
    fn cancelled(&self) {
        if self.h1 {
            return;
        }
        let cancelled = self.cancelled.fetch_add(1, Ordering::Relaxed) + 1;
        if cancelled > RESETS_TOLERATED
            && cancelled * 2 > self.requests.load(Ordering::Relaxed)
            && !self.abusive.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                client = %self.peer.ip,
                resets = cancelled,
                "closing an HTTP/2 connection that reset most of its streams before they were answered"
            );
            self.wake();
        }
    }

    /// No request in flight.
    fn is_idle(&self) -> bool {
        if self.h1 {
            self.idle.load(Ordering::Relaxed)
        } else {
            self.streams.load(Ordering::Relaxed) == 0
        }
    }

    /// Idle for longer than the head timeout, at tick `now`.
    fn stale(&self, now: u64) -> bool {
        self.conns.limit > 0
            && now.saturating_sub(self.since.load(Ordering::Relaxed)) > self.conns.limit
    }

    /// A request is done (its response written, or abandoned): when it was the last in
    /// flight, the wait for the next head begins.
    fn rest(&self) {
        if !self.h1 && self.streams.fetch_sub(1, Ordering::Relaxed) > 1 {
            return;
        }
        self.wait_again();
    }

    /// The wait for a head (starts) again now.
    fn wait_again(&self) {
        self.since
            .store(self.conns.ticks.load(Ordering::Relaxed), Ordering::Relaxed);
        self.idle.store(true, Ordering::Relaxed);
    }

    fn wake(&self) {
        if let Ok(waker) = self.waker.lock()
            && let Some(w) = waker.as_ref()
        {
            w.wake_by_ref();
        }
    }
}

/// A clock that costs no system call to read: the time of the last tick of the server's
/// tick task ([`Connections::run`]), so up to a tick behind (more when the runtime is too
/// busy to run that task on time). Only for what tolerates that (the upstream pool's idle
/// stamps); deadlines use tokio's timer. Without the task (in tests), it reads the real clock.
pub(crate) mod clock {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    static BASE: OnceLock<Instant> = OnceLock::new();
    /// Nanoseconds from `BASE` to the last tick, plus one; 0 while no tick task runs.
    static LAST: AtomicU64 = AtomicU64::new(0);

    pub(super) fn tick() {
        let base = *BASE.get_or_init(Instant::now);
        let nanos = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        LAST.store(nanos + 1, Ordering::Relaxed);
    }

    /// The time of the last tick (never later than the real time).
    pub(crate) fn recent() -> Instant {
        match (LAST.load(Ordering::Relaxed), BASE.get()) {
            (0, _) | (_, None) => Instant::now(),
            (n, Some(base)) => *base + Duration::from_nanos(n - 1),
        }
    }

    pub(super) fn stop() {
        LAST.store(0, Ordering::Relaxed);
    }
}

/// A request in flight on its connection; see [`Conn::busy`].
#[derive(Debug)]
pub(crate) struct InFlight {
    conn: Arc<Conn>,
    /// Handed to a [`Reply`]: the request was answered.
    answered: bool,
}

impl InFlight {
    /// The client.
    pub(crate) fn peer(&self) -> &Peer {
        &self.conn.peer
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.answered {
            self.conn.cancelled();
        }
        self.conn.rest();
    }
}

/// A connection counted as live; see [`Connections::enter`].
#[derive(Debug)]
pub(crate) struct Live(&'static Connections);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
        self.0.freed.notify_one();
    }
}

/// Serves `conn` (a hyper HTTP/1 or HTTP/2 connection) until it ends, closing it when the
/// sweep finds it idle for too long and shutting it down gracefully when the server stops.
pub(crate) async fn drive<C>(conn: C, client: Arc<Conn>) -> Result<(), C::Error>
where
    C: GracefulConnection,
{
    let mut conn = std::pin::pin!(conn);
    let mut known: Option<Waker> = None;
    let mut draining = false;
    let mut winding_down = false;
    std::future::poll_fn(move |cx| {
        // A task's waker stays the same from poll to poll; it is stored once, not cloned
        // each time.
        if !known.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            let waker = cx.waker().clone();
            if let Ok(mut slot) = client.waker.lock() {
                *slot = Some(waker.clone());
            }
            known = Some(waker);
        }
        if client.abusive.load(Ordering::Relaxed) {
            // Dropping hyper's connection closes the socket, and every stream on it.
            return Poll::Ready(Ok(()));
        }
        // Looked at again here: a request may have come and gone since the sweep looked.
        // A plain load first: on the usual poll nothing is written.
        let shed = !draining && client.shed.load(Ordering::Relaxed) && client.is_idle();
        if shed
            || client.expired.load(Ordering::Relaxed)
                && client.expired.swap(false, Ordering::Relaxed)
                && client.is_idle()
                && client.stale(client.conns.ticks.load(Ordering::Relaxed))
        {
            if !client.served.load(Ordering::Relaxed) || winding_down {
                // Still on its first head (nothing to send), or already given one more
                // timeout to take the end of its last response: dropping hyper's connection
                // closes the socket.
                return Poll::Ready(Ok(()));
            }
            // The end of the last response may still be in hyper's buffer (the body is
            // dropped once copied there, not once sent): hyper sends it, then closes. A
            // client that does not take it within another timeout is closed then.
            winding_down = true;
            draining = true;
            client.wait_again();
            conn.as_mut().graceful_shutdown();
        }
        if !draining && client.conns.stopping.load(Ordering::SeqCst) {
            draining = true;
            conn.as_mut().graceful_shutdown();
        }
        conn.as_mut().poll(cx)
    })
    .await
}

/// The body of a response to a client: the gateway's [`Body`], plus its request's place on
/// the connection, given up when hyper has finished with the response (dropped it) so the
/// head timeout starts again, and the request's context, reported then ([`Finish`]) with
/// the bytes sent.
#[derive(Debug)]
pub(crate) struct Reply {
    body: Body,
    /// Dropped after [`Reply`]'s own `drop` has reported the request.
    _in_flight: InFlight,
    finish: Option<Box<Finish>>,
    sent: u64,
}

impl Reply {
    pub(crate) fn new(body: Body, mut in_flight: InFlight, finish: Option<Box<Finish>>) -> Self {
        in_flight.answered = true;
        Reply {
            body,
            _in_flight: in_flight,
            finish,
            sent: 0,
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(finish) = self.finish.take() {
            finish.done(self.sent);
        }
    }
}

impl http_body::Body for Reply {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.sent += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn conns(limit_ms: u64) -> &'static Connections {
        Connections::new(Duration::from_millis(limit_ms))
    }

    #[test]
    fn an_idle_http1_connection_expires_after_the_limit_and_not_before() {
        let c = conns(1000); // 10 ticks
        let conn = c.open(SocketAddr::from(([127, 0, 0, 1], 1)), true);
        c.sweep(10);
        assert!(
            !conn.expired.load(Ordering::Relaxed),
            "10 ticks is not over 10"
        );
        c.sweep(11);
        assert!(conn.expired.load(Ordering::Relaxed));
    }

    #[test]
    fn a_request_in_flight_holds_off_the_timeout_and_the_reply_restarts_it() {
        let c = conns(1000);
        let conn = c.open(SocketAddr::from(([127, 0, 0, 1], 1)), true);
        let in_flight = conn.clone().busy();
        c.sweep(100);
        assert!(
            !conn.expired.load(Ordering::Relaxed),
            "busy connections never expire"
        );
        c.ticks.store(100, Ordering::Relaxed);
        drop(Reply::new(Body::Empty, in_flight, None));
        c.sweep(105);
        assert!(
            !conn.expired.load(Ordering::Relaxed),
            "idle again only since tick 100"
        );
        c.sweep(111);
        assert!(conn.expired.load(Ordering::Relaxed));
    }

    #[test]
    fn an_http2_connection_expires_only_with_no_stream_in_flight() {
        let c = conns(1000);
        let h2 = c.open(SocketAddr::from(([127, 0, 0, 1], 1)), false);
        let first = h2.clone().busy();
        let second = h2.clone().busy();
        drop(first);
        c.sweep(100);
        assert!(
            !h2.expired.load(Ordering::Relaxed),
            "one stream is still in flight"
        );
        // The last stream ends (its handler dropped, say, by a reset): idle from now on.
        c.ticks.store(100, Ordering::Relaxed);
        drop(second);
        c.sweep(105);
        assert!(
            !h2.expired.load(Ordering::Relaxed),
            "idle only since tick 100"
        );
        c.sweep(111);
        assert!(h2.expired.load(Ordering::Relaxed));
    }

    #[test]
    fn a_zero_limit_leaves_connections_alone() {
        let none = conns(0);
        let h1 = none.open(SocketAddr::from(([127, 0, 0, 1], 1)), true);
        none.sweep(1000);
        assert!(!h1.expired.load(Ordering::Relaxed));
    }

    #[test]
    fn the_tick_clock_is_never_ahead_and_reads_the_system_clock_when_stopped() {
        clock::tick();
        assert!(clock::recent() <= std::time::Instant::now());
        clock::stop();
        let before = std::time::Instant::now();
        assert!(clock::recent() >= before);
    }

    #[test]
    fn closed_connections_are_forgotten() {
        let c = conns(1000);
        let conn = c.open(SocketAddr::from(([127, 0, 0, 1], 1)), true);
        let _kept = c.open(SocketAddr::from(([127, 0, 0, 1], 2)), true);
        drop(conn);
        c.sweep(1);
        assert_eq!(c.list.lock().map(|l| l.len()).unwrap_or(0), 1);
    }
}
