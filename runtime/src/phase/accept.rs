//! Phase 1, accept: the request id and the trace context, and the start of the context.
//!
//! The request id is the client's `X-Request-Id` when it is a sane token (1 to 128 visible
//! ASCII characters), otherwise a new random one; it is sent upstream and returned on every
//! answer. The trace context is continued from a valid `traceparent` or started
//! ([`crate::observe::trace`]).

use std::time::Instant;

use http::Request;
use http::header::{HOST, HeaderName, HeaderValue, USER_AGENT};

use super::State;
use super::ctx::Ctx;
use crate::observe::trace::Trace;
use crate::proxy::Peer;

pub(crate) static X_REQUEST_ID: HeaderName =
    HeaderName::from_static(gatewayc_vocab::headers::X_REQUEST_ID);

/// The context of a request whose head has just arrived.
pub(super) fn begin<B>(state: &State, peer: &Peer, req: &Request<B>) -> Ctx {
    let observed = state.observe.access_log;
    if let Some(m) = state.observe.metrics {
        m.request_started();
    }
    Ctx {
        start: Instant::now(),
        request_id: request_id(req),
        trace: Trace::from_headers(req.headers()),
        peer: peer.ip,
        peer_header: peer.ip_header.clone(),
        secure: peer.secure,
        client_cert: peer.client_cert.clone(),
        client_identity: peer.client_identity.clone(),
        method: req.method().clone(),
        // The log's `url.path`, `server.address` and `user_agent.original`; only the log
        // reads them, so they are kept only when it is on.
        uri: if observed {
            req.uri().clone()
        } else {
            http::Uri::default()
        },
        version: req.version(),
        host: observed
            .then(|| {
                req.headers().get(HOST).cloned().or_else(|| {
                    req.uri()
                        .authority()
                        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
                })
            })
            .flatten(),
        user_agent: observed
            .then(|| req.headers().get(USER_AGENT).cloned())
            .flatten(),
        op: None,
        consumer: None,
        plan: None,
        upstream: None,
        attempts: 0,
        upstream_time: None,
        upstream_status: None,
        upstream_span: None,
        upstream_start: None,
        cause: None,
        limit_headers: Vec::new(),
        bytes_in: None,
    }
}

/// The client's `X-Request-Id` when it is a sane token, otherwise a new random one.
fn request_id<B>(req: &Request<B>) -> HeaderValue {
    if let Some(v) = req.headers().get(&X_REQUEST_ID) {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic()) {
            return v.clone();
        }
    }
    let mut buf = [0u8; 32];
    let n = fastrand::u128(..);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte = HEX[((n >> (i * 4)) & 0xf) as usize];
    }
    // 32 hex digits are always a valid header value.
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"))
}
