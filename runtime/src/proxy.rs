//! The upstream call: a pooled HTTP client that streams bodies both ways.
//!
//! What it does to a request on the way through: hop-by-hop headers removed (the fixed
//! list of RFC 9110 section 7.6.1 and every header the `Connection` header names),
//! `X-Forwarded-For`/`-Proto`/`-Host` set, the request id passed on, the path replaced by
//! the plan's upstream path under the upstream's base path, the query kept as sent.
//! What it maps: no response head within the operation's timeout gives 504; a refused,
//! reset or broken connection gives 502; a request body over `max_body` gives 413; a request
//! body the client framed badly or cut short gives 400 (the client's fault, not the
//! upstream's). A body is never dropped: one of unknown length goes chunked, whatever the
//! method.
//!
//! The connection pool is our own, over hyper's `client::conn::http1`: one idle list per
//! upstream, found by index. hyper-util's general-purpose pool hashed a `(scheme,
//! authority)` key and raced a lazy connect future against every checkout, which measured
//! at a quarter of the proxy's user-space instructions. A connection returns to its list when
//! the response body is dropped, and is used again while it is idle for less than
//! `GATEWAY_UPSTREAM_IDLE_TIMEOUT`. A connection the upstream closed while it was idle is
//! never the client's problem; see [`Proxy::send`] for how each case is told apart.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Scheme, Uri};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

use crate::body::{Body, BodyTooLarge, BoxError, ClientBodyError};
use crate::conns::clock;
use crate::gateway::Plan;
use crate::phase::ctx::Ctx;
use crate::problem::{Kind, Problem};

/// How the runtime opens outgoing connections: TCP, and TLS (rustls with ring and the
/// Mozilla roots) for `https` URLs with the `tls` feature.
#[cfg(feature = "tls")]
pub(crate) type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
/// How the runtime opens outgoing connections: TCP only, without the `tls` feature.
#[cfg(not(feature = "tls"))]
pub(crate) type Connector = HttpConnector;

/// The connector every outgoing connection uses (upstreams, JWKS fetches, span export):
/// HTTP/1, `connect_timeout` to connect, `TCP_NODELAY` when `nodelay`.
pub(crate) fn connector(connect_timeout: Duration, nodelay: bool) -> Result<Connector, String> {
    let mut http = HttpConnector::new();
    http.set_nodelay(nodelay);
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    #[cfg(feature = "tls")]
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    #[cfg(not(feature = "tls"))]
    let connector = http;
    Ok(connector)
}

/// Where an upstream's requests go.
#[derive(Debug, Clone)]
pub enum Target {
    /// No URL configured: answer from the spec's examples.
    Mock,
    /// A real service.
    Http {
        /// The URL's path without a trailing slash (`""` for none).
        base_path: String,
        /// The `Host` header sent upstream.
        host: HeaderValue,
        /// Scheme and authority, for the connector.
        connect_uri: Uri,
    },
}

impl Target {
    /// Parses a resolved upstream URL; the empty string means mock mode.
    pub fn parse(url: &str) -> Result<Target, String> {
        if url.is_empty() {
            return Ok(Target::Mock);
        }
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a valid URL: {e}"))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| format!("`{url}` has no scheme"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(format!(
                "`{url}`: only http and https upstreams are supported"
            ));
        }
        #[cfg(not(feature = "tls"))]
        if scheme == Scheme::HTTPS {
            return Err(format!(
                "`{url}`: this gateway was built without the `tls` feature"
            ));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("`{url}` has no host"))?;
        if uri.query().is_some() {
            return Err(format!("`{url}`: an upstream URL cannot carry a query"));
        }
        if authority.as_str().contains('@') {
            return Err(format!(
                "`{url}`: credentials in an upstream URL would be sent as its Host header; remove them"
            ));
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| format!("`{url}` has a host that cannot be a Host header"))?;
        let connect_uri = Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query("/")
            .build()
            .map_err(|e| format!("`{url}`: {e}"))?;
        Ok(Target::Http {
            base_path,
            host,
            connect_uri,
        })
    }
}

/// The upstream client: a connector and one connection pool per upstream.
#[derive(Debug)]
pub struct Proxy {
    connector: Connector,
    pools: Vec<Arc<Pool>>,
}

