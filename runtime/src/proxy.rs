//! Forwarding: what the gateway does to a request on its way to the upstream and to the
//! response on its way back, around the upstream layer's call ([`crate::upstream`]).
//!
//! What it does to a request on the way through: hop-by-hop headers removed (the fixed
//! list of RFC 9110 section 7.6.1 and every header the `Connection` header names),
//! `X-Forwarded-For`/`-Proto`/`-Host` set, the request id passed on, the path replaced by
//! the plan's upstream path under the target's base path, the query kept as sent.
//! A body is never dropped: one of unknown length goes chunked, whatever the method.
//! Failures are the upstream layer's [`UpstreamError`]s, which become problem responses in
//! one place (504 for a timeout; 502 for a refused, reset or broken connection or an
//! invalid answer; 413 and 400 for the client's body).
//!
//! Also here: the connector every outgoing connection uses, and the helpers the aggregate
//! and transforms share (forwarding headers, body limits, error chains).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response, StatusCode, Version};
use http_body::Body as _;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::body::{Body, BodyTooLarge};
use crate::gateway::{Plan, RetryDef};
use crate::phase::ctx::Ctx;
use crate::problem::{Kind, Problem};
use crate::upstream::{Target, Upstream, UpstreamError};

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
    let http = tcp_connector(connect_timeout, nodelay);
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

/// The TCP part of every connector: `connect_timeout` to connect, `TCP_NODELAY` when
/// `nodelay`, `https` URLs let through to the TLS layer.
fn tcp_connector(connect_timeout: Duration, nodelay: bool) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(nodelay);
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http
}