/// Idle connections kept per upstream.
const MAX_IDLE: usize = 512;
/// hyper's read and write buffers, at most, per connection (both ways). With single-buffer
/// writes a connection keeps its write buffer at the largest size it reached, so this
/// bounds what an idle keep-alive connection holds; it also caps a message head.
pub(crate) const MAX_BUF: usize = 64 * 1024;

/// Idle connections to one upstream, most recently used last (so also in the order of the
/// time each went idle).
#[derive(Debug)]
pub struct Pool {
    idle: Mutex<Vec<(http1::SendRequest<Body>, Instant)>>,
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
    /// again ([`Proxy::send`]). Under load nearly every reused connection is of that kind.
    rested: bool,
}

impl Pool {
    fn new(idle_timeout: Duration) -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
            idle_timeout,
        }
    }

    /// The most recently used idle connection that is still open and has been idle for less
    /// than the idle timeout; older ones met on the way are dropped, which closes them.
    fn take(&self) -> Option<Pooled> {
        let mut idle = self.idle.lock().ok()?;
        let now = clock::recent();
        while let Some((tx, since)) = idle.pop() {
            if !tx.is_closed() && now.saturating_duration_since(since) < self.idle_timeout {
                return Some(Pooled {
                    tx,
                    rested: now > since,
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
                busy.push(pooled.tx);
            }
        }
        for tx in busy {
            self.put(tx);
        }
        chosen
    }

    fn put(&self, tx: http1::SendRequest<Body>) {
        if self.idle_timeout.is_zero() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            let now = clock::recent();
            // The oldest come first: those past the idle timeout are dropped (which closes
            // them) rather than left open for the upstream to close. Usually the oldest is
            // not, and one comparison is all this costs.
            let expired = |(_, since): &(http1::SendRequest<Body>, Instant)| {
                now.saturating_duration_since(*since) >= self.idle_timeout
            };
            if idle.first().is_some_and(expired) {
                let n = idle.partition_point(expired);
                idle.drain(..n);
            }
            if idle.len() < MAX_IDLE {
                idle.push((tx, now));
            }
        }
    }
}

/// A connection lent to one response; it goes back to its pool when the response body is
/// dropped, unless the connection has closed.
///
/// The connection may still be finishing the response at that moment; checkout checks it
/// is ready before use (see [`Proxy::send`]). Returning it here instead of waiting in
/// a task of its own keeps the hot path free of spawns and cross-thread wake-ups.
#[derive(Debug)]
pub struct Lease {
    tx: Option<http1::SendRequest<Body>>,
    pool: Arc<Pool>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take()
            && !tx.is_closed()
        {
            self.pool.put(tx);
        }
    }
}

use gatewayc_vocab::headers as names;
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static(names::X_FORWARDED_FOR);
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static(names::X_FORWARDED_PROTO);
pub(crate) static X_FORWARDED_CLIENT_CERT: HeaderName =
    HeaderName::from_static(names::X_FORWARDED_CLIENT_CERT);
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static(names::X_FORWARDED_HOST);
static X_REQUEST_ID: HeaderName = HeaderName::from_static(names::X_REQUEST_ID);

impl Proxy {
    /// A client for `upstreams` upstreams, with keep-alive pooling (a connection idle for
    /// `idle_timeout` is not used again), `TCP_NODELAY`, and (with `tls`) HTTPS through
    /// rustls.
    pub fn new(upstreams: usize, idle_timeout: Duration) -> Result<Self, String> {
        let connector = connector(Duration::from_secs(5), true)?;
        let pools = (0..upstreams)
            .map(|_| Arc::new(Pool::new(idle_timeout)))
            .collect();
        Ok(Proxy { connector, pools })
    }

    /// A new connection to `connect_uri`, driven by its own task.
    async fn connect(&self, connect_uri: &Uri) -> Result<http1::SendRequest<Body>, BoxError> {
        let mut connector = self.connector.clone();
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
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection closed with an error");
            }
        });
        Ok(tx)
    }

    /// Sends `req` on a pooled connection to upstream `index`, or a new one.
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
    async fn send(
        &self,
        index: usize,
        connect_uri: &Uri,
        req: Request<Body>,
    ) -> Result<Response<Body>, BoxError> {
        let pool = &self.pools[index];
        let mut req = req;
        if let Some(Pooled { mut tx, rested }) = pool.checkout() {
            let again = if rested { replayable(&req) } else { None };
            match tx.try_send_request(req).await {
                Ok(resp) => return Ok(lease(resp, tx, pool)),
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
        let mut tx = Box::pin(self.connect(connect_uri)).await?;
        let resp = tx.send_request(req).await?;
        Ok(lease(resp, tx, pool))
    }

    /// Sends a GET for `path_and_query` (under the upstream's base path) with exactly
    /// `headers` plus `Host`, on a pooled connection to upstream `index`: an aggregate
    /// part's call. No timeout here; the caller sets its own.
    pub async fn get(
        &self,
        index: usize,
        target: &Target,
        path_and_query: &str,
        headers: HeaderMap,
    ) -> Result<Response<Body>, BoxError> {
        let Target::Http {
            base_path,
            host,
            connect_uri,
        } = target
        else {
            return Err("a mock upstream has no connection".into());
        };
        let mut pq = String::with_capacity(base_path.len() + path_and_query.len());
        pq.push_str(base_path);
        pq.push_str(path_and_query);
        let mut req = Request::new(Body::Empty);
        *req.uri_mut() = Uri::from(PathAndQuery::from_maybe_shared(pq)?);
        *req.headers_mut() = headers;
        req.headers_mut().insert(header::HOST, host.clone());
        self.send(index, connect_uri, req).await
    }

    /// Sends the request to `target` along the plan and returns the upstream's response,
    /// with its body streamed. The request body is the client's, already limited to the
    /// operation's `max_body` ([`Body::limited`]), or the one a request transform made.
    ///
    /// The call is recorded in `ctx`: the upstream, the attempt, its span id (sent in
    /// `traceparent`), when it started and how long its response head took.
    pub async fn forward(
        &self,
        index: usize,
        target: &Target,
        plan: Plan,
        req: Request<Body>,
        ctx: &mut Ctx,
    ) -> Result<Response<Body>, Problem> {
        let Target::Http {
            base_path,
            host,
            connect_uri,
        } = target
        else {
            return Err(Problem::bad_gateway().because(Kind::Gateway, "no upstream URL"));
        };
        let op = plan.op;
        let mut req = req;

        let query = req.uri().query();
        // The usual case: no base path, no rewrite, and the request in origin form, so the
        // upstream path is byte for byte the one the client sent. Its URI then goes upstream
        // as it is instead of being built and parsed again. (Only an identical path is kept:
        // a parameter value is never sent in any form but the router's encoding.)
        let pq = if base_path.is_empty()
            && req.uri().scheme().is_none()
            && req.uri().path() == plan.path.as_str()
        {
            None
        } else if base_path.is_empty() && query.is_none() {
            Some(plan.path.into_string())
        } else {
            let mut pq = String::with_capacity(
                base_path.len() + plan.path.as_str().len() + query.map_or(0, |q| q.len() + 1),
            );
            pq.push_str(base_path);
            pq.push_str(plan.path.as_str());
            if let Some(q) = query {
                pq.push('?');
                pq.push_str(q);
            }
            Some(pq)
        };
        // HTTP/2 clients send the authority in the URI rather than a Host header.
        let uri_host = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
        let orig_host = req.headers().get(header::HOST).cloned().or(uri_host);
        // Hop-by-hop headers were removed when the request was routed
        // (`server::serve_operation`), before the gateway set any header of its own, so a
        // client's `Connection: host, x-user-id` cannot remove what the gateway sets.
        // Room for the headers below at once, rather than growing the map per insert.
        req.headers_mut().reserve(7);
        req.headers_mut().insert(header::HOST, host.clone());
        // Origin form (`/path?query`): what an HTTP/1.1 request to a server carries.
        if let Some(pq) = pq {
            *req.uri_mut() = Uri::from(
                PathAndQuery::from_maybe_shared(pq)
                    .map_err(|_| Problem::bad_path("the request path cannot be forwarded"))?,
            );
        }
        *req.version_mut() = Version::HTTP_11;

        // hyper sends a GET or HEAD whose body has no declared length as having no body at
        // all (it never reads it), and the client's `Transfer-Encoding` went with the other
        // hop-by-hop headers (phase 4). So a body of unknown length is marked chunked below,
        // whatever the method, rather than dropped. A body known to be empty is not.
        let unframed = !req.body().is_end_stream() && req.body().size_hint().exact().is_none();
        let h = req.headers_mut();
        if unframed && !h.contains_key(header::CONTENT_LENGTH) {
            h.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
        let xff = forwarded_for(h, ctx.peer, &ctx.peer_header);
        if let Some(v) = xff {
            h.insert(X_FORWARDED_FOR.clone(), v);
        }
        h.insert(X_FORWARDED_PROTO.clone(), scheme_header(ctx.secure));
        // Only the gateway says which certificate a client showed: one a client wrote
        // itself is removed.
        match &ctx.client_cert {
            Some(cert) => {
                h.insert(X_FORWARDED_CLIENT_CERT.clone(), cert.clone());
            }
            None => {
                h.remove(&X_FORWARDED_CLIENT_CERT);
            }
        }
        if let Some(host) = orig_host {
            h.insert(X_FORWARDED_HOST.clone(), host);
        }
        h.insert(X_REQUEST_ID.clone(), ctx.request_id.clone());
        let span = crate::observe::trace::new_span_id();
        ctx.trace.propagate(h, &span);
        ctx.upstream = Some(index);
        ctx.upstream_span = Some(span);
        ctx.attempts += 1;
        let started = Instant::now();
        ctx.upstream_start = Some(started);

        // The request's future is polled where it lies: `tokio::time::timeout` would move it
        // (about a kilobyte) into a wrapper on every request.
        let mut sent = std::pin::pin!(self.send(index, connect_uri, req));
        let mut deadline = std::pin::pin!(tokio::time::sleep(op.timeout));
        let outcome = std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = sent.as_mut().poll(cx) {
                return Poll::Ready(Ok(r));
            }
            deadline.as_mut().poll(cx).map(Err)
        });
        let outcome = outcome.await;
        ctx.upstream_time = Some(started.elapsed());
        let resp = match outcome {
            Err(()) => {
                return Err(Problem::gateway_timeout().because(
                    Kind::UpstreamTimeout,
                    format!(
                        "no response head within the operation's timeout of {} ms",
                        op.timeout.as_millis()
                    ),
                ));
            }
            Ok(Err(e)) => {
                if is_too_large(&*e) {
                    return Err(too_large(op.max_body));
                }
                // Reading the client's body failed while it was being sent: the client's
                // fault, so neither a 502 nor an upstream error in the log and metrics.
                if caused_by::<ClientBodyError>(&*e) {
                    return Err(unreadable_body(error_chain(&*e)));
                }
                return Err(Problem::bad_gateway().because(classify(&*e), error_chain(&*e)));
            }
            Ok(Ok(resp)) => resp,
        };
        ctx.upstream_status = Some(resp.status().as_u16());
        let mut resp = resp;
        remove_hop_by_hop(resp.headers_mut());
        *resp.version_mut() = Version::HTTP_11;
        Ok(resp)
    }
}