/// The connector of an upstream with `tls` settings: its CA instead of the public roots,
/// and its client certificate. `lookup` resolves `${VAR}` in the paths. Fails naming the
/// upstream and the file for a missing variable, an unreadable file, no certificate in a
/// CA file, or a key that does not match its certificate.
#[cfg(feature = "tls")]
pub(crate) fn connector_with_tls(
    upstream: &str,
    def: &crate::gateway::UpstreamTlsDef,
    connect_timeout: Duration,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Connector, String> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let fail =
        |what: &str, e: &dyn std::fmt::Display| format!("upstream `{upstream}` tls: {what}: {e}");
    let path = |p: &str| {
        crate::env::resolve_with(p, lookup).map_err(|missing| {
            let names: Vec<_> = missing.into_iter().collect();
            fail("missing environment variables", &names.join(", "))
        })
    };
    let certs = |file: &str| {
        crate::tls::read_certs(std::path::Path::new(file))
            .map_err(|e| format!("upstream `{upstream}` tls: {e}"))
    };
    let mut roots = rustls::RootCertStore::empty();
    match def.ca {
        Some(ca) => {
            let ca = path(ca)?;
            for cert in certs(&ca)? {
                roots.add(cert).map_err(|e| fail(&ca, &e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail("set-up", &e))?
    .with_root_certificates(roots);
    let config = match (def.cert, def.key) {
        (Some(cert), Some(key)) => {
            let (cert, key) = (path(cert)?, path(key)?);
            let chain = certs(&cert)?;
            let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| fail(&key, &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| fail(&cert, &e))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp_connector(connect_timeout, true)))
}

/// hyper's read and write buffers, at most, per connection (both ways). With single-buffer
/// writes a connection keeps its write buffer at the largest size it reached, so this
/// bounds what an idle keep-alive connection holds; it also caps a message head.
pub(crate) const MAX_BUF: usize = 64 * 1024;

/// Sends the request to `target` of `upstream` along the plan and returns the upstream's response,
/// with its body streamed. The request body is the client's, already limited to the
/// operation's `max_body` ([`Body::limited`]), or the one a request transform made.
///
/// When the upstream has `retries` and the request may be sent again (an idempotent method
/// or an operation marked `retryable`, and no body), a try that fails as `retries.on` says
/// is retried on another target when there is one ([`Upstream::retry_target`]), after a
/// jittered backoff, while the retry budget allows it, and only within the operation's
/// timeout, which bounds every try together. The last try's answer or failure is the
/// client's.
///
/// The call is recorded in `ctx`: the upstream, every try, the span id (sent in
/// `traceparent`), when the first try started and how long until the last response head.
///
/// Fails with the problem of the last try's [`UpstreamError`] (502, 503 for an open
/// circuit breaker, 504, 413, 400), or 400 when the upstream path cannot be a URI.
pub async fn forward(
    upstream: &Upstream,
    target: &Target,
    plan: Plan,
    req: Request<Body>,
    ctx: &mut Ctx,
) -> Result<Response<Body>, Problem> {
    let op = plan.op;
    let mut req = req;

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
    // Only the gateway says which certificate a client showed: one a client wrote itself
    // is removed.
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
    ctx.upstream = Some(op.upstream);
    ctx.upstream_span = Some(span);

    // Only a request without a body can be sent again as it was.
    let retry = upstream.retries().filter(|_| {
        (op.retryable || crate::upstream::idempotent(req.method())) && req.body().is_end_stream()
    });
    if let Some(retry) = retry {
        let path = plan.path.into_string();
        return forward_retrying(upstream, target, &path, op.timeout, retry, req, ctx).await;
    }

    aim(&mut req, target, Cow::Owned(plan.path.into_string()))?;
    ctx.attempts += 1;
    let started = Instant::now();
    ctx.upstream_start = Some(started);
    let outcome = upstream.send(target, req, op.timeout).await;
    ctx.upstream_time = Some(started.elapsed());
    answer(outcome, ctx)
}

/// [`forward`] with retries under `retry`: each try goes to the target
/// [`Upstream::retry_target`] gives after the one before, with a copy of the request
/// head (the request has no body); `timeout` bounds every try together.
async fn forward_retrying(
    upstream: &Upstream,
    first: &Target,
    path: &str,
    timeout: Duration,
    retry: &'static RetryDef,
    req: Request<Body>,
    ctx: &mut Ctx,
) -> Result<Response<Body>, Problem> {
    let started = Instant::now();
    let deadline = started + timeout;
    ctx.upstream_start = Some(started);
    upstream.budget_request(crate::upstream::now_ms());
    // What each retry sends again: the head as the client's request now has it (the
    // Host header and the URI are set per target by `aim`).
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let headers = req.headers().clone();
    let mut req = req;
    let mut target = first;
    let mut tried = 0u64;
    let mut retries = 0u32;
    loop {
        aim(&mut req, target, Cow::Borrowed(path))?;
        if target.index < 64 {
            tried |= 1 << target.index;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let per_try = retry.per_try_timeout.map_or(left, |t| t.min(left));
        ctx.attempts += 1;
        let outcome = upstream.send(target, req, per_try).await;
        ctx.upstream_time = Some(started.elapsed());
        let again = match &outcome {
            Ok(resp) => crate::upstream::retries_on_status(retry, resp.status().as_u16()),
            // Only a per-try timeout is retried: the operation's deadline has passed.
            Err(UpstreamError::Timeout(_)) => retry.on_timeout && per_try < left,
            Err(e) => crate::upstream::retries_on_error(retry, e),
        };
        if !again || retries >= retry.attempts {
            return answer(outcome, ctx);
        }
        let wait = crate::upstream::backoff(retry.backoff, retries + 1, fastrand::f64());
        let left = deadline.saturating_duration_since(Instant::now());
        if wait >= left || !upstream.budget_retry(crate::upstream::now_ms()) {
            return answer(outcome, ctx);
        }
        retries += 1;
        // The answer given up: its connection goes back to the pool, or closes.
        drop(outcome);
        crate::observe::metrics::upstream_retry(upstream.name);
        tokio::time::sleep(wait).await;
        target = upstream.retry_target(target, tried);
        req = Request::new(Body::Empty);
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri.clone();
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = headers.clone();
    }
}

/// Points `req` at `target`: its `Host`, and the upstream path (`path`, the plan's) under
/// the target's base path with the client's query, in origin form.
///
/// Fails with 400 when that path cannot be a URI.
fn aim(req: &mut Request<Body>, target: &Target, path: Cow<'_, str>) -> Result<(), Problem> {
    let base_path = &target.address.base_path;
    let query = req.uri().query();
    // The usual case: no base path, no rewrite, and the request in origin form, so the
    // upstream path is byte for byte the one the client sent. Its URI then goes upstream
    // as it is instead of being built and parsed again. (Only an identical path is kept:
    // a parameter value is never sent in any form but the router's encoding.)
    let pq = if base_path.is_empty() && req.uri().scheme().is_none() && req.uri().path() == path {
        None
    } else if base_path.is_empty() && query.is_none() {
        Some(path.into_owned())
    } else {
        let mut pq =
            String::with_capacity(base_path.len() + path.len() + query.map_or(0, |q| q.len() + 1));
        pq.push_str(base_path);
        pq.push_str(&path);
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        Some(pq)
    };
    req.headers_mut()
        .insert(header::HOST, target.address.host.clone());
    // Origin form (`/path?query`): what an HTTP/1.1 request to a server carries.
    if let Some(pq) = pq {
        *req.uri_mut() = Uri::from(
            PathAndQuery::from_maybe_shared(pq)
                .map_err(|_| Problem::bad_path("the request path cannot be forwarded"))?,
        );
    }
    Ok(())
}

/// The client's answer from the last try: the upstream's response without its hop-by-hop
/// headers, or the problem of its failure.
fn answer(
    outcome: Result<Response<Body>, UpstreamError>,
    ctx: &mut Ctx,
) -> Result<Response<Body>, Problem> {
    let mut resp = outcome.map_err(Problem::from)?;
    ctx.upstream_status = Some(resp.status().as_u16());
    remove_hop_by_hop(resp.headers_mut());
    *resp.version_mut() = Version::HTTP_11;
    Ok(resp)
}

use gatewayc_vocab::headers as names;
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static(names::X_FORWARDED_FOR);
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static(names::X_FORWARDED_PROTO);
pub(crate) static X_FORWARDED_CLIENT_CERT: HeaderName =
    HeaderName::from_static(names::X_FORWARDED_CLIENT_CERT);
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static(names::X_FORWARDED_HOST);
static X_REQUEST_ID: HeaderName = HeaderName::from_static(names::X_REQUEST_ID);

/// 400: the client's request body could not be read ([`crate::body::ClientBodyError`]); `reason`, for the
/// operator, says why.
pub(crate) fn unreadable_body(reason: String) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "the request body could not be read: its chunked framing is malformed, or it ended early",
    )
    .because(Kind::BadRequest, reason)
}

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
    crate::upstream::find::<BodyTooLarge>(e).is_some()
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
    /// Who that certificate names: its subject's common name (or, without one, the whole
    /// subject), the consumer of `mutualTLS` schemes.
    pub client_identity: Option<std::sync::Arc<str>>,
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
            client_identity: None,
        }
    }

    /// Describes a connection whose TLS handshake is done, with the client's certificate
    /// (see `tls::forwarded_client_cert`) and who it names, when it gave one.
    pub fn secure(
        addr: SocketAddr,
        client_cert: Option<HeaderValue>,
        client_identity: Option<std::sync::Arc<str>>,
    ) -> Self {
        Peer {
            secure: true,
            client_cert,
            client_identity,
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