/// The upstream's response, with the connection lent to its body.
fn lease(
    resp: Response<Incoming>,
    tx: http1::SendRequest<Body>,
    pool: &Arc<Pool>,
) -> Response<Body> {
    let lease = Lease {
        tx: Some(tx),
        pool: pool.clone(),
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
    e.is_incomplete_message() || e.is_closed() || e.is_canceled() || caused_by::<std::io::Error>(e)
}

/// Whether `e`, or an error in its chain of sources, is a `T`.
fn caused_by<T: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<T>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// 400: the client's request body could not be read ([`ClientBodyError`]); `reason`, for the
/// operator, says why.
pub(crate) fn unreadable_body(reason: String) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "the request body could not be read: its chunked framing is malformed, or it ended early",
    )
    .because(Kind::BadRequest, reason)
}

/// What kind of failure an upstream call's error is.
fn classify(e: &(dyn std::error::Error + 'static)) -> Kind {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<ConnectFailed>() {
            return Kind::UpstreamConnect;
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() {
                return Kind::UpstreamInvalid;
            }
            if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                return Kind::UpstreamReset;
            }
        }
        if err.is::<std::io::Error>() {
            return Kind::UpstreamReset;
        }
        cur = err.source();
    }
    Kind::UpstreamReset
}

/// A new connection to the upstream could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect: {0}")]
struct ConnectFailed(String);

pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

pub(crate) fn too_large(limit: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body exceeds this operation's limit of {limit} bytes"),
    )
}

pub(crate) fn is_too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    caused_by::<BodyTooLarge>(e)
}

pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        out.push_str(": ");
        out.push_str(&err.to_string());
        cur = err.source();
    }
    out
}

/// The client end of a connection, with what the proxy derives from it computed once per
/// connection rather than per request.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// Its IP address.
    pub ip: std::net::IpAddr,
    /// The IP address as a header value, for `X-Forwarded-For`.
    pub ip_header: HeaderValue,
    /// The connection is TLS (`X-Forwarded-Proto: https`).
    pub secure: bool,
    /// The client's verified certificate, as an `X-Forwarded-Client-Cert` value.
    pub client_cert: Option<HeaderValue>,
}

impl Peer {
    /// Describes a newly accepted plain-TCP connection.
    pub fn new(addr: SocketAddr) -> Self {
        let ip = addr.ip();
        let ip_header = HeaderValue::from_str(&ip.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Peer {
            addr,
            ip,
            ip_header,
            secure: false,
            client_cert: None,
        }
    }

    /// Describes a connection whose TLS handshake is done, with the client's certificate
    /// (see `tls::forwarded_client_cert`) when it gave one.
    pub fn secure(addr: SocketAddr, client_cert: Option<HeaderValue>) -> Self {
        Peer {
            secure: true,
            client_cert,
            ..Peer::new(addr)
        }
    }
}

/// `X-Forwarded-Proto` for a connection.
pub(crate) fn scheme_header(secure: bool) -> HeaderValue {
    HeaderValue::from_static(if secure { "https" } else { "http" })
}

/// The hop-by-hop headers (RFC 9110 section 7.6.1, plus `Keep-Alive` and
/// `Proxy-Connection`): `gatewayc_vocab::headers::HOP_BY_HOP`, the list the compiler checks
/// transforms against, made `HeaderName`s at compile time and in its order (`connection`
/// first). The array is as long as the list, so a name added there fails to compile here
/// until it is added below.
static HOP_BY_HOP_NAMES: [HeaderName; gatewayc_vocab::headers::HOP_BY_HOP.len()] = {
    const NAMES: &[&str] = gatewayc_vocab::headers::HOP_BY_HOP;
    [
        HeaderName::from_static(NAMES[0]),
        HeaderName::from_static(NAMES[1]),
        HeaderName::from_static(NAMES[2]),
        HeaderName::from_static(NAMES[3]),
        HeaderName::from_static(NAMES[4]),
        HeaderName::from_static(NAMES[5]),
        HeaderName::from_static(NAMES[6]),
        HeaderName::from_static(NAMES[7]),
        HeaderName::from_static(NAMES[8]),
    ]
};

// `remove_hop_by_hop` finds `Connection` at bit 0 and marks names in a `u16`.
const _: () = assert!(matches!(
    gatewayc_vocab::headers::HOP_BY_HOP[0].as_bytes(),
    b"connection"
));
const _: () = assert!(gatewayc_vocab::headers::HOP_BY_HOP.len() <= 16);

/// Bit `n` is set when some hop-by-hop header name is `n` bytes long.
const HOP_BY_HOP_LENGTHS: u64 = {
    let names = gatewayc_vocab::headers::HOP_BY_HOP;
    let mut lengths = 0u64;
    let mut i = 0;
    while i < names.len() {
        lengths |= 1 << names[i].len();
        i += 1;
    }
    lengths
};

fn hop_index(name: &str) -> Option<usize> {
    // Header names are lower case in a HeaderMap; compare by length first.
    if name.len() < 64 && HOP_BY_HOP_LENGTHS & (1 << name.len()) != 0 {
        gatewayc_vocab::headers::HOP_BY_HOP
            .iter()
            .position(|h| *h == name)
    } else {
        None
    }
}

/// The `X-Forwarded-For` to send upstream: every line the client (and the proxies before
/// us) sent, in order, then the peer's address.
pub(crate) fn forwarded_for(
    h: &HeaderMap,
    peer: std::net::IpAddr,
    peer_header: &HeaderValue,
) -> Option<HeaderValue> {
    let mut lines = h.get_all(&X_FORWARDED_FOR).iter();
    match lines.next().and_then(|v| v.to_str().ok()) {
        None => Some(peer_header.clone()),
        Some(first) => {
            let mut all = first.to_owned();
            for more in lines.filter_map(|v| v.to_str().ok()) {
                all.push_str(", ");
                all.push_str(more);
            }
            HeaderValue::from_str(&format!("{all}, {peer}")).ok()
        }
    }
}

/// Removes the headers that describe one connection rather than the message: the fixed
/// list above and every header the `Connection` header names.
pub fn remove_hop_by_hop(h: &mut HeaderMap) {
    // One pass over the (short) map marks what is present; most messages need one removal
    // (`Connection: keep-alive`) or none.
    let mut present = 0u16;
    for name in h.keys() {
        if let Some(i) = hop_index(name.as_str()) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    // `Connection: keep-alive` or `close`, by far the usual values, name nothing else.
    let names_nothing = |v: &HeaderValue| {
        let b = v.as_bytes();
        b.eq_ignore_ascii_case(b"keep-alive") || b.eq_ignore_ascii_case(b"close")
    };
    if present & 1 != 0 && !h.get_all(header::CONNECTION).iter().all(names_nothing) {
        let named: Vec<HeaderName> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .filter(|n| {
                !n.is_empty()
                    && !HOP_BY_HOP_NAMES
                        .iter()
                        .any(|h| h.as_str().eq_ignore_ascii_case(n))
            })
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            // What the gateway itself reads from the request (the client's host and the
            // forwarding chain) is end-to-end, whatever `Connection` says.
            .filter(|n| *n != header::HOST && *n != X_FORWARDED_FOR)
            .collect();
        for name in named {
            h.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP_NAMES.iter().enumerate() {
        if present & (1 << i) != 0 {
            h.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        pool.put(tx);
        let Some(pooled) = pool.checkout() else {
            panic!("a connection idle for less than the timeout was not used");
        };
        pool.put(pooled.tx);
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
        pool.put(old);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (new, _new_end) = connection().await;
        pool.put(new);
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
    async fn an_idle_timeout_of_zero_keeps_no_connection() {
        let pool = Pool::new(Duration::ZERO);
        let (tx, mut theirs) = connection().await;
        pool.put(tx);
        assert!(pool.checkout().is_none());
        assert!(closed_by_the_gateway(&mut theirs).await);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_while_idle_is_not_used() {
        let pool = Pool::new(Duration::from_secs(60));
        let (tx, theirs) = connection().await;
        pool.put(tx);
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

    /// The header names left after [`remove_hop_by_hop`] on a message with `headers`, sorted.
    fn left_after_removal(headers: &[(&'static str, &'static str)]) -> Vec<String> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        remove_hop_by_hop(&mut h);
        let mut left: Vec<String> = h.keys().map(|k| k.as_str().to_owned()).collect();
        left.sort_unstable();
        left
    }

    #[test]
    fn hop_by_hop_headers_and_those_named_by_connection_are_removed() {
        let left = left_after_removal(&[
            ("connection", "keep-alive, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("x-kept", "1"),
            ("content-type", "text/plain"),
        ]);
        assert_eq!(left, ["content-type", "x-kept"]);
    }

    #[test]
    fn connection_cannot_remove_host_or_the_forwarding_chain() {
        let left = left_after_removal(&[
            ("connection", "host, x-forwarded-for, x-user-id"),
            ("host", "api.example.test"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-user-id", "mallory"),
        ]);
        assert_eq!(left, ["host", "x-forwarded-for"]);
    }
}
